"""Creating and editing facilities (an admin's work); each change is audited."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from shop import audit
from shop.extensions import db
from shop.i18n import lazy_gettext as _l

from .. import rules
from ..models import Facility, Product, index_text

SLUG_LENGTH = 80


class FacilityRefused(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field


def _check_name_free(name: str, facility_id: int | None) -> None:
    stmt = select(Facility.id).where(func.lower(Facility.name) == name.lower())
    if facility_id is not None:
        stmt = stmt.where(Facility.id != facility_id)
    if db.session.scalar(stmt) is not None:
        raise FacilityRefused(_l("A facility with this name already exists."), "name")


def create_facility(values: Mapping[str, Any]) -> Facility:
    """A new facility; its slug is made once, here, and never changes (links to it keep working)."""
    _check_name_free(values["name"], None)
    base = rules.facility_slug_base(values["name"])
    taken = set(db.session.scalars(select(Facility.slug).where(Facility.slug.startswith(base))))
    facility = Facility(slug=rules.unique_slug(base, taken, SLUG_LENGTH, "facility"), **values)
    db.session.add(facility)
    db.session.flush()
    audit.record("create", facility, facility_id=facility.id)
    db.session.commit()
    return facility


def update_facility(facility: Facility, values: Mapping[str, Any]) -> None:
    _check_name_free(values["name"], facility.id)
    before = audit.snapshot(facility)
    for key, value in values.items():
        setattr(facility, key, value)
    if any(before[key] != getattr(facility, key) for key in ("name", "city", "province")):
        # Product search covers the facility's name and place, so its products are re-indexed.
        products = select(Product).where(Product.facility_id == facility.id)
        for product in db.session.scalars(products.options(selectinload(Product.programme))):
            product.search_text = index_text(product, product.programme, facility)
    audit.record("update", facility, facility_id=facility.id, before=before)
    db.session.commit()
