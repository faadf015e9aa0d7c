"""Crediting a paid order's proceeds to the batches that supplied it and the WBP who made them,
and reversing them, in proportion, when money is refunded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from catalog.models import Batch, BatchParticipation
from orders.models import LineAllocation, Order, OrderLine
from shop.extensions import db

from .ledger import Line, post, rule_of, rule_on
from .models import AccountKind, Entry, Posting, PostingKind, SplitRuleRecord
from .shares import largest_remainder
from .split import Maker, Shares, SplitRule, split_sale


def _makers(batch_id: int) -> list[Maker]:
    rows = db.session.execute(
        select(BatchParticipation.wbp_id, BatchParticipation.contribution)
        .where(BatchParticipation.batch_id == batch_id)
        .order_by(BatchParticipation.id)
    )
    return [Maker(wbp_id, contribution) for wbp_id, contribution in rows]


def _share_lines(shares: Shares, sign: int, line: OrderLine, allocation: LineAllocation,
                 units: int) -> list[Line]:  # fmt: skip
    trace = {
        "order_line_id": line.id,
        "allocation_id": allocation.id,
        "batch_id": allocation.batch_id,
    }
    lines = [
        Line(AccountKind.CLEARING, -sign * shares.gross, units=units, memo="clearing", **trace),
        Line(AccountKind.MODAL, sign * shares.material_recovered, memo="material", **trace),
        Line(AccountKind.PNBP, sign * shares.pnbp, memo="pnbp", **trace),
        Line(AccountKind.MODAL, sign * shares.modal, memo="modal", **trace),
    ]
    lines += [
        Line(AccountKind.PREMI, sign * amount, wbp_id=wbp_id, memo="premi", **trace)
        for wbp_id, amount in shares.premi_by_wbp.items()
    ]
    return lines


def _shares(allocation: LineAllocation, line: OrderLine, units: int, rule: SplitRule) -> Shares:
    batch: Batch = allocation.batch
    return split_sale(
        units, line.unit_price, batch.quantity_made, batch.material_cost, rule,
        _makers(batch.id),
    )  # fmt: skip


def credit_allocation(order: Order, line: OrderLine, allocation: LineAllocation,
                      at: datetime) -> None:  # fmt: skip
    """The proceeds of one allocation, split by the rule in force on the payment date."""
    rule_id, rule = rule_on(order.facility_id, at.date())
    shares = _shares(allocation, line, allocation.quantity, rule)
    post(
        f"proceeds:{allocation.id}",
        PostingKind.PROCEEDS,
        order.facility_id,
        at,
        _share_lines(shares, +1, line, allocation, allocation.quantity),
        order_id=order.id,
        rule_id=rule_id,
    )


def credit_order(order_id: int, paid_at: datetime) -> None:
    """Money received, then divided: each allocated unit's proceeds go to its batch's makers.

    Units still to be made stay in clearing until a batch supplies them (`credit_allocation`).
    """
    order = db.session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.lines).selectinload(OrderLine.allocations))
    )
    post(
        f"receipt:{order.id}",
        PostingKind.RECEIPT,
        order.facility_id,
        paid_at,
        [Line(AccountKind.CASH, -order.total), Line(AccountKind.CLEARING, order.total)],
        order_id=order.id,
    )
    fee = order.delivery_fee or 0
    if fee:
        post(
            f"delivery:{order.id}",
            PostingKind.PROCEEDS,
            order.facility_id,
            paid_at,
            [Line(AccountKind.CLEARING, -fee), Line(AccountKind.MODAL, fee, memo="delivery")],
            order_id=order.id,
        )
    for line in order.lines:
        for allocation in line.allocations:
            if not allocation.released:
                credit_allocation(order, line, allocation, paid_at)


def credit_allocations_if_paid(order_id: int, allocation_ids: list[int], at: datetime) -> None:
    if not db.session.scalar(select(Posting.id).where(Posting.key == f"receipt:{order_id}")):
        return  # not paid yet: the payment will credit every allocation then
    order = db.session.get(Order, order_id)
    for allocation_id in allocation_ids:
        allocation = db.session.get(LineAllocation, allocation_id)
        credit_allocation(order, allocation.line, allocation, at)


def _refunded_units(allocation_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Entry.units), 0))
            .join(Posting)
            .where(
                Entry.allocation_id == allocation_id,
                Entry.memo == "clearing",
                Posting.kind == PostingKind.REFUND,
            )
        )
        or 0
    )


def _sale_rule(allocation_id: int) -> SplitRule:
    record_id = db.session.scalar(
        select(Posting.rule_id).where(Posting.key == f"proceeds:{allocation_id}")
    )
    return rule_of(db.session.get(SplitRuleRecord, record_id) if record_id else None)


def reverse_refund(refund_id: int, order_id: int, at: datetime) -> None:
    """Reverses, for each refunded unit, exactly what its sale credited.

    Refunded units of a line are spread over its credited allocations in proportion to their
    units. Each allocation's reversal is the difference between the split of all its units
    refunded so far and the split before this refund, so that refunding everything, in any
    number of steps, returns every balance exactly to where it was.
    """
    from payments.models import Refund

    refund = db.session.get(Refund, refund_id)
    order = db.session.get(Order, order_id)
    post(
        f"refund-receipt:{refund_id}",
        PostingKind.REFUND,
        order.facility_id,
        at,
        [Line(AccountKind.CLEARING, -refund.amount), Line(AccountKind.CASH, refund.amount)],
        order_id=order.id,
    )
    lines: list[Line] = []
    for refund_line in refund.lines:
        line = refund_line.line
        credited = [
            a for a in line.allocations
            if db.session.scalar(select(Posting.id).where(Posting.key == f"proceeds:{a.id}"))
        ]  # fmt: skip
        if not credited:
            continue  # nothing was divided yet: the money simply leaves clearing
        # Each allocation's refunded units so far are a largest-remainder share of the line's;
        # the new target is the share of the line's total after this refund, so that however
        # the refunds come, each allocation ends exactly at its own units.
        refunded = {a.id: _refunded_units(a.id) for a in credited}
        capacity = sum(a.quantity for a in credited)
        target = largest_remainder(
            min(capacity, sum(refunded.values()) + refund_line.quantity),
            [(a.id, a.quantity) for a in credited],
        )
        for allocation in credited:
            before, after = refunded[allocation.id], target[allocation.id]
            if after == before:
                continue
            rule = _sale_rule(allocation.id)
            now = _shares(allocation, line, after, rule)
            then = _shares(allocation, line, before, rule)
            delta = Shares(
                now.gross - then.gross,
                now.material_recovered - then.material_recovered,
                now.premi - then.premi,
                now.pnbp - then.pnbp,
                now.modal - then.modal,
                {w: now.premi_by_wbp[w] - then.premi_by_wbp.get(w, 0) for w in now.premi_by_wbp},
            )
            lines += _share_lines(delta, -1, line, allocation, after - before)
    if lines:
        post(f"refund:{refund_id}", PostingKind.REFUND, order.facility_id, at, lines,
             order_id=order.id)  # fmt: skip
