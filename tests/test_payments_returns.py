"""Card money an order no longer takes goes back to the buyer, once, and never counts as paid.

The salted-fish seller has the card page open for the Rp 200.000 of besek while the order is
cancelled or a line of it is (by the buyer in another tab, or by the facility). A pending
intent is cancelled at Stripe; one the buyer paid a moment before, whose webhook comes late,
is refunded whole by Stripe: never a Payment, never in the ledger.
"""

from __future__ import annotations

import socket
import time
from datetime import date, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from catalog.models import Facility
from finance import checks
from finance.models import Posting
from orders.checkout import place_orders
from orders.fulfilment import cancel_line, cancel_order
from orders.lifecycle import OrderStatus
from orders.models import Order, PaymentMethod
from payments import services, stripe_gateway
from payments.models import AttemptStatus, CardAttempt, StripeEvent
from shop.extensions import db, limiter
from shop.i18n import gettext as _

from .helpers import login, post_form, visible_text
from .orders_fixtures import besek_in_two_batches, checkout
from .stripe_helpers import SECRET_KEY, WEBHOOK_SECRET, event, free_port, post_webhook
from .test_payments_card import (  # noqa: F401  (fixtures, found by name)
    besek_order,
    pay_in_the_browser,
    payments_of,
    stripe_app,
    wait_until,
)

FULL = 20_000_000  # Rp 200.000 as Stripe counts it


def attempt_of(attempt_id: int) -> CardAttempt:
    db.session.rollback()
    return db.session.get(CardAttempt, attempt_id)


