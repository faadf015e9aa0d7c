"""The invoice (faktur) and delivery note (surat jalan) as PDF: what they say and who gets them."""

from datetime import date
from io import BytesIO

import pytest
from pypdf import PdfReader

from catalog.models import Facility
from orders.checkout import place_orders
from orders.documents import (
    BuyerDetails,
    DeliveryItem,
    DeliveryNote,
    FacilityDetails,
    Impact,
    InvoiceDocument,
    InvoiceLine,
    render_delivery_note,
    render_invoice,
    winansi,
)
from orders.fulfilment import change_status, record_shipment, set_delivery_fee
from orders.lifecycle import OrderStatus
from orders.models import DeliveryMethod
from shop.extensions import db

from .helpers import login
from .orders_fixtures import besek_in_two_batches, checkout

BANJARNEGARA = FacilityDetails(
    name="Rutan Kelas IIB Banjarnegara",
    city="Kabupaten Banjarnegara",
    province="Jawa Tengah",
    regional_office="Kanwil Ditjenpas Jawa Tengah",
)
FISH_SELLER = BuyerDetails(
    business_name="Toko Ikan Asin Bu Sari",
    contact_person="Ibu Sari",
    phone="081234567890",
    email="sari@example.id",
    address="Kelurahan Semarang, Banjarnegara",
    npwp="01.234.567.8-901.000",
)


def pdf_text(content: bytes) -> str:
    """The words of every page, with line breaks and runs of spaces made single spaces."""
    reader = PdfReader(BytesIO(content))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


# --- Drawn from plain data, without a database -------------------------------------------------


def test_an_invoice_shows_tiers_cancelled_lines_and_an_unconfirmed_fee():
    invoice = InvoiceDocument(
        number="INV/2026/001/00007",
        issued_on=date(2026, 10, 17),
        order_reference="KB-1A2B3C4D",
        facility=BANJARNEGARA,
        buyer=FISH_SELLER,
        lines=(
            InvoiceLine("Besek bambu", 5_000, "pcs", 115, tier_min_quantity=5_000),
            InvoiceLine("Tas rajut", 2, "pcs", 85_000, cancelled=True),
        ),
        subtotal=575_000,
        delivery_fee=None,
        payment_method="Bank transfer",
        impact=Impact(makers=6, programmes=("Besek bambu", "Rajut"), facility=BANJARNEGARA.name),
    )
    # Outside a request the labels are the English source text; numbers follow the locale.
    text = pdf_text(render_invoice(invoice, locale="id"))
    assert "INV/2026/001/00007" in text
    assert "17 Oktober 2026" in text
    assert "wholesale price from 5.000 pcs" in text
    assert "Tas rajut (Cancelled)" in text
    assert "Rp 0" in text  # the cancelled line counts for nothing
    assert "Delivery fee to be confirmed" in text
    assert "Total Rp 575.000" in text
    assert "Lima ratus tujuh puluh lima ribu rupiah" in text
    assert "NPWP: 01.234.567.8-901.000" in text
    assert "Made by 6 WBP in the Besek bambu dan Rajut programmes at" in text


def test_a_name_the_core_font_cannot_draw_does_not_break_the_pdf():
    assert winansi("Toko Ikan Asin Bu Sari 🐟") == "Toko Ikan Asin Bu Sari ?"
    assert winansi("Kopi Ṭoraja") == "Kopi Toraja"  # transliterated, not dropped
    assert (
        winansi("Warung “Bu Sari” – Rp 5.000") == "Warung “Bu Sari” – Rp 5.000"
    )  # cp1252 has these
    note = DeliveryNote(
        number="SJ/2026/001/00007-1",
        issued_on=date(2026, 10, 17),
        order_reference="KB-1A2B3C4D",
        invoice_number="INV/2026/001/00007",
        facility=BANJARNEGARA,
        buyer=BuyerDetails("Toko 🐟 Ṭoraja", "", "081234567890", "", ""),
        delivery_address=None,
        items=(DeliveryItem("Besek bambu", 1_600, "pcs"),),
    )
    text = pdf_text(render_delivery_note(note))
    assert "Toko ? Toraja" in text
    assert "Picked up at Rutan Kelas IIB Banjarnegara" in text
    assert "1.600 pcs" in text


