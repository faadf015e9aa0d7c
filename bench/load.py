"""Load benchmark of the storefront: a realistic mix of visitors and buyers, by wrk and locust.

One command, on this machine only (all traffic goes to 127.0.0.1):

1. a throw-away PostgreSQL database, seeded at national scale by `bench.seed_scale`, plus buyer
   accounts (one password hash, computed once) and a few products with stock for any run;
2. three gunicorn servers with shop/gunicorn_conf.py, side by side: the app with its page cache
   as in production (the app's default), the app with PAGE_CACHE_SECONDS=0, and bench/hello.py,
   a bare Flask app; the app's rate limits and page cache live in a Redis database of their own,
   flushed before and after;
3. drivers in processes of their own, nobody thinking, so N users are N connections: wrk with
   `bench/load_visitors.lua` for the anonymous visitors (a connection per thread, each request
   timed and named by the script) and locust with `bench/load_users.py` for the signed-in buyers,
   whose pages need a session and forms. First the mix of visitors and buyers on each app server;
   then, alternated round by round so the machine's other load falls on all alike, the first
   listing page alone on each and hello's page, all by wrk, so that the listing's requests/s
   read as a share of Flask's own.

Prints the tables and the issue's targets, writes bench/results/load.json, and exits 1 if any
request failed or a target was missed.
"""

from __future__ import annotations

import argparse
import json
import math
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
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
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
    ensure_wrk,
    fresh_database,
    gunicorn,
)
from catalog.models import Batch, BatchStatus, Facility, Product
from shop import create_app
from shop.accounts.models import BuyerProfile, Role, RoleGrant, User
from shop.extensions import db
from shop.gunicorn_conf import default_workers

RESULTS = ROOT / "bench" / "results"
USERS_FILE = ROOT / "bench" / "load_users.py"
VISITORS_SCRIPT = ROOT / "bench" / "load_visitors.lua"
HOT_STOCK = 10_000_000  # units per hot product: no run of any length sells out
POPULAR_PRODUCTS = 100
SEARCH_WORDS = ("rajut", "keset", "batik", "lele", "kursi jati", "tas", "roti", "bambu", "perca")
MAX_LISTING_PAGE = 40
STOP_SECONDS = 15  # locust's --stop-timeout: users finish the request they are in
TAIL_SECONDS = 3  # the drivers run on past the window, so that its last requests finish
REQUEST_TIMEOUT = 30  # seconds: wrk counts a slower answer as an error
RATIO_WARMUP = 3  # seconds: the app servers are warm from their mix; hello's need a moment
# The targets of issue 7 (bench/README.md).
BROWSE_P99_MS = 100
CHECKOUT_P99_MS = 250
MIN_RATIO = 0.5
# Pages are named by their path, a buyer's actions by method and path.
BROWSE = "/"
PRODUCTION = "with page cache"  # the runs of the app as deployed, which the targets judge
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
    driver_cpu_share: float  # wrk and locust, of one core
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


# --- one run: wrk for the visitors, locust for the buyers -----------------------------------------


def lua_string(text: str) -> str:
    """A Lua string literal of `text`'s UTF-8 bytes: printable ASCII as is, the rest as \\ddd."""
    plain = {*range(0x20, 0x7F)} - {ord('"'), ord("\\")}
    return '"' + "".join(chr(b) if b in plain else f"\\{b:03d}" for b in text.encode()) + '"'


def lua_plan(plan: dict[str, Any]) -> str:
    """What bench/load_visitors.lua chooses from, as a Lua file returning a table."""

    def value(item: object) -> str:
        if isinstance(item, list):
            return "{" + ", ".join(value(x) for x in item) + "}"
        if isinstance(item, str):
            return lua_string(item)
        return str(item)

    keys = ("provinces", "categories", "facilities", "products", "popular_products", "words")
    fields = [f"{key} = {value(plan[key])}" for key in keys]
    fields.append(f"listing_pages = {int(plan['listing_pages'])}")
    return "return {\n  " + ",\n  ".join(fields) + "\n}\n"


@dataclass(frozen=True)
class Sample:
    name: str
    milliseconds: float
    failed: bool
    page_cache: str | None  # X-Page-Cache of an anonymous page: hit, miss or none


