"""Words the UI shows for catalog codes, translated."""

from __future__ import annotations

from flask import Flask, request, url_for

from shop.i18n import lazy_gettext as _l

from .models import BatchStatus, Category, Unit

CATEGORY_LABELS = {
    Category.CRAFTS: _l("Crafts"),
    Category.TEXTILES: _l("Textiles"),
    Category.FURNITURE: _l("Furniture"),
    Category.FOOD: _l("Food"),
}

UNIT_LABELS = {Unit.PCS: _l("pcs"), Unit.KG: _l("kg"), Unit.SET: _l("set")}

BATCH_STATUS_LABELS = {
    BatchStatus.PLANNED: _l("Planned"),
    BatchStatus.IN_PRODUCTION: _l("In production"),
    BatchStatus.FINISHED: _l("Finished"),
}


def category_label(category: Category) -> str:
    return str(CATEGORY_LABELS[Category(category)])


def unit_label(unit: Unit) -> str:
    return str(UNIT_LABELS[Unit(unit)])


def page_url(number: int) -> str:
    """The current page's address with every filter kept and another page number."""
    args = request.args.to_dict()
    args["page"] = str(number)
    return url_for(request.endpoint or "catalog.home", **(request.view_args or {}), **args)


def register(app: Flask) -> None:
    app.add_template_global(category_label)
    app.add_template_global(unit_label)
    app.add_template_global(page_url)
