"""Load test of the storefront listing and product pages at national scale.

One command creates a throw-away database, seeds it with `bench.seed_scale`, serves the app with
gunicorn and the production settings of shop/gunicorn_conf.py, and drives each URL with wrk from a
separate process. The page cache is off unless asked for: this measures rendering. Only 127.0.0.1
is ever contacted, and every load run is bounded by --duration.

The throw-away database, gunicorn and the CPU meter are shared with bench/load.py.
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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy import create_engine, func, select, text

from bench import seed_scale
from bench.databases import POSTGRES_SERVER, throwaway_database
from catalog.models import Facility, Product
from shop.gunicorn_conf import default_workers

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
START_TIMEOUT = 180.0  # workers import the app in parallel: over a minute on a busy 2-core machine
STOP_TIMEOUT = 30.0  # gunicorn's graceful_timeout is 20 s
WARMUP_SECONDS = 2
DRAIN_TIMEOUT = 120.0
IDLE_CPU_SECONDS = 0.01  # per half second: what idle gunicorn processes use, with a margin
PROBLEM = re.compile(r"\[(ERROR|CRITICAL)\]|WORKER TIMEOUT|Traceback")
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass(frozen=True)
class Result:
    url: str
    requests_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx responses plus socket errors (timeouts included)
    # CPU time per request, which unlike requests/s does not drop when other work shares the
    # machine: gunicorn's processes, and for PostgreSQL the server backends serving them.
    app_cpu_ms: float = 0.0
    database_cpu_ms: float | None = None


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A new empty database, removed afterwards whatever happens."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="karya-bench-") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    with throwaway_database(POSTGRES_SERVER, prefix="karya_bench") as url:
        yield url


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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process; 0 for one that has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # the fields after the command name
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds per process of the app server and of its PostgreSQL backends, from /proc."""

    def __init__(self, server_pid: int, database_url: str) -> None:
        self.server_pid = server_pid
        self.engine = create_engine(database_url) if database_url.startswith("postgresql") else None

    def app_pids(self) -> list[int]:
        pids = [self.server_pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == self.server_pid:
                pids.append(int(stat.parent.name))
        return pids

    def database_pids(self) -> list[int]:
        if self.engine is None:
            return []
        with self.engine.connect() as conn:
            return list(
                conn.scalars(
                    text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            )

    def app_total(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.app_pids())

    def wait_idle(self) -> None:
        """Waits until the app has served what wrk left behind.

        wrk closes its connections mid-request when it stops, but gunicorn still serves every
        request it has received: up to one per connection, whose work would otherwise land in the
        next measurement (on a busy machine, all of it).
        """
        deadline = time.monotonic() + DRAIN_TIMEOUT
        used = self.app_total()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            used, before = self.app_total(), used
            if used - before < IDLE_CPU_SECONDS:
                return
        print(f"warning: gunicorn still busy after {DRAIN_TIMEOUT:.0f} s", flush=True)

    def sample(self) -> tuple[dict[int, float], dict[int, float]]:
        return (
            {pid: cpu_seconds(pid) for pid in self.app_pids()},
            {pid: cpu_seconds(pid) for pid in self.database_pids()},
        )

    @staticmethod
    def used(before: dict[int, float], after: dict[int, float]) -> float:
        """Seconds used in between, process by process: one that started meanwhile counts whole."""
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def benchmark_urls(database_url: str) -> list[str]:
    """The listing pages a visitor hits most, with a province and product that exist."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            province = conn.scalar(select(Facility.province).order_by(Facility.id).limit(1))
            active = select(Product.slug).where(Product.active)
            middle = (conn.scalar(select(func.count()).select_from(active.subquery())) or 0) // 2
            slug = conn.scalar(active.order_by(Product.id).offset(middle).limit(1))
    finally:
        engine.dispose()
    return [
        "/products",
        "/products?page=50",
        "/products?q=besek",
        "/products?" + urlencode({"province": province, "in_stock": 1}, quote_via=quote),
        f"/products/{slug}",
    ]


@dataclass(frozen=True)
class Server:
    base: str
    pid: int


@contextmanager
def gunicorn(
    log: Path,
    workers: int,
    env: Mapping[str, str],
    app: str = "shop:create_app()",
    health_path: str = "/healthz",
) -> Iterator[Server]:
    """Serves `app` under gunicorn with shop/gunicorn_conf.py and always stops it, bounded in time.

    `env` is added to this process's environment (the database, the page cache, ...).
    """
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--config",
        "shop/gunicorn_conf.py",
        "--workers",
        str(workers),
        "--bind",
        f"{HOST}:{port}",
        # The default control socket is one path per user: it would take over another server's.
        "--no-control-socket",
        app,
    ]
    environment = {
        **os.environ,
        "SECRET_KEY": secrets.token_hex(32),
        "SESSION_COOKIE_SECURE": "0",  # plain HTTP on 127.0.0.1
        **env,
    }
    with log.open("wb") as output:
        # Its own session: Ctrl-C reaches only this script, which then stops gunicorn in order.
        server = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=output, stderr=output, start_new_session=True
        )
    base = f"http://{HOST}:{port}"
    try:
        wait_healthy(base + health_path, server, log)
        yield Server(base, server.pid)
    finally:
        stop(server)
        # Worker timeouts and tracebacks explain figures that would otherwise look merely low.
        problems = [line for line in log.read_text().splitlines() if PROBLEM.search(line)]
        for line in problems[:20]:
            print(f"gunicorn: {line}", flush=True)


def wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
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
        with suppress(subprocess.TimeoutExpired):
            server.wait(timeout=STOP_TIMEOUT)
    finally:
        if server.poll() is None:  # too slow, or this script was interrupted while waiting
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


def run_wrk(
    wrk: str, server: Server, meter: CpuMeter, path: str, duration: int, connections: int
) -> Result:
    """A short warm-up (templates compiled, pools filled), then the measured run from idle."""
    # One thread leaves the second core to gunicorn; the timeout matches gunicorn's worker
    # timeout, so slow responses are measured instead of being dropped as wrk's 2 s timeouts.
    command = [wrk, "--threads", "1", "--connections", str(connections), "--timeout", "30s"]
    url = server.base + path
    subprocess.run(
        [*command, "--duration", f"{WARMUP_SECONDS}s", url],
        check=True,
        capture_output=True,
        timeout=WARMUP_SECONDS + 60,
    )
    meter.wait_idle()
    app_before, database_before = meter.sample()
    finished = subprocess.run(
        [*command, "--latency", "--duration", f"{duration}s", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    app_after, database_after = meter.sample()
    meter.wait_idle()
    result = parse_wrk(path, finished.stdout)
    per_request = 1000 / max(1, result.requests)
    database_cpu = CpuMeter.used(database_before, database_after) * per_request
    return replace(
        result,
        app_cpu_ms=round(CpuMeter.used(app_before, app_after) * per_request, 2),
        database_cpu_ms=round(database_cpu, 2) if meter.engine is not None else None,
    )


def print_table(results: list[Result]) -> None:
    width = max(len(r.url) for r in results)
    print(
        f"{'URL':<{width}}  {'req/s':>7}  {'p50 ms':>7}  {'p99 ms':>7}  "
        f"{'app CPU ms/req':>14}  {'db CPU ms/req':>13}  {'errors':>6}"
    )
    for r in results:
        database = "-" if r.database_cpu_ms is None else f"{r.database_cpu_ms:.1f}"
        print(
            f"{r.url:<{width}}  {r.requests_per_second:>7.1f}  {r.latency_p50_ms:>7.1f}  "
            f"{r.latency_p99_ms:>7.1f}  {r.app_cpu_ms:>14.1f}  {database:>13}  {r.errors:>6}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per URL")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=default_workers(), help="gunicorn workers")
    parser.add_argument(
        "--page-cache-seconds",
        type=int,
        default=0,
        help="the app's page cache (default 0: every request renders, which is what this measures)",
    )
    parser.add_argument("--facilities", type=int, default=500)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--wbp", type=int, default=50_000)
    args = parser.parse_args()
    # A plain kill then cleans up as Ctrl-C does: gunicorn stopped, database dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    wrk = ensure_wrk()
    # Everything here shares the machine's cores: a busy machine gives low figures.
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f} before the run; figures will be low", flush=True)
    with fresh_database(args.database) as database_url, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        counts = seed_scale.seed(database_url, args.facilities, args.products, args.wbp)
        seed_seconds = time.perf_counter() - started
        print(f"Seeded {args.database} in {seed_seconds:.1f} s: {counts}", flush=True)
        paths = benchmark_urls(database_url)
        env = {"DATABASE_URL": database_url, "PAGE_CACHE_SECONDS": str(args.page_cache_seconds)}
        with gunicorn(Path(tmp) / "gunicorn.log", args.workers, env) as server:
            check_pages(server.base, paths)
            meter = CpuMeter(server.pid, database_url)
            try:
                results = []
                for path in paths:
                    print(f"wrk {path} ({args.duration} s)", flush=True)
                    results.append(
                        run_wrk(wrk, server, meter, path, args.duration, args.connections)
                    )
            finally:
                meter.close()

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
        "load_average_at_start": round(load, 2),
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
