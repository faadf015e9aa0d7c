"""Checks of what people type and upload: script in text fields, SQL in query strings, fields
a form does not have, and files that are not what they claim to be.

Each check returns the problems it found, one sentence each; an empty list means none.
"""

from __future__ import annotations

import io
import re
from urllib.parse import quote, urlencode, urlsplit

import pypdf
from markupsafe import escape
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import undefer

from catalog.models import Product, ProductPhoto, Wbp
from orders.models import CartLine, Order, Quote
from payments.models import TransferProof
from shop.accounts.models import Role, User
from shop.extensions import db

from ..helpers import PASSWORD, post_form
from ..test_api import besek_order
from ..test_office_makers import plan
from ..test_office_products import BESEK_BESAR
from ..test_orders_web import add_to_cart, checkout_form
from ..test_payment_pages import pdf_receipt
from ..test_quotes import ask_for_quote
from .checks_http import row_counts

BESEK = "besek-bambu-banjarnegara"


def besek() -> Product:
    db.session.rollback()
    return db.session.scalar(select(Product).where(Product.slug == BESEK))


def registration(email: str, **fields: str) -> dict[str, str]:
    data = {
        "business_name": "Toko Ikan Asin Pak Darto",
        "contact_person": "Darto",
        "phone": "0812-3456-7891",
        "email": email,
        "address": "Kelurahan Semarang, Banjarnegara",
        "npwp": "",
        "password": PASSWORD,
        "confirm": PASSWORD,
    }
    data.update(fields)
    return data


def _wrote(step: str, response, problems: list[str], ok: int = 302) -> bool:  # type: ignore[no-untyped-def]
    """True when a set-up step was accepted; a refused one is a problem of the check itself."""
    if response.status_code == ok:
        return True
    problems.append(f"could not {step}: answered {response.status_code}")
    return False


# Script in text fields


def xss(n: int) -> str:
    """A payload that breaks out of text, of a quoted attribute, and runs script either way."""
    return f"<script>alert({n})</script>\"'><img src=x onerror=alert({n})>"


def short_xss(n: int) -> str:
    """For fields of at most 40 characters."""
    return f"\"'><img src=x onerror=alert({n})>"


RAW_MARKUP = re.compile(r"<script>alert\(\d+\)</script>|<img src=x onerror=alert\(\d+\)>")


