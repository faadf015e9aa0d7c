"""Words the UI shows for order codes, translated."""

from __future__ import annotations

from flask import Flask

from shop.i18n import lazy_gettext as _l

from .lifecycle import OrderStatus
from .models import DeliveryMethod, PaymentMethod

STATUS_LABELS = {
    OrderStatus.PLACED: _l("Placed"),
    OrderStatus.CONFIRMED: _l("Confirmed"),
    OrderStatus.IN_PRODUCTION: _l("In production"),
    OrderStatus.READY: _l("Ready"),
    OrderStatus.SHIPPED: _l("Shipped"),
    OrderStatus.PICKED_UP: _l("Picked up"),
    OrderStatus.COMPLETED: _l("Completed"),
    OrderStatus.CANCELLED: _l("Cancelled"),
}
DELIVERY_LABELS = {DeliveryMethod.PICKUP: _l("Pickup"), DeliveryMethod.DELIVERY: _l("Delivery")}
PAYMENT_LABELS = {
    PaymentMethod.PAY_ON_PICKUP: _l("Pay on pickup"),
    PaymentMethod.BANK_TRANSFER: _l("Bank transfer"),
    PaymentMethod.CARD: _l("Card"),
}


def order_label(value: OrderStatus | DeliveryMethod | PaymentMethod) -> str:
    for labels in (STATUS_LABELS, DELIVERY_LABELS, PAYMENT_LABELS):
        if value in labels:
            return str(labels[value])  # type: ignore[index]
    raise KeyError(value)


def register(app: Flask) -> None:
    from .checkout import quantity_message

    app.add_template_global(order_label)
    app.add_template_global(quantity_message, "cart_rule")
