"""The signed-in buyers of bench/load.py, for locust; wrk drives the visitors (load_visitors.lua).

bench/load.py runs `locust -f bench/load_users.py` in its own process and hands it a plan (JSON:
which products and buyer accounts exist) in $KARYA_LOAD_PLAN. Nobody thinks between requests:
each buyer always has one request in flight, so N buyers are N connections.

Every request started between $KARYA_LOAD_WARMUP and that plus $KARYA_LOAD_SECONDS after the start
is kept as a sample (its name, milliseconds, and whether it failed), so that sign-ins, compiled
templates and filled connection pools stay out of the figures; bench/load.py computes the
percentiles from these samples as from wrk's. Sign-ins are timed separately. Both go to
$KARYA_LOAD_EXTRA as JSON when the run ends.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from locust import FastHttpUser, constant, events, task

PLAN: dict[str, Any] = json.loads(Path(os.environ["KARYA_LOAD_PLAN"]).read_text())
WARMUP = float(os.environ.get("KARYA_LOAD_WARMUP", "10"))
SECONDS = float(os.environ.get("KARYA_LOAD_SECONDS", "40"))
EXTRA = os.environ.get("KARYA_LOAD_EXTRA", "")
TOKEN = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')

samples: list[tuple[str, float, bool]] = []
sign_in_ms: list[float] = []
window: list[float] = []  # when the kept requests start and end (time.time())
_user_numbers = itertools.count()


@events.test_start.add_listener
def _open_window(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    start = time.time() + WARMUP
    window[:] = [start, start + SECONDS]


@events.request.add_listener
def _sample(name, response_time, exception, start_time=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    if window and start_time is not None and window[0] <= start_time < window[1]:
        samples.append((name, response_time, exception is not None))


@events.test_stop.add_listener
def _write_extra(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    if EXTRA:
        with open(EXTRA, "w") as output:
            json.dump({"samples": samples, "sign_in_ms": sign_in_ms}, output)


class Buyer(FastHttpUser):
    """A signed-in buyer: a product page, add to cart, checkout, the confirmation."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.number = next(_user_numbers)
        self.rng = random.Random(self.number)
        # One account per buyer: two sharing a cart would check out each other's lines.
        account = PLAN["buyers"][self.number % len(PLAN["buyers"])]
        token = TOKEN.search(self.page("/login", "sign-in page"))
        form = {"csrf_token": token.group(1).decode() if token else "", **account}
        started = time.perf_counter()
        with self.client.post(
            "/login", data=form, name="sign in", allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 302:
                response.failure(f"sign-in of {account['email']}: {response.status_code}")
        sign_in_ms.append((time.perf_counter() - started) * 1000)

    @task
    def order(self) -> None:
        hot = self.rng.choice(PLAN["hot_products"])
        html = self.page(f"/products/{hot['slug']}", "/products/<slug> (signed in)")
        token = TOKEN.search(html)
        if token is None or b'action="/logout"' not in html:
            return  # failed above, or not signed in: the next checks would only repeat it
        csrf = token.group(1).decode()
        form = {"csrf_token": csrf, "product_id": hot["id"], "quantity": self.rng.randint(1, 5)}
        if not self.post("/cart", form, "POST /cart", "/cart"):
            return
        html = self.page("/checkout", "GET /checkout")
        token = TOKEN.search(html)
        checkout = {
            "csrf_token": token.group(1).decode() if token else csrf,
            "checkout_key": uuid.uuid4().hex,
            "delivery_method": "pickup",
            "payment_method": "bank_transfer",
            "delivery_address": "",
            "note": "",
        }
        placed = self.post("/checkout", checkout, "POST /checkout", "/orders/placed/")
        if placed:
            self.page(placed, "GET /orders/placed/<key>")

    def page(self, path: str, name: str, expect: int = 200) -> bytes:
        """GETs `path`, counted under `name`; anything but `expect` is a failure."""
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.status_code != expect:
                response.failure(f"{path}: {response.status_code}")
                return b""
            return response.content or b""

    def post(self, path: str, form: dict[str, object], name: str, to: str) -> str | None:
        """POSTs a form; a success is a redirect to a path starting with `to`, returned."""
        with self.client.post(
            path, data=form, name=name, allow_redirects=False, catch_response=True
        ) as response:
            location = urlparse(response.headers.get("Location") or "").path
            if response.status_code != 302 or not location.startswith(to):
                response.failure(f"{path}: {response.status_code} to {location!r}")
                return None
            return location
