"""Fifty buyers order ten each of a product with 100 on hand, at the same moment, from
several processes: exactly ten orders are placed and no unit is sold twice."""

import multiprocessing
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

from catalog.models import Batch, BatchStatus, Facility, Product
from catalog.queries import stock_on_hand
from orders.models import Invoice, LineAllocation, Order, OrderLine
from shop.accounts.models import Role, RoleGrant, User
from shop.extensions import db

from .concurrent_buyers import buy_concurrently

BUYERS = 50
PROCESSES = 5


@pytest.fixture
def hot_product(facilities):
    facility = db.session.get(Facility, facilities["magetan"])
    keset = db.session.scalar(select(Product).where(Product.slug == "keset-kain-perca-magetan"))
    product = Product(
        slug="keset-rebutan",
        facility=facility,
        programme=keset.programme,
        name="Keset rebutan",
        category="textiles",
        base_price=15_000,
        min_order_qty=10,
        order_multiple=10,
        batches=[
            Batch(
                code="A",
                status=BatchStatus.FINISHED,
                finished_on=date(2026, 9, 1),
                quantity_made=60,
            ),
            Batch(
                code="B",
                status=BatchStatus.FINISHED,
                finished_on=date(2026, 10, 1),
                quantity_made=40,
            ),
        ],
    )
    db.session.add(product)
    buyers = []
    for n in range(BUYERS):
        user = User(email=f"pembeli{n}@example.id", name=f"Pembeli {n}", password_hash="x")
        user.grants = [RoleGrant(role=Role.BUYER)]
        buyers.append(user)
    db.session.add_all(buyers)
    db.session.commit()
    return product.id, [u.id for u in buyers]


def test_fifty_concurrent_buyers_never_oversell(app, hot_product):
    product_id, buyer_ids = hot_product
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    groups = [buyer_ids[i::PROCESSES] for i in range(PROCESSES)]
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        results = pool.starmap(buy_concurrently, [(url, g, product_id, 10) for g in groups])
    outcomes = Counter(outcome for result in results for outcome in result.values())

    assert outcomes == {"placed 10": 10, "out of stock, 10 offered made to order": 40}, outcomes
    db.session.rollback()
    assert stock_on_hand(product_id) == 0
    batches = db.session.scalars(select(Batch).where(Batch.product_id == product_id)).all()
    assert all(b.quantity_allocated == b.quantity_made for b in batches)
    allocated = db.session.scalar(
        select(func.sum(LineAllocation.quantity))
        .join(OrderLine)
        .where(OrderLine.product_id == product_id)
    )
    assert allocated == 100
    # Nothing half-written: every order has its one line, its allocations and its invoice.
    assert db.session.scalar(select(func.count(Order.id))) == 10
    assert db.session.scalar(select(func.count(OrderLine.id))) == 10
    assert db.session.scalar(select(func.count(Invoice.id))) == 10
    numbers = db.session.scalars(select(Invoice.sequence)).all()
    assert sorted(numbers) == list(range(1, 11))  # sequential, no gap, no duplicate
