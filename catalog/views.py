"""Storefront pages: home, facility directory and pages, product listing and product page."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request
from werkzeug.datastructures import MultiDict

from shop import page_cache, params
from shop.i18n import gettext as _
from shop.pagination import PageOutOfRange

from . import queries
from .freshness import FACILITY_LISTS, facility_scope, product_scope
from .models import Category
from .pricing import lead_time_days, tier_table, unit_price

bp = Blueprint("catalog", __name__)

FACILITY_PAGE_SIZE = 24
# The home page's totals are a statistic, and the makers among them the costliest count of the
# storefront (distinct WBP over every participation: 50-70 ms of PostgreSQL at national scale),
# which every worker ran each time the home page expired.
TOTALS_SECONDS = 300


def _page_size() -> int:
    return int(current_app.config["PAGE_SIZE"])


@bp.get("/")
def home() -> str:
    facilities, products, makers = page_cache.recent(
        "storefront_totals", queries.storefront_totals, TOTALS_SECONDS
    )
    featured = queries.featured_products(8)
    return render_template(
        "catalog/home.html",
        totals={"facilities": facilities, "products": products, "makers": makers},
        featured=featured,
    )


@bp.get("/facilities")
def facilities() -> str:
    province = params.text(request.args, "province") or None
    page = params.page_number(request.args)
    try:
        listing = queries.list_facilities(province, page, FACILITY_PAGE_SIZE)
    except PageOutOfRange:
        abort(404)
    return render_template(
        "catalog/facilities.html",
        page=listing,
        province=province,
        provinces=page_cache.recent("provinces", queries.provinces),
    )


@bp.get("/facilities/<slug>")
def facility(slug: str) -> str:
    if page_cache.storing() and _one_spelling(request.args, FACILITY_PAGE_ARGS):
        page_cache.scope_to(facility_scope(slug))  # before reading anything the page shows
    found = queries.facility_by_slug(slug)
    if found is None:
        abort(404)
    page = params.page_number(request.args)
    try:
        filters = queries.ProductFilters(facility=found)
        products = queries.list_summaries(filters, page, _page_size())
    except PageOutOfRange:
        abort(404)
    return render_template(
        "catalog/facility.html",
        facility=found,
        impact=queries.facility_impact(found.id),
        page=products,
    )


def _product_filters(args: MultiDict[str, str]) -> queries.ProductFilters:
    facility = None
    if slug := params.text(args, "facility"):
        facility = queries.facility_by_slug(slug)
        if facility is None:
            abort(404)
    return queries.ProductFilters(
        q=params.text(args, "q"),
        facility=facility,
        province=params.text(args, "province") or None,
        category=params.choice(args, "category", Category),
        in_stock=params.flag(args, "in_stock"),
    )


def _facility_choices(
    filters: queries.ProductFilters, in_province: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The chosen province's facilities, and the chosen facility wherever it is."""
    chosen = filters.facility
    if chosen is not None and chosen.slug not in {slug for slug, _name in in_province}:
        return [(chosen.slug, chosen.name), *in_province]
    return in_province


# The parameters of a page Redis may keep until its facilities change (`_one_spelling`).
FACILITY_PAGE_ARGS = frozenset({"page"})
SCOPED_LISTING_ARGS = frozenset({"facility", "province", "category", "in_stock", "page"})


def _one_spelling(args: MultiDict[str, str], allowed: frozenset[str]) -> bool:
    """Whether the query is the one way to write its page, so that Redis may keep the page
    until its facilities change.

    Such a page stays 5 minutes: it must not be one of endless spellings of the same page (an
    unknown parameter, a value with spaces, `in_stock=true`, `page=02`) nor one of endless pages
    (a search, a province that does not exist), or anyone could fill Redis with them. Those are
    kept PAGE_CACHE_SECONDS, as other listings are.
    """
    for name in args:
        values = args.getlist(name)
        if name not in allowed or len(values) != 1 or values[0] != values[0].strip():
            return False
    page = args.get("page", "1")
    if args.get("in_stock", "1") != "1" or not page.isdecimal() or page != str(int(page)):
        return False
    province = args.get("province")
    return province is None or province in page_cache.recent("provinces", queries.provinces)


def _scoped_province_facilities(args: MultiDict[str, str]) -> list[tuple[str, str]]:
    """The chosen province's facilities (slug, name), for the filter.

    A listing of one facility's or one province's products shows nothing that changes but the
    rows of its facilities, and the facilities its filter lists: Redis may keep it until one of
    them changes. Their versions are read before anything the page shows.
    """
    province = params.text(args, "province")
    if not (page_cache.storing() and _one_spelling(args, SCOPED_LISTING_ARGS)):
        return queries.facility_choices(province) if province else []
    if slug := params.text(args, "facility"):
        page_cache.scope_to(facility_scope(slug), FACILITY_LISTS)
        return queries.facility_choices(province) if province else []
    if not province:
        return []
    page_cache.scope_to(FACILITY_LISTS)  # before the province's facilities are read
    facilities = queries.facility_choices(province)
    page_cache.scope_to(*(facility_scope(slug) for slug, _name in facilities))
    return facilities


@bp.get("/products")
def products() -> str:
    in_province = _scoped_province_facilities(request.args)
    filters = _product_filters(request.args)
    page = params.page_number(request.args)
    try:
        listing = queries.list_summaries(filters, page, _page_size())
    except PageOutOfRange:
        abort(404)
    return render_template(
        "catalog/products.html",
        page=listing,
        filters=filters,
        categories=list(Category),
        provinces=page_cache.recent("provinces", queries.provinces),
        facility_choices=_facility_choices(filters, in_province),
    )


@bp.get("/products/<slug>")
def product(slug: str) -> str:
    if not request.query_string:
        # Before reading. With a quantity, it is kept as other pages: any number is a new key.
        page_cache.scope_to(product_scope(slug))
    detail = queries.product_detail(slug)
    if detail is None:
        abort(404)
    product = detail.card.product
    wanted = product.min_order_qty
    if raw := request.args.get("quantity", "").strip():
        if not raw.isdecimal() or not 1 <= int(raw) <= 1_000_000:
            abort(400, description=_("The quantity must be a whole number from 1 to 1,000,000."))
        wanted = int(raw)
    shortfall = max(0, wanted - detail.card.on_hand)
    return render_template(
        "catalog/product.html",
        detail=detail,
        product=product,
        tiers=tier_table(product.base_price, detail.card.tiers, product.min_order_qty),
        wanted=wanted,
        wanted_price=unit_price(wanted, product.base_price, detail.card.tiers),
        shortfall=shortfall,
        lead_days=lead_time_days(
            shortfall,
            product.programme.pieces_per_wbp_per_day,
            queries.MakersForShortfall()(product.programme_id, shortfall),
        ),
    )


@bp.get("/photos/<int:photo_id>")
def photo(photo_id: int) -> Response:
    found = queries.photo(photo_id)
    if found is None:
        abort(404)
    response = Response(found.data, mimetype=found.content_type)
    # A photo is never changed in place (a new upload is a new id), so caches may keep it.
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
