"""The page cache: anonymous visitors share catalog pages for a few seconds; nobody else does."""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest
import redis
from sqlalchemy import select

from catalog import freshness
from catalog import queries as catalog_queries
from catalog import views as catalog_views
from catalog.models import Facility, Product
from shop import page_cache
from shop.extensions import db
from shop.page_cache import CSRF_MARK, PageCache, RedisStore

from .helpers import login, post_form

pytestmark = pytest.mark.usefixtures("demo")

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BESEK = "/products/besek-bambu-banjarnegara"
SECONDS = 10
_TOKEN = re.compile(rb'name="csrf_token" value="([^"]+)"')


def redis_store() -> RedisStore:
    """Redis under a prefix of its own, or the test is skipped."""
    store = RedisStore(REDIS_URL, prefix=f"karya-test:{uuid.uuid4().hex}:")
    try:
        store.client.ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis at {REDIS_URL}: {error}")
    return store


@pytest.fixture(params=["memory", "redis"])
def cache(request, app, monkeypatch):  # type: ignore[no-untyped-def]
    """The cache turned on for one test: worker memory alone, or in front of Redis."""
    cache = PageCache(redis_store() if request.param == "redis" else None)
    monkeypatch.setitem(app.extensions, "page_cache", cache)
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", SECONDS)
    yield cache
    cache.clear()


@pytest.fixture
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    """The cache's clock, moved by hand."""
    moment = [1000.0]
    monkeypatch.setattr(page_cache, "now", lambda: moment[0])
    return moment


def besek_id() -> int:
    return db.session.scalar(select(Product.id).where(Product.slug == BESEK.rsplit("/", 1)[1]))


def test_caching_is_off_in_tests_unless_turned_on(app):
    assert app.config["PAGE_CACHE_SECONDS"] == 0


@pytest.mark.parametrize("url", ["/", "/products", "/products?q=besek&in_stock=1", BESEK])
def test_a_hit_serves_the_same_page_without_a_query(client, cache, count_queries, url):
    first = client.get(url)
    assert first.status_code == 200
    assert first.headers["X-Page-Cache"] == "miss"
    with count_queries() as counter:
        second = client.get(url)
    assert counter.count == 0
    assert second.headers["X-Page-Cache"] == "hit"
    assert second.data == first.data  # the same visitor: the same CSRF token too
    # Security headers are added to a hit as to any response.
    assert second.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert second.headers["X-Frame-Options"] == "DENY"
    assert second.headers["Content-Type"] == "text/html; charset=utf-8"
    assert second.headers["X-Request-ID"] != first.headers["X-Request-ID"]


def test_head_is_served_from_the_cache(client, cache, count_queries):
    client.get("/products")
    with count_queries() as counter:
        response = client.head("/products")
    assert counter.count == 0
    assert response.status_code == 200
    assert response.headers["X-Page-Cache"] == "hit"
    assert response.data == b""


def test_each_visitor_gets_their_own_working_csrf_token_from_a_cached_page(app, cache):
    first, second = app.test_client(), app.test_client()
    assert first.get(BESEK).headers["X-Page-Cache"] == "miss"
    hit = second.get(BESEK)
    assert hit.headers["X-Page-Cache"] == "hit"
    assert CSRF_MARK not in hit.data
    first_token = _TOKEN.search(first.get(BESEK).data).group(1)
    second_token = _TOKEN.search(hit.data).group(1)
    assert first_token != second_token
    added = second.post(
        "/cart",
        data={"csrf_token": second_token.decode(), "product_id": besek_id(), "quantity": 100},
    )
    assert added.status_code == 302
    # The token of one visitor is refused for another: each really has their own.
    refused = first.post(
        "/cart",
        data={"csrf_token": second_token.decode(), "product_id": besek_id(), "quantity": 100},
    )
    assert refused.status_code == 400


