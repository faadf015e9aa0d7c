"""Site-wide pages and request hooks: health check, language switch, security headers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask import Blueprint, Flask, Response, redirect, request
from sqlalchemy import text

from . import formatting, forms, params, policy
from .extensions import db
from .i18n import COOKIE, LANGUAGES

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


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def register(app: Flask) -> None:
    from flask_babel import get_locale

    formatting.register(app)
    forms.register(app)
    app.add_template_global(policy.may_open_office)
    app.after_request(_security_headers)

    @app.context_processor
    def _language():  # type: ignore[no-untyped-def]
        return {"languages": LANGUAGES, "current_language": str(get_locale())}
