"""The status page over HTTP from a real ``censorwatch serve`` holding the scenario:
what each address answers, in which language, how it caches, and what it never shows."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from lab.harness.postgres import PostgresUnavailable, ThrowawayCluster
from tests.web.scenario import BY_PROBES, KZ_PROBES, RU_PROBES, SHUTDOWN_ID, UNCONFIRMED_ID
from tests.web.status_server import StatusServer, get, running

BUDGET_BYTES = 150 * 1024


def page(server: StatusServer, path: str, **headers: str) -> str:
    status, _, body = get(server.url + path, headers)
    assert status == 200, (path, status, body[:500])
    return body.decode()


def telegram_incident(server: StatusServer) -> dict[str, object]:
    _, _, body = get(server.url + "/api/v1/incidents?cc=KZ&status=open&service=telegram")
    found: dict[str, object] = json.loads(body)["incidents"][0]
    return found


def test_home_lists_each_country_with_its_state_and_open_incidents(
    status_server: StatusServer,
) -> None:
    html = page(status_server, "/")
    for country in ("Kazakhstan", "Russia", "Belarus"):
        assert country in html
    assert "8 probes in 4 networks" in html
    assert f'href="/incident/{telegram_incident(status_server)["id"]}"' in html
    assert f'href="/incident/{SHUTDOWN_ID}"' in html
    assert "Network shutdown in Belarus" in html
    assert "Possible blocking of Instagram in Russia (unconfirmed)" in html


def test_country_page_grid_chart_events_and_coverage(status_server: StatusServer) -> None:
    html = page(status_server, "/country/KZ")
    row = re.search(r"<tr><th scope=\"row\">Telegram</th>(.*?)</tr>", html)
    assert row is not None
    assert row.group(1).count("st-blocked") == 5  # the whole country and its four networks
    whatsapp = re.search(r"<tr><th scope=\"row\">WhatsApp</th>(.*?)</tr>", html)
    assert whatsapp is not None
    assert "st-blocked" not in whatsapp.group(1)
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 2
    assert '<path d="M' in html
    assert "Opposition livestream" in html
    assert "Call to protest in Almaty" in html
    assert "8 probes in 4 networks" in html
    assert "local time (UTC+05:00)" in html
    assert "AS9198: 2 hops from the subscriber, inside AS9198 (Telegram; " in html
    assert "127.10.99" not in html  # routers are placed by network, never shown


def test_the_first_load_of_a_country_page_fits_the_budget(status_server: StatusServer) -> None:
    html = page(status_server, "/country/KZ")
    total = len(html.encode())
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', html):
        status, _, body = get(status_server.url + asset.replace("&amp;", "&"))
        assert status == 200
        total += len(body)
    assert total < BUDGET_BYTES


def test_no_page_shows_anything_that_could_locate_a_volunteer(status_server: StatusServer) -> None:
    _, _, body = get(status_server.url + "/api/v1/probes")
    probe_ids = [p["probe_id"] if "probe_id" in p else p["id"] for p in json.loads(body)["probes"]]
    assert probe_ids
    incident = telegram_incident(status_server)
    paths = ["/", "/country/KZ", "/country/RU", "/country/BY", f"/incident/{incident['id']}",
             f"/incident/{incident['id']}.txt", f"/incident/{incident['id']}.json",
             "/incidents.atom", "/widget/KZ", "/badge/KZ/telegram.svg"]  # fmt: skip
    for path in paths:
        text = page(status_server, path)
        for address in KZ_PROBES + RU_PROBES + BY_PROBES:
            assert address not in text, (path, address)
        for probe_id in probe_ids:
            assert probe_id not in text, (path, probe_id)


def test_incident_permalink_in_html_text_and_json(status_server: StatusServer) -> None:
    incident = telegram_incident(status_server)
    path = f"/incident/{incident['id']}"
    html = page(status_server, path)
    assert "Telegram has been blocked in Kazakhstan since" in html
    assert "the announced livestream “Opposition livestream”" in html
    for asn in incident["asns"]:  # type: ignore[attr-defined]
        assert f"AS{asn}" in html
    for rule in incident["rules"]:  # type: ignore[attr-defined]
        assert f"<code>{rule}</code>" in html
    assert '<meta property="og:title" content="Telegram blocked in Kazakhstan">' in html
    assert '<meta name="twitter:card" content="summary">' in html
    # too few past livestreams for a test: the page says so instead of a p-value
    assert "Not enough past events of this kind for a figure" in html
    text = page(status_server, path + ".txt")
    assert text.startswith("Telegram blocked in Kazakhstan\n")
    assert "</" not in text  # plain text; "p < 1e-6" is the figure's own
    assert "<p" not in text
    body = json.loads(page(status_server, path + ".json"))
    assert body["confirmed"] is True
    assert body["state"] == "blocked"
    assert body["events"][0]["title"] == "Opposition livestream"
    assert body["summary"].startswith("Telegram has been blocked")
    # times as the API writes them (RFC 3339), not Python's str()
    assert body["onset"] == incident["onset"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["onset"])


def test_an_unconfirmed_incident_says_so(status_server: StatusServer) -> None:
    html = page(status_server, f"/incident/{UNCONFIRMED_ID}")
    assert 'class="banner"' in html
    assert "Not confirmed." in html
    assert "incident-unconfirmed" in html
    assert "st-blocked" not in html
    body = json.loads(page(status_server, f"/incident/{UNCONFIRMED_ID}.json"))
    assert (body["confirmed"], body["state"], body["status"]) == (
        False,
        "unconfirmed",
        "unconfirmed",
    )


def test_active_watch_windows_on_the_country_and_home_pages(status_server: StatusServer) -> None:
    until = status_server.scenario.live_window_end().strftime("%Y-%m-%d %H:%M UTC")
    kz = page(status_server, "/country/KZ")
    notice = (
        rf'Watch window active for Opposition livestream until <time datetime="[^"]+">{until}, '
    )
    assert re.search(notice, kz)
    assert "Election night" not in kz  # Russia's window is Russia's
    assert "Watch window active" not in page(status_server, "/country/BY")
    home = page(status_server, "/")
    assert home.count('<p class="watch">') == 2
    assert "Watch window active for Election night until" in home
    ru = page(status_server, "/country/KZ?lang=ru")
    assert "Окно наблюдения активно: Opposition livestream, до <time" in ru
    assert "Окно наблюдения активно: Election night, до" in page(status_server, "/?lang=ru")


def test_russian_by_accept_language_and_by_switch(status_server: StatusServer) -> None:
    html = page(status_server, "/country/KZ", **{"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ru">' in html
    assert "Казахстан" in html
    assert "8 зондов в 4 сетях" in html
    assert "AS9198: 2 узла от абонента, внутри AS9198" in html
    switched = page(status_server, "/country/KZ?lang=ru", **{"Accept-Language": "en"})
    assert "Заблокирован" in switched
    assert 'href="/incidents.atom?lang=ru"' in page(status_server, "/?lang=ru")
    assert '<html lang="en">' in page(status_server, "/country/KZ?lang=en&utm_source=x")


def test_pages_carry_etags_and_answer_304(status_server: StatusServer) -> None:
    for path in ("/incidents.atom", "/static/style.css", f"/incident/{SHUTDOWN_ID}"):
        status, headers, _ = get(status_server.url + path)
        assert status == 200
        etag = headers["ETag"]
        again, headers2, empty = get(status_server.url + path, {"If-None-Match": etag})
        assert (again, empty, headers2["ETag"]) == (304, b"", etag)
        assert "max-age" in headers["Cache-Control"]
        assert "Accept-Language" in headers["Vary"]
    html = page(status_server, "/")
    css = re.search(r'href="(/static/style.css\?v=[0-9a-f]+)"', html)
    assert css is not None
    _, headers, _ = get(status_server.url + css.group(1))
    assert "immutable" in headers["Cache-Control"]


def test_feeds_global_and_per_country(status_server: StatusServer) -> None:
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(page(status_server, "/incidents.atom"))
    titles = [e.findtext("a:title", namespaces=ns) for e in root.findall("a:entry", ns)]
    assert "Telegram blocked in Kazakhstan" in titles
    assert "Network shutdown in Belarus" in titles
    assert "Possible blocking of Instagram in Russia (unconfirmed)" in titles
    kz = ET.fromstring(page(status_server, "/country/KZ/incidents.atom"))
    assert {e.findtext("a:title", namespaces=ns) for e in kz.findall("a:entry", ns)} == {
        "Telegram blocked in Kazakhstan"
    }
    rss = ET.fromstring(page(status_server, "/country/BY/incidents.rss?lang=ru"))
    assert rss.findtext("channel/item/title") == "Отключение сети в Беларуси"
    body = json.loads(page(status_server, "/incidents.json"))
    assert body["version"] == "https://jsonfeed.org/version/1.1"
    assert any(i["url"].endswith(f"/incident/{SHUTDOWN_ID}") for i in body["items"])


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/badge/KZ/telegram.svg", "Telegram · KZ: Blocked"),
        ("/badge/KZ/youtube.svg", "YouTube · KZ: Fine"),
        ("/badge/BY/youtube.svg", "YouTube · BY: Shutdown"),
        ("/badge/RU/instagram.svg", "Instagram · RU: Unconfirmed"),
        ("/badge/KZ/unknown_service.svg", "unknown_service · KZ: No data"),
        ("/badge/KZ/telegram.svg?lang=ru", "Telegram · KZ: Заблокирован"),
    ],
)
def test_badges(status_server: StatusServer, path: str, words: str) -> None:
    status, headers, body = get(status_server.url + path)
    assert status == 200
    assert headers["Content-Type"].startswith("image/svg+xml")
    assert ET.fromstring(body).get("aria-label") == words


def test_the_widget_may_be_framed_and_the_pages_may_not(status_server: StatusServer) -> None:
    _, headers, body = get(status_server.url + "/widget/KZ/telegram")
    assert "frame-ancestors *" in headers["Content-Security-Policy"]
    assert "Blocked" in body.decode()
    _, headers, _ = get(status_server.url + "/country/KZ")
    assert "frame-ancestors 'self'" in headers["Content-Security-Policy"]
    assert "Server-Timing" in headers


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/country/kz", 200),  # redirected to /country/KZ
        ("/country/KZZ", 404),
        ("/country/1", 404),
        ("/country/%00", 404),
        ("/incident/nope", 404),
        ("/incident/nope.json", 404),
        ("/incident/%2e%2e%2fetc", 404),
        ("/badge/K/telegram.svg", 404),
        ("/badge/KZ/Tele%20gram.svg", 404),
        ("/widget/KZ/..", 404),
        ("/static/nope.css", 404),
        ("/country/ZZ", 200),  # a country with no probe: a page that says so
        ("/country/ZZ/incidents.atom", 200),
    ],
)
def test_bad_addresses_get_a_clear_4xx_never_a_5xx(
    status_server: StatusServer, path: str, status: int
) -> None:
    answer, _, body = get(status_server.url + path)
    assert answer == status, (path, body[:300])


def test_the_same_pages_on_postgresql(tmp_path: Path) -> None:
    try:
        cluster = ThrowawayCluster()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with cluster.running(), running(tmp_path, cluster.create_database("status")) as server:
        home = page(server, "/")
        assert "Network shutdown in Belarus" in home
        html = page(server, "/country/KZ")
        row = re.search(r"<tr><th scope=\"row\">Telegram</th>(.*?)</tr>", html)
        assert row is not None
        assert row.group(1).count("st-blocked") == 5
        assert '<path d="M' in html
        incident = telegram_incident(server)
        assert "Opposition livestream" in page(server, f"/incident/{incident['id']}")
        assert "<entry>" in page(server, "/country/KZ/incidents.atom")
