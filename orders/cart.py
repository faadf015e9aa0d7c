"""The cart: kept in the session for visitors, in the database for signed-in buyers, and priced
on the server every time it is shown (a price sent by a client is never read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flask import Flask, session
from flask_login import current_user, user_logged_in
from sqlalchemy import delete, select
from sqlalchemy.orm import contains_eager, joinedload

from catalog.models import Facility, Product
from catalog.pricing import Tier, applied_tier, lead_time_days
from catalog.queries import MakersForShortfall, on_hand_expression
from shop.database import insert
from shop.extensions import db

from .models import CartLine
from .quantities import QuantityProblem, QuantityRule, nearest_valid, problem

SESSION_KEY = "cart"
MAX_LINES = 50


class Cart(Protocol):
    def items(self) -> dict[int, int]: ...
    def put(self, product_id: int, quantity: int) -> None: ...
    def remove(self, product_id: int) -> None: ...
    def clear(self) -> None: ...


class SessionCart:
    """A visitor's cart in the signed session cookie: product id -> quantity."""

    def items(self) -> dict[int, int]:
        raw = session.get(SESSION_KEY, {})
        return {int(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}

    def put(self, product_id: int, quantity: int) -> None:
        items = self.items()
        items[product_id] = quantity
        session[SESSION_KEY] = {str(k): v for k, v in items.items()}

    def remove(self, product_id: int) -> None:
        items = self.items()
        items.pop(product_id, None)
        session[SESSION_KEY] = {str(k): v for k, v in items.items()}

    def clear(self) -> None:
        session.pop(SESSION_KEY, None)


class DatabaseCart:
    """A signed-in buyer's cart, the same on every device."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id

    def items(self) -> dict[int, int]:
        rows = db.session.execute(
            select(CartLine.product_id, CartLine.quantity)
            .where(CartLine.user_id == self.user_id)
            .order_by(CartLine.id)
        )
        return {product_id: quantity for product_id, quantity in rows}

    def put(self, product_id: int, quantity: int) -> None:
        # One statement; two requests adding the same product at once cannot collide on the
        # unique (user, product).
        db.session.execute(
            insert(CartLine)
            .values(user_id=self.user_id, product_id=product_id, quantity=quantity)
            .on_conflict_do_update(
                index_elements=[CartLine.user_id, CartLine.product_id],
                set_={"quantity": quantity},
            )
        )
        db.session.commit()

    def remove(self, product_id: int) -> None:
        db.session.execute(
            delete(CartLine).where(
                CartLine.user_id == self.user_id, CartLine.product_id == product_id
            )
        )
        db.session.commit()

    def clear(self) -> None:
        db.session.execute(delete(CartLine).where(CartLine.user_id == self.user_id))
        db.session.commit()


def current_cart() -> Cart:
    if current_user.is_authenticated:
        return DatabaseCart(current_user.id)
    return SessionCart()


def merge_session_cart(user_id: int) -> None:
    """At sign-in, what a visitor put in the cart joins the account's cart (theirs wins)."""
    visitor = SessionCart()
    items = visitor.items()
    if not items:
        return
    account = DatabaseCart(user_id)
    for product_id, quantity in items.items():
        if db.session.get(Product, product_id) is not None:
            account.put(product_id, quantity)
    visitor.clear()


@dataclass(frozen=True)
class PricedLine:
    product: Product
    quantity: int
    unit_price: int
    tier_min_quantity: int | None
    on_hand: int
    problem: QuantityProblem | None
    nearest: int
    made_to_order: int
    made_to_order_days: int | None

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class FacilityCart:
    facility: Facility
    lines: list[PricedLine]

    @property
    def subtotal(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def has_problems(self) -> bool:
        return any(line.problem for line in self.lines)

    @property
    def made_to_order(self) -> bool:
        return any(line.made_to_order for line in self.lines)


def tiers_of(product: Product) -> list[Tier]:
    return [Tier(t.min_quantity, t.unit_price) for t in product.tiers]


def price_line(product: Product, quantity: int, on_hand: int, makers: int) -> PricedLine:
    """Everything the buyer must see about one line before placing it."""
    rule = QuantityRule(product.min_order_qty, product.order_multiple)
    tier = applied_tier(quantity, tiers_of(product))
    shortfall = max(0, quantity - on_hand)
    return PricedLine(
        product=product,
        quantity=quantity,
        unit_price=product.base_price if tier is None else tier.unit_price,
        tier_min_quantity=None if tier is None else tier.min_quantity,
        on_hand=on_hand,
        problem=problem(quantity, rule),
        nearest=nearest_valid(quantity, rule),
        made_to_order=shortfall,
        made_to_order_days=lead_time_days(
            shortfall, product.programme.pieces_per_wbp_per_day, makers
        ),
    )


def on_sale(product_id: int) -> bool:
    """Whether the product can go in a cart: the lines `price_cart` keeps, without pricing."""
    return (
        db.session.scalar(
            select(Product.id).where(Product.id == product_id, Product.active.is_(True))
        )
        is not None
    )


def price_cart(items: dict[int, int]) -> list[FacilityCart]:
    """The cart split by facility, each line priced from the product's tiers as stored now.

    Products no longer on sale drop out; the caller tells the buyer.
    """
    if not items:
        return []
    rows = (
        db.session.execute(
            select(Product, on_hand_expression())
            .join(Product.facility)
            .join(Product.programme)
            .options(
                contains_eager(Product.facility),
                contains_eager(Product.programme),
                joinedload(Product.tiers),  # a few rows each: one statement instead of two
            )
            .where(Product.id.in_(items), Product.active.is_(True))
            .order_by(Product.facility_id, Product.name)
        )
        .unique()
        .all()
    )
    makers = MakersForShortfall()
    groups: dict[int, FacilityCart] = {}
    for product, on_hand in rows:
        quantity = items[product.id]
        can_make = makers(product.programme_id, quantity - on_hand)
        line = price_line(product, quantity, int(on_hand), can_make)
        groups.setdefault(product.facility_id, FacilityCart(product.facility, [])).lines.append(
            line
        )
    return list(groups.values())


def register(app: Flask) -> None:
    def _merge(_sender: Flask, user, **_extra) -> None:  # type: ignore[no-untyped-def]
        merge_session_cart(user.id)

    user_logged_in.connect(_merge, app, weak=False)
