"""Read side of the money package: what the finance pages, their exports and the public impact
page show.

Every function runs a fixed number of queries and adds up in SQL, never row by row in Python.
Amounts are rupiah as the ledger keeps them (credits positive: a premi balance is what is owed to
the WBP). Postings are stored in UTC; days and months are the facility's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, distinct, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from catalog.models import Batch, Facility, Product, Programme, Wbp, WbpStatus
from orders.models import Order
from shop.extensions import db
from shop.pagination import Page, check_in_range

from .models import (
    AccountKind,
    Entry,
    LedgerAccount,
    PayoutLine,
    PayoutRun,
    PnbpDeposit,
    Posting,
    PostingKind,
)

# Postings that credit proceeds or take them back: what a sale earned, net of refunds.
SALE_POSTINGS = (PostingKind.PROCEEDS, PostingKind.REFUND)


# --- Days and months at the facility -----------------------------------------------------------


def utc_start_of(day: date, timezone: str) -> datetime:
    """The moment the facility's day begins, as the naive UTC the ledger stores."""
    local = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)


def utc_end_of(day: date, timezone: str) -> datetime:
    """The moment the facility's day `day` is over: an exclusive bound."""
    return utc_start_of(day + timedelta(days=1), timezone)


def local_day(moment: datetime, timezone: str) -> date:
    """The facility's date of a stored (naive UTC) moment: Ruteng is an hour ahead of Java."""
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).date()


def add_months(month: date, count: int) -> date:
    """The first day of the month `count` months after (or before) `month`'s."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_starts(last: date, months: int) -> list[date]:
    """First days of the `months` months ending with `last`'s, then the first day after them."""
    first = add_months(last.replace(day=1), 1 - months)
    return [add_months(first, n) for n in range(months + 1)]


def _bucket(column: Any, bounds: Sequence[Any]) -> ColumnElement[int]:
    """Which of the intervals [bounds[i], bounds[i + 1]) the value falls in, as i."""
    if len(bounds) <= 2:
        return literal(0)  # one interval: a CASE with no WHEN is not SQL
    return case(
        *((column < bound, index) for index, bound in enumerate(bounds[1:-1])),
        else_=len(bounds) - 2,
    )


def _page(stmt: Select[Any], page: int, size: int) -> tuple[list[Any], int]:
    """One page of rows of `stmt` and the count of all; a page past the end raises."""
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    check_in_range(page, size, total or 0)
    rows = db.session.execute(stmt.limit(size).offset((page - 1) * size)).all()
    return rows, total or 0


# --- The facility's position -------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    pnbp_payable: int
    modal: int
    clearing: int  # received from buyers and not yet divided (units still to be made)
    premi_owed: int  # positive premi balances: what payout runs will pay
    premi_clawback: int  # negative premi balances (≤ 0): deducted from premi earned later
    wbp_owed: int  # WBP with a positive premi balance


def overview(facility_id: int) -> Overview:
    positive = func.sum(case((LedgerAccount.balance > 0, LedgerAccount.balance), else_=0))
    negative = func.sum(case((LedgerAccount.balance < 0, LedgerAccount.balance), else_=0))
    owing = func.count(case((LedgerAccount.balance > 0, LedgerAccount.id)))
    rows = db.session.execute(
        select(LedgerAccount.kind, func.sum(LedgerAccount.balance), positive, negative, owing)
        .where(LedgerAccount.facility_id == facility_id)
        .group_by(LedgerAccount.kind)
    ).all()
    by_kind = {
        kind: (int(total or 0), int(pos or 0), int(neg or 0), n)
        for kind, total, pos, neg, n in rows
    }
    none = (0, 0, 0, 0)
    premi = by_kind.get(AccountKind.PREMI, none)
    return Overview(
        pnbp_payable=by_kind.get(AccountKind.PNBP, none)[0],
        modal=by_kind.get(AccountKind.MODAL, none)[0],
        clearing=by_kind.get(AccountKind.CLEARING, none)[0],
        premi_owed=premi[1],
        premi_clawback=premi[2],
        wbp_owed=premi[3],
    )