@pytest.fixture
def flask_entered(app, monkeypatch):  # type: ignore[no-untyped-def]
    """How many requests reached Flask's first before-request hook."""
    entered = []
    hooks = [lambda: entered.append(1), *app.before_request_funcs.get(None, [])]
    monkeypatch.setitem(app.before_request_funcs, None, hooks)
    return entered


def test_a_page_the_same_for_everyone_is_answered_before_flask(
    client, cache, flask_entered, capsys
):
    rendered = client.get("/products")
    assert len(flask_entered) == 1
    capsys.readouterr()
    hit = client.get("/products", headers={"X-Request-ID": "lb-42"})
    assert flask_entered == [1]  # Flask never saw the hit
    assert hit.headers["X-Page-Cache"] == "hit"
    assert hit.data == rendered.data
    # What Flask's hooks would have added: the same headers, but the request id its own.
    expected = {
        k: v for k, v in rendered.headers.items() if k not in ("X-Page-Cache", "X-Request-ID")
    }
    assert {
        k: v for k, v in hit.headers.items() if k not in ("X-Page-Cache", "X-Request-ID")
    } == expected
    assert hit.headers["X-Request-ID"] == "lb-42"
    assert hit.headers["Vary"] == "Cookie"
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if '"shop.request"' in x]
    assert line["request_id"] == "lb-42"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/products", 200)
    assert line["size"] == len(hit.data)
    assert line["user_id"] is None
    assert line["remote_addr"] == "127.0.0.1"


def test_a_hit_before_flask_adds_hsts_over_https_only(client, cache, flask_entered):
    client.get("/products")
    plain = client.get("/products")
    secure = client.get("/products", base_url="https://localhost")
    assert flask_entered == [1]
    assert "Strict-Transport-Security" not in plain.headers
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_page_with_a_form_gets_the_visitors_token_before_flask(app, cache, flask_entered):
    client = app.test_client()
    client.get(BESEK)  # a miss: rendered by Flask, which gives the visitor a token and a cookie
    hit = client.get(BESEK)
    assert hit.headers["X-Page-Cache"] == "hit"
    assert len(flask_entered) == 1  # the hit never reached Flask
    assert "Set-Cookie" not in hit.headers
    assert CSRF_MARK not in hit.data
    token = _TOKEN.search(hit.data).group(1).decode()
    added = client.post(
        "/cart", data={"csrf_token": token, "product_id": besek_id(), "quantity": 100}
    )
    assert added.status_code == 302  # Flask-WTF takes the token the layer signed
    # Another visitor's session cannot use it.
    other = app.test_client()
    other.get(BESEK)
    refused = other.post(
        "/cart", data={"csrf_token": token, "product_id": besek_id(), "quantity": 100}
    )
    assert refused.status_code == 400


def test_a_visitor_without_a_token_gets_a_page_with_a_form_from_flask(app, cache, flask_entered):
    app.test_client().get(BESEK)  # someone else's visit stores the page
    newcomer = app.test_client()
    hit = newcomer.get(BESEK)
    assert hit.headers["X-Page-Cache"] == "hit"
    assert len(flask_entered) == 2  # Flask makes the newcomer's first token...
    assert newcomer.get_cookie("session") is not None  # ...and the cookie that keeps it
    assert CSRF_MARK not in hit.data


def test_a_session_holding_only_a_csrf_token_is_anonymous_before_flask(
    client, cache, flask_entered
):
    client.get(BESEK)  # a signed session cookie with a CSRF token
    assert client.get_cookie("session") is not None
    client.get("/products")
    assert client.get("/products").headers["X-Page-Cache"] == "hit"
    assert len(flask_entered) == 2  # the product page and the miss; not the hit


def test_a_forged_session_cookie_is_read_as_flask_reads_it(client, cache, flask_entered):
    client.get("/products")
    # Unsigned claims of a signed-in user: Flask would start an empty session, an anonymous one.
    client.set_cookie("session", "eyJfdXNlcl9pZCI6IjEifQ.forged.signature")
    hit = client.get("/products")
    assert hit.headers["X-Page-Cache"] == "hit"
    assert len(flask_entered) == 1  # the miss only
    assert b"Sign out" not in hit.data and b"Keluar" not in hit.data


