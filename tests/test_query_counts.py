"""Listing, product and a buyer's ordering pages run a bounded number of SQL statements."""

import re

import pytest
from sqlalchemy import func, select

from catalog.models import Batch, BatchStatus, Facility, PriceTier, Product, ProductPhoto, Programme
from shop.extensions import db


@pytest.fixture
def many_products(app_ctx):
    facility = Facility(
        slug="rutan-uji",
        name="Rutan Uji",
        kind="rutan",
        facility_class="IIB",
        city="Kota Uji",
        province="Jawa Barat",
        regional_office="Kanwil Uji",
    )
    programme = Programme(facility=facility, slug="besek", name="Besek", pieces_per_wbp_per_day=5)
    for n in range(60):
        product = Product(
            slug=f"besek-{n}",
            facility=facility,
            programme=programme,
            name=f"Besek {n:02d}",
            category="crafts",
            base_price=100 + n,
            tiers=[
                PriceTier(min_quantity=100, unit_price=90),
                PriceTier(min_quantity=500, unit_price=80),
            ],
            photos=[ProductPhoto(content_type="image/png", data=b"\x89PNG")],
        )
        product.batches = [
            Batch(code=f"B{n}", status=BatchStatus.FINISHED, quantity_made=10 + n),
            Batch(code=f"C{n}", status=BatchStatus.FINISHED, quantity_made=5),
        ]
        db.session.add(product)
    db.session.commit()


def statements_for(app, client, count_queries, url, page_size):
    app.config["PAGE_SIZE"] = page_size
    try:
        db.session.remove()
        with count_queries() as counter:
            response = client.get(url)
        assert response.status_code == 200
        return counter.count
    finally:
        app.config["PAGE_SIZE"] = 24


@pytest.mark.usefixtures("many_products")
@pytest.mark.parametrize(
    ("url", "most"),
    [
        # the storefront's three totals in one statement, the featured cards
        ("/", 2),
        # count, the page with its stock, photos and cheapest tiers, provinces
        ("/products", 3),
        ("/products?in_stock=1&q=besek", 3),
        # and the province's facilities for the facility filter
        ("/products?province=Jawa%20Barat", 4),
        ("/facilities/rutan-uji", 7),
    ],
)
def test_listing_queries_do_not_grow_with_page_size(app, client, count_queries, url, most):
    small = statements_for(app, client, count_queries, url, 5)
    large = statements_for(app, client, count_queries, url, 50)
    assert small == large
    assert large <= most


@pytest.mark.usefixtures("many_products")
def test_product_page_query_count_is_bounded(client, count_queries):
    product = db.session.scalar(select(Product).where(Product.slug == "besek-7"))
    assert product is not None
    db.session.remove()
    with count_queries() as counter:
        assert client.get("/products/besek-7").status_code == 200
    # the product with its stock and both maker counts, its tiers, its photos
    assert counter.count <= 3


def test_a_signed_in_buyer_ordering_runs_few_statements(client, users, count_queries):
    """The benchmark's buyer: product page, add to the cart, checkout, the confirmation.

    Each step counted as a request of its own, with nothing left in the session from the last.
    """
    from orders.models import Order
    from tests.helpers import csrf_token, login

    login(client, "buyer@example.id")
    slug = "besek-bambu-banjarnegara"
    product_id = db.session.scalar(select(Product.id).where(Product.slug == slug))
    token = csrf_token(client, f"/products/{slug}")

    def statements(method, url, expect, **kwargs):
        db.session.remove()
        with count_queries() as counter:
            response = client.open(url, method=method, **kwargs)
        assert response.status_code == expect, url
        return counter.count, response

    # the user and roles, and the product page's own (test_product_page_query_count_is_bounded)
    count, _page = statements("GET", f"/products/{slug}", 200)
    assert count <= 1 + 3
    # the user, the cart, the product on sale, the line written
    cart = {"csrf_token": token, "product_id": product_id, "quantity": 1600}
    count, _response = statements("POST", "/cart", 302, data=cart)
    assert count <= 4
    # the user, the cart, products with their tiers, makers, the buyer's address
    count, page = statements("GET", "/checkout", 200)
    assert count <= 5
    key = re.search(r'name="checkout_key" type="hidden" value="([^"]+)"', page.text).group(1)
    checkout = {
        "csrf_token": token,
        "checkout_key": key,
        "delivery_method": "pickup",
        "payment_method": "bank_transfer",
        "delivery_address": "",
        "note": "",
    }
    count, placed = statements("POST", "/checkout", 302, data=checkout)
    assert db.session.scalar(select(func.count(Order.id))) == 1
    # the user, the cart, the key checked twice, products with their tiers, batches locked,
    # makers, the order's rows, the year's first invoice number, the email, the cart emptied
    # (with the page cache on, one more after the commit: the product pages it forgets)
    assert count <= 19
    # the user, the orders with their facilities
    count, _page = statements("GET", placed.headers["Location"], 200)
    assert count <= 2
