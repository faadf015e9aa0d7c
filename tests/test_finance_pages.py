"""The finance back office and the public impact page, through HTTP as finance uses them.

Rutan Banjarnegara's six WBP made 1,600 besek (Rp 40.000 of bamboo); a salted-fish seller buys
them all at Rp 125 and pays by bank transfer. Of the Rp 160.000 net proceeds, premi is Rp 80.000,
shared by the pieces each maker wove: Rp 15.000 down to Rp 11.500. Finance sees what each is owed,
pays it in a run, deposits the PNBP and downloads the month's report; the public sees only sums.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select

from catalog.models import (
    Facility,
    Wbp,
)
from catalog.production import facility_today
from finance import checks, exports, reports
from finance.forms import parse_month
from finance.ledger import Line, account_id, post
from finance.models import (
    AccountKind,
    LedgerAccount,
    PayoutRun,
    PayoutStatus,
    PnbpDeposit,
    PostingKind,
)
from finance.payouts import plan_run, pnbp_payable
from payments.refunds import request_refund
from shop.accounts.models import Role, RoleGrant, User
from shop.audit import AuditEntry
from shop.extensions import db
from shop.formatting import rupiah

from .helpers import login, post_form, visible_text

OWED = [15_000, 14_500, 13_500, 13_000, 12_500, 11_500]


@pytest.fixture
def finance_magetan(facilities, users):
    """Finance of Rutan Magetan, with the fixtures' password."""
    user = User(email="finance.magetan@example.id", name="Finance Magetan")
    user.password_hash = users["staff_magetan"].password_hash
    user.grants = [RoleGrant(role=Role.FINANCE, facility_id=facilities["magetan"])]
    db.session.add(user)
    db.session.commit()
    return user


def finance(facilities, path: str = "/", name: str = "banjarnegara") -> str:
    return f"/office/{facilities[name]}/finance{path}"


def rows_of(html: str) -> list[str]:
    """The visible text of each table row."""
    return [visible_text(row).strip() for row in re.findall(r"<tr.*?</tr>", html, re.S)]


def row_with(html: str, text: str) -> str:
    [row] = [r for r in rows_of(html) if text in r]
    return row


def today_at(facility_id: int) -> date:
    """The facility's date, which is not the test machine's near midnight."""
    return facility_today(db.session.get(Facility, facility_id).timezone)


def this_month(facility_id: int) -> str:
    return today_at(facility_id).strftime("%Y-%m")


