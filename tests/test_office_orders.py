"""The facility back office for orders, through HTTP as staff of Rutan Banjarnegara use it.

A salted-fish seller in Kelurahan Semarang orders all 1,600 besek (Rp 200.000); staff confirm the
order, hand the besek over in two deliveries, and complete it. Refused actions change nothing,
other facilities' staff see nothing, and finance may look but not act.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from catalog.models import Facility, Product
from catalog.queries import stock_on_hand
from orders.checkout import place_orders
from orders.lifecycle import OrderStatus
from orders.models import DeliveryMethod, Order, OrderEvent, OrderLine, Shipment, ShipmentLine
from orders.office import whatsapp_url
from orders.office_forms import available_actions, next_statuses
from shop.audit import AuditEntry
from shop.extensions import db

from .helpers import login, post_form, visible_text
from .orders_fixtures import besek_in_two_batches, checkout

SEMARANG = "Jl. Pasar Ikan 7, Kelurahan Semarang, Banjarnegara"


@pytest.fixture
def besek(facilities):
    facility = db.session.get(Facility, facilities["banjarnegara"])
    product, _september, _october = besek_in_two_batches(facility)
    return product


@pytest.fixture
def order(users, besek) -> Order:
    """All 1,600 besek, to be delivered to the seller's stall."""
    [placed] = place_orders(
        users["buyer"],
        checkout({besek.id: 1600}, delivery=DeliveryMethod.DELIVERY, address=SEMARANG),
    )
    return placed


def order_url(facilities, order_id: int, action: str = "", facility: str = "banjarnegara") -> str:
    url = f"/office/{facilities[facility]}/orders/{order_id}"
    return f"{url}/{action}" if action else url


def act(client, facilities, order_id, action, data, facility="banjarnegara", **kw):
    """Posts one of the order page's forms, with the token from the facility's office page."""
    return post_form(
        client,
        order_url(facilities, order_id, action, facility),
        data,
        form_page=f"/office/{facilities[facility]}/",
        **kw,
    )


def fresh(order_id: int) -> Order:
    db.session.expire_all()
    return db.session.get(Order, order_id)


def order_state(order_id: int):
    """Everything an action on an order writes, to show a refused action wrote nothing."""
    db.session.expire_all()
    found = db.session.get(Order, order_id)
    return (
        found.status,
        found.delivery_fee,
        found.subtotal,
        tuple((line.shipped, line.cancelled) for line in found.lines),
        tuple(a.released for line in found.lines for a in line.allocations),
        db.session.scalar(select(func.count(OrderEvent.id))),
        db.session.scalar(select(func.count(Shipment.id))),
        db.session.scalar(select(func.count(AuditEntry.id))),
    )


def test_staff_confirm_deliver_1600_besek_in_two_handovers_and_complete(
    client, facilities, users, order
):
    client.set_cookie("lang", "en")
    login(client, "staff.banjarnegara@example.id")
    line_id = order.lines[0].id

    listing = visible_text(client.get(f"/office/{facilities['banjarnegara']}/orders").text)
    assert order.reference in listing
    assert "Toko Ikan Asin buyer" in listing
    assert "1,600" in listing  # still to hand over

    page = visible_text(client.get(order_url(facilities, order.id)).text)
    assert "BSK-SEP 900" in page and "BSK-OKT 700" in page
    assert "081234567890" in page and "Ibu Sari" in page and "buyer@example.id" in page
    assert SEMARANG in page
    assert "Mark as Confirmed" in page
    assert "Mark as Completed" not in page

    assert act(client, facilities, order.id, "status", {"status": "confirmed"}).status_code == 302
    response = act(client, facilities, order.id, "delivery-fee", {"delivery_fee": "15000"})
    assert response.status_code == 302
    assert fresh(order.id).total == 215_000

    first = {f"quantity_{line_id}": "1000", "handover": "shipped", "shipment_note": "Pikap pagi"}
    assert act(client, facilities, order.id, "shipments", first).status_code == 302
    assert fresh(order.id).status is OrderStatus.CONFIRMED
    assert fresh(order.id).lines[0].shipped == 1000
    page = visible_text(client.get(order_url(facilities, order.id)).text)
    assert "600 pcs still to hand over" in page

    second = {f"quantity_{line_id}": "600", "handover": "shipped", "shipment_note": ""}
    assert act(client, facilities, order.id, "shipments", second).status_code == 302
    shipped = fresh(order.id)
    assert shipped.status is OrderStatus.SHIPPED
    assert shipped.lines[0].shipped == 1600
    assert sorted(sl.quantity for s in shipped.shipments for sl in s.lines) == [600, 1000]

    assert act(client, facilities, order.id, "status", {"status": "completed"}).status_code == 302
    assert fresh(order.id).status is OrderStatus.COMPLETED
    assert [e.status for e in fresh(order.id).events] == [
        OrderStatus.PLACED,
        OrderStatus.CONFIRMED,
        OrderStatus.READY,
        OrderStatus.SHIPPED,
        OrderStatus.COMPLETED,
    ]
    listing = visible_text(
        client.get(f"/office/{facilities['banjarnegara']}/orders?status=completed").text
    )
    assert order.reference in listing


