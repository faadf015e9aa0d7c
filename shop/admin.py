"""Admin pages: facilities, users and roles, and the audit log across facilities."""

from __future__ import annotations

from flask import Blueprint, render_template

from .accounts.models import Role
from .policy import roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@roles_required(Role.ADMIN)
def index() -> str:
    return render_template("admin/index.html")
