"""Whole catalog pages, kept a few seconds for anonymous visitors.

Most storefront traffic is people nobody knows yet browsing the same listings and product pages:
for them a page is the same bytes for everyone who speaks their language, so it is rendered once
per `PAGE_CACHE_SECONDS`, shared through Redis when `REDIS_URL` is set, and kept in each worker's
memory until it expires. A page whose view names what it shows (`scope_to`: a product, a
facility) is forgotten as soon as that changes (catalog/freshness.py), so Redis keeps it longer.
Most hits are answered before Flask (`Hits`), the rest by its first hook: before the database,
the login or the rate limiter are touched.

Only a visitor whose session holds nothing but a CSRF token is served or stored: anyone signed in,
remembered, with a cart or with a message to flash sees pages rendered for them. A visitor who
has seen a form has a session with its token, and is still anonymous: the product page's
add-to-cart form carries that token, so it is kept out of the stored bytes and each hit gets the
visitor's own. Stock figures on a cached page may be `PAGE_CACHE_SECONDS` old; checkout counts
stock again under row locks, so nothing can be sold twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from flask import Flask, Request, Response, current_app, g, request, session
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.http import parse_cookie

from . import request_log, web
from .i18n import locale_from, select_locale

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 10
# Pages a view scoped to what they show (`scope_to`) are forgotten as soon as it changes
# (catalog/freshness.py): Redis keeps them this long. A worker's own copy still lasts
# PAGE_CACHE_SECONDS, so a change another worker made shows there within that time.
KEEP_SECONDS = 300
VERSION = "version:"  # before a scope's name: the Redis key counting its changes
# Where `Hits` leaves its look-up (key, page or None) in the WSGI environ for Flask's hook.
LOOKED_UP = "karya.page_cache.looked_up"
# The public catalog: the same for every anonymous visitor.
CACHED_ENDPOINTS = frozenset(
    {
        "catalog.home",
        "catalog.products",
        "catalog.product",
        "catalog.facilities",
        "catalog.facility",
    }
)
# Stands in for the visitor's CSRF token in a stored page; NUL never occurs in the app's HTML.
CSRF_MARK = b"\x00csrf-token\x00"
CSRF_SALT = "wtf-csrf-token"  # Flask-WTF signs its tokens with this salt
REDIS_PREFIX = "karya:page:"
REDIS_TIMEOUT = 0.25  # seconds: a slow Redis must not make pages slower than rendering them
REDIS_BACKOFF = 5.0  # seconds without Redis after an error, rather than a timeout per request
MEMORY_ENTRIES = 500
# The headers a catalog view sets; the after-request hooks add the others to a hit, as to any
# response (security headers depend on the request: HSTS only over HTTPS).
STORED_HEADERS = frozenset({"content-type", "content-language"})

T = TypeVar("T")


def now() -> float:
    """Wall-clock seconds: a page's expiry is compared across workers."""
    return time.time()


