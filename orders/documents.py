"""Order documents as PDF: the invoice (faktur) and the delivery note (surat jalan).

Both are drawn from plain dataclasses, so their wording and layout are tested without a database;
the routes at the end load an order the user may see and build those dataclasses from it.

The pages themselves (Helvetica in WinAnsi, numbered) come from `shop.pdf`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.lists import format_list
from flask import Response, abort, request
from flask_babel import get_locale
from flask_login import login_required
from sqlalchemy import func, select

from catalog.labels import unit_label
from catalog.models import Batch, BatchParticipation, Facility, Product, Programme
from payments.services import received_methods
from shop import params, policy
from shop import pdf as pages
from shop.accounts.models import Role
from shop.extensions import db
from shop.formatting import number, rupiah
from shop.i18n import gettext as _
from shop.i18n import ngettext
from shop.pdf import winansi  # noqa: F401  (the documents' transliteration, tested here)
from shop.policy import roles_required

from .labels import order_label
from .lifecycle import OrderStatus
from .models import DeliveryMethod, LineAllocation, Order, OrderLine, Shipment
from .office import bp as office_bp
from .terbilang import rupiah_in_words
from .views import bp as buyer_bp
from .views import buyer_order_or_404

if TYPE_CHECKING:
    from fpdf import FPDF

# Bilingual on purpose, in either UI language: the reader recognises the document at a glance.
INVOICE_TITLE = "Faktur / Invoice"
DELIVERY_NOTE_TITLE = "Surat Jalan / Delivery Note"


@dataclass(frozen=True)
class FacilityDetails:
    name: str
    city: str
    province: str
    regional_office: str


@dataclass(frozen=True)
class BuyerDetails:
    business_name: str
    contact_person: str
    phone: str
    email: str
    address: str
    npwp: str | None = None


@dataclass(frozen=True)
class InvoiceLine:
    product: str
    quantity: int
    unit: str  # already in the reader's language: "buah", "pcs"
    unit_price: int
    tier_min_quantity: int | None = None
    cancelled: bool = False

    @property
    def total(self) -> int:
        return 0 if self.cancelled else self.quantity * self.unit_price


@dataclass(frozen=True)
class Impact:
    """Who made the goods, as counts only: WBP names never leave the facility's back office."""

    makers: int
    programmes: tuple[str, ...]
    facility: str


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    issued_on: date
    order_reference: str
    facility: FacilityDetails
    buyer: BuyerDetails
    lines: tuple[InvoiceLine, ...]
    subtotal: int
    delivery_fee: int | None  # None until the facility confirms it
    payment_method: str
    impact: Impact | None = None
    cancelled: bool = False

    @property
    def total(self) -> int:
        return self.subtotal + (self.delivery_fee or 0)


@dataclass(frozen=True)
class DeliveryItem:
    product: str
    quantity: int
    unit: str


@dataclass(frozen=True)
class DeliveryNote:
    number: str
    issued_on: date
    order_reference: str
    invoice_number: str | None
    facility: FacilityDetails
    buyer: BuyerDetails
    # The buyer's address, or None when the buyer picks the goods up at the facility.
    delivery_address: str | None
    items: tuple[DeliveryItem, ...]


# --- Drawing -----------------------------------------------------------------------------------


