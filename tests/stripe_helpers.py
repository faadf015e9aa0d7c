"""Stripe in tests: localstripe as a server, and webhooks signed the way Stripe signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from shop import ROOT

WEBHOOK_SECRET = "whsec_test_karya_binaan"
SECRET_KEY = "sk_test_karya_binaan"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_localstripe():  # type: ignore[no-untyped-def]
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.localstripe_server", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                f"{url}/v1/events", headers={"Authorization": f"Bearer {SECRET_KEY}"}
            )
            urllib.request.urlopen(request, timeout=1).close()  # noqa: S310 (loopback only)
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    pytest.fail("localstripe did not start")


def signed(payload: dict, secret: str = WEBHOOK_SECRET, at: int | None = None) -> tuple[bytes, str]:
    """A body and its Stripe-Signature header: t=<time>,v1=<HMAC-SHA256 of "t.body">."""
    body = json.dumps(payload).encode()
    timestamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={mac}"


def event(kind: str, obj: dict, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def post_webhook(client, payload: dict, **sign):  # type: ignore[no-untyped-def]
    body, header = signed(payload, **sign)
    return client.post(
        "/payments/stripe/webhook",
        data=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
