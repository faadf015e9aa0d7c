"""The JSON API for buyers' own systems, under /api/v1, with token authentication."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
