"""Proceeds credited to batches and makers, payouts, PNBP deposits and the ledger's checks."""

from datetime import date

import pytest
from sqlalchemy import select, text

from finance import checks
from finance.ledger import account_id
from finance.models import (
    AccountKind,
    Entry,
    LedgerAccount,
    PayoutMethod,
    SplitRuleRecord,
)
from finance.payouts import (
    FinanceRefused,
    approve_run,
    mark_paid,
    plan_run,
    pnbp_payable,
    record_pnbp_deposit,
)
from finance.split import SplitBase
from orders.checkout import place_orders
from orders.models import PaymentMethod
from payments import services
from payments.refunds import request_refund
from shop.extensions import db

from .orders_fixtures import checkout


def pay(order, staff, amount=None, reference="BRI-1"):
    services.confirm_receipt(
        order.id,
        PaymentMethod.BANK_TRANSFER,
        amount or order.total,
        date.today(),
        reference,
        staff,
    )


def balance(kind, facility_id, wbp_id=None):
    db.session.rollback()
    return db.session.scalar(
        select(LedgerAccount.balance).where(
            LedgerAccount.id == account_id(kind, facility_id, wbp_id)
        )
    )


def premi_of(makers):
    return [balance(AccountKind.PREMI, makers[0].facility_id, w.id) for w in makers]


def test_the_besek_sale_from_the_field_is_credited_exactly(users, field_besek):
    product, batch, makers = field_besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    assert balance(AccountKind.MODAL, product.facility_id) == 0  # placing credits nothing
    pay(order, users["finance_banjarnegara"])
    facility = product.facility_id
    assert premi_of(makers) == [15_000, 14_500, 13_500, 13_000, 12_500, 11_500]
    assert sum(premi_of(makers)) == 80_000
    assert balance(AccountKind.PNBP, facility) == 24_000
    assert balance(AccountKind.MODAL, facility) == 56_000 + 40_000
    assert balance(AccountKind.CLEARING, facility) == 0
    # Every premi entry names the order line, the batch and the WBP.
    rows = db.session.execute(
        select(Entry.order_line_id, Entry.batch_id, Entry.wbp_id).where(Entry.memo == "premi")
    ).all()
    assert {(line, b) for line, b, _w in rows} == {(order.lines[0].id, batch.id)}
    assert {w for *_x, w in rows} == {m.id for m in makers}
    assert checks.problems() == []


def test_paying_twice_or_replaying_credits_nothing_more(users, field_besek):
    product, _batch, makers = field_besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    pay(order, users["finance_banjarnegara"])
    pay(order, users["finance_banjarnegara"])  # the same bank reference again
    from finance import events

    events.payment_received(order.id, services.now())  # a replayed event
    assert sum(premi_of(makers)) == 80_000


def test_a_full_refund_returns_every_balance(users, field_besek):
    product, _batch, makers = field_besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    staff = users["staff_banjarnegara"]
    pay(order, staff)
    line = order.lines[0].id
    request_refund(order.id, {line: 400}, "400 rusak", staff)
    assert sum(premi_of(makers)) == 60_000  # a quarter reversed, in proportion
    request_refund(order.id, {line: 333}, "333 basah", staff)
    request_refund(order.id, {line: 867}, "sisanya", staff)
    facility = product.facility_id
    assert premi_of(makers) == [0] * 6
    for kind in (AccountKind.PNBP, AccountKind.MODAL, AccountKind.CLEARING):
        assert balance(kind, facility) == 0
    assert checks.problems() == []


def test_changing_the_rule_today_leaves_yesterdays_credits(users, field_besek):
    product, _batch, makers = field_besek
    [first] = place_orders(users["buyer"], checkout({product.id: 800}))
    pay(first, users["finance_banjarnegara"])
    before = premi_of(makers)
    db.session.add(
        SplitRuleRecord(
            facility_id=product.facility_id,
            effective_from=date.today(),
            premi_bp=3000,
            pnbp_bp=3500,
            modal_bp=3500,
            base=SplitBase.GROSS,
        )
    )
    db.session.commit()
    assert premi_of(makers) == before
    [second] = place_orders(users["buyer"], checkout({product.id: 800}))
    pay(second, users["finance_banjarnegara"], reference="BRI-2")
    # 30% of the gross Rp 100.000 for the second sale; 50% of the net Rp 80.000 for the first.
    assert sum(premi_of(makers)) == 40_000 + 30_000
    assert checks.problems() == []


