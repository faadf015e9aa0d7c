"""After an order is placed: status changes, partial handovers, cancellation releasing stock.

The predicates (`fee_settable`, `order_cancellable`, ...) are the rules; the services check them
under the order's row lock, and the pages call them only to hide forms that would be refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

from sqlalchemy import select

from catalog.models import Batch, BatchStatus
from finance import events
from payments.stripe_gateway import cancel_untaken_intents
from shop import audit
from shop.accounts.models import User
from shop.database import write_transaction
from shop.extensions import db
from shop.i18n import gettext as _

from .allocation import BatchStock, allocate
from .checkout import CheckoutRefused, lock_stock
from .labels import order_label
from .lifecycle import IllegalTransition, OrderStatus, cancellable, check_transition
from .models import (
    DeliveryMethod,
    LineAllocation,
    Order,
    OrderEvent,
    OrderLine,
    Shipment,
    ShipmentLine,
)

SHIPPABLE = frozenset({OrderStatus.CONFIRMED, OrderStatus.IN_PRODUCTION, OrderStatus.READY})
MAX_DELIVERY_FEE = 100_000_000


class FulfilmentRefused(CheckoutRefused):
    """A staff or buyer action that the order's state does not allow; nothing changed."""


def fee_settable(order: Order) -> bool:
    """A delivery fee can be set until the first goods leave."""
    return (
        order.delivery_method is DeliveryMethod.DELIVERY
        and (order.status is OrderStatus.PLACED or order.status in SHIPPABLE)
        and not order.shipments
    )


def can_hand_over(order: Order) -> bool:
    return order.status in SHIPPABLE and any(line.unshipped for line in order.lines)


def order_cancellable(order: Order) -> bool:
    return cancellable(order.status) and not order.shipments


def line_cancellable(order: Order, line: OrderLine) -> bool:
    return cancellable(order.status) and not line.cancelled and not line.shipped


def allocated_units(line: OrderLine) -> int:
    return sum(a.quantity for a in line.allocations if not a.released)


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
            [
                _(
                    "This order cannot go from %(a)s to %(b)s.",
                    a=order_label(error.current),
                    b=order_label(error.target),
                )
            ]
        ) from error
    order.status = target
    order.events.append(OrderEvent(status=target, user_id=user.id if user else None, note=note))


def _finish_handover(order: Order, picked_up: bool, user: User, note: str = "") -> None:
    """When nothing is left to hand over, the order is shipped (or picked up)."""
    live = [line for line in order.lines if not line.cancelled]
    if not live or any(line.unshipped for line in live) or not order.shipments:
        return
    if order.status is not OrderStatus.READY:
        _step(order, OrderStatus.READY, user)
    _step(order, OrderStatus.PICKED_UP if picked_up else OrderStatus.SHIPPED, user, note)


def _allocate_made_to_order(lines: list[OrderLine]) -> None:
    """Gives waiting made-to-order units what finished batches now hold, oldest batch first.

    Units reach a buyer only from a batch, so that every rupiah of them can be traced to the
    WBP who made them; if the order is paid, the new units' proceeds are credited now.
    """
    waiting = [line for line in lines if line.made_to_order and not line.cancelled]
    if not waiting:
        return
    batches = db.session.scalars(
        lock_stock(
            select(Batch)
            .where(
                Batch.product_id.in_({line.product_id for line in waiting}),
                Batch.status == BatchStatus.FINISHED,
            )
            .order_by(Batch.id)
        )
    ).all()
    made: list[LineAllocation] = []
    for line in waiting:
        own = [b for b in batches if b.product_id == line.product_id and b.on_hand > 0]
        if not own:
            continue
        plan = allocate(
            line.made_to_order,
            [BatchStock(b.id, b.finished_on or date.min, b.on_hand) for b in own],
        )
        by_id = {b.id: b for b in own}
        for allocation in plan.allocations:
            by_id[allocation.batch_id].quantity_allocated += allocation.quantity
            row = LineAllocation(batch_id=allocation.batch_id, quantity=allocation.quantity)
            line.allocations.append(row)
            made.append(row)
        line.made_to_order = plan.made_to_order
    if made:
        db.session.flush()
        events.units_allocated(
            waiting[0].order_id, [a.id for a in made], datetime.now(UTC).replace(tzinfo=None)
        )


def change_status(order_id: int, target: OrderStatus, user: User, note: str = "") -> Order:
    """Staff move an order along its life cycle; handovers go through `record_shipment`."""
    if target in {OrderStatus.SHIPPED, OrderStatus.PICKED_UP, OrderStatus.CANCELLED}:
        raise FulfilmentRefused([_("Use the shipment or cancel form for that.")])
    with write_transaction():
        order = _locked_order(order_id)
        before = audit.snapshot(order)
        if target is OrderStatus.READY:
            _allocate_made_to_order(order.lines)
        _step(order, target, user, note)
        audit.record("status", order, facility_id=order.facility_id, before=before)
    return order


