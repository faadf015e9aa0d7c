"""After an order is placed: status changes, partial shipments, cancellation releasing stock."""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import gettext as _
from sqlalchemy import select

from catalog.models import Batch
from shop import audit
from shop.accounts.models import User
from shop.database import write_transaction
from shop.extensions import db

from .checkout import CheckoutRefused
from .lifecycle import IllegalTransition, OrderStatus, cancellable, check_transition
from .models import Order, OrderEvent, OrderLine, Shipment, ShipmentLine

SHIPPABLE = frozenset({OrderStatus.CONFIRMED, OrderStatus.IN_PRODUCTION, OrderStatus.READY})


class FulfilmentRefused(CheckoutRefused):
    """A staff or buyer action that the order's state does not allow; nothing changed."""


def _locked_order(order_id: int) -> Order:
    order = db.session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise FulfilmentRefused([_("That order does not exist.")])
    return order


def _step(order: Order, target: OrderStatus, user: User | None, note: str = "") -> None:
    try:
        check_transition(order.status, target)
    except IllegalTransition as error:
        raise FulfilmentRefused(
            [_("This order cannot go from %(a)s to %(b)s.", a=error.current, b=error.target)]
        ) from error
    order.status = target
    order.events.append(OrderEvent(status=target, user_id=user.id if user else None, note=note))


def change_status(order_id: int, target: OrderStatus, user: User, note: str = "") -> Order:
    """Staff move an order along its life cycle; handovers go through `record_shipment`."""
    if target in {OrderStatus.SHIPPED, OrderStatus.PICKED_UP, OrderStatus.CANCELLED}:
        raise FulfilmentRefused([_("Use the shipment or cancel form for that.")])
    with write_transaction():
        order = _locked_order(order_id)
        before = audit.snapshot(order)
        _step(order, target, user, note)
        audit.record("status", order, facility_id=order.facility_id, before=before)
    return order


def set_delivery_fee(order_id: int, fee: int, user: User) -> Order:
    with write_transaction():
        order = _locked_order(order_id)
        if order.status not in {OrderStatus.PLACED, OrderStatus.CONFIRMED}:
            raise FulfilmentRefused([_("The delivery fee can only be set before production.")])
        before = audit.snapshot(order)
        order.delivery_fee = fee
        audit.record("delivery_fee", order, facility_id=order.facility_id, before=before)
    return order


def record_shipment(
    order_id: int, quantities: Mapping[int, int], picked_up: bool, user: User, note: str = ""
) -> Shipment:
    """Hands over part or all of the goods; when nothing is left, the order is shipped."""
    with write_transaction():
        order = _locked_order(order_id)
        if order.status not in SHIPPABLE:
            raise FulfilmentRefused(
                [_("Goods can only be handed over once the order is confirmed.")]
            )
        lines = {line.id: line for line in order.lines}
        wanted = {line_id: qty for line_id, qty in quantities.items() if qty}
        if not wanted:
            raise FulfilmentRefused([_("Enter the quantity handed over for at least one line.")])
        problems = []
        for line_id, qty in wanted.items():
            line = lines.get(line_id)
            if line is None or line.cancelled:
                problems.append(_("Line %(id)s is not part of this order.", id=line_id))
            elif qty < 0 or qty > line.unshipped:
                problems.append(
                    _(
                        "%(product)s: between 1 and %(left)s can still be handed over.",
                        product=line.product.name,
                        left=line.unshipped,
                    )
                )
        if problems:
            raise FulfilmentRefused(problems)
        shipment = Shipment(order=order, user_id=user.id, picked_up=picked_up, note=note)
        for line_id, qty in wanted.items():
            lines[line_id].shipped += qty
            shipment.lines.append(ShipmentLine(line_id=line_id, quantity=qty))
        db.session.add(shipment)
        if all(line.unshipped == 0 for line in order.lines):
            if order.status is not OrderStatus.READY:
                _step(order, OrderStatus.READY, user)
            _step(order, OrderStatus.PICKED_UP if picked_up else OrderStatus.SHIPPED, user, note)
        audit.record(
            "shipment",
            shipment,
            facility_id=order.facility_id,
            extra={"lines": {str(k): v for k, v in wanted.items()}},
        )
    return shipment


def _release(lines: list[OrderLine]) -> None:
    """Gives the lines' allocated units back to their batches, under the batches' row locks."""
    allocations = [a for line in lines for a in line.allocations if not a.released]
    if not allocations:
        return
    batch_ids = sorted({a.batch_id for a in allocations})
    batches = {
        b.id: b
        for b in db.session.scalars(
            select(Batch).where(Batch.id.in_(batch_ids)).order_by(Batch.id).with_for_update()
        )
    }
    for allocation in allocations:
        batches[allocation.batch_id].quantity_allocated -= allocation.quantity
        allocation.released = True


def cancel_order(order_id: int, reason: str, user: User) -> Order:
    if not reason.strip():
        raise FulfilmentRefused([_("Please give a reason for cancelling.")])
    with write_transaction():
        order = _locked_order(order_id)
        if not cancellable(order.status) or order.shipments:
            raise FulfilmentRefused([_("Goods have left the facility: it is too late to cancel.")])
        before = audit.snapshot(order)
        _release(order.lines)
        for line in order.lines:
            line.cancelled = True
        order.cancel_reason = reason.strip()
        _step(order, OrderStatus.CANCELLED, user, reason.strip())
        audit.record("cancel", order, facility_id=order.facility_id, before=before)
    return order


def cancel_line(order_id: int, line_id: int, reason: str, user: User) -> Order:
    if not reason.strip():
        raise FulfilmentRefused([_("Please give a reason for cancelling.")])
    with write_transaction():
        order = _locked_order(order_id)
        line = next((x for x in order.lines if x.id == line_id and not x.cancelled), None)
        if line is None:
            raise FulfilmentRefused([_("Line %(id)s is not part of this order.", id=line_id)])
        if not cancellable(order.status) or line.shipped:
            raise FulfilmentRefused([_("Part of this line has been handed over already.")])
        before = audit.snapshot(line)
        _release([line])
        line.cancelled = True
        line.cancel_reason = reason.strip()
        order.subtotal = sum(x.line_total for x in order.lines)
        if all(x.cancelled for x in order.lines):
            order.cancel_reason = reason.strip()
            _step(order, OrderStatus.CANCELLED, user, reason.strip())
        audit.record("cancel_line", line, facility_id=order.facility_id, before=before)
    return order


def allocated_units(line: OrderLine) -> int:
    return sum(a.quantity for a in line.allocations if not a.released)
