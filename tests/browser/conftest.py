"""Browser tests: Playwright drives Debian's chromium (never `playwright install`) against a
real uvicorn process on 127.0.0.1.

Every test gets a fresh page whose console errors and uncaught exceptions are collected
and fail the test at teardown; `shot(page, name)` saves a screenshot under the test's
output folder (test-results/, gitignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.chromium import ARGS, CHROMIUM


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    if not Path(CHROMIUM).exists():
        # the browser is part of the test set-up, not an optional extra: `make test` installs it
        pytest.fail(f"{CHROMIUM} is not installed: run `make chromium` (or `make test`)")
    return {"executable_path": CHROMIUM, "args": ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {
        **browser_context_args,
        "viewport": {"width": 1400, "height": 940},
        "accept_downloads": True,
    }


@pytest.fixture(scope="session")
def server_url(live_server: str) -> str:
    """The real uvicorn process of tests/conftest.py, for the browser to load."""
    return live_server


@pytest.fixture
def console_errors(page) -> Iterator[list[str]]:
    """Console errors and uncaught exceptions of the page; the test fails if any remain."""
    errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            errors.append(f"console.{message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    yield errors
    assert errors == [], "the page reported errors:\n" + "\n".join(errors)


@pytest.fixture
def shots(output_path: str):
    """shots(page, name): save a full-page screenshot as <test output folder>/<name>.png."""
    folder = Path(output_path)
    folder.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
