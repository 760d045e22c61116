"""Debian's Chromium driven by Debian's chromedriver through Selenium; no browser download.

As root Chromium needs ``--no-sandbox``; the background-networking flags keep it from
trying to reach Google on a machine with no network; each browser gets a fresh profile.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMEDRIVER: Final = Path("/usr/bin/chromedriver")
FLAGS: Final = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic", "--disable-extensions", "--window-size=1280,1600",
    "--force-device-scale-factor=1", "--lang=en-US",
)  # fmt: skip
AXE: Final = Path(__file__).parent / "vendor" / "axe.min.js"


def available() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            return f"{binary} is missing: scripts/install-test-deps installs chromium and chromium-driver"
    return None


@contextlib.contextmanager
def chromium(*, javascript: bool = True, language: str = "en-US") -> Iterator[webdriver.Chrome]:
    profile = Path(tempfile.mkdtemp(prefix="censorwatch-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    prefs: dict[str, Any] = {"intl.accept_languages": language}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def full_page_screenshot(driver: webdriver.Chrome, path: Path, javascript: bool = True) -> None:
    """The whole page: the window is made as tall as the document first."""
    if javascript:
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.set_window_size(1280, min(max(height + 40, 600), 8000))
    driver.save_screenshot(str(path))


def axe_violations(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA violations on the loaded page."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
           .then(r => done({violations: r.violations.map(v => ({id: v.id, impact: v.impact,
                  help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.html)}))}))
           .catch(e => done({error: String(e)}));
        """
    )
    assert "error" not in result, result
    violations: list[dict[str, Any]] = result["violations"]
    return violations
