"""What payments tell the money package. Each event is appended once, keyed, in the caller's
transaction: a replayed webhook or a retried request adds nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from shop.extensions import db

from . import proceeds
from .models import ProceedsEvent, ProceedsEventKind


def _append(
    key: str, kind: ProceedsEventKind, order_id: int, at: datetime, refund_id: int | None = None
) -> bool:
    if db.session.scalar(select(ProceedsEvent.id).where(ProceedsEvent.key == key)) is not None:
        return False
    db.session.add(
        ProceedsEvent(key=key, kind=kind, order_id=order_id, refund_id=refund_id, occurred_at=at)
    )
    db.session.flush()
    return True


def payment_received(order_id: int, paid_at: datetime) -> bool:
    """The order's payments now cover its total: its proceeds are credited, in this transaction."""
    if not _append(f"paid:{order_id}", ProceedsEventKind.PAYMENT_RECEIVED, order_id, paid_at):
        return False
    proceeds.credit_order(order_id, paid_at)
    return True


def refund_confirmed(order_id: int, refund_id: int, at: datetime) -> bool:
    """Money went back to the buyer for some units: what they credited is reversed."""
    if not _append(f"refund:{refund_id}", ProceedsEventKind.REFUND, order_id, at, refund_id):
        return False
    proceeds.reverse_refund(refund_id, order_id, at)
    return True


def units_allocated(order_id: int, allocation_ids: list[int], at: datetime) -> None:
    """Made-to-order units of an order now come from batches; if it is paid, credit them."""
    proceeds.credit_allocations_if_paid(order_id, allocation_ids, at)
