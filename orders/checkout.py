"""Placing orders: one transaction that prices, allocates stock to batches under row locks,
and writes one order per facility. Safe to retry with the same checkout key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from catalog.labels import unit_label
from catalog.models import Batch, BatchStatus, Product
from catalog.queries import MakersForShortfall
from shop import mail
from shop.accounts.models import User
from shop.database import insert, write_transaction
from shop.extensions import db
from shop.formatting import number
from shop.i18n import gettext as _

from .allocation import BatchStock, allocate
from .cart import PricedLine, price_line
from .lifecycle import OrderStatus
from .models import (
    DeliveryMethod,
    Invoice,
    InvoiceCounter,
    LineAllocation,
    Order,
    OrderEvent,
    OrderLine,
    PaymentMethod,
)
from .quantities import QuantityProblem

MAX_LINES = 50


class CheckoutRefused(Exception):
    """Nothing was written; `messages` tell the buyer why, in their language."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class OutOfStock(CheckoutRefused):
    """Stock no longer covers some lines; they can be made to order if the buyer accepts."""

    def __init__(self, lines: list[PricedLine]) -> None:
        super().__init__(
            [
                _(
                    "%(product)s: only %(on_hand)s in stock; %(rest)s can be made to order.",
                    product=line.product.name,
                    on_hand=number(line.on_hand),
                    rest=number(line.made_to_order),
                )
                for line in lines
            ]
        )
        self.lines = lines


@dataclass(frozen=True)
class CheckoutRequest:
    items: dict[int, int]  # product id -> quantity
    delivery_method: DeliveryMethod
    delivery_address: str
    payment_method: PaymentMethod
    checkout_key: str
    accept_made_to_order: bool = False
    note: str = ""


def quantity_message(line: PricedLine) -> str:
    unit = unit_label(line.product.unit)
    messages = {
        QuantityProblem.NOT_POSITIVE: _("the quantity must be at least 1"),
        QuantityProblem.TOO_LARGE: _("the quantity can be at most 1,000,000"),
        QuantityProblem.BELOW_MINIMUM: _(
            "the minimum order is %(moq)s %(unit)s",
            moq=number(line.product.min_order_qty),
            unit=unit,
        ),
        QuantityProblem.NOT_A_MULTIPLE: _(
            "sold in packs of %(pack)s %(unit)s",
            pack=number(line.product.order_multiple),
            unit=unit,
        ),
    }
    return _(
        "%(product)s: %(problem)s (nearest allowed: %(nearest)s).",
        product=line.product.name,
        problem=messages[line.problem] if line.problem else "",
        nearest=number(line.nearest),
    )


def _existing(buyer_id: int, checkout_key: str) -> list[Order]:
    return list(
        db.session.scalars(
            select(Order)
            .where(Order.buyer_id == buyer_id, Order.checkout_key == checkout_key)
            .order_by(Order.id)
        )
    )


def lock_stock(query: Select[tuple[Batch]]) -> Select[tuple[Batch]]:
    """Batch rows locked to change their stock (FOR NO KEY UPDATE on PostgreSQL).

    Not FOR UPDATE: that also blocks other transactions from inserting rows that reference the
    batch (a payment's ledger entries: their foreign key check takes FOR KEY SHARE), so a payment
    crediting the batch and an order allocating from it then crediting the ledger deadlocked.
    """
    return query.with_for_update(key_share=True)


def locked_batches(product_ids: list[int]) -> dict[int, list[Batch]]:
    """Finished batches of the products, locked in id order so two checkouts cannot deadlock."""
    batches = db.session.scalars(
        lock_stock(
            select(Batch)
            .where(Batch.product_id.in_(product_ids), Batch.status == BatchStatus.FINISHED)
            .order_by(Batch.id)
        )
    ).all()
    by_product: dict[int, list[Batch]] = {pid: [] for pid in product_ids}
    for batch in batches:
        by_product[batch.product_id].append(batch)
    return by_product


def _next_invoice_number(facility_id: int, year: int) -> tuple[int, str]:
    locked = (
        select(InvoiceCounter)
        .where(InvoiceCounter.facility_id == facility_id, InvoiceCounter.year == year)
        .with_for_update()
    )
    counter = db.session.scalar(locked)
    if counter is None:
        # The year's first orders of a facility, placed at once, would both create the counter:
        # the row is made once, and the second checkout waits for it and takes the next number.
        db.session.execute(
            insert(InvoiceCounter)
            .values(facility_id=facility_id, year=year, last_number=0)
            .on_conflict_do_nothing()
        )
        counter = db.session.scalars(locked).one()
    counter.last_number += 1
    return counter.last_number, f"INV/{year}/{facility_id:03d}/{counter.last_number:05d}"


