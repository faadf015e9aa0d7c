"""Field data for order tests: the Banjarnegara besek in two finished batches."""

from __future__ import annotations

import uuid
from datetime import date

from catalog.models import (
    Batch,
    BatchParticipation,
    BatchStatus,
    Facility,
    Product,
    Programme,
    Wbp,
)
from orders.checkout import CheckoutRequest
from orders.models import DeliveryMethod, PaymentMethod
from shop.extensions import db


def besek_in_two_batches(facility: Facility) -> tuple[Product, Batch, Batch]:
    """1,600 besek at Rp 125: 900 finished in September, 700 in October, six makers."""
    programme = db.session.scalar(
        db.select(Programme).where(Programme.facility_id == facility.id, Programme.slug == "besek")
    )
    product = Product(
        slug=f"besek-uji-{uuid.uuid4().hex[:6]}",
        facility=facility,
        programme=programme,
        name="Besek bambu isi ikan asin",
        category="crafts",
        base_price=125,
        min_order_qty=100,
        order_multiple=20,
    )
    makers = db.session.scalars(db.select(Wbp).where(Wbp.facility_id == facility.id)).all()[:6]
    october = Batch(
        code="BSK-OKT",
        status=BatchStatus.FINISHED,
        finished_on=date(2026, 10, 16),
        quantity_made=700,
        material_cost=17_500,
    )
    september = Batch(
        code="BSK-SEP",
        status=BatchStatus.FINISHED,
        finished_on=date(2026, 9, 30),
        quantity_made=900,
        material_cost=22_500,
    )
    for batch in (october, september):
        batch.participations = [BatchParticipation(wbp=w, contribution=100) for w in makers]
    product.batches = [october, september]
    db.session.add(product)
    db.session.commit()
    return product, september, october


def checkout(items, *, key=None, accept=False, delivery=DeliveryMethod.PICKUP, address=""):
    return CheckoutRequest(
        items=items,
        delivery_method=delivery,
        delivery_address=address,
        payment_method=PaymentMethod.BANK_TRANSFER,
        checkout_key=key or uuid.uuid4().hex,
        accept_made_to_order=accept,
    )
