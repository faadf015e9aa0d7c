"""Builds of the app with one defence taken away, each through pytest's `monkeypatch`, so that
everything is put back when the test ends.

Each weakening takes (monkeypatch, world) and changes the running app the way a careless edit
would: a hook removed, a setting turned off, a guard that lets everything through.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from flask import abort, has_request_context, request
from jinja2.utils import LRUCache
from sqlalchemy import event, inspect, select, text
from sqlalchemy.orm import Session

import catalog.photos
import catalog.queries
import orders.documents
import orders.views
import payments.forms
import payments.pages
import shop.config
import shop.policy
import shop.web
from catalog.models import Product, Wbp
from catalog.photos import CleanPhoto
from orders.models import Order
from shop.extensions import db, limiter


def without_security_headers(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    """The after-request hook that sets the headers is never registered."""
    hooks = world.app.after_request_funcs
    kept = [hook for hook in hooks[None] if hook is not shop.web._security_headers]
    monkeypatch.setitem(hooks, None, kept)


def csp_with_unsafe_inline(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    """Someone "fixes" an inline script by allowing inline scripts and styles everywhere."""
    loose = shop.web.DEFAULT_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
    loose = loose.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    monkeypatch.setattr(shop.web, "DEFAULT_CSP", loose)


def cookies_without_flags(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    """The configuration's cookie defaults are lost: Flask's own (no Secure, no SameSite)."""
    original = shop.config.from_environment

    def from_environment(instance_path):  # type: ignore[no-untyped-def]
        settings = original(instance_path)
        for prefix in ("SESSION", "REMEMBER"):
            settings[f"{prefix}_COOKIE_SECURE"] = False
            settings[f"{prefix}_COOKIE_HTTPONLY"] = False
            settings[f"{prefix}_COOKIE_SAMESITE"] = None
        return settings

    monkeypatch.setattr(shop.config, "from_environment", from_environment)


def csrf_off(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(world.app.config, "WTF_CSRF_ENABLED", False)


def autoescape_off(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    """Templates print values as they are. They compile into a cache of their own, which goes
    when the test ends: the app's cache of escaping templates is left untouched."""
    env = world.app.jinja_env
    monkeypatch.setattr(env, "autoescape", False)
    monkeypatch.setattr(env, "cache", LRUCache(400))


def sql_built_from_text(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    """The storefront search pastes the words into SQL text, as an f-string, in statements
    built for each request rather than once."""
    original = catalog.queries._filtered

    def filtered(stmt, shape):  # type: ignore[no-untyped-def]
        q = request.args.get("q", "")
        pasted = text(f"product.search_text LIKE '%{q}%'") if q else None
        stmt = original(stmt, dataclasses.replace(shape, words=0))
        return stmt.where(pasted) if pasted is not None else stmt

    monkeypatch.setattr(catalog.queries, "_filtered", filtered)
    for name in ("_count_statement", "_summaries_statement", "_cards_statement"):
        built_once = getattr(catalog.queries, name)
        monkeypatch.setattr(catalog.queries, name, built_once.__wrapped__)


def facility_guard_lets_everyone_in(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    """shop/policy.py answers "yes" to every facility question and loads objects by id alone."""

    def owned_or_404(model, object_id, facility_id, via=None):  # type: ignore[no-untyped-def]
        found = db.session.get(model, object_id)
        if found is None:
            abort(404)
        return found

    monkeypatch.setattr(shop.policy, "may", lambda user, roles, facility_id: True)
    monkeypatch.setattr(shop.policy, "owned_or_404", owned_or_404)


def buyer_guard_lets_everyone_in(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    """A buyer's order is found by its reference alone, whoever asks."""

    def any_order(reference):  # type: ignore[no-untyped-def]
        found = db.session.scalar(select(Order).where(Order.reference == reference))
        if found is None:
            abort(404)
        return found

    for module in (orders.views, orders.documents, payments.pages):
        monkeypatch.setattr(module, "buyer_order_or_404", any_order)


def _coerced(column, value: Any) -> Any:  # type: ignore[no-untyped-def]
    kind = column.type.python_type
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if kind is bool:
        return str(value).lower() in {"1", "y", "yes", "true", "on"}
    return kind(value)


def copy_posted_fields(session: Session, _context, _instances) -> None:  # type: ignore[no-untyped-def]
    """What a careless "update from the form" does: every posted name that is a column is set."""
    if not has_request_context() or request.method != "POST":
        return
    posted = dict(request.form.items())
    body = request.get_json(silent=True)
    if isinstance(body, dict):
        posted.update({k: v for k, v in body.items() if not isinstance(v, dict | list)})
    for instance in list(session.new) + list(session.dirty):
        columns = inspect(type(instance)).columns
        for name, value in posted.items():
            if name in columns and name != "id":
                try:
                    setattr(instance, name, _coerced(columns[name], value))
                except (TypeError, ValueError, NotImplementedError):
                    continue


def forms_copy_every_field(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    event.listen(db.session, "before_flush", copy_posted_fields)
    world.on_teardown(lambda: event.remove(db.session, "before_flush", copy_posted_fields))


def photo_check_bypassed(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    """Uploads are kept as they came, named by what the file name says."""

    def as_sent(raw: bytes, max_bytes: int) -> CleanPhoto:
        return CleanPhoto(raw, "image/jpeg", 0, 0)

    monkeypatch.setattr(catalog.photos, "clean_photo", as_sent)


def pdf_check_bypassed(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    """Anything that starts like a PDF is kept as a PDF."""
    monkeypatch.setattr(payments.forms, "_check_pdf", lambda raw: None)


def maker_named_on_product_page(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    """The product page credits its first maker by name ("made by Agus and five others")."""
    maker = db.session.scalar(select(Wbp.name).order_by(Wbp.id))
    original = catalog.queries.product_detail

    class Credited:
        def __init__(self, product: Product) -> None:
            self._product = product

        def __getattr__(self, name: str) -> Any:
            value = getattr(self._product, name)
            return f"{value} (oleh {maker})" if name == "name" else value

    def product_detail(slug):  # type: ignore[no-untyped-def]
        detail = original(slug)
        if detail is None:
            return None
        card = dataclasses.replace(detail.card, product=Credited(detail.card.product))
        return dataclasses.replace(detail, card=card)

    monkeypatch.setattr(catalog.queries, "product_detail", product_detail)


def rate_limits_off(monkeypatch, world) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(limiter, "enabled", False)
