"""Site-wide pages and request hooks: health check, language switch, security headers, NUL, the
visitor's address behind a proxy, and the session cookie's signing."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Blueprint, Flask, Response, abort, redirect, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

from . import formatting, forms, params, policy
from .extensions import db
from .i18n import COOKIE, LANGUAGES
from .i18n import gettext as _

bp = Blueprint("web", __name__)

ONE_YEAR = 365 * 24 * 3600


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any failure of the database means unhealthy; the detail goes to the log
        db.session.rollback()
        return {"status": "error", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}, 200


@bp.get("/language/<code>")
def switch_language(code: str) -> Response:
    response = redirect(params.safe_next(request.args.get("next")))
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=ONE_YEAR, samesite="Lax", httponly=True)
    return response


# The site-wide policy. A page that needs more (only the card payment page, for Stripe.js) sets
# its own header from `content_security_policy(extra)`: the default is never loosened.
CSP: dict[str, str] = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "style-src": "'self'",
    "script-src": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'self'",
    "object-src": "'none'",
}


def content_security_policy(extra: Mapping[str, Iterable[str]] | None = None) -> str:
    """The site-wide policy, with `extra` sources added to some directives for one page.

    A directive the default lacks starts from `default-src`, which it would otherwise fall back on.
    """
    directives = dict(CSP)
    for name, sources in (extra or {}).items():
        directives[name] = " ".join([directives.get(name, CSP["default-src"]), *sources])
    return "; ".join(f"{name} {sources}" for name, sources in directives.items())


DEFAULT_CSP = content_security_policy()


# Added to every response that lacks them, with DEFAULT_CSP, and HSTS over HTTPS only.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def missing_security_headers(present: set[str], secure: bool) -> list[tuple[str, str]]:
    """The security headers a response with headers `present` (lower case) lacks."""
    wanted = [("Content-Security-Policy", DEFAULT_CSP), *SECURITY_HEADERS]
    if secure:
        wanted.append(HSTS)
    return [(name, value) for name, value in wanted if name.lower() not in present]


def _security_headers(response: Response) -> Response:
    headers = response.headers
    # One pass over the headers: `Headers.setdefault` would scan them, and raise and catch an
    # exception, for each header that is missing.
    present = {name.lower() for name, _ in headers}
    for name, value in missing_security_headers(present, request.is_secure):
        headers.add(name, value)
    return response


FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _refuse_nul() -> None:
    """PostgreSQL text cannot hold NUL: a path or form field with one is refused, never a 500.

    The API checks its own paths and bodies, and answers in its own terms.
    """
    if request.path.startswith("/api/"):
        return
    if "\x00" in request.path:
        abort(404)
    if request.mimetype in FORM_TYPES:
        for name, value in request.form.items(multi=True):
            if "\x00" in value:
                abort(
                    400,
                    description=_(
                        "%(name)s contains a character that cannot be stored.", name=name
                    ),
                )


def _trusts(allowed: str) -> Callable[[str], bool]:
    """Whether a peer may speak for the visitor, by gunicorn's rule for FORWARDED_ALLOW_IPS:
    addresses or networks, comma-separated, `*` for any; a peer on a Unix socket (no address)
    is a proxy on this host."""
    names = {name.strip() for name in allowed.split(",") if name.strip()}
    if "*" in names:
        return lambda peer: True
    networks = [ipaddress.ip_network(name, strict=False) for name in names]

    # Asked on every request, mostly about the same few peers (the proxy): each address is parsed
    # and looked up in the networks once.
    @functools.lru_cache(maxsize=1024)
    def trusted(peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return not peer
        return any(address in network for network in networks)

    return trusted


def _behind_trusted_proxy(app: Flask) -> None:
    """gunicorn gives the app the proxy's address as REMOTE_ADDR; a trusted proxy's
    X-Forwarded-For names the visitor. Anyone else's X-Forwarded-For is ignored."""
    trusted = _trusts(str(app.config["FORWARDED_ALLOW_IPS"]))
    direct = app.wsgi_app
    forwarded = ProxyFix(direct, x_for=1)

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
        chosen = forwarded if trusted(environ.get("REMOTE_ADDR", "")) else direct
        return chosen(environ, start_response)

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, with the signing serializer built once for the keys.

    Flask builds it anew for every request with a session cookie (and for every cookie it sets),
    though it depends on nothing but the secret keys; it is rebuilt when they change.
    """

    def __init__(self) -> None:
        self._serializer: tuple[tuple[Any, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        built = self._serializer
        if built is None or built[0] != keys:
            built = self._serializer = (keys, super().get_signing_serializer(app))
        return built[1]


def register(app: Flask) -> None:
    from flask_babel import get_locale

    _behind_trusted_proxy(app)
    app.session_interface = CookieSessions()

    formatting.register(app)
    forms.register(app)
    app.add_template_global(policy.may_open_office)
    app.after_request(_security_headers)
    app.before_request(_refuse_nul)

    @app.context_processor
    def _language():  # type: ignore[no-untyped-def]
        return {"languages": LANGUAGES, "current_language": str(get_locale())}