# --- Premi per WBP -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PremiBalance:
    wbp_id: int
    registration_number: str
    name: str
    status: WbpStatus
    earned: int  # premi credited by sales
    paid: int  # paid out in runs
    clawed_back: int  # taken back by refunds
    owed: int  # the balance: earned - paid - clawed back

    @property
    def clawback(self) -> bool:
        return self.owed < 0


def _sum_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, Entry.amount), else_=0)), 0)


def premi_balances(
    facility_id: int, status: WbpStatus | None, page: int, size: int
) -> Page[PremiBalance]:
    """Every WBP with a premi account at the facility, by name: two queries."""
    sums = (
        select(
            Entry.account_id.label("account_id"),
            _sum_where(Posting.kind == PostingKind.PROCEEDS).label("earned"),
            (-_sum_where(Posting.kind == PostingKind.PAYOUT)).label("paid"),
            (-_sum_where(Posting.kind == PostingKind.REFUND)).label("clawed_back"),
        )
        .join(Posting, Posting.id == Entry.posting_id)
        .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
        .where(LedgerAccount.facility_id == facility_id, LedgerAccount.kind == AccountKind.PREMI)
        .group_by(Entry.account_id)
        .subquery()
    )
    stmt = (
        select(
            Wbp.id,
            Wbp.registration_number,
            Wbp.name,
            Wbp.status,
            func.coalesce(sums.c.earned, 0),
            func.coalesce(sums.c.paid, 0),
            func.coalesce(sums.c.clawed_back, 0),
            LedgerAccount.balance,
        )
        .select_from(LedgerAccount)
        .join(Wbp, Wbp.id == LedgerAccount.wbp_id)
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.facility_id == facility_id, LedgerAccount.kind == AccountKind.PREMI)
        .order_by(Wbp.name, Wbp.id)
    )
    if status is not None:
        stmt = stmt.where(Wbp.status == status)
    rows, total = _page(stmt, page, size)
    items = [
        PremiBalance(w, number, name, WbpStatus(st), int(earned), int(paid), int(back), int(owed))
        for w, number, name, st, earned, paid, back, owed in rows
    ]
    return Page(items, page, size, total)


# --- Ledger entries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryFilters:
    order_reference: str = ""
    batch_code: str = ""
    registration_number: str = ""
    account: AccountKind | None = None
    start: datetime | None = None  # naive UTC, inclusive
    end: datetime | None = None  # naive UTC, exclusive


@dataclass(frozen=True)
class EntryRow:
    entry_id: int
    occurred_on: date
    posting_kind: PostingKind
    account: AccountKind
    amount: int
    units: int
    memo: str
    order_id: int | None
    order_reference: str | None
    batch_code: str | None
    wbp_id: int | None
    registration_number: str | None
    name: str | None