def test_a_payout_run_pays_balances_and_a_refund_after_it_is_a_visible_clawback(users, field_besek):
    product, _batch, makers = field_besek
    staff = users["finance_banjarnegara"]
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    pay(order, staff)
    today = date.today()
    run = plan_run(product.facility_id, today.replace(day=1), today, staff)
    assert {line.wbp_id: line.amount for line in run.lines} == dict(
        zip([m.id for m in makers], [15_000, 14_500, 13_500, 13_000, 12_500, 11_500], strict=True)
    )
    with pytest.raises(FinanceRefused):
        mark_paid(run.id, PayoutMethod.SAVINGS_ACCOUNT, staff)  # not approved yet
    approve_run(run.id, staff)
    mark_paid(run.id, PayoutMethod.SAVINGS_ACCOUNT, staff)
    assert premi_of(makers) == [0] * 6

    request_refund(order.id, {order.lines[0].id: 400}, "400 rusak", staff)
    clawed = premi_of(makers)
    assert clawed == [-3_750, -3_625, -3_375, -3_250, -3_125, -2_875]
    next_run = plan_run(product.facility_id, today.replace(day=1), today, staff)
    assert all(line.amount == 0 and line.balance < 0 for line in next_run.lines)
    assert checks.problems() == []


def test_a_run_never_pays_more_than_the_balance_when_it_fell_meanwhile(users, field_besek):
    product, _batch, makers = field_besek
    staff = users["finance_banjarnegara"]
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    pay(order, staff)
    run = plan_run(product.facility_id, date.today(), date.today(), staff)
    approve_run(run.id, staff)
    request_refund(order.id, {order.lines[0].id: 1600}, "semua kembali", staff)
    with pytest.raises(FinanceRefused):
        mark_paid(run.id, PayoutMethod.PREPAID_CARD, staff)
    assert premi_of(makers) == [0] * 6


def test_released_wbp_keeps_their_owed_premi(users, field_besek):
    product, _batch, makers = field_besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    pay(order, users["finance_banjarnegara"])
    makers[0].status = "released"
    db.session.commit()
    assert premi_of(makers)[0] == 15_000


def test_pnbp_deposits_reduce_what_is_payable(users, field_besek):
    product, *_ = field_besek
    staff = users["finance_banjarnegara"]
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    pay(order, staff)
    record_pnbp_deposit(
        product.facility_id, 20_000, "820261001234567", "NTPN0001", date.today(), staff
    )
    assert pnbp_payable(product.facility_id) == 4_000
    with pytest.raises(FinanceRefused):
        record_pnbp_deposit(product.facility_id, 5_000, "8202", "NTPN0002", date.today(), staff)
    with pytest.raises(FinanceRefused):
        record_pnbp_deposit(product.facility_id, 1_000, "8202", "NTPN0001", date.today(), staff)
    assert checks.problems() == []


def test_ledger_check_passes_on_demo_and_fails_on_a_corrupted_database(app_ctx, users, field_besek):
    product, *_ = field_besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    pay(order, users["finance_banjarnegara"])
    runner = app_ctx.test_cli_runner()
    ok = runner.invoke(args=["ledger", "check"])
    assert ok.exit_code == 0, ok.output
    assert "Ledger OK" in ok.output

    # Someone edits an entry by hand: the posting no longer balances, nor does the account.
    db.session.execute(
        text(
            "UPDATE ledger_entry SET amount = amount + 1"
            " WHERE id = (SELECT MIN(id) FROM ledger_entry WHERE memo = 'premi')"
        )
    )
    db.session.commit()
    broken = runner.invoke(args=["ledger", "check"])
    assert broken.exit_code == 1
    assert "does not balance" in broken.output
    assert "keeps balance" in broken.output


def test_payouts_run_command_prints_the_draft(app_ctx, users, field_besek):
    product, *_ = field_besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    pay(order, users["finance_banjarnegara"])
    month = date.today().strftime("%Y-%m")
    result = app_ctx.test_cli_runner().invoke(
        args=["payouts", "run", "--facility", "rutan-banjarnegara", "--period", month]
    )
    assert result.exit_code == 0, result.output
    assert "LEDGER-0\towed 15000\tpay 15000" in result.output
    bad = app_ctx.test_cli_runner().invoke(
        args=["payouts", "run", "--facility", "rutan-banjarnegara", "--period", "2026-13"]
    )
    assert bad.exit_code != 0


def test_a_facility_has_one_account_of_each_kind(facilities):
    from sqlalchemy.exc import IntegrityError

    first = account_id(AccountKind.CASH, facilities["banjarnegara"])
    assert account_id(AccountKind.CASH, facilities["banjarnegara"]) == first
    db.session.commit()
    # What two checkouts opening the accounts at once would do without the partial unique index.
    db.session.add(LedgerAccount(kind=AccountKind.CASH, facility_id=facilities["banjarnegara"]))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
