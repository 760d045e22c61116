"""Where the censor sits: the hop at which a blocked endpoint's censored flow ends.

The probe sends the triggering packet (the ClientHello naming the service, or the HTTP
request with its Host) over an established connection with IP TTL 1, 2, …, and the same
with the control name, as Censored Planet's CenTrace and OONI's tlsmiddlebox do. While the
TTL runs out before the censoring device, both flows come back alike: a router's ICMP
time-exceeded, or nothing from a router that sends none. From the TTL that reaches the
device on, the censored flow ends (a reset, an injected answer, silence) while the control
flow goes on to the next router or the server. The device sits just after the last hop the
censored flow was seen passing. An on-path device (one that sees a copy, as DNS injectors
do) answers a packet that still goes on to expire at the next router: that router's ICMP
arrives beside the forged answer, and the device sits at that hop.

Pure, and strict on purpose: a wrong hop is worse than none. The location is given only
when every TTL before the end agrees between the two flows, the control flow visibly goes on
at the ending TTL, the censored flow never goes on at any later TTL, and the hop before the
end answered from a public address on both flows. Otherwise the result is "not located",
saying why: routers that filter ICMP time-exceeded give exactly that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from probe.model import Hop, HopLocation, HopResult, TraceObservation
from probe.vocabulary import rule

LOCATED: Final = rule(
    "location.ttl_contrast",
    "TTL-limited sends: the service's name ended one hop after the last router it was seen "
    "passing, while the control name went on; the device sits after that router",
    "probe",
)
NOT_LOCATED: Final = rule(
    "location.not_located",
    "TTL-limited sends did not show where the censored flow ends (routers silent, flows "
    "that disagree before the end, or a flow that went on later): no hop is named",
    "probe",
)
_ENDED: Final[frozenset[HopResult]] = frozenset({"reset", "eof", "silence", "answer"})
_WENT_ON: Final[frozenset[HopResult]] = frozenset({"time_exceeded", "answer"})


def locate(test: TraceObservation, control: TraceObservation) -> HopLocation:
    """The censoring hop from the service name's trace and the control name's."""
    sent = {hop.ttl: hop for hop in test.hops}
    went = {hop.ttl: hop for hop in control.hops}
    ttls = sorted(set(sent) & set(went))
    for ttl in ttls:
        own, other = sent[ttl], went[ttl]
        if own.result == "answer" and other.result == "answer":
            return _not_located(test, "both names reached the server: nothing on the path ended it")
        if _ends_here(own, other):
            return _at(test, ttl, sent, went, [sent[t] for t in ttls if t > ttl])
        if own.result in _ENDED and not _alike(own, other):
            return _not_located(
                test,
                f"at TTL {ttl} the censored flow ended ({own.result}) but the control name did "
                f"not visibly go on ({other.result}): no contrast",
            )
        if not _alike(own, other):
            return _not_located(
                test,
                f"at TTL {ttl} the two names came back differently ({own.result}, "
                f"{other.result}) before either ended",
            )
    return _not_located(test, "the censored flow did not end within the hops sent")


def _ends_here(own: Hop, other: Hop) -> bool:
    if own.result not in _ENDED or other.result not in _WENT_ON:
        return False
    return not (own.result == "answer" and other.result == "answer")


def _alike(own: Hop, other: Hop) -> bool:
    """Before the end both flows cross the same routers: both time-exceeded (from the same
    router where both are known), or both silent."""
    if own.result != other.result or own.result not in ("time_exceeded", "silence"):
        return False
    return own.router is None or other.router is None or own.router == other.router


def _at(
    test: TraceObservation,
    ttl: int,
    sent: dict[int, Hop],
    went: dict[int, Hop],
    later: Sequence[Hop],
) -> HopLocation:
    ended = sent[ttl].result
    if any(hop.result in ("time_exceeded",) for hop in later):
        return _not_located(
            test,
            f"the censored flow ended at TTL {ttl} but went on at a later TTL: loss, not a censor",
        )
    if sent[ttl].withheld and ended in ("reset", "answer"):
        return _not_located(
            test,
            f"an on-path device at hop {ttl}, inside the home network or before the "
            "first public hop",
        )
    if sent[ttl].router is not None and ended in ("reset", "answer"):
        return _on_path(test, ttl, sent[ttl], went[ttl])
    if ttl == 1:
        return _not_located(
            test, "the censored flow ended before the first router: not on the path"
        )
    before, control_before = sent.get(ttl - 1), went.get(ttl - 1)
    if before is None or control_before is None or before.result != "time_exceeded":
        return _not_located(
            test, f"hop {ttl - 1}, the last before the flow ended at TTL {ttl}, did not answer"
        )
    if before.router is None:
        return _not_located(
            test, f"hop {ttl - 1} is inside the home network or before the first public hop"
        )
    return HopLocation(
        hop=ttl - 1,
        router=before.router,
        ended=ended,
        ip=test.ip,
        rule=LOCATED.id,
        reason=(
            f"{test.name} passed hop {ttl - 1} ({before.router}) and ended ({ended}) at TTL "
            f"{ttl}, where the control name went on ({went[ttl].result})"
        ),
    )


def _on_path(test: TraceObservation, ttl: int, own: Hop, other: Hop) -> HopLocation:
    if other.router is not None and other.router != own.router:
        return _not_located(test, f"at TTL {ttl} the two names expired at different routers")
    return HopLocation(
        hop=ttl,
        router=own.router,
        ended=own.result,
        ip=test.ip,
        on_path=True,
        rule=LOCATED.id,
        reason=(
            f"{test.name} got a forged {own.result} at TTL {ttl} while the packet still expired "
            f"at hop {ttl} ({own.router}), as the control name's did: an on-path device there"
        ),
    )


def _not_located(test: TraceObservation, reason: str) -> HopLocation:
    return HopLocation(ip=test.ip, rule=NOT_LOCATED.id, reason=reason)


def pairs(traces: Sequence[TraceObservation]) -> list[tuple[TraceObservation, TraceObservation]]:
    """Each (service name, control name) pair of traces to one address and attempt."""
    found: list[tuple[TraceObservation, TraceObservation]] = []
    for test in traces:
        if test.role != "network":
            continue
        control = next(
            (
                c
                for c in traces
                if c.role == "control"
                and (c.ip, c.port, c.attempt, c.endpoint)
                == (test.ip, test.port, test.attempt, test.endpoint)
            ),
            None,
        )
        if control is not None:
            found.append((test, control))
    return found


def best(locations: Sequence[HopLocation]) -> HopLocation | None:
    """The endpoint's location: a located trace if any (they agree, or none is named)."""
    located = {loc.hop for loc in locations if loc.hop is not None}
    if len(located) > 1:
        first = locations[0]
        return HopLocation(
            ip=first.ip,
            rule=NOT_LOCATED.id,
            reason=f"traces to this endpoint disagree (hops {sorted(h for h in located if h)})",
        )
    return next(
        (loc for loc in locations if loc.hop is not None), locations[0] if locations else None
    )
