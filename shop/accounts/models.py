"""Users and role grants. A user can hold several roles; staff and finance roles name a facility."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from shop.extensions import db, str_enum


class Role(StrEnum):
    BUYER = "buyer"
    STAFF = "staff"
    FINANCE = "finance"
    ADMIN = "admin"


class User(UserMixin, db.Model):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(30), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )
    buyer_profile: Mapped[BuyerProfile | None] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive accounts
        return self.active

    @property
    def is_authenticated(self) -> bool:
        # A user object is only ever the current user once signed in, and `auth.load_user` refuses
        # a deactivated account, so this need not read `active`: after a commit expired the user,
        # reading it would load the user again.
        return True

    def set_password(self, password: str) -> None:
        # Werkzeug's current default method (scrypt), salted.
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        # The hash's tail changes with the password, so a password change ends other sessions.
        return f"{self.id}:{self.password_hash[-12:]}"

    def has_role(self, role: Role) -> bool:
        return any(g.role == role for g in self.grants)


class RoleGrant(db.Model):
    """One role of one user; `facility_id` None means every facility (admin, regional finance)."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("user_id", "role", "facility_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(str_enum(Role))
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"), index=True)

    user: Mapped[User] = relationship(back_populates="grants")


class BuyerProfile(db.Model):
    """The business behind a buyer account; phone (WhatsApp) first, as buyers work."""

    __tablename__ = "buyer_profile"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    business_name: Mapped[str] = mapped_column(String(160))
    contact_person: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(30))
    address: Mapped[str] = mapped_column(Text)
    npwp: Mapped[str | None] = mapped_column(String(30))

    user: Mapped[User] = relationship(back_populates="buyer_profile")
