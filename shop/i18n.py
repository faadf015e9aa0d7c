"""Language choice: Indonesian by default, English on request, remembered in a cookie."""

from __future__ import annotations

from flask import has_request_context, request

LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
DEFAULT = "id"
COOKIE = "lang"


def select_locale() -> str:
    if not has_request_context():
        return DEFAULT  # commands and background work speak Indonesian
    chosen = request.cookies.get(COOKIE, "")
    return chosen if chosen in LANGUAGES else DEFAULT
