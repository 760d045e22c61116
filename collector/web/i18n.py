"""Languages of the status page: catalogues shipped as TOML, chosen per request.

A request names its language with ``?lang=``; otherwise the first supported language in
``Accept-Language`` wins; otherwise English. A missing key is a bug, not a blank on the
page: ``Catalogue.text`` raises, and a test checks that every language has every key.
Plural forms follow each language's rule (English one/other; Russian one/few/many).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final

LANGUAGES: Final = ("en", "ru")
DEFAULT: Final = "en"


def _english(n: int) -> int:
    return 0 if n == 1 else 1


def _russian(n: int) -> int:
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return 1
    return 2


_PLURAL: Final[dict[str, Callable[[int], int]]] = {"en": _english, "ru": _russian}


class MissingText(KeyError):
    """A catalogue lacks a key the page asked for; carries both."""

    def __init__(self, language: str, key: str) -> None:
        self.language = language
        self.key = key
        super().__init__(f"{language}: no text for {key!r}")


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@dataclass(frozen=True)
class Catalogue:
    language: str
    entries: Mapping[str, Any]

    def text(self, key: str, **values: Any) -> str:
        entry = self.entries.get(key)
        if not isinstance(entry, str):
            raise MissingText(self.language, key)
        return entry.format(**values) if values else entry

    def plural(self, key: str, n: int) -> str:
        forms = self.entries.get(key)
        if not isinstance(forms, list):
            raise MissingText(self.language, key)
        form: str = forms[min(_PLURAL[self.language](n), len(forms) - 1)]
        return form.format(n=n)

    def country(self, cc: str, case: str = "name") -> str:
        """A country's name (``case``: ``name``, or ``in`` for "in Kazakhstan")."""
        entry = self.entries.get(f"countries.{cc.upper()}")
        if not isinstance(entry, list):
            return cc.upper() if case == "name" else self.text("in_country_code", cc=cc.upper())
        return str(entry[0] if case == "name" else entry[1])

    def state(self, state: str) -> str:
        """A state's name; a state this version does not know is shown as it is."""
        entry = self.entries.get(f"states.{state}")
        return entry if isinstance(entry, str) else state


@functools.cache
def catalogue(language: str) -> Catalogue:
    text = files("collector.web").joinpath(f"locales/{language}.toml").read_text("utf-8")
    return Catalogue(language, _flatten(tomllib.loads(text)))


def _ranked(header: str) -> list[tuple[float, str]]:
    ranked = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag:
            ranked.append((-quality, position, tag.lower().split("-")[0]))
    return [(q, tag) for q, _, tag in sorted(ranked) if q < 0]


def choose(query_lang: str | None, accept_language: str | None) -> str:
    """``?lang=`` if supported, else the best supported ``Accept-Language``, else English."""
    if query_lang in LANGUAGES:
        return query_lang
    for _, tag in _ranked(accept_language or ""):
        if tag in LANGUAGES:
            return tag
    return DEFAULT