def test_a_cart_in_the_session_goes_to_flask(client, cache, flask_entered):
    client.get(BESEK)
    token = _TOKEN.search(client.get(BESEK).data).group(1).decode()
    client.get("/products")
    client.post("/cart", data={"csrf_token": token, "product_id": besek_id(), "quantity": 100})
    entered = len(flask_entered)
    page = client.get("/products")
    assert len(flask_entered) == entered + 1
    assert "X-Page-Cache" not in page.headers


@pytest.mark.parametrize("url", ["/products", BESEK])
def test_a_miss_and_a_hit_each_ask_the_cache_once(client, cache, monkeypatch, url):
    asked = []
    get = cache.get
    monkeypatch.setattr(cache, "get", lambda key, keep_for: asked.append(key) or get(key, keep_for))
    assert client.get(url).headers["X-Page-Cache"] == "miss"
    assert len(asked) == 1  # the layer before Flask asked; Flask's hook took its answer
    assert client.get(url).headers["X-Page-Cache"] == "hit"
    assert len(asked) == 2


def test_a_visitor_who_has_seen_a_form_still_gets_cached_pages(client, cache):
    client.get(BESEK)  # the add-to-cart form: a session cookie with a CSRF token
    assert client.get("/products").headers["X-Page-Cache"] == "miss"
    assert client.get("/products?q=besek").headers["X-Page-Cache"] == "miss"
    assert client.get("/products").headers["X-Page-Cache"] == "hit"


def test_a_signed_in_buyer_never_gets_or_leaves_a_cached_page(client, cache, users, app):
    visitor = app.test_client()
    visitor.set_cookie("lang", "en")
    client.set_cookie("lang", "en")
    assert visitor.get("/products").headers["X-Page-Cache"] == "miss"
    login(client, "buyer@example.id")
    signed_in = client.get("/products")
    assert "X-Page-Cache" not in signed_in.headers
    assert b"Sign out" in signed_in.data
    assert client.get(BESEK).headers.get("X-Page-Cache") is None
    # What the buyer was shown was not stored for anyone else.
    other = app.test_client()
    other.set_cookie("lang", "en")
    fresh = other.get(BESEK)
    assert fresh.headers["X-Page-Cache"] == "miss"
    assert b"Sign out" not in fresh.data
    assert b"Ask for a quote" not in fresh.data


def test_a_remembered_visitor_gets_a_page_rendered_for_them(client, cache):
    client.get("/products")
    client.set_cookie("remember_token", "1:whatever")
    assert "X-Page-Cache" not in client.get("/products").headers


def test_a_visitor_with_a_cart_gets_pages_rendered_for_them(client, cache, count_queries):
    assert client.get("/products").headers["X-Page-Cache"] == "miss"
    added = post_form(client, "/cart", {"product_id": besek_id(), "quantity": 100}, form_page=BESEK)
    assert added.status_code == 302
    with count_queries() as counter:
        response = client.get("/products")
    assert response.status_code == 200
    assert "X-Page-Cache" not in response.headers
    assert counter.count > 0
    # The cart page and its flash message were not stored either.
    assert "X-Page-Cache" not in client.get("/cart").headers


def test_indonesian_and_english_are_cached_apart(client, cache):
    assert client.get("/products").headers["X-Page-Cache"] == "miss"
    client.set_cookie("lang", "en")
    english = client.get("/products")
    assert english.headers["X-Page-Cache"] == "miss"
    assert b'<html lang="en">' in english.data
    assert client.get("/products").headers["X-Page-Cache"] == "hit"
    client.set_cookie("lang", "id")
    indonesian = client.get("/products")
    assert indonesian.headers["X-Page-Cache"] == "hit"
    assert b'<html lang="id">' in indonesian.data
    # An unknown language is Indonesian, as the locale selector decides.
    client.set_cookie("lang", "xx")
    assert client.get("/products").data == indonesian.data


