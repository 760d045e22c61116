"""Fingerprints of censorship, loaded from versioned data files (``probe/data/fingerprints``).

One file per kind, each entry with its scope and source, so that a researcher can add a
country's fingerprints without touching code: ``tls.toml`` (interception certificates),
``dns.toml`` (answers only a censor gives), ``http.toml`` (block pages). ``VERSION`` changes
whenever any entry does (it is a digest of the files), and every analysis records it, so the
collector can re-judge stored facts judged with older fingerprints.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from probe.model import Certificate

KINDS: Final = ("dns", "http", "tls")
_ID: Final = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


class FingerprintFileError(ValueError):
    """A fingerprint file that cannot be used; names the file and the entry."""

    def __init__(self, kind: str, entry: str | None, problem: str) -> None:
        self.kind = kind
        self.entry = entry
        where = f"{kind}.toml" + (f" [{entry}]" if entry else "")
        super().__init__(f"fingerprint file {where}: {problem}")


@dataclass(frozen=True)
class Provenance:
    id: str
    countries: tuple[str, ...]
    scope: str
    sources: tuple[str, ...]

    def citation(self) -> str:
        """How evidence names the entry: its id, its scope and its first source."""
        return f"{self.id} ({self.scope}; {self.sources[0]})"


@dataclass(frozen=True)
class InterceptionCA:
    about: Provenance
    names: tuple[frozenset[tuple[str, str]], ...]
    sha1: frozenset[str]
    sha256: frozenset[str]

    def matches(self, cert: Certificate) -> bool:
        if cert.sha256.lower() in self.sha256 or (cert.sha1 or "").lower() in self.sha1:
            return True
        held = (distinguished_name(cert.subject), distinguished_name(cert.issuer))
        return any(wanted <= dn for wanted in self.names for dn in held)


@dataclass(frozen=True)
class CensorAnswer:
    about: Provenance
    answers: frozenset[str]


@dataclass(frozen=True)
class BlockPage:
    about: Provenance
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Fingerprints:
    version: str
    interception: tuple[InterceptionCA, ...]
    dns: tuple[CensorAnswer, ...]
    http: tuple[BlockPage, ...]

    def interception_ca(
        self, chain: Iterable[Certificate]
    ) -> tuple[InterceptionCA, Certificate] | None:
        """The first known interception CA among the presented certificates, and the one
        that matched."""
        for cert in chain:
            for ca in self.interception:
                if ca.matches(cert):
                    return ca, cert
        return None

    def censor_answer(self, answer: str) -> CensorAnswer | None:
        wanted = answer.lower().rstrip(".")
        return next((e for e in self.dns if wanted in e.answers), None)

    def block_page(self, text: str) -> BlockPage | None:
        return next((p for p in self.http if p.pattern.search(text)), None)


def distinguished_name(text: str) -> frozenset[tuple[str, str]]:
    """An RFC 4514 name as a set of (attribute, value): order and spacing do not matter."""
    parts = re.split(r"(?<!\\),", text)
    pairs = (p.partition("=") for p in parts if "=" in p)
    return frozenset((k.strip().upper(), v.strip().replace("\\,", ",")) for k, _, v in pairs)


@functools.cache
def load() -> Fingerprints:
    """The shipped fingerprint files, parsed once."""
    texts = {kind: _read(kind) for kind in KINDS}
    return parse(texts)


def parse(texts: Mapping[str, str]) -> Fingerprints:
    documents = {kind: _toml(kind, texts[kind]) for kind in KINDS}
    digest = hashlib.sha256()
    for kind in KINDS:
        digest.update(kind.encode() + b"\0" + texts[kind].encode() + b"\0")
    fingerprints = Fingerprints(
        version=digest.hexdigest()[:12],
        interception=tuple(
            _interception(e) for e in _entries(documents["tls"], "tls", "certificates")
        ),
        dns=tuple(_answer(e) for e in _entries(documents["dns"], "dns", "answers")),
        http=tuple(_page(e) for e in _entries(documents["http"], "http", "pages")),
    )
    _check_unique(fingerprints)
    return fingerprints


def _read(kind: str) -> str:
    folder = resources.files("probe").joinpath("data/fingerprints")
    return folder.joinpath(f"{kind}.toml").read_text(encoding="utf-8")


def _toml(kind: str, text: str) -> dict[str, Any]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FingerprintFileError(kind, None, f"invalid TOML: {exc}") from exc
    if not isinstance(document.get("version"), str):
        raise FingerprintFileError(kind, None, "needs a version string")
    return document


_COMMON: Final = frozenset({"id", "countries", "scope", "sources", "note"})
_KEYS: Final = {
    "tls": _COMMON | {"names", "sha1", "sha256"},
    "dns": _COMMON | {"answers"},
    "http": _COMMON | {"pattern", "contains"},
}


def _entries(document: dict[str, Any], kind: str, table: str) -> list[tuple[str, dict[str, Any]]]:
    unknown = set(document) - {"version", table}
    if unknown:
        raise FingerprintFileError(kind, None, f"unknown key {sorted(unknown)[0]!r}")
    rows = document.get(table, [])
    if not isinstance(rows, list):
        raise FingerprintFileError(kind, None, f"[[{table}]] must be an array of tables")
    checked = []
    for row in rows:
        entry_id = row.get("id") if isinstance(row, dict) else None
        if not isinstance(entry_id, str) or not _ID.match(entry_id):
            raise FingerprintFileError(kind, str(entry_id), "id must be dotted snake_case")
        extra = set(row) - _KEYS[kind]
        if extra:
            raise FingerprintFileError(kind, entry_id, f"unknown key {sorted(extra)[0]!r}")
        checked.append((kind, row))
    return checked


def _provenance(kind: str, row: dict[str, Any]) -> Provenance:
    entry = row["id"]
    sources = _strings(kind, entry, row, "sources")
    if not sources:
        raise FingerprintFileError(kind, entry, "every entry needs at least one source")
    scope = row.get("scope")
    if not isinstance(scope, str) or not scope:
        raise FingerprintFileError(kind, entry, "every entry needs a scope")
    return Provenance(entry, _strings(kind, entry, row, "countries"), scope, sources)


def _strings(kind: str, entry: str, row: dict[str, Any], key: str) -> tuple[str, ...]:
    value = row.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise FingerprintFileError(kind, entry, f"{key} must be a list of non-empty strings")
    return tuple(value)


def _interception(item: tuple[str, dict[str, Any]]) -> InterceptionCA:
    kind, row = item
    about = _provenance(kind, row)
    names = tuple(distinguished_name(n) for n in _strings(kind, about.id, row, "names"))
    sha1 = frozenset(h.lower() for h in _strings(kind, about.id, row, "sha1"))
    sha256 = frozenset(h.lower() for h in _strings(kind, about.id, row, "sha256"))
    if any(not n for n in names) or not (names or sha1 or sha256):
        raise FingerprintFileError(kind, about.id, "needs names (A=value, …), sha1 or sha256")
    for digest, length in [*((h, 40) for h in sha1), *((h, 64) for h in sha256)]:
        if not re.fullmatch(rf"[0-9a-f]{{{length}}}", digest):
            raise FingerprintFileError(kind, about.id, f"{digest!r} is not a hex fingerprint")
    return InterceptionCA(about, names, sha1, sha256)


def _answer(item: tuple[str, dict[str, Any]]) -> CensorAnswer:
    kind, row = item
    about = _provenance(kind, row)
    answers = _strings(kind, about.id, row, "answers")
    if not answers:
        raise FingerprintFileError(kind, about.id, "needs answers")
    return CensorAnswer(about, frozenset(a.lower().rstrip(".") for a in answers))


def _page(item: tuple[str, dict[str, Any]]) -> BlockPage:
    kind, row = item
    about = _provenance(kind, row)
    pattern, literal = row.get("pattern"), row.get("contains")
    if (pattern is None) == (literal is None) or not isinstance(pattern or literal, str):
        raise FingerprintFileError(kind, about.id, "needs exactly one of pattern or contains")
    source = pattern if isinstance(pattern, str) else re.escape(str(literal))
    try:
        compiled = re.compile(source, re.IGNORECASE | re.MULTILINE)
    except re.error as exc:
        raise FingerprintFileError(kind, about.id, f"bad pattern: {exc}") from exc
    return BlockPage(about, compiled)


def _check_unique(fingerprints: Fingerprints) -> None:
    for kind, entries in (
        ("tls", fingerprints.interception),
        ("dns", fingerprints.dns),
        ("http", fingerprints.http),
    ):
        seen: set[str] = set()
        for entry in entries:
            if entry.about.id in seen:
                raise FingerprintFileError(kind, entry.about.id, "id used twice")
            seen.add(entry.about.id)
