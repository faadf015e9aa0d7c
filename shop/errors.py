"""Error pages in the site's style, and JSON errors for the API."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .i18n import gettext as _
from .request_log import request_id

log = logging.getLogger(__name__)


def _render(code: int, title: str, description: str):  # type: ignore[no-untyped-def]
    if request.path.startswith("/api/"):
        return {"error": {"code": code, "message": description}}, code
    return render_template("error.html", code=code, title=title, description=description), code


def _not_flask_own_report(record: logging.LogRecord) -> bool:
    return record.funcName != "log_exception"


def register(app: Flask) -> None:
    # Flask logs an unhandled exception itself, then calls `_server_error` below, which logs it
    # again with the request id: one traceback per failure is enough.
    app.logger.addFilter(_not_flask_own_report)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        code = error.code or 500
        if code == 404:
            return _render(404, _("Page not found"), _("We could not find that page."))
        if code == 429:
            return _render(429, _("Too many attempts"), str(error.description))
        if code == 413:
            return _render(413, _("Request problem"), _("The upload is too large."))
        description = error.description if code == 400 else _("The request was refused.")
        return _render(code, _("Request problem"), description)

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError):  # type: ignore[no-untyped-def]
        log.info("CSRF refusal on %s: %s", request.path, error.description)
        return _render(
            400,
            _("Request problem"),
            _("This form has expired or came from elsewhere. Reload the page and try again."),
        )

    @app.errorhandler(InternalServerError)
    def _server_error(error: InternalServerError):  # type: ignore[no-untyped-def]
        log.error(
            "server error on %s (request %s)",
            request.path,
            request_id(),
            exc_info=error.original_exception,
        )
        return _render(
            500, _("Something went wrong"), _("Please try again in a moment. We have been told.")
        )
