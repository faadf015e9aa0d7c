"""Facility back office for orders: the facility's orders, their fulfilment, and quotes."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("orders_office", __name__, url_prefix="/office/<int:facility_id>")
