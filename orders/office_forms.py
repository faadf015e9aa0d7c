"""Back-office forms of an order: status, delivery fee, handover (shipment) and cancellation.

Each field has a name of its own across the forms, because they all share the order's page.
The cancel form of the whole order is the buyer's `orders.forms.CancelForm`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from shop.i18n import lazy_gettext as _l

from .fulfilment import (
    MAX_DELIVERY_FEE,
    can_hand_over,
    fee_settable,
    line_cancellable,
    order_cancellable,
)
from .labels import STATUS_LABELS
from .lifecycle import ALLOWED, OrderStatus
from .models import Order, OrderLine

MAX_NOTE = 300

# Handovers go through the shipment form and cancellation through the cancel forms: the
# status buttons offer every other step.
NOT_A_STATUS_BUTTON = frozenset({OrderStatus.SHIPPED, OrderStatus.PICKED_UP, OrderStatus.CANCELLED})
BUTTON_STATUSES = tuple(s for s in OrderStatus if s not in NOT_A_STATUS_BUTTON)


def next_statuses(current: OrderStatus) -> list[OrderStatus]:
    """The status buttons an order in `current` shows, in life-cycle order."""
    return [s for s in BUTTON_STATUSES if s in ALLOWED[current]]


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class StatusForm(FlaskForm):
    """One button per next status; each button posts its status as `status`."""

    status = SelectField(
        _l("New status"),
        choices=[SelectChoice(s.value, STATUS_LABELS[s]) for s in BUTTON_STATUSES],
        validators=[InputRequired(message=_l("Choose the new status."))],
    )


class DeliveryFeeForm(FlaskForm):
    delivery_fee = IntegerField(
        _l("Delivery fee (Rp)"),
        validators=[
            InputRequired(message=_l("Enter the delivery fee in whole rupiah.")),
            NumberRange(
                min=0,
                max=MAX_DELIVERY_FEE,
                message=_l("Enter a whole number of rupiah from 0 to 100,000,000."),
            ),
        ],
    )


class Handover(StrEnum):
    PICKED_UP = "picked_up"
    SHIPPED = "shipped"


class ShipmentForm(FlaskForm):
    """What is handed over now; `shipment_form` adds one quantity field per line with units left."""

    handover = RadioField(
        _l("Handover"),
        choices=[
            SelectChoice(Handover.PICKED_UP, _l("Picked up at the facility")),
            SelectChoice(Handover.SHIPPED, _l("Shipped to the buyer")),
        ],
        validators=[InputRequired(message=_l("Choose how the goods were handed over."))],
    )
    shipment_note = StringField(
        _l("Note (optional)"),
        filters=[_strip],
        validators=[Optional(), Length(max=MAX_NOTE)],
    )

    line_fields: list[tuple[OrderLine, str]]

    @property
    def quantities(self) -> dict[int, int]:
        """Line id -> units handed over now; a blank field counts as none."""
        return {line.id: self[name].data or 0 for line, name in self.line_fields}

    @property
    def picked_up(self) -> bool:
        return self.handover.data == Handover.PICKED_UP

    def validate(self, extra_validators=None) -> bool:  # type: ignore[no-untyped-def]
        if not super().validate(extra_validators):
            return False
        if not any(self.quantities.values()):
            self.form_errors.append(_l("Enter the quantity handed over for at least one line."))
            return False
        return True


def quantity_field_name(line: OrderLine) -> str:
    return f"quantity_{line.id}"


def shipment_form(lines: Iterable[OrderLine], picked_up: bool, posted: bool = True) -> ShipmentForm:
    """The shipment form of an order: a quantity from 0 to what is left, for each line with
    units left (the fulfilment service checks it again under the order's lock)."""
    open_lines = [line for line in lines if line.unshipped > 0]

    class OrderShipmentForm(ShipmentForm):
        pass

    for line in open_lines:
        setattr(
            OrderShipmentForm,
            quantity_field_name(line),
            IntegerField(
                line.product.name,
                default=0,
                validators=[
                    Optional(),
                    NumberRange(
                        min=0,
                        max=line.unshipped,
                        message=_l(
                            "Enter a whole number from 0 to %(left)s: the units still to "
                            "hand over.",
                            left=line.unshipped,
                        ),
                    ),
                ],
            ),
        )
    # The default is what the buyer chose at checkout; a post without a handover is still an error.
    default = Handover.PICKED_UP if picked_up else Handover.SHIPPED
    posted_data = {} if posted else {"formdata": None}
    form = OrderShipmentForm(handover=default, **posted_data)
    form.line_fields = [(line, quantity_field_name(line)) for line in open_lines]
    return form


class CancelLineForm(FlaskForm):
    # Any posted id is accepted here: the view answers 404 for a line of another order and the
    # fulfilment service refuses a line that can no longer be cancelled.
    line_id = SelectField(
        _l("Line"),
        coerce=int,
        validate_choice=False,
        validators=[InputRequired(message=_l("Choose the line to cancel."))],
    )
    line_reason = StringField(
        _l("Reason"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("Please give a reason for cancelling.")),
            Length(max=MAX_NOTE),
        ],
    )


@dataclass(frozen=True)
class OrderActions:
    """Which action forms the order's page offers staff. The fulfilment service decides again
    under the order's lock; this only spares staff a button that would be refused."""

    statuses: list[OrderStatus]
    delivery_fee: bool
    shipment: bool
    cancel_order: bool
    cancellable_lines: list[OrderLine]

    @property
    def cancel_line(self) -> bool:
        """Offered unless the only line left is better cancelled with the whole order."""
        return len(self.cancellable_lines) > 1 or (
            bool(self.cancellable_lines) and not self.cancel_order
        )


def available_actions(order: Order) -> OrderActions:
    return OrderActions(
        statuses=next_statuses(order.status),
        delivery_fee=fee_settable(order),
        shipment=can_hand_over(order),
        cancel_order=order_cancellable(order),
        cancellable_lines=[line for line in order.lines if line_cancellable(order, line)],
    )
