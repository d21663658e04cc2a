"""A real headless browser for the web pages' tests: Debian's chromium, driven by Playwright.

Playwright never downloads a browser here: it launches the system's chromium (`apt-get install chromium`;
.ci/run does). Without one, the tests skip and say why. Each test saves a screenshot under its tmp folder;
with BOTKIT_README_SCREENSHOTS=docs the ones the README shows are written there too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture
async def browser_page(tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh browser page, 1280x800."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium on this machine (apt-get install chromium); .ci/run installs it")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            await browser.close()


async def screenshot(page: Any, tmp_path: Path, name: str, *, readme: bool = False) -> Path:
    """Save the page as `<tmp_path>/<name>.png` (and into BOTKIT_README_SCREENSHOTS when `readme`)."""
    path = tmp_path / f"{name}.png"
    await page.screenshot(path=str(path))
    assert path.stat().st_size > 1000
    target = os.environ.get("BOTKIT_README_SCREENSHOTS")
    if readme and target:
        shutil.copy(path, ROOT / target / f"{name}.png")  # relative to the repository, whatever the test's cwd
    return path