def check_xss(world) -> list[str]:  # type: ignore[no-untyped-def]
    """Puts a payload into every free-text field a person can fill, then reads every page that
    shows it: the payload never appears as markup, and its escaped text does."""
    problems: list[str] = []
    payload = {n: xss(n) for n in range(1, 19)}
    payload[11] = short_xss(11)  # a batch code holds at most 40 characters
    office = world.office
    product = besek()

    # A buyer registers with the payload as their business, name and address...
    buyer = world.app.test_client()
    buyer.set_cookie("lang", "en")
    _wrote(
        "register",
        post_form(
            buyer,
            "/register",
            registration(
                "xss@example.id",
                business_name=payload[1],
                contact_person=payload[2],
                address=payload[3],
            ),
        ),
        problems,
    )
    # ...the facility's staff rename the besek and add a WBP and a batch...
    staff = world.client("staff_banjarnegara")
    edit = dict(
        BESEK_BESAR, programme_id=str(product.programme_id), name=payload[8], description=payload[9]
    )
    _wrote(
        "edit the product",
        post_form(staff, f"{office}/products/{product.id}/edit", edit),
        problems,
    )
    _wrote(
        "add a WBP",
        post_form(
            staff, f"{office}/wbp/new", {"registration_number": "XSS-1", "name": payload[10]}
        ),
        problems,
    )
    wbp_id = db.session.scalar(select(Wbp.id).where(Wbp.registration_number == "XSS-1"))
    planned = plan(staff, office, product.id, payload[11])
    batch_id = None
    if _wrote("plan a batch", planned, problems):
        batch_id = int(planned.headers["Location"].rstrip("/").split("/")[-1])
        batch = f"{office}/batches/{batch_id}"
        _wrote(
            "add a participant",
            post_form(
                staff,
                f"{batch}/participants",
                {"wbp": wbp_id, "contribution": "100"},
                form_page=batch,
            ),
            problems,
        )
    # ...the admin edits the facility...
    facility = {
        "name": payload[12],
        "kind": "rutan",
        "facility_class": "IIB",
        "city": payload[13],
        "province": "Jawa Tengah",
        "regional_office": payload[14],
        "timezone": "Asia/Jakarta",
    }
    _wrote(
        "edit the facility",
        post_form(world.client("admin"), f"/admin/facilities/{world.ids['facility_id']}", facility),
        problems,
    )
    # ...and the buyer orders with a note, asks for a quote and names an API token.
    add_to_cart(buyer, product.id, 100)
    checkout = checkout_form(
        buyer, note=payload[4], delivery_method="delivery", delivery_address=payload[5]
    )
    _wrote("check out", buyer.post("/checkout", data=checkout), problems)
    add_to_cart(buyer, product.id, 100)  # a cart line to show, too
    _wrote("ask for a quote", ask_for_quote(buyer, 5000, specification=payload[6]), problems)
    _wrote(
        "create an API token",
        post_form(buyer, "/account/api-tokens", {"name": payload[7]}),
        problems,
        ok=200,  # the page that shows the new token once
    )
    if problems:
        return problems

    db.session.rollback()
    xss_buyer = db.session.scalar(select(User).where(User.email == "xss@example.id"))
    order = db.session.scalar(select(Order).where(Order.buyer_id == xss_buyer.id))
    quote_id = db.session.scalar(select(Quote.id).where(Quote.buyer_id == xss_buyer.id))
    slug = world.ids["slug"]
    pages = [
        (buyer, "/account", [1, 3]),
        (buyer, "/account/api-tokens", [7]),
        (buyer, "/cart", [8]),
        (buyer, f"/orders/{order.reference}", [8]),
        (buyer, f"/quotes/{quote_id}", [6]),
        (buyer, f"/products/{slug}", [8, 9, 12]),
        (buyer, "/products?facility=rutan-banjarnegara", [8]),
        (buyer, "/facilities", [12, 13]),
        (buyer, "/facilities/rutan-banjarnegara", [8, 12, 13, 14]),
        (buyer, "/products?" + urlencode({"q": payload[15]}), [15]),
        (buyer, "/products?" + urlencode({"category": payload[16]}), [16]),
        (staff, f"{office}/", [12, 13, 14]),
        (staff, f"{office}/products", [8]),
        (staff, f"{office}/stock", [8]),
        (staff, f"{office}/orders", [1]),
        (staff, f"{office}/orders/{order.id}", [1, 2, 3, 4, 5, 8]),
        (staff, f"{office}/quotes", [1]),
        (staff, f"{office}/quotes/{quote_id}", [1, 2, 6]),
        (staff, f"{office}/wbp", [10]),
        (staff, f"{office}/wbp?" + urlencode({"q": payload[17]}), [17]),
        (staff, f"{office}/batches", [11]),
        (staff, f"{office}/batches/{batch_id}", [10, 11]),
        (world.client("finance_banjarnegara"), f"{office}/finance/wbp/{wbp_id}", [10]),
        (world.client("admin"), "/admin/facilities", [12, 13, 14]),
        (world.client("admin"), f"/admin/users/{xss_buyer.id}", [2]),
        (world.client("admin"), "/admin/users?" + urlencode({"q": payload[18]}), [18]),
    ]
    for client, url, shown in pages:
        response = client.get(url)
        body = response.text
        if response.status_code >= 500:
            problems.append(f"{url}: answered {response.status_code}")
        if found := RAW_MARKUP.findall(body):
            problems.append(f"{url}: the payload is markup on the page: {sorted(set(found))}")
        for n in shown:
            if str(escape(payload[n])) not in body:
                problems.append(f"{url}: payload {n} is not shown as escaped text")
    return problems