def test_the_query_string_is_part_of_the_key(client, cache):
    client.get("/products?q=besek")
    other = client.get("/products?q=rajut")
    assert other.headers["X-Page-Cache"] == "miss"
    assert b"Tas rajut" in other.data


def test_a_page_expires_after_the_configured_seconds(client, cache, clock):
    assert client.get("/products").headers["X-Page-Cache"] == "miss"
    clock[0] += SECONDS - 0.5
    assert client.get("/products").headers["X-Page-Cache"] == "hit"
    clock[0] += 1
    assert client.get("/products").headers["X-Page-Cache"] == "miss"
    assert client.get("/products").headers["X-Page-Cache"] == "hit"


def test_a_page_rendered_by_one_worker_is_served_by_the_others(client, app, monkeypatch):
    store = redis_store()
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", SECONDS)
    try:
        monkeypatch.setitem(app.extensions, "page_cache", PageCache(store))
        assert client.get("/products").headers["X-Page-Cache"] == "miss"
        (key,) = store.client.keys(store.prefix + "*")
        assert 0 < store.client.ttl(key) <= SECONDS  # Redis forgets it when it expires
        other_worker = PageCache(RedisStore(REDIS_URL, prefix=store.prefix))
        monkeypatch.setitem(app.extensions, "page_cache", other_worker)
        assert client.get("/products").headers["X-Page-Cache"] == "hit"
        assert other_worker.local.pages  # and keeps it until it expires
    finally:
        store.clear()


def test_nothing_is_cached_when_disabled(client, app, monkeypatch, count_queries):
    cache = PageCache()
    monkeypatch.setitem(app.extensions, "page_cache", cache)
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", 0)
    client.get("/products")
    with count_queries() as counter:
        response = client.get("/products")
    assert counter.count > 0
    assert "X-Page-Cache" not in response.headers
    assert cache.local.pages == {}


def test_a_post_is_never_answered_from_the_cache(client, cache):
    assert client.get("/products").headers["X-Page-Cache"] == "miss"
    posted = client.post("/products", data={"q": "besek"})
    assert posted.status_code == 405
    assert "X-Page-Cache" not in posted.headers


@pytest.mark.parametrize("url", ["/products/no-such-product", "/products?page=999"])
def test_an_error_page_is_not_cached(client, cache, count_queries, url):
    assert client.get(url).status_code == 404
    with count_queries() as counter:
        again = client.get(url)
    assert again.status_code == 404
    assert counter.count > 0
    assert "X-Page-Cache" not in again.headers


def test_a_bad_request_is_not_cached(client, cache):
    assert client.get(BESEK + "?quantity=abc").status_code == 400
    again = client.get(BESEK + "?quantity=abc")
    assert again.status_code == 400
    assert "X-Page-Cache" not in again.headers


def test_pages_outside_the_public_catalog_are_not_cached(client, cache):
    client.get("/cart")
    assert "X-Page-Cache" not in client.get("/cart").headers
    client.get("/login")
    assert "X-Page-Cache" not in client.get("/login").headers


def test_without_redis_each_worker_keeps_its_own_pages(client, app, monkeypatch, caplog):
    # Nothing listens on port 1: every Redis call fails at once.
    monkeypatch.setitem(
        app.extensions, "page_cache", PageCache(RedisStore("redis://127.0.0.1:1/0"))
    )
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", SECONDS)
    first = client.get("/products")
    assert first.status_code == 200
    assert b"Besek bambu" in first.data
    assert first.headers["X-Page-Cache"] == "miss"
    assert client.get("/products").headers["X-Page-Cache"] == "hit"
    assert client.get("/products?q=besek").headers["X-Page-Cache"] == "miss"
    # One warning, then Redis is left alone for a while instead of failing on every request.
    warnings = [r for r in caplog.records if r.name == "shop.page_cache"]
    assert len(warnings) == 1
    assert "Redis unavailable" in warnings[0].getMessage()


