"""The audit log: who changed what, when, with the values before and after."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from flask_login import current_user
from sqlalchemy import JSON, ForeignKey, Index, String, func, inspect, select
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship

from .extensions import db
from .pagination import Page, paginate

# Columns never copied into the log: secrets, and blobs that say nothing to a reader.
_SKIPPED = {"password_hash", "token_hash", "data", "search_text"}


class AuditEntry(db.Model):
    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_facility_created", "facility_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(40))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    user = relationship("User")


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def snapshot(obj: db.Model) -> dict[str, Any]:  # type: ignore[name-defined]
    """The object's column values as JSON-ready plain values."""
    mapper = inspect(obj).mapper
    return {
        attr.key: _plain(getattr(obj, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in _SKIPPED
    }


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Only the fields that changed, as {"field": [before, after]}."""
    before, after = before or {}, after or {}
    keys = sorted(set(before) | set(after))
    return {k: [before.get(k), after.get(k)] for k in keys if before.get(k) != after.get(k)}


def record(
    action: str,
    obj: db.Model,  # type: ignore[name-defined]
    *,
    facility_id: int | None,
    before: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> AuditEntry:
    """Adds an entry to the current transaction: the change and its record commit together.

    Call after the change has been flushed, so that new objects have an id.
    """
    db.session.flush()
    changes = diff(before, snapshot(obj))
    if extra:
        changes.update(extra)
    entry = AuditEntry(
        user_id=current_user.id if current_user and current_user.is_authenticated else None,
        facility_id=facility_id,
        entity=inspect(obj).mapper.class_.__tablename__,
        entity_id=inspect(obj).identity[0] if inspect(obj).identity else None,
        action=action,
        changes=changes,
    )
    db.session.add(entry)
    return entry


def entries(facility_id: int | None, page: int) -> Page[AuditEntry]:
    """Newest first; one facility's entries, or every entry for `None` (admin)."""
    stmt = select(AuditEntry).options(joinedload(AuditEntry.user))
    if facility_id is not None:
        stmt = stmt.where(AuditEntry.facility_id == facility_id)
    return paginate(stmt.order_by(AuditEntry.id.desc()), page)
