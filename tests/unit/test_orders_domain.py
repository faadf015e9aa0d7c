from datetime import date

import pytest

from orders.allocation import Allocation, BatchStock, allocate
from orders.lifecycle import IllegalTransition, OrderStatus, cancellable, check_transition
from orders.quantities import QuantityProblem, QuantityRule, nearest_valid, problem

OCTOBER = BatchStock(batch_id=2, finished_on=date(2026, 10, 16), available=700)
SEPTEMBER = BatchStock(batch_id=7, finished_on=date(2026, 9, 30), available=900)


def test_allocation_takes_the_older_batch_first():
    plan = allocate(1600, [OCTOBER, SEPTEMBER])
    assert plan.allocations == (Allocation(7, 900), Allocation(2, 700))
    assert plan.made_to_order == 0


def test_allocation_stops_when_the_line_is_covered():
    plan = allocate(500, [OCTOBER, SEPTEMBER])
    assert plan.allocations == (Allocation(7, 500),)


def test_what_stock_cannot_cover_is_made_to_order():
    plan = allocate(2000, [OCTOBER, SEPTEMBER])
    assert plan.from_stock == 1600
    assert plan.made_to_order == 400


def test_empty_batches_are_skipped_and_ties_go_by_batch_id():
    empty = BatchStock(batch_id=1, finished_on=date(2026, 9, 1), available=0)
    twin = BatchStock(batch_id=3, finished_on=date(2026, 9, 30), available=50)
    plan = allocate(100, [twin, empty, SEPTEMBER])
    assert plan.allocations == (Allocation(3, 50), Allocation(7, 50))


def test_allocation_refuses_a_non_positive_quantity():
    with pytest.raises(ValueError):
        allocate(0, [SEPTEMBER])


BESEK = QuantityRule(min_order_qty=100, order_multiple=20)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (0, QuantityProblem.NOT_POSITIVE),
        (-5, QuantityProblem.NOT_POSITIVE),
        (1_000_001, QuantityProblem.TOO_LARGE),
        (80, QuantityProblem.BELOW_MINIMUM),
        (1610, QuantityProblem.NOT_A_MULTIPLE),
        (1600, None),
        (100, None),
    ],
)
def test_quantity_problems(quantity, expected):
    assert problem(quantity, BESEK) == expected


@pytest.mark.parametrize(
    ("quantity", "nearest"),
    [(1, 100), (99, 100), (1609, 1600), (1610, 1620), (1611, 1620), (2_000_000, 1_000_000)],
)
def test_nearest_valid_quantity_is_offered(quantity, nearest):
    assert nearest_valid(quantity, BESEK) == nearest


def test_smallest_quantity_respects_both_minimum_and_pack():
    assert QuantityRule(min_order_qty=30, order_multiple=20).smallest == 40


def test_the_life_cycle_allows_only_its_own_steps():
    check_transition(OrderStatus.PLACED, OrderStatus.CONFIRMED)
    check_transition(OrderStatus.READY, OrderStatus.PICKED_UP)
    with pytest.raises(IllegalTransition):
        check_transition(OrderStatus.PLACED, OrderStatus.SHIPPED)
    with pytest.raises(IllegalTransition):
        check_transition(OrderStatus.SHIPPED, OrderStatus.CANCELLED)
    with pytest.raises(IllegalTransition):
        check_transition(OrderStatus.COMPLETED, OrderStatus.PLACED)


def test_cancelling_is_possible_only_before_shipping():
    assert cancellable(OrderStatus.READY)
    assert not cancellable(OrderStatus.SHIPPED)
    assert not cancellable(OrderStatus.CANCELLED)
