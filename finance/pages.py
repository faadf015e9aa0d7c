"""The finance back office of a facility, and the public impact page.

Finance of the facility, regional finance and admin only (`policy.FINANCE_ROLES`): anyone else,
and any id of another facility, gets a 404. WBP names and registration numbers appear on these
pages and their files only. Money moves through `finance.payouts`; a refusal re-renders its page
with the reasons and status 409 (422 for a form error), having changed nothing. The public page
shows counts and sums only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from itertools import groupby
from typing import Any, TypeVar

from babel.dates import format_date
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_login import current_user, login_required

from catalog.models import Facility, Wbp, WbpStatus
from catalog.office_forms import WBP_STATUS_LABELS
from catalog.production import facility_today
from shop import params, policy
from shop.formatting import rupiah
from shop.i18n import gettext as _
from shop.pagination import PageOutOfRange, paginate

from . import exports, reports
from .forms import (
    ACCOUNT_KIND_LABELS,
    PAYOUT_METHOD_LABELS,
    PAYOUT_STATUS_LABELS,
    POSTING_KIND_LABELS,
    PaidForm,
    PeriodForm,
    PnbpDepositForm,
    parse_month,
    plausible,
)
from .models import AccountKind, PayoutMethod, PayoutRun
from .payouts import (
    FinanceRefused,
    approve_run,
    mark_paid,
    plan_run,
    pnbp_payable,
    record_pnbp_deposit,
)

finance_office = Blueprint(
    "finance_office", __name__, url_prefix="/office/<int:facility_id>/finance"
)
impact = Blueprint("impact", __name__)

Rendered = tuple[str, int]
T = TypeVar("T")
INVALID = 422
REFUSED = 409
PER_PAGE = 50
MAX_FILTER = 40  # an order reference, a batch code or a registration number
REPORT_MONTHS = 12

LABELS = {
    "wbp_status_labels": WBP_STATUS_LABELS,
    "run_status_labels": PAYOUT_STATUS_LABELS,
    "method_labels": PAYOUT_METHOD_LABELS,
    "posting_labels": POSTING_KIND_LABELS,
    "account_labels": ACCOUNT_KIND_LABELS,
}


def _finance(facility_id: int) -> Facility:
    return policy.facility_or_404(facility_id, policy.FINANCE_ROLES)


def _render(template: str, status: int = 200, **context: Any) -> Rendered:
    return render_template(template, **LABELS, **context), status


def _page_or_404(load: Callable[[], T]) -> T:
    try:
        return load()
    except PageOutOfRange:
        abort(404)


def _locale() -> str:
    return str(get_locale() or "id")


def _day(name: str) -> date | None:
    """A date from the query string, 2026-10-16; anything else is a 400 that says so."""
    raw = params.text(request.args, name, max_length=10)
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    if day is None or not plausible(day):
        abort(
            400,
            description=_(
                "%(name)s must be a date as year-month-day, such as 2026-10-16.", name=name
            ),
        )
    return day


def _month(facility: Facility) -> date:
    """The report's month from `?month=2026-10`; this month at the facility without one."""
    raw = params.text(request.args, "month", max_length=7)
    if not raw:
        return facility_today(facility.timezone).replace(day=1)
    month = parse_month(raw)
    if month is None:
        abort(400, description=_("The month must be written year-month, such as 2026-10."))
    return month


def _file(content: bytes, mimetype: str, filename: str, *, inline: bool = False) -> Response:
    response = Response(content, mimetype=mimetype)
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"  # personal data: keep no copy
    if inline:
        # Chrome's PDF viewer needs <embed> and inline styles, which the site's policy forbids;
        # this is our own generated file, so it gets a policy of its own (as invoices do).
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; object-src 'self'; style-src 'unsafe-inline'; "
            "frame-ancestors 'none'"
        )
    return response


def _refused(messages: list[str]) -> None:
    for message in messages:
        flash(message, "error")


# --- The facility's position and its WBP's premi -----------------------------------------------


@finance_office.get("/")
@login_required
def overview(facility_id: int) -> Rendered:
    facility = _finance(facility_id)
    return _render(
        "finance/overview.html", facility=facility, figures=reports.overview(facility.id)
    )


