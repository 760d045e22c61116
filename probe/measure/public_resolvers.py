"""Which resolvers a measurement may name, and what it records of the others.

A resolver's address can identify a volunteer's line: a home router's ``192.168.1.1`` says
little, but an address inside the subscriber's IPv6 prefix, or an ISP resolver serving one
town, says where the probe is. So only the well-known public resolvers of the shipped list
(``probe/data/public-resolvers.toml``, each entry with its source) are named in
observations; any other is recorded as a class:

- ``system``: the machine's own resolver from ``/etc/resolv.conf`` (usually the ISP's, often
  through a local stub or the home router);
- ``private``: a resolver given by address that is not globally reachable (RFC 1918, CGNAT,
  loopback, link-local, ULA);
- ``public-unlisted``: any other resolver, by global address or by name.

Verdicts compare the network's resolver with the control path by ``role``, never by name, so
the class is all they need. Pure: the list is read once, nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal

from probe import addresses

ResolverClass = Literal["system", "private", "public-unlisted"]
SYSTEM: Final = "system"
PRIVATE: Final = "private"
PUBLIC_UNLISTED: Final = "public-unlisted"
CLASSES: Final[tuple[ResolverClass, ...]] = (SYSTEM, PRIVATE, PUBLIC_UNLISTED)
DOH_PATHS: Final = frozenset({"/dns-query", "/resolve"})


@dataclass(frozen=True)
class PublicResolver:
    operator: str
    asn: int
    addresses: frozenset[str]
    hosts: frozenset[str]
    source: str


def _normal(host: str) -> str:
    """An address in one spelling (``2A02:6B8::FEED:0FF`` is ``2a02:6b8::feed:ff``)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host.strip("[]").rstrip(".").lower()


def parse(text: str) -> tuple[PublicResolver, ...]:
    document = tomllib.loads(text)
    return tuple(
        PublicResolver(
            operator=entry["operator"],
            asn=int(entry["asn"]),
            addresses=frozenset(_normal(a) for a in entry["addresses"]),
            hosts=frozenset(_normal(h) for h in entry.get("hosts", [])),
            source=entry["source"],
        )
        for entry in document["resolvers"]
    )


PUBLIC: Final = parse(
    resources.files("probe").joinpath("data/public-resolvers.toml").read_text(encoding="utf-8")
)


def listed(host: str, known: tuple[PublicResolver, ...] = PUBLIC) -> PublicResolver | None:
    """The public resolver at this address or name, if it is on the list."""
    wanted = _normal(host)
    return next((r for r in known if wanted in r.addresses or wanted in r.hosts), None)


def address_class(host: str) -> ResolverClass:
    """``private`` for an address no one outside this network could reach, else
    ``public-unlisted`` (a name counts as public: where it points is not known here)."""
    return PRIVATE if addresses.is_local(host) else PUBLIC_UNLISTED


def doh_path(url: str) -> str:
    """The path of a listed DoH URL as observations may show it: the standard paths only,
    since a provider may put an account id in any other (``/dns-query/abc123``)."""
    rest = url.split("://", 1)[-1]
    path = "/" + rest.split("/", 1)[1] if "/" in rest else ""
    path = path.split("?", 1)[0].split("#", 1)[0]
    return path if path in DOH_PATHS else ""
