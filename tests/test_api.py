"""The JSON API: a buyer's token, the catalogue without names, and orders placed from a buyer's own
system under the same rules as the pages (besek from Rutan Banjarnegara, 1,600 pieces)."""

from __future__ import annotations

import hashlib
import re

import pytest
from openapi_spec_validator import validate
from sqlalchemy import func, select

from catalog.models import Product, Wbp
from catalog.queries import stock_on_hand
from orders.api import OrderBody, parse_order_body
from orders.api_tokens import create_token, revoke_token
from orders.models import ApiToken, Invoice, LineAllocation, Order, OrderLine
from orders.openapi import document
from shop.audit import AuditEntry
from shop.extensions import db, limiter
from shop.mail import OutboxMessage

from .helpers import login, post_form, visible_text

BESEK = "besek-bambu-banjarnegara"
TOKEN = re.compile(r"kb_[A-Za-z0-9_-]{43}")


@pytest.fixture(autouse=True)
def _fresh_limits():
    limiter.reset()


def token_for(app, user, name="kasir toko") -> str:
    with app.test_request_context():
        return create_token(user, name).plain


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def besek_order(quantity=1600, **overrides):
    body = {
        "lines": [{"product": BESEK, "quantity": quantity}],
        "delivery_method": "pickup",
        "payment_method": "bank_transfer",
    }
    body.update(overrides)
    return body


def besek_id() -> int:
    return db.session.scalar(select(Product.id).where(Product.slug == BESEK))


def written_rows() -> dict[str, int]:
    """Everything placing an order writes: none of it may change when an order is refused."""
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Order, OrderLine, LineAllocation, Invoice, OutboxMessage, AuditEntry)
    }


# --- Tokens on the buyer's page ------------------------------------------------------------------


def test_a_buyer_creates_a_token_sees_it_once_and_only_its_hash_is_kept(client, users):
    login(client, "buyer@example.id")
    client.set_cookie("lang", "en")
    account = client.get("/account").get_data(as_text=True)
    assert 'href="/account/api-tokens"' in account
    assert client.get("/account/api-tokens").status_code == 200

    response = post_form(client, "/account/api-tokens", {"name": "Kasir toko ikan asin"})

    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    token = TOKEN.search(response.get_data(as_text=True)).group(0)
    assert "shown only this once" in visible_text(response.get_data(as_text=True))
    row = db.session.scalar(select(ApiToken))
    assert row.name == "Kasir toko ikan asin"
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.prefix == token[:11]
    assert token not in {str(value) for value in row.__dict__.values()}
    assert token not in str(db.session.scalars(select(AuditEntry.changes)).all())
    # Shown once: the list shows the prefix only.
    again = client.get("/account/api-tokens").get_data(as_text=True)
    assert token not in again
    assert row.prefix in again
    # And it opens the API.
    assert client.get("/api/v1/products", headers=bearer(token)).status_code == 200


def test_a_token_needs_a_name_and_a_refused_form_creates_nothing(client, users):
    login(client, "buyer@example.id")
    response = post_form(client, "/account/api-tokens", {"name": ""})
    assert response.status_code == 422
    assert db.session.scalar(select(func.count(ApiToken.id))) == 0


def test_a_revoked_token_no_longer_opens_the_api(client, users):
    login(client, "buyer@example.id")
    page = post_form(client, "/account/api-tokens", {"name": "Spreadsheet stok"})
    token = TOKEN.search(page.get_data(as_text=True)).group(0)
    kept = token_for(client.application, users["buyer"], "kasir")
    row = db.session.scalar(select(ApiToken).where(ApiToken.name == "Spreadsheet stok"))
    assert client.get("/api/v1/products", headers=bearer(token)).status_code == 200

    response = post_form(
        client, f"/account/api-tokens/{row.id}/revoke", form_page="/account/api-tokens"
    )

    assert response.status_code == 302
    db.session.refresh(row)
    assert row.revoked
    assert client.get("/api/v1/products", headers=bearer(token)).status_code == 401
    assert client.get("/api/v1/products", headers=bearer(kept)).status_code == 200


def test_another_buyers_token_cannot_be_revoked_and_staff_have_no_token_page(client, app, users):
    other = app.test_client()
    login(other, "buyer.two@example.id")
    post_form(other, "/account/api-tokens", {"name": "Milik pembeli lain"})
    row = db.session.scalar(select(ApiToken))
    login(client, "buyer@example.id")
    response = post_form(
        client, f"/account/api-tokens/{row.id}/revoke", form_page="/account/api-tokens"
    )
    assert response.status_code == 404
    db.session.refresh(row)
    assert not row.revoked

    staff = app.test_client()
    login(staff, "staff.banjarnegara@example.id")
    assert staff.get("/account/api-tokens").status_code == 404


