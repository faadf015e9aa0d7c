"""The back office entry: which facilities a user works for, and each facility's home page."""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from catalog.models import Facility

from . import audit, params, policy
from .i18n import lazy_gettext as _l

bp = Blueprint("office", __name__, url_prefix="/office")

# The back office sections, in menu order: (endpoint, label, roles that see it).
SECTIONS = (
    ("orders_office.orders", _l("Orders"), policy.OFFICE_ROLES),
    ("orders_office.quotes", _l("Quotes"), policy.STAFF_ROLES),
    ("catalog_office.products", _l("Products"), policy.STAFF_ROLES),
    ("catalog_office.programmes", _l("Programmes"), policy.STAFF_ROLES),
    ("catalog_office.stock", _l("Stock"), policy.OFFICE_ROLES),
    ("catalog_office.wbp_list", _l("WBP register"), policy.STAFF_ROLES),
    ("catalog_office.batches", _l("Production batches"), policy.STAFF_ROLES),
    ("finance_office.overview", _l("Finance"), policy.FINANCE_ROLES),
    ("office.audit_log", _l("Audit log"), policy.STAFF_ROLES),
)


def office_sections(facility: Facility) -> list[tuple[str, str]]:
    return [
        (endpoint, str(label))
        for endpoint, label, roles in SECTIONS
        if endpoint in current_app.view_functions and policy.may(current_user, roles, facility.id)
    ]


def register(app: Flask) -> None:
    app.add_template_global(office_sections)


@bp.get("/")
@login_required
def index() -> str | Response:
    facilities = policy.facilities_of(current_user)
    if not facilities:
        abort(404)
    if len(facilities) == 1:
        return redirect(url_for("office.facility", facility_id=facilities[0].id))
    return render_template("office/index.html", facilities=facilities)


@bp.get("/<int:facility_id>/")
@login_required
def facility(facility_id: int) -> str:
    found = policy.facility_or_404(facility_id, policy.OFFICE_ROLES)
    return render_template("office/facility.html", facility=found)


@bp.get("/<int:facility_id>/audit")
@login_required
def audit_log(facility_id: int) -> str:
    found = policy.facility_or_404(facility_id, policy.STAFF_ROLES)
    page = audit.entries(found.id, params.page_number(request.args))
    return render_template("office/audit.html", facility=found, page=page)
