"""Writes to the WBP register and to production batches: one transaction each, audited, committed.

Each function checks the rules (`catalog.production`), makes the change, records it with
`shop.audit.record` and commits; a change the rules refuse raises `Refused` and changes nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shop import audit
from shop.extensions import db
from shop.i18n import gettext as _

from .. import csv_import
from ..models import (
    Batch,
    BatchParticipation,
    BatchStatus,
    ContributionBasis,
    Facility,
    Product,
    Wbp,
    WbpStatus,
)
from ..production import (
    Refused,
    check_finish,
    check_participants_editable,
    check_reopen,
    check_start,
    facility_today,
)

__all__ = ["Refused"]


def _number_taken(facility_id: int, registration_number: str, but: int | None = None) -> bool:
    stmt = select(Wbp.id).where(
        Wbp.facility_id == facility_id, Wbp.registration_number == registration_number
    )
    if but is not None:
        stmt = stmt.where(Wbp.id != but)
    return db.session.scalar(stmt.limit(1)) is not None


def _number_taken_message(registration_number: str) -> str:
    return _(
        "Registration number %(number)s is already in this facility's register.",
        number=registration_number,
    )


def _flush_or_refuse(message: str) -> None:
    """Flushes; a unique constraint hit by a concurrent request becomes a refusal, not a 500."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Refused(message) from None


def _lock(obj: Wbp | Batch) -> None:
    """Re-reads the row under a lock (PostgreSQL): its status cannot move until we commit.

    Two staff members releasing and transferring the same WBP, or an order allocating from a batch
    being reopened, then wait for each other instead of both passing the check. FOR NO KEY UPDATE,
    as checkout locks batches: a plain FOR UPDATE would also block a payment's ledger entries,
    whose foreign keys name the batch or WBP, and deadlock with it.
    """
    db.session.refresh(obj, with_for_update={"key_share": True})


# The WBP register


def create_wbp(facility_id: int, registration_number: str, name: str) -> Wbp:
    if _number_taken(facility_id, registration_number):
        raise Refused(_number_taken_message(registration_number))
    wbp = Wbp(facility_id=facility_id, registration_number=registration_number, name=name)
    db.session.add(wbp)
    _flush_or_refuse(_number_taken_message(registration_number))
    audit.record("create", wbp, facility_id=facility_id)
    db.session.commit()
    return wbp


def update_wbp(wbp: Wbp, registration_number: str, name: str) -> None:
    if _number_taken(wbp.facility_id, registration_number, but=wbp.id):
        raise Refused(_number_taken_message(registration_number))
    before = audit.snapshot(wbp)
    wbp.registration_number, wbp.name = registration_number, name
    _flush_or_refuse(_number_taken_message(registration_number))
    audit.record("update", wbp, facility_id=wbp.facility_id, before=before)
    db.session.commit()


def _check_active(wbp: Wbp) -> None:
    _lock(wbp)
    if wbp.status is not WbpStatus.ACTIVE:
        raise Refused(_("Only an active WBP can be released or transferred."))


def release_wbp(wbp: Wbp) -> None:
    """The record stays: premi already earned is still owed and is paid out later."""
    _check_active(wbp)
    before = audit.snapshot(wbp)
    wbp.status = WbpStatus.RELEASED
    audit.record("release", wbp, facility_id=wbp.facility_id, before=before)
    db.session.commit()


def transfer_wbp(wbp: Wbp, target: Facility) -> Wbp:
    """Moves a WBP to another facility; returns their new record there.

    The record here stays, marked transferred, because premi earned here is paid by this facility;
    work at the new facility is recorded on the new record, visible only to that facility.
    """
    _check_active(wbp)
    if target.id == wbp.facility_id:
        raise Refused(_("Choose another facility."))
    taken = _(
        "%(facility)s already has a WBP with registration number %(number)s.",
        facility=target.name,
        number=wbp.registration_number,
    )
    if _number_taken(target.id, wbp.registration_number):
        raise Refused(taken)
    before = audit.snapshot(wbp)
    wbp.status = WbpStatus.TRANSFERRED
    arrival = Wbp(facility_id=target.id, registration_number=wbp.registration_number, name=wbp.name)
    db.session.add(arrival)
    _flush_or_refuse(taken)
    audit.record(
        "transfer", wbp, facility_id=wbp.facility_id, before=before, extra={"to": target.slug}
    )
    audit.record("transfer_in", arrival, facility_id=target.id, extra={"from": wbp.facility.slug})
    db.session.commit()
    return arrival


def _record_import(facility: Facility, action: str, made: list[Any]) -> None:
    """One audit entry for the whole file, naming every record it created.

    An import is one act of one staff member, and `audit.record` flushes once per entry: an entry
    per row would make a 5,000-row file take many seconds (about 13 s on SQLite), one entry per
    file takes one. The ids listed answer "who added this record, and when" for each of them.
    """
    before = audit.snapshot(facility)  # nothing of the facility changes: only the extra is logged
    ids = ", ".join(str(obj.id) for obj in made)
    audit.record(
        action,
        facility,
        facility_id=facility.id,
        before=before,
        extra={"rows": len(made), "ids": ids},
    )


def import_wbp(facility: Facility, lines: list[csv_import.Line]) -> csv_import.Parsed:
    """Adds every WBP of the file, or none when any line is wrong."""
    registered = set(
        db.session.scalars(select(Wbp.registration_number).where(Wbp.facility_id == facility.id))
    )
    known_slugs = set(db.session.scalars(select(Facility.slug)))
    parsed = csv_import.parse_wbp(lines, facility.slug, known_slugs, registered)
    if not parsed.ok:
        return parsed
    made = [
        Wbp(facility_id=facility.id, registration_number=row.registration_number, name=row.name)
        for row in parsed.rows
    ]
    db.session.add_all(made)
    _flush_or_refuse(_("Another import or edit changed the register meanwhile. Try again."))
    _record_import(facility, "import_wbp", made)
    db.session.commit()
    return parsed