def set_delivery_fee(order_id: int, fee: int, user: User) -> Order:
    if not 0 <= fee <= MAX_DELIVERY_FEE:
        raise FulfilmentRefused([_("Enter a whole number of rupiah from 0 to 100,000,000.")])
    with write_transaction():
        order = _locked_order(order_id)
        if order.delivery_method is not DeliveryMethod.DELIVERY:
            raise FulfilmentRefused([_("The buyer picks this order up: it has no delivery fee.")])
        if not fee_settable(order):
            raise FulfilmentRefused([_("The delivery fee can only be set before goods leave.")])
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
        if order.delivery_method is DeliveryMethod.DELIVERY and order.delivery_fee is None:
            raise FulfilmentRefused([_("Set the delivery fee before the goods leave.")])
        wanted = {line_id: qty for line_id, qty in quantities.items() if qty}
        if not wanted:
            raise FulfilmentRefused([_("Enter the quantity handed over for at least one line.")])
        lines = {line.id: line for line in order.lines}
        _allocate_made_to_order([lines[i] for i in wanted if i in lines])
        problems = []
        for line_id, qty in wanted.items():
            line = lines.get(line_id)
            if line is None or line.cancelled:
                problems.append(_("Line %(id)s is not part of this order.", id=line_id))
                continue
            ready = allocated_units(line) - line.shipped
            if qty < 0 or qty > ready:
                problems.append(
                    _(
                        "%(product)s: between 1 and %(left)s can be handed over now; "
                        "the rest is still to be made.",
                        product=line.product.name,
                        left=ready,
                    )
                    if ready < line.unshipped
                    else _(
                        "%(product)s: between 1 and %(left)s can still be handed over.",
                        product=line.product.name,
                        left=line.unshipped,
                    )
                )
        if problems:
            raise FulfilmentRefused(problems)
        before = order.status
        shipment = Shipment(order=order, user_id=user.id, picked_up=picked_up, note=note)
        for line_id, qty in wanted.items():
            lines[line_id].shipped += qty
            shipment.lines.append(ShipmentLine(line_id=line_id, quantity=qty))
        db.session.add(shipment)
        _finish_handover(order, picked_up, user, note)
        extra: dict[str, object] = {"lines": {str(k): v for k, v in wanted.items()}}
        if order.status is not before:
            extra["status"] = [before.value, order.status.value]
        audit.record("shipment", shipment, facility_id=order.facility_id, extra=extra)
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
            lock_stock(select(Batch).where(Batch.id.in_(batch_ids)).order_by(Batch.id))
        )
    }
    for allocation in allocations:
        batches[allocation.batch_id].quantity_allocated -= allocation.quantity
        allocation.released = True


def _reason(reason: str) -> str:
    if not reason.strip():
        raise FulfilmentRefused([_("Please give a reason for cancelling.")])
    return reason.strip()


def cancel_order(order_id: int, reason: str, user: User) -> Order:
    reason = _reason(reason)
    with write_transaction():
        order = _locked_order(order_id)
        if order.status is OrderStatus.CANCELLED:
            return order  # cancelled twice (a double click, two tabs): the first one stands
        if not order_cancellable(order):
            raise FulfilmentRefused([_("Goods have left the facility: it is too late to cancel.")])
        before = audit.snapshot(order)
        _release(order.lines)
        for line in order.lines:
            line.cancelled = True
        order.subtotal = 0
        order.cancel_reason = reason
        _step(order, OrderStatus.CANCELLED, user, reason)
        audit.record("cancel", order, facility_id=order.facility_id, before=before)
    cancel_untaken_intents(order_id)
    return order


def cancel_line(order_id: int, line_id: int, reason: str, user: User) -> Order:
    reason = _reason(reason)
    with write_transaction():
        order = _locked_order(order_id)
        line = next((x for x in order.lines if x.id == line_id and not x.cancelled), None)
        if line is None:
            raise FulfilmentRefused([_("Line %(id)s is not part of this order.", id=line_id)])
        if not line_cancellable(order, line):
            raise FulfilmentRefused([_("Part of this line has been handed over already.")])
        before = audit.snapshot(line)
        _release([line])
        line.cancelled = True
        line.cancel_reason = reason
        order.subtotal = sum(x.line_total for x in order.lines)
        if all(x.cancelled for x in order.lines):
            order.cancel_reason = reason
            _step(order, OrderStatus.CANCELLED, user, reason)
        else:
            # The lines left may all have been handed over already.
            _finish_handover(
                order, order.shipments[-1].picked_up if order.shipments else False, user
            )
        audit.record("cancel_line", line, facility_id=order.facility_id, before=before)
    cancel_untaken_intents(order_id)  # less is due now: intents for the old amount go
    return order
