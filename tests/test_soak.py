"""The concurrency soak (bench/soak.py) on PostgreSQL, its checks against planted faults, and
regression tests of the races it found, each forced into the interleaving that broke it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text, update
from sqlalchemy.engine import make_url

from bench import soak
from catalog.models import Batch, Facility
from finance import checks
from finance.models import AccountKind, Entry, LedgerAccount, Posting, PostingKind
from orders.checkout import locked_batches, place_orders
from orders.fulfilment import cancel_order
from orders.models import Invoice, LineAllocation, Order, OrderLine, PaymentMethod
from payments import services
from payments.models import AttemptStatus, CardAttempt, OrderPaid, Payment, StripeEvent
from shop import create_app
from shop.database import write_transaction
from shop.extensions import db

from .databases import fresh_postgres_database, postgres_server
from .helpers import csrf_token, login
from .orders_fixtures import besek_in_two_batches, checkout
from .stripe_helpers import WEBHOOK_SECRET, post_webhook
from .stripe_helpers import event as stripe_event

# Short, but long enough that stock runs out and every kind of action happens many times.
SHORT = soak.Settings(
    seconds=12, processes=3, threads=3, buyers=60, batches=3, batch_size=300, seed=7
)


@pytest.fixture(scope="module")
def soaked() -> Iterator[tuple[str, soak.Report]]:
    """A database after a short soak, and what the soak reported."""
    server, reason = postgres_server()
    if server is None:
        pytest.skip(f"the soak runs on PostgreSQL only: {reason}")
    with fresh_postgres_database(server) as url:
        yield url, soak.run_in(url, SHORT)


def test_a_short_soak_keeps_stock_and_money_sound(soaked):
    _url, report = soaked
    assert report.errors == [], "\n\n".join(report.errors[:3])
    assert report.problems == []
    counts, figures = report.counts, report.figures
    # Enough work happened for the checks to mean something, even on a busy machine.
    assert figures["orders"] >= 30, figures
    assert figures["payments"] >= 10, figures
    assert counts["webhook replays refused as duplicates"] >= 5, counts
    assert counts["web checkouts sent twice at once"] >= 1, counts
    assert figures["orders paid"] >= 10
    assert figures["orders cancelled"] >= 1
    assert figures["allocations released"] >= 1
    assert figures["refunds"] >= 1
    assert not any(key.endswith("ERROR") for key in counts), counts


@contextmanager
def soaked_session(url: str) -> Iterator[None]:
    app = create_app(soak.app_config(url))
    with app.app_context():
        try:
            yield
        finally:
            db.session.rollback()
            db.session.remove()
            db.engine.dispose()


def a_paid_allocation() -> LineAllocation:
    return db.session.scalars(
        select(LineAllocation)
        .join(OrderLine)
        .join(OrderPaid, OrderPaid.order_id == OrderLine.order_id)
        .where(LineAllocation.released.is_(False))
        .order_by(LineAllocation.id)
    ).first()


def second_proceeds_posting() -> str:
    """Credits an allocation again under another key, balanced and with balances kept."""
    allocation = a_paid_allocation()
    order = allocation.line.order
    posting = Posting(
        key=f"proceeds:{allocation.id}:again",
        kind=PostingKind.PROCEEDS,
        facility_id=order.facility_id,
        occurred_at=datetime.now(UTC).replace(tzinfo=None),
        order_id=order.id,
    )
    db.session.add(posting)
    db.session.flush()
    for kind, amount, memo in ((AccountKind.CLEARING, -1000, "clearing"),
                               (AccountKind.MODAL, 1000, "modal")):  # fmt: skip
        account = db.session.scalar(
            select(LedgerAccount).where(
                LedgerAccount.kind == kind, LedgerAccount.facility_id == order.facility_id
            )
        )
        account.balance += amount
        db.session.add(
            Entry(posting_id=posting.id, account_id=account.id, amount=amount, memo=memo,
                  order_line_id=allocation.line_id, allocation_id=allocation.id,
                  batch_id=allocation.batch_id, units=1)
        )  # fmt: skip
    return f"allocation {allocation.id} (paid, held): 2 proceeds postings"


def allocation_beyond_the_batch() -> str:
    allocation = a_paid_allocation()
    allocation.quantity += allocation.batch.quantity_made
    return f"batch {allocation.batch.code} counts"  # reported by `flask ledger check`


def payment_beyond_the_total() -> str:
    order = db.session.get(Order, a_paid_allocation().line.order_id)
    db.session.add(
        Payment(order_id=order.id, method=PaymentMethod.BANK_TRANSFER, amount=order.total,
                received_on=date.today(), reference="TRF-PLANTED")
    )  # fmt: skip
    return f"order {order.reference} ("


def second_cash_account() -> str:
    facility_id = a_paid_allocation().line.order.facility_id
    # The database refuses this now (migration d4e5f6a7b8c9); the check must still see it in a
    # database that lacks the index. DDL is transactional on PostgreSQL: the rollback restores it.
    db.session.execute(text("DROP INDEX uq_ledger_account_facility_own"))
    db.session.add(LedgerAccount(kind=AccountKind.CASH, facility_id=facility_id, balance=0))
    return f"2 cash accounts of facility {facility_id}"


def card_payment_without_its_attempt_succeeding() -> str:
    attempt = db.session.scalars(
        select(CardAttempt).where(CardAttempt.status == AttemptStatus.SUCCEEDED)
    ).first()
    attempt.status = AttemptStatus.PENDING
    return f"card attempt {attempt.id} (pending) has 1 payments"


@pytest.mark.parametrize(
    "plant",
    [
        second_proceeds_posting,
        allocation_beyond_the_batch,
        payment_beyond_the_total,
        second_cash_account,
        card_payment_without_its_attempt_succeeding,
    ],
)
def test_the_checks_find_a_planted_fault(soaked, plant: Callable[[], str]):
    """Each fault is written in a transaction that is rolled back; the checks read through it."""
    url, _report = soaked
    with soaked_session(url):
        assert soak.problems() == []
        expected = plant()
        db.session.flush()
        found = soak.problems()
        assert any(expected in problem for problem in found), (expected, found)


def test_the_ledger_command_fails_on_a_corrupted_copy(soaked):
    """`flask ledger check`, run as the soak runs it, on a copy with one entry changed."""
    url, _report = soaked
    server = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    copy = f"{make_url(url).database}_copy"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{make_url(url).database}"'))
        copy_url = make_url(url).set(database=copy).render_as_string(hide_password=False)
        engine = create_engine(copy_url)
        with engine.begin() as conn:
            conn.execute(update(Entry).where(Entry.id == 1).values(amount=Entry.amount + 1))
        engine.dispose()
        [breach] = soak.ledger_cli(copy_url)
        assert "flask ledger check exited 1" in breach and "does not balance" in breach
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
        admin.dispose()


# The races the soak found, forced: two requests both check before either writes.


@pytest.fixture
def postgresql_only(app_ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL race: SQLite takes its one write lock before a write reads")


@contextmanager
def both_read_first(table: str) -> Iterator[None]:
    """The first SELECT from `table` in each of two threads waits for the other's: both have
    checked before either goes on to write, the interleaving that two real requests may take."""
    meet = threading.Barrier(2, timeout=30)
    local = threading.local()

    def hold(_conn, _cursor, statement: str, *_args: Any) -> None:
        if (
            statement.lstrip().startswith("SELECT")
            and f"FROM {table}" in statement
            and not getattr(local, "met", False)
        ):
            local.met = True
            meet.wait()

    event.listen(db.engine, "after_cursor_execute", hold)
    try:
        yield
    finally:
        event.remove(db.engine, "after_cursor_execute", hold)


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Runs each call in its own thread; an exception is returned in place of a result."""
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as error:  # returned to the test, which fails on it
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def besek(facilities):
    product, *_ = besek_in_two_batches(db.session.get(Facility, facilities["banjarnegara"]))
    return product


