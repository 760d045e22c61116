"""`censorwatch sources …` as an operator runs it, against a calendar on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_collector_alerts_cli import censorwatch, events, ok, refused

from collector.cli import EXIT_FAILURE, EXIT_USAGE, main

FEEDS = Path(__file__).parent.parent / "alerts" / "feeds"


@pytest.fixture
def calendar_url() -> Iterator[str]:
    body = (FEEDS / "nextcloud-protests.ics").read_bytes()

    class Calendar(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Calendar)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/remote.php/dav/public-calendars/x"
    finally:
        server.shutdown()
        server.server_close()


def test_sources_add_poll_list_remove(tmp_path: Path, calendar_url: str) -> None:
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    says = refused("sources", "add", "--db", db_url, "--url", calendar_url, "--country", "BY")
    assert "not a public address" in says
    allow = {"CENSORWATCH_SOURCE_ALLOW_PRIVATE": "true"}
    added = censorwatch(
        "sources", "add", "--db", db_url, "--url", calendar_url, "--country", "BY",
        "--keyword", "protest=protest", "--keyword", "stream=livestream", "--interval", "900",
        env=allow,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    source_id = added.stdout.split()[1]
    polled = censorwatch("sources", "poll", "--db", db_url, source_id, env=allow)
    assert polled.returncode == 0, polled.stderr
    assert f"source {source_id}: " in polled.stdout
    [source] = json.loads(ok("sources", "list", "--db", db_url, "--json"))["sources"]
    assert source["id"] == source_id
    assert source["keywords"] == {"protest": "protest", "stream": "livestream"}
    assert source["polls"] == 1
    assert source["last_error"] is None, source
    # the calendar is from 2024: single entries import, the series' occurrences are past
    # the history horizon
    assert {e["title"] for e in events(db_url)} >= {"March for free media"}
    assert "removed" in ok("sources", "remove", "--db", db_url, source_id)
    assert events(db_url)  # its events stay


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--url", "https://example.org/c.ics", "--keyword", "nokind"), "WORD=KIND"),
        (("--url", "https://example.org/c.ics", "--interval", "soon"), "--interval"),
        (("--url", "https://example.org/c.ics", "--interval", "10"), "interval"),
        (("--url", "https://example.org/c.ics", "--country", "Belarus"), "two-letter"),
    ],
)
def test_bad_source_settings_are_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    message = refused("sources", "add", "--db", db_url, *args)
    assert says in message
    assert len(message.strip().splitlines()) == 1


def test_an_empty_database_and_unknown_ids_are_said_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ("--db", f"sqlite:///{tmp_path / 'c.db'}")
    for command, says in (
        ("events", "no events\n"),
        ("sources", "no event sources\n"),
        ("subscribers", "no subscribers\n"),
    ):
        assert main([command, "list", *db]) == 0
        assert capsys.readouterr().out == says
        assert main([command, "list", *db, "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {command: []}
    for command, action, noun in (
        ("sources", "remove", "event source"),
        ("sources", "poll", "event source"),
        ("subscribers", "remove", "subscriber"),
        ("subscribers", "rotate", "subscriber"),
    ):
        assert main([command, action, *db, "nope"]) == EXIT_FAILURE
        assert capsys.readouterr().err == f"censorwatch: no {noun} with id 'nope'\n"


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["sources", "add", "--url", "https://1.1.1.1/x.ics", "--interval", "²"], "--interval"),
        (
            ["events", "add", "--kind", "protest", "--title", "t", "--country", "BY",
             "--start", "2026-01-01T10:00Z", "--duration", "²"],
            "--duration",
        ),
    ],
)  # fmt: skip
def test_a_superscript_digit_is_a_one_line_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], says: str
) -> None:
    assert main([*command, "--db", f"sqlite:///{tmp_path / 'c.db'}"]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith(f"censorwatch: {says}: need whole ")
