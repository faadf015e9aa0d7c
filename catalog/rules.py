"""Rules for what staff may enter about a product: slugs, price tiers, packs. Pure functions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from .models import Category, Unit
from .pricing import Tier

# The largest price a staff member can type: a set of furniture is a few million rupiah, so a
# billion is a typo long before it is a real price, and it stays far inside a 32-bit column.
MAX_PRICE = 1_000_000_000
# The same bound as the storefront's quantity check: no line is ever larger.
MAX_QUANTITY = 1_000_000
MAX_TIERS = 5

# Facility slugs start with their kind ("rutan-banjarnegara"); product slugs keep only the place
# ("besek-bambu-banjarnegara"), as in the demo data and the addresses buyers already share.
_KIND_PREFIXES = ("rutan-", "lapas-")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by hyphens: "Keset Kain Perca!" -> "keset-kain-perca"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")


def unique_slug(base: str, taken: Collection[str], max_length: int, fallback: str) -> str:
    """`base`, or `base-2`, `base-3`... : the first not in `taken`, never longer than max_length."""
    base = base or fallback
    candidate, number = base[:max_length].strip("-"), 1
    while candidate in taken:
        number += 1
        suffix = f"-{number}"
        candidate = base[: max_length - len(suffix)].strip("-") + suffix
    return candidate


def facility_slug_base(name: str) -> str:
    """ "Rutan Kelas IIB Banjarnegara" -> "rutan-banjarnegara": the class is left out, as in the
    demo data's slugs, because a facility can change class and its address should not."""
    without_class = re.sub(r"\bkelas\s+(?:I{1,3}|IV)(?:\s?[AB])?\b", " ", name, flags=re.I)
    return slugify(without_class)


def product_slug_base(name: str, facility_slug: str) -> str:
    place = facility_slug
    for prefix in _KIND_PREFIXES:
        place = place.removeprefix(prefix)
    return slugify(f"{name} {place}")


def min_order_fits_packs(min_order_qty: int, order_multiple: int) -> bool:
    """A buyer can order exactly the minimum only if it is a whole number of packs.

    Otherwise the real minimum is the next whole pack above it, and the product page would
    state a minimum nobody can order.
    """
    return min_order_qty % order_multiple == 0


class TierProblemKind(StrEnum):
    MISSING_QUANTITY = "missing_quantity"
    MISSING_PRICE = "missing_price"
    QUANTITY_OUT_OF_RANGE = "quantity_out_of_range"
    PRICE_OUT_OF_RANGE = "price_out_of_range"
    QUANTITY_REPEATED = "quantity_repeated"
    ABOVE_BASE_PRICE = "above_base_price"
    ABOVE_SMALLER_TIER = "above_smaller_tier"


# Which of a row's two inputs each problem belongs to, so the form can show it beside that input.
QUANTITY, PRICE = "min_quantity", "unit_price"
_FIELD_OF = {
    TierProblemKind.MISSING_QUANTITY: QUANTITY,
    TierProblemKind.QUANTITY_OUT_OF_RANGE: QUANTITY,
    TierProblemKind.QUANTITY_REPEATED: QUANTITY,
    TierProblemKind.MISSING_PRICE: PRICE,
    TierProblemKind.PRICE_OUT_OF_RANGE: PRICE,
    TierProblemKind.ABOVE_BASE_PRICE: PRICE,
    TierProblemKind.ABOVE_SMALLER_TIER: PRICE,
}


@dataclass(frozen=True)
class TierProblem:
    row: int
    kind: TierProblemKind

    @property
    def field(self) -> str:
        return _FIELD_OF[self.kind]


@dataclass(frozen=True)
class TierCheck:
    tiers: list[Tier] = field(default_factory=list)
    problems: list[TierProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


TierRow = tuple[int | None, int | None]


def check_tiers(rows: Sequence[TierRow], base_price: int | None) -> TierCheck:
    """Reads the rows of (from quantity, unit price) that staff typed; blank rows are ignored.

    A tier is a discount for buying more, so we refuse a tier that costs more per unit than the
    base price, or more than a tier for fewer units: with such a tier a buyer who orders more
    would pay more per unit, which is always a typing mistake. Equal prices are allowed.
    `base_price` None (itself invalid) skips the comparison with it.
    """
    problems: list[TierProblem] = []
    complete: list[tuple[int, Tier]] = []
    seen: set[int] = set()
    for row, (quantity, price) in enumerate(rows):
        if quantity is None and price is None:
            continue
        found = _row_problems(quantity, price, base_price, seen)
        problems += [TierProblem(row, kind) for kind in found]
        if quantity is not None:
            seen.add(quantity)
        if not found and quantity is not None and price is not None:
            complete.append((row, Tier(quantity, price)))
    complete.sort(key=lambda item: item[1].min_quantity)
    for (_, smaller), (row, larger) in zip(complete, complete[1:], strict=False):
        if larger.unit_price > smaller.unit_price:
            problems.append(TierProblem(row, TierProblemKind.ABOVE_SMALLER_TIER))
    if problems:
        return TierCheck([], sorted(problems, key=lambda p: p.row))
    return TierCheck([tier for _, tier in complete], [])


def _row_problems(
    quantity: int | None, price: int | None, base_price: int | None, seen: set[int]
) -> list[TierProblemKind]:
    found = []
    if quantity is None:
        found.append(TierProblemKind.MISSING_QUANTITY)
    elif not 1 <= quantity <= MAX_QUANTITY:
        found.append(TierProblemKind.QUANTITY_OUT_OF_RANGE)
    elif quantity in seen:
        found.append(TierProblemKind.QUANTITY_REPEATED)
    if price is None:
        found.append(TierProblemKind.MISSING_PRICE)
    elif not 0 <= price <= MAX_PRICE:
        found.append(TierProblemKind.PRICE_OUT_OF_RANGE)
    elif base_price is not None and price > base_price:
        found.append(TierProblemKind.ABOVE_BASE_PRICE)
    return found


def tier_rows(tiers: Sequence[Tier]) -> list[list[int]]:
    """Tiers as [from quantity, unit price] pairs, smallest first, as the audit log keeps them."""
    return [[t.min_quantity, t.unit_price] for t in sorted(tiers, key=lambda t: t.min_quantity)]


@dataclass(frozen=True)
class ProductDraft:
    """What staff enter about a product, checked: the form's output and the services' input."""

    name: str
    description: str
    programme_id: int
    category: Category
    unit: Unit
    base_price: int
    min_order_qty: int
    order_multiple: int
    active: bool
    tiers: list[Tier]


@dataclass(frozen=True)
class ProgrammeDraft:
    name: str
    description: str
    pieces_per_wbp_per_day: int
