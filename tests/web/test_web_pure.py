"""The status page's decisions and drawings, without a server: states, wording, charts,
feeds, badges, languages, ETags."""

from __future__ import annotations

import datetime as dt
import json
import re
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.model import Event, Incident
from collector.web import badge, caching, charts, feeds, i18n, views, wording
from collector.web.picture import Counts, cell_state, measured_state, series, standing, worst
from collector.web.zones import COUNTRY_ZONES, local

T0 = dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.UTC)


def incident(**changes: object) -> Incident:
    fields: dict[str, object] = {
        "id": "inc-1", "kind": "blocking", "service": "telegram", "cc": "KZ",
        "asns": (9198, 21299), "onset": T0, "last_seen": T0, "resolved_at": None,
        "methods": ("dns.nxdomain",), "confidence": 0.9, "probes": 5,
        "evidence": ("5 probes",), "rules": ("block.open.repeat",), "rules_version": "1",
        "confirmed_at": T0,
    }  # fmt: skip
    fields.update(changes)
    return Incident(**fields)  # type: ignore[arg-type]


# -- states ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "resolved", "status", "confirmed", "state"),
    [
        ({}, False, "open", True, "blocked"),
        ({}, True, "resolved", True, "blocked"),
        ({"status": "unconfirmed"}, False, "unconfirmed", False, "unconfirmed"),
        ({"status": "unconfirmed"}, True, "resolved", False, "unconfirmed"),
        ({"confirmed": False}, False, "open", False, "unconfirmed"),
        ({"status": "disputed"}, False, "disputed", True, "disputed"),
    ],
)
def test_an_incident_standing_reads_every_way_status_is_recorded(
    raw: dict[str, object], resolved: bool, status: str, confirmed: bool, state: str
) -> None:
    s = standing(incident(resolved_at=T0 if resolved else None), raw, T0)
    assert (s.status, s.confirmed, s.state) == (status, confirmed, state)


def test_shutdown_and_throttling_incidents_have_their_own_states() -> None:
    assert standing(incident(kind="shutdown", service=None), {}, T0).state == "shutdown"
    assert standing(incident(methods=("throttled",)), {}, T0).state == "throttled"


@pytest.mark.parametrize(
    ("counts", "state"),
    [
        ({}, "nodata"),
        ({"ok": 9, "blocked": 1}, "ok"),
        ({"ok": 1, "blocked": 9}, "unconfirmed"),  # measurements alone never say "blocked"
        ({"offline": 5, "ok": 5}, "offline"),
        ({"throttled": 6, "ok": 2}, "throttled"),
        ({"anomaly": 4, "ok": 1}, "anomaly"),
        ({"sideways": 3}, "sideways"),  # a verdict from a newer probe is passed through
    ],
)
def test_measured_state(counts: dict[str, int], state: str) -> None:
    assert measured_state(Counts(counts)) == state


def test_an_open_incident_decides_the_cells_it_covers_only() -> None:
    open_ = [standing(incident(), {}, T0)]
    healthy = Counts({"ok": 10})
    assert cell_state(healthy, open_, "telegram", 9198) == "blocked"
    assert cell_state(healthy, open_, "telegram", None) == "blocked"
    assert cell_state(healthy, open_, "telegram", 48716) == "ok"  # not among its ASNs
    assert cell_state(healthy, open_, "youtube", 9198) == "ok"
    resolved = [standing(incident(resolved_at=T0), {}, T0)]
    assert cell_state(healthy, resolved, "telegram", 9198) == "ok"


def test_a_shutdown_covers_every_service_on_its_networks() -> None:
    down = [standing(incident(kind="shutdown", service=None, asns=(25106,)), {}, T0)]
    assert cell_state(Counts({"offline": 3}), down, "youtube", 25106) == "shutdown"
    assert cell_state(Counts({"ok": 3}), down, "youtube", 6697) == "ok"


def test_worst_orders_by_alarm_and_puts_unknown_states_after_known_ones() -> None:
    assert worst(["ok", "unconfirmed", "blocked"]) == "blocked"
    assert worst(["ok", "shutdown", "blocked"]) == "shutdown"
    assert worst(["ok", "sideways"]) in ("ok", "sideways")
    assert worst([]) == "nodata"


