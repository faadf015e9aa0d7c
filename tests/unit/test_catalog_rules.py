"""What staff may enter about a product: slugs, packs and price tiers, without a database."""

from hypothesis import given
from hypothesis import strategies as st

from catalog.pricing import Tier, unit_price
from catalog.rules import (
    MAX_PRICE,
    MAX_QUANTITY,
    TierProblem,
    TierProblemKind,
    check_tiers,
    min_order_fits_packs,
    product_slug_base,
    slugify,
    tier_rows,
    unique_slug,
)

BLANK = (None, None)


def test_slug_is_the_name_and_the_place_of_the_facility():
    assert product_slug_base("Besek bambu", "rutan-banjarnegara") == "besek-bambu-banjarnegara"
    assert product_slug_base("Keset kain perca", "lapas-magetan") == "keset-kain-perca-magetan"


def test_slug_keeps_only_plain_letters_and_digits():
    assert slugify("  Kursi Kayu (Jati) — 2 dudukan!  ") == "kursi-kayu-jati-2-dudukan"
    assert slugify("Kopi Ruteng Café") == "kopi-ruteng-cafe"


def test_a_taken_slug_gets_the_next_free_number():
    taken = {"besek-bambu-banjarnegara", "besek-bambu-banjarnegara-2"}
    assert unique_slug("besek-bambu-banjarnegara", taken, 120, "product") == (
        "besek-bambu-banjarnegara-3"
    )
    assert unique_slug("tas-rajut-banjarnegara", taken, 120, "product") == "tas-rajut-banjarnegara"


def test_a_long_slug_is_cut_so_that_its_number_still_fits():
    base = "besek-" * 30
    slug = unique_slug(base, {base[:20].strip("-")}, 20, "product")
    assert len(slug) <= 20
    assert slug.endswith("-2")


def test_a_name_without_latin_letters_falls_back_to_a_plain_slug():
    assert unique_slug(slugify("★★★"), {"product"}, 120, "product") == "product-2"


def test_the_minimum_order_must_be_whole_packs():
    assert min_order_fits_packs(100, 20)  # besek: 100 pieces, sold by the kodi
    assert not min_order_fits_packs(50, 20)
    assert min_order_fits_packs(10, 1)


def test_besek_tiers_are_read_smallest_quantity_first_and_blank_rows_are_ignored():
    rows = [(10000, 110), BLANK, (5000, 115), BLANK, BLANK]
    check = check_tiers(rows, base_price=125)
    assert check.ok
    assert check.tiers == [Tier(5000, 115), Tier(10000, 110)]


def test_no_tiers_at_all_is_fine():
    assert check_tiers([BLANK] * 5, base_price=125) == check_tiers([], base_price=125)
    assert check_tiers([], base_price=125).ok


def test_a_half_filled_row_says_what_is_missing():
    check = check_tiers([(5000, None), (None, 110)], base_price=125)
    assert check.problems == [
        TierProblem(0, TierProblemKind.MISSING_PRICE),
        TierProblem(1, TierProblemKind.MISSING_QUANTITY),
    ]
    assert check.tiers == []


def test_two_tiers_cannot_start_at_the_same_quantity():
    check = check_tiers([(5000, 115), (5000, 110)], base_price=125)
    assert check.problems == [TierProblem(1, TierProblemKind.QUANTITY_REPEATED)]
    assert check.problems[0].field == "min_quantity"


def test_quantities_start_at_one_and_prices_at_zero():
    check = check_tiers([(0, 100), (-5, 100), (10, -1), (MAX_QUANTITY + 1, 1)], base_price=125)
    kinds = [(p.row, p.kind) for p in check.problems]
    assert kinds == [
        (0, TierProblemKind.QUANTITY_OUT_OF_RANGE),
        (1, TierProblemKind.QUANTITY_OUT_OF_RANGE),
        (2, TierProblemKind.PRICE_OUT_OF_RANGE),
        (3, TierProblemKind.QUANTITY_OUT_OF_RANGE),
    ]


def test_a_free_tier_is_allowed():
    assert check_tiers([(1000, 0)], base_price=125).ok


def test_a_tier_above_the_base_price_is_refused():
    check = check_tiers([(5000, 130)], base_price=125)
    assert check.problems == [TierProblem(0, TierProblemKind.ABOVE_BASE_PRICE)]
    assert check.problems[0].field == "unit_price"


def test_a_tier_at_the_base_price_is_allowed():
    assert check_tiers([(5000, 125)], base_price=125).ok


def test_buying_more_never_costs_more_per_unit():
    # Typed in any order: the 10,000 tier is dearer than the 5,000 one, a mistake.
    check = check_tiers([(10000, 120), (5000, 115)], base_price=125)
    assert check.problems == [TierProblem(0, TierProblemKind.ABOVE_SMALLER_TIER)]


def test_without_a_valid_base_price_only_the_rows_themselves_are_checked():
    assert check_tiers([(5000, MAX_PRICE)], base_price=None).ok


def test_tier_rows_are_plain_pairs_for_the_audit_log():
    assert tier_rows([Tier(10000, 110), Tier(5000, 115)]) == [[5000, 115], [10000, 110]]


rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(-10, 20_000)),
        st.one_of(st.none(), st.integers(-10, 200)),
    ),
    max_size=5,
)


@given(rows, st.integers(0, 200))
def test_accepted_tiers_always_make_sense_to_a_buyer(rows, base_price):
    check = check_tiers(rows, base_price)
    if not check.ok:
        assert check.tiers == []
        return
    quantities = [t.min_quantity for t in check.tiers]
    assert quantities == sorted(set(quantities))
    assert all(q >= 1 for q in quantities)
    # Ordering more never raises the unit price.
    prices = [unit_price(q, base_price, check.tiers) for q in range(1, 20_001, 97)]
    assert prices == sorted(prices, reverse=True)