# SQL in query strings

INJECTIONS = [
    "' OR 1=1 --",
    "' OR '1'='1",
    "'; DROP TABLE product; --",
    "%' UNION SELECT name, registration_number FROM wbp --",
    "1) OR (1=1",
    "besek\x00' OR 1=1 --",
    "x' OR 1=1 -- " * 400,
]

# Every filter and query parameter of the storefront, the buyer's pages, the API and the office
# lists, as someone who may open the list.
QUERY_PARAMETERS: list[tuple[str | None, str, list[str]]] = [
    (None, "/products", ["q", "facility", "category", "province", "in_stock", "page"]),
    (None, "/facilities", ["province", "page"]),
    (None, "/products/{slug}", ["quantity"]),
    ("buyer", "/orders", ["page"]),
    ("buyer", "/quotes", ["page"]),
    ("buyer", "/api/v1/products", ["q", "facility", "category", "in_stock", "page", "per_page"]),
    ("buyer", "/api/v1/orders", ["page", "per_page"]),
    ("staff_banjarnegara", "/office/{facility_id}/orders", ["q", "status", "page"]),
    ("staff_banjarnegara", "/office/{facility_id}/wbp", ["q", "status", "page"]),
    ("staff_banjarnegara", "/office/{facility_id}/quotes", ["status", "page"]),
    (
        "finance_banjarnegara",
        "/office/{facility_id}/finance/entries",
        ["order", "batch", "wbp", "account", "from", "to", "page"],
    ),
    ("finance_banjarnegara", "/office/{facility_id}/finance/balances", ["status", "page"]),
    ("finance_banjarnegara", "/office/{facility_id}/finance/report", ["month"]),
    ("admin", "/admin/users", ["q", "page"]),
    ("admin", "/admin/audit", ["facility", "page"]),
]
# Values that end up in a path.
PATH_PARAMETERS: list[tuple[str | None, str]] = [
    (None, "/products/{}"),
    (None, "/facilities/{}"),
    ("buyer", "/orders/{}"),
    ("buyer", "/api/v1/products/{}"),
    ("buyer", "/api/v1/orders/{}"),
]


def _results(response) -> set[str]:  # type: ignore[no-untyped-def]
    """What a list answered: the items of a JSON list, or the paths a page links to."""
    if response.is_json:
        body = response.get_json(silent=True) or {}
        items = body.get("items", []) if isinstance(body, dict) else []
        return {repr(item) for item in items}
    return {
        urlsplit(href.replace("&amp;", "&")).path
        for href in re.findall(r'(?:href|src|action)="([^"]*)"', response.text)
    }


def _words(value: str) -> str:
    """The search a person would have typed: the words alone, without the SQL around them."""
    return " ".join(re.findall(r"[A-Za-z0-9]+", value))[:60]


