"""Dividing rupiah exactly: the largest-remainder method.

The parts are integers that always add up to the whole; a leftover rupiah goes to the part with
the largest fractional remainder, and ties go by the order the parts were given in (callers pass
participants in id order).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def largest_remainder(total: int, weights: Sequence[tuple[K, int]]) -> dict[K, int]:
    """Splits `total` rupiah in proportion to the weights; negative totals split the same way."""
    if not weights:
        raise ValueError("nothing to divide among")
    if any(weight < 0 for _key, weight in weights):
        raise ValueError("weights must not be negative")
    whole = sum(weight for _key, weight in weights)
    if whole == 0:
        raise ValueError("weights must not all be zero")
    if total < 0:
        return {key: -amount for key, amount in largest_remainder(-total, weights).items()}
    floors = [(key, total * weight // whole, total * weight % whole) for key, weight in weights]
    leftover = total - sum(floor for _key, floor, _rem in floors)
    ranked = sorted(range(len(floors)), key=lambda i: (-floors[i][2], i))
    bonus = set(ranked[:leftover])
    return {key: floor + (1 if i in bonus else 0) for i, (key, floor, _rem) in enumerate(floors)}
