"""The payment pages, through HTTP: a salted-fish seller pays for 1,600 besek from Rutan
Banjarnegara (Rp 200.000), by bank transfer in two parts or by card, and the facility confirms
the money, opens the proofs and refunds 400 damaged besek. Other buyers and other facilities'
staff see nothing, and whatever is refused changes nothing.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import date, timedelta

import pypdf
import pytest
from flask import Flask
from fpdf import FPDF
from PIL import Image
from sqlalchemy import func, select

from catalog.models import Facility
from orders.checkout import place_orders
from orders.fulfilment import cancel_order
from orders.models import DeliveryMethod, Order, PaymentMethod
from payments import demo as payment_demo
from payments import services, stripe_gateway
from payments.forms import ProofProblem, ProofRefused, clean_proof
from payments.models import (
    BankAccount,
    CardAttempt,
    Payment,
    Refund,
    RefundStatus,
    TransferProof,
)
from payments.pages import facility_today
from shop.audit import AuditEntry
from shop.extensions import db, limiter
from shop.web import DEFAULT_CSP

from .helpers import login, post_form, visible_text
from .orders_fixtures import besek_in_two_batches, checkout
from .stripe_helpers import WEBHOOK_SECRET, event, post_webhook
from .test_payments_card import (  # noqa: F401  (fixtures, found by name)
    pay_in_the_browser,
    stripe_app,
    wait_until,
)

PUBLISHABLE_KEY = "pk_test_karya_binaan"


@pytest.fixture(autouse=True)
def fresh_limits(app):
    limiter.reset()  # every test signs several people in


@pytest.fixture
def bank_accounts(facilities):
    payment_demo.seed()


@pytest.fixture
def besek_order(users, facilities, bank_accounts) -> Order:
    """All 1,600 besek at Rp 125, picked up at the Rutan and paid by transfer: Rp 200.000."""
    facility = db.session.get(Facility, facilities["banjarnegara"])
    product, *_ = besek_in_two_batches(facility)
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    assert order.total == 200_000
    return order


@pytest.fixture
def signed_in(app_ctx, users):
    """A client signed in as one of the `users`, reading the pages in English."""

    def sign_in(who: str):
        client = app_ctx.test_client()
        client.set_cookie("lang", "en")
        login(client, users[who].email)
        return client

    return sign_in


def office_url(facilities, order: Order, action: str = "payments", facility="banjarnegara"):
    return f"/office/{facilities[facility]}/orders/{order.id}/{action}"


def confirm(client, facilities, order, amount, reference, facility="banjarnegara", **fields):
    data = {
        "method": PaymentMethod.BANK_TRANSFER.value,
        "amount": str(amount),
        "received_on": (date.today() - timedelta(days=1)).isoformat(),
        "reference": reference,
    }
    data.update(fields)
    return post_form(
        client,
        office_url(facilities, order, "payments/received", facility),
        data,
        form_page=f"/office/{facilities[facility]}/",
    )


def upload(client, order: Order, content: bytes, name: str):
    return post_form(
        client,
        f"/orders/{order.reference}/pay/proof",
        {"proof": (io.BytesIO(content), name)},
        form_page=f"/orders/{order.reference}/pay",
        content_type="multipart/form-data",
    )


def text_of(response) -> str:
    return visible_text(response.get_data(as_text=True))


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def png_screenshot() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (360, 640), (240, 240, 250)).save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_receipt(password: str | None = None) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Bukti transfer Bank Jateng Rp 200.000 berita KB-uji")
    raw = bytes(pdf.output())
    if password is None:
        return raw
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(raw))
    writer.encrypt(password)
    locked = io.BytesIO()
    writer.write(locked)
    return locked.getvalue()


def paid_refresh(order: Order) -> bool:
    db.session.rollback()
    return services.is_paid(order.id)


# ACCEPTANCE 4: the transfer paid in two parts, confirmed through the pages


def test_two_confirmations_pay_the_order_exactly_at_the_second(signed_in, facilities, besek_order):
    finance = signed_in("finance_banjarnegara")
    response = confirm(finance, facilities, besek_order, 120_000, "BRI-0001")
    assert response.status_code == 302
    assert not paid_refresh(besek_order)
    page = text_of(finance.get(office_url(facilities, besek_order)))
    assert "Still due: IDR 80,000" in page
    assert "BRI-0001" in page

    buyer = signed_in("buyer")
    assert "Amount due: IDR 80,000" in text_of(buyer.get(f"/orders/{besek_order.reference}/pay"))

    staff = signed_in("staff_banjarnegara")
    assert confirm(staff, facilities, besek_order, 80_000, "BRI-0002").status_code == 302
    assert paid_refresh(besek_order)
    assert services.paid_amount(besek_order.id) == 200_000

    pay_page = text_of(buyer.get(f"/orders/{besek_order.reference}/pay"))
    assert "Paid in full" in pay_page
    assert "Amount due" not in pay_page
    order_page = buyer.get(f"/orders/{besek_order.reference}").get_data(as_text=True)
    assert f'/orders/{besek_order.reference}/pay"' not in order_page  # no "Pay" button now


def test_money_beyond_the_total_is_shown_as_owed_back(signed_in, facilities, besek_order):
    # Money beyond the total, recorded directly: a card payment landing after a transfer is
    # returned by Stripe instead (test_payments_returns), a line cancelled after payment is not.
    from shop.database import write_transaction

    finance = signed_in("finance_banjarnegara")
    assert confirm(finance, facilities, besek_order, 200_000, "BRI-0001").status_code == 302
    page = text_of(finance.get(office_url(facilities, besek_order)))
    assert "Paid too much" not in page
    with write_transaction():
        order = services.locked_order(besek_order.id)
        services.record_payment(order, PaymentMethod.CARD, 200_000, date.today(), "pi_late")
    assert services.overpaid_amount(db.session.get(Order, besek_order.id)) == 200_000
    expected = "IDR 200,000 more than the total was received: the facility returns it to the buyer."
    assert expected in text_of(finance.get(office_url(facilities, besek_order)))
    buyer = signed_in("buyer")
    assert expected in text_of(buyer.get(f"/orders/{besek_order.reference}/payments"))


def test_staff_of_magetan_get_404_for_the_banjarnegara_order_and_record_nothing(
    signed_in, facilities, besek_order
):
    magetan = signed_in("staff_magetan")
    audit_before = count(AuditEntry)
    for facility in ("banjarnegara", "magetan"):
        assert (
            magetan.get(office_url(facilities, besek_order, facility=facility)).status_code == 404
        )
        response = confirm(magetan, facilities, besek_order, 200_000, "BRI-9", facility=facility)
        assert response.status_code == 404
        refund = post_form(
            magetan,
            office_url(facilities, besek_order, "refunds", facility),
            {f"refund_{besek_order.lines[0].id}": "400", "refund_reason": "rusak"},
            form_page=f"/office/{facilities['magetan']}/",
        )
        assert refund.status_code == 404
    assert count(Payment) == 0
    assert count(Refund) == 0
    assert count(AuditEntry) == audit_before


def test_refused_confirmations_change_nothing(signed_in, facilities, besek_order):
    finance = signed_in("finance_banjarnegara")
    facility = db.session.get(Facility, facilities["banjarnegara"])
    tomorrow = (facility_today(facility) + timedelta(days=1)).isoformat()

    future = confirm(finance, facilities, besek_order, 50_000, "BRI-1", received_on=tomorrow)
    assert future.status_code == 422
    assert "cannot be in the future" in text_of(future)
    card = confirm(finance, facilities, besek_order, 50_000, "BRI-2", method="card")
    assert card.status_code == 422
    no_reference = confirm(finance, facilities, besek_order, 50_000, "  ")
    assert no_reference.status_code == 422
    assert "Give the bank's reference or receipt number." in text_of(no_reference)
    dotted = confirm(finance, facilities, besek_order, "200.000", "BRI-3")
    assert dotted.status_code == 422
    too_much = confirm(finance, facilities, besek_order, 250_000, "BRI-4")
    assert too_much.status_code == 409
    assert "more than is still due on this order: IDR 200,000" in text_of(too_much)
    assert count(Payment) == 0


# The buyer's pages


def test_the_pay_page_shows_the_bank_account_and_the_exact_amount(signed_in, besek_order):
    buyer = signed_in("buyer")
    response = buyer.get(f"/orders/{besek_order.reference}/pay")
    assert response.status_code == 200
    page = text_of(response)
    assert "Amount due: IDR 200,000" in page
    assert "Bank Jateng" in page
    assert "2-043-01234-5" in page
    assert "RUTAN KELAS IIB BANJARNEGARA" in page
    assert f"Transfer note {besek_order.reference}" in page
    assert "Pay when you pick up" in page  # the besek are collected at the Rutan
    assert "identity card (KTP)" in page
    # Stripe is not configured in tests: card is neither offered nor accepted.
    assert "/pay/card" not in response.get_data(as_text=True)
    refused = post_form(buyer, f"/orders/{besek_order.reference}/pay/card", {}, form_page="/orders")
    assert refused.status_code == 409
    assert "Card payment is not available." in text_of(refused)
    assert count(CardAttempt) == 0
    # The order page offers the way there.
    order_page = buyer.get(f"/orders/{besek_order.reference}").get_data(as_text=True)
    assert f'href="/orders/{besek_order.reference}/pay"' in order_page


def test_the_pay_page_says_why_nothing_can_be_paid_yet(signed_in, users, facilities, bank_accounts):
    facility = db.session.get(Facility, facilities["banjarnegara"])
    product, *_ = besek_in_two_batches(facility)
    [delivered] = place_orders(
        users["buyer"],
        checkout(
            {product.id: 800},
            delivery=DeliveryMethod.DELIVERY,
            address="Jl. Pasar Ikan 7, Kelurahan Semarang, Banjarnegara",
        ),
    )
    [cancelled] = place_orders(users["buyer"], checkout({product.id: 100}))
    cancel_order(cancelled.id, "salah pesan", users["buyer"])
    buyer = signed_in("buyer")

    page = text_of(buyer.get(f"/orders/{delivered.reference}/pay"))
    assert "The delivery fee is not confirmed yet" in page
    assert "Send the proof" not in page
    assert "Pay when you pick up" not in page
    assert "This order is cancelled" in text_of(buyer.get(f"/orders/{cancelled.reference}/pay"))
    late = upload(buyer, cancelled, png_screenshot(), "bukti.png")
    assert late.status_code == 409
    assert count(TransferProof) == 0


def test_a_png_proof_is_kept_and_a_text_file_named_pdf_is_refused(
    signed_in, facilities, besek_order
):
    buyer = signed_in("buyer")
    response = upload(buyer, besek_order, png_screenshot(), "bukti-transfer.png")
    assert response.status_code == 302
    [proof] = db.session.scalars(select(TransferProof)).all()
    assert (proof.order_id, proof.content_type) == (besek_order.id, "image/png")
    assert db.session.scalar(
        select(func.count(AuditEntry.id)).where(AuditEntry.entity == "transfer_proof")
    )

    for content in (b"Sudah transfer Rp 200.000, terima kasih", b"%PDF-1.7 not really a pdf"):
        refused = upload(buyer, besek_order, content, "bukti-transfer.pdf")
        assert refused.status_code == 422
        assert "neither a picture nor a PDF that can be opened" in text_of(refused)
    locked = upload(buyer, besek_order, pdf_receipt(password="rahasia"), "e-statement.pdf")
    assert locked.status_code == 422
    assert "locked with a password" in text_of(locked)
    too_large = upload(buyer, besek_order, b"%PDF-" + b"0" * (4 * 2**20), "besar.pdf")
    assert too_large.status_code in {413, 422}  # the request limit may answer first
    assert count(TransferProof) == 1

    assert upload(buyer, besek_order, pdf_receipt(), "bukti.pdf").status_code == 302
    assert count(TransferProof) == 2
    assert "Proof 2 · PDF" in text_of(buyer.get(f"/orders/{besek_order.reference}/payments"))


def test_staff_open_proofs_safely_and_other_facilities_cannot(signed_in, facilities, besek_order):
    buyer = signed_in("buyer")
    upload(buyer, besek_order, png_screenshot(), "bukti.png")
    upload(buyer, besek_order, pdf_receipt(), "bukti.pdf")
    picture, pdf = db.session.scalars(select(TransferProof).order_by(TransferProof.id)).all()

    finance = signed_in("finance_banjarnegara")
    page = finance.get(office_url(facilities, besek_order)).get_data(as_text=True)
    assert office_url(facilities, besek_order, f"proofs/{pdf.id}") in page
    shown = finance.get(office_url(facilities, besek_order, f"proofs/{picture.id}"))
    assert shown.status_code == 200
    assert shown.mimetype == "image/png"
    assert shown.headers["Content-Disposition"].startswith("inline")
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert shown.headers["Cache-Control"] == "private, no-store"
    download = finance.get(office_url(facilities, besek_order, f"proofs/{pdf.id}"))
    assert download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.data.startswith(b"%PDF-")

    magetan = signed_in("staff_magetan")
    for facility in ("banjarnegara", "magetan"):
        url = office_url(facilities, besek_order, f"proofs/{pdf.id}", facility)
        assert magetan.get(url).status_code == 404
    # The buyer sees that the proofs arrived, but the files are for the facility.
    assert buyer.get(office_url(facilities, besek_order, f"proofs/{pdf.id}")).status_code == 404


def test_another_buyer_gets_404_on_every_buyer_route(signed_in, besek_order):
    other = signed_in("buyer_two")
    base = f"/orders/{besek_order.reference}"
    assert other.get(f"{base}/pay").status_code == 404
    assert other.get(f"{base}/payments").status_code == 404
    assert post_form(other, f"{base}/pay/card", {}, form_page="/orders").status_code == 404
    proof = post_form(
        other,
        f"{base}/pay/proof",
        {"proof": (io.BytesIO(png_screenshot()), "bukti.png")},
        form_page="/orders",
    )
    assert proof.status_code == 404
    assert count(TransferProof) == 0
    assert count(CardAttempt) == 0


def test_a_return_for_another_orders_card_attempt_is_404(signed_in, besek_order):
    buyer = signed_in("buyer")
    base = f"/orders/{besek_order.reference}/payments"
    assert buyer.get(f"{base}?attempt=999999").status_code == 404
    assert buyer.get(f"{base}?attempt=satu").status_code == 400


# Refunds


def test_a_refund_of_400_besek_through_the_staff_form_is_recorded_with_its_reason(
    signed_in, users, facilities, besek_order
):
    services.confirm_receipt(
        besek_order.id,
        PaymentMethod.BANK_TRANSFER,
        200_000,
        date.today(),
        "BRI-0001",
        users["finance_banjarnegara"],
    )
    line = besek_order.lines[0]
    staff = signed_in("staff_banjarnegara")
    page = text_of(staff.get(office_url(facilities, besek_order)))
    assert "Besek bambu isi ikan asin 1,600 pcs can be refunded, at IDR 125 each." in page
    refund_url = office_url(facilities, besek_order, "refunds")

    def refund(quantity, reason):
        return post_form(
            staff,
            refund_url,
            {f"refund_{line.id}": str(quantity), "refund_reason": reason},
            form_page=office_url(facilities, besek_order),
        )

    assert refund(1601, "terlalu banyak").status_code == 422
    assert refund(400, "   ").status_code == 422
    assert refund(0, "tidak ada").status_code == 409  # nothing to refund
    assert count(Refund) == 0

    assert refund(400, "400 besek rusak kena air hujan").status_code == 302
    [recorded] = db.session.scalars(select(Refund)).all()
    assert recorded.amount == 50_000  # 400 × Rp 125
    assert recorded.reason == "400 besek rusak kena air hujan"
    assert recorded.status is RefundStatus.SUCCEEDED  # a transfer refund is done by hand
    assert [(x.line_id, x.quantity) for x in recorded.lines] == [(line.id, 400)]
    assert refund(1201, "lagi").status_code == 422  # only 1,200 are left to refund
    assert count(Refund) == 1

    buyer = signed_in("buyer")
    record = text_of(buyer.get(f"/orders/{besek_order.reference}/payments"))
    assert "BRI-0001" in record
    assert "400 pcs Besek bambu isi ikan asin" in record
    assert "400 besek rusak kena air hujan" in record
    assert "Refunded IDR 50,000" in record


# Card payments, against localstripe


@dataclass(frozen=True)
class CardSetup:
    app: Flask
    localstripe: str  # where the fake Stripe API and Stripe.js are served


@pytest.fixture
def card_page(request):
    """Stripe configured against localstripe, which also serves the fake Stripe.js."""
    app = request.getfixturevalue("stripe_app")
    url = request.getfixturevalue("localstripe")
    app.config.update(
        STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY, STRIPE_JS_URL=f"{url}/js.stripe.com/v3/"
    )
    yield CardSetup(app, url)
    app.config.update(STRIPE_PUBLISHABLE_KEY="", STRIPE_JS_URL="https://js.stripe.com/v3/")


def csp_directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {
        name: sources
        for name, *sources in (part.split() for part in policy.split(";") if part.strip())
    }


def test_the_card_page_loads_stripe_js_and_only_it_may(signed_in, besek_order, card_page):
    stripe_js = card_page.localstripe
    buyer = signed_in("buyer")
    pay_page = buyer.get(f"/orders/{besek_order.reference}/pay")
    assert "Pay IDR 200,000 by card" in text_of(pay_page)
    assert pay_page.headers["Content-Security-Policy"] == DEFAULT_CSP
    assert stripe_js not in DEFAULT_CSP

    response = post_form(buyer, f"/orders/{besek_order.reference}/pay/card", {}, form_page="/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    [attempt] = db.session.scalars(select(CardAttempt)).all()
    assert f'data-publishable-key="{PUBLISHABLE_KEY}"' in html
    assert f'data-client-secret="{stripe_gateway.client_secret(attempt)}"' in html
    assert f'data-stripe-js="{stripe_js}/js.stripe.com/v3/"' in html
    assert f"/orders/{besek_order.reference}/payments?attempt={attempt.id}" in html
    assert "<script>" not in html  # pay.js reads the data attributes
    directives = csp_directives(response)
    assert directives["script-src"] == ["'self'", stripe_js]
    assert stripe_js in directives["frame-src"]
    assert stripe_js in directives["connect-src"]
    assert directives["frame-ancestors"] == ["'none'"]  # the rest of the policy stays
    assert response.headers["Cache-Control"] == "private, no-store"

    # Asking again reuses the attempt: one PaymentIntent per amount due.
    again = post_form(buyer, f"/orders/{besek_order.reference}/pay/card", {}, form_page="/")
    assert again.status_code == 200
    assert count(CardAttempt) == 1
    assert csp_directives(buyer.get(f"/orders/{besek_order.reference}/payments")).get(
        "script-src"
    ) == ["'self'"]


def test_the_return_from_the_card_page_asks_stripe(signed_in, besek_order, card_page):
    buyer = signed_in("buyer")
    post_form(buyer, f"/orders/{besek_order.reference}/pay/card", {}, form_page="/")
    [attempt] = db.session.scalars(select(CardAttempt)).all()
    card_page.app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_wrong"  # only asking Stripe can tell
    try:
        pay_in_the_browser(attempt.intent_id)
        time.sleep(1.5)  # the webhook came, and was refused
        assert not paid_refresh(besek_order)
        back = buyer.get(f"/orders/{besek_order.reference}/payments?attempt={attempt.id}")
    finally:
        card_page.app.config["STRIPE_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    assert back.status_code == 200
    assert "your card payment of IDR 200,000 is received" in text_of(back)
    assert paid_refresh(besek_order)
    assert count(Payment) == 1


def test_a_card_refund_shows_as_waiting_until_stripe_confirms_it(
    signed_in, users, facilities, besek_order, card_page
):
    attempt = stripe_gateway.start_card_payment(besek_order.id, users["buyer"])
    pay_in_the_browser(attempt.intent_id)
    assert wait_until(lambda: services.is_paid(besek_order.id)), "webhook never arrived"

    staff = signed_in("staff_banjarnegara")
    response = post_form(
        staff,
        office_url(facilities, besek_order, "refunds"),
        {f"refund_{besek_order.lines[0].id}": "400", "refund_reason": "400 besek rusak"},
        form_page=office_url(facilities, besek_order),
    )
    assert response.status_code == 302
    [refund] = db.session.scalars(select(Refund)).all()
    assert (refund.method, refund.status) == (PaymentMethod.CARD, RefundStatus.PENDING)
    assert "Sent to Stripe, waiting for its confirmation" in text_of(
        staff.get(office_url(facilities, besek_order))
    )

    # localstripe sends no charge.refunded: the test signs it as Stripe would.
    charge = {
        "id": "ch_test",
        "object": "charge",
        "payment_intent": attempt.intent_id,
        "refunds": {"data": [{"id": refund.stripe_refund_id, "status": "succeeded"}]},
    }
    assert post_webhook(staff, event("charge.refunded", charge)).status_code == 200
    buyer = signed_in("buyer")
    record = text_of(buyer.get(f"/orders/{besek_order.reference}/payments"))
    assert "400 besek rusak Refunded" in record
    assert "waiting for its confirmation" not in record


# The demo accounts


def test_seed_demo_gives_each_demo_facility_one_bank_account(app_ctx):
    runner = app_ctx.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed-demo"])
        assert result.exit_code == 0, result.output
    accounts = db.session.scalars(select(BankAccount)).all()
    assert len(accounts) == 4
    banjarnegara = db.session.scalar(select(Facility).where(Facility.slug == "rutan-banjarnegara"))
    assert db.session.get(BankAccount, banjarnegara.id).bank == "Bank Jateng"


# The proof check, without a database


def refusal(raw: bytes, max_bytes: int = 4 * 2**20) -> ProofProblem:
    with pytest.raises(ProofRefused) as refused:
        clean_proof(raw, max_bytes)
    return refused.value.problem


def test_a_proof_is_read_from_its_bytes():
    assert clean_proof(png_screenshot()).content_type == "image/png"
    receipt = pdf_receipt()
    assert clean_proof(receipt).data == receipt  # a PDF is kept as it came
    assert refusal(b"Sudah transfer, Bu") is ProofProblem.NOT_A_PROOF
    assert refusal(b"%PDF-1.4\n%%EOF") is ProofProblem.NOT_A_PROOF
    assert refusal(pdf_receipt(password="rahasia")) is ProofProblem.LOCKED
    assert refusal(receipt, max_bytes=len(receipt) - 1) is ProofProblem.TOO_LARGE
    assert refusal(png_screenshot(), max_bytes=100) is ProofProblem.TOO_LARGE
