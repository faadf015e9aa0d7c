"""A4 PDF pages shared by the order documents and finance's sheets.

The text is set in Helvetica, a PDF core font, in its WinAnsi (cp1252) encoding: no font file has
to ship with the app, and Indonesian needs no letter outside that encoding. A character outside it
(a name typed with an unusual letter, an emoji) is transliterated or replaced, never an error.

fpdf takes a quarter of a second to import, so it is imported on the first PDF built, not when
the app starts.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .i18n import gettext as _

if TYPE_CHECKING:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

WINANSI = "windows-1252"
MARGIN = 15
SHADE = (235, 235, 235)


def _encodable(char: str) -> bool:
    try:
        char.encode(WINANSI)
    except UnicodeEncodeError:
        return False
    return True


def winansi(text: str) -> str:
    """The text with every character the core font cannot draw transliterated, or "?"."""
    if _encodable(text):
        return text
    out = []
    for char in text:
        if _encodable(char):
            out.append(char)
            continue
        plain = "".join(
            c
            for c in unicodedata.normalize("NFKD", char)
            if not unicodedata.combining(c) and _encodable(c)
        )
        out.append(plain or "?")
    return "".join(out)


def bold(shaded: bool = False) -> FontFace:
    """Bold text; shaded for a table's headings and totals."""
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=SHADE if shaded else None)


@functools.cache
def _page_class() -> type[FPDF]:
    from fpdf import FPDF

    class Page(FPDF):
        """An A4 page in the core font, numbered "page n of m" under the document's number."""

        def __init__(self, title: str, number: str) -> None:
            super().__init__(orientation="portrait", unit="mm", format="A4")
            # The core fonts are declared WinAnsiEncoding in the PDF; encode to match, not latin-1.
            self.core_fonts_encoding = WINANSI
            self.number = number
            self.set_margins(MARGIN, MARGIN, MARGIN)
            self.set_auto_page_break(auto=True, margin=18)
            self.set_title(f"{title} {number}")
            self.set_creator("Karya Binaan")
            self.add_page()

        def normalize_text(self, text: str) -> str:
            return super().normalize_text(winansi(text))

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("Helvetica", size=8)
            page = _("Page %(page)s of %(pages)s", page=self.page_no(), pages="{nb}")
            self.cell(0, 5, f"{self.number} · {page}", align="C")

    return Page


def document(title: str, number: str) -> FPDF:
    """A new document titled "title number", its first page added."""
    return _page_class()(title, number)  # type: ignore[call-arg]


def paragraph(pdf: FPDF, text: str, size: float = 10, style: str = "", height: float = 5) -> None:
    pdf.set_font("Helvetica", style=style, size=size)
    pdf.multi_cell(0, height, text, new_x="LMARGIN", new_y="NEXT")


def heading(
    pdf: FPDF, title: str, facts: Sequence[tuple[str, str]], label_width: float = 40
) -> None:
    """The title, large, over a borderless table of (label, value) facts."""
    paragraph(pdf, title, size=16, style="B", height=8)
    pdf.ln(1)
    pdf.set_font("Helvetica", size=10)
    with pdf.table(
        col_widths=(label_width, pdf.epw - label_width),
        first_row_as_headings=False,
        borders_layout="NONE",
        text_align="LEFT",
        line_height=5,
    ) as table:
        for label, value in facts:
            row = table.row()
            row.cell(label, style=bold())
            row.cell(value)
    pdf.ln(3)


def signatures(pdf: FPDF, roles: Sequence[str]) -> None:
    """A space to sign under each role, with a line for the name."""
    if pdf.will_page_break(40):
        pdf.add_page()
    width = pdf.epw / len(roles)
    pdf.set_font("Helvetica", style="B", size=10)
    for role in roles:
        pdf.cell(width, 6, role, align="C")
    pdf.ln(24)
    pdf.set_font("Helvetica", size=10)
    for _role in roles:
        pdf.cell(width, 6, "(" + "." * 36 + ")", align="C")
    pdf.ln(5)
    pdf.set_font("Helvetica", size=8)
    for _role in roles:
        pdf.cell(width, 5, _("Name and signature"), align="C")
    pdf.ln()
