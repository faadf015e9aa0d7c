"""Recording money in and out of an order, exactly once, under the order's row lock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from finance import events
from orders.checkout import CheckoutRefused
from orders.lifecycle import OrderStatus
from orders.models import Order, PaymentMethod
from shop import audit, policy
from shop.accounts.models import User
from shop.database import write_transaction
from shop.extensions import db
from shop.formatting import rupiah
from shop.i18n import gettext as _

from .models import OrderPaid, Payment, Refund, RefundLine, RefundStatus

MAX_AMOUNT = 10_000_000_000


class PaymentRefused(CheckoutRefused):
    """Nothing was recorded; `messages` say why, in the user's language."""


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def locked_order(order_id: int) -> Order:
    order = db.session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise PaymentRefused([_("That order does not exist.")])
    return order


def paid_amount(order_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.order_id == order_id)
        )
        or 0
    )


def received_methods(order_id: int) -> list[PaymentMethod]:
    """How the order's money actually came in, first received first, each method once."""
    rows = db.session.execute(
        select(Payment.method, func.min(Payment.id))
        .where(Payment.order_id == order_id)
        .group_by(Payment.method)
        .order_by(func.min(Payment.id))
    )
    return [method for method, _first in rows]


def refunded_amount(order_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.order_id == order_id, Refund.status != RefundStatus.FAILED
            )
        )
        or 0
    )


def is_paid(order_id: int) -> bool:
    return db.session.get(OrderPaid, order_id) is not None


def amount_due(order: Order) -> int:
    return max(0, order.total - paid_amount(order.id))


def overpaid_amount(order: Order) -> int:
    """Money received beyond the total and not yet returned: a line cancelled after payment.
    It is owed back to the buyer; a cancelled order's money is returned through refunds of its
    lines instead. (A card payment beyond what is due is never received: `card_refusal`.)"""
    if order.status is OrderStatus.CANCELLED:
        return 0
    return max(0, paid_amount(order.id) - refunded_amount(order.id) - order.total)


def payable(order: Order) -> bool:
    """An order can be paid once its total is known and while it is not cancelled or paid."""
    return (
        order.status is not OrderStatus.CANCELLED
        and order.delivery_fee is not None
        and not is_paid(order.id)
        and amount_due(order) > 0
    )


def card_refusal(order: Order, amount: int) -> str:
    """Why the order cannot take a card payment of `amount` whole now; "" when it can.

    A card payment is taken whole or not at all. Beyond what is due it would be money that the
    ledger never receives (its receipt is the order's total) and that finance would have to
    notice and send back by hand: instead Stripe refunds it whole, and the buyer pays what is due.
    """
    if order.status is OrderStatus.CANCELLED:
        return _("The order was cancelled.")
    if amount > amount_due(order):
        return _("Less is due on the order now than this payment.")
    return ""


def record_payment(
    order: Order,
    method: PaymentMethod,
    amount: int,
    received_on: date,
    reference: str,
    user: User | None = None,
    note: str = "",
) -> Payment:
    """Adds a payment to the locked order in the caller's transaction; the same reference twice
    returns the first payment. When payments first cover the total, the order is paid."""
    existing = db.session.scalar(
        select(Payment).where(Payment.method == method, Payment.reference == reference)
    )
    if existing is not None:
        return existing
    if order.status is OrderStatus.CANCELLED:
        raise PaymentRefused([_("This order is cancelled.")])
    if not 0 < amount <= MAX_AMOUNT:
        raise PaymentRefused([_("The amount must be a whole number of rupiah above 0.")])
    payment = Payment(
        order_id=order.id,
        method=method,
        amount=amount,
        received_on=received_on,
        reference=reference,
        note=note,
        recorded_by_id=user.id if user else None,
    )
    db.session.add(payment)
    db.session.flush()
    if user is not None:
        audit.record("payment", payment, facility_id=order.facility_id)
    _mark_paid_if_covered(order)
    return payment


def _mark_paid_if_covered(order: Order) -> None:
    if order.delivery_fee is None or is_paid(order.id):
        return
    paid = paid_amount(order.id)
    if paid >= order.total:
        at = now()
        db.session.add(OrderPaid(order_id=order.id, paid_at=at, amount=paid))
        events.payment_received(order.id, at)


