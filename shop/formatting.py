"""How money, numbers and dates read in the UI, in the visitor's language (or a given one)."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale
from babel.numbers import format_currency, format_decimal
from flask import Flask

from .i18n import current_locale

RUPIAH = "¤ #,##0"
# Prices repeat across a listing and between requests, and Babel parses its pattern on every
# call: remembering the last few thousand strings is most of a listing's number formatting.
REMEMBERED = 4096


def rupiah(amount: int, locale: str | Locale | None = None) -> str:
    """Rp 1.500.000 in Indonesian; whole rupiah, since IDR has no minor unit in practice."""
    return _rupiah(amount, Locale.parse(locale or current_locale()))


def number(value: int, locale: str | Locale | None = None) -> str:
    return _number(value, Locale.parse(locale or current_locale()))


@lru_cache(maxsize=REMEMBERED)
def _rupiah(amount: int, locale: Locale) -> str:
    return format_currency(amount, "IDR", format=RUPIAH, currency_digits=False, locale=locale)


@lru_cache(maxsize=REMEMBERED)
def _number(value: int, locale: Locale) -> str:
    return format_decimal(value, format="#,##0", locale=locale)


def register(app: Flask) -> None:
    app.add_template_filter(rupiah)
    app.add_template_filter(number)
