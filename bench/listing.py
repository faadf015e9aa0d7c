"""Load test of the storefront listing and product pages at national scale.

One command creates a throw-away database, seeds it with `bench.seed_scale`, serves the app with
gunicorn exactly as production does, and drives each URL with wrk from a separate process. Only
127.0.0.1 is ever contacted, and every load run is bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from bench import seed_scale
from catalog.models import Facility, Product

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0  # gunicorn's graceful_timeout is 20 s
WARMUP_SECONDS = 2
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass(frozen=True)
class Result:
    url: str
    requests_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx responses plus socket errors (timeouts included)


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A new empty database, removed afterwards whatever happens."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="karya-bench-") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    name = f"karya_bench_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package when it is missing."""
    if found := shutil.which("wrk"):
        return found
    print("wrk not found: installing it with apt-get", flush=True)
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        if subprocess.run(command, check=False).returncode != 0:
            break
    if found := shutil.which("wrk"):
        return found
    sys.exit("wrk is required and could not be installed; install it (apt-get install wrk).")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def benchmark_urls(database_url: str) -> list[str]:
    """The listing pages a visitor hits most, with a province and product that exist."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            province = conn.scalar(select(Facility.province).order_by(Facility.id).limit(1))
            slugs = list(
                conn.scalars(select(Product.slug).where(Product.active).order_by(Product.id))
            )
    finally:
        engine.dispose()
    return [
        "/products",
        "/products?page=50",
        "/products?q=besek",
        "/products?" + urlencode({"province": province, "in_stock": 1}, quote_via=quote),
        f"/products/{slugs[len(slugs) // 2]}",
    ]


@contextmanager
def gunicorn(database_url: str, workers: int, log: Path) -> Iterator[str]:
    """Serves the app under gunicorn; yields its base URL and always stops it, bounded in time."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_hex(32),
        "SESSION_COOKIE_SECURE": "0",
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--config",
        "shop/gunicorn_conf.py",
        "--workers",
        str(workers),
        "--bind",
        f"{HOST}:{port}",
        "--access-logfile",
        "/dev/null",
        "shop:create_app()",
    ]
    with log.open("wb") as output:
        # Its own session: Ctrl-C reaches only this script, which then stops gunicorn in order.
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=output, start_new_session=True
        )
    base = f"http://{HOST}:{port}"
    try:
        wait_healthy(base, server, log)
        yield base
    finally:
        stop(server)


def wait_healthy(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    sys.exit(f"gunicorn not healthy after {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM for a graceful stop; the whole process group is killed if that takes too long."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=5)


def check_pages(base: str, paths: list[str]) -> None:
    """Each page must answer 200 before it is measured: a fast 404 would be a meaningless figure."""
    for path in paths:
        try:
            with urllib.request.urlopen(base + path, timeout=30) as response:
                response.read()
        except urllib.error.HTTPError as error:
            sys.exit(f"{path} answered {error.code}; nothing to measure")


def milliseconds(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:
        raise ValueError(f"unexpected wrk duration {value!r}")
    return float(match[1]) * UNITS[match[2]]


def parse_wrk(path: str, output: str) -> Result:
    """Figures from `wrk --latency` output; fails loudly if its format is not the one known."""

    def field(pattern: str) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output has no {pattern!r}:\n{output}")
        return match[1]

    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return Result(
        url=path,
        requests_per_second=float(field(r"^Requests/sec:\s+([\d.]+)")),
        latency_p50_ms=milliseconds(field(r"^\s+50%\s+(\S+)")),
        latency_p99_ms=milliseconds(field(r"^\s+99%\s+(\S+)")),
        requests=int(field(r"^\s+(\d+) requests in")),
        errors=errors + (int(non_2xx[1]) if non_2xx else 0),
    )


def run_wrk(wrk: str, base: str, path: str, duration: int, connections: int) -> Result:
    # One thread leaves the second core to gunicorn; the timeout matches gunicorn's worker
    # timeout, so slow responses are measured instead of being dropped as wrk's 2 s timeouts.
    command = [wrk, "--threads", "1", "--connections", str(connections), "--timeout", "30s"]
    subprocess.run(
        [*command, "--duration", f"{WARMUP_SECONDS}s", base + path],
        check=True,
        capture_output=True,
        timeout=WARMUP_SECONDS + 60,
    )
    finished = subprocess.run(
        [*command, "--latency", "--duration", f"{duration}s", base + path],
        check=True,
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    return parse_wrk(path, finished.stdout)


def print_table(results: list[Result]) -> None:
    width = max(len(r.url) for r in results)
    print(f"{'URL':<{width}}  {'req/s':>8}  {'p50 ms':>8}  {'p99 ms':>8}  {'errors':>6}")
    for r in results:
        print(
            f"{r.url:<{width}}  {r.requests_per_second:>8.1f}  {r.latency_p50_ms:>8.1f}  "
            f"{r.latency_p99_ms:>8.1f}  {r.errors:>6}"
        )


def main() -> None:
    default_workers = multiprocessing.cpu_count() * 2 + 1  # shop/gunicorn_conf.py's default
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per URL")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=default_workers, help="gunicorn workers")
    parser.add_argument("--facilities", type=int, default=500)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--wbp", type=int, default=50_000)
    args = parser.parse_args()

    wrk = ensure_wrk()
    with fresh_database(args.database) as database_url, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        counts = seed_scale.seed(database_url, args.facilities, args.products, args.wbp)
        seed_seconds = time.perf_counter() - started
        print(f"Seeded {args.database} in {seed_seconds:.1f} s: {counts}", flush=True)
        paths = benchmark_urls(database_url)
        with gunicorn(database_url, args.workers, Path(tmp) / "gunicorn.log") as base:
            check_pages(base, paths)
            results = []
            for path in paths:
                print(f"wrk {path} ({args.duration} s)", flush=True)
                results.append(run_wrk(wrk, base, path, args.duration, args.connections))

    print()
    print(
        f"{args.database}, {args.workers} gunicorn workers, {args.connections} connections, "
        f"{args.duration} s per URL; seed {seed_seconds:.1f} s"
    )
    print_table(results)
    report = {
        "database": args.database,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": multiprocessing.cpu_count(),
        "workers": args.workers,
        "connections": args.connections,
        "duration_seconds": args.duration,
        "seed_seconds": round(seed_seconds, 2),
        "rows": counts,
        "results": [asdict(r) for r in results],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"listing-{args.database}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