@finance_office.get("/balances")
@login_required
def balances(facility_id: int) -> Rendered:
    facility = _finance(facility_id)
    status = params.choice(request.args, "status", WbpStatus)
    number = params.page_number(request.args)
    page = _page_or_404(lambda: reports.premi_balances(facility.id, status, number, PER_PAGE))
    return _render("finance/balances.html", facility=facility, page=page, status=status)


@finance_office.get("/entries")
@login_required
def entries(facility_id: int) -> Rendered:
    facility = _finance(facility_id)
    first, last = _day("from"), _day("to")
    if first and last and last < first:
        abort(400, description=_("The last day must not be before the first."))
    filters = reports.EntryFilters(
        order_reference=params.text(request.args, "order", MAX_FILTER),
        batch_code=params.text(request.args, "batch", MAX_FILTER),
        registration_number=params.text(request.args, "wbp", MAX_FILTER),
        account=params.choice(request.args, "account", AccountKind),
        start=reports.utc_start_of(first, facility.timezone) if first else None,
        end=reports.utc_end_of(last, facility.timezone) if last else None,
    )
    number = params.page_number(request.args)
    page = _page_or_404(
        lambda: reports.ledger_entries(facility.id, facility.timezone, filters, number, PER_PAGE)
    )
    return _render(
        "finance/entries.html",
        facility=facility,
        page=page,
        filters=filters,
        first=first,
        last=last,
    )


def _statement(facility_id: int, wbp_id: int) -> tuple[Facility, reports.Statement]:
    """Only a WBP of this facility: one of another facility is a 404."""
    facility = _finance(facility_id)
    wbp: Wbp = policy.owned_or_404(Wbp, wbp_id, facility.id)
    return facility, reports.statement(wbp, facility)


@finance_office.get("/wbp/<int:wbp_id>")
@login_required
def statement(facility_id: int, wbp_id: int) -> Rendered:
    facility, found = _statement(facility_id, wbp_id)
    return _render("finance/statement.html", facility=facility, statement=found, wbp_id=wbp_id)


@finance_office.get("/wbp/<int:wbp_id>/statement.pdf")
@login_required
def statement_pdf(facility_id: int, wbp_id: int) -> Response:
    _facility, found = _statement(facility_id, wbp_id)
    filename = "premi-" + "".join(c if c.isalnum() else "-" for c in found.registration_number)
    return _file(
        exports.render_statement(found, _locale()),
        "application/pdf",
        f"{filename}.pdf",
        inline=True,
    )


# --- Payout runs -------------------------------------------------------------------------------


@finance_office.get("/runs")
@login_required
def runs(facility_id: int) -> Rendered:
    facility = _finance(facility_id)
    number = params.page_number(request.args)
    page = _page_or_404(lambda: reports.payout_runs(facility.id, number, PER_PAGE))
    return _render("finance/runs.html", facility=facility, page=page)


@finance_office.route("/runs/new", methods=["GET", "POST"])
@login_required
def run_new(facility_id: int) -> Rendered | Response:
    facility = _finance(facility_id)
    if request.method == "GET":
        this_month = facility_today(facility.timezone).strftime("%Y-%m")
        form = PeriodForm(formdata=None, month=this_month)
        return _render("finance/run_new.html", facility=facility, form=form)
    form = PeriodForm()
    if not form.validate():
        return _render("finance/run_new.html", INVALID, facility=facility, form=form)
    start, end = form.period
    try:
        run = plan_run(facility.id, start, end, current_user)
    except FinanceRefused as refused:
        _refused(refused.messages)
        return _render("finance/run_new.html", REFUSED, facility=facility, form=form)
    flash(_("The payout run is planned: check it, then approve it."), "info")
    return redirect(url_for(".run_detail", facility_id=facility.id, run_id=run.id))


def _run(facility_id: int, run_id: int) -> tuple[Facility, PayoutRun]:
    facility = _finance(facility_id)
    return facility, policy.owned_or_404(PayoutRun, run_id, facility.id)


def _run_page(
    facility: Facility, run: PayoutRun, status: int = 200, paid: PaidForm | None = None
) -> Rendered:
    lines = reports.payout_sheet_lines(run.id)
    return _render(
        "finance/run_detail.html",
        status,
        facility=facility,
        run=run,
        lines=lines,
        total=sum(line.amount for line in lines),
        clawback=sum(line.clawback for line in lines),
        paid=paid or PaidForm(formdata=None),
    )


