"""Back office: products, price tiers, photos, programmes and the stock overview."""

from . import bp  # noqa: F401
