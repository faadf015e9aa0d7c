"""Language choice (Indonesian by default, English on request, remembered in a cookie) and the
translation functions the code and the templates call (Flask-Babel's semantics, cheaper lookup)."""

from __future__ import annotations

from collections.abc import Mapping
from gettext import NullTranslations
from typing import Any

import flask_babel
from babel import Locale
from flask import Flask, g, has_request_context, request
from flask_babel.speaklater import LazyString
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup

LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
DEFAULT = "id"
COOKIE = "lang"


def select_locale() -> str:
    if not has_request_context():
        return DEFAULT  # commands and background work speak Indonesian
    return locale_from(request.cookies)


def locale_from(cookies: Mapping[str, str]) -> str:
    """The language a visitor with these cookies reads."""
    chosen = cookies.get(COOKIE, "")
    return chosen if chosen in LANGUAGES else DEFAULT


def _babel_slot() -> Any:
    """Flask-Babel's slot for the request's language (`g._flask_babel`), if it has one yet.

    One context look-up: `g.get(...) if g` makes two through Flask's proxy, and a page asks
    a hundred times (every text, unit and price).
    """
    try:
        app_globals = g._get_current_object()
    except RuntimeError:  # outside an app context
        return None
    return getattr(app_globals, "_flask_babel", None)


def translations() -> NullTranslations:
    """The catalogue of the language in force, looked up once per request.

    Flask-Babel finds it afresh on every call (three context lookups and the locale made a
    string each time), which was a sixth of a product listing's render. The slot it is kept in is
    Flask-Babel's own, which `force_locale` and `refresh` clear, so a forced language is obeyed.
    """
    found = getattr(_babel_slot(), "babel_translations", None)
    if found is None:
        found = flask_babel.get_translations()  # makes the slot, in a request
        if (slot := _babel_slot()) is not None:
            slot.babel_translations = found
    return found


def current_locale() -> Locale | None:
    """Flask-Babel's `get_locale()`: the request's language, None outside a request; once it
    is known, read from its slot in one look-up."""
    found = getattr(_babel_slot(), "babel_locale", None)
    return found if found is not None else flask_babel.get_locale()


def gettext(message: str, **variables: Any) -> str:
    text = translations().ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    variables.setdefault("num", num)
    return translations().ungettext(singular, plural, num) % variables


def lazy_gettext(message: str, **variables: Any) -> LazyString:
    """For text defined at import time, before anyone's language is known."""
    return LazyString(gettext, message, **variables)


# They take the evaluation context, which says whether to escape, rather than the whole context:
# Jinja derives a new whole context for every call of such a function inside a loop or block.
# Their own arguments are positional-only: a template may name a variable `message`.
@pass_eval_context
def _template_gettext(eval_ctx: EvalContext, message: str, /, **variables: Any) -> str:
    return _formatted(eval_ctx, translations().ugettext(message), variables)


@pass_eval_context
def _template_ngettext(
    eval_ctx: EvalContext, singular: str, plural: str, num: int, /, **variables: Any
) -> str:
    variables.setdefault("num", num)
    return _formatted(eval_ctx, translations().ungettext(singular, plural, num), variables)


def _formatted(eval_ctx: EvalContext, text: str, variables: dict[str, Any]) -> str:
    if eval_ctx.autoescape:
        # The catalogue's text is trusted as the template's own; `%` escapes the variables.
        text = Markup(text)  # noqa: S704
    return text % variables


def register(app: Flask) -> None:
    """Templates' `_`, `gettext` and `ngettext`, with Jinja's newstyle semantics: the text is
    always %-formatted, and escaped when autoescaping.

    Replaces what Flask-Babel installed. Jinja's own reach the catalogue through three nested
    context calls each (`_` looks `gettext` up, which calls the function it wraps), and derive a
    context inside loops and blocks: a storefront page makes 30 to 80 of them. These take one.
    """
    app.jinja_env.newstyle_gettext = True  # type: ignore[attr-defined]
    app.jinja_env.globals.update(
        _=_template_gettext, gettext=_template_gettext, ngettext=_template_ngettext
    )
