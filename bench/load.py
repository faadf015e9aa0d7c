"""Load benchmark of the storefront: a realistic mix of visitors and buyers, measured with locust.

One command, on this machine only (all traffic goes to 127.0.0.1):

1. a throw-away PostgreSQL database, seeded at national scale by `bench.seed_scale`, plus buyer
   accounts (one password hash, computed once) and a few products with stock for any run;
2. three gunicorn servers with shop/gunicorn_conf.py, side by side: the app with its page cache
   as in production (the app's default), the app with PAGE_CACHE_SECONDS=0, and bench/hello.py,
   a bare Flask app; the app's rate limits and page cache live in a Redis database of their own,
   flushed before and after;
3. locust, from a separate process, drives `bench/load_users.py`: N users and nobody thinking, so
   N connections. First the mix of visitors and buyers on each app server; then, alternated
   round by round so the machine's other load falls on all alike, the first listing page alone
   on each and hello's page, so that the listing's requests/s read as a share of Flask's own.

Prints the tables and the issue's targets, writes bench/results/load.json, and exits 1 if any
request failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from bench import seed_scale
from bench.listing import (
    ROOT,
    CpuMeter,
    Server,
    check_pages,
    cpu_seconds,
    fresh_database,
    gunicorn,
)
from catalog.models import Batch, BatchStatus, Facility, Product
from shop import create_app
from shop.accounts.models import BuyerProfile, Role, RoleGrant, User
from shop.extensions import db

RESULTS = ROOT / "bench" / "results"
USERS_FILE = ROOT / "bench" / "load_users.py"
HOT_STOCK = 10_000_000  # units per hot product: no run of any length sells out
POPULAR_PRODUCTS = 100
SEARCH_WORDS = ("rajut", "keset", "batik", "lele", "kursi jati", "tas", "roti", "bambu", "perca")
MAX_LISTING_PAGE = 40
STOP_SECONDS = 15  # locust's --stop-timeout: users finish the request they are in
RATIO_WARMUP = 3  # seconds: the app servers are warm from their mix; hello's need a moment
# The targets of issue 7 (bench/README.md).
BROWSE_P99_MS = 100
CHECKOUT_P99_MS = 250
MIN_RATIO = 0.5
# In bench/load_users.py pages are named by their path, a buyer's actions by method and path.
BROWSE = "/"
CHECKOUT = "POST /checkout"


@dataclass(frozen=True)
class Endpoint:
    name: str
    requests: int
    failures: int
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    page_cache: dict[str, int] = field(default_factory=dict)  # X-Page-Cache header: hit/miss/none

    @property
    def hit_share(self) -> float | None:
        total = sum(self.page_cache.values())
        return self.page_cache.get("hit", 0) / total if total else None


@dataclass(frozen=True)
class Run:
    name: str
    users: int
    buyers: int
    seconds: int
    endpoints: list[Endpoint]
    total: Endpoint
    app_cpu_ms: float  # per request, gunicorn's processes
    database_cpu_ms: float | None  # per request, the PostgreSQL backends of the bench database
    locust_cpu_share: float  # of one core
    load_before: float
    load_after: float
    sign_in_ms: list[float]

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)


# --- the data ------------------------------------------------------------------------------------


def prepare(database_url: str, buyers: int, hot: int) -> dict[str, Any]:
    """Buyer accounts and stocked products, and the plan the locust users choose from."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        password = secrets.token_urlsafe(12)  # the throw-away accounts' shared password
        password_hash = generate_password_hash(password)  # scrypt: slow by design, so once
        accounts = []
        for n in range(buyers):
            email = f"pembeli.{n:03d}@beban.example.id"
            db.session.add(
                User(
                    email=email,
                    name=f"Pembeli Uji Beban {n}",
                    password_hash=password_hash,
                    grants=[RoleGrant(role=Role.BUYER)],
                    buyer_profile=BuyerProfile(
                        business_name=f"Toko Uji Beban {n}",
                        contact_person=f"Pembeli Uji Beban {n}",
                        phone="081200000000",
                        address="Jl. Uji Beban 1, Banjarnegara",
                    ),
                )
            )
            accounts.append({"email": email, "password": password})
        # One product from each of the first facilities: checkouts then lock different rows.
        first_of_facility = (
            select(func.min(Product.id))
            .where(Product.active.is_(True))
            .group_by(Product.facility_id)
            .order_by(func.min(Product.id))
            .limit(hot)
        )
        hot_products = []
        for product in db.session.scalars(select(Product).where(Product.id.in_(first_of_facility))):
            product.min_order_qty = 1
            product.order_multiple = 1
            product.batches.append(
                Batch(
                    code="UJI-BEBAN",
                    status=BatchStatus.FINISHED,
                    finished_on=date.today(),
                    quantity_made=HOT_STOCK,
                )
            )
            hot_products.append({"id": product.id, "slug": product.slug})
        db.session.commit()
        slugs = list(
            db.session.scalars(select(Product.slug).where(Product.active.is_(True)).order_by("id"))
        )
        plan = {
            "provinces": list(
                db.session.scalars(select(Facility.province).distinct().order_by("province"))
            ),
            "categories": list(
                db.session.scalars(select(Product.category).distinct().order_by("category"))
            ),
            "facilities": list(db.session.scalars(select(Facility.slug).order_by("id"))),
            "products": slugs,
            "popular_products": random.Random(7).sample(slugs, min(POPULAR_PRODUCTS, len(slugs))),
            "words": list(SEARCH_WORDS),
            "listing_pages": max(2, min(MAX_LISTING_PAGE, len(slugs) // app.config["PAGE_SIZE"])),
            "hot_products": hot_products,
            "buyers": accounts,
        }
        db.engine.dispose()
    return plan


# --- one locust run ------------------------------------------------------------------------------


def milliseconds(value: str) -> float:
    return float(value) if value not in ("", "N/A") else 0.0


def read_stats(path: Path, cache_status: dict[str, dict[str, int]]) -> list[Endpoint]:
    """locust's `--csv` statistics: one row per request name, and the `Aggregated` row last."""
    rows = []
    with path.open(newline="") as source:
        for row in csv.DictReader(source):
            rows.append(
                Endpoint(
                    name=row["Name"],
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    requests_per_second=round(float(row["Requests/s"]), 1),
                    p50_ms=milliseconds(row["50%"]),
                    p95_ms=milliseconds(row["95%"]),
                    p99_ms=milliseconds(row["99%"]),
                    page_cache=dict(cache_status.get(row["Name"], {})),
                )
            )
    return rows


@dataclass(frozen=True)
class Driver:
    """locust with the users of bench/load_users.py, in its own process, one run at a time."""

    users: int
    warmup: int
    plan: Path
    folder: Path  # locust's statistics and output go here

    def run(
        self,
        server: Server,
        meter: CpuMeter,
        name: str,
        classes: list[str],
        seconds: int,
        buyers: int = 0,
        warmup: int | None = None,
    ) -> Run:
        """`classes` of users for `seconds` after the warm-up, `buyers` of them signed in."""
        warmup = self.warmup if warmup is None else warmup
        folder = self.folder
        prefix = folder / name.replace(" ", "-").replace(",", "")
        extra = folder / f"{prefix.name}-extra.json"
        command = [
            str(Path(sys.executable).with_name("locust")),
            "--locustfile",
            str(USERS_FILE),
            "--headless",
            "--only-summary",
            "--users",
            str(self.users),
            "--spawn-rate",
            str(self.users),
            "--run-time",
            f"{warmup + seconds}s",
            "--stop-timeout",
            str(STOP_SECONDS),
            "--host",
            server.base,
            "--csv",
            str(prefix),
            "--loglevel",
            "WARNING",
            *classes,
        ]
        env = {
            **os.environ,
            "KARYA_LOAD_PLAN": str(self.plan),
            "KARYA_LOAD_WARMUP": str(warmup),
            "KARYA_LOAD_EXTRA": str(extra),
            "KARYA_LOAD_BUYERS": str(buyers),
        }
        meter.wait_idle()  # what the previous run left behind is served before this one starts
        load_before = os.getloadavg()[0]
        print(f"{name}: {seconds} s after {warmup} s of warm-up", flush=True)
        log = folder / f"{prefix.name}.log"
        with log.open("w") as output:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
            try:
                # CPU is sampled inside locust's measured window (it resets its statistics after the
                # warm-up), and divided by the requests its requests/s give for the sampled time.
                time.sleep(warmup + 0.5)
                app_before, database_before = meter.sample()
                driver_before = cpu_seconds(process.pid)
                started = time.monotonic()
                time.sleep(max(1.0, seconds - 1.5))
                app_after, database_after = meter.sample()
                driver_used = cpu_seconds(process.pid) - driver_before
                sampled = time.monotonic() - started
                process.wait(timeout=seconds + STOP_SECONDS + 60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        load_after = os.getloadavg()[0]
        stats = prefix.with_name(prefix.name + "_stats.csv")
        if not stats.exists():
            sys.exit(f"locust wrote no statistics; its output:\n{log.read_text()[-3000:]}")
        details = json.loads(extra.read_text()) if extra.exists() else {}
        rows = read_stats(stats, details.get("cache_status", {}))
        measured = [r for r in rows if r.name != "Aggregated"]
        total = next(r for r in rows if r.name == "Aggregated")
        per_request = 1000 / max(1.0, total.requests_per_second * sampled)
        return Run(
            name=name,
            users=self.users,
            buyers=buyers,
            seconds=seconds,
            endpoints=measured,
            total=total,
            app_cpu_ms=round(CpuMeter.used(app_before, app_after) * per_request, 2),
            database_cpu_ms=(
                round(CpuMeter.used(database_before, database_after) * per_request, 2)
                if meter.engine is not None
                else None
            ),
            locust_cpu_share=round(driver_used / sampled, 2),
            load_before=round(load_before, 2),
            load_after=round(load_after, 2),
            sign_in_ms=[round(ms, 1) for ms in details.get("sign_in_ms", [])],
        )


# --- the report ----------------------------------------------------------------------------------


def print_run(run: Run) -> None:
    print()
    print(
        f"{run.name}: {run.users} users ({run.buyers} signed-in buyers), {run.seconds} s, "
        f"load average {run.load_before:.1f} -> {run.load_after:.1f}"
    )
    width = max(len(e.name) for e in [*run.endpoints, run.total])
    print(
        f"{'endpoint':<{width}}  {'req/s':>7}  {'p50 ms':>6}  {'p95 ms':>6}  {'p99 ms':>6}  "
        f"{'requests':>8}  {'failed':>6}  {'cache hits':>10}"
    )
    for e in [*run.endpoints, run.total]:
        hits = "" if e.hit_share is None else f"{e.hit_share:.0%}"
        print(
            f"{e.name:<{width}}  {e.requests_per_second:>7.1f}  {e.p50_ms:>6.0f}  {e.p95_ms:>6.0f}"
            f"  {e.p99_ms:>6.0f}  {e.requests:>8}  {e.failures:>6}  {hits:>10}"
        )
    database = "-" if run.database_cpu_ms is None else f"{run.database_cpu_ms:.1f}"
    print(
        f"CPU per request: app {run.app_cpu_ms:.1f} ms, database {database} ms; "
        f"locust used {run.locust_cpu_share:.0%} of a core"
    )
    if run.sign_in_ms:
        ordered = sorted(run.sign_in_ms)
        print(
            f"sign-ins before the measurement: {len(ordered)}, "
            f"median {ordered[len(ordered) // 2]:.0f} ms, slowest {ordered[-1]:.0f} ms"
        )


def ratios(runs: list[Run], label: str) -> list[float]:
    """Per round, the listing's requests/s over hello's in the same round."""
    listing = [r for r in runs if r.name.startswith(f"listing alone, {label}")]
    hello = [r for r in runs if r.name.startswith("hello")]
    return [
        round(a.total.requests_per_second / max(b.total.requests_per_second, 0.001), 3)
        for a, b in zip(listing, hello, strict=True)
    ]


def print_ratios(runs: list[Run]) -> None:
    print()
    print("The listing alone against bench/hello.py, round by round (requests/s, app CPU ms/req):")
    rounds = [r for r in runs if r.name.startswith(("listing alone", "hello"))]
    for run in rounds:
        print(
            f"  {run.name:<42} {run.total.requests_per_second:>7.1f} req/s  "
            f"p99 {run.total.p99_ms:>5.0f} ms  app CPU {run.app_cpu_ms:>5.2f} ms  "
            f"failed {run.total.failures}  load {run.load_before:.1f}"
        )
    for label in ("with page cache", "no page cache"):
        values = ratios(runs, label)
        print(f"/products {label} / hello: {values}, median {statistics.median(values):.2f}")


def verdicts(runs: list[Run]) -> list[tuple[str, bool]]:
    """The issue's targets: the slowest page of each kind counts, the ratio is the median round."""
    checks = []
    for mix in (r for r in runs if r.name.startswith("mix")):
        pages = [e for e in mix.endpoints if e.name.startswith(BROWSE) and e.requests]
        if pages:
            worst = max(pages, key=lambda e: e.p99_ms)
            checks.append(
                (
                    f"{mix.name}: browse and product pages p99 < {BROWSE_P99_MS} ms "
                    f"(slowest: {worst.name} {worst.p99_ms:.0f} ms)",
                    worst.p99_ms < BROWSE_P99_MS,
                )
            )
        if (checkout := mix.endpoint(CHECKOUT)) is not None and checkout.requests:
            checks.append(
                (
                    f"{mix.name}: {CHECKOUT} p99 {checkout.p99_ms:.0f} ms < {CHECKOUT_P99_MS} ms",
                    checkout.p99_ms < CHECKOUT_P99_MS,
                )
            )
    for label in ("with page cache", "no page cache"):
        ratio = statistics.median(ratios(runs, label))
        checks.append(
            (
                f"/products {label}: {ratio:.2f} x hello's requests/s >= {MIN_RATIO}",
                ratio >= MIN_RATIO,
            )
        )
    return checks


# --- main ----------------------------------------------------------------------------------------


@contextmanager
def redis_database(url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as error:
        sys.exit(f"Redis is needed at {url} (rate limits and the page cache): {error}")
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def main() -> None:
    default_workers = multiprocessing.cpu_count() * 2 + 1  # shop/gunicorn_conf.py's default
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=40, help="measured seconds of each mix")
    parser.add_argument("--warmup", type=int, default=10, help="seconds before measuring a mix")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of listing alone and hello, alternated"
    )
    parser.add_argument(
        "--ratio-duration", type=int, default=10, help="measured seconds of each of those runs"
    )
    parser.add_argument("--users", type=int, default=32, help="concurrent users (connections)")
    parser.add_argument("--buyers", type=int, default=2, help="of the users, signed-in buyers")
    parser.add_argument("--workers", type=int, default=default_workers, help="gunicorn workers")
    parser.add_argument("--hot-products", type=int, default=20, help="products buyers order")
    parser.add_argument(
        "--redis-db", type=int, default=13, help="a Redis database number to use and flush"
    )
    parser.add_argument("--facilities", type=int, default=500)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--wbp", type=int, default=50_000)
    args = parser.parse_args()
    if not 0 <= args.buyers < args.users:
        parser.error("--buyers must leave at least one anonymous visitor")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    # A plain kill then cleans up as Ctrl-C does: gunicorn stopped, database dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    load_at_start = os.getloadavg()[0]
    if load_at_start > 0.5:
        print(f"warning: load average {load_at_start:.1f} before the run", flush=True)
    runs: list[Run] = []
    with (
        redis_database(redis_url) as shared,
        fresh_database("postgresql") as database_url,
        tempfile.TemporaryDirectory(prefix="karya-load-") as tmp,
    ):
        folder = Path(tmp)
        started = time.perf_counter()
        counts = seed_scale.seed(database_url, args.facilities, args.products, args.wbp)
        plan = prepare(database_url, args.buyers, args.hot_products)
        seed_seconds = time.perf_counter() - started
        print(f"Seeded in {seed_seconds:.1f} s: {counts}", flush=True)
        plan_path = folder / "plan.json"
        plan_path.write_text(json.dumps(plan))
        locust = Driver(args.users, args.warmup, plan_path, folder)
        app = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
        sample = ["/", "/products", "/products?q=besek", f"/products/{plan['products'][0]}"]
        # Three servers side by side, idle but for the one driven: the page cache as in
        # production (the app's default PAGE_CACHE_SECONDS), no page cache, and hello.
        with (
            gunicorn(folder / "cached.log", args.workers, app) as cached,
            gunicorn(
                folder / "uncached.log", args.workers, {**app, "PAGE_CACHE_SECONDS": "0"}
            ) as uncached,
            gunicorn(folder / "hello.log", args.workers, {}, "bench.hello:app", "/") as hello,
        ):
            check_pages(cached.base, sample)
            check_pages(uncached.base, sample)
            meters = {
                cached: CpuMeter(cached.pid, database_url),
                uncached: CpuMeter(uncached.pid, database_url),
                hello: CpuMeter(hello.pid, ""),
            }
            try:
                shared.flushdb()
                mix = ["Visitor", "Buyer"]
                for server, label in ((cached, "with page cache"), (uncached, "no page cache")):
                    name = f"mix, {label}"
                    meter = meters[server]
                    runs.append(locust.run(server, meter, name, mix, args.duration, args.buyers))
                # Alternated, so that a change in the machine's other load hits both sides.
                for n in range(1, args.rounds + 1):
                    for server, name, users in (
                        (cached, "listing alone, with page cache", "ListingOnly"),
                        (hello, "hello", "Hello"),
                        (uncached, "listing alone, no page cache", "ListingOnly"),
                    ):
                        run = locust.run(
                            server,
                            meters[server],
                            f"{name}, round {n}",
                            [users],
                            args.ratio_duration,
                            warmup=RATIO_WARMUP,
                        )
                        runs.append(run)
            finally:
                for meter in meters.values():
                    meter.close()

    for run in runs:
        if run.name.startswith("mix"):
            print_run(run)
    print_ratios(runs)
    checks = verdicts(runs)
    print()
    for text, passed in checks:
        print(f"{'met   ' if passed else 'MISSED'}  {text}")

    failures = sum(run.total.failures for run in runs)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": multiprocessing.cpu_count(),
        "load_average_at_start": round(load_at_start, 2),
        "workers": args.workers,
        "users": args.users,
        "buyers": args.buyers,
        "warmup_seconds": args.warmup,
        "seed_seconds": round(seed_seconds, 1),
        "rows": counts,
        "runs": [asdict(run) for run in runs],
        "ratios": {label: ratios(runs, label) for label in ("with page cache", "no page cache")},
        "targets": [{"check": text, "met": passed} for text, passed in checks],
        "failures": failures,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "load.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten to {path.relative_to(ROOT)}")
    if failures:
        sys.exit(f"{failures} requests failed")


if __name__ == "__main__":
    main()