@dataclass(frozen=True)
class Page:
    """A stored response: until when it may be served, the view's headers, and the body; for a
    scoped page, the versions of its scopes it was rendered at."""

    expires: float
    headers: list[tuple[str, str]]
    body: bytes
    versions: dict[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        head = {"expires": self.expires, "headers": self.headers, "versions": self.versions}
        return json.dumps(head).encode() + b"\n" + self.body

    @classmethod
    def decode(cls, stored: bytes) -> Page:
        head, _, body = stored.partition(b"\n")
        fields = json.loads(head)
        headers = [tuple(h) for h in fields["headers"]]
        return cls(fields["expires"], headers, body, fields.get("versions", {}))


class MemoryStore:
    """One worker's pages, each until it expires; bounded, since any query string is a key.

    Without Redis it counts the versions of scopes too, for this worker alone."""

    def __init__(self, max_entries: int = MEMORY_ENTRIES) -> None:
        self.max_entries = max_entries
        self.pages: dict[str, Page] = {}
        self.changes: Counter[str] = Counter()  # versions of scopes
        self._lock = threading.Lock()

    def get(self, key: str) -> Page | None:
        page = self.pages.get(key)
        return page if page is not None and page.expires > now() else None

    def put(self, key: str, page: Page) -> None:
        with self._lock:
            if len(self.pages) >= self.max_entries:
                moment = now()
                self.pages = {k: p for k, p in self.pages.items() if p.expires > moment}
                if len(self.pages) >= self.max_entries:  # still full: drop the oldest half
                    self.pages = dict(list(self.pages.items())[len(self.pages) // 2 :])
            self.pages.pop(key, None)  # re-inserted last, so the oldest stay first
            self.pages[key] = page

    def forget(self, scopes: Iterable[str]) -> None:
        """Drops the pages scoped to any of these scopes, and counts a new version of each."""
        changed = set(scopes)
        with self._lock:
            self.changes.update(changed)
            self.pages = {k: p for k, p in self.pages.items() if changed.isdisjoint(p.versions)}

    def versions(self, scopes: list[str]) -> dict[str, int]:
        return {scope: self.changes[scope] for scope in scopes}

    def clear(self) -> None:
        with self._lock:
            self.pages.clear()


class RedisStore:
    """Pages shared by all workers, which Redis expires. Without Redis, pages are rendered."""

    def __init__(self, url: str, prefix: str = REDIS_PREFIX) -> None:
        self.prefix = prefix
        self.client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        self._paused_until = 0.0

    def _available(self) -> bool:
        return time.monotonic() >= self._paused_until

    def _failed(self, error: redis.RedisError) -> None:
        log.warning(
            "page cache: Redis unavailable, pages rendered for %.0f s: %s", REDIS_BACKOFF, error
        )
        self._paused_until = time.monotonic() + REDIS_BACKOFF

    def get(self, key: str) -> Page | None:
        if not self._available():
            return None
        try:
            stored = self.client.get(self.prefix + key)
        except redis.RedisError as error:
            self._failed(error)
            return None
        return Page.decode(stored) if stored else None  # type: ignore[arg-type]

    def put(self, key: str, page: Page, seconds: float) -> None:
        if not self._available():
            return
        try:
            self.client.set(self.prefix + key, page.encode(), ex=max(1, round(seconds)))
        except redis.RedisError as error:
            self._failed(error)

    def forget(self, scopes: Iterable[str]) -> None:
        """Counts a new version of each scope: pages stored at an older one are not served."""
        # Tried even while paused: a page left behind would be served until it expires.
        try:
            with self.client.pipeline(transaction=True) as all_at_once:
                for scope in scopes:
                    all_at_once.incr(self.prefix + VERSION + scope)
                all_at_once.execute()
        except redis.RedisError as error:
            self._failed(error)

    def versions(self, scopes: list[str]) -> dict[str, int] | None:
        """How many times each scope changed; None when Redis cannot say."""
        if not self._available():
            return None
        try:
            counts = self.client.mget([self.prefix + VERSION + scope for scope in scopes])
        except redis.RedisError as error:
            self._failed(error)
            return None
        return {scope: int(count or 0) for scope, count in zip(scopes, counts, strict=True)}

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        if keys:
            self.client.delete(*keys)


@dataclass
class PageCache:
    """The worker's memory first, then Redis when configured.

    Redis makes one rendering per period serve every worker; each worker then keeps the pages it
    fetched until they expire, so a hit is usually a dictionary lookup.
    """

    shared: RedisStore | None = None
    local: MemoryStore = field(default_factory=MemoryStore)
    # Small lists the public pages show (the provinces), per worker.
    recent_values: dict[str, tuple[float, Any]] = field(default_factory=dict)

    def get(self, key: str, keep_for: float) -> Page | None:
        """The page, from this worker's memory or else from Redis; a page fetched from Redis is
        kept in memory `keep_for` seconds at most."""
        page = self.local.get(key)
        if page is None and self.shared is not None:
            page = self.shared.get(key)
            moment = now()
            if page is not None and page.expires > moment and self._current(page):
                self.local.put(key, replace(page, expires=min(page.expires, moment + keep_for)))
            else:
                page = None
        return page

    def _current(self, page: Page) -> bool:
        """Whether nothing a scoped page shows changed since it was rendered."""
        return not page.versions or self.versions(list(page.versions)) == page.versions

    def put(self, key: str, page: Page, shared_seconds: float) -> None:
        """Keeps `page` in memory until it expires, and in Redis for `shared_seconds`."""
        self.local.put(key, page)
        if self.shared is not None:
            self.shared.put(key, replace(page, expires=now() + shared_seconds), shared_seconds)

    def forget(self, scopes: Iterable[str]) -> None:
        scopes = list(scopes)
        self.local.forget(scopes)
        if self.shared is not None:
            self.shared.forget(scopes)

    def versions(self, scopes: list[str]) -> dict[str, int] | None:
        """The scopes' change counts: Redis's, or this worker's without Redis; None when Redis
        cannot say, and the page is then kept as pages that are not scoped."""
        if self.shared is not None:
            return self.shared.versions(scopes)
        return self.local.versions(scopes)

    def clear(self) -> None:
        self.local.clear()
        if self.shared is not None:
            self.shared.clear()
        self.recent_values.clear()


def page_cache() -> PageCache:
    return current_app.extensions["page_cache"]  # type: ignore[no-any-return]


def seconds() -> int:
    return int(current_app.config["PAGE_CACHE_SECONDS"])


def forget(scopes: Iterable[str]) -> None:
    """Forgets the pages scoped to any of these scopes, in every worker and language."""
    if scopes := list(scopes):
        page_cache().forget(scopes)


def storing() -> bool:
    """Whether this request's page may be stored: a miss for an anonymous visitor."""
    return "page_cache_key" in g


def scope_to(*scopes: str) -> None:
    """Called by a view, before it reads anything, when its page shows nothing that changes but
    what these scopes name (`product:<slug>`, `facility:<slug>`, as catalog/freshness.py counts
    their changes): Redis may then keep the page until one of them changes, instead of
    PAGE_CACHE_SECONDS. Called again, it adds scopes: ones named by what was read after the
    first call."""
    if not storing():
        return
    known = g.get("page_cache_versions", {})
    versions = page_cache().versions(list(scopes)) if scopes else {}
    if known is None or versions is None:
        g.page_cache_versions = None  # Redis cannot say: kept as other pages
    else:
        g.page_cache_versions = {**known, **versions}


def recent(name: str, compute: Callable[[], T], keep_for: int | None = None) -> T:
    """`compute()`'s value, computed at most `keep_for` seconds (PAGE_CACHE_SECONDS unless
    given) ago in this worker; computed every time while the page cache is off.

    For small lists the catalog pages show (the provinces), which may be as old as a cached
    page anyway: rendering a page on a miss, or for someone signed in, need not query them. A
    scoped page is kept until its scopes change, so it is rendered with a fresh value.
    """
    period = seconds()
    if period <= 0 or g.get("page_cache_versions"):
        return compute()
    period = period if keep_for is None else keep_for
    values = page_cache().recent_values
    found = values.get(name)
    if found is not None and found[0] > now():
        return found[1]  # type: ignore[no-any-return]
    value = compute()
    values[name] = (now() + period, value)
    return value


def _anonymous(app: Flask, cookies: Mapping[str, str], session_keys: Iterable[str]) -> bool:
    """Nobody signed in or remembered, no cart, no message waiting: only a CSRF token, if any.

    Flask-Login's session protection marks any session without a login `_fresh: False`.
    """
    if app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in cookies:
        return False
    anonymous = {app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), "_fresh"}
    return set(session_keys) <= anonymous


def _anonymous_session(app: Flask, req: Request) -> bool:
    return _anonymous(app, req.cookies, session.keys())


def _cacheable_request(app: Flask, req: Request) -> bool:
    return (
        req.method in ("GET", "HEAD")
        and req.endpoint in CACHED_ENDPOINTS
        and _anonymous_session(app, req)
    )


def cache_key(locale: str, environ: WSGIEnvironment) -> str:
    """The language the page is rendered in, and the path with its query string."""
    path = environ.get("PATH_INFO") or "/"
    address = f"{path}?{environ.get('QUERY_STRING', '')}".encode("latin-1", "replace")
    return f"{locale}:{hashlib.blake2b(address, digest_size=16).hexdigest()}"


def _response(page: Page) -> Response:
    body = page.body
    if CSRF_MARK in body:
        body = body.replace(CSRF_MARK, generate_csrf().encode())
    return Response(body, status=200, headers=[*page.headers, ("X-Page-Cache", "hit")])


def _serve_cached() -> Response | None:
    # Most requests end here: each read through Flask's `current_app` and `request` proxies is a
    # context look-up of its own, so they are looked up once.
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    if app.config["PAGE_CACHE_SECONDS"] <= 0 or not _cacheable_request(app, req):
        return None
    key = cache_key(select_locale(), req.environ)
    looked_up = req.environ.get(LOOKED_UP)
    if looked_up is not None and looked_up[0] == key:
        page = looked_up[1]  # `Hits` asked the cache already: a miss goes to Redis once
    else:
        page = app.extensions["page_cache"].get(key, app.config["PAGE_CACHE_SECONDS"])
    if page is None:
        g.page_cache_key = key  # a miss: the response may be stored
        return None
    return _response(page)


def _store(response: Response) -> Response:
    key = g.pop("page_cache_key", None)
    if (
        key is None
        or request.method != "GET"
        or response.status_code != 200
        or response.direct_passthrough
        or response.is_streamed
        or "Set-Cookie" in response.headers
        or response.cache_control.no_store
        or response.cache_control.private
        # The view signed someone in, filled a cart or flashed a message.
        or not _anonymous_session(current_app, request)
    ):
        return response
    body = response.get_data()
    token = g.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    if token:
        body = body.replace(token.encode(), CSRF_MARK)
    headers = [(k, v) for k, v in response.headers.items() if k.lower() in STORED_HEADERS]
    period = seconds()
    page = Page(now() + period, headers, body)
    if versions := g.pop("page_cache_versions", None):
        # Read before rendering: a change committed since has counted past them.
        page_cache().put(key, replace(page, versions=versions), max(period, KEEP_SECONDS))
    else:
        page_cache().put(key, page, period)
    response.headers["X-Page-Cache"] = "miss"
    return response


class Hits:
    """WSGI: answers a hit for an anonymous visitor before Flask is entered: no request context,
    routing or hooks.

    That is most of the storefront's traffic. A page with a form gets the visitor's CSRF token,
    signed from their session as Flask-WTF signs it. Everything else (a miss, a form for a
    visitor who has no token yet, anyone who is not anonymous) goes on to Flask, whose first hook
    serves hits too. The response is the one Flask would send: the stored headers, the security
    headers, the request id and `Vary: Cookie`, and the request's log line.
    """

    def __init__(self, app: Flask, inner: WSGIApplication) -> None:
        self.app = app
        self.inner = inner
        self._paths: tuple[frozenset[str], tuple[str, ...]] | None = None
        self._csrf_signer: tuple[Any, URLSafeTimedSerializer] | None = None

    def catalog_paths(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """The cached views' paths, and prefixes of those with a variable part: a cheap test
        before any cookie is read. Taken from the routes at the first request, when all exist."""
        if self._paths is None:
            exact, prefixes = set(), []
            for rule in self.app.url_map.iter_rules():
                if rule.endpoint in CACHED_ENDPOINTS:
                    static, variable, _ = rule.rule.partition("<")
                    if variable:
                        prefixes.append(static)
                    else:
                        exact.add(static)
            self._paths = (frozenset(exact), tuple(prefixes))
        return self._paths

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        page = self._shared_page(environ)
        if page is None:
            return self.inner(environ, start_response)
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = request_log.new_request_id(given)
        headers = [*page.headers, ("X-Page-Cache", "hit"), ("Content-Length", str(len(page.body)))]
        secure = environ.get("wsgi.url_scheme") == "https"
        headers += web.missing_security_headers({name.lower() for name, _ in headers}, secure)
        headers += [(request_log.HEADER, request_id), ("Vary", "Cookie")]
        start_response("200 OK", headers)
        method = environ["REQUEST_METHOD"]
        request_log.write_line(
            method=method,
            path=environ.get("PATH_INFO") or "/",
            status=200,
            started=started,
            user_id=None,
            remote_addr=environ.get("REMOTE_ADDR"),
            size=len(page.body),
            request_id=request_id,
        )
        return [] if method == "HEAD" else [page.body]

    def _shared_page(self, environ: WSGIEnvironment) -> Page | None:
        app = self.app
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        path = environ.get("PATH_INFO") or "/"
        exact, prefixes = self.catalog_paths()
        if path not in exact and not path.startswith(prefixes):
            return None
        if app.config["PAGE_CACHE_SECONDS"] <= 0:
            return None
        cookies = parse_cookie(environ.get("HTTP_COOKIE"))
        visitor = self._anonymous_session(cookies)
        if visitor is None:
            return None
        key = cache_key(locale_from(cookies), environ)
        page: Page | None = app.extensions["page_cache"].get(key, app.config["PAGE_CACHE_SECONDS"])
        environ[LOOKED_UP] = (key, page)
        if page is None:
            return None  # rendered by Flask
        if CSRF_MARK in page.body:
            token = self._csrf_token(visitor)
            if token is None:
                return None  # Flask makes the visitor's first token, and sets their cookie
            page = replace(page, body=page.body.replace(CSRF_MARK, token.encode()))
        return page

    def _anonymous_session(self, cookies: Mapping[str, str]) -> dict[str, Any] | None:
        """The session as Flask would read it from its cookie, when `_anonymous`; else None."""
        app = self.app
        data: Any = {}
        value = cookies.get(app.config["SESSION_COOKIE_NAME"])
        if value:
            serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
            if serializer is None:
                return None
            lifetime = int(app.permanent_session_lifetime.total_seconds())
            try:
                data = serializer.loads(value, max_age=lifetime)
            except BadSignature:
                data = {}  # Flask would start an empty session
            if not isinstance(data, dict):
                return None
        return data if _anonymous(app, cookies, data) else None

    def _csrf_token(self, visitor: Mapping[str, Any]) -> str | None:
        """What Flask-WTF's `generate_csrf` gives this session: its token, signed; None when the
        session holds none yet."""
        config = self.app.config
        raw = visitor.get(config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
        if not isinstance(raw, str):
            return None
        secret = config.get("WTF_CSRF_SECRET_KEY") or self.app.secret_key
        signer = self._csrf_signer
        if signer is None or signer[0] != secret:
            signer = self._csrf_signer = (secret, URLSafeTimedSerializer(secret, salt=CSRF_SALT))
        return signer[1].dumps(raw)  # type: ignore[no-any-return]


def register(app: Flask) -> None:
    """Call before any other extension registers its hooks: a hit then skips all of them.

    The response of a hit still passes the after-request hooks, security headers included.
    """
    configured = app.config.get("PAGE_CACHE_SECONDS")
    if configured is None:
        configured = 0 if app.testing else DEFAULT_SECONDS  # tests opt in to a cache
    app.config["PAGE_CACHE_SECONDS"] = int(configured)
    url = app.config.get("REDIS_URL") or ""
    app.extensions["page_cache"] = PageCache(RedisStore(url) if url else None)
    app.before_request(_serve_cached)
    app.after_request(_store)
    app.wsgi_app = Hits(app, app.wsgi_app)  # type: ignore[method-assign]
