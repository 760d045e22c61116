from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from collector.demo.servers.zone import (
    Answer,
    Behaviour,
    Delay,
    Double,
    NXDomain,
    Refused,
    ServFail,
    Silent,
    Zone,
)


def ask(
    zone: Zone, name: str, rdtype: str = "A", transport: str = "udp"
) -> list[tuple[float, str]]:
    """Each planned reply as (delay, rcode and answers)."""
    query = dns.message.make_query(name, rdtype)
    return [(r.delay, _summary(r.message)) for r in zone.plan(query, transport=transport)]


def _summary(message: dns.message.Message) -> str:
    data = [rd.to_text() for rrset in message.answer for rd in rrset]
    return " ".join([dns.rcode.to_text(message.rcode()), *data])


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (Answer(("10.0.0.1", "10.0.0.2")), [(0.0, "NOERROR 10.0.0.1 10.0.0.2")]),
        (NXDomain(), [(0.0, "NXDOMAIN")]),
        (ServFail(), [(0.0, "SERVFAIL")]),
        (Refused(), [(0.0, "REFUSED")]),
        (Silent(), []),
        (Delay(2.0, Answer(("10.0.0.1",))), [(2.0, "NOERROR 10.0.0.1")]),
        (
            Double(Answer(("10.9.9.9",)), Answer(("10.0.0.1",)), gap=0.01),
            [(0.0, "NOERROR 10.9.9.9"), (0.01, "NOERROR 10.0.0.1")],
        ),
    ],
)
def test_behaviours_plan_their_replies(behaviour: Behaviour, expected: list[object]) -> None:
    assert ask(Zone({"x.com": behaviour}), "x.com") == expected


def test_streams_get_only_the_real_reply_of_a_double() -> None:
    zone = Zone({"x.com": Double(Answer(("10.9.9.9",)), NXDomain(), gap=0.01)})

    assert ask(zone, "x.com", transport="tcp") == [(0.01, "NXDOMAIN")]


def test_answers_only_the_address_family_asked_for() -> None:
    zone = Zone({"x.com": Answer(("10.0.0.1", "fd00::1"))})

    assert ask(zone, "x.com", "AAAA") == [(0.0, "NOERROR fd00::1")]
    assert ask(zone, "x.com", "TXT") == [(0.0, "NOERROR")]


def test_names_match_exactly_then_by_wildcard_then_default() -> None:
    zone = Zone({"*.telegram.org": NXDomain(), "web.telegram.org.": Refused()}, default=Silent())

    assert ask(zone, "WEB.telegram.org") == [(0.0, "REFUSED")]
    assert ask(zone, "a.b.telegram.org") == [(0.0, "NXDOMAIN")]
    assert ask(zone, "telegram.org") == []


def test_changes_apply_to_the_next_query_and_queries_are_recorded() -> None:
    zone = Zone()
    zone.set("x.com", Answer(("10.0.0.1",)))
    first = ask(zone, "x.com")
    zone.replace(Zone({"x.com": ServFail()}))

    assert (first, ask(zone, "x.com")) == ([(0.0, "NOERROR 10.0.0.1")], [(0.0, "SERVFAIL")])
    assert [(q.transport, q.name, q.rdtype) for q in zone.seen] == [("udp", "x.com", "A")] * 2


def test_a_bad_address_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        Answer(("10.0.0.300",))
