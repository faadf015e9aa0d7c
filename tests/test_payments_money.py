"""Bank transfers confirmed in parts, payment at pickup, and refunds recorded exactly once."""

from datetime import date

import pytest
from sqlalchemy import func, select

from catalog.models import Facility
from finance.models import ProceedsEvent, ProceedsEventKind
from orders.checkout import place_orders
from orders.models import PaymentMethod
from payments import services, stripe_gateway
from payments.models import Refund, RefundStatus
from payments.refunds import request_refund
from payments.services import PaymentRefused
from shop.extensions import db

from .orders_fixtures import besek_in_two_batches, checkout
from .stripe_helpers import event, post_webhook
from .test_payments_card import (  # noqa: F401  (fixtures)
    pay_in_the_browser,
    stripe_app,
    wait_until,
)


@pytest.fixture
def besek_order(users, facilities):
    facility = db.session.get(Facility, facilities["banjarnegara"])
    product, *_ = besek_in_two_batches(facility)
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    return order


def proceeds_events(kind):
    db.session.rollback()
    return db.session.scalar(select(func.count(ProceedsEvent.id)).where(ProceedsEvent.kind == kind))


def test_two_partial_transfers_pay_the_order_exactly_when_they_reach_the_total(users, besek_order):
    finance = users["finance_banjarnegara"]
    today = date.today()
    services.confirm_receipt(
        besek_order.id, PaymentMethod.BANK_TRANSFER, 120_000, today, "BRI-0001", finance
    )
    assert not services.is_paid(besek_order.id)
    assert proceeds_events(ProceedsEventKind.PAYMENT_RECEIVED) == 0
    # The same bank reference confirmed twice (a double click) is one payment.
    services.confirm_receipt(
        besek_order.id, PaymentMethod.BANK_TRANSFER, 120_000, today, "BRI-0001", finance
    )
    assert services.paid_amount(besek_order.id) == 120_000
    services.confirm_receipt(
        besek_order.id,
        PaymentMethod.BANK_TRANSFER,
        80_000,
        today,
        "BRI-0002",
        users["staff_banjarnegara"],
    )
    assert services.is_paid(besek_order.id)
    assert proceeds_events(ProceedsEventKind.PAYMENT_RECEIVED) == 1
    with pytest.raises(PaymentRefused):
        services.confirm_receipt(
            besek_order.id, PaymentMethod.BANK_TRANSFER, 1, today, "BRI-0003", finance
        )


def test_more_than_is_due_is_refused(users, besek_order):
    with pytest.raises(PaymentRefused, match="200.000"):
        services.confirm_receipt(
            besek_order.id,
            PaymentMethod.BANK_TRANSFER,
            250_000,
            date.today(),
            "BRI-9",
            users["finance_banjarnegara"],
        )
    assert services.paid_amount(besek_order.id) == 0


def test_staff_of_another_facility_cannot_confirm(users, besek_order):
    with pytest.raises(PaymentRefused):
        services.confirm_receipt(
            besek_order.id,
            PaymentMethod.BANK_TRANSFER,
            200_000,
            date.today(),
            "BRI-1",
            users["staff_magetan"],
        )
    assert services.paid_amount(besek_order.id) == 0


def test_payment_at_pickup_is_recorded_by_staff(users, besek_order):
    services.confirm_receipt(
        besek_order.id,
        PaymentMethod.PAY_ON_PICKUP,
        200_000,
        date.today(),
        "KWITANSI-17",
        users["staff_banjarnegara"],
    )
    assert services.is_paid(besek_order.id)


def test_a_transfer_refund_is_recorded_once_with_its_reason(users, besek_order):
    staff = users["staff_banjarnegara"]
    services.confirm_receipt(
        besek_order.id, PaymentMethod.BANK_TRANSFER, 200_000, date.today(), "BRI-1", staff
    )
    line_id = besek_order.lines[0].id
    refund = request_refund(besek_order.id, {line_id: 400}, "400 besek rusak", staff)
    assert (refund.amount, refund.status) == (50_000, RefundStatus.SUCCEEDED)
    assert proceeds_events(ProceedsEventKind.REFUND) == 1
    with pytest.raises(PaymentRefused):
        request_refund(besek_order.id, {line_id: 1201}, "lagi", staff)  # only 1,200 left
    with pytest.raises(PaymentRefused):
        request_refund(besek_order.id, {line_id: 10}, "  ", staff)


def test_a_partial_card_refund_of_400_besek_is_recorded_once(
    stripe_app,  # noqa: F811  (the fixture imported above)
    client,
    users,
    besek_order,
):
    attempt = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
    pay_in_the_browser(attempt.intent_id)
    assert wait_until(lambda: services.is_paid(besek_order.id))

    line_id = besek_order.lines[0].id
    refund = request_refund(
        besek_order.id, {line_id: 400}, "400 besek rusak", users["staff_banjarnegara"]
    )
    db.session.rollback()
    refund = db.session.get(Refund, refund.id)
    assert refund.status is RefundStatus.PENDING
    assert refund.amount == 50_000
    stripe_refund = stripe_gateway.client().v1.refunds.retrieve(refund.stripe_refund_id)
    assert stripe_refund.amount == 5_000_000

    # localstripe sends no charge.refunded: the test signs it as Stripe would, and repeats it.
    charge = {
        "id": "ch_test",
        "object": "charge",
        "payment_intent": attempt.intent_id,
        "refunds": {"data": [{"id": refund.stripe_refund_id, "status": "succeeded"}]},
    }
    refunded = event("charge.refunded", charge)
    for _ in range(3):
        assert post_webhook(client, refunded).status_code == 200
    post_webhook(client, event("charge.refunded", charge))  # a new id, the same refund
    db.session.rollback()
    assert db.session.get(Refund, refund.id).status is RefundStatus.SUCCEEDED
    assert proceeds_events(ProceedsEventKind.REFUND) == 1
    assert db.session.scalar(select(func.count(Refund.id))) == 1
