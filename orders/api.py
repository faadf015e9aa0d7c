"""The JSON API for buyers' own systems, under /api/v1, with token authentication.

Every request but the OpenAPI document carries a buyer's bearer token (`orders.api_tokens`).
What the API accepts and answers is stated in `orders.openapi`, whose limits this module enforces
exactly: a value the document allows is accepted, any other is refused with a 4xx JSON error.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, request
from flask_limiter.util import get_remote_address
from sqlalchemy import distinct, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.wrappers import Response

from catalog import queries
from catalog.models import Batch, BatchParticipation, Category, Product
from catalog.queries import ProductCard, ProductFilters
from shop.extensions import db, limiter
from shop.i18n import gettext as _
from shop.pagination import Page, PageOutOfRange, paginate
from shop.params import MAX_PAGE

from . import api_tokens, openapi
from .checkout import MAX_LINES, CheckoutRefused, CheckoutRequest, OutOfStock, place_orders
from .models import DeliveryMethod, Order, OrderLine, PaymentMethod
from .openapi import (
    API_PAYMENT_METHODS,
    DEFAULT_PER_PAGE,
    FACILITY_SLUG_MAX_LENGTH,
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_MIN,
    MAX_ADDRESS_LENGTH,
    MAX_NOTE_LENGTH,
    MAX_PER_PAGE,
    MAX_SEARCH_LENGTH,
    REFERENCE_MAX_LENGTH,
    REFERENCE_PATTERN,
    SLUG_MAX_LENGTH,
    SLUG_PATTERN,
)
from .quantities import MAX_QUANTITY

bp = Blueprint("api", __name__, url_prefix="/api/v1")

RATE_LIMIT = "120 per minute"
PUBLIC_ENDPOINTS = frozenset({"api.openapi_document"})


# --- Authentication and rate limiting ------------------------------------------------------------


def bearer_token() -> str:
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _rate_limit_key() -> str:
    """Per token, so that one buyer's busy system does not slow down another's."""
    token = bearer_token()
    if token:
        return "api-token:" + api_tokens.token_hash(token)
    return "api-address:" + get_remote_address()


rate_limited = limiter.shared_limit(
    lambda: current_app.config.get("API_RATE_LIMIT", RATE_LIMIT),
    scope="api",
    key_func=_rate_limit_key,
    error_message=lambda: _("Too many requests with this token. Wait a minute, then try again."),
)


def error_response(status: int, message: str, **extra: Any) -> Response:
    """The same shape as `shop.errors` gives every API error, with any extra fields inside."""
    response = jsonify({"error": {"code": status, "message": message, **extra}})
    response.status_code = status
    return response


@bp.before_request
def _authenticate() -> Response | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    token = bearer_token()
    buyer = api_tokens.authenticate(token) if token else None
    if buyer is None:
        response = error_response(
            401, _("Send a valid API token in the header Authorization: Bearer <token>.")
        )
        challenge = 'Bearer realm="Karya Binaan API"'
        response.headers["WWW-Authenticate"] = (
            challenge + ', error="invalid_token"' if token else challenge
        )
        return response
    g.api_buyer = buyer
    return None


@bp.after_app_request
def _allow_header(response: Response) -> Response:
    """A 405 must name the methods the resource allows (RFC 9110); the JSON error page drops it."""
    refused = request.routing_exception
    if (
        isinstance(refused, MethodNotAllowed)
        and refused.valid_methods
        and request.path.startswith(bp.url_prefix or "")
    ):
        response.headers["Allow"] = ", ".join(sorted(refused.valid_methods))
    return response


# --- Query-string values: exactly what the document allows --------------------------------------


def _text_arg(name: str, max_length: int, pattern: str | None = None) -> str | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if len(raw) > max_length:
        abort(400, description=_("%(name)s is too long.", name=name))
    if pattern is not None and not re.search(pattern, raw):
        abort(400, description=_("Unknown value for %(name)s: %(value)s", name=name, value=raw))
    return raw


def _number_arg(name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdecimal() and len(raw) <= len(str(maximum))) or not (
        1 <= int(raw) <= maximum
    ):
        abort(
            400,
            description=_(
                "%(name)s must be a whole number from 1 to %(max)s.", name=name, max=maximum
            ),
        )
    return int(raw)


def _flag_arg(name: str) -> bool:
    raw = request.args.get(name)
    if raw is None:
        return False
    if raw not in {"true", "false"}:
        abort(400, description=_("Unknown value for %(name)s: %(value)s", name=name, value=raw))
    return raw == "true"


def _category_arg(name: str) -> Category | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return Category(raw)
    except ValueError:
        abort(400, description=_("Unknown value for %(name)s: %(value)s", name=name, value=raw))


def _paging() -> tuple[int, int]:
    return _number_arg("page", 1, MAX_PAGE), _number_arg("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)


# --- What the API shows --------------------------------------------------------------------------


def product_json(card: ProductCard, makers: int) -> dict[str, Any]:
    """A product as buyers see it: the makers are a count, never a name."""
    product = card.product
    return {
        "slug": product.slug,
        "name": product.name,
        "description": product.description,
        "category": product.category.value,
        "unit": product.unit.value,
        "base_price": product.base_price,
        "min_order_qty": product.min_order_qty,
        "order_multiple": product.order_multiple,
        "price_tiers": [
            {"min_quantity": tier.min_quantity, "unit_price": tier.unit_price}
            for tier in card.tiers
        ],
        "stock_on_hand": card.on_hand,
        "facility": {
            "slug": product.facility.slug,
            "name": product.facility.name,
            "province": product.facility.province,
        },
        "programme": product.programme.name,
        "makers_count": makers,
    }


def page_json(listing: Page[Any], items: list[dict[str, Any]]) -> Response:
    """A page of a listing, as every listing of the API answers it."""
    return jsonify(items=items, page=listing.number, per_page=listing.size, total=listing.total)


def _iso(moment: datetime) -> str:
    # The database keeps UTC without a zone; the API says so.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def order_json(order: Order) -> dict[str, Any]:
    return {
        "reference": order.reference,
        "facility": {
            "slug": order.facility.slug,
            "name": order.facility.name,
            "province": order.facility.province,
        },
        "status": order.status.value,
        "delivery_method": order.delivery_method.value,
        "delivery_address": order.delivery_address,
        "payment_method": order.payment_method.value,
        "note": order.note,
        "lines": [
            {
                "product": line.product.slug,
                "name": line.product.name,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "shipped": line.shipped,
                "made_to_order": line.made_to_order,
                "made_to_order_days": line.made_to_order_days,
                "cancelled": line.cancelled,
            }
            for line in order.lines
        ],
        "subtotal": order.subtotal,
        "delivery_fee": order.delivery_fee,
        "total": order.total,
        "placed_at": _iso(order.placed_at),
        "invoice_number": order.invoice.number if order.invoice else None,
    }


def _orders_query():  # type: ignore[no-untyped-def]
    return select(Order).options(
        joinedload(Order.facility),
        joinedload(Order.invoice),
        selectinload(Order.lines).joinedload(OrderLine.product),
    )


def _makers_by_product(product_ids: list[int]) -> dict[int, int]:
    """WBP who took part in any batch of each product: one query for a whole page."""
    if not product_ids:
        return {}
    rows = db.session.execute(
        select(Batch.product_id, func.count(distinct(BatchParticipation.wbp_id)))
        .join(BatchParticipation, BatchParticipation.batch_id == Batch.id)
        .where(Batch.product_id.in_(product_ids))
        .group_by(Batch.product_id)
    )
    return {product_id: makers for product_id, makers in rows}


# --- Reading an order request --------------------------------------------------------------------


@dataclass(frozen=True)
class OrderBody:
    lines: dict[str, int]  # product slug -> quantity, in the order sent
    delivery_method: DeliveryMethod
    delivery_address: str
    payment_method: PaymentMethod
    note: str
    accept_made_to_order: bool
    idempotency_key: str | None


def _whole_number(value: object) -> int | None:
    """JSON's integers, including 1600.0, which JSON Schema counts as one; never true or false."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _storable(text: str) -> bool:
    # PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded at all.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _text_field(body: dict[str, Any], name: str, max_length: int, problems: list[str]) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > max_length:
        problems.append(
            _("%(name)s must be text of at most %(n)s characters.", name=name, n=max_length)
        )
        return ""
    if not _storable(value):
        problems.append(_("%(name)s contains a character that cannot be stored.", name=name))
        return ""
    return value


