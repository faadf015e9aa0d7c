"""Three journeys in a real browser, each at a desktop and a phone width, through the pages only:
a salted-fish seller registers and buys 1,600 besek by card, the staff of Rutan Banjarnegara
record a batch, and finance pays the makers their premi.

Only what staff would already have is set up beforehand (accounts, facilities, the demo
catalogue, and for the payout a paid sale). Every page visited is checked by axe-core.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pypdf
from playwright.sync_api import Page, expect
from sqlalchemy import select

from payments import stripe_gateway
from payments.models import StripeEvent
from shop.extensions import db

from ..helpers import PASSWORD
from ..test_payments_card import wait_until

# localstripe asks for 3-D Secure on this card, which is what its Stripe.js can complete.
CARD_WITH_3DS = "4000002760003184"
JAKARTA = ZoneInfo("Asia/Jakarta")  # Banjarnegara's time zone


def number_in(text: str) -> int:
    """1,600 pcs (English) or 1.600 buah (Indonesian): the digits."""
    return int(re.sub(r"\D", "", text))


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


def download(page: Page, link) -> bytes:  # type: ignore[no-untyped-def]
    with page.expect_download() as started:
        link.click()
    return started.value.path().read_bytes()


def stripe_takes_the_card(client_secret: str, number: str) -> None:
    """What Stripe's servers do with the card Stripe.js sends them: attach it and confirm.

    localstripe's Stripe.js only completes the 3-D Secure step; the rest happens here.
    """
    intent_id = client_secret.split("_secret_")[0]
    stripe = stripe_gateway.client()
    card = stripe.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    stripe.v1.payment_intents.update(intent_id, params={"payment_method": card.id})
    assert stripe.v1.payment_intents.confirm(intent_id).status == "requires_action"


def test_a_buyer_registers_buys_1600_besek_by_card_and_downloads_the_invoice(
    journey, page, demo, card_payments
):
    journey.read_in("en")
    page.goto("/")
    journey.check("home")

    page.locator("header").get_by_role("link", name="Register").click()
    journey.check("registration form")
    page.fill("#business_name", "Toko Ikan Asin Bu Sari")
    page.fill("#contact_person", "Ibu Sari")
    page.fill("#phone", "081234567890")
    page.fill("#email", "sari.ikanasin@example.id")
    page.fill("#address", "Kelurahan Semarang, Banjarnegara")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".flash")).to_contain_text("Your buyer account is ready")
    journey.check("registered")

    page.locator("header").get_by_role("link", name="Products").click()
    page.get_by_role("searchbox", name="Search").fill("besek")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/products\?q=besek"))
    journey.check("search results")
    page.get_by_role("link", name="Besek bambu", exact=True).click()
    expect(page.locator("h1")).to_have_text("Besek bambu")
    journey.check("product")

    page.get_by_label("Quantity (pcs)").fill("1600")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("h1")).to_have_text("Cart")
    expect(page.get_by_label("Quantity", exact=True)).to_have_value("1600")
    expect(page.locator(".total")).to_have_text("Total: IDR 200,000")
    journey.check("cart")
    page.get_by_role("link", name="Check out").click()
    journey.check("checkout")
    page.get_by_role("button", name="Place the order").click()
    expect(page.locator("h1")).to_have_text("Thank you: your order is placed")
    journey.check("order placed")

    page.locator("main h2 a").click()
    expect(page.locator("h1")).to_contain_text("Order ")
    reference = page.locator("h1").inner_text().removeprefix("Order ")
    journey.check("order")
    page.get_by_role("link", name="Pay", exact=True).click()
    journey.check("payment choices")
    page.get_by_role("button", name="Pay IDR 200,000 by card").click()

    # The card page: pay.js loads (localstripe's) Stripe.js, which mounts the card fields.
    card_fields = page.locator("#card-element input")
    expect(card_fields).to_have_count(5)
    expect(page.get_by_role("button", name="Pay IDR 200,000")).to_be_enabled()
    journey.check("card")
    for placeholder, value in [
        ("number", CARD_WITH_3DS),
        ("exp_month", "12"),
        ("exp_year", "30"),
        ("cvc", "123"),
        ("postal_code", "53411"),
    ]:
        page.locator(f"#card-element input[placeholder={placeholder}]").fill(value)
    page.get_by_role("button", name="Pay IDR 200,000").click()
    stripe_takes_the_card(
        page.locator("#card-payment").get_attribute("data-client-secret"), CARD_WITH_3DS
    )
    page.get_by_role("button", name="Complete authentication").click()

    # Back on the site, which has asked Stripe; Stripe's webhook comes to the live server too.
    expect(page).to_have_url(re.compile(rf"/orders/{reference}/payments\?attempt=\d+"))
    expect(page.locator(".card-result")).to_have_text(
        "Thank you: your card payment of IDR 200,000 is received."
    )
    expect(page.locator(".payment-summary .payment-paid")).to_have_text("Paid in full")
    journey.check("paid")
    assert wait_until(
        lambda: db.session.scalar(
            select(StripeEvent.id).where(StripeEvent.type == "payment_intent.succeeded")
        )
    ), "Stripe's webhook never reached the live server"

    page.get_by_role("link", name=f"Back to order {reference}").click()
    expect(page.get_by_role("link", name="Pay", exact=True)).to_have_count(0)
    invoice = page.locator("main p", has_text="Download the invoice (PDF)").inner_text()
    invoice_number = re.match(r"Invoice: (\S+) ·", invoice).group(1)
    journey.check("order paid")
    pdf = download(page, page.get_by_role("link", name="Download the invoice (PDF)"))
    assert pdf.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert invoice_number in text
    assert "Toko Ikan Asin Bu Sari" in text  # the buyer as registered
    assert "Total IDR 200,000" in text


def test_staff_record_a_batch_and_its_quantity_becomes_stock(journey, page, users, facilities):
    """In Indonesian, the back office's default: the steps follow the pages' structure."""
    office = f"/office/{facilities['banjarnegara']}"
    sign_in(page, users["staff_banjarnegara"].email)
    assert page.locator("html").get_attribute("lang") == "id"
    journey.check("signed in")

    page.locator('header a[href="/office/"]').click()
    journey.check("back office")
    page.locator(f'.office-nav a[href="{office}/stock"]').click()
    besek_on_hand = page.locator(".stock-overview tr", has_text="Besek bambu").locator("td").nth(2)
    before = number_in(besek_on_hand.inner_text())
    assert before == 1600  # the demo batch of the field report
    journey.check("stock before")

    page.locator(f'.office-nav a[href="{office}/batches"]').click()
    journey.check("batches")
    page.locator(f'main a[href="{office}/batches/new"]').click()
    journey.check("plan a batch")
    page.select_option("#product", label="Besek bambu")
    page.fill("#code", "BSK-2026-11")
    page.locator("main form button[type=submit]").click()
    expect(page.locator("h1")).to_contain_text("BSK-2026-11")
    journey.check("batch planned")

    page.locator('main form[action$="/start"] button').click()
    for maker, pieces in [("Agus Fiktif", 120), ("Cahyo Contoh", 100), ("Eko Khayalan", 80)]:
        page.select_option(
            "#wbp", page.locator("#wbp option", has_text=maker).get_attribute("value")
        )
        page.fill("#contribution", str(pieces))
        page.locator('main form[action$="/participants"] button[type=submit]').click()
        expect(page.locator(".makers table.data tbody")).to_contain_text(maker)
    journey.check("participants")

    page.fill("#quantity_made", "300")
    page.fill("#material_cost", "7500")
    page.fill("#finished_on", datetime.now(JAKARTA).date().isoformat())
    page.locator('main form[action$="/finish"] button[type=submit]').click()
    expect(page.locator('main form[action$="/reopen"]')).to_have_count(1)  # finished
    journey.check("batch finished")

    page.locator(f'.office-nav a[href="{office}/stock"]').click()
    assert number_in(besek_on_hand.inner_text()) == before + 300
    journey.check("stock after")


def test_finance_pays_premi_and_downloads_the_payout_sheet(
    journey, page, users, facilities, paid_besek
):
    _product, _batch, makers, _order = paid_besek  # the 1,600 besek at Rp 125, paid
    db.session.rollback()  # hold no read lock while the live server writes
    premi = [15_000, 14_500, 13_500, 13_000, 12_500, 11_500]  # 50% of the net Rp 160.000

    journey.read_in("en")
    sign_in(page, users["finance_banjarnegara"].email)
    journey.check("signed in")
    page.locator("header").get_by_role("link", name="Back office").click()
    journey.check("back office")
    page.locator(".office-nav").get_by_role("link", name="Finance").click()
    journey.check("finance overview")
    page.locator(".finance-nav").get_by_role("link", name="Payout runs").click()
    journey.check("payout runs")
    page.get_by_role("link", name="Plan a payout run").click()
    journey.check("plan a payout run")
    page.get_by_label("Month").fill(datetime.now(JAKARTA).strftime("%Y-%m"))
    page.get_by_role("button", name="Plan the run").click()
    expect(page.locator("h1")).to_have_text("Payout run")
    rows = page.locator(".finance table.data tbody tr")
    expect(rows).to_have_count(6)
    expect(page.locator(".finance table.data tfoot")).to_contain_text("IDR 80,000")
    journey.check("run planned")

    page.get_by_role("button", name="Approve the run").click()
    journey.check("run approved")
    page.get_by_label("Paid by").select_option(index=0)
    page.get_by_role("button", name="Mark the run paid").click()
    expect(page.locator(".run-status")).to_have_text("Paid")
    journey.check("run paid")

    sheet = download(page, page.get_by_role("link", name="Payout sheet (CSV)"))
    lines = list(csv.reader(io.StringIO(sheet.decode("utf-8-sig"))))
    paid = {line[1]: line[4] for line in lines[1:-1]}
    assert paid == {m.name: str(amount) for m, amount in zip(makers, premi, strict=True)}
    assert lines[-1][4] == "80000"
