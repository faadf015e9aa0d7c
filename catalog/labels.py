"""Words the UI shows for catalog codes, translated."""

from __future__ import annotations

from typing import NamedTuple

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


class CardPaths(NamedTuple):
    """Where the links of a list of product cards start, each card adding its own slug or id."""

    product: str
    photo: str


def card_paths() -> CardPaths:
    """The product and photo routes' paths up to their last segment, by url_for (which obeys the
    script root); a slug or id appended gives what url_for would, since neither is ever escaped
    in a path: slugs are made of a-z, 0-9 and hyphens (`rules.slugify`)."""
    return CardPaths(
        product=_up_to_last_segment(url_for("catalog.product", slug="slug")),
        photo=_up_to_last_segment(url_for("catalog.photo", photo_id=0)),
    )


def _up_to_last_segment(path: str) -> str:
    return path[: path.rindex("/") + 1]


def register(app: Flask) -> None:
    app.add_template_global(category_label)
    app.add_template_global(unit_label)
    app.add_template_global(page_url)
    app.add_template_global(card_paths)
