"""Event sources and subscribers answer an id they do not know alike: on every item route a
404 that names the kind of thing and gives the id back (cut to 64 characters), never a 5xx,
and nothing is created on the way."""

from __future__ import annotations

from collector_harness import Collector

_UNKNOWN = "x" * 70  # longer than the evidence keeps


async def test_an_unknown_id_is_404_on_every_item_route(sqlite_collector: Collector) -> None:
    source = ("/api/v1/event-sources/" + _UNKNOWN, "no such event source", "source_id")
    subscriber = ("/api/v1/subscribers/" + _UNKNOWN, "no such subscriber", "subscriber_id")
    cases = [
        ("GET", source, "", None),
        ("PUT", source, "", {"url": "https://1.1.1.1/feed.ics"}),
        ("DELETE", source, "", None),
        ("POST", source, "/poll", None),
        ("GET", subscriber, "", None),
        ("PATCH", subscriber, "", {"min_confidence": 0.5}),
        ("PATCH", subscriber, "", {}),  # nothing to change: still looked up
        ("DELETE", subscriber, "", None),
        ("POST", subscriber, "/rotate-secret", None),
    ]
    for method, (path, message, key), tail, body in cases:
        response = await sqlite_collector.client.request(
            method, path + tail, json=body, headers=sqlite_collector.admin_headers
        )
        answer = await response.json()
        assert response.status == 404, (method, path + tail, answer)
        assert answer["error"]["code"] == "not_found"
        assert answer["error"]["message"] == message
        assert answer["error"][key] == _UNKNOWN[:64]
    for listing, name in (
        ("/api/v1/event-sources", "sources"),
        ("/api/v1/subscribers", "subscribers"),
    ):
        response = await sqlite_collector.client.get(
            listing, headers=sqlite_collector.admin_headers
        )
        assert (await response.json())[name] == []
