"""Refunds by line and quantity: through Stripe for card payments, recorded for the others."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select

from orders.models import PaymentMethod
from shop import audit
from shop.accounts.models import User
from shop.database import write_transaction
from shop.extensions import db

from . import services, stripe_gateway
from .models import AttemptStatus, CardAttempt, Refund


def request_refund(order_id: int, quantities: Mapping[int, int], reason: str, user: User) -> Refund:
    """Records the refund; a card refund is confirmed later by Stripe's `charge.refunded`."""
    with write_transaction():
        order = services.locked_order(order_id)
        refund = services.plan_refund(order, quantities, reason)
        paid_by_card = db.session.scalar(
            select(CardAttempt.id).where(
                CardAttempt.order_id == order.id, CardAttempt.status == AttemptStatus.SUCCEEDED
            )
        )
        refund.method = PaymentMethod.CARD if paid_by_card else order.payment_method
        refund.created_by_id = user.id
        db.session.add(refund)
        db.session.flush()
        audit.record(
            "refund",
            refund,
            facility_id=order.facility_id,
            extra={"lines": {str(x.line_id): x.quantity for x in refund.lines}},
        )
        if refund.method is not PaymentMethod.CARD:
            services.confirm_refund(refund)
    if refund.method is PaymentMethod.CARD:
        stripe_gateway.refund_by_card(refund)
    return refund
