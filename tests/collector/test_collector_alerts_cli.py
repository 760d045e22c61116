"""`censorwatch events …` and `censorwatch subscribers …` as an admin runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.paths import REPO_ROOT

REPO = REPO_ROOT
ICAL = (
    "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:stream-1\r\nSUMMARY:Opposition livestream\r\n"
    "DTSTART:20240501T180000Z\r\nDURATION:PT2H\r\nX-CENSORWATCH-KIND:livestream\r\n"
    "X-CENSORWATCH-COUNTRY:KZ\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def censorwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CENSORWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        cwd=REPO,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    done = censorwatch(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(*args: str) -> str:
    done = censorwatch(*args)
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip(), "a refusal says why"
    return done.stderr


def events(db_url: str, *extra: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = json.loads(
        ok("events", "list", "--db", db_url, *extra, "--json")
    )["events"]
    return found


def test_events_add_then_list_by_country_and_time(db_url: str) -> None:
    ok("events", "add", "--db", db_url, "--kind", "livestream", "--title", "Stream",
       "--country", "kz", "--start", "2024-05-01T18:00:00Z", "--duration", "90",
       "--source-url", "https://example.org/s", "--tag", "opposition", "--tag", "youtube")  # fmt: skip
    ok("events", "add", "--db", db_url, "--kind", "protest", "--title", "March",
       "--country", "RU", "--start", "2024-06-01T10:00", "--end", "2024-06-01T14:00")  # fmt: skip

    [stream] = events(db_url, "--country", "KZ")
    assert stream["start"] == "2024-05-01T18:00:00+00:00"
    assert stream["end"] == "2024-05-01T19:30:00+00:00"
    assert stream["tags"] == ["opposition", "youtube"]
    [march] = events(db_url, "--since", "2024-05-15T00:00:00Z")
    assert march["title"] == "March"
    assert "Stream" in ok("events", "list", "--db", db_url)


def test_settings_come_from_config_file_then_environment_then_flag(tmp_path: Path) -> None:
    from_file, from_env, from_flag = (f"sqlite:///{tmp_path / n}.db" for n in ("f", "e", "x"))
    config = tmp_path / "collector.toml"
    config.write_text(f'db = "{from_file}"\n')
    add = ("events", "add", "--kind", "other", "--title", "T", "--country", "KZ",
           "--start", "2024-05-01T18:00:00Z")  # fmt: skip
    ok(*add, "--config", str(config))
    ok(*add, "--config", str(config), env={"CENSORWATCH_DB": from_env})
    ok(*add, "--config", str(config), "--db", from_flag, env={"CENSORWATCH_DB": from_env})
    assert [len(events(url)) for url in (from_file, from_env, from_flag)] == [1, 1, 1]


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("feed.ics", ICAL, None),
        ("feed.txt", ICAL, "ical"),
        ("feed", '[{"kind": "livestream", "title": "Opposition livestream", "cc": "KZ", '
                 '"start": "2024-05-01T18:00:00Z", "duration": 7200, "id": "stream-1"}]', None),
        ("feed.xml", '<rss version="2.0" xmlns:cw="https://censorwatch.org/ns/events"><channel>'
                     "<item><title>Opposition livestream</title><guid>stream-1</guid>"
                     "<cw:country>KZ</cw:country><cw:kind>livestream</cw:kind>"
                     "<cw:start>2024-05-01T18:00:00Z</cw:start></item></channel></rss>", None),
        ("feed.atom", '<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>stream-1</id>'
                      "<title>Opposition livestream</title><category term=\"country:KZ\"/>"
                      '<category term="kind:livestream"/><published>2024-05-01T18:00:00Z'
                      "</published></entry></feed>", "atom"),
    ],
)  # fmt: skip
def test_import_reads_each_format_and_twice_is_once(
    tmp_path: Path, name: str, text: str, fmt: str | None
) -> None:
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    feed = tmp_path / name
    feed.write_text(text)
    options = ("--format", fmt) if fmt else ()
    for _ in range(2):
        assert "imported 1 event" in ok("events", "import", "--db", db_url, str(feed), *options)
    [event] = events(db_url)
    assert (event["id"], event["kind"], event["cc"]) == ("stream-1", "livestream", "KZ")


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.ics", ICAL.replace("20240501T180000Z", "tomorrow"), "line 5: VEVENT (UID 'stream-1'): DTSTART"),
        ("bad.json", '[{"title": "x", "cc": "KZ", "start": "2024-05-01"}, {"title": 3}]',
         "event 2: title"),
        ("bad.json", '[{"title": "x", "cc": "KZ",', "line 1"),
        ("bad.rss", "<rss><channel><item><title>x</title></channel></rss>", "not well-formed"),
        ("bad.atom", '<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>x</title>'
                     "<published>2024-05-01T18:00:00Z</published></entry></feed>",
         "entry 1: country"),
        ("bad.txt", "just words", "cannot tell the feed's format"),
    ],
)  # fmt: skip
def test_a_malformed_feed_names_the_place_and_writes_nothing(
    tmp_path: Path, name: str, text: str, where: str
) -> None:
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    feed = tmp_path / name
    feed.write_text(text)
    done = censorwatch("events", "import", "--db", db_url, str(feed))
    assert done.returncode == 2, done.stderr
    assert where in done.stderr, done.stderr
    assert str(feed) in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert events(db_url) == []


def test_subscribers_add_list_rotate_remove(db_url: str) -> None:
    added = ok("subscribers", "add", "--db", db_url, "--url", "https://news.example/hook",
               "--format", "json", "--country", "kz", "--service", "telegram",
               "--min-confidence", "0.6", "--no-resolutions")  # fmt: skip
    subscriber_id = re.search(r"subscriber (\S+) added", added)
    secret = re.search(r"(whsec_\S+)", added)
    assert subscriber_id, added
    assert secret, added
    [listed] = json.loads(ok("subscribers", "list", "--db", db_url, "--json"))["subscribers"]
    assert listed["id"] == subscriber_id[1]
    assert (listed["countries"], listed["services"]) == (["KZ"], ["telegram"])
    assert (listed["min_confidence"], listed["send_resolutions"]) == (0.6, False)
    assert "whsec_" not in ok("subscribers", "list", "--db", db_url)
    assert "whsec_" not in ok("subscribers", "list", "--db", db_url, "--json")

    rotated = ok("subscribers", "rotate", "--db", db_url, subscriber_id[1])
    new_secret = re.search(r"(whsec_\S+)", rotated)
    assert new_secret, rotated
    assert new_secret[1] != secret[1]
    assert "previous secret also signs until" in rotated

    ok("subscribers", "remove", "--db", db_url, subscriber_id[1])
    assert json.loads(ok("subscribers", "list", "--db", db_url, "--json")) == {"subscribers": []}
    assert "no subscriber" in refused("subscribers", "remove", "--db", db_url, subscriber_id[1])
    assert "no subscriber" in refused("subscribers", "rotate", "--db", db_url, "nope")


def test_a_telegram_subscriber_with_a_chat_id(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    ok("subscribers", "add", "--db", db_url, "--url", "https://api.telegram.org/botX/sendMessage",
       "--format", "telegram", "--chat-id", "-1001")  # fmt: skip
    [listed] = json.loads(ok("subscribers", "list", "--db", db_url, "--json"))["subscribers"]
    assert (listed["format"], listed["chat_id"]) == ("telegram", "-1001")


EVENT = ("events", "add", "--kind", "livestream", "--title", "T", "--country", "KZ")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((*EVENT, "--start", "yesterday"), "--start: expected an ISO 8601 time"),
        ((*EVENT[:-1], "KAZ", "--start", "2024-05-01"), "--country: need a two-letter"),
        ((*EVENT, "--start", "2024-05-01T10:00", "--end", "2024-05-01T09:00"), "later than"),
        ((*EVENT, "--start", "2024-05-01", "--duration", "-5"), "--duration"),
        ((*EVENT, "--start", "2024-05-01", "--source-url", "javascript:x"), "--source-url"),
        (
            (
                "events",
                "add",
                "--kind",
                "party",
                "--title",
                "T",
                "--country",
                "KZ",
                "--start",
                "2024-05-01",
            ),
            "invalid choice",
        ),
        (("events", "list", "--since", "soon"), "--since"),
        (("events", "import", "/no/such/feed.ics"), "cannot read"),
        (("subscribers", "add", "--url", "ftp://x", "--format", "json"), "--url"),
        (("subscribers", "add", "--url", "https://x", "--format", "xml"), "invalid choice"),
        (("subscribers", "add", "--url", "https://x", "--format", "telegram"), "--chat-id"),
        (
            (
                "subscribers",
                "add",
                "--url",
                "https://x",
                "--format",
                "json",
                "--min-confidence",
                "2",
            ),
            "--min-confidence",
        ),
        (
            (
                "subscribers",
                "add",
                "--url",
                "https://x",
                "--format",
                "json",
                "--service",
                "Tele gram",
            ),
            "--service",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    done = censorwatch(*args, "--db", db_url)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_an_unreachable_database_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    says = refused("events", "list", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert "cannot use" in says


def test_a_time_whose_offset_leaves_the_calendar_is_a_message(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    done = censorwatch("events", "add", "--db", db_url, "--kind", "other", "--title", "T",
                       "--country", "KZ", "--start", "0001-01-01T00:00:00+05:00")  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "--start" in done.stderr, done.stderr
    assert "outside years 1-9999" in done.stderr, done.stderr
    assert events(db_url) == []