# --- Who may call the API ------------------------------------------------------------------------


def test_missing_unknown_revoked_and_non_buyer_tokens_get_a_401_with_a_challenge(
    app, client, users
):
    revoked = token_for(app, users["buyer"], "lama")
    with app.test_request_context():
        revoke_token(db.session.scalar(select(ApiToken)))
    staff_token = token_for(app, users["staff_banjarnegara"], "bukan pembeli")
    valid = token_for(app, users["buyer"])
    cases = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {valid}"},
        "unknown": bearer("kb_" + "A" * 43),
        "revoked": bearer(revoked),
        "not a buyer": bearer(staff_token),
    }
    for case, headers in cases.items():
        for method, path in (("GET", "/api/v1/products"), ("POST", "/api/v1/orders")):
            response = client.open(path, method=method, headers=headers, json=besek_order())
            assert response.status_code == 401, case
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), case
            assert response.json["error"]["code"] == 401, case
    assert written_rows()["customer_order"] == 0
    assert client.get("/api/v1/products", headers=bearer(valid)).status_code == 200


def test_too_many_requests_with_one_token_get_a_429_and_other_tokens_go_on(
    app, client, users, monkeypatch
):
    monkeypatch.setitem(app.config, "API_RATE_LIMIT", "3 per minute")
    busy = token_for(app, users["buyer"], "sibuk")
    other = token_for(app, users["buyer_two"], "lain")
    for _ in range(3):
        assert client.get("/api/v1/products", headers=bearer(busy)).status_code == 200
    response = client.get("/api/v1/orders", headers=bearer(busy))
    assert response.status_code == 429
    assert response.json["error"]["code"] == 429
    assert client.get("/api/v1/products", headers=bearer(other)).status_code == 200


# --- The catalogue -------------------------------------------------------------------------------


def test_products_show_counts_of_makers_and_never_a_name_or_registration_number(app, client, users):
    token = token_for(app, users["buyer"])
    listing = client.get("/api/v1/products?per_page=100", headers=bearer(token))
    assert listing.status_code == 200
    slugs = [item["slug"] for item in listing.json["items"]]
    details = [client.get(f"/api/v1/products/{slug}", headers=bearer(token)) for slug in slugs]
    besek = next(item for item in listing.json["items"] if item["slug"] == BESEK)
    assert besek["makers_count"] == 6
    assert besek["programme"] == "Besek bambu"
    assert besek["base_price"] == 125
    assert besek["stock_on_hand"] == 1600
    assert besek["price_tiers"] == [
        {"min_quantity": 5000, "unit_price": 115},
        {"min_quantity": 10000, "unit_price": 110},
    ]
    assert besek["facility"]["slug"] == "rutan-banjarnegara"
    bodies = [listing.get_data(as_text=True)] + [d.get_data(as_text=True) for d in details]
    makers = db.session.execute(select(Wbp.name, Wbp.registration_number)).all()
    assert makers
    for name, registration_number in makers:
        for body in bodies:
            assert name not in body
            assert registration_number not in body


def test_product_filters_and_their_refusals(app, client, users):
    token = token_for(app, users["buyer"])
    crafts = client.get(
        "/api/v1/products?category=crafts&facility=rutan-banjarnegara&in_stock=true&q=besek",
        headers=bearer(token),
    )
    assert [item["slug"] for item in crafts.json["items"]] == [BESEK]
    one = client.get("/api/v1/products?per_page=1&page=2", headers=bearer(token))
    assert one.json["page"] == 2
    assert len(one.json["items"]) == 1
    for query in (
        "per_page=0",
        "per_page=101",
        "page=0",
        "page=abc",
        "category=shoes",
        "in_stock=maybe",
        "facility=Rutan%20Banjarnegara",
        "q=" + "besek" * 21,
    ):
        response = client.get(f"/api/v1/products?{query}", headers=bearer(token))
        assert response.status_code == 400, query
        assert response.json["error"]["code"] == 400, query
    for query in ("facility=rutan-nusakambangan", "page=99"):
        response = client.get(f"/api/v1/products?{query}", headers=bearer(token))
        assert response.status_code == 404, query
        assert response.json["error"]["code"] == 404, query
    assert client.get("/api/v1/products/kursi-plastik", headers=bearer(token)).status_code == 404


def test_an_inactive_product_is_not_found(app, client, users):
    token = token_for(app, users["buyer"])
    db.session.get(Product, besek_id()).active = False
    db.session.commit()
    response = client.get(f"/api/v1/products/{BESEK}", headers=bearer(token))
    assert response.status_code == 404
    assert response.json["error"]["code"] == 404


