"""Writes to a facility's products, tiers, photos and programmes, and the reads of their pages.

Each write makes the change, records it with `shop.audit.record` and commits once. Drafts come
checked by the forms (`catalog.rules`); a programme of another facility reaching a service is a
programming error and fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, contains_eager

from shop import audit
from shop.extensions import db

from .. import rules
from ..models import (
    Batch,
    BatchStatus,
    Facility,
    PriceTier,
    Product,
    ProductPhoto,
    Programme,
    Unit,
)
from ..photos import CleanPhoto
from ..pricing import Tier
from ..queries import on_hand_expression

PRODUCT_SLUG_LENGTH = 120
PROGRAMME_SLUG_LENGTH = 80


class SlugTaken(Exception):
    """Another request took the same slug between our check and our insert; nothing was saved."""


def _taken(column: InstrumentedAttribute[str], base: str, *where: object) -> set[str]:
    # Slugs hold only [a-z0-9-], so the base has no LIKE wildcards to escape.
    return set(db.session.scalars(select(column).where(column.like(f"{base}%"), *where)))


def _flush_or_slug_taken() -> None:
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise SlugTaken from None


def _programme_of(facility_id: int, programme_id: int) -> Programme:
    programme = db.session.get(Programme, programme_id)
    if programme is None or programme.facility_id != facility_id:
        raise ValueError(f"programme {programme_id} is not one of facility {facility_id}'s")
    return programme


# Products


def _apply(product: Product, draft: rules.ProductDraft) -> None:
    product.programme = _programme_of(product.facility_id, draft.programme_id)
    product.name = draft.name
    product.description = draft.description
    product.category = draft.category
    product.unit = draft.unit
    product.base_price = draft.base_price
    product.min_order_qty = draft.min_order_qty
    product.order_multiple = draft.order_multiple
    product.active = draft.active


def _current_tiers(product: Product) -> list[Tier]:
    return [Tier(t.min_quantity, t.unit_price) for t in product.tiers]


def _replace_tiers(product: Product, tiers: list[Tier]) -> None:
    # Rows are updated in place by quantity: deleting and re-inserting the same quantity in one
    # flush could hit the (product, min_quantity) unique constraint before the delete runs.
    existing = {t.min_quantity: t for t in product.tiers}
    wanted = {t.min_quantity: t.unit_price for t in tiers}
    for quantity, row in existing.items():
        if quantity not in wanted:
            product.tiers.remove(row)
    for quantity, price in wanted.items():
        if quantity in existing:
            existing[quantity].unit_price = price
        else:
            product.tiers.append(PriceTier(min_quantity=quantity, unit_price=price))


def create_product(facility: Facility, draft: rules.ProductDraft) -> Product:
    """The slug is made here once, from the name and the facility; it never changes after."""
    base = rules.product_slug_base(draft.name, facility.slug)
    slug = rules.unique_slug(base, _taken(Product.slug, base), PRODUCT_SLUG_LENGTH, "product")
    product = Product(facility_id=facility.id, slug=slug)
    _apply(product, draft)
    _replace_tiers(product, draft.tiers)
    db.session.add(product)
    _flush_or_slug_taken()
    audit.record(
        "create",
        product,
        facility_id=facility.id,
        extra={"tiers": [[], rules.tier_rows(draft.tiers)]},
    )
    db.session.commit()
    return product


def update_product(product: Product, draft: rules.ProductDraft) -> None:
    before = audit.snapshot(product)
    tiers_before = rules.tier_rows(_current_tiers(product))
    _apply(product, draft)
    _replace_tiers(product, draft.tiers)
    tiers_after = rules.tier_rows(draft.tiers)
    extra = {"tiers": [tiers_before, tiers_after]} if tiers_before != tiers_after else None
    audit.record("update", product, facility_id=product.facility_id, before=before, extra=extra)
    db.session.commit()


def set_active(product: Product, active: bool) -> None:
    """Inactive products disappear from the storefront; their batches and history stay."""
    before = audit.snapshot(product)
    product.active = active
    action = "activate" if active else "deactivate"
    audit.record(action, product, facility_id=product.facility_id, before=before)
    db.session.commit()


def add_photo(product: Product, photo: CleanPhoto) -> ProductPhoto:
    last = db.session.scalar(
        select(func.max(ProductPhoto.position)).where(ProductPhoto.product_id == product.id)
    )
    added = ProductPhoto(
        product_id=product.id,
        position=0 if last is None else last + 1,
        content_type=photo.content_type,
        data=photo.data,
    )
    db.session.add(added)
    db.session.flush()
    audit.record(
        "create",
        added,
        facility_id=product.facility_id,
        extra={"pixels": [None, [photo.width, photo.height]], "bytes": [None, len(photo.data)]},
    )
    db.session.commit()
    return added


def delete_photo(photo: ProductPhoto, facility_id: int) -> None:
    before = audit.snapshot(photo)
    # Recorded before the delete, while the row is still there: every field goes to None.
    audit.record(
        "delete", photo, facility_id=facility_id, before=before, extra=audit.diff(before, None)
    )
    db.session.delete(photo)
    db.session.commit()


# Programmes


def create_programme(facility: Facility, draft: rules.ProgrammeDraft) -> Programme:
    base = rules.slugify(draft.name)
    taken = _taken(Programme.slug, base, Programme.facility_id == facility.id)
    programme = Programme(
        facility_id=facility.id,
        slug=rules.unique_slug(base, taken, PROGRAMME_SLUG_LENGTH, "programme"),
        name=draft.name,
        description=draft.description,
        pieces_per_wbp_per_day=draft.pieces_per_wbp_per_day,
    )
    db.session.add(programme)
    _flush_or_slug_taken()
    audit.record("create", programme, facility_id=facility.id)
    db.session.commit()
    return programme


def update_programme(programme: Programme, draft: rules.ProgrammeDraft) -> None:
    before = audit.snapshot(programme)
    programme.name = draft.name
    programme.description = draft.description
    programme.pieces_per_wbp_per_day = draft.pieces_per_wbp_per_day
    audit.record("update", programme, facility_id=programme.facility_id, before=before)
    db.session.commit()


# Reads for the back-office pages: each is one query.


def programmes_of(facility_id: int) -> list[Programme]:
    return list(
        db.session.scalars(
            select(Programme).where(Programme.facility_id == facility_id).order_by(Programme.name)
        )
    )


@dataclass(frozen=True)
class ProgrammeRow:
    programme: Programme
    products: int


def programme_rows(facility_id: int) -> list[ProgrammeRow]:
    products = (
        select(func.count(Product.id))
        .where(Product.programme_id == Programme.id)
        .correlate(Programme)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Programme, products)
        .where(Programme.facility_id == facility_id)
        .order_by(Programme.name)
    ).all()
    return [ProgrammeRow(programme, count) for programme, count in rows]


@dataclass(frozen=True)
class ProductRow:
    product: Product
    on_hand: int
    photos: int


def product_rows(facility_id: int) -> list[ProductRow]:
    """Active products first, then inactive ones, each by name."""
    photos = (
        select(func.count(ProductPhoto.id))
        .where(ProductPhoto.product_id == Product.id)
        .correlate(Product)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Product, on_hand_expression(), photos)
        .join(Product.programme)
        .options(contains_eager(Product.programme))
        .where(Product.facility_id == facility_id)
        .order_by(Product.active.desc(), Product.name, Product.id)
    ).all()
    return [ProductRow(product, int(on_hand), count) for product, on_hand, count in rows]


@dataclass(frozen=True)
class StockLine:
    product_id: int
    name: str
    unit: Unit
    active: bool
    made: int
    allocated: int
    open_batches: int

    @property
    def on_hand(self) -> int:
        return self.made - self.allocated


def stock_lines(facility_id: int) -> list[StockLine]:
    """Per product: made and allocated in finished batches, and batches not finished yet.

    Unfinished batches count as a number, not a quantity: a batch's quantity is recorded only
    when it is finished.
    """
    finished = Batch.status == BatchStatus.FINISHED
    rows = db.session.execute(
        select(
            Product.id,
            Product.name,
            Product.unit,
            Product.active,
            func.coalesce(func.sum(case((finished, Batch.quantity_made), else_=0)), 0),
            func.coalesce(func.sum(case((finished, Batch.quantity_allocated), else_=0)), 0),
            func.count(case((~finished, Batch.id))),
        )
        .outerjoin(Batch, Batch.product_id == Product.id)
        .where(Product.facility_id == facility_id)
        .group_by(Product.id, Product.name, Product.unit, Product.active)
        .order_by(Product.active.desc(), Product.name, Product.id)
    ).all()
    return [
        StockLine(pid, name, unit, active, int(made), int(allocated), int(open_batches))
        for pid, name, unit, active, made, allocated, open_batches in rows
    ]
