"""Who may do what: the one place where authorization is decided.

Views ask here; they never compare roles or facility ids themselves. Anything a user may not see
answers 404, so that another facility's ids reveal nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required

from catalog.models import Facility

from .accounts.models import Role, User
from .extensions import db

F = TypeVar("F", bound=Callable[..., Any])

# What each role may do in a facility's back office.
STAFF_ROLES = frozenset({Role.STAFF, Role.ADMIN})
FINANCE_ROLES = frozenset({Role.FINANCE, Role.ADMIN})
OFFICE_ROLES = frozenset({Role.STAFF, Role.FINANCE, Role.ADMIN})
# Who may confirm money received for a facility's orders, and refund it.
MONEY_ROLES = OFFICE_ROLES


def _facility_ids(user: User, roles: frozenset[Role]) -> set[int] | None:
    """The facilities where the user holds one of `roles`; None means every facility."""
    ids: set[int] = set()
    if not user.is_authenticated:
        return ids
    for grant in user.grants:
        if grant.role not in roles:
            continue
        if grant.role is Role.ADMIN or grant.facility_id is None:
            return None
        ids.add(grant.facility_id)
    return ids


def may(user: User, roles: frozenset[Role], facility_id: int) -> bool:
    """True when the user holds one of `roles` for that facility."""
    ids = _facility_ids(user, roles)
    return ids is None or facility_id in ids


def may_open_office(user: User) -> bool:
    return user.is_authenticated and any(g.role in OFFICE_ROLES for g in user.grants)


def facilities_of(user: User, roles: frozenset[Role] = OFFICE_ROLES) -> list[Facility]:
    """The facilities whose back office the user may open."""
    ids = _facility_ids(user, roles)
    stmt = db.select(Facility).order_by(Facility.name)
    if ids is not None:
        if not ids:
            return []
        stmt = stmt.where(Facility.id.in_(ids))
    return list(db.session.scalars(stmt))


def facility_or_404(facility_id: int, roles: frozenset[Role]) -> Facility:
    if not may(current_user, roles, facility_id):
        abort(404)
    facility = db.session.get(Facility, facility_id)
    if facility is None:
        abort(404)
    return facility


def owned_or_404(model: type, object_id: int, facility_id: int, via: Any = None) -> Any:
    """Loads `model` by id only if it belongs to `facility_id` (directly or through `via`)."""
    stmt = db.select(model).where(model.id == object_id)
    if via is None:
        stmt = stmt.where(model.facility_id == facility_id)
    else:
        stmt = stmt.join(via).where(via.facility_id == facility_id)
    found = db.session.scalar(stmt)
    if found is None:
        abort(404)
    return found


def roles_required(*roles: Role) -> Callable[[F], F]:
    """For pages that belong to a role rather than a facility (admin pages, a buyer's orders)."""
    wanted = frozenset(roles)

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not any(current_user.has_role(r) for r in wanted):
                abort(404)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
