"""Read side of the catalog: what the storefront lists, with a bounded number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Result,
    Select,
    Subquery,
    and_,
    bindparam,
    distinct,
    exists,
    func,
    select,
)
from sqlalchemy.orm import aliased, contains_eager, selectinload, undefer

from shop.extensions import db
from shop.pagination import Page, check_in_range

from .models import (
    Batch,
    BatchParticipation,
    BatchStatus,
    Category,
    Facility,
    PriceTier,
    Product,
    ProductPhoto,
    Programme,
    Unit,
    Wbp,
    WbpStatus,
    search_words,
)
from .pricing import Tier, lowest_price

MAX_SEARCH_WORDS = 8
# The escape character of search words in LIKE, as `contains(..., autoescape=True)` uses it.
LIKE_ESCAPE = "/"

# The storefront's statements are built once, by functions under `@cache`, and executed with
# their values as bound parameters: building one (coercing every operand) and deriving its key
# in SQLAlchemy's compiled cache cost as much app CPU as running it, and a reused statement
# object keeps its key.


@dataclass(frozen=True)
class ProductFilters:
    q: str = ""
    facility: Facility | None = None
    province: str | None = None
    category: Category | None = None
    in_stock: bool = False


@dataclass(frozen=True)
class ProductCard:
    product: Product
    on_hand: int
    photo_id: int | None
    tiers: list[Tier] = field(default_factory=list)

    @property
    def lowest_price(self) -> int:
        return lowest_price(self.product.base_price, [t.unit_price for t in self.tiers])


@dataclass(frozen=True)
class ProductSummary:
    """What a product's card on a storefront page shows: plain values, no ORM object."""

    slug: str
    name: str
    unit: Unit
    facility_name: str
    province: str
    lowest_price: int
    on_hand: int
    photo_id: int | None


def _columns(stmt: Select, values: dict[str, Any] | None = None) -> Result[Any]:  # type: ignore[type-arg]
    """Rows of a statement that selects columns, not ORM objects, run on the session's connection.

    `db.session.execute` passes such rows through the ORM's result machinery, which cost as much
    app CPU as the rest of the run (a listing's page of cards: 0.36 -> 0.17 ms); the rows are
    the same. Pending changes are flushed first, as the session's own execute would.
    """
    session = db.session
    if session.autoflush:
        session.flush()
    return session.connection().execute(stmt, values)


@cache
def on_hand_expression():  # type: ignore[no-untyped-def]
    """Units of finished batches not yet allocated, for the product in the enclosing query."""
    return (
        select(func.coalesce(func.sum(Batch.quantity_made - Batch.quantity_allocated), 0))
        .where(Batch.product_id == Product.id, Batch.status == BatchStatus.FINISHED)
        .correlate(Product)
        .scalar_subquery()
    )


@cache
def _stock_on_hand() -> Select:  # type: ignore[type-arg]
    return select(on_hand_expression()).where(Product.id == bindparam("product_id"))


def stock_on_hand(product_id: int) -> int:
    return int(db.session.scalar(_stock_on_hand(), {"product_id": product_id}) or 0)


def _in_stock_clause():  # type: ignore[no-untyped-def]
    return exists().where(
        Batch.product_id == Product.id,
        Batch.status == BatchStatus.FINISHED,
        Batch.quantity_made > Batch.quantity_allocated,
    )


