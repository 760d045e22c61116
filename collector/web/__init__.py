"""The public status page and feeds, served by ``censorwatch serve`` itself.

``pages`` (handlers) reads through ``reading`` (rollups, incidents, coverage, events),
decides with ``picture`` (states) and ``wording`` (sentences), assembles with ``views``,
and draws with ``charts`` (inline SVG) and ``badge``; ``feeds`` writes Atom, RSS and JSON
Feed; ``i18n`` and ``locales/`` hold the languages, ``zones`` the local times,
``caching`` the ETags, ``memo`` the few seconds a rendered page is served again; ``templates/`` and ``static/`` ship in the package.
"""

from __future__ import annotations

from aiohttp import web

from collector.state import State


def install(app: web.Application, state: State) -> None:
    """Add the status page's routes and what they share to the collector's app."""
    from collector.web import memo, pages, site

    app[site.SITE] = site.build(state)
    app[pages.MEMO] = memo.Memo(state.config.status_cache_seconds)
    app.add_routes(pages.routes())
