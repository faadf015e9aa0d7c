"""Pages of results: one count query and one query for the rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import abort
from sqlalchemy import Select, func, select

from .extensions import db

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


class PageOutOfRange(LookupError):
    """A page number past the last page."""


def check_in_range(page: int, size: int, total: int) -> None:
    if page > 1 and (page - 1) * size >= total:
        raise PageOutOfRange(page)


def paginate(stmt: Select[Any], page: int, size: int = 50) -> Page[Any]:
    """Scalars of `stmt`, one page of them; a page past the end is a 404."""
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    try:
        check_in_range(page, size, total or 0)
    except PageOutOfRange:
        abort(404)
    items = list(db.session.scalars(stmt.limit(size).offset((page - 1) * size)))
    return Page(items, page, size, total or 0)
