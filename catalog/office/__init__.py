"""The facility back office for the catalog: products, programmes, WBP, batches and stock.

Every view takes the facility from the URL and asks `shop.policy` whether the user works there.
"""

from flask import Blueprint

bp = Blueprint("catalog_office", __name__, url_prefix="/office/<int:facility_id>")

from . import makers, products  # noqa: E402, F401  (routes register on bp)
