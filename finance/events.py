"""What payments tell the money package. Each event is appended once, keyed, in the caller's
transaction: a replayed webhook or a retried request adds nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from shop.extensions import db

from .models import ProceedsEvent, ProceedsEventKind


def _append(key: str, kind: ProceedsEventKind, order_id: int, at: datetime, refund_id=None) -> bool:  # type: ignore[no-untyped-def]
    if db.session.scalar(select(ProceedsEvent.id).where(ProceedsEvent.key == key)) is not None:
        return False
    db.session.add(
        ProceedsEvent(key=key, kind=kind, order_id=order_id, refund_id=refund_id, occurred_at=at)
    )
    db.session.flush()
    return True


def payment_received(order_id: int, paid_at: datetime) -> bool:
    """The order's payments now cover its total; its proceeds are to be credited."""
    return _append(f"paid:{order_id}", ProceedsEventKind.PAYMENT_RECEIVED, order_id, paid_at)


def refund_confirmed(order_id: int, refund_id: int, at: datetime) -> bool:
    """Money went back to the buyer for some units; what they credited is to be reversed."""
    return _append(f"refund:{refund_id}", ProceedsEventKind.REFUND, order_id, at, refund_id)
