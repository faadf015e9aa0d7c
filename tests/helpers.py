"""Helpers for tests that go through HTTP: signing in and posting forms with their CSRF token."""

from __future__ import annotations

import re

PASSWORD = "kata-sandi-rahasia-1"

_TOKEN = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_token(client, url: str) -> str:
    """The CSRF token from a form on `url` (any page with a form gives the session's token)."""
    html = client.get(url).get_data(as_text=True)
    match = _TOKEN.search(html)
    assert match, f"no CSRF token on {url}"
    return match.group(1) or match.group(2)


def post_form(client, url: str, data: dict | None = None, *, form_page: str | None = None, **kw):
    """Posts `data` to `url` as a browser would: with the token from the form's page."""
    payload = dict(data or {})
    payload.setdefault("csrf_token", csrf_token(client, form_page or url))
    return client.post(url, data=payload, **kw)


def login(client, email: str, password: str = PASSWORD):
    response = post_form(client, "/login", {"email": email, "password": password})
    assert response.status_code == 302, (
        f"login failed for {email}: {visible_text(response.get_data(as_text=True))[:600]}"
    )
    return response


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
