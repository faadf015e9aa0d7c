"""Back-office forms for products, their price tiers and photos, and programmes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from shop.i18n import gettext as _
from shop.i18n import lazy_gettext as _l

from . import rules
from .labels import CATEGORY_LABELS, UNIT_LABELS
from .models import Category, Programme, Unit
from .photos import MAX_PIXELS, PhotoProblem

_RANGE = _l("Enter a number from %(min)s to %(max)s.")

TIER_MESSAGES = {
    rules.TierProblemKind.MISSING_QUANTITY: _l("Enter the quantity this price starts from."),
    rules.TierProblemKind.MISSING_PRICE: _l("Enter the unit price from this quantity."),
    rules.TierProblemKind.QUANTITY_OUT_OF_RANGE: _l(
        "Enter a number from %(min)s to %(max)s.", min=1, max=rules.MAX_QUANTITY
    ),
    rules.TierProblemKind.PRICE_OUT_OF_RANGE: _l(
        "Enter a number from %(min)s to %(max)s.", min=0, max=rules.MAX_PRICE
    ),
    rules.TierProblemKind.QUANTITY_REPEATED: _l("Another tier already starts at this quantity."),
    rules.TierProblemKind.ABOVE_BASE_PRICE: _l(
        "A tier is a discount: its price cannot be above the base price."
    ),
    rules.TierProblemKind.ABOVE_SMALLER_TIER: _l(
        "This price is above the price for a smaller quantity; buying more must not cost more."
    ),
}


def megabytes(size: int) -> str:
    return f"{size / 2**20:g}"


def photo_refusal(problem: PhotoProblem, max_bytes: int) -> str:
    """Why an upload was refused, in the staff member's language."""
    if problem is PhotoProblem.TOO_LARGE:
        return _("The photo is too large: at most %(size)s MB.", size=megabytes(max_bytes))
    if problem is PhotoProblem.TOO_MANY_PIXELS:
        return _(
            "The photo has too many pixels: at most %(count)s megapixels.",
            count=MAX_PIXELS // 1_000_000,
        )
    return _("This file is not an image. Upload a JPEG, PNG or WebP photo.")


class WholeNumberField(IntegerField):
    """An integer input whose error says what to type (people write 1.600 for 1600).

    A blank input is None without an error: InputRequired decides whether blank is allowed.
    """

    def process_formdata(self, valuelist: list[Any]) -> None:
        raw = str(valuelist[0]).strip() if valuelist else ""
        self.data = None
        if raw:
            try:
                self.data = int(raw)
            except ValueError as error:
                raise ValueError(_l("Enter a whole number, without dots or commas.")) from error


def _required_number(low: int, high: int) -> list[Any]:
    return [
        InputRequired(message=_l("Enter a number.")),
        NumberRange(min=low, max=high, message=_RANGE),
    ]


class TierForm(Form):
    """One row of the tier table. Ranges and the rules across rows are in `rules.check_tiers`."""

    min_quantity = WholeNumberField(_l("From quantity"))
    unit_price = WholeNumberField(_l("Unit price (Rp)"))


def _optional_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _category_choices() -> list[SelectChoice]:
    return [SelectChoice(category, CATEGORY_LABELS[category]) for category in Category]


def _unit_choices() -> list[SelectChoice]:
    return [SelectChoice(unit, UNIT_LABELS[unit]) for unit in Unit]


_name_required = DataRequired(message=_l("Enter a name."))


def _at_most(characters: int) -> Length:
    return Length(max=characters, message=_l("Use at most %(max)d characters."))


class ProductForm(FlaskForm):
    name = StringField(_l("Name"), validators=[_name_required, _at_most(160)])
    description = TextAreaField(_l("Description"), validators=[_at_most(4000)])
    programme_id = SelectField(_l("Programme"), coerce=_optional_int, validate_choice=False)
    category = SelectField(_l("Category"), coerce=Category, choices=_category_choices)
    unit = SelectField(_l("Unit"), coerce=Unit, choices=_unit_choices)
    base_price = WholeNumberField(
        _l("Base price per unit (Rp)"), validators=_required_number(0, rules.MAX_PRICE)
    )
    min_order_qty = WholeNumberField(
        _l("Minimum order quantity"), validators=_required_number(1, rules.MAX_QUANTITY), default=1
    )
    order_multiple = WholeNumberField(
        _l("Pack size (order multiple)"),
        validators=_required_number(1, rules.MAX_QUANTITY),
        default=1,
    )
    tiers = FieldList(FormField(TierForm), min_entries=rules.MAX_TIERS, max_entries=rules.MAX_TIERS)
    active = BooleanField(_l("Active: shown in the storefront"), default=True)

    def __init__(self, programmes: Sequence[Programme], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only this facility's programmes are offered, and only they are accepted.
        self.programme_id.choices = [(p.id, p.name) for p in programmes]

    def validate_programme_id(self, field: SelectField) -> None:
        if field.data not in {value for value, _label in field.choices or []}:
            raise ValidationError(_l("Choose one of this facility's programmes."))

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if self._packs_problem():
            self.min_order_qty.errors.append(
                _l(
                    "The minimum order must be a whole number of packs (a multiple of %(pack)s).",
                    pack=self.order_multiple.data,
                )
            )
            valid = False
        if any(row.form.min_quantity.errors or row.form.unit_price.errors for row in self.tiers):
            return False
        base_price = None if self.base_price.errors else self.base_price.data
        check = rules.check_tiers(self.tier_rows(), base_price)
        for problem in check.problems:
            row = self.tiers[problem.row].form
            getattr(row, problem.field).errors.append(TIER_MESSAGES[problem.kind])
        return valid and check.ok

    def _packs_problem(self) -> bool:
        moq, pack = self.min_order_qty, self.order_multiple
        if moq.errors or pack.errors or moq.data is None or pack.data is None:
            return False
        return not rules.min_order_fits_packs(moq.data, pack.data)

    def tier_rows(self) -> list[rules.TierRow]:
        return [(row.form.min_quantity.data, row.form.unit_price.data) for row in self.tiers]

    def draft(self) -> rules.ProductDraft:
        """After a successful validate(): what the services store."""
        return rules.ProductDraft(
            name=(self.name.data or "").strip(),
            description=(self.description.data or "").strip(),
            programme_id=self.programme_id.data,
            category=self.category.data,
            unit=self.unit.data,
            base_price=self.base_price.data,
            min_order_qty=self.min_order_qty.data,
            order_multiple=self.order_multiple.data,
            active=bool(self.active.data),
            tiers=rules.check_tiers(self.tier_rows(), self.base_price.data).tiers,
        )


class ProgrammeForm(FlaskForm):
    name = StringField(_l("Name"), validators=[_name_required, _at_most(120)])
    description = TextAreaField(_l("Description"), validators=[_at_most(4000)])
    pieces_per_wbp_per_day = WholeNumberField(
        _l("Pieces per WBP per day"), validators=_required_number(1, rules.MAX_QUANTITY), default=1
    )

    def draft(self) -> rules.ProgrammeDraft:
        return rules.ProgrammeDraft(
            name=(self.name.data or "").strip(),
            description=(self.description.data or "").strip(),
            pieces_per_wbp_per_day=self.pieces_per_wbp_per_day.data,
        )


class PhotoForm(FlaskForm):
    # No FileAllowed: the name says nothing; catalog.photos reads the format from the bytes.
    photo = FileField(_l("Photo"), validators=[FileRequired(_l("Choose a photo to upload."))])
