"""Pages scoped to a product or a facility are forgotten by the page cache as soon as what they
show changes.

A product page shows the product, its tiers and photos, its stock (its batches), how many WBP
made it and how many of its programme's makers are active (their participations and status),
and its facility and programme. A committed change to any of those rows counts a new version of
the scope `product:<slug>` of every product of the facility it belongs to: every such row names
its facility in one step or two, a facility lists a few dozen products, and the pages are
rendered again on the next visit. The same change counts a new version of `facility:<slug>`,
which a page showing nothing of the catalog but that facility's rows names; a change to any
facility's own row also counts one of `facilities`, for the lists of facilities that listings
show in their filters. Views name their scopes with `page_cache.scope_to`; since such pages are
never older than their last change, Redis may keep them longer than the other pages
(shop/page_cache.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from shop import page_cache
from shop.extensions import db

from .models import (
    Batch,
    BatchParticipation,
    Facility,
    PriceTier,
    Product,
    ProductPhoto,
    Programme,
    Wbp,
)

_KEY = "changed_catalog"


@dataclass
class Changes:
    """What a transaction changed, by the step that leads to a facility."""

    facilities: set[int] = field(default_factory=set)
    products: set[int] = field(default_factory=set)
    batches: set[int] = field(default_factory=set)
    slugs: set[str] = field(default_factory=set)  # of products renamed or deleted
    facility_slugs: set[str] = field(default_factory=set)  # of facilities changed themselves

    def note(self, obj: Any) -> None:
        if isinstance(obj, Product):
            self.facilities.update(_old_and_new(obj, "facility_id"))
            self.slugs.update(_old_and_new(obj, "slug"))
        elif isinstance(obj, Facility):
            self.facilities.add(obj.id)
            self.facility_slugs.update(_old_and_new(obj, "slug"))
        elif isinstance(obj, (Programme, Wbp)):
            self.facilities.add(obj.facility_id)
        elif isinstance(obj, (PriceTier, ProductPhoto, Batch)):
            self.products.add(obj.product_id)
        elif isinstance(obj, BatchParticipation):
            self.batches.add(obj.batch_id)

    def __bool__(self) -> bool:
        return bool(
            self.facilities or self.products or self.batches or self.slugs or self.facility_slugs
        )


def _old_and_new(obj: Any, attribute: str) -> Iterable[Any]:
    history = getattr(db.inspect(obj).attrs, attribute).history
    return [value for value in (*history.deleted, getattr(obj, attribute)) if value]


def affected(changes: Changes) -> tuple[set[str], set[str]]:
    """The slugs of the facilities the changes belong to, and of all their products."""
    of_products = select(Product.facility_id)
    conditions = []
    if changes.facilities:
        conditions.append(Facility.id.in_(changes.facilities))
    if changes.products:
        conditions.append(Facility.id.in_(of_products.where(Product.id.in_(changes.products))))
    if changes.batches:
        made = select(Batch.product_id).where(Batch.id.in_(changes.batches))
        conditions.append(Facility.id.in_(of_products.where(Product.id.in_(made))))
    facilities, products = set(changes.facility_slugs), set(changes.slugs)
    if conditions:
        # A connection of its own: the committed session runs no more SQL in this event.
        with db.engine.connect() as connection:
            rows = connection.execute(
                select(Facility.slug, Product.slug)
                .outerjoin(Product, Product.facility_id == Facility.id)
                .where(or_(*conditions))
            )
            for facility, product in rows:
                facilities.add(facility)
                if product is not None:
                    products.add(product)
    return facilities, products


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, _context: Any) -> None:
    changes = session.info.get(_KEY)
    for obj in (*session.new, *session.dirty, *session.deleted):
        if changes is None:
            changes = session.info[_KEY] = Changes()
        changes.note(obj)


@event.listens_for(Session, "after_commit")
def _forget_pages(session: Session) -> None:
    changes = session.info.pop(_KEY, None)
    if not changes or not has_app_context():
        return
    if current_app.extensions.get("page_cache") is None or page_cache.seconds() <= 0:
        return  # no page is kept, none to forget
    facilities, products = affected(changes)
    scopes = [facility_scope(slug) for slug in facilities]
    scopes += [product_scope(slug) for slug in products]
    if changes.facility_slugs:
        scopes.append(FACILITY_LISTS)
    page_cache.forget(scopes)


# The scope of the lists of facilities shown in listings' filters: any facility's own row.
FACILITY_LISTS = "facilities"


def facility_scope(slug: str) -> str:
    """The scope of a page showing nothing of the catalog but the rows of this facility."""
    return f"facility:{slug}"


def product_scope(slug: str) -> str:
    """The scope of this product's page: what a change to its facility's rows may alter."""
    return f"product:{slug}"


@event.listens_for(Session, "after_rollback")
def _discard_changes(session: Session) -> None:
    session.info.pop(_KEY, None)
