"""Back office: the WBP register, production batches and participants, and CSV imports.

Staff of the facility (and admin) only: anyone else, and any id of another facility, gets a 404.
A refused change re-renders its page with the reason and status 422, having changed nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import contains_eager, selectinload
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from shop import params, policy
from shop.extensions import db
from shop.formatting import number
from shop.i18n import gettext as _
from shop.i18n import ngettext
from shop.pagination import paginate

from .. import csv_import
from ..labels import BATCH_STATUS_LABELS
from ..models import (
    Batch,
    BatchParticipation,
    ContributionBasis,
    Facility,
    Product,
    Wbp,
    WbpStatus,
)
from ..office_forms import (
    BASIS_LABELS,
    WBP_STATUS_LABELS,
    BatchForm,
    FinishForm,
    ImportForm,
    ParticipantForm,
    TransferForm,
    WbpForm,
)
from ..production import Refused, facility_today, participants_editable
from ..services import production
from . import bp

Rendered = tuple[str, int]
INVALID = 422


def _staff_facility(facility_id: int) -> Facility:
    return policy.facility_or_404(facility_id, policy.STAFF_ROLES)


def _render(template: str, status: int = 200, **context: Any) -> Rendered:
    return render_template(template, **context), status


def _status(*forms: Any) -> int:
    """422 when a submitted form has errors, so that a refusal is never mistaken for success."""
    return INVALID if any(f is not None and f.errors for f in forms) else 200


# The WBP register


def _wbp_query(facility_id: int, status: WbpStatus | None, q: str) -> Select[Any]:
    stmt = select(Wbp).where(Wbp.facility_id == facility_id)
    if status is not None:
        stmt = stmt.where(Wbp.status == status)
    if q:
        stmt = stmt.where(
            or_(
                func.lower(Wbp.name).contains(q.lower(), autoescape=True),
                func.lower(Wbp.registration_number).contains(q.lower(), autoescape=True),
            )
        )
    return stmt.order_by(Wbp.name, Wbp.id)


@bp.get("/wbp")
@login_required
def wbp_list(facility_id: int) -> str:
    facility = _staff_facility(facility_id)
    status = params.choice(request.args, "status", WbpStatus)
    q = params.text(request.args, "q")
    page = paginate(_wbp_query(facility.id, status, q), params.page_number(request.args))
    return render_template(
        "catalog/office/wbp_list.html",
        facility=facility,
        page=page,
        status=status,
        q=q,
        status_labels=WBP_STATUS_LABELS,
    )


@bp.route("/wbp/new", methods=["GET", "POST"])
@login_required
def wbp_new(facility_id: int) -> Rendered | Response:
    facility = _staff_facility(facility_id)
    form = WbpForm()
    if form.validate_on_submit():
        try:
            production.create_wbp(facility.id, form.registration_number.data, form.name.data)
        except Refused as refused:
            form.registration_number.errors.append(refused.message)
        else:
            flash(_("%(name)s is in the register.", name=form.name.data), "info")
            return redirect(url_for(".wbp_list", facility_id=facility.id))
    return _render("catalog/office/wbp_form.html", _status(form), facility=facility, form=form)


def _transfer_form(facility: Facility, posted: bool = True) -> TransferForm:
    form = TransferForm() if posted else TransferForm(formdata=None)
    form.target.choices = [
        SelectChoice(f.id, f.name)
        for f in db.session.scalars(
            select(Facility).where(Facility.id != facility.id).order_by(Facility.name)
        )
    ]
    return form


def _wbp_page(
    facility: Facility,
    wbp: Wbp,
    form: WbpForm | None = None,
    transfer: TransferForm | None = None,
    refusal: str | None = None,
) -> Rendered:
    status = INVALID if refusal else _status(form, transfer)
    return _render(
        "catalog/office/wbp_form.html",
        status,
        facility=facility,
        wbp=wbp,
        form=form if form is not None else WbpForm(formdata=None, obj=wbp),
        transfer=transfer if transfer is not None else _transfer_form(facility, posted=False),
        refusal=refusal,
        status_labels=WBP_STATUS_LABELS,
    )


@bp.route("/wbp/<int:wbp_id>/edit", methods=["GET", "POST"])
@login_required
def wbp_edit(facility_id: int, wbp_id: int) -> Rendered | Response:
    facility = _staff_facility(facility_id)
    wbp = policy.owned_or_404(Wbp, wbp_id, facility.id)
    form = WbpForm(obj=wbp)
    if form.validate_on_submit():
        try:
            production.update_wbp(wbp, form.registration_number.data, form.name.data)
        except Refused as refused:
            form.registration_number.errors.append(refused.message)
        else:
            flash(_("The record of %(name)s is saved.", name=wbp.name), "info")
            return redirect(url_for(".wbp_list", facility_id=facility.id))
    return _wbp_page(facility, wbp, form=form)


@bp.post("/wbp/<int:wbp_id>/release")
@login_required
def wbp_release(facility_id: int, wbp_id: int) -> Rendered | Response:
    facility = _staff_facility(facility_id)
    wbp = policy.owned_or_404(Wbp, wbp_id, facility.id)
    try:
        production.release_wbp(wbp)
    except Refused as refused:
        return _wbp_page(facility, wbp, refusal=refused.message)
    flash(
        _("%(name)s is recorded as released; premi still owed stays payable.", name=wbp.name),
        "info",
    )
    return redirect(url_for(".wbp_list", facility_id=facility.id))


@bp.post("/wbp/<int:wbp_id>/transfer")
@login_required
def wbp_transfer(facility_id: int, wbp_id: int) -> Rendered | Response:
    facility = _staff_facility(facility_id)
    wbp = policy.owned_or_404(Wbp, wbp_id, facility.id)
    transfer = _transfer_form(facility)
    if transfer.validate():
        target = db.session.get(Facility, transfer.target.data)
        try:
            production.transfer_wbp(wbp, target)
        except Refused as refused:
            transfer.target.errors.append(refused.message)
        else:
            flash(
                _("%(name)s is transferred to %(facility)s.", name=wbp.name, facility=target.name),
                "info",
            )
            return redirect(url_for(".wbp_list", facility_id=facility.id))
    return _wbp_page(facility, wbp, transfer=transfer)


# Production batches


def _product_choices(facility_id: int) -> list[SelectChoice]:
    return [
        SelectChoice(product_id, name)
        for product_id, name in db.session.execute(
            select(Product.id, Product.name)
            .where(Product.facility_id == facility_id)
            .order_by(Product.name, Product.id)
        )
    ]


@bp.get("/batches")
@login_required
def batches(facility_id: int) -> str:
    facility = _staff_facility(facility_id)
    page = paginate(
        select(Batch)
        .join(Batch.product)
        .where(Product.facility_id == facility.id)
        .options(contains_eager(Batch.product))
        .order_by(Batch.id.desc()),
        params.page_number(request.args),
    )
    counts = {
        batch_id: participants
        for batch_id, participants in db.session.execute(
            select(BatchParticipation.batch_id, func.count())
            .where(BatchParticipation.batch_id.in_([b.id for b in page.items]))
            .group_by(BatchParticipation.batch_id)
        )
    }
    return render_template(
        "catalog/office/batch_list.html",
        facility=facility,
        page=page,
        counts=counts,
        status_labels=BATCH_STATUS_LABELS,
    )


@bp.route("/batches/new", methods=["GET", "POST"])
@login_required
def batch_new(facility_id: int) -> Rendered | Response:
    facility = _staff_facility(facility_id)
    form = BatchForm()
    form.product.choices = _product_choices(facility.id)
    if form.validate_on_submit():
        product = db.session.get(Product, form.product.data)
        try:
            batch = production.plan_batch(
                facility.id,
                product,
                form.code.data,
                ContributionBasis(form.contribution_basis.data),
            )
        except Refused as refused:
            form.code.errors.append(refused.message)
        else:
            flash(_("Batch %(code)s is planned.", code=batch.code), "info")
            return redirect(url_for(".batch_detail", facility_id=facility.id, batch_id=batch.id))
    return _render("catalog/office/batch_form.html", _status(form), facility=facility, form=form)


def _batch(facility: Facility, batch_id: int) -> Batch:
    batch: Batch = policy.owned_or_404(Batch, batch_id, facility.id, via=Product)
    return batch


def _participant_form(batch: Batch, posted: bool = True) -> ParticipantForm:
    """The WBP offered are the facility's active ones not yet in the batch.

    A posted form accepts any active WBP, so that one already listed is told so, not "not a choice".
    """
    form = ParticipantForm() if posted else ParticipantForm(formdata=None)
    taken = set() if posted else {p.wbp_id for p in batch.participations}
    form.wbp.choices = [
        SelectChoice(w.id, f"{w.name} ({w.registration_number})")
        for w in db.session.scalars(
            select(Wbp)
            .where(Wbp.facility_id == batch.product.facility_id, Wbp.status == WbpStatus.ACTIVE)
            .order_by(Wbp.name, Wbp.id)
        )
        if w.id not in taken
    ]
    return form


def _finish_form(facility: Facility) -> FinishForm:
    return FinishForm(formdata=None, finished_on=facility_today(facility.timezone))


def _batch_page(
    facility: Facility,
    batch: Batch,
    participant: ParticipantForm | None = None,
    finish: FinishForm | None = None,
    refusal: str | None = None,
) -> Rendered:
    participations = list(
        db.session.scalars(
            select(BatchParticipation)
            .where(BatchParticipation.batch_id == batch.id)
            .options(selectinload(BatchParticipation.wbp))
            .order_by(BatchParticipation.id)
        )
    )
    return _render(
        "catalog/office/batch_detail.html",
        INVALID if refusal else _status(participant, finish),
        facility=facility,
        batch=batch,
        participations=participations,
        total=sum(p.contribution for p in participations),
        editable=participants_editable(batch.status),
        participant=participant
        if participant is not None
        else _participant_form(batch, posted=False),
        finish=finish if finish is not None else _finish_form(facility),
        refusal=refusal,
        basis_label=BASIS_LABELS[ContributionBasis(batch.contribution_basis)],
        status_labels=BATCH_STATUS_LABELS,
    )


@bp.get("/batches/<int:batch_id>")
@login_required
def batch_detail(facility_id: int, batch_id: int) -> Rendered:
    facility = _staff_facility(facility_id)
    return _batch_page(facility, _batch(facility, batch_id))


def _to_detail(facility: Facility, batch: Batch) -> Response:
    return redirect(url_for(".batch_detail", facility_id=facility.id, batch_id=batch.id))


@bp.post("/batches/<int:batch_id>/start")
@login_required
def batch_start(facility_id: int, batch_id: int) -> Rendered | Response:
    facility = _staff_facility(facility_id)
    batch = _batch(facility, batch_id)
    try:
        production.start_batch(batch, facility)
    except Refused as refused:
        return _batch_page(facility, batch, refusal=refused.message)
    flash(_("Batch %(code)s is in production.", code=batch.code), "info")
    return _to_detail(facility, batch)


@bp.post("/batches/<int:batch_id>/finish")
@login_required
def batch_finish(facility_id: int, batch_id: int) -> Rendered | Response:
    facility = _staff_facility(facility_id)
    batch = _batch(facility, batch_id)
    finish = FinishForm()
    if finish.validate():
        try:
            production.finish_batch(
                batch,
                facility,
                finish.quantity_made.data,
                finish.material_cost.data,
                finish.finished_on.data,
            )
        except Refused as refused:
            return _batch_page(facility, batch, finish=finish, refusal=refused.message)
        flash(
            _(
                "Batch %(code)s is finished: %(quantity)s units are now in stock.",
                code=batch.code,
                quantity=number(batch.quantity_made),
            ),
            "info",
        )
        return _to_detail(facility, batch)
    return _batch_page(facility, batch, finish=finish)


@bp.post("/batches/<int:batch_id>/reopen")
@login_required
def batch_reopen(facility_id: int, batch_id: int) -> Rendered | Response:
    facility = _staff_facility(facility_id)
    batch = _batch(facility, batch_id)
    try:
        production.reopen_batch(batch, facility)
    except Refused as refused:
        return _batch_page(facility, batch, refusal=refused.message)
    flash(
        _(
            "Batch %(code)s is reopened for correction and is out of stock until finished again.",
            code=batch.code,
        ),
        "info",
    )
    return _to_detail(facility, batch)


@bp.post("/batches/<int:batch_id>/participants")
@login_required
def batch_participant_add(facility_id: int, batch_id: int) -> Rendered | Response:
    facility = _staff_facility(facility_id)
    batch = _batch(facility, batch_id)
    form = _participant_form(batch)
    if form.validate():
        wbp = policy.owned_or_404(Wbp, form.wbp.data, facility.id)
        try:
            production.add_participant(batch, wbp, form.contribution.data)
        except Refused as refused:
            form.wbp.errors.append(refused.message)
        else:
            flash(_("%(name)s is a participant of the batch.", name=wbp.name), "info")
            return _to_detail(facility, batch)
    return _batch_page(facility, batch, participant=form)


@bp.post("/batches/<int:batch_id>/participants/<int:wbp_id>/remove")
@login_required
def batch_participant_remove(facility_id: int, batch_id: int, wbp_id: int) -> Rendered | Response:
    facility = _staff_facility(facility_id)
    batch = _batch(facility, batch_id)
    participation = db.session.scalar(
        select(BatchParticipation).where(
            BatchParticipation.batch_id == batch.id, BatchParticipation.wbp_id == wbp_id
        )
    )
    if participation is None:
        return _batch_page(
            facility, batch, refusal=_("That WBP is not a participant of the batch.")
        )
    try:
        production.remove_participant(participation, facility.id)
    except Refused as refused:
        return _batch_page(facility, batch, refusal=refused.message)
    flash(_("The participant is removed from the batch."), "info")
    return _to_detail(facility, batch)


# CSV imports

IMPORT_COLUMNS = {"wbp": csv_import.WBP_COLUMNS, "participants": csv_import.PARTICIPANT_COLUMNS}


def _import(
    facility: Facility,
    kind: str,
    run: Callable[[Facility, list[csv_import.Line]], csv_import.Parsed[Any]],
    done: Callable[[int], str],
    next_endpoint: str,
) -> Rendered | Response:
    """An import page: read the file, check every line, import all of it or list what is wrong."""
    form = ImportForm()
    errors: list[csv_import.RowError] = []
    columns = IMPORT_COLUMNS[kind]
    if form.validate_on_submit():
        try:
            lines = csv_import.read_lines(form.file.data.read(csv_import.MAX_BYTES + 1), columns)
            parsed = run(facility, lines)
        except (csv_import.FileRefused, Refused) as refused:
            form.file.errors.append(refused.message)
        else:
            if parsed.ok:
                flash(done(len(parsed.rows)), "info")
                return redirect(url_for(next_endpoint, facility_id=facility.id))
            errors = parsed.errors
    return _render(
        "catalog/office/import.html",
        INVALID if errors else _status(form),
        facility=facility,
        form=form,
        errors=errors,
        kind=kind,
        columns=columns,
    )


@bp.route("/import/wbp", methods=["GET", "POST"])
@login_required
def import_wbp(facility_id: int) -> Rendered | Response:
    return _import(
        _staff_facility(facility_id),
        "wbp",
        production.import_wbp,
        lambda n: ngettext("%(num)s WBP imported.", "%(num)s WBP imported.", n),
        ".wbp_list",
    )


@bp.route("/import/participants", methods=["GET", "POST"])
@login_required
def import_participants(facility_id: int) -> Rendered | Response:
    return _import(
        _staff_facility(facility_id),
        "participants",
        production.import_participants,
        lambda n: ngettext("%(num)s participant imported.", "%(num)s participants imported.", n),
        ".batches",
    )