class _Words:
    """Numbers, money and dates in the reader's language."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def money(self, amount: int) -> str:
        return rupiah(amount, self.locale)

    def number(self, value: int) -> str:
        return number(value, self.locale)

    def date(self, day: date) -> str:
        return format_date(day, format="long", locale=self.locale)

    def quantity(self, value: int, unit: str) -> str:
        return f"{self.number(value)} {unit}"


def _facility_text(facility: FacilityDetails) -> str:
    return "\n".join(
        [
            facility.name,
            f"{facility.city}, {facility.province}",
            facility.regional_office,
        ]
    )


def _buyer_text(buyer: BuyerDetails) -> str:
    rows = [buyer.business_name]
    if buyer.contact_person:
        rows.append(_("Contact person: %(name)s", name=buyer.contact_person))
    if buyer.phone:
        rows.append(_("Phone / WhatsApp: %(phone)s", phone=buyer.phone))
    if buyer.email:
        rows.append(_("Email: %(email)s", email=buyer.email))
    if buyer.address:
        rows.append(buyer.address)
    if buyer.npwp:
        rows.append(f"NPWP: {buyer.npwp}")
    return "\n".join(rows)


def _parties(pdf: FPDF, facility: FacilityDetails, buyer: BuyerDetails) -> None:
    pdf.set_font("Helvetica", size=10)
    with pdf.table(
        col_widths=(1, 1),
        headings_style=pages.bold(shaded=True),
        text_align="LEFT",
        v_align="TOP",
        line_height=5,
        padding=2,
    ) as table:
        heading = table.row()
        heading.cell(_("Seller"))
        heading.cell(_("Buyer"))
        row = table.row()
        row.cell(_facility_text(facility))
        row.cell(_buyer_text(buyer))
    pdf.ln(4)


def _tier_note(line: InvoiceLine, words: _Words) -> str:
    """Why the unit price is lower than the list price: "harga grosir mulai 5.000 buah"."""
    if line.tier_min_quantity is None:
        return ""
    return _(
        "wholesale price from %(quantity)s",
        quantity=words.quantity(line.tier_min_quantity, line.unit),
    )


def render_invoice(invoice: InvoiceDocument, locale: str = "id") -> bytes:
    """The invoice as a PDF: parties, lines, totals with the amount in words, and who made it."""
    words = _Words(locale)
    pdf = pages.document(INVOICE_TITLE, invoice.number)
    pages.heading(
        pdf,
        INVOICE_TITLE,
        [
            (_("Number"), invoice.number),
            (_("Date"), words.date(invoice.issued_on)),
            (_("Order"), invoice.order_reference),
        ],
        label_width=30,
    )
    if invoice.cancelled:
        pdf.set_text_color(160, 0, 0)
        pages.paragraph(pdf, _("This order is cancelled."), style="B")
        pdf.set_text_color(0)
        pdf.ln(2)
    _parties(pdf, invoice.facility, invoice.buyer)

    pdf.set_font("Helvetica", size=10)
    with pdf.table(
        col_widths=(10, 70, 30, 32, 38),
        text_align=("RIGHT", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=pages.bold(shaded=True),
        line_height=5,
        padding=1.5,
    ) as table:
        heading = table.row()
        for label in (_("No."), _("Product"), _("Quantity"), _("Unit price"), _("Total")):
            heading.cell(label)
        for position, line in enumerate(invoice.lines, start=1):
            description = [line.product]
            if note := _tier_note(line, words):
                description.append(note)
            if line.cancelled:
                description.append(_("(Cancelled)"))
            row = table.row()
            row.cell(str(position))
            row.cell("\n".join(description))
            row.cell(words.quantity(line.quantity, line.unit))
            row.cell(words.money(line.unit_price))
            row.cell(words.money(line.total))
    pdf.ln(2)

    fee = (
        _("to be confirmed") if invoice.delivery_fee is None else words.money(invoice.delivery_fee)
    )
    with pdf.table(
        col_widths=(50, 38),
        width=88,
        align="RIGHT",
        first_row_as_headings=False,
        text_align=("LEFT", "RIGHT"),
        line_height=6,
        padding=1.5,
    ) as table:
        for label, value, style in (
            (_("Subtotal"), words.money(invoice.subtotal), None),
            (_("Delivery fee"), fee, None),
            (_("Total"), words.money(invoice.total), pages.bold(shaded=True)),
        ):
            row = table.row(style=style)
            row.cell(label)
            row.cell(value)
    pdf.ln(3)

    words_line = _("In words: %(words)s", words=rupiah_in_words(invoice.total))
    pages.paragraph(pdf, words_line, style="I")
    pages.paragraph(pdf, _("Payment method: %(method)s", method=invoice.payment_method))
    if invoice.impact is not None:
        pdf.ln(4)
        pdf.set_fill_color(*pages.SHADE)
        pdf.set_font("Helvetica", style="B", size=10)
        pdf.multi_cell(0, 6, impact_line(invoice.impact, locale), fill=True, padding=2)
    return bytes(pdf.output())


def impact_line(impact: Impact, locale: str = "id") -> str:
    """Who made the goods: Dibuat oleh 6 WBP dalam program Besek bambu di Rutan ...; counts only."""
    return ngettext(
        "Made by %(makers)s WBP in the %(programmes)s programme at %(facility)s",
        "Made by %(makers)s WBP in the %(programmes)s programmes at %(facility)s",
        len(impact.programmes),
        makers=impact.makers,
        programmes=format_list(list(impact.programmes), locale=locale),
        facility=impact.facility,
    )


def render_delivery_note(note: DeliveryNote, locale: str = "id") -> bytes:
    """The delivery note as a PDF: what is handed over, without prices, and three signatures."""
    words = _Words(locale)
    pdf = pages.document(DELIVERY_NOTE_TITLE, note.number)
    facts = [
        (_("Number"), note.number),
        (_("Date"), words.date(note.issued_on)),
        (_("Order"), note.order_reference),
    ]
    if note.invoice_number:
        facts.append((_("Invoice"), note.invoice_number))
    pages.heading(pdf, DELIVERY_NOTE_TITLE, facts, label_width=30)
    _parties(pdf, note.facility, note.buyer)

    pages.paragraph(pdf, _("Delivery address"), style="B")
    pages.paragraph(
        pdf,
        note.delivery_address
        if note.delivery_address is not None
        else _("Picked up at %(facility)s", facility=note.facility.name),
    )
    pdf.ln(3)

    pdf.set_font("Helvetica", size=10)
    with pdf.table(
        col_widths=(10, 120, 50),
        text_align=("RIGHT", "LEFT", "RIGHT"),
        headings_style=pages.bold(shaded=True),
        line_height=6,
        padding=1.5,
    ) as table:
        heading = table.row()
        for label in (_("No."), _("Product"), _("Quantity")):
            heading.cell(label)
        for position, item in enumerate(note.items, start=1):
            row = table.row()
            row.cell(str(position))
            row.cell(item.product)
            row.cell(words.quantity(item.quantity, item.unit))
    pdf.ln(4)
    pages.paragraph(pdf, _("The goods above were received complete and in good condition."))
    pdf.ln(4)
    pages.signatures(pdf, [_("Sender"), _("Driver"), _("Receiver")])
    return bytes(pdf.output())


# --- From an order -----------------------------------------------------------------------------


def _local_date(moment: datetime, timezone: str) -> date:
    """The day at the facility: stored times are UTC, and Ruteng is an hour ahead of Java."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(timezone)).date()