@pytest.mark.parametrize("keep_for", [None, SECONDS * 30])  # PAGE_CACHE_SECONDS, or longer
def test_recent_values_are_reused_for_the_seconds_asked(app, app_ctx, monkeypatch, clock, keep_for):
    monkeypatch.setitem(app.extensions, "page_cache", PageCache())
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", SECONDS)
    period = keep_for or SECONDS
    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert page_cache.recent("n", compute, keep_for) == 1
    clock[0] += period - 1
    assert page_cache.recent("n", compute, keep_for) == 1
    clock[0] += 2
    assert page_cache.recent("n", compute, keep_for) == 2
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", 0)  # the cache off: always fresh
    assert page_cache.recent("n", compute, keep_for) == 3
    assert page_cache.recent("n", compute, keep_for) == 4


def test_the_home_pages_totals_are_counted_once_in_five_minutes(client, cache, clock, monkeypatch):
    counted = []
    real = catalog_queries.storefront_totals
    monkeypatch.setattr(catalog_queries, "storefront_totals", lambda: counted.append(1) or real())
    client.get("/")
    clock[0] += SECONDS + 1  # the page expired; its totals have not
    assert client.get("/").headers["X-Page-Cache"] == "miss"
    assert len(counted) == 1
    clock[0] += catalog_views.TOTALS_SECONDS
    assert client.get("/").headers["X-Page-Cache"] == "miss"
    assert len(counted) == 2


# --- product pages: kept until what they show changes ----------------------------------------


def stock_text(client) -> str:
    """The stock line of the besek's page, as a visitor sees it."""
    html = client.get(BESEK).get_data(as_text=True)
    return re.search(r'<li class="stock[^>]*>([^<]*)</li>', html).group(1)


def test_redis_keeps_a_product_page_longer_than_other_pages(client, app, monkeypatch, clock):
    store = redis_store()
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", SECONDS)
    try:
        monkeypatch.setitem(app.extensions, "page_cache", PageCache(store))
        assert client.get(BESEK).headers["X-Page-Cache"] == "miss"
        assert client.get("/products").headers["X-Page-Cache"] == "miss"
        ttls = sorted(store.client.ttl(k) for k in store.client.keys(store.prefix + "[ie][dn]:*"))
        assert ttls[0] <= SECONDS < page_cache.KEEP_SECONDS - 5 < ttls[1]
        clock[0] += SECONDS + 1  # this worker's own copy is gone; Redis still has the page
        assert client.get(BESEK).headers["X-Page-Cache"] == "hit"
        assert client.get("/products").headers["X-Page-Cache"] == "miss"
        clock[0] += page_cache.KEEP_SECONDS
        assert client.get(BESEK).headers["X-Page-Cache"] == "miss"
    finally:
        store.clear()


def test_a_product_page_with_a_query_string_expires_as_other_pages(client, app, monkeypatch):
    store = redis_store()
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", SECONDS)
    try:
        monkeypatch.setitem(app.extensions, "page_cache", PageCache(store))
        assert client.get(BESEK + "?quantity=1600").headers["X-Page-Cache"] == "miss"
        (key,) = store.client.keys(store.prefix + "[ie][dn]:*")
        assert store.client.ttl(key) <= SECONDS
    finally:
        store.clear()


def test_an_order_makes_the_product_page_show_the_new_stock(client, cache, users, app):
    visitor = app.test_client()
    before = stock_text(visitor)
    assert visitor.get(BESEK).headers["X-Page-Cache"] == "hit"
    login(client, "buyer@example.id")
    post_form(client, "/cart", {"product_id": besek_id(), "quantity": 1600}, form_page=BESEK)
    html = client.get("/checkout").get_data(as_text=True)
    form = {
        "csrf_token": _TOKEN.search(html.encode()).group(1).decode(),
        "checkout_key": re.search(r'name="checkout_key" type="hidden" value="([^"]+)"', html)[1],
        "delivery_method": "pickup",
        "payment_method": "bank_transfer",
        "delivery_address": "",
        "note": "",
    }
    assert client.post("/checkout", data=form).status_code == 302
    page = visitor.get(BESEK)
    assert page.headers["X-Page-Cache"] == "miss"  # forgotten at once, not in SECONDS
    assert stock_text(visitor) != before


