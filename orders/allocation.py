"""Allocating an order line to production batches, oldest finished batch first.

Pure: plain values in, plain values out. The service layer loads and locks the batches, calls
`allocate`, and writes the result in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class BatchStock:
    batch_id: int
    finished_on: date
    available: int


@dataclass(frozen=True)
class Allocation:
    batch_id: int
    quantity: int


@dataclass(frozen=True)
class AllocationPlan:
    allocations: tuple[Allocation, ...]
    made_to_order: int  # what stock cannot cover, to be produced

    @property
    def from_stock(self) -> int:
        return sum(a.quantity for a in self.allocations)


def allocate(quantity: int, batches: Iterable[BatchStock]) -> AllocationPlan:
    """Takes `quantity` from the oldest batches first; ties go to the lower batch id."""
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    remaining = quantity
    taken: list[Allocation] = []
    for batch in sorted(batches, key=lambda b: (b.finished_on, b.batch_id)):
        if remaining == 0:
            break
        take = min(remaining, batch.available)
        if take > 0:
            taken.append(Allocation(batch.batch_id, take))
            remaining -= take
    return AllocationPlan(tuple(taken), remaining)