@given(
    st.dictionaries(st.sampled_from(["ok", "blocked", "offline", "anomaly"]), st.integers(0, 50))
)
def test_measured_state_is_never_blocked(counts: dict[str, int]) -> None:
    assert measured_state(Counts(counts)) != "blocked"


def test_series_sums_hours_into_buckets_and_drops_what_is_outside() -> None:
    hourly = {
        T0: Counts({"blocked": 1, "ok": 1}),
        T0 + dt.timedelta(hours=1): Counts({"blocked": 2}),
        T0 + dt.timedelta(hours=6): Counts({"ok": 4}),
        T0 - dt.timedelta(hours=1): Counts({"blocked": 99}),
    }
    points = series(hourly, T0, 2, dt.timedelta(hours=6))
    assert [p.blocked_share for p in points] == [0.75, 0.0]
    assert series({}, T0, 1, dt.timedelta(hours=1))[0].blocked_share is None


# -- grid --------------------------------------------------------------------------------

SERVICES = views.Services({"telegram": "Telegram", "youtube": "YouTube", "control_a": "C"},
                          frozenset({"control_a"}))  # fmt: skip


def test_grid_folds_quiet_networks_but_never_those_of_an_open_incident() -> None:
    c = i18n.catalogue("en")
    networks = {("youtube", 1000 + n): Counts({"ok": 100 - n}) for n in range(20)}
    networks[("telegram", 9198)] = Counts({"blocked": 1})
    networks[("control_a", 1000)] = Counts({"ok": 5})
    open_ = [standing(incident(asns=(9198,)), {}, T0)]
    grid = views.grid(SERVICES, {}, networks, open_, c, every_network=False)
    assert grid.columns[0] == "AS9198"
    assert len(grid.columns) == views.MAX_COLUMNS + 1
    assert grid.columns[-1] == "9 other networks"
    assert [r.service for r in grid.rows] == ["telegram", "youtube"]  # no control service
    assert grid.rows[0].cells[0].state == "blocked"
    everything = views.grid(SERVICES, {}, networks, open_, c, every_network=True)
    assert len(everything.columns) == 21


# -- wording -----------------------------------------------------------------------------


def clock(moment: dt.datetime) -> str:
    return moment.strftime("%H:%M UTC")


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_summaries_name_service_country_onset_networks_and_event(language: str) -> None:
    c = i18n.catalogue(language)
    event = Event("e1", "livestream", "Opposition livestream", "KZ", T0, None, None, ())
    linked = [wording.LinkedEvent(event, 240.0)]
    text = wording.summary(c, standing(incident(), {}, T0), "Telegram", clock, linked)
    for part in ("Telegram", "18:00 UTC", "AS9198", "AS21299", "Opposition livestream", "4"):
        assert part in text
    assert c.country("KZ", "in") in text


@pytest.mark.parametrize(
    ("language", "seconds", "words"),
    [("en", 7.0, "within a minute of"), ("en", -20.0, "within a minute of"),
     ("en", 240.0, "4 min after"), ("ru", 7.0, "в пределах минуты"), ("ru", -240.0, "за 4 мин")],
)  # fmt: skip
def test_an_onset_within_a_minute_of_the_event_is_not_zero_minutes_after_it(
    language: str, seconds: float, words: str
) -> None:
    c = i18n.catalogue(language)
    event = Event("e1", "livestream", "Opposition livestream", "KZ", T0, None, None, ())
    linked = [wording.LinkedEvent(event, seconds)]
    text = wording.summary(c, standing(incident(), {}, T0), "Telegram", clock, linked)
    assert words in text
    assert words.split()[-1] in wording.delay(c, seconds)
    assert " 0 " not in text + wording.delay(c, seconds)


def test_unconfirmed_and_shutdown_incidents_are_worded_as_such() -> None:
    c = i18n.catalogue("en")
    unconfirmed = standing(incident(), {"status": "unconfirmed"}, T0)
    assert "(unconfirmed)" in wording.title(c, unconfirmed, "Telegram")
    assert "too few independent probes" in wording.summary(c, unconfirmed, "Telegram", clock, [])
    shutdown = standing(incident(kind="shutdown", service=None), {}, T0)
    assert wording.title(c, shutdown, "") == "Network shutdown in Kazakhstan"


