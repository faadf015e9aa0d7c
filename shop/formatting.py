"""How money, numbers and dates read in the UI, in the visitor's language."""

from __future__ import annotations

from flask import Flask
from flask_babel import format_currency, format_decimal


def rupiah(amount: int) -> str:
    """Rp 1.500.000 in Indonesian; whole rupiah, since IDR has no minor unit in practice."""
    return format_currency(amount, "IDR", format="¤ #,##0", currency_digits=False)


def number(value: int) -> str:
    return format_decimal(value, format="#,##0")


def register(app: Flask) -> None:
    app.add_template_filter(rupiah)
    app.add_template_filter(number)