def _order_lines(raw: object, problems: list[str]) -> dict[str, int]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LINES:
        problems.append(_("lines must be a list of 1 to %(n)s order lines.", n=MAX_LINES))
        return {}
    lines: dict[str, int] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(raw, start=1):
        if not isinstance(line, dict):
            problems.append(
                _("Line %(n)s must be an object with a product and a quantity.", n=number)
            )
            continue
        slug = line.get("product")
        if (
            not isinstance(slug, str)
            or len(slug) > SLUG_MAX_LENGTH
            or not re.search(SLUG_PATTERN, slug)
        ):
            problems.append(_("Line %(n)s: product must be the slug of a product.", n=number))
            continue
        quantity = _whole_number(line.get("quantity"))
        if quantity is None or not 1 <= quantity <= MAX_QUANTITY:
            problems.append(
                _(
                    "Line %(n)s: the quantity must be a whole number from 1 to 1,000,000.",
                    n=number,
                )
            )
            continue
        if slug in first_line:
            problems.append(
                _(
                    "Line %(n)s: %(product)s is already in line %(first)s.",
                    n=number,
                    product=slug,
                    first=first_line[slug],
                )
            )
            continue
        first_line[slug] = number
        lines[slug] = quantity
    return lines


def _choice(body: dict[str, Any], name: str, allowed: tuple[Any, ...], problems: list[str]) -> Any:
    value = body.get(name)
    for choice in allowed:
        if value == choice.value:
            return choice
    problems.append(
        _(
            "%(name)s must be one of: %(choices)s.",
            name=name,
            choices=", ".join(c.value for c in allowed),
        )
    )
    return allowed[0]


