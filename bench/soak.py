"""Concurrency soak on PostgreSQL: buyers and staff in many processes order, pay, replay Stripe
webhooks, refund and cancel against a few hot products for a fixed time; then every invariant of
stock and money is checked.

One command makes a throw-away database, migrates it with Alembic as production is, seeds the demo
data, three hot products and many buyers, and runs processes of threads until the deadline. Orders
go through the checkout service and through the web pages (Flask's test client); card payments go
through the payment service and the real webhook endpoint. A stand-in for Stripe's API, served by
this script on 127.0.0.1, answers the calls the app makes (create a PaymentIntent, read its client
secret, create a refund); the soak signs each event with the webhook secret as Stripe does.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import flask_migrate
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import and_, distinct, exists, func, or_, select
from werkzeug.security import generate_password_hash

from bench import loopback
from bench.databases import POSTGRES_SERVER, throwaway_database
from catalog import demo
from catalog.models import Batch, BatchParticipation, BatchStatus, Facility, Product, Wbp
from finance import checks
from finance.models import (
    Entry,
    LedgerAccount,
    Posting,
    PostingKind,
    ProceedsEvent,
    ProceedsEventKind,
)
from orders.checkout import CheckoutRefused, CheckoutRequest, OutOfStock, place_orders
from orders.fulfilment import cancel_order, change_status, set_delivery_fee
from orders.lifecycle import OrderStatus
from orders.models import DeliveryMethod, LineAllocation, Order, OrderLine, PaymentMethod
from payments import demo as payment_demo
from payments import services, stripe_gateway
from payments.models import (
    AttemptStatus,
    CardAttempt,
    OrderPaid,
    Payment,
    Refund,
    RefundStatus,
    StripeEvent,
)
from payments.refunds import request_refund
from shop import create_app
from shop.accounts.models import BuyerProfile, Role, RoleGrant, User
from shop.extensions import db

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
WEBHOOK_SECRET = "whsec_soak_karya_binaan"  # noqa: S105 (a throw-away database's, signed here)
PASSWORD = "soak-kata-sandi-1"  # noqa: S105 (of the throw-away accounts)
START_TIMEOUT = 300.0  # each process imports the app and signs its web buyers in first
STOP_GRACE = 120.0  # an action under way at the deadline may still take this long
RESULT_TIMEOUT = 60.0

# Hot products: facility, slug, name, price, minimum, multiple, the quantities buyers ask for.
HOT = (
    ("rutan-magetan", "keset-soak", "Keset perca (soak)", 15_000, 10, 10, (10, 20, 50, 100)),
    ("rutan-magetan", "sarung-soak", "Sarung bantal (soak)", 22_500, 1, 1, (1, 6, 12, 30)),
    ("rutan-banjarnegara", "besek-soak", "Besek bambu (soak)", 125, 20, 20, (20, 40, 100, 400)),
)

# Relative weights of the actions a soak thread picks from.
WEIGHTS = {
    "place_order": 24,
    "place_order_web": 10,
    "pay_card": 24,
    "pay_transfer": 12,
    "refund": 8,
    "cancel": 8,
    "set_fee": 6,
    "make_ready": 6,
}


@dataclass(frozen=True)
class Settings:
    """How long, how many at once, and how much stock: `--help` names each."""

    seconds: float = 60.0
    processes: int = 6
    threads: int = 4
    buyers: int = 200
    batches: int = 4  # finished batches per hot product
    batch_size: int = 3000
    seed: int = 0
    mixed_payments: bool = False  # card and transfer may pay the same order at once


@dataclass(frozen=True)
class HotProduct:
    id: int
    facility_id: int
    quantities: tuple[int, ...]


@dataclass(frozen=True)
class Fixture:
    """Ids the workers need, as plain values (they cross process boundaries)."""

    products: tuple[HotProduct, ...]
    buyer_ids: tuple[int, ...]
    web_buyers: tuple[tuple[int, str], ...]  # (id, email), one per thread
    staff: dict[int, int]  # facility id -> a user with the staff and finance roles there


@dataclass
class Report:
    """What a soak did and found. `seconds` runs from the start signal to the last process's
    report, so it includes the actions still under way at the deadline."""

    seconds: float
    counts: Counter[str]
    errors: list[str]
    figures: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.problems)


def app_config(database_url: str, stripe_url: str = "") -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "soak-secret-key",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "PREFERRED_URL_SCHEME": "http",
        "RATELIMIT_STORAGE_URI": "memory://",  # never a shared Redis: limits stay per process
        # An exception in a view reaches the soak with its traceback instead of a bare 500.
        "PROPAGATE_EXCEPTIONS": True,
        "STRIPE_SECRET_KEY": "sk_test_soak" if stripe_url else "",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_soak" if stripe_url else "",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe_url,
    }


def fresh_database(
    keep: bool = False, server: str = POSTGRES_SERVER
) -> AbstractContextManager[str]:
    """A new empty PostgreSQL database, dropped afterwards whatever happens unless `keep`."""
    return throwaway_database(server, prefix="karya_soak", keep=keep)


# Seeding


def prepare(database_url: str, settings: Settings) -> Fixture:
    """Migrates the empty database, seeds the demo data, the hot products and the accounts."""
    app = create_app(app_config(database_url))
    with app.app_context():
        flask_migrate.upgrade()
        demo.seed()
        payment_demo.seed()
        facilities = {f.slug: f for f in db.session.scalars(select(Facility))}
        products = []
        for slug, product_slug, name, price, moq, multiple, quantities in HOT:
            facility = facilities[slug]
            template = db.session.scalar(select(Product).where(Product.facility_id == facility.id))
            makers = db.session.scalars(select(Wbp).where(Wbp.facility_id == facility.id)).all()
            product = Product(
                slug=product_slug,
                facility=facility,
                programme=template.programme,
                name=name,
                category=template.category,
                base_price=price,
                min_order_qty=moq,
                order_multiple=multiple,
                search_text=name.lower(),
                batches=[
                    Batch(
                        code=f"{product_slug.upper()}-{n}",
                        status=BatchStatus.FINISHED,
                        started_on=date(2026, 1, 1) + timedelta(days=30 * n),
                        finished_on=date(2026, 1, 20) + timedelta(days=30 * n),
                        quantity_made=settings.batch_size,
                        material_cost=settings.batch_size * price // 5,
                        participations=[
                            BatchParticipation(wbp=wbp, contribution=10 + 7 * ((n + i) % 5))
                            for i, wbp in enumerate(makers[: 3 + n % 3])
                        ],
                    )
                    for n in range(settings.batches)
                ],
            )
            db.session.add(product)
            products.append((product, quantities))

        # One hash for every account: scrypt costs a third of a second by design.
        password_hash = generate_password_hash(PASSWORD)

        def buyer(email: str) -> User:
            user = User(email=email, name=email.split("@")[0], password_hash=password_hash)
            user.grants = [RoleGrant(role=Role.BUYER)]
            user.buyer_profile = BuyerProfile(
                business_name=f"UMKM {email.split('@')[0]}",
                contact_person="Ibu Sari",
                phone="081234567890",
                address="Kelurahan Semarang, Banjarnegara",
            )
            db.session.add(user)
            return user

        buyers = [buyer(f"soak-buyer-{n}@example.id") for n in range(settings.buyers)]
        web = [
            buyer(f"soak-web-{n}@example.id") for n in range(settings.processes * settings.threads)
        ]
        staff = {}
        for facility in {p.facility for p, _q in products}:
            user = User(email=f"soak-staff-{facility.slug}@example.id", name="Staf Giatja")
            user.password_hash = password_hash
            user.grants = [
                RoleGrant(role=Role.STAFF, facility_id=facility.id),
                RoleGrant(role=Role.FINANCE, facility_id=facility.id),
            ]
            db.session.add(user)
            staff[facility.id] = user
        db.session.commit()
        fixture = Fixture(
            products=tuple(HotProduct(p.id, p.facility_id, q) for p, q in products),
            buyer_ids=tuple(u.id for u in buyers),
            web_buyers=tuple((u.id, u.email) for u in web),
            staff={fid: u.id for fid, u in staff.items()},
        )
        db.session.remove()
        db.engine.dispose()
    return fixture


# A stand-in for Stripe's API


class _StripeHandler(BaseHTTPRequestHandler):
    """The three calls the app makes; nothing is stored, as the soak signs the events itself."""

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if self.path == "/v1/payment_intents":
            intent_id = f"pi_soak_{uuid.uuid4().hex[:24]}"
            self._answer(
                200,
                {
                    "id": intent_id,
                    "object": "payment_intent",
                    "amount": int(form.get("amount", 0)),
                    "currency": form.get("currency", ""),
                    "status": "requires_payment_method",
                    "client_secret": f"{intent_id}_secret_soak",
                },
            )
        elif self.path == "/v1/refunds":
            self._answer(
                200,
                {
                    "id": f"re_soak_{uuid.uuid4().hex[:24]}",
                    "object": "refund",
                    "amount": int(form.get("amount", 0)),
                    "status": "pending",
                },
            )
        else:
            self._answer(404, {"error": {"message": f"not in the soak's stand-in: {self.path}"}})

    def do_GET(self) -> None:  # noqa: N802
        prefix = "/v1/payment_intents/"
        if not self.path.startswith(prefix):
            self._answer(404, {"error": {"message": f"not in the soak's stand-in: {self.path}"}})
            return
        intent_id = self.path[len(prefix) :]
        self._answer(
            200,
            {
                "id": intent_id,
                "object": "payment_intent",
                "status": "requires_payment_method",
                "client_secret": f"{intent_id}_secret_soak",
            },
        )

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # thousands of requests: quiet


@contextmanager
def stripe_stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer((HOST, 0), _StripeHandler)
    server.daemon_threads = True
    with loopback.serving(server) as url:
        yield url


def signed(event: dict[str, Any]) -> tuple[bytes, str]:
    """The body and Stripe-Signature header Stripe would send: HMAC-SHA256 of "t.body"."""
    body = json.dumps(event).encode()
    at = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={at},v1={mac}"


def stripe_event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_soak_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


# The workers


def _main_text(html: str) -> str:
    """The visible text of a page's main part: what a refusal says, without the header."""
    main = html.partition("<main")[2] or html
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main)).strip()


