"""Card payments against localstripe: the order is paid once, from Stripe's word only."""

import time
import urllib.request

import pytest
from sqlalchemy import func, select

from catalog.models import Facility
from orders.checkout import place_orders
from payments import services, stripe_gateway
from payments.models import AttemptStatus, CardAttempt, OrderPaid, Payment, StripeEvent
from payments.services import PaymentRefused
from shop.extensions import db

from .orders_fixtures import besek_in_two_batches, checkout
from .stripe_helpers import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    event,
    post_webhook,
)


@pytest.fixture
def stripe_app(app, localstripe, live_server):
    app.config.update(
        STRIPE_SECRET_KEY=SECRET_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=localstripe,
    )
    request = urllib.request.Request(
        f"{localstripe}/_config/webhooks/karya",
        data=f"url={live_server}/payments/stripe/webhook&secret={WEBHOOK_SECRET}".encode(),
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 (loopback only)
    yield app
    app.config.update(STRIPE_SECRET_KEY="", STRIPE_WEBHOOK_SECRET="", STRIPE_API_BASE="")


@pytest.fixture
def besek_order(users, facilities):
    facility = db.session.get(Facility, facilities["banjarnegara"])
    product, *_ = besek_in_two_batches(facility)
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    return order


def pay_in_the_browser(intent_id, card="pm_card_visa"):
    """What Stripe.js does with the card element: attach the card and confirm."""
    client = stripe_gateway.client()
    client.v1.payment_intents.update(intent_id, params={"payment_method": card})
    return client.v1.payment_intents.confirm(intent_id)


def wait_until(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db.session.rollback()
        if predicate():
            return True
        time.sleep(0.1)
    return False


def payments_of(order_id):
    db.session.rollback()
    return db.session.scalar(select(func.count(Payment.id)).where(Payment.order_id == order_id))


def test_the_amount_sent_to_stripe_is_rupiah_times_100_in_idr(stripe_app, users, besek_order):
    attempt = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
    intent = stripe_gateway.client().v1.payment_intents.retrieve(attempt.intent_id)
    assert besek_order.total == 200_000
    assert (intent.amount, intent.currency) == (20_000_000, "idr")
    assert intent.metadata["order_id"] == str(besek_order.id)


def test_card_flow_end_to_end_pays_the_order_once(stripe_app, client, users, besek_order):
    attempt = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
    # Asking again reuses the attempt and its intent: no second charge is possible.
    again = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
    assert again.intent_id == attempt.intent_id
    assert not services.is_paid(besek_order.id)  # nothing is paid before Stripe says so

    assert pay_in_the_browser(attempt.intent_id).status == "succeeded"
    assert wait_until(lambda: services.is_paid(besek_order.id)), "webhook never arrived"
    assert payments_of(besek_order.id) == 1
    paid = db.session.get(OrderPaid, besek_order.id)
    assert paid.amount == 200_000

    # The webhook delivered again, five times, changes nothing more.
    intent = stripe_gateway.client().v1.payment_intents.retrieve(attempt.intent_id).to_dict()
    replay = event("payment_intent.succeeded", intent)
    for _ in range(5):
        assert post_webhook(client, replay).status_code == 200
    assert payments_of(besek_order.id) == 1
    # Nor does a different event id carrying the same intent.
    post_webhook(client, event("payment_intent.succeeded", intent))
    assert payments_of(besek_order.id) == 1


def test_out_of_order_events_change_nothing_further(stripe_app, client, users, besek_order):
    attempt = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
    intent = pay_in_the_browser(attempt.intent_id).to_dict()
    assert wait_until(lambda: services.is_paid(besek_order.id))
    failed = dict(intent, status="requires_payment_method", last_payment_error={"message": "x"})
    assert post_webhook(client, event("payment_intent.payment_failed", failed)).status_code == 200
    db.session.rollback()
    assert db.session.get(CardAttempt, attempt.id).status is AttemptStatus.SUCCEEDED
    assert services.is_paid(besek_order.id)


def test_a_declined_card_leaves_the_order_payable(stripe_app, users, besek_order):
    attempt = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
    with pytest.raises(Exception, match="declin"):
        pay_in_the_browser(attempt.intent_id, card="pm_card_chargeCustomerFail")
    assert wait_until(
        lambda: db.session.get(CardAttempt, attempt.id).status is AttemptStatus.FAILED
    )
    db.session.rollback()
    order = db.session.get(type(besek_order), besek_order.id)
    assert services.payable(order)
    retry = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
    assert retry.id != attempt.id
    assert retry.number == 2


def test_reconcile_asks_stripe_when_the_webhook_is_lost(stripe_app, users, besek_order):
    stripe_app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_wrong"  # deliveries are refused now
    try:
        attempt = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
        pay_in_the_browser(attempt.intent_id)
        time.sleep(1.5)
        assert not services.is_paid(besek_order.id)
        assert stripe_gateway.reconcile(besek_order.id) == ["paid"]
        assert services.is_paid(besek_order.id)
        assert stripe_gateway.reconcile(besek_order.id) == []
    finally:
        stripe_app.config["STRIPE_WEBHOOK_SECRET"] = WEBHOOK_SECRET


@pytest.mark.parametrize(
    "tamper",
    ["unsigned", "wrong secret", "stale", "body changed"],
)
def test_tampered_unsigned_and_stale_webhooks_are_refused(
    stripe_app, client, users, besek_order, tamper, caplog
):
    attempt = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
    intent = {
        "id": attempt.intent_id,
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 20_000_000,
        "currency": "idr",
        "metadata": {"order_id": str(besek_order.id)},
    }
    payload = event("payment_intent.succeeded", intent)
    from .stripe_helpers import signed

    body, header = signed(payload)
    if tamper == "unsigned":
        header = ""
    elif tamper == "wrong secret":
        body, header = signed(payload, secret="whsec_someone_else")
    elif tamper == "stale":
        body, header = signed(payload, at=int(time.time()) - 3600)
    else:
        body = body.replace(b"20000000", b"20000001")
    response = client.post(
        "/payments/stripe/webhook", data=body, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400
    assert "refused stripe webhook" in caplog.text
    assert payments_of(besek_order.id) == 0
    assert db.session.scalar(select(func.count(StripeEvent.id))) == 0


def test_a_wrong_amount_or_unknown_order_changes_nothing(stripe_app, client, users, besek_order):
    attempt = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
    base = {
        "id": attempt.intent_id,
        "object": "payment_intent",
        "status": "succeeded",
        "currency": "idr",
        "metadata": {"order_id": str(besek_order.id)},
    }
    for intent in (
        dict(base, amount=2_000_000),  # Rp 20.000 paid for Rp 200.000
        dict(base, amount=20_000_000, currency="usd"),
        dict(base, amount=20_000_000, id="pi_unknown"),
        dict(base, amount=20_000_000, metadata={"order_id": "999999"}),
    ):
        assert post_webhook(client, event("payment_intent.succeeded", intent)).status_code == 200
    assert payments_of(besek_order.id) == 0
    assert not services.is_paid(besek_order.id)


def test_card_payment_is_not_offered_without_stripe(app, users, besek_order):
    assert not stripe_gateway.configured()
    with pytest.raises(PaymentRefused):
        stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