@finance_office.get("/runs/<int:run_id>")
@login_required
def run_detail(facility_id: int, run_id: int) -> Rendered:
    return _run_page(*_run(facility_id, run_id))


@finance_office.post("/runs/<int:run_id>/approve")
@login_required
def run_approve(facility_id: int, run_id: int) -> Rendered | Response:
    facility, run = _run(facility_id, run_id)
    try:
        approve_run(run.id, current_user)
    except FinanceRefused as refused:
        _refused(refused.messages)
        return _run_page(facility, run, REFUSED)
    flash(_("The payout run is approved: pay it, then mark it paid."), "info")
    return redirect(url_for(".run_detail", facility_id=facility.id, run_id=run.id))


@finance_office.post("/runs/<int:run_id>/paid")
@login_required
def run_paid(facility_id: int, run_id: int) -> Rendered | Response:
    facility, run = _run(facility_id, run_id)
    form = PaidForm()
    if not form.validate():
        return _run_page(facility, run, INVALID, form)
    try:
        mark_paid(run.id, PayoutMethod(form.method.data), current_user)
    except FinanceRefused as refused:
        _refused(refused.messages)
        return _run_page(facility, run, REFUSED, form)
    flash(_("The payout run is paid: the premi has left each WBP's balance."), "info")
    return redirect(url_for(".run_detail", facility_id=facility.id, run_id=run.id))


def _sheet_number(run: PayoutRun) -> str:
    return f"PREMI/{run.period_end:%Y-%m}/{run.id}"


@finance_office.get("/runs/<int:run_id>/payout-sheet.csv")
@login_required
def run_csv(facility_id: int, run_id: int) -> Response:
    facility, run = _run(facility_id, run_id)
    lines = reports.payout_sheet_lines(run.id)
    rows: list[list[str | int]] = [
        [_("Registration number"), _("Name"), _("Status"), _("Premi owed"), _("Paid now")]
    ]
    rows += [
        [
            line.registration_number,
            line.name,
            str(WBP_STATUS_LABELS[line.status]),
            line.balance,
            line.amount,
        ]
        for line in lines
    ]
    rows.append([_("Total"), "", "", sum(x.balance for x in lines), sum(x.amount for x in lines)])
    filename = _sheet_number(run).replace("/", "-").lower()
    return _file(exports.csv_bytes(rows), "text/csv", f"{filename}-{facility.slug}.csv")


@finance_office.get("/runs/<int:run_id>/payout-sheet.pdf")
@login_required
def run_pdf(facility_id: int, run_id: int) -> Response:
    facility, run = _run(facility_id, run_id)
    sheet = exports.PayoutSheet(
        number=_sheet_number(run),
        facility=facility.name,
        place=f"{facility.city}, {facility.province}",
        period_start=run.period_start,
        period_end=run.period_end,
        status=str(PAYOUT_STATUS_LABELS[run.status]),
        method=str(PAYOUT_METHOD_LABELS[run.method]) if run.method else None,
        lines=tuple(reports.payout_sheet_lines(run.id)),
    )
    filename = sheet.number.replace("/", "-").lower()
    return _file(
        exports.render_payout_sheet(sheet, _locale()),
        "application/pdf",
        f"{filename}.pdf",
        inline=True,
    )


# --- PNBP deposits -----------------------------------------------------------------------------


@finance_office.route("/pnbp", methods=["GET", "POST"])
@login_required
def pnbp(facility_id: int) -> Rendered | Response:
    facility = _finance(facility_id)
    status = 200
    if request.method == "GET":
        form = PnbpDepositForm(formdata=None, deposited_on=facility_today(facility.timezone))
    else:
        form = PnbpDepositForm()
        status = INVALID
        if form.validate():
            try:
                deposit = record_pnbp_deposit(
                    facility.id,
                    form.amount.data,
                    form.billing_code.data,
                    form.ntpn.data,
                    form.deposited_on.data,
                    current_user,
                )
            except FinanceRefused as refused:
                _refused(refused.messages)
                status = REFUSED
            else:
                flash(
                    _(
                        "The PNBP deposit of %(amount)s (NTPN %(ntpn)s) is recorded.",
                        amount=rupiah(deposit.amount),
                        ntpn=deposit.ntpn,
                    ),
                    "info",
                )
                return redirect(url_for(".pnbp", facility_id=facility.id))
    number = params.page_number(request.args)
    deposits = paginate(reports.pnbp_deposits(facility.id), number, PER_PAGE)
    return _render(
        "finance/pnbp.html",
        status,
        facility=facility,
        form=form,
        payable=pnbp_payable(facility.id),
        deposits=deposits,
    )


