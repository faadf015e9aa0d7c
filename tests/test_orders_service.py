"""Placing, fulfilling and cancelling orders through the service layer, on both databases."""

import pytest
from sqlalchemy import func, select

from catalog.models import Batch, Facility, Product
from catalog.queries import stock_on_hand
from orders.checkout import CheckoutRefused, OutOfStock, place_orders
from orders.fulfilment import (
    FulfilmentRefused,
    cancel_line,
    cancel_order,
    change_status,
    record_shipment,
)
from orders.lifecycle import OrderStatus
from orders.models import Invoice, LineAllocation, Order, OrderLine
from shop.audit import AuditEntry
from shop.extensions import db

from .orders_fixtures import besek_in_two_batches, checkout


@pytest.fixture
def besek(facilities):
    facility = db.session.get(Facility, facilities["banjarnegara"])
    return besek_in_two_batches(facility)


def table_state():
    """Everything an order writes, to show a refused order wrote nothing."""
    db.session.rollback()
    return (
        tuple(db.session.execute(select(Batch.id, Batch.quantity_allocated).order_by(Batch.id))),
        db.session.scalar(select(func.count(Order.id))),
        db.session.scalar(select(func.count(OrderLine.id))),
        db.session.scalar(select(func.count(LineAllocation.id))),
        db.session.scalar(select(func.count(Invoice.id))),
    )


def test_the_salted_fish_seller_buys_all_1600_besek(users, besek):
    product, september, october = besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    [line] = order.lines
    assert [(a.batch_id, a.quantity) for a in line.allocations] == [
        (september.id, 900),
        (october.id, 700),
    ]
    assert line.unit_price == 125
    assert order.subtotal == 200_000
    assert order.total == 200_000
    assert stock_on_hand(product.id) == 0
    assert order.invoice.number.startswith("INV/")
    assert order.status is OrderStatus.PLACED


def test_a_smaller_order_takes_only_from_the_older_batch(users, besek):
    product, september, _october = besek
    [order] = place_orders(users["buyer"], checkout({product.id: 500}))
    assert [(a.batch_id, a.quantity) for a in order.lines[0].allocations] == [(september.id, 500)]
    assert stock_on_hand(product.id) == 1100


def test_price_tiers_apply_to_the_line(users, facilities):
    keset = db.session.scalar(select(Product).where(Product.slug == "keset-kain-perca-magetan"))
    [order] = place_orders(users["buyer"], checkout({keset.id: 100}))
    assert order.lines[0].unit_price == 13_500
    assert order.lines[0].tier_min_quantity == 100
    assert order.subtotal == 1_350_000


def test_a_mixed_cart_becomes_one_order_per_facility(users, besek):
    product, *_ = besek
    lele = db.session.scalar(select(Product).where(Product.slug == "lele-segar-serang"))
    orders = place_orders(users["buyer"], checkout({product.id: 200, lele.id: 20}))
    assert sorted(o.facility.name for o in orders) == [
        "Rutan Kelas IIB Banjarnegara",
        "Rutan Kelas IIB Serang",
    ]
    assert len({o.invoice.number for o in orders}) == 2


def test_the_same_checkout_placed_twice_is_one_order(users, besek):
    product, *_ = besek
    request = checkout({product.id: 400})
    first = place_orders(users["buyer"], request)
    second = place_orders(users["buyer"], request)
    assert [o.id for o in first] == [o.id for o in second]
    assert stock_on_hand(product.id) == 1200


def test_a_retry_whose_cart_the_first_attempt_emptied_gets_the_first_orders(users, besek):
    # The checkout form sent twice at once: the second request reads the cart after the first
    # placed the orders and emptied it; it must land on those orders, not on "cart is empty".
    product, *_ = besek
    first = place_orders(users["buyer"], checkout({product.id: 400}, key="k" * 32))
    again = place_orders(users["buyer"], checkout({}, key="k" * 32))
    assert [o.id for o in again] == [o.id for o in first]
    with pytest.raises(CheckoutRefused):
        place_orders(users["buyer_two"], checkout({}, key="k" * 32))


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (0, "paling sedikit 1"),
        (-20, "paling sedikit 1"),
        (1_000_020, "paling banyak 1.000.000"),
        (80, "pesanan minimum 100"),
        (110, "kemasan 20"),
    ],
)
def test_bad_quantities_are_refused_and_change_nothing(users, besek, quantity, message):
    product, *_ = besek
    before = table_state()
    with pytest.raises(CheckoutRefused) as refused:
        place_orders(users["buyer"], checkout({product.id: quantity}))
    assert message in " ".join(refused.value.messages)
    assert table_state() == before


