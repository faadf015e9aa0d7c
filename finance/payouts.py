"""Payout runs of premi and PNBP deposits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from orders.checkout import CheckoutRefused
from shop import audit
from shop.accounts.models import User
from shop.database import write_transaction
from shop.extensions import db
from shop.formatting import rupiah
from shop.i18n import gettext as _

from .ledger import Line, account_id, post
from .models import (
    AccountKind,
    Entry,
    LedgerAccount,
    PayoutLine,
    PayoutMethod,
    PayoutRun,
    PayoutStatus,
    PnbpDeposit,
    Posting,
    PostingKind,
)


class FinanceRefused(CheckoutRefused):
    """Nothing was written; `messages` say why."""


@dataclass(frozen=True)
class PayoutAmount:
    wbp_id: int
    balance: int
    amount: int

    @property
    def clawback(self) -> int:
        """A negative balance (premi paid, then the sale refunded): deducted from later runs."""
        return min(0, self.balance)


def payout_amounts(balances: dict[int, int]) -> list[PayoutAmount]:
    """What a run pays each WBP: the whole positive balance, never more, nothing if negative."""
    return [PayoutAmount(w, b, max(0, b)) for w, b in sorted(balances.items()) if b != 0]


def premi_balances(facility_id: int, until: date) -> dict[int, int]:
    """Premi owed to each WBP of the facility for everything that happened before `until` ends."""
    end = datetime.combine(until + timedelta(days=1), datetime.min.time())
    rows = db.session.execute(
        select(LedgerAccount.wbp_id, func.sum(Entry.amount))
        .join(Entry, Entry.account_id == LedgerAccount.id)
        .join(Posting, Posting.id == Entry.posting_id)
        .where(
            LedgerAccount.facility_id == facility_id,
            LedgerAccount.kind == AccountKind.PREMI,
            Posting.occurred_at < end,
        )
        .group_by(LedgerAccount.wbp_id)
    )
    return {wbp_id: int(total) for wbp_id, total in rows}


def plan_run(facility_id: int, start: date, end: date, user: User | None) -> PayoutRun:
    if end < start:
        raise FinanceRefused([_("The period must end on or after its start.")])
    with write_transaction():
        run = PayoutRun(
            facility_id=facility_id,
            period_start=start,
            period_end=end,
            status=PayoutStatus.DRAFT,
            created_by_id=user.id if user else None,
        )
        run.lines = [
            PayoutLine(wbp_id=a.wbp_id, balance=a.balance, amount=a.amount)
            for a in payout_amounts(premi_balances(facility_id, end))
        ]
        db.session.add(run)
        db.session.flush()
        audit.record("plan", run, facility_id=facility_id)
    return run


def approve_run(run_id: int, user: User | None) -> PayoutRun:
    with write_transaction():
        run = db.session.get(PayoutRun, run_id, with_for_update=True)
        if run is None or run.status is not PayoutStatus.DRAFT:
            raise FinanceRefused([_("Only a draft run can be approved.")])
        before = audit.snapshot(run)
        run.status = PayoutStatus.APPROVED
        run.approved_by_id = user.id if user else None
        audit.record("approve", run, facility_id=run.facility_id, before=before)
    return run


def mark_paid(run_id: int, method: PayoutMethod, user: User | None) -> PayoutRun:
    """Pays the run: premi leaves each WBP's balance. Refused if a balance fell meanwhile."""
    with write_transaction():
        run = db.session.get(PayoutRun, run_id, with_for_update=True)
        if run is None or run.status is not PayoutStatus.APPROVED:
            raise FinanceRefused([_("Only an approved run can be marked paid.")])
        accounts = {
            line.wbp_id: db.session.get(
                LedgerAccount,
                account_id(AccountKind.PREMI, run.facility_id, line.wbp_id),
                with_for_update=True,
            )
            for line in run.lines
        }
        short = [line for line in run.lines if line.amount > accounts[line.wbp_id].balance]
        if short:
            raise FinanceRefused(
                [_("A balance fell since the run was planned (a refund): plan the run again.")]
            )
        at = datetime.now(UTC).replace(tzinfo=None)
        total = sum(line.amount for line in run.lines)
        entries = [
            Line(AccountKind.PREMI, -line.amount, wbp_id=line.wbp_id, memo="payout")
            for line in run.lines
            if line.amount
        ]
        post(
            f"payout:{run.id}",
            PostingKind.PAYOUT,
            run.facility_id,
            at,
            [*entries, Line(AccountKind.CASH, total, memo="payout")],
            memo=f"{method.value} {run.period_start}..{run.period_end}",
        )
        before = audit.snapshot(run)
        run.status, run.method, run.paid_at = PayoutStatus.PAID, method, at
        audit.record("paid", run, facility_id=run.facility_id, before=before)
    return run


def pnbp_payable(facility_id: int) -> int:
    found = db.session.scalar(
        select(LedgerAccount.balance).where(
            LedgerAccount.kind == AccountKind.PNBP,
            LedgerAccount.facility_id == facility_id,
            LedgerAccount.wbp_id.is_(None),
        )
    )
    return int(found or 0)


def record_pnbp_deposit(
    facility_id: int, amount: int, billing_code: str, ntpn: str, on: date, user: User | None
) -> PnbpDeposit:
    if not billing_code.strip() or not ntpn.strip():
        raise FinanceRefused([_("A deposit needs its billing code and its NTPN.")])
    with write_transaction():
        account_id(AccountKind.PNBP, facility_id)
        payable = db.session.scalar(
            select(LedgerAccount)
            .where(
                LedgerAccount.kind == AccountKind.PNBP,
                LedgerAccount.facility_id == facility_id,
                LedgerAccount.wbp_id.is_(None),
            )
            .with_for_update()
        )
        if not 0 < amount <= payable.balance:
            raise FinanceRefused(
                [_("The deposit must be above 0 and at most %(due)s.", due=rupiah(payable.balance))]
            )
        if db.session.scalar(select(PnbpDeposit.id).where(PnbpDeposit.ntpn == ntpn.strip())):
            raise FinanceRefused([_("A deposit with this NTPN is already recorded.")])
        deposit = PnbpDeposit(
            facility_id=facility_id,
            amount=amount,
            billing_code=billing_code.strip(),
            ntpn=ntpn.strip(),
            deposited_on=on,
            created_by_id=user.id if user else None,
        )
        db.session.add(deposit)
        db.session.flush()
        post(
            f"pnbp:{deposit.id}",
            PostingKind.PNBP_DEPOSIT,
            facility_id,
            datetime.combine(on, datetime.min.time()),
            [Line(AccountKind.PNBP, -amount), Line(AccountKind.CASH, amount)],
            memo=f"NTPN {deposit.ntpn}",
        )
        audit.record("deposit", deposit, facility_id=facility_id)
    return deposit