def test_staff_changes_to_a_product_reach_its_page_at_once(client, cache):
    assert client.get(BESEK).headers["X-Page-Cache"] == "miss"
    product = db.session.get(Product, besek_id())
    product.name = "Besek bambu anyaman baru"
    db.session.commit()
    page = client.get(BESEK)
    assert page.headers["X-Page-Cache"] == "miss"
    assert b"Besek bambu anyaman baru" in page.data


def test_a_change_elsewhere_leaves_other_facilities_pages_cached(client, cache, facilities):
    assert client.get(BESEK).headers["X-Page-Cache"] == "miss"
    other = db.session.scalar(
        select(Product).where(Product.facility_id != facilities["banjarnegara"])
    )
    other.name += " (baru)"
    db.session.commit()
    assert client.get(BESEK).headers["X-Page-Cache"] == "hit"


def test_a_product_page_rendered_while_its_product_changed_is_not_served_after_it(
    client, app, monkeypatch, clock
):
    store = redis_store()
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", SECONDS)
    try:
        cache = PageCache(store)
        monkeypatch.setitem(app.extensions, "page_cache", cache)
        render = page_cache._store

        def change_during_render(response):  # type: ignore[no-untyped-def]
            cache.forget([freshness.product_scope(BESEK.rsplit("/", 1)[1])])  # a commit meanwhile
            return render(response)

        hooks = app.after_request_funcs[None]
        changing = [change_during_render if f is render else f for f in hooks]
        monkeypatch.setitem(app.after_request_funcs, None, changing)
        assert client.get(BESEK).headers["X-Page-Cache"] == "miss"
        monkeypatch.setitem(app.after_request_funcs, None, hooks)
        clock[0] += SECONDS + 1  # past this worker's copy: Redis answers, at a version now old
        assert client.get(BESEK).headers["X-Page-Cache"] == "miss"
        assert client.get(BESEK).headers["X-Page-Cache"] == "hit"  # rendered at the new one
    finally:
        store.clear()


def test_a_product_page_in_another_workers_memory_lasts_at_most_the_configured_seconds(
    app, monkeypatch, clock
):
    store = redis_store()
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", SECONDS)
    try:
        monkeypatch.setitem(app.extensions, "page_cache", PageCache(store))
        assert app.test_client().get(BESEK).headers["X-Page-Cache"] == "miss"
        other = PageCache(store)  # another worker: the same Redis, its own memory
        (key,) = store.client.keys(store.prefix + "[ie][dn]:*")
        key = key.decode().removeprefix(store.prefix)
        assert other.get(key, SECONDS) is not None
        rename_a_product_of(db.session.get(Product, besek_id()).facility_id, "Besek baru")
        assert other.get(key, SECONDS) is not None  # its own copy, from before the change
        clock[0] += SECONDS + 1
        assert other.get(key, SECONDS) is None  # Redis's copy is at an old version
    finally:
        store.clear()


# --- pages scoped to one facility: kept until the facility changes ---------------------------

BANJARNEGARA = "/products?facility=rutan-banjarnegara"


@pytest.fixture
def shared(app, monkeypatch):  # type: ignore[no-untyped-def]
    """The cache in front of Redis, as in production."""
    store = redis_store()
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", SECONDS)
    cache = PageCache(store)
    monkeypatch.setitem(app.extensions, "page_cache", cache)
    yield cache
    store.clear()


def rename_a_product_of(facility_id: int, name: str) -> None:
    product = db.session.scalar(select(Product).where(Product.facility_id == facility_id))
    product.name = name
    db.session.commit()