def test_unknown_or_inactive_products_are_refused(users, besek):
    product, *_ = besek
    product.active = False
    db.session.commit()
    before = table_state()
    for items in ({product.id: 100}, {999_999: 100}):
        with pytest.raises(CheckoutRefused):
            place_orders(users["buyer"], checkout(items))
    assert table_state() == before


def test_stock_gone_between_cart_and_checkout_changes_nothing(users, besek):
    product, *_ = besek
    place_orders(users["buyer_two"], checkout({product.id: 1500}))
    before = table_state()
    with pytest.raises(OutOfStock) as refused:
        place_orders(users["buyer"], checkout({product.id: 200}))
    [line] = refused.value.lines
    assert (line.on_hand, line.made_to_order) == (100, 100)
    assert line.made_to_order_days is not None
    assert table_state() == before


def test_accepting_made_to_order_places_the_rest_for_production(users, besek):
    product, *_ = besek
    [order] = place_orders(users["buyer"], checkout({product.id: 2000}, accept=True))
    [line] = order.lines
    assert sum(a.quantity for a in line.allocations) == 1600
    assert line.made_to_order == 400
    assert line.made_to_order_days > 0
    assert stock_on_hand(product.id) == 0


def test_life_cycle_refuses_illegal_steps(users, besek):
    product, *_ = besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    staff = users["staff_banjarnegara"]
    with pytest.raises(FulfilmentRefused):
        change_status(order.id, OrderStatus.READY, staff)  # not confirmed yet
    with pytest.raises(FulfilmentRefused):
        change_status(order.id, OrderStatus.COMPLETED, staff)
    change_status(order.id, OrderStatus.CONFIRMED, staff)
    change_status(order.id, OrderStatus.READY, staff)
    assert [e.status for e in db.session.get(Order, order.id).events] == [
        OrderStatus.PLACED,
        OrderStatus.CONFIRMED,
        OrderStatus.READY,
    ]


def test_partial_shipments_are_recorded_and_add_up(users, besek):
    product, *_ = besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    staff = users["staff_banjarnegara"]
    line_id = order.lines[0].id
    change_status(order.id, OrderStatus.CONFIRMED, staff)
    record_shipment(order.id, {line_id: 1000}, picked_up=False, user=staff)
    assert db.session.get(Order, order.id).status is OrderStatus.CONFIRMED
    with pytest.raises(FulfilmentRefused):
        record_shipment(order.id, {line_id: 601}, picked_up=False, user=staff)
    record_shipment(order.id, {line_id: 600}, picked_up=False, user=staff)
    order = db.session.get(Order, order.id)
    assert order.lines[0].shipped == 1600
    assert sum(sl.quantity for s in order.shipments for sl in s.lines) == 1600
    assert order.status is OrderStatus.SHIPPED
    with pytest.raises(FulfilmentRefused):
        cancel_order(order.id, "terlambat", staff)
    change_status(order.id, OrderStatus.COMPLETED, staff)


def test_cancelling_an_order_releases_its_stock(users, besek):
    product, *_ = besek
    [order] = place_orders(users["buyer"], checkout({product.id: 1600}))
    with pytest.raises(FulfilmentRefused):
        cancel_order(order.id, "  ", users["buyer"])
    cancel_order(order.id, "Pembeli membatalkan", users["buyer"])
    assert stock_on_hand(product.id) == 1600
    order = db.session.get(Order, order.id)
    assert order.status is OrderStatus.CANCELLED
    assert all(a.released for a in order.lines[0].allocations)
    # Cancelling twice (a double click, two tabs) changes nothing: the first reason stands.
    audit_entries = db.session.scalar(select(func.count(AuditEntry.id)))
    again = cancel_order(order.id, "lagi", users["buyer"])
    assert again.status is OrderStatus.CANCELLED
    assert again.cancel_reason == "Pembeli membatalkan"
    assert db.session.scalar(select(func.count(AuditEntry.id))) == audit_entries
    assert stock_on_hand(product.id) == 1600


def test_cancelling_a_line_releases_that_line_only(users, besek):
    product, *_ = besek
    keset = db.session.scalar(select(Product).where(Product.slug == "keset-kain-perca-magetan"))
    besek_order, keset_order = place_orders(
        users["buyer"], checkout({product.id: 600, keset.id: 100})
    )
    cancel_line(besek_order.id, besek_order.lines[0].id, "salah hitung", users["buyer"])
    assert stock_on_hand(product.id) == 1600
    assert db.session.get(Order, besek_order.id).status is OrderStatus.CANCELLED
    assert stock_on_hand(keset.id) == 200
