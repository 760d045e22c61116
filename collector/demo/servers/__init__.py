"""Real servers that play "the internet" for tests and for the censorship lab.

Every server binds to a host and port given by the caller (port 0: any free port, read back
from ``.port`` once started), runs in the current asyncio loop, and is started and stopped
with ``start()``/``close()`` or ``async with``. Nothing here reaches beyond the addresses it is
given. ``python -m collector.demo.servers CONFIG`` runs a set of them as a process (see
``collector.demo.servers.config`` for the format).
"""

from __future__ import annotations

from collector.demo.servers.base import Server
from collector.demo.servers.dns import DNSOverTCP, DNSOverTLS, DNSServer
from collector.demo.servers.doh import DNSOverHTTPS
from collector.demo.servers.http import HTTPServer
from collector.demo.servers.pages import BLOCKPAGE_TEXT, BLOCKPAGE_TITLE
from collector.demo.servers.pki import PKI, LeafFiles
from collector.demo.servers.tcp import ClosedPort, TCPAcceptServer, TCPResetServer
from collector.demo.servers.tls import TLSRule, TLSServer
from collector.demo.servers.zone import (
    Answer,
    Behaviour,
    Delay,
    Double,
    NXDomain,
    Refused,
    ServFail,
    Silent,
    Zone,
)

__all__ = [
    "BLOCKPAGE_TEXT",
    "BLOCKPAGE_TITLE",
    "PKI",
    "Answer",
    "Behaviour",
    "ClosedPort",
    "DNSOverHTTPS",
    "DNSOverTCP",
    "DNSOverTLS",
    "DNSServer",
    "Delay",
    "Double",
    "HTTPServer",
    "LeafFiles",
    "NXDomain",
    "Refused",
    "ServFail",
    "Server",
    "Silent",
    "TCPAcceptServer",
    "TCPResetServer",
    "TLSRule",
    "TLSServer",
    "Zone",
]