# --- Orders --------------------------------------------------------------------------------------


def test_a_salted_fish_seller_orders_1600_besek_through_the_api(app, client, users):
    token = token_for(app, users["buyer"])
    body = besek_order(idempotency_key="toko-ikan-asin-2026-10-17")
    # A price sent by the client is never read, nor is anything the document does not name.
    body["lines"][0]["unit_price"] = 1
    body.update(price=1, subtotal=1, discount={"percent": 100})

    response = client.post("/api/v1/orders", json=body, headers=bearer(token))

    assert response.status_code == 201
    (placed,) = response.json["orders"]
    assert placed["total"] == 200_000
    assert placed["subtotal"] == 200_000
    assert placed["delivery_fee"] == 0
    assert placed["lines"][0] == {
        "product": BESEK,
        "name": "Besek bambu",
        "quantity": 1600,
        "unit_price": 125,
        "shipped": 0,
        "made_to_order": 0,
        "made_to_order_days": None,
        "cancelled": False,
    }
    assert placed["facility"]["name"] == "Rutan Kelas IIB Banjarnegara"
    assert placed["status"] == "placed"
    assert placed["invoice_number"].startswith("INV/")
    assert stock_on_hand(besek_id()) == 0
    order = db.session.scalar(select(Order))
    assert (order.reference, order.subtotal, order.buyer_id) == (
        placed["reference"],
        200_000,
        users["buyer"].id,
    )
    # The buyer reads it back, alone in their list.
    own = client.get(f"/api/v1/orders/{order.reference}", headers=bearer(token))
    assert own.json == placed
    listing = client.get("/api/v1/orders", headers=bearer(token)).json
    assert [o["reference"] for o in listing["items"]] == [order.reference]
    assert listing["total"] == 1


def test_the_same_idempotency_key_again_returns_the_same_orders(app, client, users):
    token = token_for(app, users["buyer"])
    key = "toko-ikan-asin-2026-10-17"
    first = client.post("/api/v1/orders", json=besek_order(200), headers=bearer(token))
    assert first.status_code == 201
    keyed = client.post(
        "/api/v1/orders", json=besek_order(200, idempotency_key=key), headers=bearer(token)
    )
    before = written_rows()

    again = client.post(
        "/api/v1/orders",
        json=besek_order(200),
        headers={**bearer(token), "Idempotency-Key": key},
    )

    assert keyed.status_code == 201
    assert again.status_code == 200
    assert again.json == keyed.json
    assert written_rows() == before
    assert stock_on_hand(besek_id()) == 1200


def test_another_buyer_uses_the_same_key_and_gets_their_own_order(app, client, users):
    key = "pesanan-0000000001"
    first = token_for(app, users["buyer"])
    second = token_for(app, users["buyer_two"])
    mine = client.post(
        "/api/v1/orders", json=besek_order(200, idempotency_key=key), headers=bearer(first)
    )
    theirs = client.post(
        "/api/v1/orders", json=besek_order(200, idempotency_key=key), headers=bearer(second)
    )
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json["orders"][0]["reference"] != theirs.json["orders"][0]["reference"]


def test_another_buyers_order_is_a_404(app, client, users):
    mine = token_for(app, users["buyer"])
    theirs = token_for(app, users["buyer_two"])
    placed = client.post("/api/v1/orders", json=besek_order(200), headers=bearer(mine))
    reference = placed.json["orders"][0]["reference"]

    response = client.get(f"/api/v1/orders/{reference}", headers=bearer(theirs))

    assert response.status_code == 404
    assert response.json["error"]["code"] == 404
    assert client.get("/api/v1/orders", headers=bearer(theirs)).json["items"] == []


def test_stock_short_is_a_409_with_the_made_to_order_offer_and_nothing_written(app, client, users):
    token = token_for(app, users["buyer"])
    before = written_rows()

    response = client.post("/api/v1/orders", json=besek_order(1700), headers=bearer(token))

    assert response.status_code == 409
    (line,) = response.json["error"]["lines"]
    assert line["product"] == BESEK
    assert (line["on_hand"], line["made_to_order"]) == (1600, 100)
    assert line["made_to_order_days"] >= 1
    assert response.json["error"]["details"]
    assert written_rows() == before
    assert stock_on_hand(besek_id()) == 1600
    # Accepting the offer places it: 1,600 from stock, 100 made to order.
    accepted = client.post(
        "/api/v1/orders",
        json=besek_order(1700, accept_made_to_order=True),
        headers=bearer(token),
    )
    assert accepted.status_code == 201
    assert accepted.json["orders"][0]["lines"][0]["made_to_order"] == 100


