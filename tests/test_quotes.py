"""Quotes: a salted-fish seller asks Rutan Banjarnegara for 5,000 besek, more than the 1,600 in
stock; the staff answer Rp 115 a piece, 30 working days, valid for 14 days; the seller accepts it
into one order. Around that story: expiry, who may see a quote, and what bad input does."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from catalog.models import Batch, Product
from catalog.production import facility_today
from catalog.queries import stock_on_hand
from orders.models import DeliveryMethod, Order, PaymentMethod, Quote, QuoteStatus
from orders.quotes import (
    Acceptance,
    accept_quote,
    answer_fingerprint,
    current_status,
    expire_quotes,
    register_cli,
    whatsapp_link,
)
from shop.accounts.models import User
from shop.audit import AuditEntry
from shop.extensions import db
from shop.mail import OutboxMessage

from .helpers import login, post_form, visible_text

BESEK = "besek-bambu-banjarnegara"
SPECIFICATION = "Besek 20 x 20 cm dengan tutup, untuk ikan asin; dikirim bertahap per 1.000."


# --- The rules, without a database -------------------------------------------------------------


def test_an_answer_holds_through_its_last_day_and_then_reads_as_expired():
    last_day = date(2026, 11, 30)
    assert current_status(QuoteStatus.ANSWERED, last_day, date(2026, 11, 30)) == "answered"
    assert current_status(QuoteStatus.ANSWERED, last_day, date(2026, 12, 1)) == "expired"
    # A request has no date to pass, and a closed quote stays as it was closed.
    assert current_status(QuoteStatus.REQUESTED, None, date(2027, 1, 1)) == "requested"
    assert current_status(QuoteStatus.ACCEPTED, last_day, date(2027, 1, 1)) == "accepted"
    assert current_status(QuoteStatus.DECLINED, last_day, date(2027, 1, 1)) == "declined"


def test_a_whatsapp_link_opens_a_chat_with_an_indonesian_number():
    link = whatsapp_link("0812-3456-7890", "Penawaran besek: https://contoh.id/quotes/7")
    assert link == (
        "https://wa.me/6281234567890?text=Penawaran%20besek%3A%20https%3A//contoh.id/quotes/7"
    )
    assert whatsapp_link("+62 812 3456 7890", "x") == "https://wa.me/6281234567890?text=x"
    assert whatsapp_link("", "x") == "https://wa.me/?text=x"


def test_a_changed_answer_has_another_fingerprint():
    first = answer_fingerprint(115, 30, date(2026, 12, 1))
    assert first == answer_fingerprint(115, 30, date(2026, 12, 1))
    assert first != answer_fingerprint(120, 30, date(2026, 12, 1))
    assert first != answer_fingerprint(115, 30, date(2026, 12, 2))


# --- Through the pages -------------------------------------------------------------------------


def jakarta_today() -> date:
    return facility_today("Asia/Jakarta")


def ask_for_quote(client, quantity, specification=SPECIFICATION, product=BESEK):
    return post_form(
        client,
        f"/quotes/new?product={product}",
        {"quantity": quantity, "specification": specification},
    )


def answer(client, facility_id, quote_id, **overrides):
    data = {
        "unit_price": "115",
        "lead_time_days": "30",
        "valid_until": (jakarta_today() + timedelta(days=14)).isoformat(),
        "staff_note": "Harga khusus untuk 5.000 buah.",
    }
    data.update(overrides)
    return post_form(client, f"/office/{facility_id}/quotes/{quote_id}", data)


def hidden(html, name):
    return re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html).group(1)


def accept_form(client, quote_id, **overrides):
    """The accept form as the buyer's page fills it, with the answer they read on it."""
    html = client.get(f"/quotes/{quote_id}").get_data(as_text=True)
    data = {
        "csrf_token": hidden(html, "csrf_token"),
        "answer_seen": hidden(html, "answer_seen"),
        "delivery_method": "pickup",
        "payment_method": "bank_transfer",
        "delivery_address": "",
        "note": "Diambil hari Jumat.",
    }
    data.update(overrides)
    return data