class SoakFailure(AssertionError):
    """The app answered something it must never answer."""


CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
CHECKOUT_KEY = re.compile(r'name="checkout_key"[^>]*?value="([^"]+)"')
NUMBERS = re.compile(r"\d[\d,.]*")


class Soaker:
    """One thread of buyers and staff: random actions until the deadline, outcomes counted."""

    def __init__(
        self,
        app: Flask,
        fixture: Fixture,
        settings: Settings,
        web_buyer: tuple[int, str],
        seed: int,
    ) -> None:
        self.app = app
        self.fixture = fixture
        self.settings = settings
        self.web_buyer_id, self.web_email = web_buyer
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.client = app.test_client()
        self.client.set_cookie("lang", "en")
        self.csrf = ""

    # Running

    def sign_in(self) -> None:
        """The web buyer signs in once, before the clock starts."""
        token = self._token("/login")
        response = self.client.post(
            "/login", data={"csrf_token": token, "email": self.web_email, "password": PASSWORD}
        )
        if response.status_code != 302:
            raise SoakFailure(f"sign-in of {self.web_email} answered {response.status_code}")
        self.csrf = self._token(f"/products/{HOT[0][1]}")  # its add-to-cart form

    def run(self, deadline: float) -> None:
        names, weights = list(WEIGHTS), list(WEIGHTS.values())
        while time.monotonic() < deadline:
            action = self.rng.choices(names, weights)[0]
            outcome = self.attempt(action, getattr(self, action))
            self.counts[f"{action}: {outcome}"] += 1

    def attempt(self, action: str, call: Callable[[], str]) -> str:
        try:
            return call()
        except CheckoutRefused as refused:  # refusals a user can cause, payments' included
            return "refused: " + NUMBERS.sub("N", refused.messages[0])
        except Exception as error:
            self.fail(action, error)
            return "ERROR"

    def fail(self, action: str, error: BaseException) -> None:
        """Records the failure: a first line that names it, then its traceback."""
        message = (str(error).strip().splitlines() or [""])[0]
        name = f"{action}: {type(error).__module__}.{type(error).__qualname__}: {message}"
        self.errors.append(name + "\n" + "".join(traceback.format_exception(error)))

    def at_once(self, action: str, *calls: Callable[[], Any]) -> list[Any]:
        """Runs the calls in threads released together; an exception is recorded, not returned."""
        start = threading.Barrier(len(calls))
        results: list[Any] = [None] * len(calls)

        def run(index: int, call: Callable[[], Any]) -> None:
            try:
                start.wait(timeout=30)
                results[index] = call()
            except Exception as error:
                self.fail(action, error)

        threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    # Helpers

    @contextmanager
    def context(self) -> Iterator[None]:
        """An app context per action, in English: refusals are counted by their message."""
        with self.app.app_context(), force_locale("en"):
            yield

    def _token(self, path: str) -> str:
        match = CSRF.search(self.client.get(path).get_data(as_text=True))
        if match is None:
            raise SoakFailure(f"no CSRF token on {path}")
        return match[1]

    def _items(self) -> dict[int, int]:
        chosen = self.rng.sample(self.fixture.products, self.rng.choice((1, 1, 1, 2, 3)))
        return {p.id: self.rng.choice(p.quantities) for p in chosen}

    def _pick(self, query: Any) -> Any:
        return db.session.execute(query.order_by(func.random()).limit(1)).first()

    def _payable(self, method: Any) -> Any:
        """Orders that can be paid now, of those the buyer meant to pay by `method`.

        Card payments go to "pay on pickup" orders (the buyer pays online ahead) and transfers
        to "bank transfer" ones, so that one order is never paid two ways at once: the app does
        not guard that race (see bench/README.md); `mixed_payments` lets the soak hit it.
        """
        query = select(Order.id, Order.buyer_id, Order.reference, Order.facility_id).where(
            Order.status != OrderStatus.CANCELLED,
            Order.delivery_fee.is_not(None),
            ~exists().where(OrderPaid.order_id == Order.id),
        )
        return (
            query if self.settings.mixed_payments else query.where(Order.payment_method == method)
        )

    def _staff(self, facility_id: int) -> Any:
        return db.session.get(User, self.fixture.staff[facility_id])

    def _post_event(self, event: dict[str, Any]) -> str:
        body, signature = signed(event)
        response = self.app.test_client().post(
            "/payments/stripe/webhook",
            data=body,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        )
        if response.status_code != 200:
            raise SoakFailure(f"webhook answered {response.status_code}: {response.text[:300]}")
        return str(response.get_json()["outcome"])

    def deliver(self, action: str, event: dict[str, Any]) -> str:
        """Delivers an event, then replays it 1-3 times, sometimes twice at once as Stripe can.

        Exactly one delivery may act on it; every other one must be refused as a duplicate.
        """
        replays = self.rng.randint(1, 3)
        if self.rng.random() < 0.3:
            first = self.at_once(action, *[lambda: self._post_event(event)] * 2)
            outcomes = [o for o in first if o is not None]
            replays -= 1
        else:
            outcomes = [self._post_event(event)]
        outcomes += [self._post_event(event) for _ in range(replays)]
        acted = [o for o in outcomes if o != "duplicate"]
        self.counts["webhook deliveries"] += len(outcomes)
        self.counts["webhook replays refused as duplicates"] += len(outcomes) - len(acted)
        if len(acted) > 1:
            raise SoakFailure(f"event {event['id']} acted on {len(acted)} times: {outcomes}")
        return acted[0] if acted else "every delivery was a duplicate"

    # Actions: each returns its outcome, counted under "action: outcome"

    def place_order(self) -> str:
        """A buyer checks out through the service; sometimes the same request is retried."""
        delivery = self.rng.random() < 0.3
        request = CheckoutRequest(
            items=self._items(),
            delivery_method=DeliveryMethod.DELIVERY if delivery else DeliveryMethod.PICKUP,
            delivery_address="Jl. Raya Semarang 12, Banjarnegara" if delivery else "",
            payment_method=self.rng.choice(
                (PaymentMethod.BANK_TRANSFER, PaymentMethod.PAY_ON_PICKUP)
            ),
            checkout_key=uuid.uuid4().hex,
            accept_made_to_order=self.rng.random() < 0.5,
        )
        with self.context():
            buyer = db.session.get(User, self.rng.choice(self.fixture.buyer_ids))
            try:
                orders = place_orders(buyer, request)
            except OutOfStock:
                return "out of stock, made to order declined"
            placed = sorted(o.id for o in orders)
            made_to_order = any(line.made_to_order for o in orders for line in o.lines)
            if self.rng.random() < 0.1:
                again = sorted(o.id for o in place_orders(buyer, request))
                if again != placed:
                    raise SoakFailure(f"the same checkout key placed {placed} then {again}")
                self.counts["checkout retried with the same key"] += 1
        self.counts["orders placed"] += len(placed)
        return "placed, part made to order" if made_to_order else "placed from stock"

    def place_order_web(self) -> str:
        """The web buyer fills the cart and checks out; sometimes the form is sent twice at once."""
        for product_id, quantity in self._items().items():
            response = self.client.post(
                "/cart",
                data={"csrf_token": self.csrf, "product_id": product_id, "quantity": quantity},
            )
            if response.status_code != 302:
                raise SoakFailure(f"adding to the cart answered {response.status_code}")
        page = self.client.get("/checkout")
        match = CHECKOUT_KEY.search(page.get_data(as_text=True))
        if page.status_code != 200 or match is None:
            raise SoakFailure(f"the checkout page answered {page.status_code} without its key")
        form = {
            "csrf_token": self.csrf,
            "checkout_key": match[1],
            "delivery_method": "pickup",
            "payment_method": "pay_on_pickup",
            "accept_made_to_order": "y",
        }
        if self.rng.random() < 0.25:
            twin = self.app.test_client()
            cookie = self.client.get_cookie("session")
            if cookie is None:
                raise SoakFailure("the signed-in client has no session cookie")
            twin.set_cookie("session", cookie.value)
            responses = self.at_once(
                "place_order_web",
                lambda: self.client.post("/checkout", data=form),
                lambda: twin.post("/checkout", data=form),
            )
            self.counts["web checkouts sent twice at once"] += 1
        else:
            responses = [self.client.post("/checkout", data=form)]
        outcomes = []
        for response in responses:
            if response is None:
                continue  # an exception, already recorded
            location = response.headers.get("Location", "")
            if response.status_code == 302 and f"/orders/placed/{match[1]}" in location:
                outcomes.append("placed")
            elif response.status_code == 302 and location.endswith("/cart"):
                outcomes.append("cart already emptied by the twin")
            else:
                raise SoakFailure(
                    f"checkout answered {response.status_code} {location}: "
                    f"{_main_text(response.get_data(as_text=True))[:600]}"
                )
        if "placed" in outcomes:
            self.counts["orders placed"] += self._orders_of(match[1])
        return " + ".join(sorted(outcomes)) or "ERROR"

    def _orders_of(self, checkout_key: str) -> int:
        with self.context():
            return int(
                db.session.scalar(
                    select(func.count(Order.id)).where(Order.checkout_key == checkout_key)
                )
                or 0
            )

    def pay_card(self) -> str:
        """A buyer starts a card payment (service or card page); Stripe's event then pays it."""
        web = self.rng.random() < 0.3
        with self.context():
            query = self._payable(PaymentMethod.PAY_ON_PICKUP)
            if web:
                query = query.where(Order.buyer_id == self.web_buyer_id)
            row = self._pick(query)
            if row is None:
                return "nothing to pay"
            if not web:
                attempt = stripe_gateway.start_card_payment(
                    row.id, db.session.get(User, row.buyer_id)
                )
                intent_id, amount = attempt.intent_id, attempt.amount
        if web:
            response = self.client.post(
                f"/orders/{row.reference}/pay/card", data={"csrf_token": self.csrf}
            )
            if response.status_code == 409:
                return "card page refused: paid or cancelled meanwhile"
            if response.status_code != 200:
                raise SoakFailure(f"the card page answered {response.status_code}")
            with self.context():
                pending = db.session.execute(
                    select(CardAttempt.intent_id, CardAttempt.amount)
                    .where(
                        CardAttempt.order_id == row.id,
                        CardAttempt.status == AttemptStatus.PENDING,
                        CardAttempt.intent_id.is_not(None),
                    )
                    .order_by(CardAttempt.id.desc())
                    .limit(1)
                ).first()
            if pending is None:
                # Another thread paid the same attempt between the card page and this read (the
                # card page reuses a pending attempt): the app did right; nothing left to pay.
                return "card attempt paid meanwhile by another thread"
            intent_id, amount = pending
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount * stripe_gateway.CENTS,
            "currency": stripe_gateway.CURRENCY,
            "status": "succeeded",
            "metadata": {"order_id": str(row.id), "reference": row.reference},
        }
        outcome = self.deliver("pay_card", stripe_event("payment_intent.succeeded", intent))
        if self.rng.random() < 0.15:
            # Another event about the same intent (a second endpoint, a resend): no new payment.
            later = self.deliver("pay_card", stripe_event("payment_intent.succeeded", intent))
            self.counts[f"second event for a paid intent: {later}"] += 1
        return ("by the card page: " if web else "") + outcome

    def pay_transfer(self) -> str:
        """Staff confirm a bank transfer, sometimes in two parts, sometimes clicking twice."""
        with self.context():
            row = self._pick(self._payable(PaymentMethod.BANK_TRANSFER))
            if row is None:
                return "nothing to pay"
            due = services.amount_due(db.session.get(Order, row.id))
            staff = self._staff(row.facility_id)
            parts = [due // 2, due - due // 2] if due > 1 and self.rng.random() < 0.3 else [due]
            reference = f"TRF-{uuid.uuid4().hex[:12]}"
            for n, amount in enumerate(parts):
                payment = services.confirm_receipt(
                    row.id, PaymentMethod.BANK_TRANSFER, amount, date.today(),
                    f"{reference}-{n}", staff,
                )  # fmt: skip
            if self.rng.random() < 0.2:
                again = services.confirm_receipt(
                    row.id, PaymentMethod.BANK_TRANSFER, parts[-1], date.today(),
                    f"{reference}-{len(parts) - 1}", staff,
                )  # fmt: skip
                if again.id != payment.id:
                    raise SoakFailure(f"transfer {reference} recorded twice")
                self.counts["transfer confirmed twice (double click)"] += 1
        return "paid in two parts" if len(parts) == 2 else "paid"

    def refund(self) -> str:
        """Finance refunds some units of a paid order; a card refund is confirmed by Stripe."""
        with self.context():
            row = self._pick(
                select(Order.id, Order.facility_id).join(OrderPaid, OrderPaid.order_id == Order.id)
            )
            if row is None:
                return "nothing paid yet"
            left = {
                line_id: units
                for line_id, units in services.refundable_units(
                    db.session.get(Order, row.id)
                ).items()
                if units > 0
            }
            if not left:
                return "nothing left to refund"
            line_id = self.rng.choice(sorted(left))
            units = self.rng.randint(1, max(1, left[line_id] // 3))
            refund = request_refund(
                row.id, {line_id: units}, "Sebagian barang rusak", self._staff(row.facility_id)
            )
            by_card, stripe_id = refund.method is PaymentMethod.CARD, refund.stripe_refund_id
        if not by_card:
            return "transfer refund confirmed"
        charge = {
            "id": f"ch_soak_{uuid.uuid4().hex[:24]}",
            "object": "charge",
            "refunds": {"data": [{"id": stripe_id, "object": "refund", "status": "succeeded"}]},
        }
        return "card refund: " + self.deliver("refund", stripe_event("charge.refunded", charge))

    def cancel(self) -> str:
        """A buyer cancels an unpaid order: its units go back to their batches."""
        with self.context():
            row = self._pick(
                select(Order.id, Order.buyer_id).where(
                    Order.status == OrderStatus.PLACED,
                    ~exists().where(OrderPaid.order_id == Order.id),
                )
            )
            if row is None:
                return "nothing to cancel"
            cancel_order(row.id, "Salah pesan", db.session.get(User, row.buyer_id))
        return "cancelled"

    def set_fee(self) -> str:
        """Staff confirm what delivery costs, so the order can be paid."""
        with self.context():
            row = self._pick(
                select(Order.id, Order.facility_id).where(
                    Order.status == OrderStatus.PLACED,
                    Order.delivery_method == DeliveryMethod.DELIVERY,
                    Order.delivery_fee.is_(None),
                )
            )
            if row is None:
                return "no fee to set"
            fee = self.rng.choice((0, 15_000, 25_000, 40_000))
            set_delivery_fee(row.id, fee, self._staff(row.facility_id))
        return "fee set"

    def make_ready(self) -> str:
        """Staff confirm an order with made-to-order units and mark it ready: units that batches
        hold now are allocated, and credited at once if the order is paid."""
        with self.context():
            row = self._pick(
                select(Order.id, Order.facility_id, Order.status).where(
                    Order.status.in_((OrderStatus.PLACED, OrderStatus.CONFIRMED)),
                    exists().where(
                        OrderLine.order_id == Order.id,
                        OrderLine.made_to_order > 0,
                        OrderLine.cancelled.is_(False),
                    ),
                )
            )
            if row is None:
                return "nothing waiting"
            staff = self._staff(row.facility_id)
            if row.status == OrderStatus.PLACED:
                change_status(row.id, OrderStatus.CONFIRMED, staff)
            change_status(row.id, OrderStatus.READY, staff)
        return "ready"


def quiet() -> None:
    """The app logs a line per request and per Stripe event: thousands here. Warnings stay."""
    for name in ("shop", "catalog", "orders", "payments", "finance"):
        logging.getLogger(name).setLevel(logging.WARNING)


def work(
    index: int,
    database_url: str,
    stripe_url: str,
    fixture: Fixture,
    settings: Settings,
    go: Any,
    results: Any,
) -> None:
    """One process: signs its threads' web buyers in, waits for `go`, soaks, reports."""
    errors: list[str] = []
    counts: Counter[str] = Counter()
    try:
        app = create_app(app_config(database_url, stripe_url))
        quiet()
        soakers = [
            Soaker(
                app,
                fixture,
                settings,
                fixture.web_buyers[index * settings.threads + n],
                seed=settings.seed * 1000 + index * 100 + n,
            )
            for n in range(settings.threads)
        ]
        for soaker in soakers:
            soaker.sign_in()
    except Exception:
        failure = f"process {index}: could not start\n{traceback.format_exc()}"
        results.put(("done", index, counts, [failure]))
        return
    results.put(("ready", index, None, None))
    if not go.wait(timeout=START_TIMEOUT):
        results.put(("done", index, counts, [f"process {index}: never told to start"]))
        return
    deadline = time.monotonic() + settings.seconds
    threads = [
        threading.Thread(target=s.run, args=(deadline,), daemon=True, name=f"soak-{index}-{n}")
        for n, s in enumerate(soakers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + STOP_GRACE)
        if thread.is_alive():
            errors.append(f"{thread.name} still busy {STOP_GRACE:.0f} s after the deadline")
    for soaker in soakers:
        counts.update(soaker.counts)
        errors += soaker.errors
    with app.app_context():
        db.engine.dispose()
    results.put(("done", index, counts, errors))


def soak(database_url: str, stripe_url: str, fixture: Fixture, settings: Settings) -> Report:
    """Starts the processes, releases them together, and gathers what they counted."""
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    results = context.Queue()
    processes = [
        context.Process(
            target=work,
            args=(n, database_url, stripe_url, fixture, settings, go, results),
            name=f"soak-{n}",
        )
        for n in range(settings.processes)
    ]
    for process in processes:
        process.start()
    counts: Counter[str] = Counter()
    errors: list[str] = []
    ready: set[int] = set()
    done: set[int] = set()
    silent: set[int] = set()  # seen exited with nothing queued: reported dead if seen again

    def collect(enough: Callable[[], bool], seconds: float) -> None:
        """Reads reports until `enough`; a process that died or stays silent is an error."""
        limit = time.monotonic() + seconds
        while not enough():
            try:
                kind, index, part, failures = results.get(timeout=1.0)
            except queue.Empty:
                for n, process in enumerate(processes):
                    if n in done or process.exitcode is None:
                        continue
                    if n in silent:
                        errors.append(f"process {n} exited ({process.exitcode}) without a report")
                        done.add(n)
                    silent.add(n)
                if time.monotonic() > limit:
                    missing = sorted(set(range(settings.processes)) - done)
                    errors.append(f"processes {missing} did not report within {seconds:.0f} s")
                    done.update(missing)
                continue
            if kind == "ready":
                ready.add(index)
            else:
                done.add(index)
                counts.update(part)
                errors.extend(failures)

    started = time.monotonic()
    try:
        collect(lambda: len(ready | done) == settings.processes, START_TIMEOUT)
        started = time.monotonic()
        go.set()
        collect(
            lambda: len(done) == settings.processes,
            settings.seconds + STOP_GRACE + RESULT_TIMEOUT,
        )
    finally:
        go.set()
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
    return Report(seconds=time.monotonic() - started, counts=counts, errors=errors)


# The checks


def problems() -> list[str]:
    """Every broken invariant of stock and money, in the current session (in an app context).

    It reads through the session, so it sees the session's own uncommitted writes too.
    """
    return (
        [f"ledger: {p}" for p in checks.problems()]
        + stock_problems()
        + credit_problems()
        + payment_problems()
    )


def stock_problems() -> list[str]:
    """Order lines; batches (over-allocated, or miscounted) are `flask ledger check`'s."""
    found = []
    by_line = (
        select(LineAllocation.line_id, func.sum(LineAllocation.quantity).label("units"))
        .where(LineAllocation.released.is_(False))
        .group_by(LineAllocation.line_id)
        .subquery()
    )
    units = func.coalesce(by_line.c.units, 0)
    for line_id, quantity, waiting, cancelled, taken in db.session.execute(
        select(
            OrderLine.id, OrderLine.quantity, OrderLine.made_to_order, OrderLine.cancelled, units
        )
        .outerjoin(by_line, by_line.c.line_id == OrderLine.id)
        .where(
            or_(
                units > OrderLine.quantity,
                and_(OrderLine.cancelled.is_(False), units + OrderLine.made_to_order
                     != OrderLine.quantity),
                and_(OrderLine.cancelled.is_(True), units > 0),
            )
        )
    ):  # fmt: skip
        state = "cancelled" if cancelled else f"{waiting} to be made"
        found.append(f"order line {line_id}: {quantity} ordered ({state}), {taken} allocated")
    return found


def credit_problems() -> list[str]:
    """A paid order has one receipt and one proceeds posting per allocation; others have none;
    and each account exists once."""
    found = []
    # A unique constraint lets rows whose wbp_id is NULL repeat: a facility's own accounts.
    n = func.count(LedgerAccount.id)
    for kind, facility_id, wbp_id, count in db.session.execute(
        select(LedgerAccount.kind, LedgerAccount.facility_id, LedgerAccount.wbp_id, n)
        .group_by(LedgerAccount.kind, LedgerAccount.facility_id, LedgerAccount.wbp_id)
        .having(n > 1)
    ):
        owner = f"WBP {wbp_id}" if wbp_id else f"facility {facility_id}"
        found.append(f"{count} {kind} accounts of {owner}: its balance is split between them")
    receipts = (
        select(Posting.order_id, func.count(Posting.id).label("n"))
        .where(Posting.kind == PostingKind.RECEIPT)
        .group_by(Posting.order_id)
        .subquery()
    )
    paid = select(OrderPaid.order_id).where(OrderPaid.order_id == receipts.c.order_id).exists()
    for order_id, n in db.session.execute(
        select(receipts.c.order_id, receipts.c.n).where(or_(receipts.c.n != 1, ~paid))
    ):
        found.append(f"order {order_id}: {n} receipt postings, paid: no or twice")
    receipt = exists().where(
        Posting.kind == PostingKind.RECEIPT, Posting.order_id == OrderPaid.order_id
    )
    for (order_id,) in db.session.execute(select(OrderPaid.order_id).where(~receipt)):
        found.append(f"order {order_id} is paid but has no receipt posting")
    events = (
        select(ProceedsEvent.order_id, func.count(ProceedsEvent.id).label("n"))
        .where(ProceedsEvent.kind == ProceedsEventKind.PAYMENT_RECEIVED)
        .group_by(ProceedsEvent.order_id)
        .subquery()
    )
    n = func.coalesce(events.c.n, 0)
    for order_id, count in db.session.execute(
        select(OrderPaid.order_id, n)
        .outerjoin(events, events.c.order_id == OrderPaid.order_id)
        .where(n != 1)
    ):
        found.append(f"order {order_id} is paid but has {count} payment-received events")

    credits = (
        select(Entry.allocation_id, func.count(distinct(Entry.posting_id)).label("n"))
        .join(Posting, Posting.id == Entry.posting_id)
        .where(Posting.kind == PostingKind.PROCEEDS, Entry.memo == "clearing")
        .group_by(Entry.allocation_id)
        .subquery()
    )
    n = func.coalesce(credits.c.n, 0)
    is_paid = OrderPaid.order_id.is_not(None)
    for allocation_id, released, order_paid, count in db.session.execute(
        select(LineAllocation.id, LineAllocation.released, is_paid, n)
        .join(OrderLine, OrderLine.id == LineAllocation.line_id)
        .outerjoin(OrderPaid, OrderPaid.order_id == OrderLine.order_id)
        .outerjoin(credits, credits.c.allocation_id == LineAllocation.id)
        .where(
            or_(
                n > 1,
                and_(is_paid, LineAllocation.released.is_(False), n != 1),
                and_(~is_paid, n > 0),
            )
        )
    ):
        state = "paid" if order_paid else "unpaid"
        found.append(
            f"allocation {allocation_id} ({state}, {'released' if released else 'held'}): "
            f"{count} proceeds postings"
        )
    return found


def payment_problems() -> list[str]:
    """One payment per card attempt, whatever the replays; never more paid than ordered."""
    found = []
    n = func.count(Payment.id)
    for attempt_id, status, count in db.session.execute(
        select(CardAttempt.id, CardAttempt.status, n)
        .outerjoin(
            Payment,
            and_(Payment.method == PaymentMethod.CARD, Payment.reference == CardAttempt.intent_id),
        )
        .group_by(CardAttempt.id, CardAttempt.status)
        .having(
            or_(
                n > 1,
                and_(CardAttempt.status == AttemptStatus.SUCCEEDED, n != 1),
                and_(CardAttempt.status != AttemptStatus.SUCCEEDED, n > 0),
            )
        )
    ):
        found.append(f"card attempt {attempt_id} ({status}) has {count} payments")
    orphans = db.session.scalar(
        select(func.count(Payment.id)).where(
            Payment.method == PaymentMethod.CARD,
            ~exists().where(CardAttempt.intent_id == Payment.reference),
        )
    )
    if orphans:
        found.append(f"{orphans} card payments belong to no attempt")

    payments = (
        select(Payment.order_id, func.sum(Payment.amount).label("amount"))
        .group_by(Payment.order_id)
        .subquery()
    )
    ordered = (
        select(OrderLine.order_id, func.sum(OrderLine.quantity * OrderLine.unit_price).label("v"))
        .group_by(OrderLine.order_id)
        .subquery()
    )
    refunds = (
        select(Refund.order_id, func.sum(Refund.amount).label("amount"))
        .where(Refund.status != RefundStatus.FAILED)
        .group_by(Refund.order_id)
        .subquery()
    )
    fee = func.coalesce(Order.delivery_fee, 0)
    refunded = func.coalesce(refunds.c.amount, 0)
    is_paid = exists().where(OrderPaid.order_id == Order.id)
    for reference, status, subtotal, delivery, paid, value, back, order_paid in db.session.execute(
        select(
            Order.reference, Order.status, Order.subtotal, Order.delivery_fee,
            payments.c.amount, ordered.c.v, refunded, is_paid,
        )
        .join(payments, payments.c.order_id == Order.id)
        .join(ordered, ordered.c.order_id == Order.id)
        .outerjoin(refunds, refunds.c.order_id == Order.id)
        .where(
            or_(
                # Cancelling keeps the lines' prices but sets the subtotal to zero.
                payments.c.amount > ordered.c.v + fee,
                and_(Order.status != OrderStatus.CANCELLED,
                     payments.c.amount > Order.subtotal + fee),
                refunded > payments.c.amount,
                and_(~is_paid, Order.status != OrderStatus.CANCELLED,
                     Order.delivery_fee.is_not(None), payments.c.amount >= Order.subtotal + fee),
            )
        )
    ):  # fmt: skip
        found.append(
            f"order {reference} ({status}, subtotal {subtotal}, fee {delivery}, lines {value}): "
            f"paid {paid}, refunded {back}, marked paid: {'yes' if order_paid else 'no'}"
        )
    return found


def ledger_cli(database_url: str) -> list[str]:
    """`flask --app shop ledger check` as an operator runs it, against the soaked database."""
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "soak-secret-key"}
    finished = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "shop", "ledger", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if finished.returncode == 0:
        return []
    return [f"flask ledger check exited {finished.returncode}: {finished.stderr.strip()[-2000:]}"]


def figures() -> dict[str, int]:
    """What the database holds after the soak: the truth behind the counters."""

    def count(*where: Any, of: Any) -> int:
        return int(db.session.scalar(select(func.count()).select_from(of).where(*where)) or 0)

    return {
        "orders": count(of=Order),
        "orders cancelled": count(Order.status == OrderStatus.CANCELLED, of=Order),
        "orders paid": count(of=OrderPaid),
        "payments": count(of=Payment),
        "card attempts": count(of=CardAttempt),
        "refunds": count(of=Refund),
        "allocations": count(of=LineAllocation),
        "allocations released": count(LineAllocation.released.is_(True), of=LineAllocation),
        "stripe events handled": count(of=StripeEvent),
    }


def check(database_url: str) -> tuple[list[str], dict[str, int]]:
    """The ledger command's verdict and the soak's own checks; and what the database holds."""
    found = ledger_cli(database_url)
    app = create_app(app_config(database_url))
    with app.app_context():
        found += problems()
        counted = figures()
        db.session.remove()
        db.engine.dispose()
    return found, counted


def run_in(database_url: str, settings: Settings) -> Report:
    """The whole soak against an empty database: seed, soak, check."""
    fixture = prepare(database_url, settings)
    with stripe_stand_in() as stripe_url:
        report = soak(database_url, stripe_url, fixture, settings)
    report.problems, report.figures = check(database_url)
    return report


def error_kind(error: str) -> str:
    """An error's first line, numbers and ids blurred: what tells one failure from another."""
    return NUMBERS.sub("N", error.split("\n", 1)[0])[:240]


def print_report(report: Report, settings: Settings) -> None:
    seconds = max(report.seconds, 1e-9)
    counts = report.counts
    print(
        f"\n{settings.processes} processes x {settings.threads} threads, "
        f"{report.seconds:.1f} s (asked {settings.seconds:.0f} s)"
    )
    print("\nOutcomes:")
    for key, value in sorted(counts.items()):
        print(f"  {value:>7}  {key}")
    print("\nIn the database:")
    for key, value in report.figures.items():
        print(f"  {value:>7}  {key}")
    print(
        f"\nThroughput: {report.figures.get('orders', 0) / seconds:.1f} orders/s, "
        f"{report.figures.get('payments', 0) / seconds:.1f} payments/s, "
        f"{counts['webhook deliveries'] / seconds:.1f} webhook deliveries/s "
        f"({counts['webhook replays refused as duplicates']} replays refused as duplicates)"
    )
    # The same failure is often hit many times: each kind once, with the latest frames.
    kinds = Counter(error_kind(e) for e in report.errors)
    shown: set[str] = set()
    for error in report.errors:
        kind = error_kind(error)
        if kind not in shown:
            shown.add(kind)
            print(f"\nERROR x{kinds[kind]}: {kind}\n{error.split(chr(10), 1)[-1][-6000:]}")
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    verdict = "FAILED" if report.failed else "passed"
    print(f"\nSoak {verdict}: {len(report.errors)} errors, {len(report.problems)} problems")


def main() -> None:
    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--processes", type=int, default=defaults.processes)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--buyers", type=int, default=defaults.buyers)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--mixed-payments",
        action="store_true",
        help="let card and transfer pay the same order at once (a race the app does not guard)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    settings = Settings(
        seconds=args.seconds,
        processes=args.processes,
        threads=args.threads,
        buyers=args.buyers,
        batch_size=args.batch_size,
        seed=args.seed,
        mixed_payments=args.mixed_payments,
    )
    # A plain kill then cleans up as Ctrl-C does: processes stopped, database dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    load = os.getloadavg()[0]
    with fresh_database(keep=args.keep) as database_url:
        report = run_in(database_url, settings)
    print_report(report, settings)
    # Every process shares the machine's cores with whatever else runs: a busy one gives less.
    print(f"Load average at the start: {load:.1f} on {os.cpu_count()} cores")
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
