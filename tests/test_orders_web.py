"""The buyer's way through the pages: product page, cart, checkout, their orders."""

import re

from sqlalchemy import select

from catalog.models import Product
from catalog.queries import stock_on_hand
from orders.models import CartLine, Order
from shop.extensions import db

from .helpers import csrf_token, login, post_form, visible_text


def besek_id():
    return db.session.scalar(select(Product.id).where(Product.slug == "besek-bambu-banjarnegara"))


def add_to_cart(client, product_id, quantity):
    return post_form(
        client,
        "/cart",
        {"product_id": product_id, "quantity": quantity},
        form_page="/products/besek-bambu-banjarnegara",
    )


def checkout_form(client, **overrides):
    html = client.get("/checkout").get_data(as_text=True)
    key = re.search(r'name="checkout_key" type="hidden" value="([^"]+)"', html).group(1)
    data = {
        "csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1),
        "checkout_key": key,
        "delivery_method": "pickup",
        "payment_method": "bank_transfer",
        "delivery_address": "",
        "note": "",
    }
    data.update(overrides)
    return data


def test_visitor_cart_follows_them_into_their_account(client, users):
    assert add_to_cart(client, besek_id(), 1600).status_code == 302
    assert "Rp 200.000" in visible_text(client.get("/cart").get_data(as_text=True))
    login(client, "buyer@example.id")
    text = visible_text(client.get("/cart").get_data(as_text=True))
    assert "Besek bambu" in text
    assert "Rp 200.000" in text


def test_adding_a_product_again_changes_its_quantity_in_the_buyers_cart(client, users):
    login(client, "buyer@example.id")
    add_to_cart(client, besek_id(), 1600)
    add_to_cart(client, besek_id(), 800)
    assert db.session.scalars(select(CartLine.quantity)).all() == [800]
    assert "Rp 100.000" in visible_text(client.get("/cart").get_data(as_text=True))


def test_the_cart_explains_the_rule_and_offers_the_nearest_quantity(client, users):
    login(client, "buyer@example.id")
    add_to_cart(client, besek_id(), 1610)
    text = visible_text(client.get("/cart").get_data(as_text=True))
    assert "kemasan 20" in text
    assert "Pakai 1.620 buah" in text
    assert client.get("/checkout").status_code == 200  # shown, but placing is refused


def test_buyer_orders_1600_besek_through_the_pages(client, users):
    login(client, "buyer@example.id")
    add_to_cart(client, besek_id(), 1600)
    response = client.post("/checkout", data=checkout_form(client))
    assert response.status_code == 302
    order = db.session.scalar(select(Order))
    assert order.subtotal == 200_000
    assert stock_on_hand(besek_id()) == 0
    page = visible_text(client.get(response.headers["Location"]).get_data(as_text=True))
    assert order.reference in page
    detail = visible_text(client.get(f"/orders/{order.reference}").get_data(as_text=True))
    assert "Rp 200.000" in detail
    assert "Dipesan" in detail  # status history, in Indonesian
    # The cart is empty after placing.
    assert "Keranjang Anda kosong" in visible_text(client.get("/cart").get_data(as_text=True))


def test_a_price_sent_by_the_client_is_ignored(client, users):
    login(client, "buyer@example.id")
    post_form(
        client,
        "/cart",
        {"product_id": besek_id(), "quantity": 1600, "unit_price": 1, "price": 1},
        form_page="/products/besek-bambu-banjarnegara",
    )
    client.post("/checkout", data=checkout_form(client, subtotal=1, unit_price=1))
    assert db.session.scalar(select(Order.subtotal)) == 200_000


def test_bad_quantities_in_the_cart_get_a_clear_400(client, users):
    for quantity in ("0", "-5", "1.5", "abc", "1000001"):
        response = add_to_cart(client, besek_id(), quantity)
        assert response.status_code == 400, quantity
        assert "bilangan bulat dari 1 sampai 1.000.000" in visible_text(
            response.get_data(as_text=True)
        )
    assert add_to_cart(client, 999_999, 100).status_code == 404


def test_stock_gone_at_checkout_is_a_clear_409_and_changes_nothing(client, app, users):
    login(client, "buyer@example.id")
    add_to_cart(client, besek_id(), 1600)
    data = checkout_form(client)
    other = app.test_client()
    login(other, "buyer.two@example.id")
    add_to_cart(other, besek_id(), 100)
    assert other.post("/checkout", data=checkout_form(other)).status_code == 302
    response = client.post("/checkout", data=data)
    assert response.status_code == 409
    assert "dibuat sesuai pesanan" in visible_text(response.get_data(as_text=True))
    assert db.session.scalar(select(Order).where(Order.buyer_id == users["buyer"].id)) is None
    assert stock_on_hand(besek_id()) == 1500


def test_another_buyers_order_is_a_404(client, app, users):
    login(client, "buyer@example.id")
    add_to_cart(client, besek_id(), 200)
    client.post("/checkout", data=checkout_form(client))
    reference = db.session.scalar(select(Order.reference))
    other = app.test_client()
    login(other, "buyer.two@example.id")
    assert other.get(f"/orders/{reference}").status_code == 404
    token = csrf_token(other, "/account")
    response = other.post(
        f"/orders/{reference}/cancel", data={"csrf_token": token, "reason": "iseng"}
    )
    assert response.status_code == 404
    assert db.session.scalar(select(Order.status)) == "placed"


def test_buyer_cancels_a_placed_order_and_stock_returns(client, users):
    login(client, "buyer@example.id")
    add_to_cart(client, besek_id(), 1600)
    client.post("/checkout", data=checkout_form(client))
    reference = db.session.scalar(select(Order.reference))
    response = post_form(
        client,
        f"/orders/{reference}/cancel",
        {"reason": "Salah pesan"},
        form_page=f"/orders/{reference}",
    )
    assert response.status_code == 302
    assert stock_on_hand(besek_id()) == 1600
