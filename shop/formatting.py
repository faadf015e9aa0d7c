"""How money, numbers and dates read in the UI, in the visitor's language (or a given one)."""

from __future__ import annotations

from babel import Locale
from babel.numbers import format_currency, format_decimal
from flask import Flask
from flask_babel import get_locale

RUPIAH = "¤ #,##0"


def rupiah(amount: int, locale: str | Locale | None = None) -> str:
    """Rp 1.500.000 in Indonesian; whole rupiah, since IDR has no minor unit in practice."""
    return format_currency(
        amount, "IDR", format=RUPIAH, currency_digits=False, locale=locale or get_locale()
    )


def number(value: int, locale: str | Locale | None = None) -> str:
    return format_decimal(value, format="#,##0", locale=locale or get_locale())


def register(app: Flask) -> None:
    app.add_template_filter(rupiah)
    app.add_template_filter(number)
