"""Forms of the cart and checkout."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from shop.i18n import lazy_gettext as _l

from .models import DeliveryMethod, PaymentMethod
from .quantities import MAX_QUANTITY

QUANTITY_MESSAGE = _l("Enter a whole number from 1 to 1,000,000.")


class CartLineForm(FlaskForm):
    product_id = IntegerField(validators=[DataRequired()])
    quantity = IntegerField(
        _l("Quantity"),
        validators=[
            DataRequired(message=QUANTITY_MESSAGE),
            NumberRange(min=1, max=MAX_QUANTITY, message=QUANTITY_MESSAGE),
        ],
    )


class RemoveLineForm(FlaskForm):
    product_id = IntegerField(validators=[DataRequired()])


class CheckoutForm(FlaskForm):
    checkout_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])
    delivery_method = RadioField(
        _l("Delivery"),
        choices=[
            SelectChoice(DeliveryMethod.PICKUP.value, _l("I pick the goods up at the facility")),
            SelectChoice(
                DeliveryMethod.DELIVERY.value,
                _l("Deliver to my address (the facility confirms the fee)"),
            ),
        ],
        default=DeliveryMethod.PICKUP.value,
    )
    delivery_address = TextAreaField(
        _l("Delivery address"), validators=[Optional(), Length(max=500)]
    )
    payment_method = RadioField(
        _l("Payment"),
        choices=[
            SelectChoice(PaymentMethod.BANK_TRANSFER.value, _l("Bank transfer")),
            SelectChoice(PaymentMethod.PAY_ON_PICKUP.value, _l("Pay on pickup")),
        ],
        default=PaymentMethod.BANK_TRANSFER.value,
    )
    note = StringField(_l("Note for the facility (optional)"), validators=[Length(max=300)])
    accept_made_to_order = BooleanField(
        _l("I accept that what is not in stock is made to order, ready in the time shown.")
    )


class CancelForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=300)])