def test_russian_plurals() -> None:
    c = i18n.catalogue("ru")
    assert [c.plural("probes", n) for n in (1, 2, 5, 11, 21, 22, 25)] == [
        "1 зонд", "2 зонда", "5 зондов", "11 зондов", "21 зонд", "22 зонда", "25 зондов",
    ]  # fmt: skip


# -- languages and zones -----------------------------------------------------------------


def test_every_language_has_every_text() -> None:
    keys = {lang: set(i18n.catalogue(lang).entries) for lang in i18n.LANGUAGES}
    assert keys["en"] == keys["ru"]


def test_a_missing_text_is_an_error_not_a_blank() -> None:
    with pytest.raises(i18n.MissingText):
        i18n.catalogue("en").text("no.such.key")


@pytest.mark.parametrize(
    ("query", "header", "chosen"),
    [
        (None, None, "en"),
        (None, "ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        (None, "de-DE,de;q=0.9,ru;q=0.5,en;q=0.4", "ru"),
        (None, "en;q=0.2, ru;q=0.9", "ru"),
        (None, "ru;q=0, en", "en"),
        (None, "garbage;q=x, ru", "ru"),
        ("en", "ru", "en"),
        ("xx", "ru", "ru"),
    ],
)
def test_language_choice(query: str | None, header: str | None, chosen: str) -> None:
    assert i18n.choose(query, header) == chosen


def test_local_times_exist_for_every_listed_country() -> None:
    for cc in COUNTRY_ZONES:
        assert local(T0, cc) is not None, cc
    almaty = local(T0, "KZ")
    assert almaty is not None
    assert almaty.utcoffset() == dt.timedelta(hours=5)
    assert local(T0, "ZZ") is None


# -- charts ------------------------------------------------------------------------------


def timeline(rows: list[charts.Row], bands: list[charts.Band]) -> charts.Timeline:
    return charts.Timeline(
        chart_id="c", title="Blocked share", description="Telegram: highest 100%",
        first=T0, last=T0 + dt.timedelta(hours=4), width=dt.timedelta(hours=1), rows=rows,
        bands=bands, onsets=[charts.Onset(T0 + dt.timedelta(hours=2), "Telegram <blocked>")],
        tick_every=dt.timedelta(hours=1), tick_label=lambda m: m.strftime("%H:%M"),
    )  # fmt: skip


def test_the_chart_is_valid_svg_with_a_text_alternative_and_one_bar_per_blocked_bucket() -> None:
    hourly = {T0 + dt.timedelta(hours=h): Counts({"blocked": h, "ok": 3 - h}) for h in range(4)}
    row = charts.Row("Telegram & co", series(hourly, T0, 4, dt.timedelta(hours=1)))
    band = charts.Band(1, "Live <stream>", T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=9))
    svg = charts.render(timeline([row], [band]))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c-t c-d"
    assert root.find(f"{ns}title") is not None
    assert root.find(f"{ns}desc") is not None
    (path,) = [p for p in root.iter(f"{ns}path") if p.get("class") == "c-bar"]
    bars = re.findall(r"M([0-9.]+) ([0-9.]+)v(-[0-9.]+)h([0-9.]+)v([0-9.]+)z", path.get("d", ""))
    assert len(bars) == 3  # the first hour had none blocked
    heights = [float(h) for *_, h in bars]
    assert heights == sorted(heights)
    assert heights[-1] == charts.ROW - 14  # 100% fills the row
    assert "Live <stream>" in "".join(root.itertext())
    assert "100%" in "".join(root.itertext())


def test_a_chart_without_rows_still_draws_its_axis() -> None:
    root = ET.fromstring(charts.render(timeline([], [])))
    assert root.get("viewBox", "").startswith("0 0 760")


# -- feeds, badge, caching ---------------------------------------------------------------

ITEM = feeds.Item(feeds.entry_id("1"), "http://x/incident/1", "Telegram blocked in Kazakhstan",
                  "Since 18:00 <UTC>", T0, T0 + dt.timedelta(minutes=5), ("KZ", "telegram"))  # fmt: skip