def test_a_checkout_form_sent_twice_at_once_shows_the_orders(
    postgresql_only, app, client, users, besek
):
    """Both submissions passed the key check; the second used to hit the unique key: a 500."""
    login(client, users["buyer"].email)
    token = csrf_token(client, f"/products/{besek.slug}")
    client.post("/cart", data={"csrf_token": token, "product_id": besek.id, "quantity": 200})
    page = client.get("/checkout").get_data(as_text=True)
    key = soak.CHECKOUT_KEY.search(page)[1]
    twin = app.test_client()
    twin.set_cookie("session", client.get_cookie("session").value)
    form = {"csrf_token": token, "checkout_key": key, "delivery_method": "pickup",
            "payment_method": "bank_transfer"}  # fmt: skip
    with both_read_first("customer_order"):
        responses = at_once(
            lambda: client.post("/checkout", data=form), lambda: twin.post("/checkout", data=form)
        )
    for response in responses:
        assert not isinstance(response, Exception), response
        assert response.status_code == 302
        assert response.headers["Location"].endswith(f"/orders/placed/{key}")
    orders = db.session.scalars(select(Order).where(Order.checkout_key == key)).all()
    assert len(orders) == 1 and orders[0].lines[0].quantity == 200


def test_a_webhook_delivered_twice_at_once_pays_once(
    postgresql_only, app, client, users, besek, monkeypatch
):
    """Both deliveries found the event new; the second used to fail recording it: a 500."""
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    [order] = place_orders(users["buyer"], checkout({besek.id: 200}))
    attempt = CardAttempt(order_id=order.id, number=1, idempotency_key="order-race-1",
                          intent_id="pi_race", amount=order.total)  # fmt: skip
    db.session.add(attempt)
    db.session.commit()
    intent = {"id": "pi_race", "object": "payment_intent", "amount": order.total * 100,
              "currency": "idr", "status": "succeeded",
              "metadata": {"order_id": str(order.id)}}  # fmt: skip
    payload = stripe_event("payment_intent.succeeded", intent)
    with both_read_first("stripe_event"):
        responses = at_once(
            lambda: post_webhook(app.test_client(), payload),
            lambda: post_webhook(app.test_client(), payload),
        )
    assert not any(isinstance(r, Exception) for r in responses), responses
    assert [r.status_code for r in responses] == [200, 200]
    assert sorted(r.get_json()["outcome"] for r in responses) == ["duplicate", "paid"]
    assert db.session.scalar(select(func.count(Payment.id))) == 1
    assert db.session.scalar(select(func.count(StripeEvent.id))) == 1
    assert services.is_paid(order.id)


