"""Order tables: carts, orders per facility, their lines and batch allocations, shipments,
quotes, invoices and API tokens. Stock on hand subtracts `Batch.quantity_allocated`, which the
allocation service keeps equal to the sum of unreleased `LineAllocation` rows."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.models import Batch, Facility, Product
from shop.accounts.models import User
from shop.extensions import db, str_enum

from .lifecycle import OrderStatus


class DeliveryMethod(StrEnum):
    PICKUP = "pickup"
    DELIVERY = "delivery"


class PaymentMethod(StrEnum):
    PAY_ON_PICKUP = "pay_on_pickup"
    BANK_TRANSFER = "bank_transfer"
    CARD = "card"


class CartLine(db.Model):
    """A signed-in buyer's cart; anonymous visitors keep theirs in the session cookie."""

    __tablename__ = "cart_line"
    __table_args__ = (
        UniqueConstraint("user_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    quantity: Mapped[int]
    added_at: Mapped[datetime] = mapped_column(server_default=func.now())

    product: Mapped[Product] = relationship()


class Order(db.Model):
    """One facility's part of a checkout: each facility fulfils and is paid for its own."""

    __tablename__ = "customer_order"
    __table_args__ = (
        # The checkout form's key: placing the same checkout twice finds the first orders.
        UniqueConstraint("checkout_key", "facility_id"),
        CheckConstraint("subtotal >= 0", name="subtotal_not_negative"),
        CheckConstraint("delivery_fee IS NULL OR delivery_fee >= 0", name="fee_not_negative"),
        Index("ix_customer_order_facility_status", "facility_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    checkout_key: Mapped[str] = mapped_column(String(64))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"))
    status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus), default=OrderStatus.PLACED)
    delivery_method: Mapped[DeliveryMethod] = mapped_column(str_enum(DeliveryMethod))
    delivery_address: Mapped[str] = mapped_column(Text, default="")
    # None until the facility confirms what delivery to the address costs.
    delivery_fee: Mapped[int | None]
    payment_method: Mapped[PaymentMethod] = mapped_column(str_enum(PaymentMethod))
    subtotal: Mapped[int]
    note: Mapped[str] = mapped_column(Text, default="")
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    placed_at: Mapped[datetime] = mapped_column(server_default=func.now())

    buyer: Mapped[User] = relationship()
    facility: Mapped[Facility] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", order_by="OrderEvent.id", cascade="all, delete-orphan"
    )
    shipments: Mapped[list[Shipment]] = relationship(
        back_populates="order", order_by="Shipment.id", cascade="all, delete-orphan"
    )
    invoice: Mapped[Invoice | None] = relationship(back_populates="order")

    @property
    def total(self) -> int:
        return self.subtotal + (self.delivery_fee or 0)


class OrderLine(db.Model):
    __tablename__ = "order_line"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint("shipped >= 0 AND shipped <= quantity", name="shipped_within_quantity"),
        CheckConstraint(
            "made_to_order >= 0 AND made_to_order <= quantity", name="made_to_order_within"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("customer_order.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    quantity: Mapped[int]
    # The price is fixed when the order is placed: the tier the quantity reached then.
    unit_price: Mapped[int]
    tier_min_quantity: Mapped[int | None]
    made_to_order: Mapped[int] = mapped_column(default=0)
    # Working days the buyer was told the made-to-order part takes, when they accepted it.
    made_to_order_days: Mapped[int | None]
    shipped: Mapped[int] = mapped_column(default=0)
    cancelled: Mapped[bool] = mapped_column(default=False)
    cancel_reason: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
    allocations: Mapped[list[LineAllocation]] = relationship(
        back_populates="line", order_by="LineAllocation.id", cascade="all, delete-orphan"
    )

    @property
    def line_total(self) -> int:
        return 0 if self.cancelled else self.quantity * self.unit_price

    @property
    def unshipped(self) -> int:
        return 0 if self.cancelled else self.quantity - self.shipped


class LineAllocation(db.Model):
    """Units of a line taken from one batch: the trace from a sale back to who made it."""

    __tablename__ = "line_allocation"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(
        ForeignKey("order_line.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[int] = mapped_column(ForeignKey("production_batch.id"), index=True)
    quantity: Mapped[int]
    released: Mapped[bool] = mapped_column(default=False)

    line: Mapped[OrderLine] = relationship(back_populates="allocations")
    batch: Mapped[Batch] = relationship()


class OrderEvent(db.Model):
    """The status history a buyer and staff see."""

    __tablename__ = "order_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("customer_order.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    note: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[Order] = relationship(back_populates="events")
    user: Mapped[User | None] = relationship()


class Shipment(db.Model):
    """One handover of goods: shipped to the buyer or picked up at the facility."""

    __tablename__ = "shipment"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("customer_order.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    picked_up: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[Order] = relationship(back_populates="shipments")
    lines: Mapped[list[ShipmentLine]] = relationship(
        back_populates="shipment", cascade="all, delete-orphan"
    )


class ShipmentLine(db.Model):
    __tablename__ = "shipment_line"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipment.id", ondelete="CASCADE"), index=True
    )
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), index=True)
    quantity: Mapped[int]

    shipment: Mapped[Shipment] = relationship(back_populates="lines")
    line: Mapped[OrderLine] = relationship()


class QuoteStatus(StrEnum):
    REQUESTED = "requested"
    ANSWERED = "answered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"


class Quote(db.Model):
    """A buyer asks for a quantity above stock or a custom specification; staff answer."""

    __tablename__ = "quote"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price IS NULL OR unit_price >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    quantity: Mapped[int]
    specification: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[QuoteStatus] = mapped_column(
        str_enum(QuoteStatus), default=QuoteStatus.REQUESTED
    )
    unit_price: Mapped[int | None]
    lead_time_days: Mapped[int | None]
    valid_until: Mapped[date | None]
    staff_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    order_id: Mapped[int | None] = mapped_column(ForeignKey("customer_order.id"))

    buyer: Mapped[User] = relationship()
    facility: Mapped[Facility] = relationship()
    product: Mapped[Product] = relationship()


class InvoiceCounter(db.Model):
    """The last invoice number of a facility in a year; its row is locked to take the next."""

    __tablename__ = "invoice_counter"

    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class Invoice(db.Model):
    __tablename__ = "invoice"
    __table_args__ = (UniqueConstraint("facility_id", "year", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("customer_order.id"), unique=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"))
    year: Mapped[int]
    sequence: Mapped[int]
    number: Mapped[str] = mapped_column(String(40), unique=True)
    issued_at: Mapped[datetime] = mapped_column(server_default=func.now())

    order: Mapped[Order] = relationship(back_populates="invoice")


class ApiToken(db.Model):
    """A buyer's token for the JSON API. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship()