def premi_balance(facility_id: int, wbp_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(
        select(LedgerAccount.balance).where(
            LedgerAccount.id == account_id(AccountKind.PREMI, facility_id, wbp_id)
        )
    )


def pdf_text(content: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_balances_show_what_each_of_the_six_makers_is_owed(client, facilities, paid_besek):
    *_, makers, _order = paid_besek
    login(client, "finance.banjarnegara@example.id")

    html = client.get(finance(facilities, "/balances")).get_data(as_text=True)
    for maker, owed in zip(makers, OWED, strict=True):
        row = row_with(html, maker.registration_number)
        assert maker.name in row
        # earned, paid, clawed back, owed
        assert row.endswith(f"{rupiah(owed, 'id')} Rp 0 Rp 0 {rupiah(owed, 'id')}"), row

    overview = visible_text(client.get(finance(facilities)).get_data(as_text=True))
    assert "Rp 80.000" in overview  # premi owed
    assert "Rp 24.000" in overview  # PNBP payable: 15% of the net Rp 160.000


def test_a_payout_run_is_planned_approved_and_paid_through_the_pages(
    client, facilities, users, paid_besek
):
    *_, makers, order = paid_besek
    banjarnegara = facilities["banjarnegara"]
    client.set_cookie("lang", "en")
    login(client, "finance.banjarnegara@example.id")

    month = {"month": this_month(banjarnegara)}
    planned = post_form(client, finance(facilities, "/runs/new"), month)
    assert planned.status_code == 302
    run = db.session.scalar(select(PayoutRun).where(PayoutRun.facility_id == banjarnegara))
    assert run.status is PayoutStatus.DRAFT
    detail = finance(facilities, f"/runs/{run.id}")
    html = client.get(detail).get_data(as_text=True)
    assert "Approve the run" in html
    assert all(m.name in html for m in makers)

    refused = post_form(
        client, finance(facilities, f"/runs/{run.id}/paid"), {"method": "savings_account"},
        form_page=detail,
    )  # fmt: skip
    assert refused.status_code == 409  # not approved yet
    assert "Only an approved run can be marked paid." in refused.get_data(as_text=True)
    assert premi_balance(banjarnegara, makers[0].id) == 15_000

    approved = post_form(client, finance(facilities, f"/runs/{run.id}/approve"), form_page=detail)
    assert approved.status_code == 302
    again = post_form(client, finance(facilities, f"/runs/{run.id}/approve"), form_page=detail)
    assert again.status_code == 409
    assert "Only a draft run can be approved." in again.get_data(as_text=True)

    bad_method = post_form(
        client, finance(facilities, f"/runs/{run.id}/paid"), {"method": "cash"}, form_page=detail
    )
    assert bad_method.status_code == 422  # cash is not allowed inside
    paid = post_form(
        client, finance(facilities, f"/runs/{run.id}/paid"), {"method": "savings_account"},
        form_page=detail,
    )  # fmt: skip
    assert paid.status_code == 302
    db.session.refresh(run)
    assert run.status is PayoutStatus.PAID
    assert [premi_balance(banjarnegara, m.id) for m in makers] == [0] * 6
    assert {e.action for e in db.session.scalars(select(AuditEntry))} >= {"plan", "approve", "paid"}

    sheet = client.get(finance(facilities, f"/runs/{run.id}/payout-sheet.csv"))
    assert sheet.status_code == 200
    assert sheet.mimetype == "text/csv"
    heading, *lines, total = list(csv.reader(io.StringIO(sheet.get_data().decode("utf-8-sig"))))
    assert heading[-1] == "Paid now"
    assert [(line[0], int(line[-1])) for line in lines] == [
        (m.registration_number, owed) for m, owed in zip(makers, OWED, strict=True)
    ]
    assert total[0] == "Total"
    assert int(total[-1]) == 80_000

    pdf = client.get(finance(facilities, f"/runs/{run.id}/payout-sheet.pdf"))
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    text = pdf_text(pdf.get_data())
    assert "Premi Payout Sheet" in text
    assert all(m.registration_number in text for m in makers)
    assert rupiah(80_000, "en") in text
    assert "Finance officer" in text
    assert "Head of the facility" in text

    # 400 besek come back wet after the premi was paid: the next run shows clawbacks.
    request_refund(order.id, {order.lines[0].id: 400}, "400 basah", users["staff_banjarnegara"])
    post_form(client, finance(facilities, "/runs/new"), month)
    second = db.session.scalar(select(PayoutRun).where(PayoutRun.id != run.id))
    html = client.get(finance(facilities, f"/runs/{second.id}")).get_data(as_text=True)
    row = row_with(html, makers[0].registration_number)
    assert "Clawback of IDR 3,750: deducted from the next run" in row
    assert checks.problems() == []


def test_a_period_needs_a_month_or_both_days(client, facilities, paid_besek):
    client.set_cookie("lang", "en")
    login(client, "finance.banjarnegara@example.id")
    url = finance(facilities, "/runs/new")

    missing = post_form(client, url, {"month": "", "start": "2026-10-01", "end": ""})
    assert missing.status_code == 422
    assert "Choose a month, or enter the first and last day." in missing.get_data(as_text=True)
    garbled = post_form(client, url, {"month": "Oktober"})
    assert garbled.status_code == 422
    far = post_form(client, url, {"start": "2026-10-01", "end": "9999-12-31"})
    assert far.status_code == 422
    backwards = post_form(client, url, {"start": "2026-10-31", "end": "2026-10-01"})
    assert backwards.status_code == 409
    assert "The period must end on or after its start." in backwards.get_data(as_text=True)
    assert db.session.scalar(select(PayoutRun.id)) is None

    days = post_form(client, url, {"start": "2026-10-01", "end": "2026-10-31"})
    assert days.status_code == 302
    run = db.session.scalar(select(PayoutRun))
    assert (run.period_start, run.period_end) == (date(2026, 10, 1), date(2026, 10, 31))


def test_the_statement_shows_every_premi_entry_and_what_is_owed(client, facilities, paid_besek):
    _product, batch, makers, order = paid_besek
    client.set_cookie("lang", "en")
    login(client, "finance.banjarnegara@example.id")
    maker = makers[1]

    html = client.get(finance(facilities, f"/wbp/{maker.id}")).get_data(as_text=True)
    text = visible_text(html)
    assert maker.name in text and maker.registration_number in text
    assert f"Premi owed now: {rupiah(14_500, 'en')}" in text
    row = row_with(html, order.reference)
    assert batch.code in row
    assert row.endswith(f"{rupiah(14_500, 'en')} {rupiah(14_500, 'en')}")  # amount, balance

    pdf = client.get(finance(facilities, f"/wbp/{maker.id}/statement.pdf"))
    assert pdf.status_code == 200
    text = pdf_text(pdf.get_data())
    assert maker.name in text
    assert order.reference in text
    assert f"Premi owed now: {rupiah(14_500, 'en')}" in text


def test_a_pnbp_deposit_through_the_form_reduces_the_payable(client, facilities, paid_besek):
    banjarnegara = facilities["banjarnegara"]
    client.set_cookie("lang", "en")
    login(client, "finance.banjarnegara@example.id")
    url = finance(facilities, "/pnbp")
    assert f"PNBP payable: {rupiah(24_000, 'en')}" in visible_text(
        client.get(url).get_data(as_text=True)
    )
    deposit = {
        "amount": "20000",
        "billing_code": "820261001234567",
        "ntpn": "0A1B2C3D4E5F6G7H",
        "deposited_on": date.today().isoformat(),
    }

    typo = post_form(client, url, {**deposit, "amount": "20.000"})
    assert typo.status_code == 422
    too_much = post_form(client, url, {**deposit, "amount": "30000"})
    assert too_much.status_code == 409
    assert pnbp_payable(banjarnegara) == 24_000

    recorded = post_form(client, url, deposit)
    assert recorded.status_code == 302
    assert pnbp_payable(banjarnegara) == 4_000
    page = client.get(url).get_data(as_text=True)
    assert f"PNBP payable: {rupiah(4_000, 'en')}" in visible_text(page)
    assert "0A1B2C3D4E5F6G7H" in row_with(page, "820261001234567")

    replayed = post_form(client, url, {**deposit, "amount": "1000"})
    assert replayed.status_code == 409
    assert "A deposit with this NTPN is already recorded." in replayed.get_data(as_text=True)
    assert pnbp_payable(banjarnegara) == 4_000
    assert len(db.session.scalars(select(PnbpDeposit)).all()) == 1


def test_the_monthly_report_counts_the_months_premi(client, facilities, paid_besek):
    banjarnegara = facilities["banjarnegara"]
    month = this_month(banjarnegara)
    client.set_cookie("lang", "en")
    login(client, "finance.banjarnegara@example.id")

    page = client.get(finance(facilities, f"/report?month={month}"))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert len(re.findall(r'<rect class="chart-premi"', html)) == 1  # one month with sales
    assert "style=" not in html  # the policy forbids inline styles
    assert client.get(finance(facilities, "/report")).get_data(as_text=True).count(
        "chart-premi"
    ) == html.count("chart-premi")  # this month by default

    download = client.get(finance(facilities, f"/report.csv?month={month}"))
    assert download.mimetype == "text/csv"
    heading, row = list(csv.reader(io.StringIO(download.get_data().decode("utf-8-sig"))))
    figures = dict(zip(heading, row, strict=True))
    assert figures["Month"] == month
    assert int(figures["Premi"]) == 80_000
    assert int(figures["Sales"]) == 200_000
    assert int(figures["Material recovered"]) == 40_000
    assert int(figures["PNBP"]) == 24_000
    assert int(figures["Modal"]) == 56_000
    assert int(figures["Participating WBP"]) == 6

    workbook = load_workbook(
        io.BytesIO(client.get(finance(facilities, f"/report.xlsx?month={month}")).get_data())
    )
    sheet = workbook.worksheets[0]
    heading, row = [[cell.value for cell in r] for r in sheet.iter_rows()]
    assert dict(zip(heading, row, strict=True))["Premi"] == 80_000
    last_year = [[cell.value for cell in r] for r in workbook.worksheets[1].iter_rows()]
    assert len(last_year) == 1 + 12
    assert [r[heading.index("Premi")] for r in last_year[1:]] == [0] * 11 + [80_000]

    for bad in ("2026-13", "Oktober", "2026-1", "0001-01", "9999-12"):
        assert client.get(finance(facilities, f"/report?month={bad}")).status_code == 400
    assert client.get(finance(facilities, f"/report.csv?month={bad}")).status_code == 400


def test_ledger_entries_filter_by_batch_maker_order_and_days(client, facilities, paid_besek):
    *_, makers, order = paid_besek
    client.set_cookie("lang", "en")
    login(client, "finance.banjarnegara@example.id")
    url = finance(facilities, "/entries")

    def count(query: str) -> int:
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200, query
        return int(re.search(r"(\d+) entr", visible_text(response.get_data(as_text=True)))[1])

    assert count("batch=bsk-ledger&account=premi") == 6
    assert count(f"wbp={makers[2].registration_number}") == 1
    # Receipt (cash, clearing) and proceeds (clearing, material, PNBP, modal, six premi).
    assert count(f"order={order.reference}") == 2 + 4 + 6
    today = today_at(facilities["banjarnegara"])
    assert count(f"from={today.replace(year=today.year - 1)}&to={today}") == 12
    assert count(f"to={today.replace(year=today.year - 1)}") == 0
    for bad in (
        "from=16-10-2026",
        "to=2026-02-30",
        "from=0001-01-01",
        "to=9999-12-31",
        "account=wallet",
        f"wbp={'X' * 41}",
    ):
        assert client.get(f"{url}?{bad}").status_code == 400, bad
    backwards = f"from={today}&to={today.replace(year=today.year - 1)}"
    assert client.get(f"{url}?{backwards}").status_code == 400


def _every_finance_url(app, facility_id: int, wbp_id: int, run_id: int):
    """(method, url) of every finance back-office route, from the app's own URL map."""
    values = {"facility_id": facility_id, "wbp_id": wbp_id, "run_id": run_id}
    found = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith("finance_office."):
                continue
            url = url_for(rule.endpoint, **{k: values[k] for k in rule.arguments})
            found += [(method, url) for method in sorted(rule.methods & {"GET", "POST"})]
    return found


@pytest.mark.parametrize("who", ["finance.magetan@example.id", "staff.banjarnegara@example.id"])
def test_others_get_404_on_every_finance_route(
    app, client, facilities, users, finance_magetan, paid_besek, who
):
    *_, makers, _order = paid_besek
    today = today_at(facilities["banjarnegara"])  # the day paid_besek was paid
    run = plan_run(facilities["banjarnegara"], today, today, None)
    routes = _every_finance_url(app, facilities["banjarnegara"], makers[0].id, run.id)
    assert len(routes) >= 17  # every page, file and action
    login(client, who)
    for method, url in routes:
        if method == "GET":
            response = client.get(url)
        else:
            response = post_form(client, url, {"month": "2026-10"}, form_page="/account")
        assert response.status_code == 404, (method, url)
    assert db.session.get(PayoutRun, run.id).status is PayoutStatus.DRAFT
    page = client.get("/office/").get_data(as_text=True)
    assert "/finance" not in page


def test_regional_finance_sees_both_facilities_but_no_wbp_through_the_wrong_one(
    client, facilities, paid_besek
):
    *_, makers, _order = paid_besek
    login(client, "finance.regional@example.id")
    balances = client.get(finance(facilities, "/balances"))
    assert balances.status_code == 200
    assert makers[0].name in balances.get_data(as_text=True)
    magetan = client.get(finance(facilities, "/", name="magetan"))
    assert magetan.status_code == 200
    assert f'href="{finance(facilities, "/", name="magetan")}"' in magetan.get_data(as_text=True)
    # A Banjarnegara WBP or run asked for under Magetan's address is not found.
    today = today_at(facilities["banjarnegara"])  # the day paid_besek was paid
    run = plan_run(facilities["banjarnegara"], today, today, None)
    assert client.get(finance(facilities, f"/wbp/{makers[0].id}", "magetan")).status_code == 404
    assert client.get(finance(facilities, f"/runs/{run.id}", "magetan")).status_code == 404


def test_the_public_impact_page_shows_sums_and_never_a_name(client, facilities, paid_besek):
    client.set_cookie("lang", "en")
    html = client.get("/impact").get_data(as_text=True)
    [section] = [s for s in html.split('<section class="impact-facility">') if "Banjarnegara" in s]
    row = row_with(section, "Besek")
    assert row.endswith(f"{rupiah(80_000, 'en')} 6 1,600"), row  # premi, WBP, pieces sold
    for wbp in db.session.scalars(select(Wbp)):
        assert wbp.name not in html
        assert wbp.registration_number not in html
    assert 'href="/impact"' in client.get("/").get_data(as_text=True)  # linked from the footer


def test_balances_take_a_fixed_number_of_queries(client, facilities, paid_besek, count_queries):
    login(client, "finance.banjarnegara@example.id")
    url = finance(facilities, "/balances")
    client.get(url)
    with count_queries() as counter:
        assert client.get(url).status_code == 200
    assert counter.count <= 5, counter.statements  # user, roles, facility, count, rows


def test_months_are_the_facilitys_own_not_utcs(facilities, field_besek):
    """A sale paid at half past midnight on 1 October in Banjarnegara is October's, although it
    is still 30 September in UTC; one paid an hour earlier is September's."""
    *_, makers = field_besek
    banjarnegara = facilities["banjarnegara"]
    for key, at, premi in (
        ("uji:oktober", datetime(2026, 9, 30, 17, 30), 1_000),
        ("uji:september", datetime(2026, 9, 30, 16, 30), 500),
    ):
        post(
            key,
            PostingKind.PROCEEDS,
            banjarnegara,
            at,
            [
                Line(AccountKind.CLEARING, -premi, memo="clearing"),
                Line(AccountKind.PREMI, premi, wbp_id=makers[0].id, memo="premi"),
            ],
        )
    db.session.commit()

    figures = reports.monthly_figures(banjarnegara, "Asia/Jakarta", date(2026, 10, 20), 3)
    assert [(f.month, f.premi, f.participating_wbp) for f in figures] == [
        (date(2026, 8, 1), 0, 0),
        (date(2026, 9, 1), 500, 1),
        (date(2026, 10, 1), 1_000, 1),
    ]


def test_a_period_month_and_the_running_balance_are_plain_arithmetic():
    assert parse_month("2026-10") == date(2026, 10, 1)
    assert [parse_month(bad) for bad in ("2026-13", "2026-00", "26-10", "2026-10-01", "")] == [
        None
    ] * 5
    assert reports.month_starts(date(2026, 2, 17), 3) == [
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    sale, payout, refund = PostingKind.PROCEEDS, PostingKind.PAYOUT, PostingKind.REFUND
    lines = reports.statement_lines(
        [
            (date(2026, 10, 17), sale, "KB-1", "BSK-LEDGER", 15_000),
            (date(2026, 10, 31), payout, None, None, -15_000),
            (date(2026, 11, 2), refund, "KB-1", "BSK-LEDGER", -3_750),
        ]
    )
    assert [line.balance for line in lines] == [15_000, 0, -3_750]


def test_the_chart_scales_to_the_tallest_month_and_draws_no_negative_bar():
    october, november = exports.stacked_columns(
        [
            ("Okt", "Oktober", [("premi", 80_000), ("pnbp", 24_000), ("modal", 56_000)]),
            ("Nov", "November", [("premi", -20_000), ("pnbp", 0), ("modal", 0)]),
        ]
    )
    height = exports.CHART_BASELINE - exports.CHART_TOP
    assert [bar.part for bar in october.bars] == ["premi", "pnbp", "modal"]
    assert sum(bar.height for bar in october.bars) == pytest.approx(height, abs=0.2)
    assert october.bars[0].y + october.bars[0].height == exports.CHART_BASELINE
    assert november.bars == ()
