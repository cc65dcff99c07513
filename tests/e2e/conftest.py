"""End-to-end tests: Playwright driving Debian's Chromium against pytest-django's live server.

Chromium comes from the system (`make browser` installs it); Playwright's own browser download is
never used. Without a Chromium the tests skip with a loud message, except under CI, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _chromium_path() -> str | None:
    configured = os.environ.get("CONTEXTKB_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for candidate in ("chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def _unavailable(reason: str):
    message = (
        f"\n\n!!! END-TO-END BROWSER TESTS NOT RUN: {reason}\n"
        "!!! Run `make browser` (installs Debian's chromium) or set CONTEXTKB_CHROMIUM.\n"
    )
    if os.environ.get("CI"):
        pytest.fail(message + "!!! CI is set, so this is a failure, not a skip.", pytrace=False)
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
    # between browser steps are plain synchronous code. Only here, not for the rest of the suite.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _launch()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _launch():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the `playwright` Python package is not installed (dev extra).")
    path = _chromium_path()
    if path is None:
        _unavailable("no Chromium found (looked for chromium on PATH and /usr/bin/chromium).")
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:
        manager.stop()
        _unavailable(f"Chromium at {path} did not start: {exc}")
    yield browser
    browser.close()
    manager.stop()


@pytest.fixture
def new_page(browser, live_server):
    """Open a fresh browser context (its own cookies) and page; collects console errors."""
    contexts = []

    def make(width: int = 1366, height: int = 900):
        context = browser.new_context(
            viewport={"width": width, "height": height}, base_url=live_server.url
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.console_errors = []
        page.on(
            "console",
            lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shoot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, *, full_page: bool = True):
        path = str(SCREENSHOTS / f"{name}.png")
        try:
            page.screenshot(path=path, full_page=full_page)
        except PlaywrightError as exc:
            # Headless Chromium now and then refuses a capture ("Unable to capture screenshot",
            # seen in two clean-clone runs); the page is fine, so take it again once.
            if "Unable to capture screenshot" not in str(exc):
                raise
            page.wait_for_timeout(500)
            page.screenshot(path=path, full_page=full_page)

    return take


PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory sets it


def login(page, user, password: str = PASSWORD):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))
