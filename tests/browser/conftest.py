"""Journeys in headless Chromium, at a desktop and a phone width, with axe-core on every page.

One browser serves the session; each test gets its own context (cookies, storage) at one viewport.
Every step leaves a screenshot in test-artefacts/<test id>/, and a failed test its last screenshot
and the page's HTML beside them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright import sync_api

from shop import ROOT
from shop.extensions import limiter

from ..test_payments_card import stripe_app  # noqa: F401  (a fixture, found by name)

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = ROOT / "test-artefacts"
# No network here: without the background-networking flags Chromium floods refused connections.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS: dict[str, dict] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True},
}
SEVERE = {"serious", "critical"}
PUBLISHABLE_KEY = "pk_test_karya_binaan"

AXE = Axe()


def artefact_folder(item: pytest.Item) -> Path:
    return ARTEFACTS / re.sub(r"[^\w.\[\]-]+", "_", item.name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium every test here is skipped, before any database is made for it."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(
        reason=f"browser tests skipped: {CHROMIUM} is missing (scripts/install installs "
        "Debian's chromium when run as root)"
    )
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def fresh_limits(app: Flask) -> None:
    limiter.reset()  # each journey signs someone in; the limits are per address


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def page(browser, live_server: str, viewport: str) -> Iterator[sync_api.Page]:  # type: ignore[no-untyped-def]
    context = browser.new_context(
        base_url=live_server, accept_downloads=True, **VIEWPORTS[viewport]
    )
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@dataclass
class Journey:
    """A person's way through the site: each `check` records a step and checks the page."""

    page: sync_api.Page
    viewport: str
    folder: Path
    live_server: str
    steps: int = 0

    def read_in(self, language: str) -> None:
        self.page.context.add_cookies(
            [{"name": "lang", "value": language, "url": self.live_server}]
        )

    def check(self, step: str) -> None:
        """Screenshot the page, then it must pass axe (and, on a phone, fit the screen's width)."""
        self.steps += 1
        name = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        self.page.screenshot(path=self.folder / f"{self.steps:02d}-{name}.png", full_page=True)
        assert_accessible(self.page)
        if self.viewport == "phone":
            assert_fits_width(self.page)


@pytest.fixture
def journey(page, viewport: str, live_server: str, request: pytest.FixtureRequest) -> Journey:  # type: ignore[no-untyped-def]
    folder = artefact_folder(request.node)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Journey(page, viewport, folder, live_server)


def assert_accessible(page: sync_api.Page) -> None:
    """No serious or critical axe-core violation on the page as it stands."""
    violations = AXE.run(page).response["violations"]
    severe = [v for v in violations if v["impact"] in SEVERE]
    assert not severe, f"axe-core on {page.url}:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}; "
        + ", ".join(" >> ".join(node["target"]) for node in v["nodes"])
        for v in severe
    )


def assert_fits_width(page: sync_api.Page) -> None:
    """Nothing scrolls sideways. A phone zooms out to show a page that is too wide, which widens
    `innerWidth` with it: the screen's width is the measure too."""
    widths = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    screen = page.viewport_size["width"]
    assert widths["scroll"] <= min(widths["inner"], screen), (
        f"{page.url} scrolls sideways on a phone: {widths['scroll']}px wide on a "
        f"{screen}px screen (window {widths['inner']}px)"
    )


@pytest.fixture
def card_payments(stripe_app: Flask, localstripe: str) -> Iterator[Flask]:  # noqa: F811
    """Card payments against localstripe, which also serves the page its fake Stripe.js."""
    stripe_app.config.update(
        STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY, STRIPE_JS_URL=f"{localstripe}/js.stripe.com/v3/"
    )
    yield stripe_app
    stripe_app.config.update(STRIPE_PUBLISHABLE_KEY="", STRIPE_JS_URL="https://js.stripe.com/v3/")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    page = getattr(item, "funcargs", {}).get("page")
    if report.when != "call" or not report.failed or page is None or page.is_closed():
        return
    folder = artefact_folder(item)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=folder / "failure.png", full_page=True)
        (folder / "failure.html").write_text(page.content(), encoding="utf-8")
    except sync_api.Error as error:  # a crashed page still leaves the report
        (folder / "failure.txt").write_text(str(error), encoding="utf-8")