def wrk_samples(path: Path, only: str | None) -> tuple[list[Sample], int]:
    """bench/load_visitors.lua's output: its samples, and wrk's socket errors."""
    names: dict[int, str] = {0: only or "?"}
    samples, socket_errors = [], 0
    for line in path.read_text().splitlines():
        kind, *fields = line.split("\t")
        if kind == "page":
            names[int(fields[0])] = fields[1]
        elif kind == "sample":
            code, status, micros = (int(x) for x in fields)
            samples.append(
                Sample(
                    names[code // 10],
                    micros / 1000,
                    status != 200,
                    ("none", "hit", "miss")[code % 10],
                )
            )
        elif kind == "socket errors":
            socket_errors = int(fields[0])
    return samples, socket_errors


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` of the values at or below it."""
    rank = max(1, math.ceil(share * len(ordered)))
    return round(ordered[rank - 1], 1)


def endpoint(name: str, samples: list[Sample], seconds: float) -> Endpoint:
    ordered = sorted(s.milliseconds for s in samples)
    states = Counter(s.page_cache for s in samples if s.page_cache is not None)
    return Endpoint(
        name=name,
        requests=len(samples),
        failures=sum(s.failed for s in samples),
        requests_per_second=round(len(samples) / seconds, 1),
        p50_ms=percentile(ordered, 0.50) if ordered else 0.0,
        p95_ms=percentile(ordered, 0.95) if ordered else 0.0,
        p99_ms=percentile(ordered, 0.99) if ordered else 0.0,
        page_cache=dict(states),
    )


@dataclass(frozen=True)
class Driver:
    """wrk with bench/load_visitors.lua and locust with bench/load_users.py, side by side."""

    warmup: int
    plan: Path  # JSON, for locust
    lua_plan: Path  # the same, for wrk
    folder: Path  # the drivers' output goes here

    def run(
        self,
        server: Server,
        meter: CpuMeter,
        name: str,
        seconds: int,
        visitors: int,
        buyers: int = 0,
        only: str | None = None,
        warmup: int | None = None,
    ) -> Run:
        """`visitors` connections browsing (or asking for `only`) and `buyers` buyers ordering."""
        warmup = self.warmup if warmup is None else warmup
        prefix = self.folder / name.replace(" ", "-").replace(",", "")
        visits, extra = prefix.with_suffix(".wrk"), prefix.with_suffix(".json")
        # Both run a little past the window, so that a request started in it can finish.
        running = warmup + seconds + TAIL_SECONDS
        wrk = [
            ensure_wrk(),
            f"--threads={visitors}",
            f"--connections={visitors}",
            f"--duration={running}s",
            f"--timeout={REQUEST_TIMEOUT}s",
            f"--script={VISITORS_SCRIPT}",
            server.base,
        ]
        locust = [
            str(Path(sys.executable).with_name("locust")),
            f"--locustfile={USERS_FILE}",
            "--headless",
            "--only-summary",
            f"--users={buyers}",
            f"--spawn-rate={buyers}",
            f"--run-time={running}s",
            f"--stop-timeout={STOP_SECONDS}",
            f"--host={server.base}",
            "--loglevel=WARNING",
            "Buyer",
        ]
        env = {
            **os.environ,
            "KARYA_LOAD_PLAN": str(self.plan),
            "KARYA_LOAD_LUA_PLAN": str(self.lua_plan),
            "KARYA_LOAD_WARMUP": str(warmup),
            "KARYA_LOAD_SECONDS": str(seconds),
            "KARYA_LOAD_OUT": str(visits),
            "KARYA_LOAD_EXTRA": str(extra),
        }
        if only is not None:
            env["KARYA_LOAD_PATH"] = only
        meter.wait_idle()  # what the previous run left behind is served before this one starts
        load_before = os.getloadavg()[0]
        print(f"{name}: {seconds} s after {warmup} s of warm-up", flush=True)
        log = prefix.with_suffix(".log")
        with log.open("w") as output:
            drivers = [subprocess.Popen(wrk, cwd=ROOT, env=env, stdout=output, stderr=output)]
            if buyers:
                drivers.append(
                    subprocess.Popen(locust, cwd=ROOT, env=env, stdout=output, stderr=output)
                )
            try:
                # CPU is sampled inside the window the samples come from.
                time.sleep(warmup + 0.5)
                app_before, database_before = meter.sample()
                driver_before = sum(cpu_seconds(d.pid) for d in drivers)
                started = time.monotonic()
                time.sleep(max(1.0, seconds - 1.5))
                app_after, database_after = meter.sample()
                driver_used = sum(cpu_seconds(d.pid) for d in drivers) - driver_before
                sampled = time.monotonic() - started
                for driver in drivers:
                    driver.wait(timeout=TAIL_SECONDS + STOP_SECONDS + 60)
            finally:
                for driver in drivers:
                    if driver.poll() is None:
                        driver.kill()
                        driver.wait()
        load_after = os.getloadavg()[0]
        if not visits.exists() or (buyers and not extra.exists()):
            sys.exit(f"a driver wrote no samples; their output:\n{log.read_text()[-3000:]}")
        samples, socket_errors = wrk_samples(visits, only)
        details = json.loads(extra.read_text()) if buyers else {}
        samples += [Sample(n, ms, failed, None) for n, ms, failed in details.get("samples", [])]
        by_name: dict[str, list[Sample]] = defaultdict(list)
        for sample in samples:
            by_name[sample.name].append(sample)
        total = endpoint("all", samples, seconds)
        total = replace(total, failures=total.failures + socket_errors)
        app_used = CpuMeter.used(app_before, app_after)
        per_request = 1000 / max(1.0, total.requests_per_second * sampled)
        return Run(
            name=name,
            users=visitors + buyers,
            buyers=buyers,
            seconds=seconds,
            endpoints=[endpoint(n, by_name[n], seconds) for n in sorted(by_name)],
            total=total,
            app_cpu_ms=round(app_used * per_request, 2),
            database_cpu_ms=(
                round(CpuMeter.used(database_before, database_after) * per_request, 2)
                if meter.engine is not None
                else None
            ),
            driver_cpu_share=round(driver_used / sampled, 2),
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
        f"the drivers used {run.driver_cpu_share:.0%} of a core"
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
    """The issue's targets: the slowest page of each kind counts, the ratio is the median round.

    Each run is judged; the targets are the app's as deployed, with its page cache (the
    default): the runs without it say what rendering alone costs, for reference.
    """
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
    parser.add_argument("--workers", type=int, default=default_workers(), help="gunicorn workers")
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
        plan_path, lua_path = folder / "plan.json", folder / "plan.lua"
        plan_path.write_text(json.dumps(plan))
        lua_path.write_text(lua_plan(plan))
        drivers = Driver(args.warmup, plan_path, lua_path, folder)
        visitors = args.users - args.buyers
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
                for server, label in ((cached, "with page cache"), (uncached, "no page cache")):
                    runs.append(
                        drivers.run(
                            server,
                            meters[server],
                            f"mix, {label}",
                            args.duration,
                            visitors,
                            args.buyers,
                        )
                    )
                # Alternated, so that a change in the machine's other load hits both sides.
                for n in range(1, args.rounds + 1):
                    for server, name, path in (
                        (cached, "listing alone, with page cache", "/products"),
                        (hello, "hello", "/"),
                        (uncached, "listing alone, no page cache", "/products"),
                    ):
                        run = drivers.run(
                            server,
                            meters[server],
                            f"{name}, round {n}",
                            args.ratio_duration,
                            args.users,
                            only=path,
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
        if PRODUCTION in text:
            print(f"{'met   ' if passed else 'MISSED'}  {text}")
    print("For reference, rendering every page (no page cache):")
    for text, passed in checks:
        if PRODUCTION not in text:
            print(f"  {'would be met' if passed else 'would miss  '}  {text}")

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
        "targets": [
            {"check": text, "met": passed, "production": PRODUCTION in text}
            for text, passed in checks
        ],
        "failures": failures,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "load.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten to {path.relative_to(ROOT)}")
    if failures:
        sys.exit(f"{failures} requests failed")
    missed = [text for text, passed in checks if PRODUCTION in text and not passed]
    if missed:
        sys.exit(f"{len(missed)} of the targets missed")


if __name__ == "__main__":
    main()