def check_request(request: CheckoutRequest) -> None:
    """The checks of a checkout that need no database: refused before any lock is taken."""
    if not request.items:
        raise CheckoutRefused([_("Your cart is empty.")])
    if len(request.items) > MAX_LINES:
        raise CheckoutRefused([_("An order can have at most %(n)s lines.", n=MAX_LINES)])
    if request.delivery_method is DeliveryMethod.DELIVERY and not request.delivery_address.strip():
        raise CheckoutRefused([_("Please give the delivery address.")])


def place_orders(buyer: User, request: CheckoutRequest) -> list[Order]:
    """Places one order per facility, or refuses with nothing written.

    The same checkout key a second time returns the orders the first call placed, even when the
    cart was emptied meanwhile by that first call (the same form sent twice at once).
    """
    # Read before the transaction's first commit expires the user: after it they would load it.
    buyer_id, buyer_email = buyer.id, buyer.email
    if existing := _existing(buyer_id, request.checkout_key):
        return existing
    check_request(request)
    with write_transaction():
        if existing := _existing(buyer_id, request.checkout_key):
            return existing
        product_ids = sorted(request.items)
        products = {
            p.id: p
            for p in db.session.scalars(
                select(Product)
                .options(
                    joinedload(Product.tiers),
                    joinedload(Product.programme),
                    joinedload(Product.facility),  # named in the buyer's email
                )
                .where(Product.id.in_(product_ids), Product.active.is_(True))
            ).unique()
        }
        if missing := [pid for pid in product_ids if pid not in products]:
            raise CheckoutRefused([_("Product %(id)s is not on sale.", id=pid) for pid in missing])
        batches = locked_batches(product_ids)
        makers = MakersForShortfall()
        priced: list[tuple[PricedLine, list[Batch]]] = []
        for pid in product_ids:
            product = products[pid]
            quantity = request.items[pid]
            on_hand = sum(b.on_hand for b in batches[pid])
            can_make = makers(product.programme_id, quantity - on_hand)
            line = price_line(product, quantity, on_hand, can_make)
            priced.append((line, batches[pid]))
        if problems := [quantity_message(line) for line, _b in priced if line.problem]:
            raise CheckoutRefused(problems)
        short = [line for line, _b in priced if line.made_to_order]
        if short and not request.accept_made_to_order:
            raise OutOfStock(short)
        orders = write_orders(buyer_id, buyer_email, request, priced)
    return orders


def write_orders(
    buyer_id: int,
    buyer_email: str,
    request: CheckoutRequest,
    priced: list[tuple[PricedLine, list[Batch]]],
) -> list[Order]:
    """Writes one order per facility for lines already checked, each with its batches.

    Runs inside the caller's `write_transaction`, the batches locked by `locked_batches`. Each line
    keeps the unit price and made-to-order days it comes with: the cart's tier, or a quote's answer.
    """
    year = datetime.now(UTC).year
    orders: dict[int, Order] = {}
    for line, batches in priced:
        facility_id = line.product.facility_id
        order = orders.get(facility_id)
        if order is None:
            order = Order(
                reference=f"KB-{secrets.token_hex(4).upper()}",
                checkout_key=request.checkout_key,
                buyer_id=buyer_id,
                facility_id=facility_id,
                status=OrderStatus.PLACED,
                delivery_method=request.delivery_method,
                delivery_address=request.delivery_address.strip()
                if request.delivery_method is DeliveryMethod.DELIVERY
                else "",
                delivery_fee=0 if request.delivery_method is DeliveryMethod.PICKUP else None,
                payment_method=request.payment_method,
                subtotal=0,
                note=request.note.strip(),
            )
            order.events.append(OrderEvent(status=OrderStatus.PLACED, user_id=buyer_id))
            orders[facility_id] = order
            db.session.add(order)
        plan = allocate(
            line.quantity,
            [BatchStock(b.id, b.finished_on or date.min, b.on_hand) for b in batches],
        )
        order_line = OrderLine(
            product_id=line.product.id,
            quantity=line.quantity,
            unit_price=line.unit_price,
            tier_min_quantity=line.tier_min_quantity,
            made_to_order=plan.made_to_order,
            made_to_order_days=line.made_to_order_days if plan.made_to_order else None,
        )
        by_id = {b.id: b for b in batches}
        for allocation in plan.allocations:
            by_id[allocation.batch_id].quantity_allocated += allocation.quantity
            order_line.allocations.append(
                LineAllocation(batch_id=allocation.batch_id, quantity=allocation.quantity)
            )
        order.lines.append(order_line)
        order.subtotal += line.total
    db.session.flush()
    for order in orders.values():
        sequence, number = _next_invoice_number(order.facility_id, year)
        db.session.add(
            Invoice(
                order_id=order.id,
                facility_id=order.facility_id,
                year=year,
                sequence=sequence,
                number=number,
            )
        )
        mail.queue(
            buyer_email,
            _("Order %(reference)s placed", reference=order.reference),
            _(
                "Thank you. Your order %(reference)s with %(facility)s is placed; "
                "the facility will confirm it.",
                reference=order.reference,
                facility=order.facility.name,
            ),
        )
    return sorted(orders.values(), key=lambda o: o.facility_id)
