"""Account write services for the admin: create staff accounts, grant and revoke roles, deactivate.

Each service checks the rules, changes the accounts, records the change in the audit log and
commits once. A rule a user can break raises `AccountRefused` and changes nothing.
"""

from __future__ import annotations

import secrets

from flask import current_app, url_for
from sqlalchemy import Select, func, select

from shop import audit, mail
from shop.extensions import db
from shop.i18n import gettext as _
from shop.i18n import lazy_gettext as _l

from . import auth
from .models import Role, RoleGrant, User

# Roles that belong to one facility, may belong to one, or never do (see `grant_refusal`).
FACILITY_REQUIRED = frozenset({Role.STAFF})
FACILITY_FORBIDDEN = frozenset({Role.ADMIN, Role.BUYER})


class AccountRefused(ValueError):
    """A change the rules forbid; `field` names the form field the message belongs to."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field


def grant_refusal(role: Role, facility_id: int | None) -> str | None:
    """Why this role cannot be held with this facility, or None when it can.

    Staff work in one facility; finance works for one facility or, without one, for the regional
    office and so every facility; admin and buyer roles never name a facility.
    """
    if role in FACILITY_REQUIRED and facility_id is None:
        return _l("Staff work in one facility: choose it.")
    if role in FACILITY_FORBIDDEN and facility_id is not None:
        return _l("This role does not belong to a facility: leave the facility empty.")
    return None


def holds(grants: list[RoleGrant], role: Role, facility_id: int | None) -> bool:
    return any(g.role == role and g.facility_id == facility_id for g in grants)


def _removed(values: dict[str, object]) -> dict[str, list[object]]:
    """Audit changes of a deleted row: every value goes to nothing."""
    return {key: [value, None] for key, value in values.items()}


def _queue_welcome_mail(user: User) -> None:
    link = url_for("accounts.reset_password", token=auth.reset_token(user), _external=True)
    again = url_for("accounts.forgot_password", _external=True)
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE"] // 60
    mail.queue(
        user.email,
        _("Your Karya Binaan account"),
        _(
            "Hello %(name)s,\n\nAn administrator has made you a Karya Binaan account for this "
            "email. Open this link to choose your password:\n%(link)s\n\n"
            "The link works once, within %(minutes)s minutes. If it has expired, ask for a new "
            "one here:\n%(again)s",
            name=user.name,
            link=link,
            minutes=minutes,
            again=again,
        ),
    )


def create_user(*, email: str, name: str, phone: str, role: Role, facility_id: int | None) -> User:
    """A staff, finance or admin account with its first role.

    Nobody knows its password: the person chooses one through the link mailed to them, which also
    proves the address is theirs.
    """
    email = email.strip().lower()
    if auth.find_by_email(email) is not None:
        raise AccountRefused(_l("An account with this email already exists."), "email")
    if refusal := grant_refusal(role, facility_id):
        raise AccountRefused(refusal, "facility")
    user = User(email=email, name=name.strip(), phone=phone.strip())
    user.set_password(secrets.token_urlsafe(32))
    grant = RoleGrant(role=role, facility_id=facility_id)
    user.grants.append(grant)
    db.session.add(user)
    audit.record("create", user, facility_id=None)
    audit.record("grant", grant, facility_id=facility_id)
    _queue_welcome_mail(user)
    db.session.commit()
    return user


def grant_role(user: User, role: Role, facility_id: int | None) -> RoleGrant:
    if refusal := grant_refusal(role, facility_id):
        raise AccountRefused(refusal, "facility")
    if holds(user.grants, role, facility_id):
        # The unique constraint cannot catch this when facility_id is NULL, so it is checked here.
        raise AccountRefused(_l("This account already has that role."), "role")
    grant = RoleGrant(role=role, facility_id=facility_id)
    user.grants.append(grant)
    audit.record("grant", grant, facility_id=facility_id)
    db.session.commit()
    return grant


def revoke_role(grant: RoleGrant, acting: User) -> None:
    user = grant.user
    if (
        grant.role is Role.ADMIN
        and user.id == acting.id
        and sum(g.role is Role.ADMIN for g in user.grants) == 1
    ):
        raise AccountRefused(_l("You cannot remove your own last admin role."))
    before = audit.snapshot(grant)
    user.grants.remove(grant)  # delete-orphan: the row goes with it
    audit.record("revoke", grant, facility_id=grant.facility_id, extra=_removed(before))
    db.session.commit()


def set_active(user: User, active: bool, acting: User) -> None:
    """Deactivating ends the person's sessions and stops sign-in; nothing else is removed."""
    if not active and user.id == acting.id:
        raise AccountRefused(_l("You cannot deactivate your own account."))
    if user.active == active:
        return
    before = audit.snapshot(user)
    user.active = active
    audit.record("reactivate" if active else "deactivate", user, facility_id=None, before=before)
    db.session.commit()


def users_matching(q: str) -> Select[tuple[User]]:
    """Accounts whose email or name contains `q`, for the admin's list."""
    stmt = select(User).order_by(User.email)
    if q:
        needle = q.lower()
        stmt = stmt.where(
            func.lower(User.email).contains(needle, autoescape=True)
            | func.lower(User.name).contains(needle, autoescape=True)
        )
    return stmt
