"""Splitting the proceeds of units sold from one batch: material recovered, premi, PNBP, modal,
and premi shared among the batch's makers. Pure functions over plain values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .shares import largest_remainder

WHOLE = 10_000  # shares are in basis points: 5000 = 50%


class SplitBase(StrEnum):
    NET = "net"  # price minus the batch's material cost per unit, never below zero
    GROSS = "gross"  # the whole turnover


@dataclass(frozen=True)
class SplitRule:
    premi_bp: int
    pnbp_bp: int
    modal_bp: int
    base: SplitBase = SplitBase.NET

    def __post_init__(self) -> None:
        parts = (self.premi_bp, self.pnbp_bp, self.modal_bp)
        if any(p < 0 for p in parts) or sum(parts) != WHOLE:
            raise ValueError("premi, PNBP and modal must be shares adding up to 100%")


# The Minister of Justice decision of 1990 on inmate work proceeds.
DEFAULT_RULE = SplitRule(premi_bp=5000, pnbp_bp=1500, modal_bp=3500, base=SplitBase.NET)


@dataclass(frozen=True)
class Maker:
    wbp_id: int
    contribution: int  # pieces or hours, as the batch records them


@dataclass(frozen=True)
class Shares:
    gross: int
    material_recovered: int
    premi: int
    pnbp: int
    modal: int
    premi_by_wbp: dict[int, int]

    @property
    def net(self) -> int:
        return self.gross - self.material_recovered


def split_sale(
    units: int,
    unit_price: int,
    batch_quantity_made: int,
    batch_material_cost: int,
    rule: SplitRule,
    makers: Sequence[Maker],
) -> Shares:
    """The shares of `units` sold at `unit_price` from one batch.

    Material recovered is the batch's material cost for these units, rounded down to the rupiah
    and never more than the proceeds; makers are given in a stable order (participation id),
    which decides ties.
    """
    if units < 0 or unit_price < 0:
        raise ValueError("units and price must not be negative")
    gross = units * unit_price
    material = 0
    if rule.base is SplitBase.NET and batch_quantity_made > 0:
        material = min(gross, units * batch_material_cost // batch_quantity_made)
    net = gross - material
    three = largest_remainder(
        net, [("premi", rule.premi_bp), ("pnbp", rule.pnbp_bp), ("modal", rule.modal_bp)]
    )
    premi = three["premi"]
    if premi and not makers:
        raise ValueError("premi to share but the batch records no makers")
    by_wbp = (
        largest_remainder(premi, [(m.wbp_id, m.contribution) for m in makers]) if makers else {}
    )
    return Shares(gross, material, premi, three["pnbp"], three["modal"], by_wbp)
