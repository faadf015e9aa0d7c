"""Price tiers, order-quantity rules and lead time: pure functions over plain values."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    min_quantity: int
    unit_price: int


def applied_tier(quantity: int, tiers: Iterable[Tier]) -> Tier | None:
    """The highest tier that `quantity` reaches, if any."""
    reached: Tier | None = None
    for tier in tiers:
        if tier.min_quantity <= quantity and (
            reached is None or tier.min_quantity > reached.min_quantity
        ):
            reached = tier
    return reached


def unit_price(quantity: int, base_price: int, tiers: Iterable[Tier]) -> int:
    """The price per unit for a line of `quantity`: the highest tier the quantity reaches."""
    tier = applied_tier(quantity, tiers)
    return base_price if tier is None else tier.unit_price


def lowest_price(base_price: int, tier_prices: Iterable[int]) -> int:
    """The "from" price a card shows: the cheapest a unit can be at any quantity."""
    return min([base_price, *tier_prices])


def tier_table(base_price: int, tiers: Sequence[Tier], min_order_qty: int) -> list[tuple[int, int]]:
    """Rows of (from quantity, unit price) as a buyer reads them, starting at the MOQ."""
    rows = [(min_order_qty, unit_price(min_order_qty, base_price, tiers))]
    for tier in sorted(tiers, key=lambda t: t.min_quantity):
        if tier.min_quantity > min_order_qty:
            rows.append((tier.min_quantity, tier.unit_price))
    return rows


def lead_time_days(shortfall: int, pieces_per_wbp_per_day: int, active_makers: int) -> int | None:
    """Working days to make `shortfall` units; None when nobody is there to make them."""
    if shortfall <= 0:
        return 0
    capacity = pieces_per_wbp_per_day * active_makers
    if capacity <= 0:
        return None
    return math.ceil(shortfall / capacity)