def ledger_entries(
    facility_id: int, timezone: str, filters: EntryFilters, page: int, size: int
) -> Page[EntryRow]:
    """The facility's entries, newest first, with what each traces to: two queries."""
    stmt = (
        select(
            Entry.id,
            Posting.occurred_at,
            Posting.kind,
            LedgerAccount.kind,
            Entry.amount,
            Entry.units,
            func.coalesce(func.nullif(Entry.memo, ""), Posting.memo),
            Order.id,
            Order.reference,
            Batch.code,
            Wbp.id,
            Wbp.registration_number,
            Wbp.name,
        )
        .select_from(Entry)
        .join(Posting, Posting.id == Entry.posting_id)
        .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
        .outerjoin(Order, Order.id == Posting.order_id)
        .outerjoin(Batch, Batch.id == Entry.batch_id)
        .outerjoin(Wbp, Wbp.id == Entry.wbp_id)
        .where(Posting.facility_id == facility_id)
        .order_by(Posting.occurred_at.desc(), Entry.id.desc())
    )
    if filters.order_reference:
        stmt = stmt.where(func.upper(Order.reference) == filters.order_reference.upper())
    if filters.batch_code:
        stmt = stmt.where(func.upper(Batch.code) == filters.batch_code.upper())
    if filters.registration_number:
        stmt = stmt.where(
            func.upper(Wbp.registration_number) == filters.registration_number.upper()
        )
    if filters.account is not None:
        stmt = stmt.where(LedgerAccount.kind == filters.account)
    if filters.start is not None:
        stmt = stmt.where(Posting.occurred_at >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(Posting.occurred_at < filters.end)
    rows, total = _page(stmt, page, size)
    items = [
        EntryRow(
            entry_id=entry_id,
            occurred_on=local_day(at, timezone),
            posting_kind=PostingKind(posting_kind),
            account=AccountKind(account),
            amount=int(amount),
            units=units,
            memo=memo or "",
            order_id=order_id,
            order_reference=reference,
            batch_code=batch_code,
            wbp_id=wbp_id,
            registration_number=number,
            name=name,
        )
        for entry_id, at, posting_kind, account, amount, units, memo, order_id, reference,
        batch_code, wbp_id, number, name in rows
    ]  # fmt: skip
    return Page(items, page, size, total)


# --- One WBP's statement -----------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    occurred_on: date
    kind: PostingKind
    order_reference: str | None
    batch_code: str | None
    amount: int
    balance: int  # after this entry


@dataclass(frozen=True)
class Statement:
    """Every premi entry of one WBP at one facility, oldest first, with the running balance."""

    facility: str
    registration_number: str
    name: str
    status: WbpStatus
    printed_on: date
    lines: tuple[StatementLine, ...]

    def _total(self, kind: PostingKind) -> int:
        return sum(line.amount for line in self.lines if line.kind is kind)

    @property
    def earned(self) -> int:
        return self._total(PostingKind.PROCEEDS)

    @property
    def paid(self) -> int:
        return -self._total(PostingKind.PAYOUT)

    @property
    def clawed_back(self) -> int:
        return -self._total(PostingKind.REFUND)

    @property
    def owed(self) -> int:
        return self.lines[-1].balance if self.lines else 0


def statement_lines(
    rows: Sequence[tuple[date, PostingKind, str | None, str | None, int]],
) -> tuple[StatementLine, ...]:
    """The rows (day, kind, order, batch, amount), oldest first, each with the balance after it."""
    balances = accumulate(amount for *_rest, amount in rows)
    return tuple(
        StatementLine(day, kind, reference, batch, amount, balance)
        for (day, kind, reference, batch, amount), balance in zip(rows, balances, strict=True)
    )


def statement(wbp: Wbp, facility: Facility) -> Statement:
    """One query: the WBP's premi entries at the facility."""
    rows = db.session.execute(
        select(Posting.occurred_at, Posting.kind, Order.reference, Batch.code, Entry.amount)
        .select_from(Entry)
        .join(Posting, Posting.id == Entry.posting_id)
        .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
        .outerjoin(Order, Order.id == Posting.order_id)
        .outerjoin(Batch, Batch.id == Entry.batch_id)
        .where(
            LedgerAccount.facility_id == facility.id,
            LedgerAccount.kind == AccountKind.PREMI,
            LedgerAccount.wbp_id == wbp.id,
        )
        .order_by(Posting.occurred_at, Posting.id, Entry.id)
    ).all()
    return Statement(
        facility=facility.name,
        registration_number=wbp.registration_number,
        name=wbp.name,
        status=wbp.status,
        printed_on=local_day(datetime.now(UTC).replace(tzinfo=None), facility.timezone),
        lines=statement_lines(
            [
                (local_day(at, facility.timezone), PostingKind(kind), ref, code, int(amount))
                for at, kind, ref, code, amount in rows
            ]
        ),
    )


# --- Payout runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    run: PayoutRun
    paid_wbp: int  # lines that pay something
    total: int
    clawback: int  # negative balances carried to later runs (≤ 0)


def payout_runs(facility_id: int, page: int, size: int) -> Page[RunSummary]:
    """The facility's runs, newest first, with their totals: two queries."""
    stmt = (
        select(
            PayoutRun,
            func.count(case((PayoutLine.amount > 0, PayoutLine.id))),
            func.coalesce(func.sum(PayoutLine.amount), 0),
            func.coalesce(func.sum(case((PayoutLine.balance < 0, PayoutLine.balance), else_=0)), 0),
        )
        .outerjoin(PayoutLine, PayoutLine.run_id == PayoutRun.id)
        .where(PayoutRun.facility_id == facility_id)
        .group_by(PayoutRun.id)
        .order_by(PayoutRun.id.desc())
    )
    rows, total = _page(stmt, page, size)
    items = [RunSummary(run, paid, int(amount), int(back)) for run, paid, amount, back in rows]
    return Page(items, page, size, total)


@dataclass(frozen=True)
class PayoutSheetLine:
    wbp_id: int
    registration_number: str
    name: str
    status: WbpStatus
    balance: int  # premi owed at the period's end
    amount: int  # what the run pays

    @property
    def clawback(self) -> int:
        """A negative balance: nothing is paid, and later premi repays it first."""
        return min(0, self.balance)


def payout_sheet_lines(run_id: int) -> list[PayoutSheetLine]:
    """The run's lines with who each WBP is, by registration number: one query."""
    rows = db.session.execute(
        select(
            Wbp.id,
            Wbp.registration_number,
            Wbp.name,
            Wbp.status,
            PayoutLine.balance,
            PayoutLine.amount,
        )
        .join(Wbp, Wbp.id == PayoutLine.wbp_id)
        .where(PayoutLine.run_id == run_id)
        .order_by(Wbp.registration_number, Wbp.id)
    ).all()
    return [
        PayoutSheetLine(w, number, name, WbpStatus(st), int(balance), int(amount))
        for w, number, name, st, balance, amount in rows
    ]


# --- PNBP --------------------------------------------------------------------------------------


def pnbp_deposits(facility_id: int) -> Select[Any]:
    """The facility's deposits, newest first, for `shop.pagination.paginate`."""
    return (
        select(PnbpDeposit)
        .where(PnbpDeposit.facility_id == facility_id)
        .order_by(PnbpDeposit.deposited_on.desc(), PnbpDeposit.id.desc())
    )


# --- The monthly report ------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthFigures:
    month: date  # its first day
    sales: int  # received for orders paid in the month, delivery fees included
    refunded: int  # paid back to buyers in the month
    delivery_fees: int
    material_recovered: int
    premi: int  # net of the month's refunds, as are PNBP and modal
    pnbp: int
    modal: int
    participating_wbp: int  # distinct WBP credited premi in the month
    pnbp_deposited: int

    @property
    def net_proceeds(self) -> int:
        """What the split rule divided: premi, PNBP and modal."""
        return self.premi + self.pnbp + self.modal


# (posting kind, account kind, entry memo) -> the figure it adds to.
_FIGURES = {
    (PostingKind.RECEIPT, AccountKind.CLEARING, ""): "sales",
    (PostingKind.REFUND, AccountKind.CASH, ""): "refunded",
    (PostingKind.PROCEEDS, AccountKind.MODAL, "delivery"): "delivery_fees",
    **{
        (kind, account, memo): figure
        for kind in SALE_POSTINGS
        for account, memo, figure in (
            (AccountKind.MODAL, "material", "material_recovered"),
            (AccountKind.PREMI, "premi", "premi"),
            (AccountKind.PNBP, "pnbp", "pnbp"),
            (AccountKind.MODAL, "modal", "modal"),
        )
    },
}
_FIGURE_NAMES = (
    "sales",
    "refunded",
    "delivery_fees",
    "material_recovered",
    "premi",
    "pnbp",
    "modal",
)


def monthly_figures(
    facility_id: int, timezone: str, last: date, months: int = 12
) -> list[MonthFigures]:
    """The figures of the `months` months ending with `last`'s, oldest first: three queries."""
    starts = month_starts(last, months)
    bounds = [utc_start_of(day, timezone) for day in starts]
    in_range = and_(Posting.occurred_at >= bounds[0], Posting.occurred_at < bounds[-1])
    # Bucketed in a subquery and grouped outside it: PostgreSQL binds the bounds as parameters,
    # and a CASE repeated in GROUP BY with other parameters would not be the same expression.
    entries = (
        select(
            _bucket(Posting.occurred_at, bounds).label("bucket"),
            Posting.kind.label("posting_kind"),
            LedgerAccount.kind.label("account_kind"),
            Entry.memo.label("memo"),
            Entry.amount.label("amount"),
        )
        .join(Posting, Posting.id == Entry.posting_id)
        .join(LedgerAccount, LedgerAccount.id == Entry.account_id)
        .where(Posting.facility_id == facility_id, in_range)
        .subquery()
    )
    sums = db.session.execute(
        select(
            entries.c.bucket,
            entries.c.posting_kind,
            entries.c.account_kind,
            entries.c.memo,
            func.sum(entries.c.amount),
        ).group_by(entries.c.bucket, entries.c.posting_kind, entries.c.account_kind, entries.c.memo)
    ).all()
    credited = (
        select(_bucket(Posting.occurred_at, bounds).label("bucket"), Entry.wbp_id.label("wbp_id"))
        .join(Posting, Posting.id == Entry.posting_id)
        .where(
            Posting.facility_id == facility_id,
            Posting.kind == PostingKind.PROCEEDS,
            Entry.memo == "premi",
            in_range,
        )
        .subquery()
    )
    makers = dict(
        db.session.execute(
            select(credited.c.bucket, func.count(distinct(credited.c.wbp_id))).group_by(
                credited.c.bucket
            )
        ).all()
    )
    deposits = (
        select(
            _bucket(PnbpDeposit.deposited_on, starts).label("bucket"),
            PnbpDeposit.amount.label("amount"),
        )
        .where(
            PnbpDeposit.facility_id == facility_id,
            PnbpDeposit.deposited_on >= starts[0],
            PnbpDeposit.deposited_on < starts[-1],
        )
        .subquery()
    )
    deposited = dict(
        db.session.execute(
            select(deposits.c.bucket, func.sum(deposits.c.amount)).group_by(deposits.c.bucket)
        ).all()
    )
    totals = [dict.fromkeys(_FIGURE_NAMES, 0) for _month in range(months)]
    for bucket, posting_kind, account_kind, memo, amount in sums:
        key = (PostingKind(posting_kind), AccountKind(account_kind), memo or "")
        if figure := _FIGURES.get(key):
            totals[bucket][figure] += int(amount)
    return [
        MonthFigures(
            month=starts[index],
            participating_wbp=int(makers.get(index, 0)),
            pnbp_deposited=int(deposited.get(index, 0)),
            **figures,
        )
        for index, figures in enumerate(totals)
    ]


# --- Public impact -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgrammeImpact:
    """Counts and sums only: never a name or a registration number."""

    facility: str
    facility_slug: str
    programme: str
    premi: int  # credited to the makers, net of refunds
    makers: int  # WBP who earned premi
    pieces_sold: int  # net of refunded pieces


def public_impact() -> list[ProgrammeImpact]:
    """Per facility and programme, from the sales credited: one query."""
    is_premi = Entry.memo == "premi"
    sold = and_(Entry.memo == "clearing", Posting.kind == PostingKind.PROCEEDS)
    returned = and_(Entry.memo == "clearing", Posting.kind == PostingKind.REFUND)
    rows = db.session.execute(
        select(
            Facility.name,
            Facility.slug,
            Programme.name,
            func.coalesce(func.sum(case((is_premi, Entry.amount), else_=0)), 0),
            func.count(
                distinct(case((and_(is_premi, Posting.kind == PostingKind.PROCEEDS), Entry.wbp_id)))
            ),
            func.coalesce(func.sum(case((sold, Entry.units), else_=0)), 0)
            - func.coalesce(func.sum(case((returned, Entry.units), else_=0)), 0),
        )
        .select_from(Entry)
        .join(Posting, Posting.id == Entry.posting_id)
        .join(Batch, Batch.id == Entry.batch_id)
        .join(Product, Product.id == Batch.product_id)
        .join(Programme, Programme.id == Product.programme_id)
        .join(Facility, Facility.id == Programme.facility_id)
        .where(Posting.kind.in_(SALE_POSTINGS), Entry.memo.in_(("premi", "clearing")))
        .group_by(Facility.id, Facility.name, Facility.slug, Programme.id, Programme.name)
        .order_by(Facility.name, Facility.slug, Programme.name)
    ).all()
    return [
        ProgrammeImpact(facility, slug, programme, int(premi), int(makers), int(pieces))
        for facility, slug, programme, premi, makers, pieces in rows
    ]
