"""Checks of what every response carries: security headers, cookie flags, CSRF refusal, limits.

Each check returns the problems it found, one sentence each; an empty list means none.
"""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import func, select

from shop import create_app
from shop.extensions import db, limiter

from ..helpers import PASSWORD, post_form
from ..test_access import url_for_rule

ONE_YEAR = 365 * 24 * 3600
SAFE_REFERRER_POLICIES = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}
# Sources that let an injected script or style run.
UNSAFE_SOURCES = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "data:", "http:"}
CSRF_REFUSAL = "This form has expired or came from elsewhere"

# A few pages of each kind, for each kind of person: public, buyer, staff, finance, admin.
HEADER_PAGES: dict[str | None, list[str]] = {
    None: [
        "/",
        "/products",
        "/products?q=besek",
        "/products/{slug}",
        "/facilities",
        "/facilities/rutan-banjarnegara",
        "/impact",
        "/login",
        "/register",
        "/password/forgot",
        "/cart",
        "/photos/{photo_id}",
        "/static/style.css",
        "/healthz",
        "/api/v1/openapi.json",
    ],
    "buyer": [
        "/account",
        "/account/api-tokens",
        "/orders",
        "/orders/{reference}",
        "/orders/{reference}/pay",
        "/orders/{reference}/invoice.pdf",
        "/quotes",
        "/quotes/{quote_id}",
        "/orders/placed/{key}",
    ],
    "staff_banjarnegara": [
        "/office/{facility_id}/",
        "/office/{facility_id}/products/{product_id}/edit",
        "/office/{facility_id}/orders/{order_id}",
        "/office/{facility_id}/wbp",
        "/office/{facility_id}/batches/{batch_id}",
    ],
    "finance_banjarnegara": [
        "/office/{facility_id}/finance/",
        "/office/{facility_id}/finance/entries",
        "/office/{facility_id}/finance/runs/{run_id}/payout-sheet.pdf",
    ],
    "admin": ["/admin/", "/admin/users", "/admin/facilities/{facility_id}"],
}
# Error pages carry the headers too.
ERROR_PAGES = {None: ["/tidak-ada", "/products?page=abc"]}


