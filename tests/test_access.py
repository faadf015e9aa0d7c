"""Each role can do exactly its own things: every back-office and admin route, tried by everyone.

The routes are read from the app's URL map, so a route added later is covered without editing
this file; the ids put into the URLs all belong to Rutan Banjarnegara.
"""

from datetime import date

import pytest
from sqlalchemy import select

from catalog.models import Batch, Product, ProductPhoto, Programme, Wbp
from shop.accounts.models import User
from shop.extensions import db

from .helpers import csrf_token, login


@pytest.fixture
def banjarnegara_ids(users, facilities):
    from orders.checkout import place_orders
    from orders.models import Quote

    from .orders_fixtures import checkout

    besek = db.session.scalar(select(Product).where(Product.slug == "besek-bambu-banjarnegara"))
    [order] = place_orders(users["buyer"], checkout({besek.id: 200}))
    quote = Quote(
        buyer_id=users["buyer"].id,
        facility_id=besek.facility_id,
        product_id=besek.id,
        quantity=5000,
        specification="Besek ukuran besar",
    )
    db.session.add(quote)
    from finance.payouts import plan_run
    from payments.models import TransferProof

    proof = TransferProof(order_id=order.id, content_type="image/png", data=b"\x89PNG")
    db.session.add(proof)
    db.session.commit()
    run = plan_run(besek.facility_id, date(2026, 11, 1), date(2026, 11, 30), None)
    batch = db.session.scalar(select(Batch).where(Batch.product_id == besek.id))
    return {
        "facility_id": facilities["banjarnegara"],
        "product_id": besek.id,
        "programme_id": besek.programme_id,
        "batch_id": batch.id,
        "participation_id": batch.participations[0].id,
        "order_id": order.id,
        "line_id": order.lines[0].id,
        "quote_id": quote.id,
        "proof_id": proof.id,
        "run_id": run.id,
        "wbp_id": db.session.scalar(
            select(Wbp.id).where(Wbp.facility_id == facilities["banjarnegara"])
        ),
        "photo_id": db.session.scalar(
            select(ProductPhoto.id).where(ProductPhoto.product_id == besek.id)
        ),
        "user_id": users["staff_magetan"].id,
    }


def routes(app, prefix):
    """(url rule, endpoint, methods) of every route under `prefix`."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(prefix):
            methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
            found.append((rule, methods))
    return found


def url_for_rule(rule, ids):
    missing = [arg for arg in rule.arguments if arg not in ids]
    assert not missing, f"add an id for {missing} of {rule.rule} to banjarnegara_ids"
    return rule.build({arg: ids[arg] for arg in rule.arguments})[1]


def attempt(client, method, url, token):
    if method == "GET":
        return client.get(url)
    return client.open(url, method=method, data={"csrf_token": token})


def all_attempts(app, client, ids, prefix, token_page="/"):
    token = csrf_token(client, token_page) if token_page else ""
    for rule, methods in routes(app, prefix):
        url = url_for_rule(rule, ids)
        for method in methods:
            yield rule.endpoint, method, url, attempt(client, method, url, token)


def test_there_are_back_office_and_admin_routes_to_check(app):
    endpoints = {rule.endpoint for rule, _ in routes(app, "/office/") + routes(app, "/admin")}
    assert {"office.facility", "office.audit_log", "admin.index"} <= endpoints


@pytest.mark.parametrize("prefix", ["/office/", "/admin"])
def test_anonymous_users_are_sent_to_login(app, client, banjarnegara_ids, prefix):
    for endpoint, method, url, response in all_attempts(
        app, client, banjarnegara_ids, prefix, token_page="/login"
    ):
        assert response.status_code == 302, (endpoint, method, url, response.status_code)
        assert "/login" in response.headers["Location"], (endpoint, method)


@pytest.mark.parametrize("prefix", ["/office/", "/admin"])
def test_a_buyer_cannot_open_any_back_office_page(app, client, banjarnegara_ids, prefix):
    login(client, "buyer@example.id")
    for endpoint, method, url, response in all_attempts(
        app, client, banjarnegara_ids, prefix, token_page="/account"
    ):
        assert response.status_code == 404, (endpoint, method, url, response.status_code)


@pytest.mark.parametrize("prefix", ["/office/", "/admin"])
def test_magetan_staff_see_and_change_nothing_of_banjarnegara(
    app, client, banjarnegara_ids, prefix
):
    login(client, "staff.magetan@example.id")
    before = snapshot_counts()
    for endpoint, method, url, response in all_attempts(
        app, client, banjarnegara_ids, prefix, token_page="/account"
    ):
        if endpoint == "office.index":
            continue  # their own list of facilities
        assert response.status_code == 404, (endpoint, method, url, response.status_code)
    assert snapshot_counts() == before


def test_finance_cannot_change_products(app, client, banjarnegara_ids):
    login(client, "finance.banjarnegara@example.id")
    before = snapshot_counts()
    product_writes = [
        (rule, methods)
        for rule, methods in routes(app, "/office/")
        if rule.endpoint.startswith("catalog_office.product") and "POST" in methods
    ]
    assert product_writes, "expected product write routes in the back office"
    token = csrf_token(client, "/account")
    for rule, _methods in product_writes:
        url = url_for_rule(rule, banjarnegara_ids)
        response = attempt(client, "POST", url, token)
        assert response.status_code == 404, (rule.endpoint, url)
    assert snapshot_counts() == before


def test_finance_may_view_stock(client, banjarnegara_ids):
    login(client, "finance.banjarnegara@example.id")
    response = client.get(f"/office/{banjarnegara_ids['facility_id']}/stock")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("email", "sections"),
    [
        ("staff.banjarnegara@example.id", lambda e: not e.startswith("finance_office.")),
        ("finance.banjarnegara@example.id", lambda e: e.startswith("finance_office.")),
    ],
)
def test_own_people_open_every_page_of_their_sections(
    app, client, banjarnegara_ids, email, sections
):
    login(client, email)
    for rule, methods in routes(app, "/office/"):
        if "GET" not in methods or not sections(rule.endpoint):
            continue
        url = url_for_rule(rule, banjarnegara_ids)
        response = client.get(url)
        assert response.status_code in (200, 302), (rule.endpoint, url, response.status_code)


def snapshot_counts():
    from sqlalchemy import func

    from catalog.models import BatchParticipation, Facility, PriceTier
    from shop.audit import AuditEntry

    models = (
        Facility,
        Product,
        PriceTier,
        ProductPhoto,
        Programme,
        Batch,
        BatchParticipation,
        Wbp,
        User,
        AuditEntry,
    )
    db.session.rollback()
    return {m.__name__: db.session.scalar(select(func.count()).select_from(m)) for m in models}
