"""No address reaches the collector's log from the request path: addresses in headers, the
query, bodies and exceptions, with and without ports, are all ``<address>``."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
import sys
import urllib.parse
from pathlib import Path

import pytest
from collector_harness import ServerProcess, http

from collector.logs import REDACTED, RedactingFormatter, redact

ADDRESSES = (
    "203.0.113.7", "203.0.113.7:5353", "2001:db8::42", "[2001:db8::42]:443",
    "::ffff:198.51.100.9", "udp://192.168.1.1:53",
)  # fmt: skip
_ANY = re.compile(r"\[?[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*\]?")


def _addresses_in(text: str) -> list[str]:
    found = []
    for match in _ANY.finditer(text):
        candidate = match.group(0).strip(".[]:")
        for form in (candidate, candidate.rpartition(":")[0].strip("[]")):
            try:
                ipaddress.ip_address(form)
            except ValueError:
                continue
            found.append(match.group(0))
    return found


@pytest.mark.parametrize("address", ADDRESSES)
def test_every_form_is_redacted(address: str) -> None:
    assert _addresses_in(redact(f"peer {address}, again ({address!r})")) == []


def test_tracebacks_are_redacted_too() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise ConnectionError("connect to 203.0.113.7:443 failed")
    except ConnectionError:
        record.exc_info = sys.exc_info()
    line = RedactingFormatter("%(message)s").format(record)
    assert "203.0.113.7" not in line
    assert REDACTED in line


def test_a_live_collector_logs_no_address(tmp_path: Path) -> None:
    process = ServerProcess(
        tmp_path, f"sqlite:///{tmp_path / 'c.db'}", env={"CENSORWATCH_LOG_LEVEL": "DEBUG"}
    )
    try:
        process.wait_ready()
        token = process.register()
        for address in ADDRESSES:
            headers = {
                "X-Forwarded-For": address, "Forwarded": f"for={address}", "User-Agent": address,
                "Authorization": f"Bearer {address}",
            }  # fmt: skip
            query = urllib.parse.urlencode({"service": address, "cc": address, "x": address})
            http("GET", f"{process.url}/api/v1/measurements?{query}", headers=headers)
            http("GET", f"{process.url}/api/v1/nowhere/{address}", headers=headers)
            body = f'[{{"id": "{address}", "probe": {{"id": "{address}"}}}}]'.encode()
            auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            http("POST", f"{process.url}/api/v1/measurements", body, auth)
            http("POST", f"{process.url}/api/v1/events/import", body, headers)
            _malformed_request(process.port, address)
    finally:
        process.stop()
    log = process.stderr.read_text()  # stdout has only the operator's own listen address
    assert "GET /api/v1/measurements" in log  # the access log is on
    assert REDACTED in log  # something tried to log an address …
    assert _addresses_in(log) == [], log  # … and none got through


def _malformed_request(port: int, address: str) -> None:
    """A request aiohttp cannot parse: its error log names the peer unless redacted."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            f"GET /{address} HTTP/1.1\r\nHost: {address}\r\nBad\0Header\r\n\r\n".encode()
        )
        with contextlib.suppress(OSError):
            connection.recv(4096)
