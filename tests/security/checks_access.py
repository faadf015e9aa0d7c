"""Checks of who reaches what: one buyer's things are not another's, one facility's staff see
nothing of another facility, and no page or API answer a buyer can reach names a WBP.

Each check returns the problems it found, one sentence each; an empty list means none.
"""

from __future__ import annotations

import io
import re

import pypdf
from sqlalchemy import select

from catalog.models import Wbp
from orders.models import ApiToken, CartLine, Order, Quote
from shop.extensions import db

from ..helpers import csrf_token, visible_text
from ..test_access import attempt, routes, snapshot_counts, url_for_rule
from ..test_payment_pages import png_screenshot
from ..test_privacy import crawl
from .checks_http import row_counts

# One buyer's order, its documents and payments, their quote, their token: another buyer's
# requests for each, as (method, path, form data).
BUYER_OBJECTS: list[tuple[str, str, dict]] = [
    ("GET", "/orders/{reference}", {}),
    ("GET", "/orders/{reference}/invoice.pdf", {}),
    ("GET", "/orders/{reference}/delivery-note.pdf", {}),
    ("GET", "/orders/{reference}/pay", {}),
    ("GET", "/orders/{reference}/payments", {}),
    ("GET", "/orders/placed/{key}", {}),
    ("GET", "/quotes/{quote_id}", {}),
    ("POST", "/orders/{reference}/cancel", {"reason": "Salah pesan"}),
    ("POST", "/orders/{reference}/pay/card", {}),
    ("POST", "/orders/{reference}/pay/proof", {"proof": "png"}),
    ("POST", "/quotes/{quote_id}/accept", {"delivery_method": "pickup"}),
    ("POST", "/quotes/{quote_id}/decline", {}),
    ("POST", "/account/api-tokens/{token_id}/revoke", {}),
]


def check_buyer_isolation(world) -> list[str]:  # type: ignore[no-untyped-def]
    """Buyer two asks for buyer one's orders, invoices, quotes, cart lines, token and API
    orders: every answer is a 404 (or leaves the thing alone), and nothing changes."""
    buyer = world.users["buyer"]
    ids = world.ids
    db.session.add(CartLine(user_id=buyer.id, product_id=ids["product_id"], quantity=100))
    db.session.commit()
    before = row_counts()
    problems = []
    other = world.client("buyer_two")
    token = csrf_token(other, "/account/api-tokens")
    for method, path, data in BUYER_OBJECTS:
        url = path.format(**ids)
        if method == "GET":
            response = other.get(url)
        else:
            form = dict(data, csrf_token=token)
            if form.get("proof") == "png":
                form["proof"] = (io.BytesIO(png_screenshot()), "bukti.png")
            response = other.post(url, data=form, content_type="multipart/form-data")
        if response.status_code != 404:
            problems.append(f"{method} {url} by another buyer answered {response.status_code}")
    # A cart line is named by its product: removing "it" touches only one's own cart.
    other.post("/cart/remove", data={"csrf_token": token, "product_id": ids["product_id"]})
    for page, mark in (("/orders", ids["reference"]), ("/quotes", f"/quotes/{ids['quote_id']}")):
        if mark in other.get(page).text:
            problems.append(f"another buyer's {page} lists {mark}")
    api = {"Authorization": f"Bearer {world.api_tokens['buyer_two']}"}
    found = world.client().get(f"/api/v1/orders/{ids['reference']}", headers=api)
    if found.status_code != 404:
        problems.append(f"the API gave another buyer's order with {found.status_code}")
    listing = world.client().get("/api/v1/orders?per_page=100", headers=api)
    if ids["reference"] in listing.text:
        problems.append("the API lists another buyer's order")
    after = row_counts()
    if after != before:
        problems.append(
            f"rows changed: { {t: (before[t], after[t]) for t in before if before[t] != after[t]} }"
        )
    db.session.rollback()
    if db.session.get(ApiToken, ids["token_id"]).revoked:
        problems.append("another buyer revoked the buyer's API token")
    order = db.session.get(Order, ids["order_id"])
    quote = db.session.get(Quote, ids["quote_id"])
    if order.status.value != "placed" or quote.status.value != "requested":
        problems.append(f"the order is {order.status.value}, the quote {quote.status.value}")
    return problems


