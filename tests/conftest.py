"""Fixtures: each database test runs on SQLite and, where a server answers, on PostgreSQL."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import event
from werkzeug.serving import make_server

os.environ.setdefault("SECRET_KEY", "test-secret-key")

from bench import loopback  # noqa: E402
from shop import create_app  # noqa: E402
from shop.extensions import db  # noqa: E402

from .databases import fresh_postgres_database, postgres_server  # noqa: E402
from .stripe_helpers import start_localstripe  # noqa: E402

TESTED: dict[str, str] = {}


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "test.db"
        TESTED["sqlite"] = "tested"
        yield f"sqlite:///{path}"
        return
    server, reason = postgres_server()
    if server is None:
        TESTED["postgresql"] = f"SKIPPED ({reason})"
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    TESTED["postgresql"] = "tested"
    with fresh_postgres_database(server) as url:
        yield url


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production: its own `g` and db session.

    Without this, requests made while a test holds an app context would share the test's `g`
    (and so Flask-Login's cached user) and its session.
    """

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        if has_app_context():
            outer = db.session
            if not (outer.new or outer.dirty or outer.deleted):
                outer.rollback()  # end the test's read snapshot so it sees what the request wrote
        return response


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SESSION_COOKIE_SECURE": False,
            "PREFERRED_URL_SCHEME": "http",
            "REMEMBER_COOKIE_SECURE": False,
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    app.test_client_class = IsolatedClient
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """A fake Stripe (API and Stripe.js) on a free loopback port, for the whole session."""
    process, url = start_localstripe()
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[str]:
    """The app over real HTTP: localstripe delivers its webhooks to it, browsers open its pages."""
    with loopback.serving(make_server("127.0.0.1", 0, app, threaded=True)) as url:
        yield url


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[Flask]:
    """An application context, and a database emptied after the test."""
    with app.app_context():
        yield app
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def client(app_ctx: Flask) -> FlaskClient:
    return app_ctx.test_client()


@pytest.fixture
def demo(app_ctx: Flask) -> None:
    from catalog import demo as demo_data

    demo_data.seed()


@pytest.fixture
def facilities(demo) -> dict[str, int]:
    """Demo facility ids by short name: banjarnegara, magetan, ruteng, serang."""
    from sqlalchemy import select

    from catalog.models import Facility

    rows = db.session.execute(select(Facility.slug, Facility.id)).all()
    return {slug.removeprefix("rutan-"): facility_id for slug, facility_id in rows}


@functools.cache
def _password_hash(password: str) -> str:
    """scrypt takes a third of a second by design; the fixtures hash the one password once."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password)


@pytest.fixture
def users(facilities):  # type: ignore[no-untyped-def]
    """One account per kind of user, all with the password `helpers.PASSWORD`.

    buyer, staff_banjarnegara, staff_magetan, finance_banjarnegara, finance_regional, admin.
    """
    from shop.accounts.models import BuyerProfile, Role, RoleGrant, User

    from .helpers import PASSWORD

    specs = {
        "buyer": [(Role.BUYER, None)],
        "buyer_two": [(Role.BUYER, None)],
        "staff_banjarnegara": [(Role.STAFF, facilities["banjarnegara"])],
        "staff_magetan": [(Role.STAFF, facilities["magetan"])],
        "finance_banjarnegara": [(Role.FINANCE, facilities["banjarnegara"])],
        "finance_regional": [(Role.FINANCE, None)],
        "admin": [(Role.ADMIN, None)],
    }
    made = {}
    for key, grants in specs.items():
        user = User(email=f"{key.replace('_', '.')}@example.id", name=key.replace("_", " ").title())
        user.password_hash = _password_hash(PASSWORD)
        user.grants = [RoleGrant(role=role, facility_id=fid) for role, fid in grants]
        if key.startswith("buyer"):
            user.buyer_profile = BuyerProfile(
                business_name=f"Toko Ikan Asin {key}",
                contact_person="Ibu Sari",
                phone="081234567890",
                address="Kelurahan Semarang, Banjarnegara",
            )
        db.session.add(user)
        made[key] = user
    db.session.commit()
    return made


@pytest.fixture
def field_besek(facilities):  # type: ignore[no-untyped-def]
    """The besek from the field: six WBP, 1,600 pieces, Rp 25 material a piece, Rp 125 each."""
    from datetime import date

    from sqlalchemy import select

    from catalog.models import (
        Batch,
        BatchParticipation,
        BatchStatus,
        Facility,
        Product,
        Programme,
        Wbp,
    )

    facility = db.session.get(Facility, facilities["banjarnegara"])
    programme = db.session.scalar(
        select(Programme).where(Programme.facility_id == facility.id, Programme.slug == "besek")
    )
    makers = [
        Wbp(facility=facility, registration_number=f"LEDGER-{n}", name=f"Pembuat Fiktif {n}")
        for n in range(6)
    ]
    batch = Batch(
        code="BSK-LEDGER",
        status=BatchStatus.FINISHED,
        finished_on=date(2026, 10, 16),
        quantity_made=1600,
        material_cost=40_000,
        participations=[
            BatchParticipation(wbp=w, contribution=c)
            for w, c in zip(makers, (300, 290, 270, 260, 250, 230), strict=True)
        ],
    )
    product = Product(
        slug="besek-ledger",
        facility=facility,
        programme=programme,
        name="Besek bambu (uji buku besar)",
        category="crafts",
        base_price=125,
        min_order_qty=100,
        order_multiple=20,
        batches=[batch],
    )
    db.session.add(product)
    db.session.commit()
    return product, batch, makers


@pytest.fixture
def paid_besek(users, field_besek):  # type: ignore[no-untyped-def]
    """All 1,600 besek ordered by the salted-fish seller and paid by bank transfer today, in the
    facility's own time zone (so "this month" is the facility's, whatever the hour in UTC)."""
    from catalog.production import facility_today
    from orders.checkout import place_orders
    from orders.models import PaymentMethod
    from payments import services

    from .orders_fixtures import checkout

    product, batch, makers = field_besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    services.confirm_receipt(
        order.id,
        PaymentMethod.BANK_TRANSFER,
        order.total,
        facility_today(product.facility.timezone),
        "BRI-0042",
        users["finance_banjarnegara"],
    )
    return product, batch, makers, order


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.strip().upper() not in {"BEGIN", "BEGIN IMMEDIATE"}:
            self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app_ctx: Flask):  # type: ignore[no-untyped-def]
    """Counts the SQL statements run inside a `with count_queries() as counter:` block."""
    from contextlib import contextmanager

    @contextmanager
    def counting() -> Iterator[QueryCounter]:
        counter = QueryCounter()
        event.listen(db.engine, "before_cursor_execute", counter)
        try:
            yield counter
        finally:
            event.remove(db.engine, "before_cursor_execute", counter)

    return counting


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not TESTED:
        return
    line = ", ".join(f"{name}: {state}" for name, state in sorted(TESTED.items()))
    terminalreporter.write_line(f"Databases: {line}")
