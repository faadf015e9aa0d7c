"""ACCEPTANCE: schemathesis runs against the live API with its default checks, and finds no server
error and no response that contradicts the OpenAPI document. This run is part of the test suite.

The run is schemathesis' own engine, the one behind `schemathesis run`. The Flask app serves on a
loopback port for the length of the test; the engine loads /api/v1/openapi.json from it, then
calls every operation with the bearer token of a seeded buyer: the document's examples, boundary
values, schema-valid and deliberately invalid data, and sequences of calls along its links. Each
response goes through every check schemathesis runs by default (not_a_server_error,
status_code_conformance, content_type_conformance, response_schema_conformance,
response_headers_conformance, negative_data_rejection, positive_data_acceptance, ignored_auth,
unsupported_method, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import schemathesis
from flask import Flask
from schemathesis.engine import Status, events, from_schema
from werkzeug.serving import WSGIRequestHandler, make_server

from bench import loopback
from orders.api_tokens import create_token
from shop.extensions import limiter

MAX_EXAMPLES = 25

# What schemathesis calls valid data is what the document can say: the shape of a request. Whether
# the products exist, are in stock and are ordered in whole packs is known only to the server,
# which refuses such an order with the documented 422 (or 409); that is no contradiction. Only
# POST /orders answers 422, and no operation answers 400 to data its document allows.
VALID_DATA_ANSWERS = ["2xx", "401", "404", "409", "422", "429"]


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *_args: Any) -> None:
        """Thousands of requests; a failure names the ones that matter."""


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """The app on a free loopback port, in a thread of its own (so with contexts of its own)."""
    with loopback.serving(make_server("127.0.0.1", 0, app, request_handler=QuietHandler)) as url:
        yield url


def findings(schema: Any) -> tuple[list[str], set[str]]:
    """Every kind of failed check and error of a whole run, and the operations it tested."""
    found: dict[tuple[str, str, str], str] = {}
    tested: set[str] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            if event.status is not Status.SKIP and event.label:
                tested.add(event.label)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status is Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        found.setdefault(
                            (str(event.label), check.name, failure.title),
                            f"{event.label} [{check.name}] {failure.title}\n"
                            f"{failure.message[:1500]}\n{check.failure_info.code_sample[:1500]}",
                        )
        elif isinstance(event, events.NonFatalError):
            found.setdefault((event.label, "error", ""), f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    return list(found.values()), tested


def test_schemathesis_finds_nothing_against_the_live_api(app, users, monkeypatch):
    # Hundreds of requests in a few seconds: the per-token limit is tested in test_api.py.
    monkeypatch.setitem(app.config, "API_RATE_LIMIT", "100000 per minute")
    limiter.reset()
    with app.test_request_context():
        token = create_token(users["buyer"], "schemathesis").plain
    config = schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": MAX_EXAMPLES},
            "checks": {"positive_data_acceptance": {"expected-statuses": VALID_DATA_ANSWERS}},
        }
    )
    with serving(app) as base_url:
        schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json", config=config)
        # The operation that served the document stays out unless a filter selects it: select all.
        found, tested = findings(schema.include(path_regex="^/"))

    assert not found, "\n\n".join(found)
    assert tested == {
        "GET /openapi.json",
        "GET /products",
        "GET /products/{slug}",
        "GET /orders",
        "POST /orders",
        "GET /orders/{reference}",
    }
