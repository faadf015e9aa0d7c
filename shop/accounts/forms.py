"""Sign-in, registration and password forms."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    Length,
    Optional,
    ValidationError,
)

from shop.i18n import lazy_gettext as _l

MIN_PASSWORD = 10


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    remember = BooleanField(_l("Remember me on this device"))


class NewPasswordForm(FlaskForm):
    password = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(min=MIN_PASSWORD, max=200)]
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


def phone_number(_form: FlaskForm, field: StringField) -> None:
    digits = re.sub(r"[\s\-()+]", "", field.data or "")
    if not digits.isdecimal() or not 8 <= len(digits) <= 15:
        raise ValidationError(_l("Enter a phone or WhatsApp number of 8 to 15 digits."))


def _npwp(_form: FlaskForm, field: StringField) -> None:
    digits = re.sub(r"[.\-\s]", "", field.data or "")
    if digits and (not digits.isdecimal() or len(digits) not in (15, 16)):
        raise ValidationError(_l("An NPWP has 15 or 16 digits."))


class RegisterForm(NewPasswordForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])
    business_name = StringField(_l("Business name"), validators=[DataRequired(), Length(max=160)])
    contact_person = StringField(_l("Contact person"), validators=[DataRequired(), Length(max=120)])
    phone = StringField(_l("Phone / WhatsApp"), validators=[DataRequired(), phone_number])
    address = TextAreaField(_l("Address"), validators=[DataRequired(), Length(max=500)])
    npwp = StringField(_l("NPWP (optional)"), validators=[Optional(), _npwp])


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])