def check_sql_injection(world) -> list[str]:  # type: ignore[no-untyped-def]
    """Sends SQL in every query parameter and path value: never a 5xx, never more results than
    a search for the same words, and every table still holds what it held."""
    problems = []
    before = row_counts()
    api = {"Authorization": f"Bearer {world.api_tokens['buyer']}"}
    normal: dict[tuple[str, str, str], object] = {}

    for who, path, names in QUERY_PARAMETERS:
        client = world.client(who)
        url = path.format(**world.ids)
        headers = api if url.startswith("/api/") else {}
        for name in names:
            for value in INJECTIONS:
                attacked = client.get(url, query_string={name: value}, headers=headers)
                where = f"{url}?{name}={value[:40]!r}"
                if attacked.status_code >= 500:
                    problems.append(f"{where}: answered {attacked.status_code}")
                    continue
                if attacked.status_code >= 400:
                    continue
                key = (url, name, _words(value))
                if key not in normal:
                    normal[key] = client.get(url, query_string={name: key[2]}, headers=headers)
                baseline = normal[key]
                if baseline.status_code >= 400:  # type: ignore[attr-defined]
                    problems.append(f"{where}: accepted, while the words alone are refused")
                elif extra := _results(attacked) - _results(baseline):
                    problems.append(f"{where}: more results than a search: {sorted(extra)[:5]}")
    for who, path in PATH_PARAMETERS:
        client = world.client(who)
        headers = api if path.startswith("/api/") else {}
        for value in INJECTIONS:
            url = path.format(quote(value, safe=""))
            response = client.get(url, headers=headers)
            if response.status_code != 404:
                problems.append(f"{path.format(value[:40])!r}: answered {response.status_code}")
    # A NUL byte in a form field too: PostgreSQL cannot store it, so it must be refused first.
    for client, url, data in (
        (world.app.test_client(), "/register", registration("nul@example.id", address="Jl.\x00")),
        (
            world.client("buyer"),
            f"/quotes/new?product={BESEK}",
            {"quantity": "100", "specification": "a\x00"},
        ),
    ):
        response = post_form(client, url, data)
        if response.status_code != 400:
            problems.append(
                f"POST {url} with a NUL byte in a field answered {response.status_code}"
            )
    after = row_counts()
    if after != before:
        changed = {t: (before.get(t), after.get(t)) for t in before.keys() | after.keys()}
        problems.append(f"tables changed: { {t: v for t, v in changed.items() if v[0] != v[1]} }")
    return problems


# Fields a form does not have

EXTRA_FIELDS = {
    "id": "1",
    "price": "1",
    "unit_price": "1",
    "base_price": "1",
    "status": "paid",
    "total": "1",
    "subtotal": "1",
    "paid": "y",
    "role": "admin",
    "is_admin": "y",
    "active": "y",
    "slug": "diambil-alih",
}