# Production batches


def plan_batch(facility_id: int, product: Product, code: str, basis: ContributionBasis) -> Batch:
    if product.facility_id != facility_id:
        raise Refused(_("Choose a product of this facility."))
    # The product's row lock makes two plans with the same code wait for each other.
    db.session.refresh(product, with_for_update=True)
    taken = db.session.scalar(
        select(Batch.id).where(Batch.product_id == product.id, Batch.code == code).limit(1)
    )
    if taken is not None:
        raise Refused(
            _(
                "%(product)s already has a batch with code %(code)s.",
                product=product.name,
                code=code,
            )
        )
    batch = Batch(product_id=product.id, code=code, contribution_basis=basis)
    db.session.add(batch)
    audit.record("plan", batch, facility_id=facility_id)
    db.session.commit()
    return batch


def start_batch(batch: Batch, facility: Facility) -> None:
    _lock(batch)
    before = audit.snapshot(batch)
    batch.status = check_start(batch.status)
    batch.started_on = facility_today(facility.timezone)
    audit.record("start", batch, facility_id=facility.id, before=before)
    db.session.commit()


def finish_batch(
    batch: Batch, facility: Facility, quantity_made: int, material_cost: int, finished_on: date
) -> None:
    """From now on the batch is stock on the storefront."""
    _lock(batch)
    before = audit.snapshot(batch)
    batch.status = check_finish(
        batch.status,
        len(batch.participations),
        batch.started_on,
        finished_on,
        facility_today(facility.timezone),
    )
    batch.quantity_made, batch.material_cost, batch.finished_on = (
        quantity_made,
        material_cost,
        finished_on,
    )
    audit.record("finish", batch, facility_id=facility.id, before=before)
    db.session.commit()


def reopen_batch(batch: Batch, facility: Facility) -> None:
    """Takes a finished batch out of stock for a correction, while nothing is allocated from it."""
    _lock(batch)
    before = audit.snapshot(batch)
    batch.status = check_reopen(batch.status, batch.quantity_allocated)
    audit.record("reopen", batch, facility_id=facility.id, before=before)
    db.session.commit()


def _already_participating(number: str) -> str:
    return _("WBP %(number)s is already a participant of this batch.", number=number)


def add_participant(batch: Batch, wbp: Wbp, contribution: int) -> BatchParticipation:
    _lock(batch)
    check_participants_editable(batch.status)
    if wbp.facility_id != batch.product.facility_id or wbp.status is not WbpStatus.ACTIVE:
        raise Refused(_("Choose an active WBP of this facility."))
    if any(p.wbp_id == wbp.id for p in batch.participations):
        raise Refused(_already_participating(wbp.registration_number))
    participation = BatchParticipation(batch_id=batch.id, wbp_id=wbp.id, contribution=contribution)
    db.session.add(participation)
    _flush_or_refuse(_already_participating(wbp.registration_number))
    audit.record("create", participation, facility_id=wbp.facility_id)
    db.session.commit()
    return participation


def remove_participant(participation: BatchParticipation, facility_id: int) -> None:
    batch = participation.batch
    _lock(batch)
    check_participants_editable(batch.status)
    before = audit.snapshot(participation)
    db.session.delete(participation)
    db.session.flush()
    # The row is gone, so the entry lists what it held (each field from its value to nothing).
    audit.record(
        "delete",
        participation,
        facility_id=facility_id,
        extra={key: [value, None] for key, value in before.items()},
    )
    db.session.commit()


def import_participants(facility: Facility, lines: list[csv_import.Line]) -> csv_import.Parsed:
    """Adds every participation of the file, or none when any line is wrong."""
    batch_rows = db.session.execute(
        select(Batch.id, Batch.code, Batch.status)
        .join(Product)
        .where(Product.facility_id == facility.id)
    ).all()
    batches = [
        csv_import.BatchRef(batch_id, code, status is BatchStatus.FINISHED)
        for batch_id, code, status in batch_rows
    ]
    makers = [
        csv_import.WbpRef(wbp_id, number, status is WbpStatus.ACTIVE)
        for wbp_id, number, status in db.session.execute(
            select(Wbp.id, Wbp.registration_number, Wbp.status).where(
                Wbp.facility_id == facility.id
            )
        )
    ]
    batch_ids = [b.id for b in batches]
    participating = set(
        db.session.execute(
            select(BatchParticipation.batch_id, BatchParticipation.wbp_id).where(
                BatchParticipation.batch_id.in_(batch_ids)
            )
        ).tuples()
    )
    parsed = csv_import.parse_participants(lines, batches, makers, participating)
    if not parsed.ok:
        return parsed
    touched = sorted({row.batch_id for row in parsed.rows})
    # Locked in id order (no deadlock with another import), then checked again: a batch finished
    # since it was read above takes no new participants.
    locked = db.session.scalars(
        select(Batch)
        .where(Batch.id.in_(touched))
        .order_by(Batch.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    for batch in locked:
        check_participants_editable(batch.status)
    made = [
        BatchParticipation(batch_id=row.batch_id, wbp_id=row.wbp_id, contribution=row.contribution)
        for row in parsed.rows
    ]
    db.session.add_all(made)
    _flush_or_refuse(_("Another import or edit changed these batches meanwhile. Try again."))
    _record_import(facility, "import_participants", made)
    db.session.commit()
    return parsed