def accept(client, quote_id, **overrides):
    return client.post(
        f"/quotes/{quote_id}/accept", data=accept_form(client, quote_id, **overrides)
    )


def signed_in(app, email):
    other = app.test_client()
    other.set_cookie("lang", "en")
    login(other, email)
    return other


def the_quote() -> Quote:
    return db.session.scalar(select(Quote))


def besek() -> Product:
    return db.session.scalar(select(Product).where(Product.slug == BESEK))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def buyer(app, users):
    return signed_in(app, "buyer@example.id")


@pytest.fixture
def staff(app, users):
    return signed_in(app, "staff.banjarnegara@example.id")


@pytest.fixture
def answered(buyer, staff, facilities):
    """The seller's request for 5,000 besek, answered Rp 115, 30 days, valid for 14 days."""
    assert ask_for_quote(buyer, 5000).status_code == 302
    quote_id = the_quote().id
    assert answer(staff, facilities["banjarnegara"], quote_id).status_code == 302
    return quote_id


def test_the_product_page_offers_a_quote_to_signed_in_buyers_only(client, buyer):
    link = f"/quotes/new?product={BESEK}"
    assert link in buyer.get(f"/products/{BESEK}?quantity=5000").get_data(as_text=True)
    assert link not in client.get(f"/products/{BESEK}").get_data(as_text=True)


def test_the_seller_asks_for_5000_besek_and_accepts_the_answer_into_one_order(
    buyer, staff, users, facilities
):
    banjarnegara = facilities["banjarnegara"]
    page = buyer.get(f"/quotes/new?product={BESEK}&quantity=5000").get_data(as_text=True)
    assert 'value="5000"' in page

    response = ask_for_quote(buyer, 5000)
    assert response.status_code == 302
    quote = the_quote()
    assert (quote.quantity, quote.specification, quote.status) == (5000, SPECIFICATION, "requested")
    assert quote.facility_id == banjarnegara
    assert "Requested" in visible_text(
        buyer.get(response.headers["Location"]).get_data(as_text=True)
    )

    listing = visible_text(staff.get(f"/office/{banjarnegara}/quotes").get_data(as_text=True))
    assert f"Quote {quote.id}" in listing
    assert "Toko Ikan Asin buyer" in listing
    form_page = staff.get(f"/office/{banjarnegara}/quotes/{quote.id}").get_data(as_text=True)
    assert 'value="115"' in form_page  # the catalog's tier for 5,000 is the starting point
    assert "https://wa.me/6281234567890" in form_page  # the seller's phone, for WhatsApp

    valid_until = jakarta_today() + timedelta(days=14)
    assert answer(staff, banjarnegara, quote.id).status_code == 302
    db.session.refresh(quote)
    assert (quote.status, quote.unit_price, quote.lead_time_days) == ("answered", 115, 30)
    assert quote.valid_until == valid_until
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "answer"))
    assert audit.user_id == users["staff_banjarnegara"].id
    assert audit.facility_id == banjarnegara
    assert audit.changes["unit_price"] == [None, 115]
    mail = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.recipient == "buyer@example.id")
    )
    assert "Rp 115" in mail.body  # in Indonesian: the buyer's language is not known
    assert "Rp 575.000" in mail.body
    assert f"/quotes/{quote.id}" in mail.body

    detail = visible_text(buyer.get(f"/quotes/{quote.id}").get_data(as_text=True))
    assert "1,600 in stock now; 3,400 made to order in about 30 working days." in detail
    form = accept_form(buyer, quote.id)
    response = buyer.post(f"/quotes/{quote.id}/accept", data=form)
    assert response.status_code == 302

    order = db.session.scalar(select(Order))
    assert response.headers["Location"].endswith(f"/orders/{order.reference}")
    order_page = visible_text(buyer.get(response.headers["Location"]).get_data(as_text=True))
    assert "IDR 575,000" in order_page
    assert "3,400 made to order" in order_page
    assert order.facility_id == banjarnegara
    assert order.subtotal == 5000 * 115
    [line] = order.lines
    assert (line.quantity, line.unit_price, line.tier_min_quantity) == (5000, 115, None)
    assert (line.made_to_order, line.made_to_order_days) == (3400, 30)
    assert sum(a.quantity for a in line.allocations) == 1600
    assert stock_on_hand(besek().id) == 0
    assert order.invoice is not None
    db.session.refresh(quote)
    assert (quote.status, quote.order_id) == ("accepted", order.id)

    # A second press of the button (or a replayed request) leads to the same order.
    again = buyer.post(f"/quotes/{quote.id}/accept", data=form)
    assert again.status_code == 302
    assert again.headers["Location"].endswith(f"/orders/{order.reference}")
    assert count(Order) == 1
    assert db.session.scalar(select(func.sum(Batch.quantity_allocated))) == 1600