def check_mass_assignment(world) -> list[str]:  # type: ignore[no-untyped-def]
    """Posts fields a form does not have (price, status, role, facility, buyer...) to
    registration, cart, checkout, quote request, product edit and the API's order creation:
    every stored value is the one the server decides."""
    problems: list[str] = []
    product = besek()
    extra = dict(
        EXTRA_FIELDS,
        facility_id=str(world.facilities["magetan"]),
        buyer_id=str(world.users["buyer_two"].id),
        user_id=str(world.users["admin"].id),
    )

    # Registration: a buyer account, nothing more.
    visitor = world.app.test_client()
    response = post_form(visitor, "/register", dict(extra, **registration("darto@example.id")))
    if _wrote("register", response, problems):
        db.session.rollback()
        user = db.session.scalar(select(User).where(User.email == "darto@example.id"))
        grants = [(g.role, g.facility_id) for g in user.grants]
        if grants != [(Role.BUYER, None)]:
            problems.append(f"registration with extra fields gave the roles {grants}")
        if not user.active or user.buyer_profile.business_name != "Toko Ikan Asin Pak Darto":
            problems.append("registration with extra fields changed the account's details")

    # Cart and checkout: the cart line is the buyer's, the order is priced, placed and owned as
    # the server decides.
    buyer = world.client("buyer")
    add = dict(extra, product_id=str(product.id), quantity="100")
    post_form(buyer, "/cart", add, form_page=f"/products/{BESEK}")
    db.session.rollback()
    lines = [
        (line.user_id, line.quantity)
        for line in db.session.scalars(select(CartLine).where(CartLine.product_id == product.id))
    ]
    if lines != [(world.users["buyer"].id, 100)]:
        problems.append(f"adding to the cart with extra fields stored the lines {lines}")
    known = set(db.session.scalars(select(Order.id)))
    form = buyer.get("/checkout").text
    if "checkout_key" not in form:
        problems.append("after adding to the cart with extra fields, checkout has nothing to place")
    elif _wrote(
        "check out", buyer.post("/checkout", data=dict(extra, **checkout_form(buyer))), problems
    ):
        db.session.rollback()
        [order] = db.session.scalars(select(Order).where(Order.id.not_in(known))).all()
        expected = (
            world.users["buyer"].id,
            product.facility_id,
            "placed",
            100 * product.base_price,
            product.base_price,
        )
        stored = (
            order.buyer_id,
            order.facility_id,
            order.status.value,
            order.subtotal,
            order.lines[0].unit_price,
        )
        if stored != expected:
            problems.append(f"checkout with extra fields stored {stored}, not {expected}")

    # A quote request: the buyer asks; only the facility answers with a price.
    response = post_form(
        buyer,
        f"/quotes/new?product={BESEK}",
        dict(extra, quantity="5000", specification="Besek ukuran besar"),
    )
    if _wrote("ask for a quote", response, problems):
        db.session.rollback()
        quote = db.session.scalars(select(Quote).order_by(Quote.id.desc())).first()
        stored = (quote.buyer_id, quote.status.value, quote.unit_price, quote.facility_id)
        expected = (world.users["buyer"].id, "requested", None, product.facility_id)
        if stored != expected:
            problems.append(f"a quote request with extra fields stored {stored}, not {expected}")

    # Product edit: the facility's staff cannot move the product or rename its address.
    staff = world.client("staff_banjarnegara")
    edit = dict(extra, **BESEK_BESAR, programme_id=str(product.programme_id))
    response = post_form(staff, f"{world.office}/products/{product.id}/edit", edit)
    if _wrote("edit the product", response, problems):
        db.session.rollback()
        edited = db.session.get(Product, product.id)
        if (edited.facility_id, edited.slug) != (product.facility_id, BESEK):
            problems.append(
                f"product edit with extra fields moved it to facility {edited.facility_id}, "
                f"address {edited.slug}"
            )

    # The API: a buyer's system sends a price, a status and another buyer.
    body = besek_order(100, idempotency_key="massa-uji-toko-0001")
    body["lines"][0].update(unit_price=1, price=1)
    body.update({k: v for k, v in extra.items() if k not in ("active", "slug")})
    response = world.client().post(
        "/api/v1/orders",
        json=body,
        headers={"Authorization": f"Bearer {world.api_tokens['buyer']}"},
    )
    if response.status_code != 201:
        problems.append(
            f"could not order through the API: answered {response.status_code} {response.text}"
        )
    else:
        db.session.rollback()
        [reference] = [o["reference"] for o in response.get_json()["orders"]]
        order = db.session.scalar(select(Order).where(Order.reference == reference))
        stored = (order.buyer_id, order.status.value, order.subtotal, order.lines[0].unit_price)
        edited = db.session.get(Product, product.id)
        expected = (world.users["buyer"].id, "placed", 100 * edited.base_price, edited.base_price)
        if stored != expected:
            problems.append(f"an API order with extra fields stored {stored}, not {expected}")
    return problems


# Uploads

SCRIPT = b"<html><body><script>alert(document.cookie)</script></body></html>"
PHP = b"<?php system($_GET['c']); ?>"
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.domain)</script><rect width='10' height='10'/></svg>"
)
PAYLOADS = (b"<script", b"<?php", b"<html", b"<svg")
PDF_PAYLOADS = (b"/javascript", b"/js", b"/launch")


def picture(fmt: str, size: tuple[int, int] = (320, 240), **options) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    Image.new("RGB", size, (196, 154, 92)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pdf_with_javascript() -> bytes:
    """A transfer receipt that runs JavaScript when it is opened (an open action and a named
    document script, the two ways readers run a script unasked)."""
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(pdf_receipt()))
    action = writer._add_object(
        DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject("app.launchURL('https://example.invalid/');"),
            }
        )
    )
    scripts = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("a"), action])})
    root = writer._root_object
    root[NameObject("/OpenAction")] = action
    root[NameObject("/Names")] = DictionaryObject({NameObject("/JavaScript"): scripts})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def hostile_files(max_bytes: int) -> dict[str, tuple[bytes, str]]:
    """Name -> (content, file name). None of them may be kept with its payload."""
    side = int((max_bytes / 3) ** 0.5) + 50  # an uncompressed RGB picture just over the limit
    return {
        "JPEG with HTML appended": (picture("JPEG") + SCRIPT, "besek.jpg"),
        "PNG with PHP appended": (picture("PNG") + PHP, "besek.png"),
        "HTML named .jpg": (SCRIPT, "besek.jpg"),
        "SVG with script": (SVG, "besek.svg"),
        "SVG named .png": (SVG, "besek.png"),
        "a PNG over the size limit": (picture("PNG", (side, side), compress_level=0), "besar.png"),
    }


