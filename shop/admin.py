"""Admin pages: facilities, users and roles, and the audit log across facilities."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from catalog.models import Facility
from catalog.services.facilities import FacilityRefused, create_facility, update_facility

from . import audit, params
from .accounts import services as accounts
from .accounts.models import Role, User
from .admin_forms import (
    KIND_LABELS,
    ROLE_LABELS,
    ConfirmForm,
    FacilityForm,
    GrantForm,
    NewUserForm,
    RevokeForm,
)
from .extensions import db
from .i18n import gettext as _
from .pagination import paginate
from .policy import roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@roles_required(Role.ADMIN)
def _admins_only() -> None:
    """Every admin page, present and future, is for admins only: others see nothing here."""


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {
        "role_label": lambda role: str(ROLE_LABELS[Role(role)]),
        "kind_label": lambda kind: KIND_LABELS[kind],
    }


# --- Pages --------------------------------------------------------------------------------------


@bp.get("/")
def index() -> str:
    counts = {
        "facilities": db.session.scalar(select(func.count(Facility.id))),
        "users": db.session.scalar(select(func.count(User.id))),
        "inactive": db.session.scalar(select(func.count(User.id)).where(User.active.is_(False))),
        "entries": db.session.scalar(select(func.count(audit.AuditEntry.id))),
    }
    return render_template("admin/index.html", counts=counts)


@bp.get("/facilities")
def facilities() -> str:
    stmt = select(Facility).order_by(Facility.province, Facility.name)
    page = paginate(stmt, params.page_number(request.args))
    return render_template("admin/facilities.html", page=page)


def _facility_form_page(form: FacilityForm, facility: Facility | None) -> str:
    provinces = db.session.scalars(select(Facility.province).distinct().order_by(Facility.province))
    offices = db.session.scalars(
        select(Facility.regional_office).distinct().order_by(Facility.regional_office)
    )
    return render_template(
        "admin/facility_form.html",
        form=form,
        facility=facility,
        provinces=list(provinces),
        offices=list(offices),
    )


@bp.route("/facilities/new", methods=["GET", "POST"])
def facility_new() -> str | Response:
    form = FacilityForm()
    if form.validate_on_submit():
        try:
            facility = create_facility(form.values())
        except FacilityRefused as refused:
            form[refused.field].errors.append(refused.message)
        else:
            flash(_("%(name)s is added.", name=facility.name), "info")
            return redirect(url_for("admin.facilities"))
    return _facility_form_page(form, None)


@bp.route("/facilities/<int:facility_id>", methods=["GET", "POST"])
def facility_edit(facility_id: int) -> str | Response:
    facility = db.get_or_404(Facility, facility_id)
    form = FacilityForm(obj=facility)
    if form.validate_on_submit():
        try:
            update_facility(facility, form.values())
        except FacilityRefused as refused:
            form[refused.field].errors.append(refused.message)
        else:
            flash(_("%(name)s is saved.", name=facility.name), "info")
            return redirect(url_for("admin.facilities"))
    return _facility_form_page(form, facility)


@bp.get("/users")
def users() -> str:
    q = params.text(request.args, "q")
    page = paginate(accounts.users_matching(q), params.page_number(request.args))
    return render_template("admin/users.html", page=page, q=q, facility_names=_facility_names())


def _facility_names() -> dict[int, str]:
    return dict(db.session.execute(select(Facility.id, Facility.name)).all())


@bp.route("/users/new", methods=["GET", "POST"])
def user_new() -> str | Response:
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(
                email=form.email.data or "",
                name=form.name.data or "",
                phone=form.phone.data or "",
                role=form.chosen_role,
                facility_id=form.facility.data,
            )
        except accounts.AccountRefused as refused:
            form[refused.field or "email"].errors.append(refused.message)
        else:
            flash(
                _(
                    "The account for %(email)s is made. "
                    "We are mailing it a link to choose a password.",
                    email=user.email,
                ),
                "info",
            )
            return redirect(url_for("admin.user_detail", user_id=user.id))
    return render_template("admin/user_new.html", form=form)


def _user_page(user: User, grant_form: GrantForm | None = None, status: int = 200) -> Any:
    return (
        render_template(
            "admin/user_detail.html",
            user=user,
            grant_form=grant_form or GrantForm(formdata=None),
            confirm=ConfirmForm(),
            revoke=RevokeForm(formdata=None),
            facility_names=_facility_names(),
        ),
        status,
    )


@bp.get("/users/<int:user_id>")
def user_detail(user_id: int) -> Any:
    return _user_page(db.get_or_404(User, user_id))


@bp.post("/users/<int:user_id>/roles")
def role_grant(user_id: int) -> Any:
    user = db.get_or_404(User, user_id)
    form = GrantForm()
    if form.validate_on_submit():
        try:
            accounts.grant_role(user, form.chosen_role, form.facility.data)
        except accounts.AccountRefused as refused:
            form[refused.field or "role"].errors.append(refused.message)
        else:
            flash(_("The role is granted."), "info")
            return redirect(url_for("admin.user_detail", user_id=user.id))
    return _user_page(user, form)


def _refused_or_done(user: User, form: ConfirmForm, done: str, change: Any) -> Any:
    """Runs a button's change: on refusal the page says why, with 409, and nothing changed."""
    if not form.validate_on_submit():
        abort(400)  # the token is checked before this view runs: only a doctored form gets here
    try:
        change()
    except accounts.AccountRefused as refused:
        db.session.rollback()
        flash(str(refused.message), "error")
        return _user_page(user, status=409)
    flash(done, "info")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.post("/users/<int:user_id>/roles/revoke")
def role_revoke(user_id: int) -> Any:
    user = db.get_or_404(User, user_id)
    form = RevokeForm()
    grant = next((g for g in user.grants if g.id == form.grant.data), None)
    if grant is None:
        abort(404)
    return _refused_or_done(
        user, form, _("The role is revoked."), lambda: accounts.revoke_role(grant, current_user)
    )


@bp.post("/users/<int:user_id>/deactivate")
def user_deactivate(user_id: int) -> Any:
    user = db.get_or_404(User, user_id)
    return _refused_or_done(
        user,
        ConfirmForm(),
        _("%(email)s can no longer sign in.", email=user.email),
        lambda: accounts.set_active(user, False, current_user),
    )


@bp.post("/users/<int:user_id>/reactivate")
def user_reactivate(user_id: int) -> Any:
    user = db.get_or_404(User, user_id)
    return _refused_or_done(
        user,
        ConfirmForm(),
        _("%(email)s can sign in again.", email=user.email),
        lambda: accounts.set_active(user, True, current_user),
    )


@bp.get("/audit")
def audit_log() -> str:
    facility = None
    if raw := params.text(request.args, "facility"):
        if not raw.isdecimal():
            abort(
                400,
                description=_("Unknown value for %(name)s: %(value)s", name="facility", value=raw),
            )
        facility = db.get_or_404(Facility, int(raw))
    page = audit.entries(facility.id if facility else None, params.page_number(request.args))
    choices = db.session.execute(select(Facility.id, Facility.name).order_by(Facility.name))
    return render_template("admin/audit.html", page=page, facility=facility, choices=list(choices))
