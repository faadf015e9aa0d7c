"""The invoice total in Indonesian words, as a faktur writes it under the figures."""

import pytest

from orders.terbilang import in_words, rupiah_in_words


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (0, "Nol rupiah"),
        (125, "Seratus dua puluh lima rupiah"),  # one besek
        (1_600, "Seribu enam ratus rupiah"),
        (200_000, "Dua ratus ribu rupiah"),  # 1,600 besek at Rp 125
        (1_500_000, "Satu juta lima ratus ribu rupiah"),
        (1_001_001, "Satu juta seribu satu rupiah"),
        (2_000_000_000, "Dua miliar rupiah"),
    ],
)
def test_an_amount_reads_as_the_invoice_writes_it(amount, words):
    assert rupiah_in_words(amount) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [
        # num2words says "satu ribu" here; Indonesian says "seribu".
        (1_001_000, "satu juta seribu"),
        (1_001_001_001, "satu miliar satu juta seribu satu"),
        # Only a thousands group of exactly one becomes "seribu".
        (21_000, "dua puluh satu ribu"),
        (101_000, "seratus satu ribu"),
        (1_000, "seribu"),
    ],
)
def test_a_thousand_is_seribu_wherever_it_stands(number, words):
    assert in_words(number) == words


def test_a_negative_amount_is_a_programming_error():
    with pytest.raises(ValueError):
        in_words(-1)
