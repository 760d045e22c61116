"""Which collector URLs the daemon will talk to.

A probe token, the measurements and the target lists pushed at check-in all travel to and
from the collector. Over plain ``http://`` anyone on the path reads the token and rewrites
the lists (pointing probes at the volunteer's own LAN, for one), so the daemon wants
``https://``; plain HTTP only to this machine's loopback, where there is no path, or with
``--insecure-http`` for a lab, loudly, every start.
"""

from __future__ import annotations

import urllib.parse
from typing import Final

from probe.addresses import is_loopback

INSECURE_WARNING: Final = (
    "--insecure-http: talking to the collector over plain HTTP; anyone on the path can read "
    "this probe's token and rewrite its target lists. For labs only."
)


class TransportError(ValueError):
    """A collector URL the daemon refuses; says why and what to use instead."""


def check_collector(url: str, insecure_http: bool) -> str | None:
    """None if ``url`` is fine as it is, else the warning to log on each start; raises
    ``TransportError`` for a URL the daemon will not use."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(f"--collector: {url!r} is not an https:// URL")
    if parts.username or parts.password:
        raise TransportError(f"--collector: {url!r}: no credentials in the URL; use --token-file")
    if parts.scheme == "https" or is_loopback(parts.hostname):
        return None
    if insecure_http:
        return INSECURE_WARNING
    raise TransportError(
        f"--collector: {url!r} is plain HTTP: the probe's token and target lists could be read "
        "and rewritten on the way; use https:// (plain HTTP is allowed only to loopback, or "
        "with --insecure-http in a lab)"
    )
