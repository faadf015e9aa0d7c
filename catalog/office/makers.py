"""Back office: the WBP register, production batches and participants, and CSV imports."""

from . import bp  # noqa: F401
