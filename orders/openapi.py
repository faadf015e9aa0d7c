"""The API's contract: its limits, and the OpenAPI 3.1 document served at /api/v1/openapi.json.

`orders.api` enforces exactly the limits named here, so the document and the server cannot drift
apart; the schemathesis run in the test suite checks every response against this document.
"""

from __future__ import annotations

from typing import Any

from catalog.models import Category, Unit
from shop.params import MAX_PAGE

from .checkout import MAX_LINES
from .lifecycle import OrderStatus
from .models import DeliveryMethod, PaymentMethod
from .quantities import MAX_QUANTITY

# Slugs and references are made by the shop: lower-case words joined by hyphens, and "KB-…".
SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
SLUG_MAX_LENGTH = 120
FACILITY_SLUG_MAX_LENGTH = 80
REFERENCE_PATTERN = r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$"
REFERENCE_MAX_LENGTH = 32
MAX_SEARCH_LENGTH = 100
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
IDEMPOTENCY_KEY_MIN = 16
IDEMPOTENCY_KEY_MAX = 64
MAX_ADDRESS_LENGTH = 500
MAX_NOTE_LENGTH = 300
# PostgreSQL cannot store the NUL character in text; a text field that holds one is refused.
NO_NUL_PATTERN = "^[^\\u0000]*$"
# Only these two are open to API clients; card payment needs the buyer in the browser.
API_PAYMENT_METHODS = (PaymentMethod.PAY_ON_PICKUP, PaymentMethod.BANK_TRANSFER)

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _closed(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    """An object whose every property is always present, and nothing else."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _rupiah(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "description": description + " (whole rupiah)."}


def _count(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "description": description}


def _page_of(item: str) -> dict[str, Any]:
    return _closed(
        {
            "items": {"type": "array", "items": _ref(item)},
            "page": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
            "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
            "total": _count("Items on every page together."),
        }
    )


def _error_body(code: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "code": {"type": "integer", "const": code},
        "message": {"type": "string", "description": "For people, in the buyer's language."},
    }
    properties.update(extra or {})
    return _closed({"error": _closed(properties)})


_DETAILS = {
    "type": "array",
    "items": {"type": "string"},
    "minItems": 1,
    "description": "Every problem found, one message each.",
}


def _schemas() -> dict[str, Any]:
    return {
        "Product": _closed(
            {
                "slug": {"type": "string"},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "category": {"type": "string", "enum": [c.value for c in Category]},
                "unit": {"type": "string", "enum": [u.value for u in Unit]},
                "base_price": _rupiah("Price of one unit below the first tier"),
                "min_order_qty": {"type": "integer", "minimum": 1},
                "order_multiple": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "The pack: a quantity must be a multiple of it (a kodi is 20).",
                },
                "price_tiers": {
                    "type": "array",
                    "items": _closed(
                        {
                            "min_quantity": {"type": "integer", "minimum": 1},
                            "unit_price": _rupiah("Price of one unit from min_quantity up"),
                        }
                    ),
                },
                "stock_on_hand": _count("Finished units not yet promised to an order."),
                "facility": _ref("FacilitySummary"),
                "programme": {
                    "type": "string",
                    "description": "The skills programme the product comes from.",
                },
                "makers_count": _count(
                    "How many WBP have made this product. Names are never given."
                ),
            }
        ),
        "FacilitySummary": _closed(
            {
                "slug": {"type": "string"},
                "name": {"type": "string"},
                "province": {"type": "string"},
            }
        ),
        "ProductPage": _page_of("Product"),
        "OrderLine": _closed(
            {
                "product": {"type": "string", "description": "The product's slug."},
                "name": {"type": "string"},
                "quantity": {"type": "integer", "minimum": 1},
                "unit_price": _rupiah("Fixed when the order was placed"),
                "shipped": _count("Units already shipped or picked up."),
                "made_to_order": _count("Units that are made for this order."),
                "made_to_order_days": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "description": "Working days the made-to-order units take, as promised.",
                },
                "cancelled": {"type": "boolean"},
            }
        ),
        "Order": _closed(
            {
                "reference": {"type": "string"},
                "facility": _ref("FacilitySummary"),
                "status": {"type": "string", "enum": [s.value for s in OrderStatus]},
                "delivery_method": {"type": "string", "enum": [m.value for m in DeliveryMethod]},
                "delivery_address": {"type": "string"},
                "payment_method": {"type": "string", "enum": [m.value for m in PaymentMethod]},
                "note": {"type": "string"},
                "lines": {"type": "array", "items": _ref("OrderLine"), "minItems": 1},
                "subtotal": _rupiah("The lines together"),
                "delivery_fee": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "description": "Null until the facility confirms what delivery costs; "
                    "0 for pickup.",
                },
                "total": _rupiah("Subtotal plus the delivery fee once it is known"),
                "placed_at": {"type": "string", "format": "date-time"},
                "invoice_number": {"type": ["string", "null"]},
            },
            "One facility's part of a checkout.",
        ),
        "OrderPage": _page_of("Order"),
        "PlacedOrders": _closed(
            {"orders": {"type": "array", "items": _ref("Order"), "minItems": 1}},
            "One order per facility whose products were ordered.",
        ),
        "OrderRequest": {
            "type": "object",
            "description": "Prices are always computed by the server; any price sent is ignored, "
            "as is any property not listed here.",
            "required": ["lines", "delivery_method", "payment_method"],
            "properties": {
                "lines": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_LINES,
                    "description": "Each product at most once.",
                    "items": {
                        "type": "object",
                        "required": ["product", "quantity"],
                        "properties": {
                            "product": {
                                "type": "string",
                                "pattern": SLUG_PATTERN,
                                "maxLength": SLUG_MAX_LENGTH,
                                "description": "The slug of a product on sale.",
                            },
                            "quantity": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_QUANTITY,
                                "description": "At least the product's min_order_qty and a "
                                "multiple of its order_multiple.",
                            },
                        },
                    },
                },
                "delivery_method": {"type": "string", "enum": [m.value for m in DeliveryMethod]},
                "delivery_address": {
                    "type": "string",
                    "maxLength": MAX_ADDRESS_LENGTH,
                    "pattern": NO_NUL_PATTERN,
                    "description": "Required (not blank) for delivery.",
                },
                "payment_method": {
                    "type": "string",
                    "enum": [m.value for m in API_PAYMENT_METHODS],
                },
                "note": {"type": "string", "maxLength": MAX_NOTE_LENGTH, "pattern": NO_NUL_PATTERN},
                "accept_made_to_order": {
                    "type": "boolean",
                    "description": "Accept that what is not in stock is made to order. "
                    "Without it, a shortage is a 409 with the offer.",
                },
                "idempotency_key": {
                    "type": "string",
                    "minLength": IDEMPOTENCY_KEY_MIN,
                    "maxLength": IDEMPOTENCY_KEY_MAX,
                    "description": "Sending the same key again returns the orders it placed "
                    "(status 200) instead of placing them twice.",
                },
            },
        },
        "OutOfStockLine": _closed(
            {
                "product": {"type": "string"},
                "on_hand": _count("Units in stock now."),
                "made_to_order": _count("Units that would be made to order."),
                "made_to_order_days": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "description": "Working days to make them; null when nobody can make them "
                    "now (ask the facility for a quote).",
                },
            }
        ),
    }


def _error_response(description: str, code: int, extra: dict[str, Any] | None = None) -> Any:
    return {
        "description": description,
        "content": {JSON: {"schema": _error_body(code, extra)}},
    }


def _responses() -> dict[str, Any]:
    return {
        "BadRequest": _error_response("A query parameter has a value that is not allowed.", 400),
        "Unauthorized": {
            **_error_response("The bearer token is missing, unknown or revoked.", 401),
            "headers": {
                "WWW-Authenticate": {
                    "required": True,
                    "schema": {"type": "string", "pattern": "^Bearer"},
                }
            },
        },
        "NotFound": _error_response(
            "Nothing with that name or reference here (or a page past the last).", 404
        ),
        "TooManyRequests": {
            **_error_response("Too many requests with this token: wait, then retry.", 429),
            "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}},
        },
        "Unprocessable": _error_response(
            "The order cannot be placed as sent; nothing was written.",
            422,
            {"details": _DETAILS},
        ),
        "OutOfStock": _error_response(
            "Stock does not cover every line; nothing was written. "
            "Send again with accept_made_to_order to have the rest made.",
            409,
            {
                "details": _DETAILS,
                "lines": {"type": "array", "items": _ref("OutOfStockLine"), "minItems": 1},
            },
        ),
        "TooLarge": _error_response("The request body is too large.", 413),
    }


def _param(
    name: str, where: str, schema: dict[str, Any], description: str, example: Any = None
) -> dict[str, Any]:
    parameter = {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }
    if example is not None:
        parameter["example"] = example
    return parameter


def _paging() -> list[dict[str, Any]]:
    return [
        _param(
            "page",
            "query",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
            "A page past the last is a 404.",
        ),
        _param(
            "per_page",
            "query",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PER_PAGE,
                "default": DEFAULT_PER_PAGE,
            },
            "Items per page.",
        ),
    ]


def _ok(schema: str, description: str, links: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": _ref(schema)}},
    }
    if links:
        response["links"] = links
    return response


def _link(operation_id: str, parameter: str, expression: str) -> dict[str, Any]:
    return {operation_id: {"operationId": operation_id, "parameters": {parameter: expression}}}


ORDER_EXAMPLE = {
    "lines": [{"product": "besek-bambu-banjarnegara", "quantity": 1600}],
    "delivery_method": "pickup",
    "payment_method": "bank_transfer",
    "idempotency_key": "toko-ikan-asin-2026-10-17",
}


def _errors(*names: str) -> dict[str, Any]:
    codes = {
        "BadRequest": "400",
        "Unauthorized": "401",
        "NotFound": "404",
        "OutOfStock": "409",
        "TooLarge": "413",
        "Unprocessable": "422",
        "TooManyRequests": "429",
    }
    return {codes[name]: {"$ref": f"#/components/responses/{name}"} for name in names}


def _paths() -> dict[str, Any]:
    slug = _param(
        "slug",
        "path",
        {"type": "string", "pattern": SLUG_PATTERN, "maxLength": SLUG_MAX_LENGTH},
        "The product's slug.",
        "besek-bambu-banjarnegara",
    )
    reference = _param(
        "reference",
        "path",
        {"type": "string", "pattern": REFERENCE_PATTERN, "maxLength": REFERENCE_MAX_LENGTH},
        "The order's reference.",
        "KB-1A2B3C4D",
    )
    return {
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApiDocument",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document of this API.",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/products": {
            "get": {
                "operationId": "listProducts",
                "summary": "Products on sale, by name",
                "parameters": [
                    _param(
                        "q",
                        "query",
                        {"type": "string", "maxLength": MAX_SEARCH_LENGTH},
                        "Words the name, description, programme or facility start with.",
                        "besek",
                    ),
                    _param(
                        "facility",
                        "query",
                        {
                            "type": "string",
                            "pattern": SLUG_PATTERN,
                            "maxLength": FACILITY_SLUG_MAX_LENGTH,
                        },
                        "A facility's slug; an unknown one is a 404.",
                        "rutan-banjarnegara",
                    ),
                    _param(
                        "category",
                        "query",
                        {"type": "string", "enum": [c.value for c in Category]},
                        "Only this category.",
                    ),
                    _param(
                        "in_stock",
                        "query",
                        {"type": "boolean", "default": False},
                        "Only products with finished units in stock.",
                    ),
                    *_paging(),
                ],
                "responses": {
                    "200": _ok(
                        "ProductPage",
                        "One page of products.",
                        _link("getProduct", "slug", "$response.body#/items/0/slug"),
                    ),
                    **_errors("BadRequest", "Unauthorized", "NotFound", "TooManyRequests"),
                },
            }
        },
        "/products/{slug}": {
            "get": {
                "operationId": "getProduct",
                "summary": "One product on sale",
                "parameters": [slug],
                "responses": {
                    "200": _ok("Product", "The product."),
                    **_errors("Unauthorized", "NotFound", "TooManyRequests"),
                },
            }
        },
        "/orders": {
            "get": {
                "operationId": "listOrders",
                "summary": "Your orders, newest first",
                "parameters": _paging(),
                "responses": {
                    "200": _ok(
                        "OrderPage",
                        "One page of your orders.",
                        _link("getOrder", "reference", "$response.body#/items/0/reference"),
                    ),
                    **_errors("BadRequest", "Unauthorized", "NotFound", "TooManyRequests"),
                },
            },
            "post": {
                "operationId": "placeOrders",
                "summary": "Place an order: one order per facility",
                "parameters": [
                    _param(
                        "Idempotency-Key",
                        "header",
                        {
                            "type": "string",
                            "minLength": IDEMPOTENCY_KEY_MIN,
                            "maxLength": IDEMPOTENCY_KEY_MAX,
                        },
                        "The same as idempotency_key in the body; if both are sent they must "
                        "be equal.",
                    )
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("OrderRequest"), "example": ORDER_EXAMPLE}},
                },
                "responses": {
                    "200": _ok("PlacedOrders", "This idempotency key already placed these."),
                    "201": _ok(
                        "PlacedOrders",
                        "The orders are placed.",
                        _link("getOrder", "reference", "$response.body#/orders/0/reference"),
                    ),
                    **_errors(
                        "Unauthorized", "OutOfStock", "TooLarge", "Unprocessable", "TooManyRequests"
                    ),
                },
            },
        },
        "/orders/{reference}": {
            "get": {
                "operationId": "getOrder",
                "summary": "One of your orders",
                "parameters": [reference],
                "responses": {
                    "200": _ok("Order", "The order."),
                    **_errors("Unauthorized", "NotFound", "TooManyRequests"),
                },
            }
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Karya Binaan API",
            "version": "1.0.0",
            "description": "Products made by WBP in Indonesian detention facilities, and orders "
            "for them, for a buyer's own system. Amounts are whole rupiah. Create a token on "
            "the account's API tokens page and send it as `Authorization: Bearer <token>`. "
            "Makers are only ever counted, never named.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A buyer's API token.",
                }
            },
            "schemas": _schemas(),
            "responses": _responses(),
        },
    }
