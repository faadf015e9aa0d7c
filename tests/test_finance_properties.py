"""Property-based: random batches, contributions, split rules, orders and refunds through the
real services and database. Whatever happens, the ledger balances and nothing is lost."""

import itertools
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from catalog.models import (
    Batch,
    BatchParticipation,
    BatchStatus,
    Facility,
    Product,
    Programme,
    Wbp,
)
from finance import checks, events
from finance.models import Entry, LedgerAccount, Posting, SplitRuleRecord
from finance.split import SplitBase
from orders.checkout import place_orders
from orders.models import PaymentMethod
from payments import services
from payments.refunds import request_refund
from shop.extensions import db

from .orders_fixtures import checkout

serial = itertools.count()

batches = st.lists(
    st.tuples(
        st.integers(1, 400),  # quantity made
        st.integers(0, 200_000),  # material cost of the batch
        st.lists(st.integers(1, 300), min_size=1, max_size=7),  # contributions
    ),
    min_size=1,
    max_size=3,
)
rules = st.tuples(st.integers(0, 10_000), st.integers(0, 10_000), st.sampled_from(list(SplitBase)))


def balances() -> dict[int, int]:
    db.session.rollback()
    return dict(db.session.execute(select(LedgerAccount.id, LedgerAccount.balance)).tuples().all())


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    made=batches,
    rule=rules.filter(lambda r: r[0] + r[1] <= 10_000),
    price=st.integers(1, 50_000),
    share=st.floats(0.05, 1.0),
    steps=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=4),
)
def test_any_sale_and_refunds_keep_the_ledger_whole(
    users, facilities, made, rule, price, share, steps
):
    n = next(serial)
    facility = db.session.get(Facility, facilities["magetan"])
    programme = db.session.scalar(select(Programme).where(Programme.facility_id == facility.id))
    product = Product(
        slug=f"sifat-{n}", facility=facility, programme=programme, name=f"Uji sifat {n}",
        category="textiles", base_price=price,
    )  # fmt: skip
    for b, (quantity, cost, contributions) in enumerate(made):
        makers = [
            Wbp(facility=facility, registration_number=f"P{n}-{b}-{i}", name="Fiktif")
            for i in range(len(contributions))
        ]
        product.batches.append(
            Batch(
                code=f"S{n}-{b}", status=BatchStatus.FINISHED, finished_on=date(2026, 9, 1 + b),
                quantity_made=quantity, material_cost=cost,
                participations=[
                    BatchParticipation(wbp=w, contribution=c)
                    for w, c in zip(makers, contributions, strict=True)
                ],
            )
        )  # fmt: skip
    db.session.add(product)
    premi_bp, pnbp_bp, base = rule
    db.session.add(
        SplitRuleRecord(
            facility_id=facility.id, effective_from=date(2000 + n % 900, 1, 1),
            premi_bp=premi_bp, pnbp_bp=pnbp_bp, modal_bp=10_000 - premi_bp - pnbp_bp, base=base,
        )
    )  # fmt: skip
    db.session.commit()
    start = balances()

    stock = sum(q for q, _c, _w in made)
    quantity = max(1, int(stock * share))
    [order] = place_orders(users["buyer"], checkout({product.id: quantity}))
    staff = users["staff_magetan"]
    services.confirm_receipt(
        order.id, PaymentMethod.BANK_TRANSFER, order.total, date.today(), f"R{n}", staff
    )
    paid = balances()
    events.payment_received(order.id, services.now())  # the event again: nothing more
    assert balances() == paid
    assert sum(paid.values()) == 0  # every posting balanced, so all balances do too

    left = quantity
    line = order.lines[0].id
    for fraction in steps:
        units = min(left, max(1, int(quantity * fraction)))
        request_refund(order.id, {line: units}, "uji", staff)
        left -= units
        if not left:
            break
    if left:
        request_refund(order.id, {line: left}, "sisa", staff)
    after = balances()
    assert {k: v for k, v in after.items() if k in start} == start
    assert all(v == 0 for k, v in after.items() if k not in start)
    assert checks.problems() == []
    unbalanced = db.session.scalar(
        select(func.count()).select_from(
            select(Entry.posting_id)
            .join(Posting)
            .group_by(Entry.posting_id)
            .having(func.sum(Entry.amount) != 0)
            .subquery()
        )
    )
    assert unbalanced == 0
