"""Order quantity rules a buyer can break: minimum order, pack size and the upper bound."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

MAX_QUANTITY = 1_000_000


class QuantityProblem(StrEnum):
    NOT_POSITIVE = "not_positive"
    TOO_LARGE = "too_large"
    BELOW_MINIMUM = "below_minimum"
    NOT_A_MULTIPLE = "not_a_multiple"


@dataclass(frozen=True)
class QuantityRule:
    min_order_qty: int = 1
    order_multiple: int = 1

    @property
    def smallest(self) -> int:
        """The smallest quantity that satisfies both the minimum and the pack size."""
        return math.ceil(self.min_order_qty / self.order_multiple) * self.order_multiple

    @property
    def largest(self) -> int:
        return (MAX_QUANTITY // self.order_multiple) * self.order_multiple


def problem(quantity: int, rule: QuantityRule) -> QuantityProblem | None:
    if quantity <= 0:
        return QuantityProblem.NOT_POSITIVE
    if quantity > MAX_QUANTITY:
        return QuantityProblem.TOO_LARGE
    if quantity < rule.min_order_qty:
        return QuantityProblem.BELOW_MINIMUM
    if quantity % rule.order_multiple:
        return QuantityProblem.NOT_A_MULTIPLE
    return None


def nearest_valid(quantity: int, rule: QuantityRule) -> int:
    """The allowed quantity closest to what the buyer asked for (rounding up on a tie)."""
    if quantity <= rule.smallest:
        return rule.smallest
    if quantity >= rule.largest:
        return rule.largest
    below = (quantity // rule.order_multiple) * rule.order_multiple
    above = below + rule.order_multiple
    if below < rule.smallest:
        return above
    return below if quantity - below < above - quantity else above
