"""The split of proceeds, exact to the rupiah, with the besek sale from the field."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finance.shares import largest_remainder
from finance.split import DEFAULT_RULE, Maker, SplitBase, SplitRule, split_sale

BESEK_MAKERS = [Maker(w, c) for w, c in enumerate((300, 290, 270, 260, 250, 230), start=1)]


def test_the_besek_sale_from_the_field():
    shares = split_sale(1600, 125, 1600, 40_000, DEFAULT_RULE, BESEK_MAKERS)
    assert shares.gross == 200_000
    assert shares.material_recovered == 40_000
    assert shares.net == 160_000
    assert (shares.premi, shares.pnbp, shares.modal) == (80_000, 24_000, 56_000)
    assert shares.premi_by_wbp == {1: 15_000, 2: 14_500, 3: 13_500, 4: 13_000, 5: 12_500, 6: 11_500}
    assert sum(shares.premi_by_wbp.values()) == 80_000


def test_a_gross_rule_recovers_nothing_first():
    namlea = SplitRule(premi_bp=3000, pnbp_bp=3500, modal_bp=3500, base=SplitBase.GROSS)
    makers = [Maker(w, 1) for w in range(1, 8)]
    shares = split_sale(330, 3849, 330, 100_000, namlea, makers)  # ~Rp 1.270.000 of greens
    assert shares.material_recovered == 0
    assert shares.gross == 1_270_170
    assert shares.premi == 381_051  # 30% of the turnover
    assert sum(shares.premi_by_wbp.values()) == shares.premi


def test_net_proceeds_never_go_below_zero():
    shares = split_sale(10, 20, 100, 5_000, DEFAULT_RULE, BESEK_MAKERS)  # cost 50 a piece
    assert shares.material_recovered == 200
    assert (shares.premi, shares.pnbp, shares.modal) == (0, 0, 0)


def test_leftover_rupiah_go_to_the_largest_remainders_then_the_first_given():
    assert largest_remainder(100, [("a", 1), ("b", 1), ("c", 1)]) == {"a": 34, "b": 33, "c": 33}
    assert largest_remainder(-100, [("a", 1), ("b", 1), ("c", 1)]) == {"a": -34, "b": -33, "c": -33}
    assert largest_remainder(10, [("a", 2), ("b", 1)]) == {"a": 7, "b": 3}


def test_a_rule_must_add_up_to_everything():
    with pytest.raises(ValueError):
        SplitRule(premi_bp=5000, pnbp_bp=1500, modal_bp=3000)


rules = (
    st.tuples(st.integers(0, 10_000), st.integers(0, 10_000))
    .filter(lambda t: t[0] + t[1] <= 10_000)
    .map(lambda t: SplitRule(t[0], t[1], 10_000 - t[0] - t[1], SplitBase.NET))
)
makers = st.lists(st.integers(1, 500), min_size=1, max_size=12).map(
    lambda cs: [Maker(i + 1, c) for i, c in enumerate(cs)]
)


@given(
    total=st.integers(-(10**12), 10**12),
    weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=20).filter(any),
)
def test_largest_remainder_always_adds_up_exactly(total, weights):
    parts = largest_remainder(total, list(enumerate(weights)))
    assert sum(parts.values()) == total
    whole = sum(weights)
    for i, weight in enumerate(weights):
        assert abs(parts[i] - total * weight / whole) < 1


@given(
    units=st.integers(0, 100_000),
    price=st.integers(0, 5_000_000),
    made=st.integers(1, 100_000),
    cost=st.integers(0, 10**9),
    rule=rules,
    people=makers,
)
def test_every_split_adds_up_to_the_gross(units, price, made, cost, rule, people):
    shares = split_sale(units, price, made, cost, rule, people)
    assert shares.material_recovered + shares.premi + shares.pnbp + shares.modal == shares.gross
    assert sum(shares.premi_by_wbp.values()) == shares.premi
    assert 0 <= shares.material_recovered <= shares.gross
    assert all(v >= 0 for v in shares.premi_by_wbp.values())
