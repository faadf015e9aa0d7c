"""The demo data command loads the field facilities and is safe to run twice."""

from sqlalchemy import func, select

from catalog.models import (
    Batch,
    BatchParticipation,
    Facility,
    PriceTier,
    Product,
    ProductPhoto,
    Wbp,
)
from shop.extensions import db

MODELS = (Facility, Product, PriceTier, ProductPhoto, Batch, Wbp, BatchParticipation)


def counts():
    return {m.__name__: db.session.scalar(select(func.count()).select_from(m)) for m in MODELS}


def test_seed_demo_twice_duplicates_nothing(app_ctx):
    runner = app_ctx.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    after_first = counts()
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert counts() == after_first
    assert after_first["Facility"] == 4
    assert after_first["Wbp"] == 23


def test_demo_besek_batch_is_the_field_report(demo):
    batch = db.session.scalar(select(Batch).where(Batch.code == "BSK-2026-10"))
    assert batch.quantity_made == 1600
    assert sorted((p.contribution for p in batch.participations), reverse=True) == [
        300,
        290,
        270,
        260,
        250,
        230,
    ]
    besek = batch.product
    assert besek.base_price == 125
    assert besek.facility.name == "Rutan Kelas IIB Banjarnegara"
