"""The ledger's invariants, checked against the database: `flask ledger check`."""

from __future__ import annotations

from sqlalchemy import and_, func, select

from catalog.models import Batch
from orders.models import LineAllocation
from payments.models import OrderPaid
from shop.extensions import db

from .models import AccountKind, Entry, LedgerAccount, Posting, PostingKind


def problems() -> list[str]:
    """Every breach found; an empty list means the ledger is sound."""
    found: list[str] = []
    unbalanced = db.session.execute(
        select(Posting.key, func.sum(Entry.amount))
        .join(Entry, Entry.posting_id == Posting.id)
        .group_by(Posting.id, Posting.key)
        .having(func.sum(Entry.amount) != 0)
    ).all()
    found += [
        f"posting {key} does not balance: entries add up to {total}" for key, total in unbalanced
    ]

    sums = (
        select(Entry.account_id, func.sum(Entry.amount).label("total"))
        .group_by(Entry.account_id)
        .subquery()
    )
    drifted = db.session.execute(
        select(LedgerAccount.id, LedgerAccount.kind, LedgerAccount.balance, sums.c.total)
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.balance != func.coalesce(sums.c.total, 0))
    ).all()
    found += [
        f"account {aid} ({kind}) keeps balance {balance} but its entries add up to {total or 0}"
        for aid, kind, balance, total in drifted
    ]

    untraced = db.session.scalar(
        select(func.count(Entry.id))
        .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
        .where(
            LedgerAccount.kind == AccountKind.PREMI,
            (Entry.wbp_id.is_(None)) | (Entry.wbp_id != LedgerAccount.wbp_id),
        )
    )
    if untraced:
        found.append(f"{untraced} premi entries do not name the WBP of their account")
    unsourced = db.session.scalar(
        select(func.count(Entry.id))
        .join(Posting, Posting.id == Entry.posting_id)
        .where(
            Posting.kind == PostingKind.PROCEEDS,
            Entry.memo == "premi",
            (Entry.order_line_id.is_(None)) | (Entry.batch_id.is_(None)),
        )
    )
    if unsourced:
        found.append(f"{unsourced} premi entries do not name their order line and batch")

    # NOT EXISTS, not NOT IN: with a million orders the NOT IN list outgrows work_mem.
    receipt = and_(Posting.kind == PostingKind.RECEIPT, Posting.order_id == OrderPaid.order_id)
    unpaid = db.session.scalar(
        select(func.count(Posting.id)).where(
            Posting.kind == PostingKind.RECEIPT,
            ~select(OrderPaid.order_id).where(OrderPaid.order_id == Posting.order_id).exists(),
        )
    )
    if unpaid:
        found.append(f"{unpaid} orders are credited but not paid")
    uncredited = db.session.scalar(
        select(func.count(OrderPaid.order_id)).where(~select(Posting.id).where(receipt).exists())
    )
    if uncredited:
        found.append(f"{uncredited} paid orders are not credited")

    allocated = (
        select(LineAllocation.batch_id, func.sum(LineAllocation.quantity).label("units"))
        .where(LineAllocation.released.is_(False))
        .group_by(LineAllocation.batch_id)
        .subquery()
    )
    oversold = db.session.execute(
        select(Batch.code, Batch.quantity_allocated, allocated.c.units)
        .outerjoin(allocated, allocated.c.batch_id == Batch.id)
        .where(
            and_(
                Batch.quantity_allocated != func.coalesce(allocated.c.units, 0),
            )
            | (Batch.quantity_allocated > Batch.quantity_made)
        )
    ).all()
    found += [
        f"batch {code} counts {count} allocated units but its allocations hold {units or 0}"
        for code, count, units in oversold
    ]
    return found