def fifty_one_lines() -> list[dict[str, object]]:
    return [{"product": f"besek-{n}", "quantity": 100} for n in range(51)]


BAD_ORDERS = {
    "not JSON": "1600 besek, tolong",
    "a list, not an object": [besek_order()],
    "lines not a list": besek_order() | {"lines": {"product": BESEK, "quantity": 1600}},
    "no lines": besek_order() | {"lines": []},
    "quantity as text": besek_order("1600"),
    "quantity zero": besek_order(0),
    "quantity negative": besek_order(-20),
    "quantity not whole": besek_order(1600.5),
    "quantity true": besek_order(True),
    "quantity above 1,000,000": besek_order(1_000_020),
    "below the minimum order": besek_order(80),
    "not a whole pack (kodi)": besek_order(1610),
    "unknown product": besek_order() | {"lines": [{"product": "besek-emas", "quantity": 100}]},
    "product not a slug": besek_order() | {"lines": [{"product": 7, "quantity": 100}]},
    "the same product twice": besek_order()
    | {"lines": [{"product": BESEK, "quantity": 100}, {"product": BESEK, "quantity": 200}]},
    "more than 50 lines": besek_order() | {"lines": fifty_one_lines()},
    "delivery without an address": besek_order(delivery_method="delivery", delivery_address=" "),
    "unknown delivery method": besek_order(delivery_method="drone"),
    "card payment": besek_order(payment_method="card"),
    "accept not a boolean": besek_order(accept_made_to_order="ya"),
    "idempotency key too short": besek_order(idempotency_key="pendek"),
    "address with NUL": besek_order(delivery_method="delivery", delivery_address="Jl.\x00 Raya"),
}


@pytest.mark.parametrize("case", list(BAD_ORDERS))
def test_a_bad_order_is_a_422_with_details_and_writes_nothing(app, client, users, case):
    token = token_for(app, users["buyer"])
    body = BAD_ORDERS[case]
    before = written_rows()

    if isinstance(body, str):
        response = client.post(
            "/api/v1/orders", data=body, content_type="application/json", headers=bearer(token)
        )
    else:
        response = client.post("/api/v1/orders", json=body, headers=bearer(token))

    assert response.status_code == 422
    assert response.is_json
    assert response.json["error"]["code"] == 422
    assert response.json["error"]["details"]
    assert written_rows() == before
    assert stock_on_hand(besek_id()) == 1600


def test_an_inactive_product_cannot_be_ordered(app, client, users):
    token = token_for(app, users["buyer"])
    db.session.get(Product, besek_id()).active = False
    db.session.commit()
    before = written_rows()
    response = client.post("/api/v1/orders", json=besek_order(), headers=bearer(token))
    assert response.status_code == 422
    assert BESEK in " ".join(response.json["error"]["details"])
    assert written_rows() == before


def test_the_header_and_body_keys_must_agree(app, client, users):
    token = token_for(app, users["buyer"])
    response = client.post(
        "/api/v1/orders",
        json=besek_order(idempotency_key="toko-ikan-asin-2026-10-17"),
        headers={**bearer(token), "Idempotency-Key": "toko-ikan-asin-2026-10-18"},
    )
    assert response.status_code == 422
    assert written_rows()["customer_order"] == 0


def test_the_order_request_is_read_without_a_database():
    parsed = parse_order_body(
        besek_order(1600.0, note="Ambil Jumat pagi", idempotency_key="k" * 16), None
    )
    assert isinstance(parsed, OrderBody)
    assert parsed.lines == {BESEK: 1600}
    assert parsed.note == "Ambil Jumat pagi"
    problems = parse_order_body(
        {"lines": [{"product": BESEK, "quantity": 0}, "besek"], "delivery_method": "kapal"}, None
    )
    assert isinstance(problems, list)
    assert len(problems) == 4  # the quantity, the second line, the delivery, the payment


# --- The document --------------------------------------------------------------------------------


def test_the_openapi_document_is_valid_public_and_names_every_route(app, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    served = response.json
    validate(served)
    assert served == document()
    assert served["openapi"].startswith("3.")
    assert served["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    routes = {
        (method.lower(), re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule[len("/api/v1") :]))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(method, path) for path, item in served["paths"].items() for method in item}
    assert routes == documented
    for path, item in served["paths"].items():
        for method, operation in item.items():
            if operation.get("security") == []:
                continue
            for status in ("401", "429"):
                assert status in operation["responses"], (method, path, status)