def _idempotency_key(body: dict[str, Any], header: str | None, problems: list[str]) -> str | None:
    keys = [k for k in (body.get("idempotency_key"), header) if k is not None]
    for key in keys:
        if not isinstance(key, str) or not IDEMPOTENCY_KEY_MIN <= len(key) <= IDEMPOTENCY_KEY_MAX:
            problems.append(
                _(
                    "idempotency_key must be text of %(min)s to %(max)s characters.",
                    min=IDEMPOTENCY_KEY_MIN,
                    max=IDEMPOTENCY_KEY_MAX,
                )
            )
            return None
    if len(set(keys)) > 1:
        problems.append(_("The Idempotency-Key header and idempotency_key in the body differ."))
        return None
    return keys[0] if keys else None


def parse_order_body(body: object, header_key: str | None) -> OrderBody | list[str]:
    """The order request, or every problem with it. Prices and unknown properties are ignored."""
    if not isinstance(body, dict):
        return [_("The body must be a JSON object.")]
    problems: list[str] = []
    lines = _order_lines(body.get("lines"), problems)
    delivery = _choice(body, "delivery_method", tuple(DeliveryMethod), problems)
    payment = _choice(body, "payment_method", API_PAYMENT_METHODS, problems)
    address = _text_field(body, "delivery_address", MAX_ADDRESS_LENGTH, problems)
    note = _text_field(body, "note", MAX_NOTE_LENGTH, problems)
    accept = body.get("accept_made_to_order", False)
    if not isinstance(accept, bool):
        problems.append(_("accept_made_to_order must be true or false."))
    key = _idempotency_key(body, header_key, problems)
    if problems:
        return problems
    return OrderBody(lines, delivery, address, payment, note, accept, key)


def checkout_key(buyer_id: int, idempotency_key: str | None) -> str:
    """The key `place_orders` deduplicates on, kept apart per buyer.

    Orders are unique by key and facility across all buyers, so a key a client chose is hashed
    with the buyer's id: two buyers who happen to pick the same key never meet.
    """
    if idempotency_key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"api:{buyer_id}:{idempotency_key}".encode()).hexdigest()


def _json_body() -> object:
    try:
        return json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        return None


# --- Routes --------------------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(openapi.document())


@bp.get("/products")
@rate_limited
def products() -> Response:
    facility = None
    if slug := _text_arg("facility", FACILITY_SLUG_MAX_LENGTH, SLUG_PATTERN):
        facility = queries.facility_by_slug(slug)
        if facility is None:
            return error_response(404, _("No facility with that slug."))
    filters = ProductFilters(
        q=_text_arg("q", MAX_SEARCH_LENGTH) or "",
        facility=facility,
        category=_category_arg("category"),
        in_stock=_flag_arg("in_stock"),
    )
    page, per_page = _paging()
    try:
        listing = queries.list_products(filters, page, per_page)
    except PageOutOfRange:
        abort(404)
    makers = _makers_by_product([card.product.id for card in listing.items])
    return page_json(
        listing, [product_json(card, makers.get(card.product.id, 0)) for card in listing.items]
    )


