"""Files finance takes away, built from plain data: CSV and XLSX tables, the payout sheet and a
WBP's premi statement as PDF, and the bars of the monthly report's chart.

The PDFs are drawn on the same pages as the order documents (`shop.pdf`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from babel.dates import format_date

from shop import pdf as pages
from shop.formatting import rupiah
from shop.i18n import gettext as _

from .forms import POSTING_KIND_LABELS
from .reports import PayoutSheetLine, Statement

Cell = str | int
Rows = Sequence[Sequence[Cell]]

# Bilingual on purpose, as the order documents are: the reader knows the sheet at a glance.
PAYOUT_SHEET_TITLE = "Daftar Pembayaran Premi / Premi Payout Sheet"
STATEMENT_TITLE = "Rekening Premi / Premi Statement"

# --- Tables ------------------------------------------------------------------------------------

# A spreadsheet runs a cell that starts with one of these as a formula: a WBP name or a memo
# typed as "=HYPERLINK(...)" must stay text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _as_text(value: Cell) -> Cell:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_bytes(rows: Rows) -> bytes:
    """UTF-8 with a byte-order mark, so that a spreadsheet opens names with their accents."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_as_text(value) for value in row])
    return out.getvalue().encode("utf-8-sig")


def xlsx_bytes(sheets: Sequence[tuple[str, Rows]]) -> bytes:
    """One worksheet per (title, rows); the first row of each is its heading. Whole rupiah and
    counts are numbers, shown with thousands separators."""
    # Imported here, not at start-up: only an export needs it.
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title=title[:31])
        widths: dict[int, int] = {}
        for row in rows:
            sheet.append([_as_text(value) for value in row])
            for column, value in enumerate(row, start=1):
                widths[column] = max(widths.get(column, 8), len(str(value)) + 2)
        for cell in sheet[1] if rows else ():
            cell.font = Font(bold=True)
        for column in sheet.iter_cols(min_row=2):
            for cell in column:
                if isinstance(cell.value, int):
                    cell.number_format = "#,##0"
        for column, width in widths.items():
            sheet.column_dimensions[sheet.cell(row=1, column=column).column_letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- PDF ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayoutSheet:
    number: str  # PREMI/2026-10/7: the period's month and the run
    facility: str
    place: str  # city and province
    period_start: date
    period_end: date
    status: str  # in the reader's language
    method: str | None
    lines: tuple[PayoutSheetLine, ...]

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


def render_payout_sheet(sheet: PayoutSheet, locale: str = "id") -> bytes:
    """The run as a PDF to sign: each WBP signs (or puts a thumbprint) beside what they received,
    and the finance officer and the head of the facility sign under the total."""
    pdf = pages.document(PAYOUT_SHEET_TITLE, sheet.number)
    facts = [
        (_("Facility"), f"{sheet.facility}, {sheet.place}"),
        (
            _("Period"),
            f"{format_date(sheet.period_start, 'long', locale=locale)} – "
            f"{format_date(sheet.period_end, 'long', locale=locale)}",
        ),
        (_("Status"), sheet.status),
    ]
    if sheet.method:
        facts.append((_("Paid by"), sheet.method))
    pages.heading(pdf, PAYOUT_SHEET_TITLE, facts)

    pdf.set_font("Helvetica", size=9)
    with pdf.table(
        col_widths=(10, 30, 48, 28, 28, 36),
        text_align=("RIGHT", "LEFT", "LEFT", "RIGHT", "RIGHT", "LEFT"),
        headings_style=pages.bold(shaded=True),
        line_height=5,
        padding=1.5,
    ) as table:
        heading = table.row()
        for label in (
            _("No."),
            _("Registration number"),
            _("Name"),
            _("Premi owed"),
            _("Paid now"),
            _("Signature or thumbprint"),
        ):
            heading.cell(label)
        for position, line in enumerate(sheet.lines, start=1):
            row = table.row()
            row.cell(str(position))
            row.cell(line.registration_number)
            row.cell(line.name)
            row.cell(rupiah(line.balance, locale))
            row.cell(rupiah(line.amount, locale))
            if line.clawback:
                row.cell(_("Clawback: deducted from later premi"))
            else:
                row.cell("\n\n")  # room to sign
        total = table.row(style=pages.bold(shaded=True))
        total.cell(_("Total"), colspan=4)
        total.cell(rupiah(sheet.total, locale))
        total.cell("")
    pdf.ln(8)
    pages.signatures(pdf, [_("Finance officer"), _("Head of the facility")])
    return bytes(pdf.output())


def render_statement(statement: Statement, locale: str = "id") -> bytes:
    """A WBP's premi, entry by entry, and what is owed now: printed for release day."""
    pdf = pages.document(STATEMENT_TITLE, statement.registration_number)
    pages.heading(
        pdf,
        STATEMENT_TITLE,
        [
            (_("Name"), statement.name),
            (_("Registration number"), statement.registration_number),
            (_("Facility"), statement.facility),
            (_("Date"), format_date(statement.printed_on, "long", locale=locale)),
        ],
    )
    pdf.set_font("Helvetica", size=9)
    with pdf.table(
        col_widths=(28, 30, 38, 28, 28, 28),
        text_align=("LEFT", "LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT"),
        headings_style=pages.bold(shaded=True),
        line_height=5,
        padding=1.5,
    ) as table:
        heading = table.row()
        for label in (_("Date"), _("Entry"), _("Order"), _("Batch"), _("Amount"), _("Balance")):
            heading.cell(label)
        for line in statement.lines:
            row = table.row()
            row.cell(format_date(line.occurred_on, "medium", locale=locale))
            row.cell(str(POSTING_KIND_LABELS[line.kind]))
            row.cell(line.order_reference or "")
            row.cell(line.batch_code or "")
            row.cell(rupiah(line.amount, locale))
            row.cell(rupiah(line.balance, locale))
    pdf.ln(4)
    pdf.set_fill_color(*pages.SHADE)
    pdf.set_font("Helvetica", style="B", size=11)
    owed = _("Premi owed now: %(amount)s", amount=rupiah(statement.owed, locale))
    pdf.multi_cell(0, 7, owed, fill=True, padding=2, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pages.signatures(pdf, [_("WBP"), _("Finance officer")])
    return bytes(pdf.output())


# --- The monthly report's chart -----------------------------------------------------------------

CHART_WIDTH = 640
CHART_HEIGHT = 240
CHART_TOP = 10
CHART_BASELINE = 210  # month labels go below it


@dataclass(frozen=True)
class Bar:
    part: str  # a CSS class suffix: premi, pnbp, modal
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class ChartColumn:
    label: str  # the month, short
    title: str  # what a pointer over the column reads
    label_x: float
    bars: tuple[Bar, ...]


def stacked_columns(
    columns: Sequence[tuple[str, str, Sequence[tuple[str, int]]]],
) -> list[ChartColumn]:
    """Geometry of one stacked column per (label, title, parts), scaled to the tallest column.

    A part below zero (a month of refunds) draws nothing: the table beside the chart has the
    numbers.
    """
    tallest = max((sum(max(0, v) for _p, v in parts) for *_l, parts in columns), default=0)
    scale = (CHART_BASELINE - CHART_TOP) / tallest if tallest else 0
    slot = CHART_WIDTH / max(1, len(columns))
    width = slot * 0.6
    drawn = []
    for index, (label, title, parts) in enumerate(columns):
        x = index * slot + (slot - width) / 2
        y = float(CHART_BASELINE)
        bars = []
        for part, value in parts:
            height = max(0, value) * scale
            if height:
                y -= height
                bars.append(Bar(part, round(x, 1), round(y, 1), round(width, 1), round(height, 1)))
        drawn.append(ChartColumn(label, title, round(index * slot + slot / 2, 1), tuple(bars)))
    return drawn