def test_an_illegal_step_posted_directly_is_refused_and_changes_nothing(
    client, facilities, users, order
):
    client.set_cookie("lang", "en")
    login(client, "staff.banjarnegara@example.id")
    before = order_state(order.id)

    response = act(client, facilities, order.id, "status", {"status": "completed"})
    assert response.status_code == 409
    assert "cannot go from" in visible_text(response.text)
    # Handovers and cancellation have forms of their own, not a status button.
    for status in ("shipped", "cancelled", "bogus", ""):
        response = act(client, facilities, order.id, "status", {"status": status})
        assert response.status_code == 422
    assert order_state(order.id) == before

    # Goods cannot leave before the order is confirmed.
    line_id = order.lines[0].id
    early = {f"quantity_{line_id}": "100", "handover": "shipped"}
    response = act(client, facilities, order.id, "shipments", early)
    assert response.status_code == 409
    assert order_state(order.id) == before


def test_shipping_more_than_is_left_is_refused(client, facilities, users, order):
    client.set_cookie("lang", "en")
    login(client, "staff.banjarnegara@example.id")
    line_id = order.lines[0].id
    act(client, facilities, order.id, "status", {"status": "confirmed"})
    act(client, facilities, order.id, "delivery-fee", {"delivery_fee": "15000"})
    ship = {f"quantity_{line_id}": "1000", "handover": "shipped"}
    assert act(client, facilities, order.id, "shipments", ship).status_code == 302
    before = order_state(order.id)

    for quantity in ("601", "-5", "banyak"):
        too_much = {f"quantity_{line_id}": quantity, "handover": "shipped"}
        response = act(client, facilities, order.id, "shipments", too_much)
        assert response.status_code == 422, quantity
    assert "from 0 to 600" in visible_text(response.text) or "integer" in response.text
    nothing = {f"quantity_{line_id}": "0", "handover": "shipped"}
    response = act(client, facilities, order.id, "shipments", nothing)
    assert response.status_code == 422
    assert "at least one line" in visible_text(response.text)
    assert order_state(order.id) == before
    assert fresh(order.id).lines[0].shipped == 1000


def test_cancelling_releases_the_stock_and_shows_in_the_history(
    client, facilities, users, besek, order
):
    client.set_cookie("lang", "en")
    login(client, "staff.banjarnegara@example.id")
    assert stock_on_hand(besek.id) == 0
    before = order_state(order.id)

    response = act(client, facilities, order.id, "cancel", {"reason": "  "})
    assert response.status_code == 422
    assert order_state(order.id) == before

    reason = "Pembeli membatalkan: kapal ikan tidak berangkat"
    assert act(client, facilities, order.id, "cancel", {"reason": reason}).status_code == 302
    assert stock_on_hand(besek.id) == 1600
    assert fresh(order.id).status is OrderStatus.CANCELLED
    page = visible_text(client.get(order_url(facilities, order.id)).text)
    assert f"Cancelled · Staff Banjarnegara · {reason}" in page
    assert "returned to stock" in page

    # Cancelling twice (a double click) releases nothing more and keeps the first reason.
    assert act(client, facilities, order.id, "cancel", {"reason": "lagi"}).status_code == 302
    assert stock_on_hand(besek.id) == 1600
    assert fresh(order.id).cancel_reason == reason


def test_cancelling_one_line_releases_that_line_only(client, facilities, users, besek):
    client.set_cookie("lang", "en")
    tas = db.session.scalar(select(Product).where(Product.slug == "tas-rajut-banjarnegara"))
    [order] = place_orders(users["buyer"], checkout({besek.id: 1600, tas.id: 10}))
    tas_line = next(line for line in order.lines if line.product_id == tas.id)
    login(client, "staff.banjarnegara@example.id")
    assert "Cancel one line" in visible_text(client.get(order_url(facilities, order.id)).text)

    data = {"line_id": str(tas_line.id), "line_reason": "Stok benang habis"}
    assert act(client, facilities, order.id, "cancel-line", data).status_code == 302
    assert stock_on_hand(tas.id) == 40
    assert stock_on_hand(besek.id) == 0
    cancelled = fresh(order.id)
    assert cancelled.status is OrderStatus.PLACED
    assert cancelled.subtotal == 200_000

    # The same line again is refused; a line of another order is not found.
    assert act(client, facilities, order.id, "cancel-line", data).status_code == 409
    [other] = place_orders(users["buyer_two"], checkout({tas.id: 2}))
    foreign = {"line_id": str(other.lines[0].id), "line_reason": "salah"}
    assert act(client, facilities, order.id, "cancel-line", foreign).status_code == 404
    assert stock_on_hand(tas.id) == 38


