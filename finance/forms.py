"""Finance back-office forms (a payout run's period, paying it, a PNBP deposit) and the words the
finance pages show for the ledger's codes."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from catalog.office_forms import DayField, WholeNumberField
from shop.i18n import lazy_gettext as _l

from .models import AccountKind, PayoutMethod, PayoutStatus, PostingKind
from .reports import add_months

# A single deposit above Rp 10 miliar is a typing error, not a facility's PNBP.
MAX_DEPOSIT = 10_000_000_000
MAX_CODE = 40  # billing code and NTPN, as the table stores them

PAYOUT_METHOD_LABELS = {
    PayoutMethod.SAVINGS_ACCOUNT: _l("Savings account"),
    PayoutMethod.PREPAID_CARD: _l("Prepaid card"),
    PayoutMethod.ON_RELEASE: _l("Handed over on release"),
}

PAYOUT_STATUS_LABELS = {
    PayoutStatus.DRAFT: _l("Draft"),
    PayoutStatus.APPROVED: _l("Approved"),
    PayoutStatus.PAID: _l("Paid"),
}

POSTING_KIND_LABELS = {
    PostingKind.RECEIPT: _l("Payment received"),
    PostingKind.PROCEEDS: _l("Sale"),
    PostingKind.REFUND: _l("Refunded sale"),
    PostingKind.PAYOUT: _l("Premi payout"),
    PostingKind.PNBP_DEPOSIT: _l("PNBP deposit"),
}

ACCOUNT_KIND_LABELS = {
    AccountKind.CASH: _l("Cash"),
    AccountKind.CLEARING: _l("Clearing"),
    AccountKind.PREMI: _l("Premi"),
    AccountKind.PNBP: _l("PNBP"),
    AccountKind.MODAL: _l("Modal"),
}

_MONTH = re.compile(r"(\d{4})-(\d{2})")


def plausible(day: date) -> bool:
    """A day whose month, its neighbours and their UTC bounds are all dates Python can hold."""
    return 1900 < day.year < 9999


def parse_month(raw: str) -> date | None:
    """The first day of a month written 2026-10; None for anything else."""
    match = _MONTH.fullmatch(raw.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        return None
    month = date(int(match.group(1)), int(match.group(2)), 1)
    return month if plausible(month) else None


def _plausible_day(_form: FlaskForm, field: DayField) -> None:
    if field.data is not None and not plausible(field.data):
        raise ValidationError(_l("Enter a date as year-month-day, such as 2026-10-16."))


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class PeriodForm(FlaskForm):
    """A run's period: a whole month, or a first and a last day."""

    month = StringField(_l("Month"), filters=[_strip])
    start = DayField(_l("First day"), validators=[Optional(), _plausible_day])
    end = DayField(_l("Last day"), validators=[Optional(), _plausible_day])

    def validate_month(self, field: StringField) -> None:
        if field.data and parse_month(field.data) is None:
            raise ValidationError(_l("Enter a month as year-month, such as 2026-10."))

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.month.data:
            return True
        missing = [f for f in (self.start, self.end) if f.data is None]
        for field in missing:
            field.errors = [*field.errors, _l("Choose a month, or enter the first and last day.")]
        return not missing

    @property
    def period(self) -> tuple[date, date]:
        """The first and last day, once the form is valid."""
        if self.month.data:
            first = parse_month(self.month.data)
            if first is None:
                raise ValueError("the period of an invalid form")
            return first, add_months(first, 1) - timedelta(days=1)
        return self.start.data, self.end.data


class PaidForm(FlaskForm):
    method = SelectField(
        _l("Paid by"),
        choices=[SelectChoice(m.value, label) for m, label in PAYOUT_METHOD_LABELS.items()],
        validators=[InputRequired(message=_l("Choose how the premi was paid."))],
    )


class PnbpDepositForm(FlaskForm):
    amount = WholeNumberField(
        _l("Amount (Rp)"),
        1,
        MAX_DEPOSIT,
        _l("Enter the amount deposited in whole rupiah, such as 24000."),
    )
    billing_code = StringField(
        _l("Billing code"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("Enter the billing code of the deposit.")),
            Length(max=MAX_CODE, message=_l("At most %(max)s characters.", max=MAX_CODE)),
        ],
    )
    ntpn = StringField(
        _l("NTPN"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("Enter the NTPN of the state receipt.")),
            Length(max=MAX_CODE, message=_l("At most %(max)s characters.", max=MAX_CODE)),
        ],
    )
    deposited_on = DayField(
        _l("Deposited on"),
        validators=[
            InputRequired(message=_l("Enter the date of the deposit.")),
            _plausible_day,
        ],
    )
