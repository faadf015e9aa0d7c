from catalog.pricing import Tier, lead_time_days, lowest_price, tier_table, unit_price

BESEK_TIERS = [Tier(5000, 115), Tier(10000, 110)]


def test_quantity_below_every_tier_pays_the_base_price():
    assert unit_price(1600, 125, BESEK_TIERS) == 125


def test_quantity_takes_the_highest_tier_it_reaches():
    assert unit_price(5000, 125, BESEK_TIERS) == 115
    assert unit_price(9999, 125, BESEK_TIERS) == 115
    assert unit_price(10000, 125, BESEK_TIERS) == 110


def test_tier_order_in_storage_does_not_matter():
    assert unit_price(12000, 125, list(reversed(BESEK_TIERS))) == 110


def test_tier_table_starts_at_the_minimum_order():
    assert tier_table(125, BESEK_TIERS, 100) == [(100, 125), (5000, 115), (10000, 110)]


def test_tier_table_when_the_minimum_order_already_reaches_a_tier():
    assert tier_table(15000, [Tier(20, 14000), Tier(100, 13500)], 20) == [(20, 14000), (100, 13500)]


def test_lead_time_rounds_up_to_whole_days():
    # Six besek makers at ten pieces a day: 3,400 pieces take 57 days, not 56.67.
    assert lead_time_days(3400, 10, 6) == 57


def test_no_shortfall_needs_no_time():
    assert lead_time_days(0, 10, 6) == 0


def test_nobody_to_make_it_means_no_estimate():
    assert lead_time_days(10, 10, 0) is None


def test_lowest_price_is_the_cheapest_tier_or_the_base_price():
    assert lowest_price(125, [115, 110]) == 110
    assert lowest_price(125, []) == 125
    # A tier dearer than the base price (a data-entry slip) never raises the "from" price.
    assert lowest_price(125, [130]) == 125