def test_the_list_filters_by_status_and_reference(client, facilities, users, besek):
    client.set_cookie("lang", "en")
    [confirmed] = place_orders(users["buyer"], checkout({besek.id: 1000}))
    [placed] = place_orders(users["buyer_two"], checkout({besek.id: 600}))
    login(client, "staff.banjarnegara@example.id")
    act(client, facilities, confirmed.id, "status", {"status": "confirmed"}, follow_redirects=True)
    url = f"/office/{facilities['banjarnegara']}/orders"

    everything = visible_text(client.get(url).text)
    # Newest first.
    assert everything.index(placed.reference) < everything.index(confirmed.reference)
    only_confirmed = visible_text(client.get(f"{url}?status=confirmed").text)
    assert confirmed.reference in only_confirmed and placed.reference not in only_confirmed
    by_reference = visible_text(client.get(f"{url}?q={placed.reference[3:].lower()}").text)
    assert placed.reference in by_reference and confirmed.reference not in by_reference
    assert "Toko Ikan Asin buyer_two" in by_reference

    response = client.get(f"{url}?status=bogus")
    assert response.status_code == 400
    assert "Unknown value for status: bogus" in visible_text(response.text)
    assert client.get(f"{url}?q={'K' * 40}").status_code == 400


def test_the_list_runs_a_bounded_number_of_queries(
    app, client, facilities, users, besek, count_queries
):
    login(client, "staff.banjarnegara@example.id")
    url = f"/office/{facilities['banjarnegara']}/orders"

    def statements() -> int:
        with count_queries() as counter:
            assert client.get(url).status_code == 200
        return counter.count

    place_orders(users["buyer"], checkout({besek.id: 100}))
    with_one = statements()
    for n in range(6):
        buyer = users["buyer_two"] if n % 2 else users["buyer"]
        place_orders(buyer, checkout({besek.id: 100}))
    assert statements() == with_one


def test_magetan_staff_find_nothing_of_banjarnegara(client, facilities, users, order):
    login(client, "staff.magetan@example.id")
    before = order_state(order.id)
    for facility in ("banjarnegara", "magetan"):
        assert client.get(order_url(facilities, order.id, facility=facility)).status_code == 404
        for action, data in [
            ("status", {"status": "confirmed"}),
            ("delivery-fee", {"delivery_fee": "0"}),
            ("shipments", {f"quantity_{order.lines[0].id}": "1", "handover": "shipped"}),
            ("cancel", {"reason": "bukan pesanan kami"}),
            ("cancel-line", {"line_id": order.lines[0].id, "line_reason": "bukan"}),
        ]:
            response = act(client, facilities, order.id, action, data, facility="magetan")
            assert response.status_code == 404
            response = post_form(
                client,
                order_url(facilities, order.id, action, "banjarnegara"),
                data,
                form_page=f"/office/{facilities['magetan']}/",
            )
            assert response.status_code == 404
    assert client.get(f"/office/{facilities['banjarnegara']}/orders").status_code == 404
    magetan_list = visible_text(client.get(f"/office/{facilities['magetan']}/orders").text)
    assert order.reference not in magetan_list
    assert order_state(order.id) == before


def test_finance_see_the_order_but_cannot_act(client, facilities, users, order):
    client.set_cookie("lang", "en")
    login(client, "finance.banjarnegara@example.id")
    before = order_state(order.id)
    assert order.reference in client.get(f"/office/{facilities['banjarnegara']}/orders").text
    page = client.get(order_url(facilities, order.id))
    assert page.status_code == 200
    assert "BSK-SEP" in page.text
    assert "Next steps" not in page.text and "Cancel the order" not in page.text
    for action, data in [
        ("status", {"status": "confirmed"}),
        ("delivery-fee", {"delivery_fee": "15000"}),
        ("shipments", {f"quantity_{order.lines[0].id}": "1", "handover": "shipped"}),
        ("cancel", {"reason": "keuangan"}),
        ("cancel-line", {"line_id": order.lines[0].id, "line_reason": "keuangan"}),
    ]:
        assert act(client, facilities, order.id, action, data).status_code == 404
    assert order_state(order.id) == before


