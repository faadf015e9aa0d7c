"""The locust users of bench/load.py: anonymous visitors browsing, and signed-in buyers ordering.

bench/load.py runs `locust -f bench/load_users.py` in its own process and hands it a plan (JSON:
which provinces, words, products and buyer accounts exist) in $KARYA_LOAD_PLAN. Nobody thinks
between requests: each user always has one request in flight, so N users are N connections.

Statistics are reset after $KARYA_LOAD_WARMUP seconds (sign-ins, compiled templates and filled
connection pools stay out of the figures). Sign-ins are timed separately, and the `X-Page-Cache`
header of each anonymous page is counted; both go to $KARYA_LOAD_EXTRA as JSON when the run ends.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from http.cookiejar import Cookie
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import gevent
from locust import FastHttpUser, constant, events, task

PLAN: dict[str, Any] = json.loads(Path(os.environ["KARYA_LOAD_PLAN"]).read_text())
WARMUP = float(os.environ.get("KARYA_LOAD_WARMUP", "10"))
EXTRA = os.environ.get("KARYA_LOAD_EXTRA", "")
TOKEN = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
# Most visits go to a few products, as in any shop; the rest are spread over the whole catalogue.
POPULAR_SHARE = 0.8
ENGLISH_SHARE = 1 / 8

cache_status: dict[str, Counter[str]] = defaultdict(Counter)
sign_in_ms: list[float] = []
_user_numbers = itertools.count()
_buyer_numbers = itertools.count()


@events.test_start.add_listener
def _reset_after_warmup(environment, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    def reset() -> None:
        environment.stats.reset_all()
        cache_status.clear()

    gevent.spawn_later(WARMUP, reset)


@events.test_stop.add_listener
def _write_extra(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    if EXTRA:
        extra = {"cache_status": cache_status, "sign_in_ms": sign_in_ms}
        with open(EXTRA, "w") as output:
            json.dump(extra, output)


def query(**params: object) -> str:
    return "/products?" + urlencode(params, quote_via=quote)


def cookie(name: str, value: str, host: str) -> Cookie:
    return Cookie(
        0,
        name,
        value,
        None,
        False,
        host,
        False,
        False,
        "/",
        True,
        False,
        None,
        True,
        None,
        None,
        {},
    )


class Shopper(FastHttpUser):
    """What every user shares: a seeded random choice and checked pages."""

    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        self.number = next(_user_numbers)
        self.rng = random.Random(self.number)

    def page(self, path: str, name: str, expect: int = 200) -> bytes:
        """GETs `path`, counted under `name`; anything but `expect` is a failure."""
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.status_code != expect:
                response.failure(f"{path}: {response.status_code}")
                return b""
            return response.content or b""

    def visit(self, path: str, name: str) -> None:
        """An anonymous page: also counts whether the page cache served it."""
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{path}: {response.status_code}")
            cache_status[name][response.headers.get("X-Page-Cache") or "none"] += 1

    def product_slug(self) -> str:
        if self.rng.random() < POPULAR_SHARE:
            return str(self.rng.choice(PLAN["popular_products"]))
        return str(self.rng.choice(PLAN["products"]))


class Visitor(Shopper):
    """Someone not signed in: home, listing pages, filters, search and product pages."""

    weight = 1

    def on_start(self) -> None:
        super().on_start()
        if self.rng.random() < ENGLISH_SHARE:
            self.client.cookiejar.set_cookie(cookie("lang", "en", urlparse(self.host).hostname))

    @task(1)
    def home(self) -> None:
        self.visit("/", "/")

    @task(4)
    def listing(self) -> None:
        self.visit("/products", "/products")

    @task(2)
    def listing_page(self) -> None:
        self.visit(query(page=self.rng.randint(2, PLAN["listing_pages"])), "/products?page=N")

    @task(2)
    def by_province(self) -> None:
        params: dict[str, object] = {"province": self.rng.choice(PLAN["provinces"])}
        if self.rng.random() < 0.5:
            params["in_stock"] = 1
        self.visit(query(**params), "/products?province=P[&in_stock=1]")

    @task(1)
    def by_category(self) -> None:
        self.visit(query(category=self.rng.choice(PLAN["categories"])), "/products?category=C")

    @task(1)
    def by_facility(self) -> None:
        self.visit(query(facility=self.rng.choice(PLAN["facilities"])), "/products?facility=F")

    @task(1)
    def in_stock(self) -> None:
        self.visit(query(in_stock=1), "/products?in_stock=1")

    @task(2)
    def search_besek(self) -> None:
        self.visit(query(q="besek"), "/products?q=besek")

    @task(2)
    def search_other(self) -> None:
        self.visit(query(q=self.rng.choice(PLAN["words"])), "/products?q=other")

    @task(6)
    def product(self) -> None:
        self.visit(f"/products/{self.product_slug()}", "/products/<slug>")


class Buyer(Shopper):
    """A signed-in buyer: a product page, add to cart, checkout, the confirmation."""

    # $KARYA_LOAD_BUYERS of the users; each signs in as its own account.
    fixed_count = int(os.environ.get("KARYA_LOAD_BUYERS", "0"))

    def on_start(self) -> None:
        super().on_start()
        # One account per buyer: two sharing a cart would check out each other's lines.
        account = PLAN["buyers"][next(_buyer_numbers) % len(PLAN["buyers"])]
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


class ListingOnly(Shopper):
    """Only the first page of the listing: compared with Hello, like with like."""

    @task
    def listing(self) -> None:
        self.visit("/products", "/products")


class Hello(Shopper):
    """bench/hello.py's only page."""

    @task
    def hello(self) -> None:
        self.page("/", "hello /")