def test_the_first_invoices_of_a_year_placed_at_once_are_numbered_in_turn(
    postgresql_only, app, users, facilities
):
    """Both checkouts found no counter for the year; the second used to insert it again."""
    facility = db.session.get(Facility, facilities["banjarnegara"])
    # Two products with their own batches: the checkouts do not queue on the same batch locks.
    products = [besek_in_two_batches(facility)[0].id for _ in range(2)]
    buyers = [users["buyer"].id, users["buyer_two"].id]

    def place(buyer_id: int, product_id: int) -> list[str]:
        from shop.accounts.models import User

        with app.app_context():
            orders = place_orders(db.session.get(User, buyer_id), checkout({product_id: 200}))
            return [o.invoice.number for o in orders]

    with both_read_first("invoice_counter"):
        results = at_once(
            *[lambda b=b, p=p: place(b, p) for b, p in zip(buyers, products, strict=True)]
        )
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(db.session.scalars(select(Invoice.sequence))) == [1, 2]


def pay_by_transfer(app, order_id: int, amount: int, staff_id: int) -> None:
    """Finance confirm a transfer, in a thread's own app context."""
    from shop.accounts.models import User

    with app.app_context():
        services.confirm_receipt(
            order_id, PaymentMethod.BANK_TRANSFER, amount, date.today(), f"TRF-{order_id}",
            db.session.get(User, staff_id),
        )  # fmt: skip