def _facility_details(facility: Facility) -> FacilityDetails:
    return FacilityDetails(
        name=facility.name,
        city=facility.city,
        province=facility.province,
        regional_office=facility.regional_office,
    )


def _buyer_details(order: Order) -> BuyerDetails:
    buyer = order.buyer
    profile = buyer.buyer_profile
    if profile is None:
        return BuyerDetails(
            business_name=buyer.name,
            contact_person="",
            phone=buyer.phone,
            email=buyer.email,
            address=order.delivery_address,
        )
    return BuyerDetails(
        business_name=profile.business_name,
        contact_person=profile.contact_person,
        phone=profile.phone,
        email=buyer.email,
        address=profile.address,
        npwp=profile.npwp or None,
    )


def impact_of(order: Order) -> Impact | None:
    """How many WBP made the units allocated to the order, and in which programmes."""
    batch_ids = (
        select(LineAllocation.batch_id)
        .join(OrderLine, OrderLine.id == LineAllocation.line_id)
        .where(OrderLine.order_id == order.id, LineAllocation.released.is_(False))
    )
    makers = db.session.scalar(
        select(func.count(BatchParticipation.wbp_id.distinct())).where(
            BatchParticipation.batch_id.in_(batch_ids)
        )
    )
    if not makers:
        return None  # all made to order, or cancelled: nobody to name yet
    programmes = db.session.scalars(
        select(Programme.name)
        .distinct()
        .join(Product, Product.programme_id == Programme.id)
        .join(Batch, Batch.product_id == Product.id)
        .where(Batch.id.in_(batch_ids))
        .order_by(Programme.name)
    ).all()
    return Impact(makers=makers, programmes=tuple(programmes), facility=order.facility.name)


def invoice_document(order: Order) -> InvoiceDocument:
    invoice = order.invoice
    if invoice is None:
        abort(404)
    return InvoiceDocument(
        number=invoice.number,
        issued_on=_local_date(invoice.issued_at, order.facility.timezone),
        order_reference=order.reference,
        facility=_facility_details(order.facility),
        buyer=_buyer_details(order),
        lines=tuple(
            InvoiceLine(
                product=line.product.name,
                quantity=line.quantity,
                unit=unit_label(line.product.unit),
                unit_price=line.unit_price,
                tier_min_quantity=line.tier_min_quantity,
                cancelled=line.cancelled,
            )
            for line in order.lines
        ),
        subtotal=order.subtotal,
        delivery_fee=order.delivery_fee,
        payment_method=_payment_methods(order),
        impact=impact_of(order),
        cancelled=order.status is OrderStatus.CANCELLED,
    )


