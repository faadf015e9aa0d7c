"""Demo bank accounts of the four demo facilities. Every account number here is invented."""

from __future__ import annotations

from sqlalchemy import select

from catalog.models import Facility
from shop.extensions import db

from .models import BankAccount

# Facility slug -> (bank, account number, account holder). Regional banks and the state banks
# are what facilities in these provinces use; the numbers follow no real bank's scheme.
ACCOUNTS: dict[str, tuple[str, str, str]] = {
    "rutan-banjarnegara": ("Bank Jateng", "2-043-01234-5", "RUTAN KELAS IIB BANJARNEGARA"),
    "rutan-magetan": ("Bank Jatim", "0151-000-777", "RUTAN KELAS IIB MAGETAN"),
    "rutan-ruteng": ("Bank NTT", "018-02-000456-1", "RUTAN KELAS IIB RUTENG"),
    "rutan-serang": ("Bank BJB", "0098-7654-32100", "RUTAN KELAS IIB SERANG"),
}


def seed() -> None:
    """Adds the account of each demo facility that has none; one edited since is left alone."""
    facilities = db.session.execute(
        select(Facility.slug, Facility.id).where(Facility.slug.in_(ACCOUNTS))
    ).all()
    for slug, facility_id in facilities:
        if db.session.get(BankAccount, facility_id) is None:
            bank, number, holder = ACCOUNTS[slug]
            db.session.add(
                BankAccount(facility_id=facility_id, bank=bank, number=number, holder=holder)
            )
    db.session.commit()
