"""Checks of the app as it is deployed: HTTPS behind a proxy under gunicorn, and the pinned
dependencies against the public vulnerability database (pip-audit).

Each check returns the problems it found, one sentence each; an empty list means none.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from shop import create_app
from shop.extensions import db

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _database(workdir: Path) -> str:
    """A SQLite database with the app's tables, for the server to sign people in against."""
    url = f"sqlite:///{workdir / 'karya.db'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return url


@contextmanager
def gunicorn(workdir: Path, **environment: str) -> Iterator[str]:
    """The app under gunicorn with shop/gunicorn_conf.py, on SQLite, one worker; its address."""
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=_database(workdir),
        SECRET_KEY="gunicorn-test-key",
        SESSION_COOKIE_SECURE="0",  # the test speaks plain HTTP to gunicorn, as the proxy does
        WEB_CONCURRENCY="1",
        **environment,
    )
    command = [
        str(BIN / "gunicorn"),
        "--config",
        str(ROOT / "shop" / "gunicorn_conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "shop:create_app()",
    ]
    log = (workdir / "gunicorn.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "gunicorn did not start: " + (workdir / "gunicorn.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _failed_sign_in(server: str, visitor: str, attempt: int) -> int:
    """A wrong password sent through the proxy for `visitor`; the status it gets."""
    forwarded = {"X-Forwarded-For": visitor}
    browser = requests.Session()
    page = browser.get(f"{server}/login", headers=forwarded, timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    response = browser.post(
        f"{server}/login",
        headers=forwarded,
        data={
            "csrf_token": token.group(1) if token else "",
            "email": f"tebak{attempt}@example.id",
            "password": "salah-salah-1",
        },
        allow_redirects=False,
        timeout=10,
    )
    return response.status_code


def check_behind_proxy(workdir: Path, **environment: str) -> list[str]:
    """A proxy on this host ends TLS and forwards to gunicorn, which trusts it by
    FORWARDED_ALLOW_IPS (127.0.0.1 unless set).

    Its X-Forwarded-Proto makes the request https to the app, which then sends HSTS (and not
    over plain HTTP); its X-Forwarded-For names the visitor, so that the sign-in limit per
    address (2 here) stops the visitor who tries too often and not everyone behind the proxy.
    """
    problems = []
    with gunicorn(workdir, LOGIN_LIMIT_PER_ADDRESS="2 per 15 minutes", **environment) as server:
        proxied = requests.get(
            f"{server}/healthz", headers={"X-Forwarded-Proto": "https"}, timeout=10
        )
        plain = requests.get(f"{server}/healthz", headers={"X-Forwarded-Proto": "http"}, timeout=10)
        guesser = [_failed_sign_in(server, "198.51.100.7", n) for n in range(3)]
        neighbour = _failed_sign_in(server, "203.0.113.50", 3)
    if proxied.status_code != 200 or plain.status_code != 200:
        problems.append(f"/healthz answered {proxied.status_code} and {plain.status_code}")
    if "max-age=" not in proxied.headers.get("Strict-Transport-Security", ""):
        problems.append("a request the proxy received over HTTPS got no Strict-Transport-Security")
    if "Strict-Transport-Security" in plain.headers:
        problems.append(
            "a request the proxy received over plain HTTP got Strict-Transport-Security"
        )
    if guesser != [200, 200, 429]:
        problems.append(f"three failed sign-ins from one visitor answered {guesser}")
    if neighbour != 200:
        problems.append(f"another visitor behind the same proxy then got {neighbour}, not 200")
    return problems


# The dependency audit


def pinned_requirements() -> list[str]:
    """Every pin of pyproject.toml: the app's and the development tools'."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = list(project["dependencies"])
    for group in project.get("optional-dependencies", {}).values():
        pins += group
    return pins


class AuditUnavailable(Exception):
    """The vulnerability service could not be asked, so nothing is known either way."""


def read_audit(report: dict) -> list[str]:
    """The vulnerabilities in pip-audit's JSON report, one line each.

    pip-audit reports a dependency it could not look up as skipped and still says "No known
    vulnerabilities found": that is not a clean result. When no dependency could be looked up the
    service is unreachable (AuditUnavailable); when only some could, those are problems too.
    """
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if "skip_reason" in d]
    if not dependencies or len(skipped) == len(dependencies):
        reason = skipped[0]["skip_reason"] if skipped else "pip-audit listed no dependency"
        raise AuditUnavailable(f"none of {len(dependencies)} dependencies audited ({reason})")
    problems = [f"{d['name']}: not audited: {d['skip_reason']}" for d in skipped]
    for dependency in dependencies:
        for vulnerability in dependency.get("vulns", []):
            fixed = ", ".join(vulnerability.get("fix_versions", [])) or "no fixed release"
            problems.append(
                f"{dependency['name']} {dependency.get('version')}: {vulnerability['id']} "
                f"(fixed in {fixed})"
            )
    return problems


UNREACHABLE = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "timed out")


def check_dependency_audit(requirements: list[str], workdir: Path) -> list[str]:
    """pip-audit over the pins, without resolving (they are complete) and without pip."""
    listed = workdir / "requirements.txt"
    listed.write_text("\n".join(requirements) + "\n")
    command = [
        str(BIN / "pip-audit"),
        "--no-deps",
        "--disable-pip",
        "--requirement",
        str(listed),
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--cache-dir",
        str(workdir / "cache"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if any(sign in done.stderr for sign in UNREACHABLE):
            raise AuditUnavailable(last) from None
        return [f"pip-audit failed (exit {done.returncode}): {last}"]
    return read_audit(report)