def test_five_presses_at_the_same_moment_place_one_order(app, answered):
    """The row lock on the quote (BEGIN IMMEDIATE on SQLite) lets one press write the order;
    the others find the quote accepted and return that same order."""
    quote = the_quote()
    acceptance = Acceptance(
        delivery_method=DeliveryMethod.PICKUP,
        delivery_address="",
        payment_method=PaymentMethod.BANK_TRANSFER,
        note="",
        answer_seen=answer_fingerprint(quote.unit_price, quote.lead_time_days, quote.valid_until),
    )
    buyer_id = quote.buyer_id
    db.session.rollback()
    start = threading.Barrier(5)
    outcomes: list[str] = []

    def press() -> None:
        with app.app_context():
            buyer = db.session.get(User, buyer_id)
            start.wait()
            try:
                outcomes.append(accept_quote(answered, buyer, acceptance).reference)
            except Exception as error:  # reported to the assertion below
                outcomes.append(f"error: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=press) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    order = db.session.scalar(select(Order))
    assert outcomes == [order.reference] * 5
    assert count(Order) == 1
    assert stock_on_hand(besek().id) == 0


def test_the_shared_link_opens_for_the_facilitys_staff_in_the_back_office(
    client, staff, answered, facilities
):
    visitor = client.get(f"/quotes/{answered}")
    assert visitor.status_code == 302
    assert "/login" in visitor.headers["Location"]  # and back to the quote after signing in
    response = staff.get(f"/quotes/{answered}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/office/{facilities['banjarnegara']}/quotes/{answered}"
    )


def test_an_expired_quote_cannot_be_accepted_and_the_command_writes_it_down(app, buyer, answered):
    form = accept_form(buyer, answered)  # the page was opened while the offer held
    quote = the_quote()
    quote.valid_until = jakarta_today() - timedelta(days=1)
    db.session.commit()

    page = visible_text(buyer.get(f"/quotes/{answered}").get_data(as_text=True))
    assert "Expired" in page  # read as expired before the command has run
    assert "Accept the quote" not in page
    response = buyer.post(f"/quotes/{answered}/accept", data=form)
    assert response.status_code == 409
    assert "This quote has expired" in visible_text(response.get_data(as_text=True))
    assert count(Order) == 0
    assert stock_on_hand(besek().id) == 1600
    db.session.refresh(quote)
    assert quote.status == "answered"

    register_cli(app)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["quotes", "expire"])
    assert result.exit_code == 0, result.output
    assert "Quotes expired: 1" in result.output
    db.session.refresh(quote)
    assert quote.status == "expired"
    assert "Quotes expired: 0" in runner.invoke(args=["quotes", "expire"]).output