def move_facility(facility_id: int, province: str) -> None:
    db.session.get(Facility, facility_id).province = province
    db.session.commit()


@pytest.mark.parametrize(
    "url",
    [
        BANJARNEGARA,
        BANJARNEGARA + "&in_stock=1&category=crafts&page=1",
        "/facilities/rutan-banjarnegara",
    ],
)
def test_redis_keeps_a_facilitys_pages_until_the_facility_changes(
    client, shared, clock, facilities, url
):
    assert client.get(url).headers["X-Page-Cache"] == "miss"
    (key,) = shared.shared.client.keys(shared.shared.prefix + "[ie][dn]:*")
    assert shared.shared.client.ttl(key) > page_cache.KEEP_SECONDS - 5
    clock[0] += SECONDS + 1  # this worker's own copy is gone; Redis still has the page
    assert client.get(url).headers["X-Page-Cache"] == "hit"
    rename_a_product_of(facilities["magetan"], "Keset dari tempat lain")
    assert client.get(url).headers["X-Page-Cache"] == "hit"  # another facility changed
    rename_a_product_of(facilities["banjarnegara"], "Besek bambu anyaman baru")
    page = client.get(url)
    assert page.headers["X-Page-Cache"] == "miss"  # at once, not in SECONDS
    assert b"Besek bambu anyaman baru" in page.data


def test_another_workers_copy_of_a_facilitys_page_is_checked_against_redis(
    app, shared, clock, facilities
):
    visitor = app.test_client()
    assert visitor.get(BANJARNEGARA).headers["X-Page-Cache"] == "miss"
    (key,) = shared.local.pages
    # Other workers: the same Redis, each its own memory.
    assert PageCache(shared.shared).get(key, SECONDS) is not None
    rename_a_product_of(facilities["banjarnegara"], "Besek bambu anyaman baru")
    assert shared.shared.client.exists(shared.shared.prefix + key)
    # The page is still in Redis, but at an old version of the facility: nobody is served it.
    assert PageCache(shared.shared).get(key, SECONDS) is None
    assert visitor.get(BANJARNEGARA).headers["X-Page-Cache"] == "miss"


def test_a_change_to_any_facility_renews_the_facility_filters(client, shared, facilities):
    """A listing's facility filter names the province's facilities: any of them may change."""
    assert client.get(BANJARNEGARA + "&province=Jawa Tengah").headers["X-Page-Cache"] == "miss"
    assert client.get("/facilities/rutan-banjarnegara").headers["X-Page-Cache"] == "miss"
    elsewhere = db.session.get(Facility, facilities["magetan"])
    elsewhere.name = "Rutan Kelas IIB Magetan Baru"
    db.session.commit()
    assert client.get(BANJARNEGARA + "&province=Jawa Tengah").headers["X-Page-Cache"] == "miss"
    # The facility's own page shows no other facility: it stays.
    assert client.get("/facilities/rutan-banjarnegara").headers["X-Page-Cache"] == "hit"


def test_a_facilitys_page_rendered_while_the_facility_changed_is_not_kept(
    client, app, shared, clock, monkeypatch
):
    render = page_cache._store

    def change_during_render(response):  # type: ignore[no-untyped-def]
        shared.forget([freshness.facility_scope("rutan-banjarnegara")])  # a commit meanwhile
        return render(response)

    hooks = app.after_request_funcs[None]
    changing = [change_during_render if f is render else f for f in hooks]
    monkeypatch.setitem(app.after_request_funcs, None, changing)
    assert client.get(BANJARNEGARA).headers["X-Page-Cache"] == "miss"
    monkeypatch.setitem(app.after_request_funcs, None, hooks)
    clock[0] += SECONDS + 1  # past this worker's copy: Redis answers, at a version now old
    assert client.get(BANJARNEGARA).headers["X-Page-Cache"] == "miss"
    assert client.get(BANJARNEGARA).headers["X-Page-Cache"] == "hit"  # rendered at the new one