# --- Through the web, on both databases ---------------------------------------------------------


@pytest.fixture
def besek(facilities):
    facility = db.session.get(Facility, facilities["banjarnegara"])
    return besek_in_two_batches(facility)


@pytest.fixture
def besek_order(users, besek):
    """The salted-fish seller's order of all 1,600 besek, from two batches made by six WBP."""
    product, _september, _october = besek
    [order] = place_orders(
        users["buyer"],
        checkout(
            {product.id: 1600},
            delivery=DeliveryMethod.DELIVERY,
            address="Kelurahan Semarang, Banjarnegara",
        ),
    )
    return order


def invoice_url(order):
    return f"/orders/{order.reference}/invoice.pdf"


def note_url(order, shipment=None):
    query = f"?shipment={shipment}" if shipment is not None else ""
    return f"/orders/{order.reference}/delivery-note.pdf{query}"


def office_url(facility_id, order, document):
    return f"/office/{facility_id}/orders/{order.id}/{document}.pdf"


def test_the_invoice_pdf_renders(client, users, besek_order):
    """ACCEPTANCE: the buyer's invoice has its number, the total, the terbilang and who made it."""
    number = besek_order.invoice.number
    login(client, "buyer@example.id")
    response = client.get(invoice_url(besek_order))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    filename = number.replace("/", "-") + ".pdf"
    assert response.headers["Content-Disposition"] == f'inline; filename="{filename}"'
    text = pdf_text(response.data)
    assert number in text
    assert "Rp 125" in text
    assert "Rp 200.000" in text
    assert "Dua ratus ribu rupiah" in text
    assert "Toko Ikan Asin buyer" in text  # the buyer's business name
    assert "Kanwil Ditjenpas Jawa Tengah" in text
    assert "6 WBP" in text
    assert "Agus" not in text  # counts only: no maker is named


def test_the_invoice_is_in_english_for_the_english_ui(client, users, besek_order):
    client.set_cookie("lang", "en")
    login(client, "buyer@example.id")
    text = pdf_text(client.get(invoice_url(besek_order)).data)
    assert "Made by 6 WBP in the Besek bambu programme at Rutan Kelas IIB Banjarnegara" in text
    assert "IDR 200,000" in text
    assert "Delivery fee to be confirmed" in text
    # The amount in words stays Indonesian: it is the legal wording of the amount.
    assert "Dua ratus ribu rupiah" in text


def test_the_order_page_links_to_both_documents(client, users, besek_order):
    client.set_cookie("lang", "en")
    login(client, "buyer@example.id")
    html = client.get(f"/orders/{besek_order.reference}").get_data(as_text=True)
    assert f'href="{invoice_url(besek_order)}"' in html
    assert f'href="{note_url(besek_order)}"' in html
    assert "Download the invoice (PDF)" in html


def test_a_delivery_note_lists_one_shipment_without_prices(client, users, besek_order):
    staff = users["staff_banjarnegara"]
    line_id = besek_order.lines[0].id
    change_status(besek_order.id, OrderStatus.CONFIRMED, staff)
    set_delivery_fee(besek_order.id, 15_000, staff)
    shipment = record_shipment(besek_order.id, {line_id: 600}, picked_up=False, user=staff)
    tail = besek_order.invoice.number.removeprefix("INV/")

    login(client, "buyer@example.id")
    response = client.get(note_url(besek_order, shipment.id))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    expected = f"SJ-{tail.replace('/', '-')}-1.pdf"
    assert response.headers["Content-Disposition"] == f'inline; filename="{expected}"'
    text = pdf_text(response.data)
    assert f"SJ/{tail}-1" in text
    assert "Besek bambu isi ikan asin 600" in text
    assert "Kelurahan Semarang, Banjarnegara" in text
    assert "Rp" not in text and "IDR" not in text
    assert "1.600" not in text  # only what this shipment handed over

    # Without a shipment: what remains, under the number the next handover will have.
    remaining = pdf_text(client.get(note_url(besek_order)).data)
    assert f"SJ/{tail}-2" in remaining
    assert "Besek bambu isi ikan asin 1.000" in remaining


