"""Money tables. `ProceedsEvent` is the boundary with payments: payments append an event when
an order is paid or a refund is confirmed, once per key; the ledger is posted from the events."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.extensions import db, str_enum

from .split import SplitBase


class ProceedsEventKind(StrEnum):
    PAYMENT_RECEIVED = "payment_received"
    REFUND = "refund"


class ProceedsEvent(db.Model):
    __tablename__ = "proceeds_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[ProceedsEventKind] = mapped_column(str_enum(ProceedsEventKind))
    order_id: Mapped[int] = mapped_column(ForeignKey("customer_order.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refund.id"))
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SplitRuleRecord(db.Model):
    """A facility's split rule from a date on. A change is a new row: credits made under the
    old rule stay as they were."""

    __tablename__ = "split_rule"
    __table_args__ = (
        UniqueConstraint("facility_id", "effective_from"),
        CheckConstraint("premi_bp + pnbp_bp + modal_bp = 10000", name="shares_add_up"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    effective_from: Mapped[date]
    premi_bp: Mapped[int]
    pnbp_bp: Mapped[int]
    modal_bp: Mapped[int]
    base: Mapped[SplitBase] = mapped_column(str_enum(SplitBase))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AccountKind(StrEnum):
    CASH = "cash"  # money the facility holds for the programme
    CLEARING = "clearing"  # received from buyers, not yet divided
    PREMI = "premi"  # owed to one WBP
    PNBP = "pnbp"  # owed to the state by one facility
    MODAL = "modal"  # production capital of one facility


class LedgerAccount(db.Model):
    """`balance` is the running total of its entries (credits positive), kept for speed and
    checked against the entries by `flask ledger check`."""

    __tablename__ = "ledger_account"
    __table_args__ = (
        UniqueConstraint("kind", "facility_id", "wbp_id"),
        # The constraint above lets two facility accounts of one kind in (NULLs are distinct):
        # this index does not.
        Index(
            "uq_ledger_account_facility_own",
            "kind",
            "facility_id",
            unique=True,
            postgresql_where=text("wbp_id IS NULL"),
            sqlite_where=text("wbp_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AccountKind] = mapped_column(str_enum(AccountKind))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    wbp_id: Mapped[int | None] = mapped_column(ForeignKey("wbp.id"), index=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)


class PostingKind(StrEnum):
    RECEIPT = "receipt"
    PROCEEDS = "proceeds"
    REFUND = "refund"
    PAYOUT = "payout"
    PNBP_DEPOSIT = "pnbp_deposit"


class Posting(db.Model):
    """One event in the ledger: its entries add up to zero. Never edited, never deleted."""

    __tablename__ = "ledger_posting"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[PostingKind] = mapped_column(str_enum(PostingKind))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("customer_order.id"), index=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("split_rule.id"))
    memo: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    entries: Mapped[list[Entry]] = relationship(back_populates="posting", order_by="Entry.id")


class Entry(db.Model):
    """A credit (positive) or debit (negative) to one account, traced to its order line, batch
    and WBP where it has them."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        # Covering: a payout run sums a facility's premi entries from the index alone.
        Index(
            "ix_ledger_entry_account_posting",
            "account_id",
            "posting_id",
            postgresql_include=["amount"],
        ),
        Index("ix_ledger_entry_batch", "batch_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("ledger_posting.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_account.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_line.id"), index=True)
    allocation_id: Mapped[int | None] = mapped_column(ForeignKey("line_allocation.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("production_batch.id"))
    wbp_id: Mapped[int | None] = mapped_column(ForeignKey("wbp.id"), index=True)
    units: Mapped[int] = mapped_column(default=0)  # units sold (or refunded) this entry covers
    memo: Mapped[str] = mapped_column(String(40), default="")

    posting: Mapped[Posting] = relationship(back_populates="entries")
    account: Mapped[LedgerAccount] = relationship()


class PayoutStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    PAID = "paid"


class PayoutMethod(StrEnum):
    SAVINGS_ACCOUNT = "savings_account"
    PREPAID_CARD = "prepaid_card"
    ON_RELEASE = "on_release"  # handed over on the day of release


class PayoutRun(db.Model):
    """Premi paid to a facility's WBP for a period."""

    __tablename__ = "payout_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    period_start: Mapped[date]
    period_end: Mapped[date]
    status: Mapped[PayoutStatus] = mapped_column(str_enum(PayoutStatus))
    method: Mapped[PayoutMethod | None] = mapped_column(str_enum(PayoutMethod))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    paid_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    lines: Mapped[list[PayoutLine]] = relationship(
        back_populates="run", order_by="PayoutLine.wbp_id", cascade="all, delete-orphan"
    )


class PayoutLine(db.Model):
    __tablename__ = "payout_line"
    __table_args__ = (UniqueConstraint("run_id", "wbp_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("payout_run.id", ondelete="CASCADE"))
    wbp_id: Mapped[int] = mapped_column(ForeignKey("wbp.id"))
    balance: Mapped[int] = mapped_column(BigInteger)  # premi owed at the period's end
    amount: Mapped[int] = mapped_column(BigInteger)  # what this run pays: never above balance

    run: Mapped[PayoutRun] = relationship(back_populates="lines")


class PnbpDeposit(db.Model):
    __tablename__ = "pnbp_deposit"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facility.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    billing_code: Mapped[str] = mapped_column(String(40))
    ntpn: Mapped[str] = mapped_column(String(40), unique=True)
    deposited_on: Mapped[date]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