def test_the_first_payments_of_a_facility_at_once_open_its_accounts_once(
    postgresql_only, app, users, besek
):
    """A facility's own accounts have no WBP, and the unique constraint lets NULLs repeat: two
    first payments at once used to open two cash accounts (and so on), splitting balances."""
    orders = [place_orders(users["buyer"], checkout({besek.id: 200}))[0] for _ in range(2)]
    staff = users["finance_banjarnegara"].id
    owed = [(o.id, o.total) for o in orders]
    with both_read_first("ledger_account"):
        results = at_once(*[lambda o=o, a=a: pay_by_transfer(app, o, a, staff) for o, a in owed])
    assert not any(isinstance(r, Exception) for r in results), results
    kinds = db.session.execute(
        select(LedgerAccount.kind, func.count())
        .where(LedgerAccount.wbp_id.is_(None))
        .group_by(LedgerAccount.kind)
    ).all()
    assert {kind: n for kind, n in kinds} == {
        AccountKind.CASH: 1,
        AccountKind.CLEARING: 1,
        AccountKind.MODAL: 1,
        AccountKind.PNBP: 1,
    }
    assert all(services.is_paid(o.id) for o in orders)
    assert checks.problems() == []


def test_a_card_payment_for_an_order_cancelled_meanwhile_is_logged_not_a_500(
    app, client, users, besek, monkeypatch
):
    """The buyer cancelled in another tab while the card page was open, then paid: Stripe must
    get a 200 (a 500 makes it retry for days), and the order takes no payment."""
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    [order] = place_orders(users["buyer"], checkout({besek.id: 200}))
    due = order.total  # cancelling sets the subtotal to zero
    db.session.add(
        CardAttempt(order_id=order.id, number=1, idempotency_key="order-cancel-1",
                    intent_id="pi_cancelled", amount=due)
    )  # fmt: skip
    db.session.commit()
    cancel_order(order.id, "Salah pesan", users["buyer"])
    intent = {"id": "pi_cancelled", "object": "payment_intent", "amount": due * 100,
              "currency": "idr", "status": "succeeded",
              "metadata": {"order_id": str(order.id)}}  # fmt: skip
    response = post_webhook(client, stripe_event("payment_intent.succeeded", intent))
    assert response.status_code == 200
    assert response.get_json()["outcome"].startswith("refused: the order takes no payment")
    assert db.session.scalar(select(func.count(Payment.id))) == 0
    assert not services.is_paid(order.id)
    held = select(func.sum(Batch.quantity_allocated)).where(Batch.product_id == besek.id)
    assert db.session.scalar(held) == 0  # the cancellation gave the units back


def test_an_order_holding_its_batches_lets_a_payment_credit_them(
    postgresql_only, app, users, besek
):
    """Locking stock FOR UPDATE also blocked the foreign key check of a payment's ledger entries
    naming the batch; with an order then waiting for the payment's accounts, they deadlocked."""
    [order] = place_orders(users["buyer"], checkout({besek.id: 200}))
    order_id, total, product_id = order.id, order.total, besek.id
    staff = users["finance_banjarnegara"].id
    holding, release = threading.Event(), threading.Event()

    def hold_stock() -> None:
        with app.app_context(), write_transaction():
            locked_batches([product_id])
            holding.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold_stock)
    holder.start()
    payer = threading.Thread(target=pay_by_transfer, args=(app, order_id, total, staff))
    try:
        assert holding.wait(timeout=30)
        payer.start()
        payer.join(timeout=10)
        paid_while_held = not payer.is_alive()
    finally:
        release.set()
        holder.join(timeout=30)
        if payer.ident is not None:
            payer.join(timeout=30)
    assert paid_while_held
    assert services.is_paid(order_id)
    assert checks.problems() == []