def _payment_methods(order: Order) -> str:
    """How the buyer paid, once money came in (a card can settle a bank-transfer order); until
    then the method chosen at checkout."""
    methods = received_methods(order.id) or [order.payment_method]
    return format_list([order_label(method) for method in methods], locale=get_locale())


def _delivery_note_number(order: Order, handover: int) -> str:
    """SJ/2026/001/00001-2: the invoice number's tail and which handover of the order it is."""
    tail = order.invoice.number.removeprefix("INV/") if order.invoice else order.reference
    return f"SJ/{tail}-{handover}"


def delivery_note(order: Order, shipment: Shipment | None) -> DeliveryNote:
    """One shipment's note or, without one, the note for everything still to hand over.

    The note for what remains carries the number the next handover will have. Once nothing
    remains, the note asked for without a shipment is the last handover's: the one that closed
    the order. An order with nothing handed over and nothing left (cancelled) has no note.
    """
    remaining = [line for line in order.lines if line.unshipped]
    if shipment is None and not remaining and order.shipments:
        shipment = order.shipments[-1]
    if shipment is not None:
        handover = order.shipments.index(shipment) + 1
        issued_at = shipment.created_at
        items = [
            DeliveryItem(
                shipped.line.product.name, shipped.quantity, unit_label(shipped.line.product.unit)
            )
            for shipped in sorted(shipment.lines, key=lambda s: s.line_id)
        ]
    else:
        handover = len(order.shipments) + 1
        issued_at = datetime.now(UTC)
        items = [
            DeliveryItem(line.product.name, line.unshipped, unit_label(line.product.unit))
            for line in remaining
        ]
    if not items:
        abort(404)
    return DeliveryNote(
        number=_delivery_note_number(order, handover),
        issued_on=_local_date(issued_at, order.facility.timezone),
        order_reference=order.reference,
        invoice_number=order.invoice.number if order.invoice else None,
        facility=_facility_details(order.facility),
        buyer=_buyer_details(order),
        delivery_address=order.delivery_address
        if order.delivery_method is DeliveryMethod.DELIVERY
        else None,
        items=tuple(items),
    )


def _shipment_of(order: Order) -> Shipment | None:
    """The shipment named by `?shipment=`; one of another order, or no number, is a 404."""
    raw = params.text(request.args, "shipment", max_length=20)
    if not raw:
        return None
    shipment = next((s for s in order.shipments if raw.isdecimal() and s.id == int(raw)), None)
    if shipment is None:
        abort(404)
    return shipment


def _pdf_response(content: bytes, number: str) -> Response:
    response = Response(content, mimetype="application/pdf")
    filename = number.replace("/", "-") + ".pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    # The site's policy forbids <embed> and inline styles, which Chrome's PDF viewer needs to
    # show a PDF inline; this response is our own generated file, so it gets a policy of its own.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; object-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _locale() -> str:
    return str(get_locale() or "id")


def _invoice_response(order: Order) -> Response:
    document = invoice_document(order)
    return _pdf_response(render_invoice(document, _locale()), document.number)


def _delivery_note_response(order: Order) -> Response:
    note = delivery_note(order, _shipment_of(order))
    return _pdf_response(render_delivery_note(note, _locale()), note.number)


# --- Routes ------------------------------------------------------------------------------------


@buyer_bp.get("/orders/<reference>/invoice.pdf")
@roles_required(Role.BUYER)
def invoice_pdf(reference: str) -> Response:
    return _invoice_response(buyer_order_or_404(reference))


@buyer_bp.get("/orders/<reference>/delivery-note.pdf")
@roles_required(Role.BUYER)
def delivery_note_pdf(reference: str) -> Response:
    return _delivery_note_response(buyer_order_or_404(reference))


def _office_order(facility_id: int, order_id: int) -> Order:
    policy.facility_or_404(facility_id, policy.OFFICE_ROLES)
    order: Order = policy.owned_or_404(Order, order_id, facility_id)
    return order


@office_bp.get("/orders/<int:order_id>/invoice.pdf", endpoint="invoice_pdf")
@login_required
def office_invoice_pdf(facility_id: int, order_id: int) -> Response:
    return _invoice_response(_office_order(facility_id, order_id))


@office_bp.get("/orders/<int:order_id>/delivery-note.pdf", endpoint="delivery_note_pdf")
@login_required
def office_delivery_note_pdf(facility_id: int, order_id: int) -> Response:
    return _delivery_note_response(_office_order(facility_id, order_id))