FEED = feeds.Feed(feeds.feed_id("/incidents.atom"), "censorwatch: incidents", "http://x/",
                  "http://x/incidents.atom", "en", [ITEM])  # fmt: skip


def test_feed_ids_name_the_incident_and_the_feed_not_the_address() -> None:
    assert feeds.entry_id("1") == feeds.entry_id("1") != feeds.entry_id("2")
    assert feeds.entry_id("1").startswith("urn:uuid:")
    assert feeds.feed_id("/incidents.atom") == feeds.feed_id("/incidents.rss")
    assert feeds.feed_id("/incidents.atom") != feeds.feed_id("/country/KZ/incidents.atom")


def test_atom_feed() -> None:
    root = ET.fromstring(feeds.atom(FEED))
    ns = {"a": feeds.ATOM}
    entry = root.find("a:entry", ns)
    assert entry is not None
    assert entry.findtext("a:id", namespaces=ns) == feeds.entry_id("1")
    link = entry.find("a:link", ns)
    assert link is not None
    assert link.get("href") == "http://x/incident/1"
    assert entry.findtext("a:updated", namespaces=ns) == "2026-12-01T18:05:00Z"
    assert entry.findtext("a:summary", namespaces=ns) == "Since 18:00 <UTC>"
    assert root.findtext("a:updated", namespaces=ns) == "2026-12-01T18:05:00Z"


def test_rss_feed() -> None:
    channel = ET.fromstring(feeds.rss(FEED)).find("channel")
    assert channel is not None
    item = channel.find("item")
    assert item is not None
    assert item.findtext("guid") == feeds.entry_id("1")
    assert item.findtext("link") == "http://x/incident/1"
    assert item.findtext("pubDate") == "Tue, 01 Dec 2026 18:00:00 +0000"


def test_json_feed() -> None:
    body = json.loads(feeds.json_feed(FEED))
    assert body["version"] == "https://jsonfeed.org/version/1.1"
    assert body["items"][0]["date_modified"] == "2026-12-01T18:05:00Z"
    assert body["items"][0]["id"] == feeds.entry_id("1")
    assert feeds.Feed("i", "t", "h", "u", "en", []).updated.year == 1970


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_badge_colours_have_enough_contrast_and_the_state_is_written() -> None:
    for background, foreground in [*badge.COLOURS.values(), badge.NEUTRAL]:
        assert contrast(background, foreground) >= 4.5, background
    assert contrast(badge.LABEL_BACKGROUND, "#ffffff") >= 4.5
    svg = badge.render("Telegram · KZ", "Blocked", "blocked")
    root = ET.fromstring(svg)
    assert root.get("aria-label") == "Telegram · KZ: Blocked"
    assert "Blocked" in "".join(root.itertext())
    assert badge.render("X", "sideways", "sideways").count(badge.NEUTRAL[0]) == 1


def test_stylesheet_state_colours_have_enough_contrast() -> None:
    from importlib.resources import files

    css = files("collector.web").joinpath("static/style.css").read_text()
    pairs = re.findall(r"\.st-[a-z, .-]+\{ background: (#[0-9a-f]{6}); color: (#[0-9a-f]{6});", css)
    assert len(pairs) >= 7
    for background, foreground in pairs:
        assert contrast(background, foreground) >= 4.5, (background, foreground)


def test_etags_are_strong_and_stable() -> None:
    assert caching.etag_of(b"x") == caching.etag_of(b"x")
    assert caching.etag_of(b"x") != caching.etag_of(b"y")
    assert re.fullmatch(r'"[0-9a-f]{32}"', caching.etag_of(b"x"))


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("https://example.org/live", "https://example.org/live"),
        ("HTTP://example.org/", "HTTP://example.org/"),
        ("javascript:alert(1)", None),
        (" javascript:alert(1)", None),
        ("data:text/html,x", None),
        (None, None),
        ("", None),
    ],
)
def test_event_sources_become_links_only_when_they_are_web_addresses(
    url: str | None, link: str | None
) -> None:
    from collector.web.site import web_link

    assert web_link(url) == link
