"""Logging that never records a client's address.

aiohttp's access log prints the remote address by default, and its error log names the
address of a client whose request failed to parse. The collector replaces the first with
an access logger that has no address in it, and its log handler rewrites anything parsing
as an IP address, with or without a port (``1.2.3.4:53``, ``[2001:db8::1]:443``), to
``<address>`` — in the message and in any traceback — whichever logger it came from.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

_CANDIDATE: Final = re.compile(r"\[?[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*\]?(?::[0-9]{1,5})?")
REDACTED: Final = "<address>"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _redact_match(match: re.Match[str]) -> str:
    """An address, an address with a port (``1.2.3.4:53``, ``[v6]:53``), or the text."""
    text = match.group(0).strip(".")
    host, colon, port = text.rpartition(":")
    if _is_address(text) or _is_address(text.rstrip(":")):
        return REDACTED
    if colon and (port.isdigit() or not port) and _is_address(host.strip("[]")):
        return REDACTED
    return match.group(0)


def redact(text: str) -> str:
    return _CANDIDATE.sub(_redact_match, text)


class RedactingFormatter(logging.Formatter):
    """Redacts the whole line, traceback included: an exception's text can name a peer."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactAddresses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class AccessLogger(AbstractAccessLogger):
    """Method, path, status and duration; no address, no query string, no headers."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms", request.method, request.path, response.status, time * 1000
        )


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactAddresses())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