@bp.get("/products/<slug>")
@rate_limited
def product(slug: str) -> Response:
    detail = None
    if len(slug) <= SLUG_MAX_LENGTH and re.search(SLUG_PATTERN, slug):
        detail = queries.product_detail(slug)
    if detail is None:
        return error_response(404, _("No product with that slug is on sale."))
    return jsonify(product_json(detail.card, detail.makers))


@bp.get("/orders")
@rate_limited
def orders() -> Response:
    page, per_page = _paging()
    listing = paginate(
        _orders_query().where(Order.buyer_id == g.api_buyer.id).order_by(Order.id.desc()),
        page,
        per_page,
    )
    return page_json(listing, [order_json(order) for order in listing.items])


@bp.get("/orders/<reference>")
@rate_limited
def order(reference: str) -> Response:
    found = None
    if len(reference) <= REFERENCE_MAX_LENGTH and re.search(REFERENCE_PATTERN, reference):
        found = db.session.scalar(
            _orders_query().where(Order.reference == reference, Order.buyer_id == g.api_buyer.id)
        )
    if found is None:
        return error_response(404, _("You have no order with that reference."))
    return jsonify(order_json(found))


def _placed(buyer_id: int, key: str) -> list[Order]:
    return list(
        db.session.scalars(
            _orders_query()
            .where(Order.buyer_id == buyer_id, Order.checkout_key == key)
            .order_by(Order.facility_id)
        )
    )


def _placed_response(orders: list[Order], status: int) -> Response:
    response = jsonify(orders=[order_json(order) for order in orders])
    response.status_code = status
    return response


def _unprocessable(details: list[str]) -> Response:
    return error_response(422, _("The order cannot be placed as sent."), details=details)


@bp.post("/orders")
@rate_limited
def place() -> Response:
    """Places one order per facility through the same checkout as the pages, prices and all."""
    parsed = parse_order_body(_json_body(), request.headers.get("Idempotency-Key"))
    if isinstance(parsed, list):
        return _unprocessable(parsed)
    buyer = g.api_buyer
    key = checkout_key(buyer.id, parsed.idempotency_key)
    # A key sent again finds its orders even if the products have changed since.
    if parsed.idempotency_key is not None and (earlier := _placed(buyer.id, key)):
        return _placed_response(earlier, 200)
    on_sale = dict(
        db.session.execute(
            select(Product.slug, Product.id).where(
                Product.slug.in_(parsed.lines), Product.active.is_(True)
            )
        ).all()
    )
    if unknown := [slug for slug in parsed.lines if slug not in on_sale]:
        return _unprocessable(
            [_("%(product)s is not a product on sale.", product=slug) for slug in unknown]
        )
    checkout = CheckoutRequest(
        items={on_sale[slug]: quantity for slug, quantity in parsed.lines.items()},
        delivery_method=parsed.delivery_method,
        delivery_address=parsed.delivery_address,
        payment_method=parsed.payment_method,
        checkout_key=key,
        accept_made_to_order=parsed.accept_made_to_order,
        note=parsed.note,
    )
    try:
        place_orders(buyer, checkout)
    except OutOfStock as refused:
        return error_response(
            409,
            _(
                "Stock does not cover every line. Send the order again with "
                "accept_made_to_order to have the rest made."
            ),
            details=refused.messages,
            lines=[
                {
                    "product": line.product.slug,
                    "on_hand": line.on_hand,
                    "made_to_order": line.made_to_order,
                    "made_to_order_days": line.made_to_order_days,
                }
                for line in refused.lines
            ],
        )
    except CheckoutRefused as refused:
        return _unprocessable(refused.messages)
    except IntegrityError:
        # The same key sent twice at once: the other request placed the orders first.
        if earlier := _placed(buyer.id, key):
            return _placed_response(earlier, 200)
        raise
    return _placed_response(_placed(buyer.id, key), 201)
