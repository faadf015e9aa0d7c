"""Forms of quotes: the buyer's request, the staff's answer, and the buyer's acceptance.

The bounds here are what a person may type; the quote's life cycle is checked in `orders.quotes`.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, IntegerField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from shop.i18n import lazy_gettext as _l

from .forms import QUANTITY_MESSAGE, CheckoutForm
from .quantities import MAX_QUANTITY

MAX_SPECIFICATION = 2_000
MAX_STAFF_NOTE = 1_000
# Rp 1 miliar a unit: above anything the workshops make, and within a 32-bit integer column.
MAX_UNIT_PRICE = 1_000_000_000
MAX_LEAD_TIME_DAYS = 365
# An offer longer than a season would outlive the price of bamboo and fabric it was made on.
MAX_VALIDITY_DAYS = 90

PRICE_MESSAGE = _l("Enter a whole number of rupiah from 0 to 1,000,000,000.")
LEAD_TIME_MESSAGE = _l("Enter a whole number of working days from 1 to 365.")


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class QuoteRequestForm(FlaskForm):
    quantity = IntegerField(
        _l("Quantity"),
        validators=[
            DataRequired(message=QUANTITY_MESSAGE),
            NumberRange(min=1, max=MAX_QUANTITY, message=QUANTITY_MESSAGE),
        ],
    )
    specification = TextAreaField(
        _l("What you need (optional): size, colour, pattern, packing, when"),
        filters=[_strip],
        validators=[
            Length(
                max=MAX_SPECIFICATION,
                message=_l("At most %(max)s characters.", max=MAX_SPECIFICATION),
            )
        ],
    )


class QuoteAnswerForm(FlaskForm):
    """Valid-until runs from the facility's today: `today` is the date where the facility is."""

    unit_price = IntegerField(
        _l("Unit price (Rp)"),
        validators=[
            InputRequired(message=PRICE_MESSAGE),
            NumberRange(min=0, max=MAX_UNIT_PRICE, message=PRICE_MESSAGE),
        ],
    )
    lead_time_days = IntegerField(
        _l("Lead time for what is not in stock (working days)"),
        validators=[
            InputRequired(message=LEAD_TIME_MESSAGE),
            NumberRange(min=1, max=MAX_LEAD_TIME_DAYS, message=LEAD_TIME_MESSAGE),
        ],
    )
    valid_until = DateField(
        _l("Valid until"),
        validators=[InputRequired(message=_l("Enter the last day the offer holds."))],
    )
    staff_note = TextAreaField(
        _l("Note for the buyer (optional)"),
        filters=[_strip],
        validators=[
            Length(
                max=MAX_STAFF_NOTE, message=_l("At most %(max)s characters.", max=MAX_STAFF_NOTE)
            )
        ],
    )

    def __init__(self, today: date, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    @property
    def latest_valid_until(self) -> date:
        return self.today + timedelta(days=MAX_VALIDITY_DAYS)

    def validate_valid_until(self, field: DateField) -> None:
        if field.data is None:
            return
        if not self.today <= field.data <= self.latest_valid_until:
            raise ValidationError(
                _l(
                    "Choose a date from today to %(days)s days ahead.",
                    days=MAX_VALIDITY_DAYS,
                )
            )


class QuoteAcceptForm(CheckoutForm):
    """Delivery and payment as at checkout. Accepting the quote accepts its lead time, and the
    quote itself makes the order idempotent, so the checkout's key and consent box are dropped."""

    checkout_key = None  # type: ignore[assignment]
    accept_made_to_order = None  # type: ignore[assignment]
    # The answer the buyer read (`orders.quotes.answer_fingerprint`), set by the page.
    answer_seen = HiddenField()


class QuoteDeclineForm(FlaskForm):
    """Only the CSRF token: declining asks nothing more."""
