"""The status page in a real headless Chromium (Debian's), against a real collector holding
the scenario: what a person sees, with JavaScript and without, by keyboard, checked by
axe-core; screenshots are kept under build/test-artefacts/status-page/.

``CENSORWATCH_UPDATE_SCREENSHOTS=1`` also writes them to docs/screenshots/ for the README.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from lab.paths import REPO_ROOT
from tests.web import browser
from tests.web.scenario import SHUTDOWN_ID, UNCONFIRMED_ID
from tests.web.status_server import StatusServer, get

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(browser.available() is not None, reason=str(browser.available())),
]
DOCS = REPO_ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module", params=[True, False], ids=["javascript", "no-javascript"])
def page(request: pytest.FixtureRequest) -> Iterator[tuple[webdriver.Chrome, bool]]:
    with browser.chromium(javascript=request.param) as driver:
        yield driver, bool(request.param)


@pytest.fixture(scope="module")
def js_browser() -> Iterator[webdriver.Chrome]:
    with browser.chromium() as driver:
        yield driver


def shoot(driver: webdriver.Chrome, artefacts: Path, name: str, javascript: bool = True) -> None:
    path = artefacts / f"{name}.png"
    browser.full_page_screenshot(driver, path, javascript)
    assert path.stat().st_size > 10_000
    if os.environ.get("CENSORWATCH_UPDATE_SCREENSHOTS") == "1" and javascript:
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS / path.name)


def telegram_id(server: StatusServer) -> str:
    _, _, body = get(server.url + "/api/v1/incidents?cc=KZ&status=open&service=telegram")
    return str(json.loads(body)["incidents"][0]["id"])


def cells(driver: webdriver.Chrome, service: str) -> list[str]:
    row = driver.find_element(
        By.XPATH, f"//table[@class='grid']//tr[th[normalize-space()='{service}']]"
    )
    return [td.text for td in row.find_elements(By.TAG_NAME, "td")]


def test_country_page_shows_the_block_the_chart_and_the_linked_incident(
    page: tuple[webdriver.Chrome, bool], status_server: StatusServer, artefacts: Path
) -> None:
    driver, javascript = page
    driver.get(status_server.url + "/country/KZ")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Kazakhstan: internet censorship now"
    assert cells(driver, "Telegram") == ["Blocked"] * 5
    assert set(cells(driver, "YouTube")) == {"Fine"}
    for chart_id in ("chart-24h", "chart-7d"):
        chart = driver.find_element(By.ID, chart_id)
        assert chart.size["width"] > 500
        assert chart.size["height"] > 100
        bars = chart.find_elements(By.CSS_SELECTOR, "path.c-bar")
        assert bars  # Telegram's row
        assert all(bar.size["height"] > 5 for bar in bars)
        assert chart.find_elements(By.CSS_SELECTOR, "rect.c-band")  # the livestreams
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "8 probes in 4 networks" in body
    assert "Opposition livestream" in body
    watch = driver.find_element(By.CSS_SELECTOR, "p.watch")
    assert watch.is_displayed()
    until = status_server.scenario.live_window_end().strftime("%Y-%m-%d %H:%M UTC")
    assert watch.text.startswith(f"Watch window active for Opposition livestream until {until}")
    # the optional script adds its switch only where it may run
    assert bool(driver.find_elements(By.ID, "auto-refresh")) is javascript
    shoot(driver, artefacts, "country-KZ" if javascript else "country-KZ-no-js", javascript)
    # by keyboard: focusing the link scrolls it into view, which a click does not do
    # reliably in a window of fixed height without JavaScript
    driver.find_element(By.LINK_TEXT, "Telegram blocked in Kazakhstan").send_keys(Keys.ENTER)
    assert driver.current_url.endswith(f"/incident/{telegram_id(status_server)}")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Telegram blocked in Kazakhstan"
    summary = driver.find_element(By.CSS_SELECTOR, "p.summary").text
    assert summary.startswith("Telegram has been blocked in Kazakhstan since")
    assert "Opposition livestream" in summary
    shoot(driver, artefacts, "incident" if javascript else "incident-no-js", javascript)


def test_home_page_marks_unconfirmed_incidents_apart(
    page: tuple[webdriver.Chrome, bool], status_server: StatusServer, artefacts: Path
) -> None:
    driver, javascript = page
    driver.get(status_server.url + "/")
    items = driver.find_elements(By.CSS_SELECTOR, "ul.incidents li")
    unconfirmed = [li for li in items if "unconfirmed" in li.text]
    confirmed = [li for li in items if "Telegram blocked in Kazakhstan" in li.text]
    assert len(unconfirmed) == 1
    assert len(confirmed) == 1
    assert unconfirmed[0].value_of_css_property("border-left-style") == "dashed"
    assert confirmed[0].value_of_css_property("border-left-style") == "none"
    assert "Unconfirmed" in unconfirmed[0].text
    cards = {
        c.find_element(By.TAG_NAME, "h3").text
        for c in driver.find_elements(By.CSS_SELECTOR, "li.country")
    }
    assert cards == {"Belarus Shutdown", "Kazakhstan Blocked", "Russia Unconfirmed"}
    watched = {
        c.find_element(By.TAG_NAME, "h3").text.split()[0]: c.find_element(
            By.CSS_SELECTOR, "p.watch"
        ).text
        for c in driver.find_elements(By.CSS_SELECTOR, "li.country")
        if c.find_elements(By.CSS_SELECTOR, "p.watch")
    }
    assert sorted(watched) == ["Kazakhstan", "Russia"]
    assert watched["Russia"].startswith("Watch window active for Election night until")
    shoot(driver, artefacts, "home" if javascript else "home-no-js", javascript)


def test_unconfirmed_incident_page_carries_the_warning(
    js_browser: webdriver.Chrome, status_server: StatusServer, artefacts: Path
) -> None:
    js_browser.get(status_server.url + f"/incident/{UNCONFIRMED_ID}")
    banner = js_browser.find_element(By.CSS_SELECTOR, "p.banner")
    assert banner.is_displayed()
    assert banner.text.startswith("Not confirmed.")
    assert "(unconfirmed)" in js_browser.find_element(By.TAG_NAME, "h1").text
    shoot(js_browser, artefacts, "incident-unconfirmed")


def test_switching_to_russian(
    js_browser: webdriver.Chrome, status_server: StatusServer, artefacts: Path
) -> None:
    js_browser.get(status_server.url + "/country/KZ")
    js_browser.find_element(By.LINK_TEXT, "Русский").click()
    assert js_browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ru"
    assert js_browser.find_element(By.TAG_NAME, "h1").text == "Казахстан: интернет-цензура сейчас"
    assert cells(js_browser, "Telegram") == ["Заблокирован"] * 5
    notice = js_browser.find_element(By.CSS_SELECTOR, "p.watch").text
    assert notice.startswith("Окно наблюдения активно: Opposition livestream, до ")
    js_browser.find_element(By.LINK_TEXT, "Все страны").click()
    assert "lang=ru" in js_browser.current_url
    assert js_browser.find_element(By.TAG_NAME, "h1").text == "Интернет-цензура сейчас"
    js_browser.get(status_server.url + "/country/KZ?lang=ru")
    shoot(js_browser, artefacts, "country-KZ-ru")


def test_keyboard_reaches_the_content_and_the_links(
    js_browser: webdriver.Chrome, status_server: StatusServer
) -> None:
    js_browser.get(status_server.url + "/country/KZ")
    js_browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    skip = js_browser.switch_to.active_element
    assert skip.text == "Skip to the content"
    assert skip.is_displayed()  # visible once focused
    skip.send_keys(Keys.ENTER)
    assert js_browser.switch_to.active_element.get_attribute("id") == "main"
    seen = []
    for _ in range(40):
        js_browser.switch_to.active_element.send_keys(Keys.TAB)
        seen.append(js_browser.switch_to.active_element.text)
        if seen[-1] == "Telegram blocked in Kazakhstan":
            break
    assert "Telegram blocked in Kazakhstan" in seen


@pytest.mark.parametrize(
    "path",
    ["/", "/country/KZ", "/country/KZ?lang=ru", "/country/BY", "/incident/{telegram}",
     f"/incident/{UNCONFIRMED_ID}", f"/incident/{SHUTDOWN_ID}?lang=ru", "/widget/KZ",
     "/country/ZZ", "/incident/nope"],
)  # fmt: skip
def test_axe_finds_no_accessibility_violations(
    js_browser: webdriver.Chrome, status_server: StatusServer, path: str
) -> None:
    js_browser.get(status_server.url + path.format(telegram=telegram_id(status_server)))
    violations = browser.axe_violations(js_browser)
    assert violations == [], json.dumps(violations, indent=1)


def test_widget_and_badge_render(
    js_browser: webdriver.Chrome, status_server: StatusServer, artefacts: Path
) -> None:
    js_browser.set_window_size(360, 320)
    js_browser.get(status_server.url + "/widget/KZ")
    assert "Telegram\nBlocked" in js_browser.find_element(By.TAG_NAME, "main").text
    js_browser.save_screenshot(str(artefacts / "widget-KZ.png"))
    js_browser.get(status_server.url + "/badge/KZ/telegram.svg")
    svg = js_browser.find_element(By.TAG_NAME, "svg")
    assert svg.size["width"] > 80
    assert svg.get_attribute("aria-label") == "Telegram · KZ: Blocked"
    js_browser.set_window_size(1280, 1600)
