"""Form helpers shared by every package's forms and templates."""

from __future__ import annotations

from typing import Any

from flask import Flask
from wtforms import Field


def combine_attrs(attrs: dict[str, Any], field: Field) -> dict[str, Any]:
    """Adds the ARIA attributes that tie a field to its hint and errors."""
    combined = dict(attrs)
    described = []
    if "hint" in attrs:
        combined.pop("hint")
        described.append(f"{field.id}-hint")
    if field.errors:
        combined["aria-invalid"] = "true"
        described.append(f"{field.id}-error")
    if described:
        combined["aria-describedby"] = " ".join(described)
    return combined


def register(app: Flask) -> None:
    app.add_template_filter(combine_attrs)