def test_a_quote_expires_at_midnight_where_its_facility_is(users, facilities):
    """At 00:30 in Ruteng (UTC+8) it is still 23:30 the day before in Banjarnegara (UTC+7)."""
    last_day = date(2026, 11, 20)
    ruteng_product = db.session.scalar(
        select(Product).where(Product.facility_id == facilities["ruteng"])
    )
    for product in (besek(), ruteng_product):
        db.session.add(
            Quote(
                buyer_id=users["buyer"].id,
                facility_id=product.facility_id,
                product_id=product.id,
                quantity=50,
                status=QuoteStatus.ANSWERED,
                unit_price=100,
                lead_time_days=10,
                valid_until=last_day,
            )
        )
    db.session.commit()

    assert expire_quotes(now=datetime(2026, 11, 20, 16, 30, tzinfo=UTC)) == 1
    expired = db.session.scalars(select(Quote).where(Quote.status == "expired")).all()
    assert [q.facility_id for q in expired] == [facilities["ruteng"]]
    assert expire_quotes(now=datetime(2026, 11, 20, 17, 30, tzinfo=UTC)) == 1
    assert expire_quotes(now=datetime(2026, 11, 20, 17, 30, tzinfo=UTC)) == 0


def test_a_changed_answer_is_never_accepted_blind(buyer, staff, answered, facilities):
    form = accept_form(buyer, answered)  # the seller reads Rp 115 ...
    answer(staff, facilities["banjarnegara"], answered, unit_price="120")  # ... staff correct it
    response = buyer.post(f"/quotes/{answered}/accept", data=form)
    assert response.status_code == 409
    assert "changed its answer" in visible_text(response.get_data(as_text=True))
    assert count(Order) == 0
    assert accept(buyer, answered).status_code == 302  # read again, then accepted
    assert db.session.scalar(select(Order)).lines[0].unit_price == 120


def test_delivery_needs_an_address_and_nothing_is_ordered_without_it(buyer, answered):
    response = accept(buyer, answered, delivery_method="delivery", delivery_address=" ")
    assert response.status_code == 422
    assert "delivery address" in visible_text(response.get_data(as_text=True))
    assert count(Order) == 0
    assert the_quote().status == "answered"


def test_the_seller_declines_and_the_quote_is_closed(buyer, staff, answered, facilities):
    form = accept_form(buyer, answered)
    response = post_form(buyer, f"/quotes/{answered}/decline", form_page=f"/quotes/{answered}")
    assert response.status_code == 302
    assert the_quote().status == "declined"
    assert buyer.post(f"/quotes/{answered}/accept", data=form).status_code == 409
    assert answer(staff, facilities["banjarnegara"], answered).status_code == 409
    assert count(Order) == 0
    assert the_quote().status == "declined"


def test_magetan_staff_cannot_see_or_answer_a_banjarnegara_quote(app, buyer, facilities):
    ask_for_quote(buyer, 5000)
    quote_id = the_quote().id
    magetan = signed_in(app, "staff.magetan@example.id")
    for facility in ("banjarnegara", "magetan"):
        url = f"/office/{facilities[facility]}/quotes/{quote_id}"
        assert magetan.get(url).status_code == 404
        response = post_form(
            magetan,
            url,
            {"unit_price": "1", "lead_time_days": "1", "valid_until": jakarta_today()},
            form_page=f"/office/{facilities['magetan']}/quotes",
        )
        assert response.status_code == 404
    assert magetan.get(f"/office/{facilities['banjarnegara']}/quotes").status_code == 404
    assert f"Quote {quote_id}" not in visible_text(
        magetan.get(f"/office/{facilities['magetan']}/quotes").get_data(as_text=True)
    )
    assert magetan.get(f"/quotes/{quote_id}").status_code == 404
    assert the_quote().status == "requested"
    assert the_quote().unit_price is None


def test_another_buyer_gets_a_404_for_the_sellers_quote(app, answered):
    other = signed_in(app, "buyer.two@example.id")
    assert other.get(f"/quotes/{answered}").status_code == 404
    for action in ("accept", "decline"):
        response = post_form(
            other,
            f"/quotes/{answered}/{action}",
            {"delivery_method": "pickup", "payment_method": "bank_transfer"},
            form_page="/quotes",
        )
        assert response.status_code == 404
    assert f"Quote {answered}" not in visible_text(other.get("/quotes").get_data(as_text=True))
    assert the_quote().status == "answered"
    assert count(Order) == 0