def _kept(model, since: int) -> list:  # type: ignore[no-untyped-def]
    db.session.rollback()
    return list(
        db.session.scalars(
            select(model).where(model.id > since).options(undefer(model.data)).order_by(model.id)
        )
    )


def _last_id(model) -> int:  # type: ignore[no-untyped-def]
    db.session.rollback()
    return max(db.session.scalars(select(model.id)), default=0)


def _upload_problems(client, url, form_page, field, files, model, served):  # type: ignore[no-untyped-def]
    problems = []
    for name, (content, filename) in files.items():
        since = _last_id(model)
        response = post_form(
            client,
            url,
            {field: (io.BytesIO(content), filename)},
            form_page=form_page,
            content_type="multipart/form-data",
        )
        kept = _kept(model, since)
        if response.status_code >= 500:
            problems.append(f"{name}: answered {response.status_code}")
        if response.status_code >= 400 and kept:
            problems.append(f"{name}: refused with {response.status_code}, yet kept")
        for row in kept:
            markers = PAYLOADS + (PDF_PAYLOADS if row.content_type == "application/pdf" else ())
            if found := [p.decode() for p in markers if p in row.data.lower()]:
                problems.append(f"{name}: kept as {row.content_type} with its payload {found}")
            if row.content_type not in ("image/jpeg", "image/png", "image/webp", "application/pdf"):
                problems.append(f"{name}: kept as {row.content_type}")
            if served:
                shown = client.get(served(row))
                if shown.headers.get("X-Content-Type-Options") != "nosniff":
                    problems.append(f"{name}: served without nosniff")
                if not shown.mimetype.startswith("image/") and shown.mimetype != "application/pdf":
                    problems.append(f"{name}: served as {shown.mimetype}")
    return problems


def check_uploads(world) -> list[str]:  # type: ignore[no-untyped-def]
    """Hostile product photos (staff) and transfer proofs (buyer): each is refused, or kept
    re-encoded without its payload and served as an image that is never sniffed."""
    app = world.app
    product_id = world.ids["product_id"]
    photos = f"{world.office}/products/{product_id}/photos"
    problems = _upload_problems(
        world.client("staff_banjarnegara"),
        photos,
        photos,
        "photo",
        hostile_files(app.config["MAX_PHOTO_BYTES"]),
        ProductPhoto,
        lambda row: f"/photos/{row.id}",
    )
    reference = world.ids["reference"]
    proofs = hostile_files(4 * 2**20)
    proofs["PDF that runs JavaScript"] = (pdf_with_javascript(), "bukti-transfer.pdf")
    proofs["HTML named .pdf"] = (b"%PDF-1.7\n" + SCRIPT, "bukti-transfer.pdf")
    finance = world.client("finance_banjarnegara")
    order_id = world.ids["order_id"]
    problems += [
        f"transfer proof, {p}"
        for p in _upload_problems(
            world.client("buyer"),
            f"/orders/{reference}/pay/proof",
            f"/orders/{reference}/pay",
            "proof",
            proofs,
            TransferProof,
            None,
        )
    ]
    # What staff open: never shown inline unless it is a picture, never sniffed.
    for proof in _kept(TransferProof, 0):
        url = f"{world.office}/orders/{order_id}/proofs/{proof.id}"
        shown = finance.get(url)
        inline = shown.headers.get("Content-Disposition", "").startswith("inline")
        if shown.headers.get("X-Content-Type-Options") != "nosniff":
            problems.append(f"{url}: served without nosniff")
        if inline and not shown.mimetype.startswith("image/"):
            problems.append(f"{url}: {shown.mimetype} shown inline")
    return problems
