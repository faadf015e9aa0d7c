"""One JSON line per request on stderr, with its id; no query string, password or token in it."""

import json
import re

import pytest
from flask import abort

from orders.api_tokens import create_token
from shop import create_app, request_log
from shop.extensions import db, limiter

from .helpers import PASSWORD, login, post_form

FIELDS = {
    "time",
    "level",
    "request_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "user_id",
    "remote_addr",
    "size",
}


@pytest.fixture(autouse=True)
def _json_log(app):
    """Whatever app a test before made last, these tests read JSON lines (`app`: the limiter is
    set up before it is reset)."""
    request_log.configure_logging("json")
    limiter.reset()


def log_lines(capsys) -> list[dict]:
    """The JSON lines written to stderr since the last call; every line must be JSON."""
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


def request_lines(capsys) -> list[dict]:
    return [line for line in log_lines(capsys) if line["logger"] == "shop.request"]


def test_a_request_writes_one_json_line_with_its_fields(client, capsys):
    capsys.readouterr()
    response = client.get("/healthz")
    [line] = request_lines(capsys)
    assert line.keys() >= FIELDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line["level"] == "INFO"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["user_id"] is None
    assert line["remote_addr"] == "127.0.0.1"
    assert line["size"] == len(response.get_data())
    assert line["request_id"] == response.headers["X-Request-ID"]


def test_query_strings_passwords_and_tokens_never_reach_the_log(app, client, users, capsys):
    buyer = users["buyer"]
    with app.test_request_context():
        token = create_token(buyer, "kasir toko").plain
    capsys.readouterr()

    login(client, buyer.email)  # the password travels in the form body
    client.get("/products?q=ikan-asin-rahasia&page=1")
    api = client.get("/api/v1/orders?page=1", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    post_form(client, "/login", {"email": buyer.email, "password": "salah-" + PASSWORD})
    client.get("/password/reset/reset-token-rahasia-123")

    err = capsys.readouterr().err
    for secret in (PASSWORD, token, token[:12], "ikan-asin-rahasia", "reset-token-rahasia", "?"):
        assert secret not in err, secret
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    paths = [(x["method"], x["path"]) for x in lines if x["logger"] == "shop.request"]
    assert ("GET", "/products") in paths
    assert ("GET", "/api/v1/orders") in paths
    assert ("GET", "/password/reset/<token>") in paths
    by_path = {x["path"]: x for x in lines if x["logger"] == "shop.request"}
    assert by_path["/products"]["user_id"] == buyer.id  # the session's user
    assert by_path["/api/v1/orders"]["user_id"] == buyer.id  # the token's buyer


def test_the_request_id_round_trips(client, capsys):
    capsys.readouterr()
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a_trace-42"})
    assert response.headers["X-Request-ID"] == "lb-7f3a_trace-42"
    [line] = request_lines(capsys)
    assert line["request_id"] == "lb-7f3a_trace-42"


@pytest.mark.parametrize(
    "given",
    ["x" * 65, "two words", "<script>alert(1)</script>", "id\u00e9", "a;b", ""],
)
def test_a_bad_request_id_is_replaced(client, capsys, given):
    capsys.readouterr()
    response = client.get("/healthz", headers={"X-Request-ID": given})
    replaced = response.headers["X-Request-ID"]
    assert replaced != given
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", replaced)
    [line] = request_lines(capsys)
    assert line["request_id"] == replaced


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


@pytest.fixture
def failing_app(database_url):
    """An app as in production (no TESTING): a view that fails gets the 500 page."""
    # Not RATELIMIT_ENABLED=False: the limiter is one object, and that would switch it off for the
    # test app too.
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_STORAGE_URI": "memory://"}
    )

    @app.get("/boom")
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("the view failed")

    @app.get("/gone")
    def gone():  # type: ignore[no-untyped-def]
        abort(410)

    yield app
    with app.app_context():
        db.engine.dispose()


def test_a_server_error_is_logged_with_the_request_id(failing_app, capsys):
    request_log.configure_logging("json")
    capsys.readouterr()
    response = failing_app.test_client().get("/boom", headers={"X-Request-ID": "buyer-report-1"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "buyer-report-1"
    lines = log_lines(capsys)
    [error] = [x for x in lines if x["level"] == "ERROR"]
    assert error["request_id"] == "buyer-report-1"
    assert "buyer-report-1" in error["message"]  # in the text too, for a text log
    assert "RuntimeError: the view failed" in error["exception"]
    [line] = [x for x in lines if x["logger"] == "shop.request"]
    assert (line["status"], line["request_id"]) == (500, "buyer-report-1")


def test_the_text_format_names_the_request_on_one_line(failing_app, capsys):
    request_log.configure_logging("text")
    capsys.readouterr()
    failing_app.test_client().get("/gone?secret=1", headers={"X-Request-ID": "text-log-1"})
    [line] = [x for x in capsys.readouterr().err.splitlines() if "shop.request" in x]
    assert re.search(r"INFO shop\.request \[text-log-1\] GET /gone 410 [\d.]+ms \d+B", line)
    assert "secret" not in line
    failing_app.test_client().get("/gone%0A2026-01-01 00:00:00 ERROR forged")
    [line] = [x for x in capsys.readouterr().err.splitlines() if "shop.request" in x]
    assert "/gone\\x0a2026-01-01" in line  # escaped: no forged line of its own


def test_an_unknown_log_format_stops_the_start(database_url):
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        create_app({"SQLALCHEMY_DATABASE_URI": database_url, "LOG_FORMAT": "xml"})