def paid_while_the_webhook_is_late(app: Flask, order_id: int, buyer) -> CardAttempt:
    """The buyer pays by card, and Stripe's one delivery of the success is lost."""
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_wrong"  # localstripe's delivery is refused
    try:
        attempt = stripe_gateway.start_card_payment(order_id, buyer)
        assert pay_in_the_browser(attempt.intent_id).status == "succeeded"
        time.sleep(1.5)
    finally:
        app.config["STRIPE_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    assert attempt_of(attempt.id).status is AttemptStatus.PENDING
    return attempt


def succeeded_event(intent_id: str) -> dict:
    intent = stripe_gateway.client().v1.payment_intents.retrieve(intent_id).to_dict()
    assert intent["status"] == "succeeded"
    return event("payment_intent.succeeded", intent)


def refunds_at_stripe(intent_id: str) -> tuple[int, int]:
    """How many refunds Stripe made of the intent's charge, and their sum (× 100)."""
    client = stripe_gateway.client()
    charge = client.v1.payment_intents.retrieve(intent_id).latest_charge
    refunds = client.v1.refunds.list(params={"payment_intent": intent_id}).data
    return len(refunds), client.v1.charges.retrieve(charge.id).amount_refunded


def ledger_untouched(order_id: int) -> bool:
    db.session.rollback()
    postings = db.session.scalar(select(func.count(Posting.id)).where(Posting.order_id == order_id))
    return postings == 0 and checks.problems() == []


@pytest.fixture
def stripe_on(request) -> Flask:
    """The card tests' app on localstripe, its webhooks delivered to the live server."""
    return request.getfixturevalue("stripe_app")


@pytest.fixture
def order(request) -> Order:
    """The card tests' order: 1,600 besek, Rp 200.000."""
    return request.getfixturevalue("besek_order")


@pytest.fixture
def two_line_order(users, facilities) -> Order:
    """800 besek of each of two kinds: Rp 100.000 a line, Rp 200.000 in all."""
    facility = db.session.get(Facility, facilities["banjarnegara"])
    first, second = (besek_in_two_batches(facility)[0] for _ in range(2))
    [order] = place_orders(users["buyer"], checkout({first.id: 800, second.id: 800}))
    assert len(order.lines) == 2 and order.total == 200_000
    return order


# A pending intent the order would now refuse is cancelled at Stripe


def test_cancelling_the_order_cancels_its_pending_intent_at_stripe(stripe_on, users, order):
    attempt = stripe_gateway.start_card_payment(order.id, users["buyer"])
    cancel_order(order.id, "Salah pesan", users["buyer"])

    intent = stripe_gateway.client().v1.payment_intents.retrieve(attempt.intent_id)
    assert intent.status == "canceled"
    cancelled = attempt_of(attempt.id)
    assert cancelled.status is AttemptStatus.FAILED
    assert cancelled.failure == _("The order was cancelled.")
    # The card page still open cannot charge the buyer now.
    with pytest.raises(Exception, match="Bad request"):
        pay_in_the_browser(attempt.intent_id)
    # Run again, it finds nothing to cancel and changes nothing.
    assert stripe_gateway.cancel_untaken_intents(order.id) == []
    assert attempt_of(attempt.id).failure == cancelled.failure
    assert payments_of(order.id) == 0


def test_cancelling_a_line_cancels_the_intent_for_the_old_amount(stripe_on, users, two_line_order):
    order = two_line_order
    old = stripe_gateway.start_card_payment(order.id, users["buyer"])
    cancel_line(order.id, order.lines[1].id, "Stok kosong", users["staff_banjarnegara"])

    assert stripe_gateway.client().v1.payment_intents.retrieve(old.intent_id).status == "canceled"
    assert attempt_of(old.id).status is AttemptStatus.FAILED
    assert attempt_of(old.id).failure == _("Less is due on the order now than this payment.")
    # The buyer pays again what is due now, and that pays the order.
    new = stripe_gateway.start_card_payment(order.id, users["buyer"])
    assert (new.number, new.amount) == (2, 100_000)
    pay_in_the_browser(new.intent_id)
    assert wait_until(lambda: services.is_paid(order.id)), "webhook never arrived"
    assert services.paid_amount(order.id) == 100_000


def test_stripe_unreachable_leaves_the_cancellation_standing(stripe_on, users, order):
    attempt = stripe_gateway.start_card_payment(order.id, users["buyer"])
    api = stripe_on.config["STRIPE_API_BASE"]
    stripe_on.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{free_port()}"  # nobody listens
    try:
        cancel_order(order.id, "Salah pesan", users["buyer"])
    finally:
        stripe_on.config["STRIPE_API_BASE"] = api
    db.session.rollback()
    assert db.session.get(Order, order.id).status is OrderStatus.CANCELLED
    assert attempt_of(attempt.id).status is AttemptStatus.PENDING  # its success is refused later


def test_a_stripe_that_never_answers_delays_a_cancellation_boundedly(stripe_on, users, order):
    attempt = stripe_gateway.start_card_payment(order.id, users["buyer"])
    silent = socket.create_server(("127.0.0.1", 0))  # connections are accepted, never answered
    api = stripe_on.config["STRIPE_API_BASE"]
    stripe_on.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{silent.getsockname()[1]}"
    stripe_on.config["STRIPE_TIMEOUT_SECONDS"] = 0.5
    started = time.monotonic()
    try:
        cancel_order(order.id, "Salah pesan", users["buyer"])
    finally:
        stripe_on.config["STRIPE_API_BASE"] = api
        stripe_on.config["STRIPE_TIMEOUT_SECONDS"] = 10.0
        silent.close()
    assert time.monotonic() - started < 6  # two tries of 0.5 s and the pause between them
    db.session.rollback()
    assert db.session.get(Order, order.id).status is OrderStatus.CANCELLED
    assert attempt_of(attempt.id).status is AttemptStatus.PENDING


# A succeeded intent that the order refuses is refunded whole, once


@pytest.mark.parametrize("first", ["webhook", "reconcile"])
def test_a_card_payment_for_a_cancelled_order_is_refunded_whole_once(
    stripe_on, client, users, order, first
):
    attempt = paid_while_the_webhook_is_late(stripe_on, order.id, users["buyer"])
    # Stripe will not cancel a paid intent: the attempt waits for the news of its success.
    cancel_order(order.id, "Salah pesan", users["buyer"])
    assert attempt_of(attempt.id).status is AttemptStatus.PENDING

    late = succeeded_event(attempt.intent_id)
    if first == "webhook":
        response = post_webhook(client, late)
        assert response.get_json()["outcome"] == (
            "refused: the order takes no payment; the intent is returned"
        )
        assert stripe_gateway.reconcile(order.id) == []
    else:
        assert stripe_gateway.reconcile(order.id) == [
            "refused: the order takes no payment; the intent is returned",
            "returned",
        ]
        assert post_webhook(client, late).get_json()["outcome"].startswith("no change")
    assert post_webhook(client, late).get_json()["outcome"] == "duplicate"
    again = succeeded_event(attempt.intent_id)  # another event about the same intent
    assert post_webhook(client, again).get_json()["outcome"].startswith("no change")

    assert refunds_at_stripe(attempt.intent_id) == (1, FULL)
    returned = attempt_of(attempt.id)
    assert returned.status is AttemptStatus.RETURNED
    assert returned.refund_id.startswith("re_")
    assert returned.failure == _("The order was cancelled.")
    assert payments_of(order.id) == 0
    assert not services.is_paid(order.id)
    assert ledger_untouched(order.id)


def test_a_payment_for_more_than_is_now_due_is_returned_whole(
    stripe_on, client, users, two_line_order
):
    """The buyer paid Rp 200.000; the facility had just cancelled a Rp 100.000 line."""
    order = two_line_order
    attempt = paid_while_the_webhook_is_late(stripe_on, order.id, users["buyer"])
    cancel_line(order.id, order.lines[1].id, "Stok kosong", users["staff_banjarnegara"])
    assert attempt_of(attempt.id).status is AttemptStatus.PENDING

    post_webhook(client, succeeded_event(attempt.intent_id))
    assert refunds_at_stripe(attempt.intent_id) == (1, FULL)
    returned = attempt_of(attempt.id)
    assert returned.status is AttemptStatus.RETURNED
    assert returned.failure == _("Less is due on the order now than this payment.")
    assert payments_of(order.id) == 0
    assert ledger_untouched(order.id)
    # What is due now is paid as any payment is, and only that enters the ledger.
    order = db.session.get(Order, order.id)
    assert services.payable(order) and services.amount_due(order) == 100_000
    new = stripe_gateway.start_card_payment(order.id, users["buyer"])
    pay_in_the_browser(new.intent_id)
    assert wait_until(lambda: services.is_paid(order.id)), "webhook never arrived"
    assert services.paid_amount(order.id) == 100_000
    assert checks.problems() == []


def test_a_card_payment_after_a_transfer_paid_the_order_is_returned_whole(
    stripe_on, client, users, order
):
    """The facility confirmed the buyer's transfer while the card page was open, then the card
    was paid: the order is paid once, by the transfer, and the card money goes back."""
    attempt = paid_while_the_webhook_is_late(stripe_on, order.id, users["buyer"])
    services.confirm_receipt(
        order.id, PaymentMethod.BANK_TRANSFER, 200_000, date.today(), "BRI-0042",
        users["finance_banjarnegara"],
    )  # fmt: skip
    post_webhook(client, succeeded_event(attempt.intent_id))
    assert refunds_at_stripe(attempt.intent_id) == (1, FULL)
    assert attempt_of(attempt.id).status is AttemptStatus.RETURNED
    assert services.paid_amount(order.id) == 200_000
    assert services.overpaid_amount(db.session.get(Order, order.id)) == 0
    assert checks.problems() == []


def test_a_claimed_refund_is_not_made_twice_until_its_claim_is_old(stripe_on, client, users, order):
    """Another process started the refund call (and died, or is still waiting for Stripe)."""
    attempt = paid_while_the_webhook_is_late(stripe_on, order.id, users["buyer"])
    cancel_order(order.id, "Salah pesan", users["buyer"])
    late = succeeded_event(attempt.intent_id)
    stripe_on.config["STRIPE_SECRET_KEY"] = ""  # the webhook marks it, and cannot refund it
    try:
        post_webhook(client, late)
    finally:
        stripe_on.config["STRIPE_SECRET_KEY"] = SECRET_KEY
    row = attempt_of(attempt.id)
    assert row.status is AttemptStatus.RETURNING
    row.return_started_at = services.now()
    db.session.commit()

    assert stripe_gateway.return_refused(order.id) == ["no change: the refund is being made"]
    assert refunds_at_stripe(attempt.intent_id) == (0, 0)
    row = attempt_of(attempt.id)
    row.return_started_at = services.now() - stripe_gateway.RETURN_CLAIM - timedelta(seconds=1)
    db.session.commit()
    assert stripe_gateway.return_refused(order.id) == ["returned"]
    assert refunds_at_stripe(attempt.intent_id) == (1, FULL)


# A refund Stripe cannot make stays owed, is shown to finance, and is made once on retry


@pytest.fixture
def finance(app_ctx, users):
    limiter.reset()
    client = app_ctx.test_client()
    client.set_cookie("lang", "en")
    login(client, users["finance_banjarnegara"].email)
    return client


def test_a_refund_stripe_cannot_make_is_shown_to_finance_and_made_once_on_retry(
    stripe_on, client, finance, users, facilities, order
):
    attempt = paid_while_the_webhook_is_late(stripe_on, order.id, users["buyer"])
    cancel_order(order.id, "Salah pesan", users["buyer"])
    late = succeeded_event(attempt.intent_id)
    api = stripe_on.config["STRIPE_API_BASE"]
    stripe_on.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{free_port()}"  # nobody listens
    try:
        assert post_webhook(client, late).status_code == 200
        owed = attempt_of(attempt.id)
        assert owed.status is AttemptStatus.RETURNING
        assert owed.return_started_at is None  # free for the next try
        assert owed.refund_id is None
    finally:
        stripe_on.config["STRIPE_API_BASE"] = api
    assert refunds_at_stripe(attempt.intent_id) == (0, 0)
    assert payments_of(order.id) == 0
    assert ledger_untouched(order.id)

    url = f"/office/{facilities['banjarnegara']}/orders/{order.id}/payments"
    page = visible_text(finance.get(url).get_data(as_text=True))
    assert "Card payments to return" in page
    assert "IDR 200,000 was paid by card after the order stopped taking it" in page
    assert "being returned to the card" in page
    assert attempt.intent_id in page
    assert "Paid so far IDR 0" in page

    # The webhook again (same event) changes nothing; finance's button makes the refund.
    assert post_webhook(client, late).get_json()["outcome"] == "duplicate"
    assert refunds_at_stripe(attempt.intent_id) == (0, 0)
    retry = post_form(finance, f"{url}/returns", form_page=url)
    assert retry.status_code == 302
    assert refunds_at_stripe(attempt.intent_id) == (1, FULL)
    returned = attempt_of(attempt.id)
    assert returned.status is AttemptStatus.RETURNED
    page = visible_text(finance.get(url).get_data(as_text=True))
    assert "Returned to the card by Stripe" in page
    assert f"Refund {returned.refund_id}" in page
    assert "Card payments to return" not in page

    # Pressed again (a second tab), and another event and reconcile: still one refund.
    assert post_form(finance, f"{url}/returns", form_page=url).status_code == 302
    post_webhook(client, succeeded_event(attempt.intent_id))
    assert stripe_gateway.reconcile(order.id) == []
    assert refunds_at_stripe(attempt.intent_id) == (1, FULL)
    assert db.session.scalar(select(func.count(StripeEvent.id))) == 2
    assert ledger_untouched(order.id)