def _first_photo_expression():  # type: ignore[no-untyped-def]
    return (
        select(func.min(ProductPhoto.id))
        .where(ProductPhoto.product_id == Product.id)
        .correlate(Product)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class _Shape:
    """Which filters a listing applies: its statements are built once for each shape (there are
    at most 9 word counts times 16 combinations of the others)."""

    words: int
    facility: bool
    province: bool
    category: bool
    in_stock: bool


def _shape(filters: ProductFilters) -> tuple[_Shape, dict[str, Any]]:
    """The filters' shape, and their values by the name of the parameter each one binds."""
    words = search_words(filters.q)[:MAX_SEARCH_WORDS]
    values: dict[str, Any] = {f"word_{n}": " " + _like_escaped(w) for n, w in enumerate(words)}
    if filters.facility is not None:
        values["facility_id"] = filters.facility.id
    if filters.province:
        values["province"] = filters.province
    if filters.category is not None:
        values["category"] = filters.category
    shape = _Shape(
        words=len(words),
        facility=filters.facility is not None,
        province=bool(filters.province),
        category=filters.category is not None,
        in_stock=filters.in_stock,
    )
    return shape, values


def _like_escaped(word: str) -> str:
    """`word` matched literally by LIKE with LIKE_ESCAPE, as `autoescape=True` escapes it."""
    for special in (LIKE_ESCAPE, "%", "_"):
        word = word.replace(special, LIKE_ESCAPE + special)
    return word


def _filtered(stmt: Select, shape: _Shape) -> Select:  # type: ignore[type-arg]
    stmt = stmt.where(Product.active.is_(True))
    for n in range(shape.words):
        stmt = stmt.where(Product.search_text.contains(bindparam(f"word_{n}"), escape=LIKE_ESCAPE))
    if shape.facility:
        stmt = stmt.where(Product.facility_id == bindparam("facility_id"))
    if shape.province:
        stmt = stmt.where(Facility.province == bindparam("province"))
    if shape.category:
        stmt = stmt.where(Product.category == bindparam("category"))
    if shape.in_stock:
        stmt = stmt.where(_in_stock_clause())
    return stmt


def _tiers(product: Product) -> list[Tier]:
    return [Tier(t.min_quantity, t.unit_price) for t in product.tiers]


def list_products(filters: ProductFilters, page: int, size: int) -> Page[ProductCard]:
    """Whole products, for the API: one count query, one for the page's rows, one for tiers."""
    shape, values = _shape(filters)
    total = _count(shape, values)
    check_in_range(page, size, total)
    return Page(_cards(shape, values | _window(page, size)), page, size, total)


def list_summaries(filters: ProductFilters, page: int, size: int) -> Page[ProductSummary]:
    """The storefront's cards: one count query and one for the page's rows."""
    shape, values = _shape(filters)
    total = _count(shape, values)
    check_in_range(page, size, total)
    return Page(_summaries(shape, values | _window(page, size)), page, size, total)


def featured_products(size: int) -> list[ProductSummary]:
    """The first in-stock products, for the home page: no count, which it never shows."""
    shape, values = _shape(ProductFilters(in_stock=True))
    return _summaries(shape, values | _window(1, size))


def _window(page: int, size: int) -> dict[str, int]:
    return {"limit": size, "offset": (page - 1) * size}


def _count(shape: _Shape, values: dict[str, Any]) -> int:
    return _columns(_count_statement(shape), values).scalar_one()


@cache
def _count_statement(shape: _Shape) -> Select:  # type: ignore[type-arg]
    count = select(func.count(Product.id))
    if shape.province:
        count = count.join(Product.facility)
    return _filtered(count, shape)


def _page_ids(shape: _Shape) -> Subquery:
    """The page's ids first; stock, photo and joins then run for those rows only.

    Stock and photo are correlated subqueries: in one query with the OFFSET PostgreSQL would run
    them for every row it skips as well (page 50 ran them 1,200 times).
    """
    ids = select(Product.id)
    if shape.province:
        ids = ids.join(Product.facility)
    return (
        _filtered(ids, shape)
        .order_by(Product.name, Product.id)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
        .subquery()
    )


@cache
def _cards_statement(shape: _Shape) -> Select:  # type: ignore[type-arg]
    page_ids = _page_ids(shape)
    return (
        select(Product, on_hand_expression(), _first_photo_expression())
        .join(page_ids, page_ids.c.id == Product.id)
        .join(Product.facility)
        .join(Product.programme)
        .options(
            contains_eager(Product.facility),
            contains_eager(Product.programme),
            selectinload(Product.tiers),
        )
        .order_by(Product.name, Product.id)
    )


def _cards(shape: _Shape, values: dict[str, Any]) -> list[ProductCard]:
    rows = db.session.execute(_cards_statement(shape), values).all()
    return [ProductCard(p, int(on_hand), photo_id, _tiers(p)) for p, on_hand, photo_id in rows]


@cache
def _summaries_statement(shape: _Shape) -> Select:  # type: ignore[type-arg]
    # Columns rather than entities: building ORM objects was most of a listing's query cost.
    page_ids = _page_ids(shape)
    cheapest_tier = (
        select(func.min(PriceTier.unit_price))
        .where(PriceTier.product_id == Product.id)
        .correlate(Product)
        .scalar_subquery()
    )
    return (
        select(
            Product.slug,
            Product.name,
            Product.unit,
            Facility.name,
            Facility.province,
            Product.base_price,
            cheapest_tier,
            on_hand_expression(),
            _first_photo_expression(),
        )
        .join(page_ids, page_ids.c.id == Product.id)
        .join(Product.facility)
        .order_by(Product.name, Product.id)
    )


def _summaries(shape: _Shape, values: dict[str, Any]) -> list[ProductSummary]:
    return [
        ProductSummary(
            slug=slug,
            name=name,
            unit=unit,
            facility_name=facility_name,
            province=province,
            lowest_price=lowest_price(base_price, [] if tier is None else [tier]),
            on_hand=int(on_hand),
            photo_id=photo_id,
        )
        for (slug, name, unit, facility_name, province, base_price, tier, on_hand, photo_id) in (
            _columns(_summaries_statement(shape), values).all()
        )
    ]


@dataclass(frozen=True)
class ProductDetail:
    card: ProductCard
    photo_ids: list[int]
    makers: int


@cache
def _product_by_slug() -> Select:  # type: ignore[type-arg]
    made_by = (
        select(func.count(distinct(BatchParticipation.wbp_id)))
        .join(Batch)
        .where(Batch.product_id == Product.id)
        .correlate(Product)
        .scalar_subquery()
    )
    # The counts ride along as subqueries: a round trip costs more app CPU than they do.
    return (
        select(
            Product,
            on_hand_expression(),
            made_by,
        )
        .join(Product.facility)
        .join(Product.programme)
        .options(contains_eager(Product.facility), contains_eager(Product.programme))
        .where(Product.slug == bindparam("slug"), Product.active.is_(True))
    )


@cache
def _tiers_of_product() -> Select:  # type: ignore[type-arg]
    # Plain rows: selectinload's machinery cost more app CPU than the rest of the page's queries.
    return (
        select(PriceTier.min_quantity, PriceTier.unit_price)
        .where(PriceTier.product_id == bindparam("product_id"))
        .order_by(PriceTier.min_quantity)
    )


@cache
def _photos_of_product() -> Select:  # type: ignore[type-arg]
    return (
        select(ProductPhoto.id)
        .where(ProductPhoto.product_id == bindparam("product_id"))
        .order_by(ProductPhoto.position, ProductPhoto.id)
    )


def product_detail(slug: str) -> ProductDetail | None:
    if "\x00" in slug:
        return None  # no slug holds NUL, and PostgreSQL refuses it in a query
    row = db.session.execute(_product_by_slug(), {"slug": slug}).first()
    if row is None:
        return None
    product, on_hand, makers = row
    of_product = {"product_id": product.id}
    tiers = [Tier(*tier) for tier in _columns(_tiers_of_product(), of_product).all()]
    photo_ids = list(_columns(_photos_of_product(), of_product).scalars().all())
    card = ProductCard(product, int(on_hand), photo_ids[0] if photo_ids else None, tiers)
    return ProductDetail(card, photo_ids, makers or 0)


# The product a batch made, inside `_active_makers`: apart from the enclosing query's product.
# Made once: a new alias per call would make every statement new to SQLAlchemy's compiled cache.
_MADE = aliased(Product, name="made")


def _active_makers(programme_id: int | ColumnElement[int]) -> Select:  # type: ignore[type-arg]
    """Active WBP who have worked in the programme (an id, or the enclosing query's column)."""
    return (
        select(func.count(distinct(Wbp.id)))
        .join(BatchParticipation, BatchParticipation.wbp_id == Wbp.id)
        .join(Batch, Batch.id == BatchParticipation.batch_id)
        .join(_MADE, _MADE.id == Batch.product_id)
        .where(_MADE.programme_id == programme_id, Wbp.status == WbpStatus.ACTIVE)
    )


def active_makers(programme_id: int) -> int:
    """Active WBP who have worked in the programme: the people who can make more."""
    return db.session.scalar(_active_makers(programme_id)) or 0


class MakersForShortfall:
    """`active_makers` of each programme, asked only for a quantity beyond the stock on hand (only
    a shortfall has a lead time, and the count is the costliest query of a product page) and at
    most once per programme."""

    def __init__(self) -> None:
        self._known: dict[int, int] = {}

    def __call__(self, programme_id: int, shortfall: int) -> int:
        if shortfall <= 0:
            return 0
        if programme_id not in self._known:
            self._known[programme_id] = active_makers(programme_id)
        return self._known[programme_id]


@dataclass(frozen=True)
class Impact:
    """Counts only: never a name."""

    makers: int
    programmes: int
    batches: int
    pieces_made: int


def facility_impact(facility_id: int) -> Impact:
    finished = and_(
        Batch.product_id == Product.id,
        Product.facility_id == facility_id,
        Batch.status == BatchStatus.FINISHED,
    )
    makers = db.session.scalar(
        select(func.count(distinct(BatchParticipation.wbp_id)))
        .join(Batch, Batch.id == BatchParticipation.batch_id)
        .join(Product, Product.id == Batch.product_id)
        .where(finished)
    )
    batches, pieces = db.session.execute(
        select(func.count(Batch.id), func.coalesce(func.sum(Batch.quantity_made), 0))
        .join(Product, Product.id == Batch.product_id)
        .where(finished)
    ).one()
    programmes = db.session.scalar(
        select(func.count(Programme.id)).where(Programme.facility_id == facility_id)
    )
    return Impact(makers or 0, programmes or 0, batches or 0, int(pieces or 0))


@dataclass(frozen=True)
class FacilityCard:
    facility: Facility
    products: int


def list_facilities(province: str | None, page: int, size: int) -> Page[FacilityCard]:
    where = [Facility.province == province] if province else []
    total = db.session.scalar(select(func.count(Facility.id)).where(*where)) or 0
    check_in_range(page, size, total)
    product_count = (
        select(func.count(Product.id))
        .where(Product.facility_id == Facility.id, Product.active.is_(True))
        .correlate(Facility)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Facility, product_count)
        .where(*where)
        .order_by(Facility.province, Facility.name)
        .limit(size)
        .offset((page - 1) * size)
    ).all()
    return Page([FacilityCard(f, n) for f, n in rows], page, size, total)