def refundable_units(order: Order) -> dict[int, int]:
    """Per line, units paid for and not yet refunded."""
    refunded = dict(
        db.session.execute(
            select(RefundLine.line_id, func.sum(RefundLine.quantity))
            .join(Refund)
            .where(Refund.order_id == order.id, Refund.status != RefundStatus.FAILED)
            .group_by(RefundLine.line_id)
        ).all()
    )
    # Cancelled lines count too: a line cancelled after payment is refunded this way.
    return {line.id: line.quantity - int(refunded.get(line.id, 0)) for line in order.lines}


def plan_refund(order: Order, quantities: Mapping[int, int], reason: str) -> Refund:
    """A refund of some units of some lines at the price they were sold; checked, not saved."""
    if not is_paid(order.id):
        raise PaymentRefused([_("Only a paid order can be refunded.")])
    if not reason.strip():
        raise PaymentRefused([_("Please give the reason for the refund.")])
    wanted = {line_id: qty for line_id, qty in quantities.items() if qty}
    if not wanted:
        raise PaymentRefused([_("Enter the quantity to refund for at least one line.")])
    left = refundable_units(order)
    lines = {line.id: line for line in order.lines}
    problems = [
        _(
            "%(product)s: between 1 and %(left)s can be refunded.",
            product=lines[line_id].product.name if line_id in lines else line_id,
            left=left.get(line_id, 0),
        )
        for line_id, qty in wanted.items()
        if line_id not in left or not 0 < qty <= left[line_id]
    ]
    if problems:
        raise PaymentRefused(problems)
    refund = Refund(
        order_id=order.id,
        method=order.payment_method,
        reason=reason.strip(),
        amount=sum(lines[i].unit_price * q for i, q in wanted.items()),
        status=RefundStatus.PENDING,
    )
    refund.lines = [
        RefundLine(line_id=i, quantity=q, amount=lines[i].unit_price * q) for i, q in wanted.items()
    ]
    if refund.amount > paid_amount(order.id) - refunded_amount(order.id):
        raise PaymentRefused([_("That is more than is left to refund on this order.")])
    return refund


def confirm_refund(refund: Refund) -> bool:
    """The money is back with the buyer; the reversal of proceeds follows. Once only."""
    if refund.status is RefundStatus.SUCCEEDED:
        return False
    refund.status = RefundStatus.SUCCEEDED
    refund.confirmed_at = now()
    db.session.flush()
    events.refund_confirmed(refund.order_id, refund.id, refund.confirmed_at)
    return True


def confirm_receipt(
    order_id: int,
    method: PaymentMethod,
    amount: int,
    received_on: date,
    reference: str,
    user: User,
    note: str = "",
) -> Payment:
    """Staff or finance of the order's facility confirm money received: a transfer seen on the
    account, or cash or card at handover. Partial amounts add up; the order is paid when they
    cover its total."""
    if method is PaymentMethod.CARD:
        raise PaymentRefused([_("Card payments are confirmed by Stripe, not by hand.")])
    if not reference.strip():
        raise PaymentRefused([_("Give the bank's reference or receipt number.")])
    with write_transaction():
        order = locked_order(order_id)
        if not policy.may(user, policy.MONEY_ROLES, order.facility_id):
            raise PaymentRefused([_("That order does not exist.")])
        existing = db.session.scalar(
            select(Payment).where(Payment.method == method, Payment.reference == reference.strip())
        )
        if existing is not None:
            if existing.order_id != order.id:
                raise PaymentRefused([_("That reference is already recorded for another order.")])
            return existing  # the same confirmation again, e.g. a double click
        if order.delivery_fee is None:
            raise PaymentRefused([_("Set the delivery fee first: the total is not known yet.")])
        if is_paid(order.id):
            raise PaymentRefused([_("This order is paid already.")])
        if amount > amount_due(order):
            raise PaymentRefused(
                [
                    _(
                        "That is more than is still due on this order: %(due)s.",
                        due=rupiah(amount_due(order)),
                    )
                ]
            )
        return record_payment(order, method, amount, received_on, reference.strip(), user, note)