def test_a_shipment_of_another_order_is_not_found(client, users, besek):
    product, *_ = besek
    staff = users["staff_banjarnegara"]
    first, second = (
        place_orders(users["buyer"], checkout({product.id: quantity}))[0] for quantity in (800, 800)
    )
    for order in (first, second):
        change_status(order.id, OrderStatus.CONFIRMED, staff)
    theirs = record_shipment(second.id, {second.lines[0].id: 800}, picked_up=True, user=staff)
    login(client, "buyer@example.id")
    assert client.get(note_url(first, theirs.id)).status_code == 404
    assert client.get(note_url(first, "abc")).status_code == 404
    assert client.get(note_url(second, theirs.id)).status_code == 200
    # Everything of the second order is handed over: its note is the last handover's.
    closing = client.get(note_url(second))
    assert closing.status_code == 200
    assert pdf_text(closing.data) == pdf_text(client.get(note_url(second, theirs.id)).data)


def test_another_buyer_gets_404(client, users, besek_order):
    login(client, "buyer.two@example.id")
    assert client.get(invoice_url(besek_order)).status_code == 404
    assert client.get(note_url(besek_order)).status_code == 404


def test_a_visitor_is_sent_to_sign_in(client, besek_order):
    response = client.get(invoice_url(besek_order))
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_banjarnegara_office_prints_both_documents(app_ctx, users, facilities, besek_order):
    banjarnegara = facilities["banjarnegara"]
    for email in ("staff.banjarnegara@example.id", "finance.banjarnegara@example.id"):
        client = app_ctx.test_client()
        login(client, email)
        invoice = client.get(office_url(banjarnegara, besek_order, "invoice"))
        assert invoice.status_code == 200, email
        assert besek_order.invoice.number in pdf_text(invoice.data)
        note = client.get(office_url(banjarnegara, besek_order, "delivery-note"))
        assert note.status_code == 200, email
        assert "Besek bambu isi ikan asin 1.600" in pdf_text(note.data)


def test_magetan_staff_get_404(client, users, facilities, besek_order):
    login(client, "staff.magetan@example.id")
    for document in ("invoice", "delivery-note"):
        # Not their facility's office, and not their facility's order.
        assert (
            client.get(office_url(facilities["banjarnegara"], besek_order, document)).status_code
            == 404
        )
        assert (
            client.get(office_url(facilities["magetan"], besek_order, document)).status_code == 404
        )


def test_the_next_order_of_the_facility_has_the_next_invoice_number(client, users, besek):
    product, *_ = besek
    first = place_orders(users["buyer"], checkout({product.id: 1000}))[0]
    second = place_orders(users["buyer_two"], checkout({product.id: 600}))[0]
    assert second.invoice.facility_id == first.invoice.facility_id
    assert second.invoice.year == first.invoice.year
    assert second.invoice.sequence == first.invoice.sequence + 1
    prefix, _sequence = first.invoice.number.rsplit("/", 1)
    assert second.invoice.number == f"{prefix}/{first.invoice.sequence + 1:05d}"

    login(client, "buyer.two@example.id")
    text = pdf_text(client.get(invoice_url(second)).data)
    assert second.invoice.number in text
    assert "Rp 75.000" in text
    assert "Tujuh puluh lima ribu rupiah" in text


def test_the_invoice_names_how_the_order_was_actually_paid(client, users, besek_order):
    # Chosen at checkout: bank transfer. Until money comes in, that is what the invoice says;
    # a card payment made on the order's payment page then replaces it, a transfer joins it.
    from orders.models import PaymentMethod
    from payments import services
    from shop.database import write_transaction

    login(client, "buyer@example.id")
    assert "Metode pembayaran: Transfer bank" in pdf_text(client.get(invoice_url(besek_order)).data)

    def pay(method, amount, reference):
        with write_transaction():
            order = services.locked_order(besek_order.id)
            services.record_payment(order, method, amount, date.today(), reference)

    pay(PaymentMethod.CARD, 150_000, "pi_3Q")
    assert "Metode pembayaran: Kartu" in pdf_text(client.get(invoice_url(besek_order)).data)
    pay(PaymentMethod.BANK_TRANSFER, 50_000, "BRI-0042")
    text = pdf_text(client.get(invoice_url(besek_order)).data)
    assert "Metode pembayaran: Kartu dan Transfer bank" in text