@cache
def _facility_by_slug() -> Select:  # type: ignore[type-arg]
    # Its programmes load when the facility page reads them; filters and the API never do.
    return select(Facility).where(Facility.slug == bindparam("slug"))


def facility_by_slug(slug: str) -> Facility | None:
    if "\x00" in slug:
        return None  # no slug holds NUL, and PostgreSQL refuses it in a query
    return db.session.scalar(_facility_by_slug(), {"slug": slug})


@cache
def _provinces() -> Select:  # type: ignore[type-arg]
    return select(Facility.province).distinct().order_by(Facility.province)


def provinces() -> list[str]:
    return list(_columns(_provinces()).scalars().all())


@cache
def _facility_choices() -> Select:  # type: ignore[type-arg]
    return (
        select(Facility.slug, Facility.name)
        .where(Facility.province == bindparam("province"))
        .order_by(Facility.name)
    )


def facility_choices(province: str) -> list[tuple[str, str]]:
    """Slug and name of the province's facilities, by name."""
    rows = _columns(_facility_choices(), {"province": province}).all()
    return [(slug, name) for slug, name in rows]


def photo(photo_id: int) -> ProductPhoto | None:
    return db.session.scalar(
        select(ProductPhoto)
        .join(Product)
        .where(ProductPhoto.id == photo_id, Product.active.is_(True))
        .options(undefer(ProductPhoto.data))
    )


@cache
def _storefront_totals() -> Select:  # type: ignore[type-arg]
    # One statement of three counts: each round trip costs more app CPU than its count.
    return select(
        select(func.count(Facility.id)).scalar_subquery(),
        select(func.count(Product.id)).where(Product.active).scalar_subquery(),
        select(func.count(distinct(BatchParticipation.wbp_id)))
        .join(Batch)
        .where(Batch.status == BatchStatus.FINISHED)
        .scalar_subquery(),
    )


def storefront_totals() -> tuple[int, int, int]:
    """Facilities, active products and WBP who took part in a finished batch."""
    facilities, products, makers = _columns(_storefront_totals()).one()
    return facilities, products, makers
