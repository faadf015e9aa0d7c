"""The append-only double-entry ledger: postings whose entries add up to zero.

Amounts are rupiah; a positive amount credits an account, a negative one debits it, so what is
owed to a WBP (premi), to the state (PNBP) or kept as capital (modal) reads as a positive balance.
A posting's key makes it happen once: posting the same event again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update

from shop.database import insert
from shop.extensions import db

from .models import AccountKind, Entry, LedgerAccount, Posting, PostingKind, SplitRuleRecord
from .split import DEFAULT_RULE, SplitRule


@dataclass(frozen=True)
class Line:
    """One entry of a posting before it is written."""

    kind: AccountKind
    amount: int
    wbp_id: int | None = None
    order_line_id: int | None = None
    allocation_id: int | None = None
    batch_id: int | None = None
    units: int = 0
    memo: str = ""


class Unbalanced(ValueError):
    """A posting whose entries do not add up to zero: a programming error, never written."""


def account_id(kind: AccountKind, facility_id: int, wbp_id: int | None = None) -> int:
    """The account's id, created on first use (concurrent creators both get the one row).

    A second creator's insert waits for the first to commit and then does nothing: the unique
    constraint covers WBP accounts, and a partial unique index the facility's own (NULL wbp_id).
    """
    where = (
        LedgerAccount.kind == kind,
        LedgerAccount.facility_id == facility_id,
        LedgerAccount.wbp_id.is_(None) if wbp_id is None else LedgerAccount.wbp_id == wbp_id,
    )
    found = db.session.scalar(select(LedgerAccount.id).where(*where))
    if found is not None:
        return found
    db.session.execute(
        insert(LedgerAccount)
        .values(kind=kind, facility_id=facility_id, wbp_id=wbp_id, balance=0)
        .on_conflict_do_nothing()
    )
    return db.session.scalar(select(LedgerAccount.id).where(*where))


def post(
    key: str,
    kind: PostingKind,
    facility_id: int,
    occurred_at: datetime,
    lines: Sequence[Line],
    *,
    order_id: int | None = None,
    rule_id: int | None = None,
    memo: str = "",
) -> Posting | None:
    """Writes the posting in the caller's transaction, or nothing if its key was posted before."""
    if sum(line.amount for line in lines) != 0:
        raise Unbalanced(f"posting {key} does not balance: {lines}")
    if db.session.scalar(select(Posting.id).where(Posting.key == key)) is not None:
        return None
    posting = Posting(
        key=key,
        kind=kind,
        facility_id=facility_id,
        occurred_at=occurred_at,
        order_id=order_id,
        rule_id=rule_id,
        memo=memo,
    )
    db.session.add(posting)
    db.session.flush()
    totals: dict[int, int] = {}
    entries = []
    for line in lines:
        if line.amount == 0:
            continue
        account = account_id(line.kind, facility_id, line.wbp_id)
        totals[account] = totals.get(account, 0) + line.amount
        entries.append(
            {
                "posting_id": posting.id,
                "account_id": account,
                "amount": line.amount,
                "wbp_id": line.wbp_id,
                "order_line_id": line.order_line_id,
                "allocation_id": line.allocation_id,
                "batch_id": line.batch_id,
                "units": line.units,
                "memo": line.memo,
            }
        )
    if entries:
        db.session.execute(Entry.__table__.insert(), entries)
    # Accounts in id order, each updated in place: concurrent postings never lose an update
    # and never wait on each other in a cycle.
    for account in sorted(totals):
        db.session.execute(
            update(LedgerAccount)
            .where(LedgerAccount.id == account)
            .values(balance=LedgerAccount.balance + totals[account])
        )
    return posting


def rule_on(facility_id: int, day: date) -> tuple[int | None, SplitRule]:
    """The facility's split rule in force on `day`; the 1990 default where none is recorded."""
    record = db.session.scalar(
        select(SplitRuleRecord)
        .where(SplitRuleRecord.facility_id == facility_id, SplitRuleRecord.effective_from <= day)
        .order_by(SplitRuleRecord.effective_from.desc())
        .limit(1)
    )
    if record is None:
        return None, DEFAULT_RULE
    return record.id, rule_of(record)


def rule_of(record: SplitRuleRecord | None) -> SplitRule:
    if record is None:
        return DEFAULT_RULE
    return SplitRule(record.premi_bp, record.pnbp_bp, record.modal_bp, record.base)
