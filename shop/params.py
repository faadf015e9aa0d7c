"""Reading query-string values that a visitor can get wrong: a clear 400, never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from flask import abort

from .i18n import gettext as _

E = TypeVar("E", bound=StrEnum)
MAX_PAGE = 100_000


def page_number(args: Mapping[str, str]) -> int:
    raw = args.get("page", "1").strip()
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_PAGE:
        abort(400, description=_("The page number must be a whole number from 1."))
    return int(raw)


def choice(args: Mapping[str, str], name: str, enum: type[E]) -> E | None:
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        return enum(raw)
    except ValueError:
        abort(400, description=_("Unknown value for %(name)s: %(value)s", name=name, value=raw))


def flag(args: Mapping[str, str], name: str) -> bool:
    raw = args.get(name, "").strip().lower()
    if raw in {"", "0", "false", "off"}:
        return False
    if raw in {"1", "true", "on", "yes"}:
        return True
    abort(400, description=_("Unknown value for %(name)s: %(value)s", name=name, value=raw))


def text(args: Mapping[str, str], name: str, max_length: int = 100) -> str:
    raw = args.get(name, "").strip()
    if "\x00" in raw:  # PostgreSQL text cannot hold NUL
        abort(400, description=_("%(name)s contains a character that cannot be stored.", name=name))
    if len(raw) > max_length:
        abort(400, description=_("%(name)s is too long.", name=name))
    return raw


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site: never another host, so a redirect cannot lead away."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default
