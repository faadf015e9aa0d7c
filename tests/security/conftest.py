"""The world the attacks run in: the demo facilities, one account per role, and Rutan
Banjarnegara's objects (an order, a quote, a proof, a payout run) to aim them at."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from orders.api_tokens import create_token
from orders.models import ApiToken, Order
from shop.accounts import auth
from shop.extensions import db, limiter

from ..helpers import PASSWORD
from ..test_access import banjarnegara_ids  # noqa: F401  (a fixture, used by `world`)

EMAILS = {
    "buyer": "buyer@example.id",
    "buyer_two": "buyer.two@example.id",
    "staff_banjarnegara": "staff.banjarnegara@example.id",
    "staff_magetan": "staff.magetan@example.id",
    "finance_banjarnegara": "finance.banjarnegara@example.id",
    "finance_regional": "finance.regional@example.id",
    "admin": "admin@example.id",
}


@dataclass
class World:
    """The app, its people and the ids of Banjarnegara's objects, for building URLs."""

    app: Flask
    users: dict
    facilities: dict[str, int]
    ids: dict[str, object]
    api_tokens: dict[str, str]
    _clients: dict[str | None, FlaskClient] = field(default_factory=dict)
    _teardown: list[Callable[[], None]] = field(default_factory=list)

    def on_teardown(self, undo: Callable[[], None]) -> None:
        """For what `monkeypatch` cannot undo (an event listener): run when the test ends."""
        self._teardown.append(undo)

    def client(self, who: str | None = None) -> FlaskClient:
        """A client signed in as `who` (a key of `users`), or a visitor; one each per test.

        Pages are read in English (`lang=en`), so that checks can look for English text.
        """
        if who not in self._clients:
            client = self.app.test_client()
            client.set_cookie("lang", "en")
            if who is not None:
                sign_in(client, EMAILS[who])
            self._clients[who] = client
        return self._clients[who]

    @property
    def office(self) -> str:
        return f"/office/{self.ids['facility_id']}"


def sign_in(client: FlaskClient, email: str) -> None:
    """As tests.helpers.login, but also on a build without CSRF tokens."""
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    data = {"email": email, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    response = client.post("/login", data=data)
    assert response.status_code == 302, f"{email} could not sign in: {response.status_code}"


@pytest.fixture
def world(app, users, facilities, banjarnegara_ids, monkeypatch) -> Iterator[World]:  # noqa: F811
    """Banjarnegara's objects (see tests/test_access.py), a token of each buyer, no rate limit
    counted yet.

    An exception in a view is answered with the 500 page, as in production, rather than raised
    into the test: a check then reports it as one more problem.
    """
    limiter.reset()
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    order = db.session.get(Order, banjarnegara_ids["order_id"])
    with app.test_request_context():
        tokens = {
            who: create_token(users[who], f"kasir {who}").plain for who in ("buyer", "buyer_two")
        }
    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == users["buyer"].id))
    with app.test_request_context():
        reset = auth.reset_token(users["buyer"])
    ids = dict(
        banjarnegara_ids,
        reference=order.reference,
        key=order.checkout_key,
        token_id=token_id,
        token=reset,
        code="en",
        slug="besek-bambu-banjarnegara",
        filename="style.css",
    )
    world = World(app, users, facilities, ids, tokens)
    yield world
    for undo in reversed(world._teardown):
        undo()
