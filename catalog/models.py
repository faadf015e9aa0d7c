"""Catalog tables: facilities, programmes, products, production batches and their makers."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    DDL,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    func,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from shop.extensions import db, str_enum


class FacilityKind(StrEnum):
    RUTAN = "rutan"
    LAPAS = "lapas"


class Facility(db.Model):
    __tablename__ = "facility"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[FacilityKind] = mapped_column(str_enum(FacilityKind))
    facility_class: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(80))
    province: Mapped[str] = mapped_column(String(80), index=True)
    regional_office: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(40), default="Asia/Jakarta")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    programmes: Mapped[list[Programme]] = relationship(
        back_populates="facility", order_by="Programme.name"
    )


class Programme(db.Model):
    """A skills programme (pembinaan kemandirian) of one facility."""

    __tablename__ = "programme"
    __table_args__ = (
        UniqueConstraint("facility_id", "slug"),
        CheckConstraint("pieces_per_wbp_per_day > 0", name="capacity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    slug: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    # Production capacity, used to estimate when a made-to-order quantity will be ready.
    pieces_per_wbp_per_day: Mapped[int] = mapped_column(default=1)

    facility: Mapped[Facility] = relationship(back_populates="programmes")


class Category(StrEnum):
    CRAFTS = "crafts"
    TEXTILES = "textiles"
    FURNITURE = "furniture"
    FOOD = "food"


class Unit(StrEnum):
    PCS = "pcs"
    KG = "kg"
    SET = "set"


class Product(db.Model):
    __tablename__ = "product"
    __table_args__ = (
        CheckConstraint("base_price >= 0", name="base_price_not_negative"),
        CheckConstraint("min_order_qty >= 1", name="moq_positive"),
        CheckConstraint("order_multiple >= 1", name="multiple_positive"),
        Index("ix_product_active_facility", "active", "facility_id"),
        # Serves the listing's ORDER BY name, id without sorting every product.
        Index("ix_product_active_name", "active", "name", "id"),
        # Search is `search_text LIKE '% word%'`: trigrams find the rows on PostgreSQL (a count
        # over 10,000 products: 7.5 -> 0.9 ms). SQLite has no such index; WHERE false keeps
        # its stand-in empty, so the schema matches the migrations at no cost.
        Index(
            "ix_product_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
            sqlite_where=false(),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id"), index=True)
    name: Mapped[str] = mapped_column(String(160))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[Category] = mapped_column(str_enum(Category), index=True)
    unit: Mapped[Unit] = mapped_column(str_enum(Unit), default=Unit.PCS)
    base_price: Mapped[int]
    min_order_qty: Mapped[int] = mapped_column(default=1)
    order_multiple: Mapped[int] = mapped_column(default=1)
    active: Mapped[bool] = mapped_column(default=True)
    # Lower-cased words of the name, description, programme and facility, for word-prefix search.
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    facility: Mapped[Facility] = relationship()
    programme: Mapped[Programme] = relationship()
    tiers: Mapped[list[PriceTier]] = relationship(
        back_populates="product", order_by="PriceTier.min_quantity", cascade="all, delete-orphan"
    )
    photos: Mapped[list[ProductPhoto]] = relationship(
        back_populates="product", order_by="ProductPhoto.position", cascade="all, delete-orphan"
    )
    batches: Mapped[list[Batch]] = relationship(back_populates="product", order_by="Batch.id")


# The trigram operator class comes with pg_trgm (the migration creates it too).
event.listen(
    Product.__table__,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)


class PriceTier(db.Model):
    """From `min_quantity` units up, each unit costs `unit_price`."""

    __tablename__ = "price_tier"
    __table_args__ = (
        UniqueConstraint("product_id", "min_quantity"),
        CheckConstraint("min_quantity >= 1", name="min_quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    min_quantity: Mapped[int]
    unit_price: Mapped[int]

    product: Mapped[Product] = relationship(back_populates="tiers")


class ProductPhoto(db.Model):
    """Photos live in the database so that every app instance serves the same files."""

    __tablename__ = "product_photo"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("product.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    product: Mapped[Product] = relationship(back_populates="photos")


class BatchStatus(StrEnum):
    PLANNED = "planned"
    IN_PRODUCTION = "in_production"
    FINISHED = "finished"


class ContributionBasis(StrEnum):
    PIECES = "pieces"
    HOURS = "hours"


class Batch(db.Model):
    """A production batch: what a group of WBP made of one product in one run."""

    __tablename__ = "production_batch"
    __table_args__ = (
        CheckConstraint("quantity_made >= 0", name="made_not_negative"),
        CheckConstraint("material_cost >= 0", name="material_cost_not_negative"),
        CheckConstraint(
            "quantity_allocated >= 0 AND quantity_allocated <= quantity_made",
            name="allocated_within_made",
        ),
        Index("ix_production_batch_product_status", "product_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    code: Mapped[str] = mapped_column(String(40))
    status: Mapped[BatchStatus] = mapped_column(str_enum(BatchStatus), default=BatchStatus.PLANNED)
    started_on: Mapped[date | None]
    finished_on: Mapped[date | None]
    quantity_made: Mapped[int] = mapped_column(default=0)
    # Units already promised to orders; kept beside quantity_made so stock is one subtraction.
    quantity_allocated: Mapped[int] = mapped_column(default=0)
    material_cost: Mapped[int] = mapped_column(default=0)
    contribution_basis: Mapped[ContributionBasis] = mapped_column(
        str_enum(ContributionBasis), default=ContributionBasis.PIECES
    )

    product: Mapped[Product] = relationship(back_populates="batches")
    participations: Mapped[list[BatchParticipation]] = relationship(
        back_populates="batch", order_by="BatchParticipation.id", cascade="all, delete-orphan"
    )

    @property
    def on_hand(self) -> int:
        if self.status is not BatchStatus.FINISHED:
            return 0
        return self.quantity_made - self.quantity_allocated


class WbpStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    TRANSFERRED = "transferred"


class Wbp(db.Model):
    """A maker in custody. Personal data: shown only to staff of the WBP's own facility."""

    __tablename__ = "wbp"
    __table_args__ = (UniqueConstraint("facility_id", "registration_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    registration_number: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[WbpStatus] = mapped_column(str_enum(WbpStatus), default=WbpStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    facility: Mapped[Facility] = relationship()


class BatchParticipation(db.Model):
    """How much one WBP contributed to one batch, in the batch's contribution basis."""

    __tablename__ = "batch_participation"
    __table_args__ = (
        UniqueConstraint("batch_id", "wbp_id"),
        CheckConstraint("contribution > 0", name="contribution_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("production_batch.id", ondelete="CASCADE"), index=True
    )
    wbp_id: Mapped[int] = mapped_column(ForeignKey("wbp.id"), index=True)
    contribution: Mapped[int]

    batch: Mapped[Batch] = relationship(back_populates="participations")
    wbp: Mapped[Wbp] = relationship()


_WORD = re.compile(r"\w+", re.UNICODE)


def search_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def index_text(product: Product, programme: Programme | None, facility: Facility | None) -> str:
    parts = [product.name, product.description, Category(product.category).value]
    if programme is not None:
        parts.append(programme.name)
    if facility is not None:
        parts += [facility.name, facility.city, facility.province]
    # Leading space: every word is then preceded by one, so "% tok%" matches word prefixes.
    return " " + " ".join(search_words(" ".join(p for p in parts if p))) + " "


@event.listens_for(Session, "before_flush")
def _refresh_search_text(session: Session, _ctx, _instances) -> None:  # type: ignore[no-untyped-def]
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Product):
            programme = obj.programme or session.get(Programme, obj.programme_id)
            facility = obj.facility or session.get(Facility, obj.facility_id)
            obj.search_text = index_text(obj, programme, facility)
