"""IP address → (ASN, country), from an operator-supplied table in iptoasn.com's TSV format.

Each line is ``range_start  range_end  AS_number  country_code  AS_description`` separated
by tabs; IPv4 and IPv6 ranges may be mixed; ``.gz`` files are read as gzip. ASN 0 marks
unrouted space and looks up as unknown. The table only answers lookups: addresses passed
in are not kept.
"""

from __future__ import annotations

import bisect
import gzip
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_COUNTRY: Final = re.compile(r"^[A-Z]{2}$")


class TableError(ValueError):
    """A line of the table that cannot be read; names the file and line."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        super().__init__(f"{source}:{line}: {problem}")


@dataclass(frozen=True)
class Network:
    asn: int
    cc: str  # "ZZ" when the table gives none


@dataclass(frozen=True)
class _Range:
    start: int
    end: int
    network: Network


class AsnTable:
    """Sorted, non-overlapping ranges per address family, searched by bisection."""

    def __init__(self, ranges: Iterable[tuple[int, int, int, Network]]) -> None:
        by_version: dict[int, list[_Range]] = {4: [], 6: []}
        for version, start, end, network in ranges:
            by_version[version].append(_Range(start, end, network))
        self._ranges = {v: sorted(r, key=lambda item: item.start) for v, r in by_version.items()}
        self._starts = {v: [item.start for item in r] for v, r in self._ranges.items()}

    def __len__(self) -> int:
        return sum(len(r) for r in self._ranges.values())

    def lookup(self, address: str) -> Network | None:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        value, version = int(ip), ip.version
        index = bisect.bisect_right(self._starts[version], value) - 1
        if index < 0:
            return None
        found = self._ranges[version][index]
        return found.network if value <= found.end else None


def parse_line(text: str, source: str, number: int) -> tuple[int, int, int, Network] | None:
    """One TSV line; None for a blank or unrouted (ASN 0) range."""
    if not text.strip() or text.startswith("#"):
        return None
    fields = text.rstrip("\r\n").split("\t")
    if len(fields) < 4:
        raise TableError(source, number, f"expected at least 4 tab-separated fields, got {text!r}")
    try:
        start = ipaddress.ip_address(fields[0])
        end = ipaddress.ip_address(fields[1])
        asn = int(fields[2])
    except ValueError as exc:
        raise TableError(source, number, str(exc)) from exc
    if start.version != end.version or int(end) < int(start):
        raise TableError(source, number, f"bad range {fields[0]} - {fields[1]}")
    if not 0 <= asn <= 4294967295:
        raise TableError(source, number, f"AS number out of range: {asn}")
    if asn == 0:
        return None
    cc = fields[3].strip().upper()
    return start.version, int(start), int(end), Network(asn, cc if _COUNTRY.match(cc) else "ZZ")


def parse(lines: Iterable[str], source: str) -> AsnTable:
    parsed = (parse_line(line, source, n) for n, line in enumerate(lines, start=1))
    return AsnTable(item for item in parsed if item is not None)


def load(path: Path) -> AsnTable:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as file:
            return parse(file, str(path))
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise TableError(str(path), 0, f"cannot read: {exc}") from exc
