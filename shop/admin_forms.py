"""Admin forms: a facility's details, a new office account, and granting a role."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length
from wtforms.widgets import HiddenInput

from catalog.models import Facility, FacilityKind

from .accounts.forms import phone_number
from .accounts.models import Role
from .extensions import db
from .i18n import lazy_gettext as _l

FACILITY_CLASSES = ("I", "IIA", "IIB", "III")

TIMEZONES = (
    ("Asia/Jakarta", _l("WIB: western Indonesia (Asia/Jakarta, UTC+7)")),
    ("Asia/Makassar", _l("WITA: central Indonesia (Asia/Makassar, UTC+8)")),
    ("Asia/Jayapura", _l("WIT: eastern Indonesia (Asia/Jayapura, UTC+9)")),
)

ROLE_LABELS = {
    Role.BUYER: _l("Buyer"),
    Role.STAFF: _l("Facility staff"),
    Role.FINANCE: _l("Finance"),
    Role.ADMIN: _l("Administrator"),
}

KIND_LABELS = {FacilityKind.RUTAN: "Rutan", FacilityKind.LAPAS: "Lapas"}

# A buyer account needs the business profile made at registration, so the admin grants only these.
OFFICE_ROLES = (Role.STAFF, Role.FINANCE, Role.ADMIN)


def _facility_id(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def _strip(value: str | None) -> str | None:
    return value.strip() if value else value


class FacilityForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)], filters=[_strip])
    kind = SelectField(
        _l("Kind"), choices=[SelectChoice(k.value, label) for k, label in KIND_LABELS.items()]
    )
    facility_class = SelectField(_l("Class"), choices=[SelectChoice(c) for c in FACILITY_CLASSES])
    city = StringField(
        _l("City or regency"),
        validators=[DataRequired(), Length(max=80)],
        filters=[_strip],
    )
    province = StringField(
        _l("Province"), validators=[DataRequired(), Length(max=80)], filters=[_strip]
    )
    regional_office = StringField(
        _l("Regional office (Kanwil)"),
        validators=[DataRequired(), Length(max=120)],
        filters=[_strip],
    )
    timezone = SelectField(
        _l("Time zone"), choices=[SelectChoice(zone, label) for zone, label in TIMEZONES]
    )

    FIELDS = ("name", "kind", "facility_class", "city", "province", "regional_office", "timezone")

    def values(self) -> dict[str, Any]:
        """The facility's column values as the form holds them."""
        values = {name: self[name].data for name in self.FIELDS}
        values["kind"] = FacilityKind(values["kind"])
        return values


def facility_choices(blank: str) -> list[SelectChoice]:
    names = db.session.execute(select(Facility.id, Facility.name).order_by(Facility.name))
    return [SelectChoice("", blank), *(SelectChoice(str(fid), name) for fid, name in names)]


class GrantForm(FlaskForm):
    role = SelectField(
        _l("Role"),
        choices=[SelectChoice(r.value, ROLE_LABELS[r]) for r in OFFICE_ROLES],
        default="staff",
    )
    facility = SelectField(_l("Facility"), coerce=_facility_id)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.facility.choices = facility_choices(
            str(_l("No facility (for regional finance: all facilities)"))
        )

    @property
    def chosen_role(self) -> Role:
        return Role(self.role.data)


class NewUserForm(GrantForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)], filters=[_strip])
    phone = StringField(_l("Phone / WhatsApp"), validators=[DataRequired(), phone_number])


class ConfirmForm(FlaskForm):
    """A button that changes something: only its CSRF token is checked."""


class RevokeForm(ConfirmForm):
    grant = IntegerField(widget=HiddenInput(), validators=[DataRequired()])
