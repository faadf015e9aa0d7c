"""An amount of rupiah in Indonesian words (*terbilang*), as invoices write the total."""

from __future__ import annotations

from num2words import num2words


def in_words(number: int) -> str:
    """The number in Indonesian words, lower case: 1600 -> "seribu enam ratus".

    num2words says "satu ribu" for a thousands group of exactly one inside a larger number
    (1.001.001 -> "satu juta satu ribu satu"); Indonesian says "seribu" there, as it does alone.
    """
    if number < 0:
        raise ValueError(f"no words for a negative amount: {number}")
    above_thousands, below_millions = divmod(number, 1_000_000)
    thousands, units = divmod(below_millions, 1000)
    if thousands != 1:
        return num2words(number, lang="id")
    parts = [num2words(above_thousands * 1_000_000, lang="id")] if above_thousands else []
    parts.append("seribu")
    if units:
        parts.append(num2words(units, lang="id"))
    return " ".join(parts)


def rupiah_in_words(amount: int) -> str:
    """The line an invoice prints under its total: 200000 -> "Dua ratus ribu rupiah"."""
    words = f"{in_words(amount)} rupiah"
    return words[0].upper() + words[1:]