def test_bad_requests_get_a_message_and_store_nothing(buyer):
    whole_number = "Enter a whole number from 1 to 1,000,000."
    for quantity, specification, message in [
        ("0", "", whole_number),
        ("-1", "", whole_number),
        ("1.5", "", whole_number),
        ("1000001", "", whole_number),
        ("", "", whole_number),
        ("5000", "x" * 2001, "At most 2000 characters."),
    ]:
        response = ask_for_quote(buyer, quantity, specification)
        assert response.status_code == 422, quantity
        assert message in visible_text(response.get_data(as_text=True)), quantity
    assert count(Quote) == 0


def test_only_a_buyer_asks_and_only_for_a_product_on_sale(buyer, staff):
    assert staff.get(f"/quotes/new?product={BESEK}").status_code == 404
    assert buyer.get("/quotes/new?product=tidak-ada").status_code == 404
    assert buyer.get("/quotes/new").status_code == 404
    besek().active = False
    db.session.commit()
    assert buyer.get(f"/quotes/new?product={BESEK}").status_code == 404
    assert ask_for_quote(buyer, 5000).status_code == 404
    assert count(Quote) == 0


def test_bad_answers_get_a_message_and_store_nothing(buyer, staff, facilities):
    ask_for_quote(buyer, 5000)
    quote_id = the_quote().id
    rupiah = "from 0 to 1,000,000,000"
    days = "from 1 to 365"
    window = "from today to 90 days ahead"
    for field, value, message in [
        ("unit_price", "-1", rupiah),
        ("unit_price", "1000000001", rupiah),
        ("unit_price", "115.5", rupiah),
        ("unit_price", "", rupiah),
        ("lead_time_days", "0", days),
        ("lead_time_days", "366", days),
        ("valid_until", (jakarta_today() - timedelta(days=1)).isoformat(), window),
        ("valid_until", (jakarta_today() + timedelta(days=91)).isoformat(), window),
        ("valid_until", "2026-02-30", "Not a valid date"),
    ]:
        response = answer(staff, facilities["banjarnegara"], quote_id, **{field: value})
        assert response.status_code == 422, (field, value)
        assert message in visible_text(response.get_data(as_text=True)), (field, value)
    quote = the_quote()
    assert (quote.status, quote.unit_price, quote.valid_until) == ("requested", None, None)
    assert count(OutboxMessage) == 0
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "answer")) is None


def test_the_buyer_lists_their_own_quotes(buyer, answered):
    text = visible_text(buyer.get("/quotes").get_data(as_text=True))
    assert f"Quote {answered}" in text
    assert "IDR 115" in text  # Rp 115, as English writes it
    assert "Answered" in text


def test_staff_filter_their_quotes_by_status(buyer, staff, answered, facilities):
    ask_for_quote(buyer, 200, "Besek kecil 10 x 10 cm")
    small = db.session.scalar(select(Quote.id).where(Quote.quantity == 200))
    url = f"/office/{facilities['banjarnegara']}/quotes"
    answered_only = visible_text(staff.get(f"{url}?status=answered").get_data(as_text=True))
    assert f"Quote {answered}" in answered_only
    assert f"Quote {small}" not in answered_only
    requested = visible_text(staff.get(f"{url}?status=requested").get_data(as_text=True))
    assert f"Quote {small}" in requested
    assert f"Quote {answered}" not in requested
    quote = db.session.get(Quote, answered)
    quote.valid_until = jakarta_today() - timedelta(days=1)
    db.session.commit()
    expired = visible_text(staff.get(f"{url}?status=expired").get_data(as_text=True))
    assert f"Quote {answered}" in expired
    assert staff.get(f"{url}?status=lost").status_code == 400
