"""Money tables. `ProceedsEvent` is the boundary with payments: payments append an event when
an order is paid or a refund is confirmed, once per key; the ledger is posted from the events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from shop.extensions import db, str_enum


class ProceedsEventKind(StrEnum):
    PAYMENT_RECEIVED = "payment_received"
    REFUND = "refund"


class ProceedsEvent(db.Model):
    __tablename__ = "proceeds_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[ProceedsEventKind] = mapped_column(str_enum(ProceedsEventKind))
    order_id: Mapped[int] = mapped_column(ForeignKey("customer_order.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refund.id"))
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