def test_the_delivery_fee_is_checked(client, facilities, users, besek, order):
    client.set_cookie("lang", "en")
    login(client, "staff.banjarnegara@example.id")
    before = order_state(order.id)
    for fee in ("-1", "100000001", "lima belas ribu", ""):
        response = act(client, facilities, order.id, "delivery-fee", {"delivery_fee": fee})
        assert response.status_code == 422, fee
    assert order_state(order.id) == before

    [pickup] = place_orders(users["buyer_two"], checkout({besek.id: 100}, accept=True))
    assert "Delivery fee (Rp)" not in client.get(order_url(facilities, pickup.id)).text
    pickup_before = order_state(pickup.id)
    response = act(client, facilities, pickup.id, "delivery-fee", {"delivery_fee": "15000"})
    assert response.status_code == 409
    assert order_state(pickup.id) == pickup_before


def test_every_action_is_in_the_audit_log_under_the_staff_member(client, facilities, users, besek):
    tas = db.session.scalar(select(Product).where(Product.slug == "tas-rajut-banjarnegara"))
    [delivered] = place_orders(
        users["buyer"],
        checkout({besek.id: 1600, tas.id: 5}, delivery=DeliveryMethod.DELIVERY, address=SEMARANG),
    )
    [dropped] = place_orders(users["buyer_two"], checkout({tas.id: 3}))
    tas_line = next(line for line in delivered.lines if line.product_id == tas.id)
    besek_line = next(line for line in delivered.lines if line.product_id == besek.id)
    login(client, "staff.banjarnegara@example.id")

    steps = [
        (delivered.id, "cancel-line", {"line_id": tas_line.id, "line_reason": "Benang habis"}),
        (delivered.id, "status", {"status": "confirmed"}),
        (delivered.id, "delivery-fee", {"delivery_fee": "15000"}),
        (delivered.id, "shipments", {f"quantity_{besek_line.id}": "1600", "handover": "shipped"}),
        (dropped.id, "cancel", {"reason": "Pembeli tidak bisa dihubungi"}),
    ]
    for order_id, action, data in steps:
        assert act(client, facilities, order_id, action, data).status_code == 302, action
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.entity) for e in entries] == [
        ("cancel_line", "order_line"),
        ("status", "customer_order"),
        ("delivery_fee", "customer_order"),
        ("shipment", "shipment"),
        ("cancel", "customer_order"),
    ]
    assert {e.user_id for e in entries} == {users["staff_banjarnegara"].id}
    assert {e.facility_id for e in entries} == {facilities["banjarnegara"]}
    assert db.session.scalar(select(func.sum(ShipmentLine.quantity))) == 1600


def test_status_buttons_follow_the_life_cycle():
    assert next_statuses(OrderStatus.PLACED) == [OrderStatus.CONFIRMED]
    assert next_statuses(OrderStatus.CONFIRMED) == [OrderStatus.IN_PRODUCTION, OrderStatus.READY]
    assert next_statuses(OrderStatus.READY) == []  # handed over through the shipment form
    assert next_statuses(OrderStatus.SHIPPED) == [OrderStatus.COMPLETED]
    assert next_statuses(OrderStatus.CANCELLED) == []


def test_a_partly_handed_over_order_offers_only_what_the_service_would_allow():
    besek = OrderLine(id=1, quantity=1600, shipped=1000, cancelled=False)
    tas = OrderLine(id=2, quantity=5, shipped=0, cancelled=False)
    order = Order(
        status=OrderStatus.CONFIRMED,
        delivery_method=DeliveryMethod.DELIVERY,
        lines=[besek, tas],
        shipments=[Shipment()],
    )
    actions = available_actions(order)
    assert actions.statuses == [OrderStatus.IN_PRODUCTION, OrderStatus.READY]
    assert actions.shipment
    assert not actions.delivery_fee  # fixed before the first goods left
    assert not actions.cancel_order  # goods have left
    assert actions.cancellable_lines == [tas] and actions.cancel_line
    order.shipments = []
    order.status = OrderStatus.READY
    assert available_actions(order).delivery_fee  # nothing has left yet


@pytest.mark.parametrize(
    ("phone", "url"),
    [
        ("081234567890", "https://wa.me/6281234567890"),
        ("+62 812-3456-7890", "https://wa.me/6281234567890"),
        ("(0286) 591234", "https://wa.me/62286591234"),
        ("12345", None),
        ("", None),
    ],
)
def test_a_buyer_phone_becomes_a_whatsapp_link(phone, url):
    assert whatsapp_url(phone) == url
