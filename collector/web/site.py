"""What every page shares: the template environment, the static assets with their hashes,
the service names, and the per-request view (language, clock, links).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from collector.state import STATE, State
from collector.web import i18n
from collector.web.i18n import Catalogue
from collector.web.origin import public_origin
from collector.web.picture import css_state
from collector.web.views import Services
from collector.web.wording import kind_name
from collector.web.zones import local
from probe import targets as target_lists

ASSETS: Final = ("style.css", "status.js")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    version: str  # a hash of the body: part of the URL, so it can be cached for a year


@dataclass(frozen=True)
class Site:
    templates: jinja2.Environment
    assets: dict[str, Asset]
    services: Services


def _asset(name: str) -> Asset:
    body = files("collector.web").joinpath(f"static/{name}").read_bytes()
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Asset(body, content_type, hashlib.sha256(body).hexdigest()[:12])


def build(state: State) -> Site:
    parsed = target_lists.parse(state.targets.text, state.targets.source)
    services = Services(
        {s.name: s.title or s.name for s in parsed.services},
        frozenset(s.name for s in parsed.services if s.category == "control"),
    )
    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("collector.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    for language in i18n.LANGUAGES:
        i18n.catalogue(language)  # a broken catalogue stops the start, not a page
    for name in templates.list_templates():
        templates.get_template(name)  # compiled now: the first reader does not wait for it
    return Site(templates, {name: _asset(name) for name in ASSETS}, services)


SITE: Final = web.AppKey("status_site", Site)


def _offset(moment: dt.datetime) -> str:
    text = moment.strftime("%z")
    return f"{text[:3]}:{text[3:]}" if text else ""


@dataclass(frozen=True)
class View:
    """One request's language, clock and link style."""

    c: Catalogue
    explicit: bool  # ``?lang=`` was given, so links keep it
    origin: str  # what absolute links start with (``collector.web.origin``)
    pinned: bool  # the origin is the configured ``public_url``, not read from the request
    path: str
    now: dt.datetime

    @classmethod
    def of(cls, request: web.Request, now: dt.datetime) -> View:
        asked = request.query.get("lang")
        language = i18n.choose(asked, request.headers.get("Accept-Language"))
        explicit = asked in i18n.LANGUAGES
        state = request.app[STATE]
        origin, pinned = public_origin(request, state), bool(state.config.public_url)
        return cls(i18n.catalogue(language), explicit, origin, pinned, request.path, now)

    @property
    def lang(self) -> str:
        return self.c.language

    def url(self, path: str, **params: str) -> str:
        if self.explicit:
            params = {**params, "lang": self.lang}
        return path + ("?" + urlencode(params) if params else "")

    def absolute(self, path: str, **params: str) -> str:
        return self.origin + self.url(path, **params)

    def feed_link(self, path: str, **params: str) -> str:
        """Absolute with ``public_url``; otherwise relative to the feed's own address, which
        a reader resolves against where it fetched the feed, whatever Host was sent."""
        return self.absolute(path, **params) if self.pinned else self.url(path, **params)

    def switch(self, language: str) -> str:
        return f"{self.path}?{urlencode({'lang': language})}"

    def utc(self, moment: dt.datetime) -> str:
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def clock(self, moment: dt.datetime, cc: str | None = None) -> str:
        """UTC, and the country's local time when its zone is known."""
        text = self.utc(moment)
        there = local(moment, cc) if cc else None
        if there is None:
            return text
        shown = there.strftime("%H:%M")
        if there.date() != moment.astimezone(dt.UTC).date():
            shown = there.strftime("%Y-%m-%d %H:%M")
        return f"{text}, " + self.c.text("local_time", time=shown, offset=_offset(there))

    def when(self, moment: dt.datetime, cc: str | None = None) -> Markup:
        iso = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Markup('<time datetime="{}">{}</time>').format(iso, self.clock(moment, cc))

    def asset(self, site: Site, name: str) -> str:
        return f"/static/{name}?v={site.assets[name].version}"


def web_link(url: str | None) -> str | None:
    """An event's source as a link only when it is an http(s) address: imported feeds are
    third-party text, and a ``javascript:`` link must never reach a page."""
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return None


def _markup_text(c: Catalogue) -> Any:
    """``t`` for HTML: the catalogue's text escaped, values escaped unless already markup."""

    def text(key: str, **values: Any) -> Markup:
        return (
            Markup(escape(c.text(key))).format(**values) if values else Markup(escape(c.text(key)))
        )

    return text


def render(site: Site, view: View, template: str, **context: Any) -> bytes:
    page = site.templates.get_template(template)
    text = view.c.text if template.endswith(".txt") else _markup_text(view.c)
    return page.render(
        v=view, t=text, plural=view.c.plural, country=view.c.country,
        state_name=view.c.state, css=css_state, kind_name=lambda k: kind_name(view.c, k),
        web_link=web_link, asset=lambda n: view.asset(site, n),
        services=site.services, **context,
    ).encode()  # fmt: skip
