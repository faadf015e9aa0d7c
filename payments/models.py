"""Payment tables: card attempts, payments received, refunds, Stripe events, transfer proofs."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orders.models import Order, OrderLine, PaymentMethod
from shop.extensions import db, str_enum


class AttemptStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # Stripe took the money but the order refused it (cancelled, or less is due now): it goes
    # back whole by a Stripe refund, and it never was a Payment.
    RETURNING = "returning"
    RETURNED = "returned"  # Stripe made that refund: `refund_id`


class CardAttempt(db.Model):
    """One try at paying an order by card: stored before Stripe is called, so a retried request
    finds it instead of creating a second PaymentIntent."""

    __tablename__ = "card_attempt"
    __table_args__ = (UniqueConstraint("order_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("customer_order.id"), index=True)
    number: Mapped[int]
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    intent_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    amount: Mapped[int]  # rupiah; Stripe is sent amount × 100
    status: Mapped[AttemptStatus] = mapped_column(
        str_enum(AttemptStatus), default=AttemptStatus.PENDING
    )
    failure: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The refund that returns a refused payment; while its call to Stripe runs, no other starts.
    refund_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    return_started_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship()


class Payment(db.Model):
    """Money received for an order. `reference` makes recording the same receipt twice fail."""

    __tablename__ = "payment"
    __table_args__ = (
        UniqueConstraint("method", "reference"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("customer_order.id"), index=True)
    method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod))
    amount: Mapped[int]
    received_on: Mapped[date]
    reference: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    order: Mapped[Order] = relationship()


class OrderPaid(db.Model):
    """The moment an order's payments first covered its total: written once, so the proceeds
    of an order are credited once, however often a payment is reported."""

    __tablename__ = "order_paid"

    order_id: Mapped[int] = mapped_column(ForeignKey("customer_order.id"), primary_key=True)
    paid_at: Mapped[datetime]
    amount: Mapped[int]


class RefundStatus(StrEnum):
    PENDING = "pending"  # sent to Stripe, waiting for its charge.refunded event
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Refund(db.Model):
    __tablename__ = "refund"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("customer_order.id"), index=True)
    method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod))
    amount: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[RefundStatus] = mapped_column(str_enum(RefundStatus))
    stripe_refund_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    confirmed_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship()
    lines: Mapped[list[RefundLine]] = relationship(
        back_populates="refund", cascade="all, delete-orphan"
    )


class RefundLine(db.Model):
    __tablename__ = "refund_line"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refund.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), index=True)
    quantity: Mapped[int]
    amount: Mapped[int]

    refund: Mapped[Refund] = relationship(back_populates="lines")
    line: Mapped[OrderLine] = relationship()


class StripeEvent(db.Model):
    """Every Stripe event id handled: a replayed webhook finds its id here and changes nothing."""

    __tablename__ = "stripe_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(80), unique=True)
    type: Mapped[str] = mapped_column(String(80))
    outcome: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TransferProof(db.Model):
    __tablename__ = "transfer_proof"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("customer_order.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class BankAccount(db.Model):
    """Where buyers transfer money for a facility's orders."""

    __tablename__ = "bank_account"

    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), primary_key=True)
    bank: Mapped[str] = mapped_column(String(80))
    number: Mapped[str] = mapped_column(String(40))
    holder: Mapped[str] = mapped_column(String(120))