def check_facility_isolation(world) -> list[str]:  # type: ignore[no-untyped-def]
    """Magetan's staff try every back-office and admin route on Banjarnegara's objects.

    The same walk as tests/test_access.py (whose test runs it against the real app); here it
    is a check, so that the weakened builds can show the walk would catch a missing guard.
    """
    client = world.client("staff_magetan")
    token = csrf_token(client, "/account")
    before = snapshot_counts()
    problems = []
    for prefix in ("/office/", "/admin"):
        for rule, methods in routes(world.app, prefix):
            url = url_for_rule(rule, world.ids)
            for method in methods:
                if rule.endpoint == "office.index":
                    continue  # their own list of facilities
                try:
                    status = attempt(client, method, url, token).status_code
                except Exception as error:  # a weakened build may fail on its way in
                    status = f"an error ({type(error).__name__})"
                if status != 404:
                    problems.append(f"Magetan staff: {method} {url} answered {status}")
    if snapshot_counts() != before:
        problems.append("Magetan staff changed Banjarnegara's records")
    return problems


# No WBP identity where buyers look

BUYER_STARTS = [
    "/",
    "/products",
    "/facilities",
    "/impact",
    "/account",
    "/account/api-tokens",
    "/cart",
    "/orders",
    "/orders/{reference}",
    "/orders/{reference}/pay",
    "/orders/{reference}/payments",
    "/quotes",
    "/quotes/{quote_id}",
]


def _text(response) -> str:  # type: ignore[no-untyped-def]
    """What a person reads in a response: a page's text, a PDF's text, a JSON document."""
    if response.mimetype == "application/pdf":
        reader = pypdf.PdfReader(io.BytesIO(response.data))
        return " ".join(page.extract_text() for page in reader.pages)
    if response.mimetype == "text/html":
        return visible_text(response.text) + " " + response.text
    if response.is_json or response.mimetype.startswith("text/"):
        return response.text
    return ""


def wbp_identities() -> list[str]:
    """Every WBP's name, first name and registration number."""
    db.session.rollback()
    makers = db.session.execute(select(Wbp.name, Wbp.registration_number)).all()
    return sorted({v for name, number in makers for v in (name, name.split()[0], number)})


def check_no_wbp_identity(world) -> list[str]:  # type: ignore[no-untyped-def]
    """Crawls every page and document a signed-in buyer reaches (the crawl of
    tests/test_privacy.py, which walks the public pages as a visitor), and reads every API answer
    a buyer's token gets: no WBP's name or registration number in any of them."""
    secrets = wbp_identities()
    problems = []
    if not secrets:
        return ["no WBP to look for"]
    client = world.client("buyer")
    pages = crawl(client, [path.format(**world.ids) for path in BUYER_STARTS])
    if (
        not any(p.startswith("/products/") for p in pages)
        or f"/orders/{world.ids['reference']}/invoice.pdf" not in pages
    ):
        problems.append(f"the crawl did not reach product pages and invoices: {sorted(pages)[:20]}")
    api = {"Authorization": f"Bearer {world.api_tokens['buyer']}"}
    listing = world.client().get("/api/v1/products?per_page=100", headers=api)
    answers = {"/api/v1/products": listing}
    for item in listing.get_json().get("items", []):
        url = f"/api/v1/products/{item['slug']}"
        answers[url] = world.client().get(url, headers=api)
    answers["/api/v1/orders"] = world.client().get("/api/v1/orders", headers=api)
    url = f"/api/v1/orders/{world.ids['reference']}"
    answers[url] = world.client().get(url, headers=api)
    answers["/api/v1/openapi.json"] = world.client().get("/api/v1/openapi.json")
    for path, response in {**pages, **answers}.items():
        if response.status_code >= 500:
            problems.append(f"{path}: answered {response.status_code}")
        text = _text(response)
        for secret in secrets:
            if re.search(rf"\b{re.escape(secret)}\b", text):
                problems.append(f"{path} shows {secret!r}")
    return problems
