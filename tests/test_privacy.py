"""No WBP name or registration number on any public page: crawl the demo storefront and look."""

import re
from collections import deque
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import select

from catalog.models import Wbp
from shop.extensions import db

pytestmark = pytest.mark.usefixtures("demo")

MAX_PAGES = 400


def crawl(client, start_paths):
    seen, queue, pages = set(), deque(start_paths), {}
    while queue and len(pages) < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        pages[path] = response
        if response.mimetype != "text/html":
            continue
        for href in re.findall(r'(?:href|src|action)="([^"]+)"', response.get_data(as_text=True)):
            target = urljoin(path, href.replace("&amp;", "&"))
            parts = urlsplit(target)
            if parts.netloc or parts.scheme:
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return pages


@pytest.mark.parametrize("lang", ["id", "en"])
def test_no_wbp_identity_on_any_public_page(client, lang):
    makers = db.session.execute(select(Wbp.name, Wbp.registration_number)).all()
    assert len(makers) == 23
    secrets = [value for row in makers for value in row]
    secrets += [name.split()[0] for name, _ in makers]  # first names alone, too

    client.set_cookie("lang", lang)
    starts = ["/", "/products", "/facilities", "/products?in_stock=1", "/products?q=besek"]
    pages = crawl(client, starts)
    html_pages = {p: r for p, r in pages.items() if r.mimetype == "text/html"}
    # Every facility page and every product page was reached.
    assert sum(p.startswith("/facilities/") for p in html_pages) >= 4
    assert sum(p.startswith("/products/") for p in html_pages) >= 6
    for path, response in pages.items():
        assert response.status_code < 500, path
        body = response.get_data(as_text=True) if response.mimetype == "text/html" else ""
        for secret in secrets:
            assert secret not in body, f"{secret!r} appears on {path}"


def test_the_crawl_would_notice_a_leak(client):
    """The check above can fail: a page carrying a name is caught."""
    wbp = db.session.scalars(select(Wbp)).first()
    pages = crawl(client, [f"/products?q={wbp.name.split()[0]}"])
    body = next(iter(pages.values())).get_data(as_text=True)
    assert wbp.name.split()[0] in body  # the search box echoes the query back
