"""The address the status page's absolute links start with.

With ``public_url`` set, always that: the Host header plays no part, so links in feeds,
cards and embed snippets are right behind any reverse proxy and cannot be pointed
elsewhere. Without it, the request says: its scheme and ``Host``, or, from a trusted proxy
only, what the nearest ``Forwarded`` entry (``proto=``, ``host=``) or ``X-Forwarded-Proto``
/ ``X-Forwarded-Host`` name. A host that is not a plain name or address, with an optional
port, is replaced by the listen address. Anyone can send any Host, so without
``public_url`` feeds carry no absolute links at all (see ``pages.feed``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from aiohttp import web

from collector.state import State

_HOST: Final = re.compile(
    r"(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?"
)
_PAIR: Final = re.compile(r'(proto|host)="?([^";,]*)"?', re.IGNORECASE)


def _forwarded(request: web.Request) -> tuple[str | None, str | None]:
    """Scheme and host as the nearest proxy states them (the last ``Forwarded`` element)."""
    header = request.headers.get("Forwarded")
    if header:
        nearest = header.split(",")[-1]
        found = {k.lower(): v for k, v in _PAIR.findall(nearest)}
        return found.get("proto"), found.get("host")
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip() or None
    host = request.headers.get("X-Forwarded-Host", "").split(",")[-1].strip() or None
    return proto, host


def _from_trusted_proxy(request: web.Request, state: State) -> bool:
    if not state.trusted_proxies or request.remote is None:
        return False
    # the peer itself is trusted exactly when client_address would read its headers
    try:
        peer = ipaddress.ip_address(request.remote)
    except ValueError:
        return False
    return any(peer.version == n.version and peer in n for n in state.trusted_proxies)


def public_origin(request: web.Request, state: State) -> str:
    """``scheme://host[:port]`` for this request's absolute links."""
    if state.config.public_url:
        return state.config.public_url.rstrip("/")
    scheme, host = request.scheme, request.headers.get("Host")
    if _from_trusted_proxy(request, state):
        proto, forwarded_host = _forwarded(request)
        scheme = proto.lower() if proto and proto.lower() in ("http", "https") else scheme
        host = forwarded_host or host
    if not host or not _HOST.fullmatch(host):
        listen = state.config.listen
        host = f"[{listen.host}]:{listen.port}" if ":" in listen.host else str(listen)
    return f"{scheme}://{host.lower()}"
