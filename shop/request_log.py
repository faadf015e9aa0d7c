"""One log line per request, and the app's logs on stderr as JSON lines (or text for a terminal).

Every request gets an id: the caller's `X-Request-ID` when it is a sane token (a proxy or load
balancer may set one), else a new one. It is echoed in the response and named in every log line
written while the request runs, so a 500 reported by a buyer can be found in the log.

The logged path never carries the query string (search terms, tokens) nor a token that is part of
the path (a password reset link); the request's body and headers are never logged.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Request, Response, g, has_request_context, request
from sqlalchemy import inspect

log = logging.getLogger("shop.request")

HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# URL parts that are secrets: /password/reset/<token>, /orders/placed/<key>.
_SECRET_VIEW_ARGS = ("token", "key")
# The app's own packages log at INFO; libraries keep Python's default (WARNING).
_APP_LOGGERS = ("shop", "catalog", "orders", "payments", "finance")
FORMATS = ("json", "text")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Built once: `json.dumps` with options builds an encoder for every line.
_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


def request_id() -> str | None:
    """The current request's id, or None outside a request."""
    return g.get("request_id") if has_request_context() else None


def new_request_id(given: str) -> str:
    """The caller's id when it is a sane token, else a new one."""
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


def _start() -> None:
    g.request_id = new_request_id(request.headers.get(HEADER, ""))
    g.request_started = time.perf_counter()


def _logged_path(req: Request) -> str:
    path = req.path
    view_args = req.view_args
    if view_args:
        for name in _SECRET_VIEW_ARGS:
            value = view_args.get(name)
            if isinstance(value, str) and value:
                path = path.replace(value, f"<{name}>")
    return path


def _user_id(user: Any) -> int | None:
    """The signed-in user or API buyer, if the request loaded one: never a query of its own."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    identity = inspect(user).identity  # no refresh, even when a commit expired the user
    return identity[0] if identity else None


def _finish(response: Response) -> Response:
    # Every request pays for this hook: each read through Flask's `request` and `g` proxies is a
    # context look-up of its own, so they are looked up once.
    req = request._get_current_object()  # type: ignore[attr-defined]
    state = g._get_current_object()  # type: ignore[attr-defined]
    response.headers[HEADER] = state.get("request_id") or ""
    write_line(
        method=req.method,
        path=_logged_path(req),
        status=response.status_code,
        started=state.get("request_started"),
        user_id=_user_id(state.get("api_buyer") or state.get("_login_user")),
        remote_addr=req.remote_addr,
        size=response.content_length,  # None for a streamed body
    )
    return response


def write_line(
    method: str,
    path: str,
    status: int,
    started: float | None,
    user_id: int | None,
    remote_addr: str | None,
    size: int | None,
    request_id: str | None = None,
) -> None:
    """The request's line. `request_id` is for a request answered outside Flask's context
    (a page-cache hit); inside it, the id comes from `g` as for any other line."""
    duration = round((time.perf_counter() - started) * 1000, 1) if started else None
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration,
        "user_id": user_id,
        "remote_addr": remote_addr,
        "size": size,
    }
    extra: dict[str, Any] = {"http": fields}
    if request_id is not None:
        extra["given_request_id"] = request_id
    log.info("%s %s %s", method, path, status, extra=extra)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "given_request_id", None) or request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, request id, and for a request
    line its fields."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        line.update(getattr(record, "http", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _JSON.encode(line)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        # A path like /a%0Ab must not start a line of its own: control characters are escaped.
        return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if fields := getattr(record, "http", None):
            text += " {duration_ms}ms {size}B user={user_id} from {remote_addr}".format(**fields)
        return text


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is written (pytest swaps it per test)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # type: ignore[no-untyped-def]
        pass


def configure_logging(log_format: str) -> None:
    """Sends every log record to stderr in `log_format`; calling it again replaces, not adds."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    for name in _APP_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def register(app: Flask) -> None:
    """Registered before every other hook, so the id exists for all of them and the line is
    written last, with the response as sent."""
    configure_logging(app.config.get("LOG_FORMAT", "json"))
    app.before_request(_start)
    app.after_request(_finish)
