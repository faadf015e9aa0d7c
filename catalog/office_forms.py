"""Back-office forms for the WBP register, production batches and CSV imports.

Choices that name records (a product, a WBP, a facility) are filled by the view from what the
facility may use; a posted id outside them is a form error, so no other facility's record is used.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from shop.i18n import lazy_gettext as _l

from .csv_import import MAX_NAME, MAX_REGISTRATION_NUMBER
from .models import ContributionBasis, WbpStatus
from .production import MAX_CONTRIBUTION, MAX_MATERIAL_COST, MAX_QUANTITY

WBP_STATUS_LABELS = {
    WbpStatus.ACTIVE: _l("Active"),
    WbpStatus.RELEASED: _l("Released"),
    WbpStatus.TRANSFERRED: _l("Transferred"),
}

BASIS_LABELS = {
    ContributionBasis.PIECES: _l("Pieces made"),
    ContributionBasis.HOURS: _l("Hours worked"),
}


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _listed(message: str):  # type: ignore[no-untyped-def]
    """A validator: the chosen id must be one of the field's choices."""

    def check(_form: FlaskForm, field: SelectField) -> None:
        if field.data not in {choice.value for choice in field.choices or []}:
            raise ValidationError(message)

    return check


def _choice_id(value: object) -> int | None:
    """Coerces a posted id; anything not a number is no choice at all (a form error, not a 500)."""
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


class WbpForm(FlaskForm):
    registration_number = StringField(
        _l("Registration number"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("Enter the registration number.")),
            Length(
                max=MAX_REGISTRATION_NUMBER,
                message=_l("At most %(max)s characters.", max=MAX_REGISTRATION_NUMBER),
            ),
        ],
    )
    name = StringField(
        _l("Name"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("Enter the name.")),
            Length(max=MAX_NAME, message=_l("At most %(max)s characters.", max=MAX_NAME)),
        ],
    )


class TransferForm(FlaskForm):
    target = SelectField(
        _l("Transfer to"),
        coerce=_choice_id,
        validate_choice=False,
        validators=[_listed(_l("Choose another facility."))],
    )


class BatchForm(FlaskForm):
    product = SelectField(
        _l("Product"),
        coerce=_choice_id,
        validate_choice=False,
        validators=[_listed(_l("Choose a product of this facility."))],
    )
    code = StringField(
        _l("Batch code"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("Enter a code for the batch, such as BSK-2026-10.")),
            Length(max=40, message=_l("At most %(max)s characters.", max=40)),
        ],
    )
    contribution_basis = SelectField(
        _l("Contributions counted in"),
        choices=[SelectChoice(basis.value, label) for basis, label in BASIS_LABELS.items()],
        validate_choice=False,
        validators=[_listed(_l("Choose pieces or hours."))],
    )


class WholeNumberField(IntegerField):
    """Digits only: "1.600" or "-5" is an error to fix, never a guess at what was meant."""

    def __init__(self, label: str, low: int, high: int, message: str, **kwargs: Any) -> None:
        super().__init__(label, validators=[_in_range(low, high, message)], **kwargs)

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist:
            return
        raw = valuelist[0].strip()
        self.data = int(raw) if raw.isdecimal() and raw.isascii() and len(raw) < 12 else None


def _in_range(low: int, high: int, message: str):  # type: ignore[no-untyped-def]
    def check(_form: FlaskForm, field: IntegerField) -> None:
        if field.data is None or not low <= field.data <= high:
            raise ValidationError(message)

    return check


class DayField(DateField):
    """A date; a value that is not one gets a message in the visitor's language."""

    def process_formdata(self, valuelist: list[str]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Enter a date as year-month-day, such as 2026-10-16.")) from None


class FinishForm(FlaskForm):
    quantity_made = WholeNumberField(
        _l("Quantity made"),
        1,
        MAX_QUANTITY,
        _l("Enter the quantity made as a whole number from 1 to 1,000,000."),
    )
    material_cost = WholeNumberField(
        _l("Material cost (Rp)"),
        0,
        MAX_MATERIAL_COST,
        _l("Enter the material cost in whole rupiah, from 0 to 2,000,000,000."),
    )
    finished_on = DayField(
        _l("Finished on"), validators=[InputRequired(message=_l("Enter the date it was finished."))]
    )


class ParticipantForm(FlaskForm):
    wbp = SelectField(
        _l("WBP"),
        coerce=_choice_id,
        validate_choice=False,
        validators=[_listed(_l("Choose an active WBP of this facility."))],
    )
    contribution = WholeNumberField(
        _l("Contribution"),
        1,
        MAX_CONTRIBUTION,
        _l("Enter the contribution as a whole number from 1 to 1,000,000."),
    )


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(message=_l("Choose a CSV file."))])