def csp_directives(policy: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        if name:
            directives.setdefault(name.lower(), sources)  # the first of a name counts
    return directives


def header_problems(response, *, secure: bool) -> list[str]:  # type: ignore[no-untyped-def]
    """What is missing or unsafe in one response's security headers."""
    headers = response.headers
    problems = []
    policies = headers.getlist("Content-Security-Policy")
    if len(policies) != 1:
        problems.append(f"{len(policies)} Content-Security-Policy headers, not one")
    else:
        directives = csp_directives(policies[0])
        # Our two generated PDFs let Chrome's PDF viewer style itself (their policy allows no
        # script at all); every page of ours, an HTML page, allows neither inline scripts nor
        # inline styles.
        kinds = ["script-src", "style-src"] if response.mimetype == "text/html" else ["script-src"]
        for name in kinds:
            sources = directives.get(name, directives.get("default-src"))
            if sources is None:
                problems.append(f"the policy sets neither {name} nor default-src")
            elif unsafe := sorted(UNSAFE_SOURCES & {s.lower() for s in sources}):
                problems.append(f"{name} allows {' '.join(unsafe)}")
        if directives.get("frame-ancestors") != ["'none'"]:
            problems.append(f"frame-ancestors is {directives.get('frame-ancestors')}, not 'none'")
    if headers.get("X-Content-Type-Options", "").lower() != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if headers.get("Referrer-Policy", "").lower() not in SAFE_REFERRER_POLICIES:
        problems.append(f"Referrer-Policy is {headers.get('Referrer-Policy')!r}")
    hsts = headers.get("Strict-Transport-Security")
    if secure:
        age = re.search(r"max-age=(\d+)", hsts or "")
        if not age or int(age.group(1)) < ONE_YEAR:
            problems.append(f"over HTTPS, Strict-Transport-Security is {hsts!r}")
    elif hsts is not None:
        problems.append("Strict-Transport-Security sent over plain HTTP")
    return problems


def check_security_headers(world) -> list[str]:  # type: ignore[no-untyped-def]
    """Every page of the walk, over HTTP and HTTPS, as the person who may open it."""
    problems = []
    for pages, expected in ((HEADER_PAGES, range(200, 300)), (ERROR_PAGES, range(400, 500))):
        for who, paths in pages.items():
            client = world.client(who)
            for path in paths:
                url = path.format(**world.ids)
                for scheme in ("http", "https"):
                    response = client.get(url, base_url=f"{scheme}://localhost")
                    where = f"{scheme.upper()} {url} as {who or 'a visitor'}"
                    if response.status_code not in expected:
                        problems.append(f"{where}: answered {response.status_code}")
                    problems += [
                        f"{where}: {p}" for p in header_problems(response, secure=scheme == "https")
                    ]
    token = world.api_tokens["buyer"]
    for scheme in ("http", "https"):
        response = world.client().get(
            "/api/v1/products",
            base_url=f"{scheme}://localhost",
            headers={"Authorization": f"Bearer {token}"},
        )
        problems += [
            f"{scheme.upper()} /api/v1/products: {p}"
            for p in header_problems(response, secure=scheme == "https")
        ]
    return problems


# Cookies


def production_app(database_url: str) -> Flask:
    """The app as production builds it: every setting from `create_app`'s defaults, but the
    database. (Flask-Limiter's one extension object is bound to this app as well, with a new
    in-memory store: the test app's counters start again, which the tests reset anyway.)"""
    return create_app({"SQLALCHEMY_DATABASE_URI": database_url})


def cookie_attributes(set_cookie: str) -> tuple[str, dict[str, str]]:
    name_value, *attributes = [part.strip() for part in set_cookie.split(";")]
    name = name_value.split("=", 1)[0]
    found = {}
    for attribute in attributes:
        key, _sep, value = attribute.partition("=")
        found[key.lower()] = value
    return name, found


def check_cookies(world) -> list[str]:  # type: ignore[no-untyped-def]
    """Signs in with "remember me" on a production-configured app and reads every Set-Cookie."""
    app = production_app(world.app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        client = app.test_client()
        base = "https://localhost"
        form_page = client.get("/login", base_url=base)
        set_cookies = form_page.headers.getlist("Set-Cookie")
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form_page.text)
        token = match.group(1) if match else ""
        signed_in = client.post(
            "/login",
            base_url=base,
            headers={"Referer": f"{base}/login"},  # Flask-WTF checks it over HTTPS
            data={
                "csrf_token": token,
                "email": world.users["buyer"].email,
                "password": PASSWORD,
                "remember": "y",
            },
        )
        set_cookies += signed_in.headers.getlist("Set-Cookie")
    finally:
        with app.app_context():
            db.engine.dispose()
    problems = []
    if signed_in.status_code != 302:
        problems.append(f"signing in on the production app answered {signed_in.status_code}")
    seen = {}
    for header in set_cookies:
        name, attributes = cookie_attributes(header)
        seen[name] = attributes
    # Flask-Login's default name, unless the configuration names another.
    remember = app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    for name in (app.config["SESSION_COOKIE_NAME"], remember):
        attributes = seen.get(name)
        if attributes is None:
            problems.append(f"the {name} cookie was never set")
            continue
        if "secure" not in attributes:
            problems.append(f"the {name} cookie is not Secure")
        if "httponly" not in attributes:
            problems.append(f"the {name} cookie is not HttpOnly")
        if attributes.get("samesite", "").lower() != "lax":
            problems.append(f"the {name} cookie has SameSite={attributes.get('samesite')!r}")
    return problems


# CSRF

# The only state-changing routes without a CSRF token: each authenticates its caller otherwise.
CSRF_EXEMPT = {
    "api.place": "a buyer's bearer token",
    "payments.stripe_webhook": "Stripe's signature",
}


def csrf_user(endpoint: str) -> str | None:
    """Someone who may use the route, so that only the missing token stops the request."""
    if endpoint.startswith("finance_office."):
        return "finance_banjarnegara"
    if endpoint.startswith(("catalog_office.", "orders_office.", "office.")):
        return "staff_banjarnegara"
    if endpoint.startswith("admin."):
        return "admin"
    if endpoint.startswith("accounts.") and endpoint != "accounts.logout":
        return None
    return "buyer"


def state_changing_routes(app: Flask) -> list[tuple[object, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}):
            found.append((rule, method))
    return sorted(found, key=lambda item: (item[0].rule, item[1]))


def row_counts() -> dict[str, int]:
    """Rows in every table: an attack that changed nothing leaves all of them as they were."""
    db.session.rollback()
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


def check_csrf(world) -> list[str]:  # type: ignore[no-untyped-def]
    """POSTs to every state-changing route without a token; all but the exempt are refused."""
    app = world.app
    problems = []
    not_refused = {}
    before = row_counts()
    saved_secret = app.config.get("STRIPE_WEBHOOK_SECRET")
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_karya_binaan_test"  # noqa: S105
    try:
        for rule, method in state_changing_routes(app):
            url = url_for_rule(rule, world.ids)
            client = world.client(csrf_user(rule.endpoint))
            response = client.open(url, method=method, data={"catatan": "tanpa token"})
            refused = response.status_code == 400 and CSRF_REFUSAL in response.text
            if not refused:
                not_refused[rule.endpoint] = (url, response)
    finally:
        app.config["STRIPE_WEBHOOK_SECRET"] = saved_secret
    if set(not_refused) != set(CSRF_EXEMPT):
        for endpoint in sorted(set(not_refused) - set(CSRF_EXEMPT)):
            url, response = not_refused[endpoint]
            problems.append(
                f"POST {url} ({endpoint}) without a CSRF token answered {response.status_code}"
            )
        for endpoint in sorted(set(CSRF_EXEMPT) - set(not_refused)):
            problems.append(f"{endpoint} is no longer exempt: update CSRF_EXEMPT")
    # The exempt routes refuse a caller without their own credentials.
    for endpoint, (url, response) in not_refused.items():
        if endpoint in CSRF_EXEMPT and response.status_code not in (400, 401):
            problems.append(
                f"POST {url} without {CSRF_EXEMPT[endpoint]} answered {response.status_code}"
            )
    after = row_counts()
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    if changed:
        problems.append(f"rows changed by requests without a token: {changed}")
    return problems


# Rate limits


def _limit_count(limit: str) -> int:
    return int(limit.split()[0])


def check_rate_limits(world) -> list[str]:  # type: ignore[no-untyped-def]
    """Sign-in per account and per address, and the API per token, answer 429 past the limit."""
    app = world.app
    problems = []
    buyer = world.users["buyer"].email

    limiter.reset()
    client = app.test_client()
    for _ in range(_limit_count(app.config["LOGIN_LIMIT_PER_ACCOUNT"])):
        post_form(client, "/login", {"email": buyer, "password": "salah-salah-1"})
    response = post_form(client, "/login", {"email": buyer, "password": PASSWORD})
    if response.status_code != 429:
        problems.append(
            f"after {app.config['LOGIN_LIMIT_PER_ACCOUNT']} wrong passwords for one account, "
            f"the right one answered {response.status_code}, not 429"
        )

    limiter.reset()
    saved = app.config["LOGIN_LIMIT_PER_ADDRESS"], app.config.get("API_RATE_LIMIT")
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "3 per 15 minutes"
    app.config["API_RATE_LIMIT"] = "3 per minute"
    try:
        client = app.test_client()
        for n in range(3):
            post_form(client, "/login", {"email": f"tebak{n}@example.id", "password": "salah-1"})
        response = post_form(client, "/login", {"email": buyer, "password": PASSWORD})
        if response.status_code != 429:
            problems.append(
                "after 3 failed sign-ins from one address (limit 3), another account's sign-in "
                f"answered {response.status_code}, not 429"
            )
        headers = {"Authorization": f"Bearer {world.api_tokens['buyer']}"}
        answers = [client.get("/api/v1/products", headers=headers).status_code for _ in range(4)]
        if answers != [200, 200, 200, 429]:
            problems.append(f"four API requests with a limit of 3 answered {answers}")
    finally:
        app.config["LOGIN_LIMIT_PER_ADDRESS"], app.config["API_RATE_LIMIT"] = saved
        if saved[1] is None:
            del app.config["API_RATE_LIMIT"]
        limiter.reset()
    return problems
