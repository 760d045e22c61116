"""Logging that never records a client's address.

aiohttp's access log prints the remote address by default, and its error log names the
address of a client whose request failed to parse. The collector replaces the first with
an access logger that has no address in it, and puts a filter on its log handler that
rewrites anything parsing as an IP address to ``<address>``, whichever logger it came from.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

_CANDIDATE: Final = re.compile(r"[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*")
REDACTED: Final = "<address>"


def _redact_match(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.ip_address(text.strip("."))
    except ValueError:
        return text
    return REDACTED


def redact(text: str) -> str:
    return _CANDIDATE.sub(_redact_match, text)


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
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactAddresses())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