# --- The monthly report ------------------------------------------------------------------------


def _report_columns() -> list[tuple[str, str]]:
    """(heading, figure): the report's columns, in the order of the page, CSV and workbook."""
    return [
        (_("Sales"), "sales"),
        (_("Refunded"), "refunded"),
        (_("Delivery fees"), "delivery_fees"),
        (_("Material recovered"), "material_recovered"),
        (_("Net proceeds"), "net_proceeds"),
        (_("Premi"), "premi"),
        (_("PNBP"), "pnbp"),
        (_("Modal"), "modal"),
        (_("Participating WBP"), "participating_wbp"),
        (_("PNBP deposited"), "pnbp_deposited"),
    ]


def _report_table(months: list[reports.MonthFigures]) -> list[list[str | int]]:
    columns = _report_columns()
    rows: list[list[str | int]] = [[_("Month"), *(heading for heading, _f in columns)]]
    rows += [[f"{m.month:%Y-%m}", *(getattr(m, figure) for _h, figure in columns)] for m in months]
    return rows


def _report_figures(facility_id: int) -> tuple[Facility, date, list[reports.MonthFigures]]:
    facility = _finance(facility_id)
    month = _month(facility)
    figures = reports.monthly_figures(facility.id, facility.timezone, month, REPORT_MONTHS)
    return facility, month, figures


@finance_office.get("/report")
@login_required
def report(facility_id: int) -> Rendered:
    facility, month, months = _report_figures(facility_id)
    locale = _locale()
    chart = exports.stacked_columns(
        [
            (
                format_date(m.month, "MMM", locale=locale),
                _(
                    "%(month)s: net proceeds %(amount)s",
                    month=format_date(m.month, "MMMM yyyy", locale=locale),
                    amount=rupiah(m.net_proceeds),
                ),
                [("premi", m.premi), ("pnbp", m.pnbp), ("modal", m.modal)],
            )
            for m in months
        ]
    )
    return _render(
        "finance/report.html",
        facility=facility,
        month=month,
        figures=months[-1],
        months=months,
        chart=chart,
        chart_size=(exports.CHART_WIDTH, exports.CHART_HEIGHT, exports.CHART_BASELINE),
        previous=reports.add_months(month, -1),
        following=reports.add_months(month, 1),
    )


@finance_office.get("/report.csv")
@login_required
def report_csv(facility_id: int) -> Response:
    facility, month, months = _report_figures(facility_id)
    heading, *rows = _report_table(months)
    return _file(
        exports.csv_bytes([heading, rows[-1]]),
        "text/csv",
        f"finance-{facility.slug}-{month:%Y-%m}.csv",
    )


@finance_office.get("/report.xlsx")
@login_required
def report_xlsx(facility_id: int) -> Response:
    facility, month, months = _report_figures(facility_id)
    heading, *rows = _report_table(months)
    workbook = exports.xlsx_bytes(
        [
            (f"{month:%Y-%m}", [heading, rows[-1]]),
            (_("Last 12 months"), [heading, *rows]),
        ]
    )
    return _file(
        workbook,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        f"finance-{facility.slug}-{month:%Y-%m}.xlsx",
    )


# --- Public impact -----------------------------------------------------------------------------


@impact.get("/impact")
def index() -> str:
    programmes = reports.public_impact()
    facilities = [
        (name, slug, list(rows))
        for (name, slug), rows in groupby(programmes, key=lambda p: (p.facility, p.facility_slug))
    ]
    return render_template(
        "finance/impact.html",
        facilities=facilities,
        premi=sum(p.premi for p in programmes),
        pieces=sum(p.pieces_sold for p in programmes),
    )