def test_without_redis_a_facilitys_pages_expire_as_others(client, app, monkeypatch, clock):
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", SECONDS)
    monkeypatch.setitem(app.extensions, "page_cache", PageCache(None))
    assert client.get(BANJARNEGARA).headers["X-Page-Cache"] == "miss"
    assert client.get(BANJARNEGARA).headers["X-Page-Cache"] == "hit"
    clock[0] += SECONDS + 1
    assert client.get(BANJARNEGARA).headers["X-Page-Cache"] == "miss"


JAWA_TENGAH = "/products?province=Jawa+Tengah"


def test_redis_keeps_a_provinces_listing_until_one_of_its_facilities_changes(
    client, shared, clock, facilities
):
    url = JAWA_TENGAH + "&in_stock=1"
    assert client.get(url).headers["X-Page-Cache"] == "miss"
    (key,) = shared.shared.client.keys(shared.shared.prefix + "[ie][dn]:*")
    assert shared.shared.client.ttl(key) > page_cache.KEEP_SECONDS - 5
    clock[0] += SECONDS + 1
    assert client.get(url).headers["X-Page-Cache"] == "hit"
    rename_a_product_of(facilities["magetan"], "Keset dari Jawa Timur")
    assert client.get(url).headers["X-Page-Cache"] == "hit"  # another province
    rename_a_product_of(facilities["banjarnegara"], "Besek bambu anyaman baru")
    page = client.get(url)
    assert page.headers["X-Page-Cache"] == "miss"
    assert b"Besek bambu anyaman baru" in page.data


def test_a_facility_moving_into_a_province_renews_its_listing(client, shared, facilities):
    assert b"Magetan" not in client.get(JAWA_TENGAH).data
    move_facility(facilities["magetan"], "Jawa Tengah")
    page = client.get(JAWA_TENGAH)
    assert page.headers["X-Page-Cache"] == "miss"
    assert b"Magetan" in page.data


@pytest.mark.parametrize(
    "url",
    [
        BANJARNEGARA + "&junk=1",  # a parameter the page does not read
        BANJARNEGARA + "&facility=rutan-banjarnegara",  # twice
        BANJARNEGARA + "&in_stock=true",  # another spelling of in_stock=1
        BANJARNEGARA + "&page=01",
        BANJARNEGARA + "&q=besek",  # a search: endless pages
        BANJARNEGARA.replace("banjarnegara", "banjarnegara%20"),
        "/products?province=Atlantis",  # no such province: endless pages
        "/facilities/rutan-banjarnegara?junk=1",
    ],
)
def test_only_one_spelling_of_a_scoped_page_is_kept_until_it_changes(client, shared, url):
    """Anyone could fill Redis for 5 minutes with endless spellings of one page."""
    assert client.get(url).headers["X-Page-Cache"] == "miss"
    (key,) = shared.shared.client.keys(shared.shared.prefix + "[ie][dn]:*")
    assert shared.shared.client.ttl(key) <= SECONDS


def test_listings_of_more_than_one_facility_or_province_expire_as_others(client, shared):
    for url in ("/products", "/products?q=besek", "/products?category=crafts"):
        assert client.get(url).headers["X-Page-Cache"] == "miss"
    for key in shared.shared.client.keys(shared.shared.prefix + "[ie][dn]:*"):
        assert shared.shared.client.ttl(key) <= SECONDS


def test_a_scoped_listing_never_shows_a_list_remembered_before_its_versions(
    client, shared, facilities
):
    """The provinces each worker remembers for PAGE_CACHE_SECONDS would outlive a scoped page's
    versions: a facility moved to a new province must show in it at once."""
    client.get("/products")  # the worker now remembers the provinces
    move_facility(facilities["magetan"], "Papua Pegunungan")
    page = client.get(BANJARNEGARA)
    assert page.headers["X-Page-Cache"] == "miss"
    assert b"Papua Pegunungan" in page.data
