"""The status page's handlers: ``/``, ``/country/CC``, ``/incident/ID`` (HTML, ``.txt``,
``.json``), feeds, badges, widgets and static assets.

Each handler reads through ``reading`` in one short read transaction, assembles with
``views``/``wording`` and renders; every response carries a strong ETag. Bad addresses
get an HTML 404 in the reader's language, never a 5xx. Unknown query parameters are
ignored here (shared links pick up tracking parameters), unlike the API.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final

import msgspec
from aiohttp import web

from collector.alerting.context import Context, Windows, context_for
from collector.api.incidents import incident_view
from collector.auth import utc_now
from collector.state import STATE
from collector.web import badge, caching, feeds, reading, views, wording
from collector.web.memo import Handler, Memo
from collector.web.picture import Standing
from collector.web.site import SITE, Site, View, render
from collector.web.timing import Stopwatch
from collector.web.wording import LinkedEvent

_COUNTRY: Final = re.compile(r"^[A-Za-z]{2}$")
_SERVICE: Final = re.compile(r"^[a-z0-9_-]{1,64}$")
WEEK: Final = dt.timedelta(days=7)
FEED_ITEMS: Final = 50
CSP: Final = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
)


def _html(request: web.Request, body: bytes, *, status: int = 200, embeddable: bool = False,
          timed: Stopwatch | None = None) -> web.Response:  # fmt: skip
    headers = {
        "Content-Security-Policy": CSP.format(ancestors="*" if embeddable else "'self'"),
        "Referrer-Policy": "no-referrer",
    }
    if timed is not None:
        headers["Server-Timing"] = timed.header()
    return caching.respond(request, body, "text/html", status=status, headers=headers)


def _not_found(request: web.Request, view: View, message_key: str) -> web.Response:
    body = render(request.app[SITE], view, "not_found.html", message=view.c.text(message_key))
    return _html(request, body, status=404)


def _context(request: web.Request) -> tuple[Site, View]:
    return request.app[SITE], View.of(request, utc_now())


def _country(request: web.Request) -> str | None:
    cc = request.match_info["cc"]
    return cc.upper() if _COUNTRY.match(cc) else None


def _title(site: Site, view: View, s: Standing) -> str:
    return wording.title(view.c, s, site.services.title(s.incident.service))


async def home(request: web.Request) -> web.Response:
    timed = Stopwatch()
    site, view = _context(request)
    state = request.app[STATE]
    active = dt.timedelta(seconds=state.config.active_probe_seconds)
    async with state.db.reading() as connection:
        cover = await reading.coverage(connection, view.now, active)
        national = await reading.national_now(connection, view.now)
        open_ = await reading.standings(connection, open_only=True)
        windows = await reading.watching(connection, state.config, state.targets.text, view.now)
    timed.lap("db")
    countries = sorted(
        set(cover) | {cc for cc, _ in national} | {s.incident.cc for s in open_},
        key=lambda cc: (view.c.country(cc), cc),
    )
    rows = []
    for cc in countries:
        mine = [s for s in open_ if s.incident.cc == cc]
        counts = {svc: n for (c, svc), n in national.items() if c == cc}
        grid = views.grid(site.services, counts, {}, mine, view.c, every_network=False)
        states = [(row.title, row.national.state) for row in grid.rows]
        rows.append(
            {
                "cc": cc,
                "coverage": cover.get(cc),
                "headline": views.headline((s for _, s in states), mine),
                "services": states,
                "windows": [w for w in windows if w.cc == cc],
            }
        )
    timed.lap("build")
    body = render(
        site, view, "home.html", countries=rows, incidents=open_,
        incident_title=lambda s: _title(site, view, s),
    )  # fmt: skip
    timed.lap("render")
    return _html(request, body, timed=timed)


async def country(request: web.Request) -> web.Response:
    timed = Stopwatch()
    site, view = _context(request)
    cc = _country(request)
    if cc is None:
        return _not_found(request, view, "bad_country")
    if cc != request.match_info["cc"]:
        raise web.HTTPMovedPermanently(view.url(f"/country/{cc}"))
    state = request.app[STATE]
    day, week = views.periods(view.now)

    hours = [(p.first, int(p.width.total_seconds() // 3600)) for p in (day, week)]
    read = await reading.country(
        state.db, state.config, state.targets.text, cc, view.now, (hours[0], hours[1]),
        (week.first - dt.timedelta(days=1), view.now + 2 * WEEK),
    )  # fmt: skip
    standings = read.standings
    timed.lap("db")
    events = views.numbered(read.events)
    counts = {svc: n for (_, svc), n in read.national.items()}
    every = request.query.get("networks") == "all"
    grid = views.grid(site.services, counts, read.networks, standings, view.c, every_network=every)

    def clock(moment: dt.datetime) -> str:
        return view.utc(moment)

    def title(s: Standing) -> str:
        return _title(site, view, s)

    charts = [
        views.chart(p, site.services, counts, events, standings, view.c, clock, title)
        for p, counts in ((day, read.daily), (week, read.weekly))
    ]
    timed.lap("build")
    body = render(
        site, view, "country.html", cc=cc, coverage=read.coverage, grid=grid, charts=charts,
        events=events, incidents=standings, incident_title=title, every_network=every,
        windows=read.windows,
        censor_hops=wording.censor_hops(view.c, read.hops, site.services.title),
        headline=views.headline((r.national.state for r in grid.rows), standings),
    )  # fmt: skip
    timed.lap("render")
    return _html(request, body, timed=timed)


def _linked(context: Context) -> list[LinkedEvent]:
    return [
        LinkedEvent(context.events[lk.event_id], lk.delay_seconds)
        for lk in context.links
        if lk.event_id in context.events
    ]


async def _incident(request: web.Request, incident_id: str) -> tuple[Standing, Context] | None:
    state = request.app[STATE]
    async with state.db.reading() as connection:
        found = await reading.one(connection, incident_id)
        if found is None:
            return None
        windows = Windows.of(state.config)
        return found, await context_for(connection, found.incident, windows, utc_now())


async def incident(request: web.Request) -> web.Response:
    timed = Stopwatch()
    site, view = _context(request)
    name = request.match_info["incident_id"]
    fmt = "html"
    loaded = await _incident(request, name)
    if loaded is None and name.endswith((".txt", ".json")):
        name, _, fmt = name.rpartition(".")
        loaded = await _incident(request, name)
    if loaded is None:
        return _not_found(request, view, "no_incident")
    s, context = loaded
    i = s.incident
    service = site.services.title(i.service)
    linked = _linked(context)
    summary = wording.summary(view.c, s, service, lambda m: view.clock(m, i.cc), linked)
    title = _title(site, view, s)
    kind = linked[0].event.kind if linked else ""
    figure = wording.correlation(view.c, context.stats, kind) if linked else ""
    permalink = view.absolute(f"/incident/{i.id}")
    if fmt == "json":
        body = incident_view(i, context)
        body.update(status=s.status, confirmed=s.confirmed, state=s.state, title=title,
                    summary=summary, url=permalink, correlation_text=figure or None)  # fmt: skip
        # msgspec writes times as the API does (RFC 3339); anything else it cannot encode
        # (a field a newer engine added) is written as text
        encoded = msgspec.json.encode(body, enc_hook=str)
        return caching.respond(request, encoded, "application/json")
    page: dict[str, Any] = {
        "s": s, "i": i, "service": service, "summary": summary, "title": title,
        "linked": linked, "figure": figure, "permalink": permalink,
        "delay": lambda seconds: wording.delay(view.c, seconds),
    }  # fmt: skip
    if fmt == "txt":
        text = render(site, view, "incident.txt", **page)
        return caching.respond(request, text, "text/plain")
    return _html(request, render(site, view, "incident.html", **page), timed=timed)


def _feed_item(site: Site, view: View, s: Standing) -> feeds.Item:
    cc = s.incident.cc

    def clock(moment: dt.datetime) -> str:
        return view.clock(moment, cc)

    service = site.services.title(s.incident.service)
    return feeds.Item(
        id=feeds.entry_id(s.incident.id),
        url=view.feed_link(f"/incident/{s.incident.id}"),
        title=_title(site, view, s),
        summary=wording.summary(view.c, s, service, clock, []),
        published=s.incident.onset,
        updated=max(s.updated_at, s.incident.onset),
        tags=tuple(t for t in (cc, s.incident.service, s.state) if t),
    )


async def feed(request: web.Request) -> web.Response:
    site, view = _context(request)
    cc: str | None = None
    if "cc" in request.match_info:
        cc = _country(request)
        if cc is None:
            return _not_found(request, view, "bad_country")
    fmt = request.match_info["fmt"]
    state = request.app[STATE]
    async with state.db.reading() as connection:
        found = await reading.standings(
            connection, cc=cc, since=view.now - 4 * WEEK, limit=FEED_ITEMS
        )
    items = [_feed_item(site, view, s) for s in found]
    home = view.feed_link(f"/country/{cc}" if cc else "/")
    path = f"/country/{cc}/incidents.{fmt}" if cc else f"/incidents.{fmt}"
    title = (
        view.c.text("feed_title_country", country=view.c.country(cc))
        if cc
        else view.c.text("feed_title_global")
    )
    made = feeds.Feed(feeds.feed_id(path), title, home, view.feed_link(path), view.lang, items)
    writer, content_type = {
        "atom": (feeds.atom, "application/atom+xml"),
        "rss": (feeds.rss, "application/rss+xml"),
        "json": (feeds.json_feed, "application/feed+json"),
    }[fmt]
    return caching.respond(
        request, writer(made), content_type, headers={"Access-Control-Allow-Origin": "*"}
    )


async def _national_state(
    request: web.Request, cc: str, service: str
) -> tuple[str, Standing | None]:
    site = request.app[SITE]
    state = request.app[STATE]
    now = utc_now()
    async with state.db.reading() as connection:
        national = await reading.national_now(connection, now, cc)
        open_ = await reading.standings(connection, cc=cc, open_only=True)
    counts = {svc: n for (_, svc), n in national.items() if svc == service}
    grid = views.grid(site.services, counts, {}, open_, _context(request)[1].c, every_network=False)
    row = next((r for r in grid.rows if r.service == service), None)
    cell = row.national.state if row else "nodata"
    covering = next((s for s in open_ if s.incident.service == service), None)
    return cell, covering


async def service_badge(request: web.Request) -> web.Response:
    site, view = _context(request)
    cc, service = _country(request), request.match_info["service"]
    if cc is None or not _SERVICE.match(service):
        return _not_found(request, view, "bad_country")
    cell, _ = await _national_state(request, cc, service)
    svg = badge.render(f"{site.services.title(service)} · {cc}", view.c.state(cell), cell)
    return caching.respond(
        request, svg.encode(), "image/svg+xml", max_age=60,
        headers={"Access-Control-Allow-Origin": "*", "Cross-Origin-Resource-Policy": "cross-origin"},
    )  # fmt: skip


async def widget(request: web.Request) -> web.Response:
    site, view = _context(request)
    cc = _country(request)
    service = request.match_info.get("service")
    if cc is None or (service is not None and not _SERVICE.match(service)):
        return _not_found(request, view, "bad_country")
    state = request.app[STATE]
    async with state.db.reading() as connection:
        national = await reading.national_now(connection, view.now, cc)
        open_ = await reading.standings(connection, cc=cc, open_only=True)
    counts = {svc: n for (_, svc), n in national.items() if service in (None, svc)}
    grid = views.grid(site.services, counts, {}, open_, view.c, every_network=False)
    rows = [r for r in grid.rows if service in (None, r.service)]
    if service is not None and not rows:
        rows = [views.GridRow(service, site.services.title(service), views.Cell("nodata"), [])]
    body = render(site, view, "widget.html", cc=cc, rows=rows)
    return _html(request, body, embeddable=True)


async def static(request: web.Request) -> web.Response:
    asset = request.app[SITE].assets.get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound()
    versioned = request.query.get("v") == asset.version
    max_age = caching.ASSET_MAX_AGE if versioned else caching.PAGE_MAX_AGE
    response = caching.respond(request, asset.body, asset.content_type, max_age=max_age)
    if versioned:
        response.headers["Cache-Control"] += ", immutable"
    return response


MEMO: Final = web.AppKey("status_memo", Memo)


def _memoized(handler: Handler) -> Handler:
    """``handler`` through the memo, keyed on what a page depends on besides the data: its
    path, language (and whether links keep ``?lang=``), ``?networks=`` and link origin."""

    async def serve(request: web.Request) -> web.StreamResponse:
        view = View.of(request, utc_now())
        every = request.query.get("networks") == "all"
        key = (request.path, view.lang, view.explicit, every, view.origin)
        return await request.app[MEMO].serve(key, request, handler)

    return serve


def routes() -> list[web.RouteDef]:
    return [
        web.get("/", _memoized(home)),
        web.get("/country/{cc}", _memoized(country)),
        web.get("/country/{cc}/incidents.{fmt:atom|rss|json}", _memoized(feed)),
        web.get("/incidents.{fmt:atom|rss|json}", _memoized(feed)),
        web.get("/incident/{incident_id}", _memoized(incident)),
        web.get("/badge/{cc}/{service}.svg", _memoized(service_badge)),
        web.get("/widget/{cc}", _memoized(widget)),
        web.get("/widget/{cc}/{service}", _memoized(widget)),
        web.get("/static/{name}", static),
    ]
