"""When each service is measured next: a sans-I/O scheduler.

Each service has an interval (from its category) and is due again that long after its last
run ended, plus a random jitter so that many probes started together drift apart instead of
measuring in lockstep. A service is never in two rounds at once, and at most
``max_rounds`` rounds run at the same time; the loop that carries rounds out asks
``take_due`` and reports back with ``finished``. The clock is the caller's.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Plan:
    """Intervals in seconds: per category, else ``interval``; jitter added on top."""

    interval: float
    jitter: float = 0.0
    categories: Mapping[str, float] = field(default_factory=dict)
    max_rounds: int = 1
    max_services_per_round: int = 64

    def interval_for(self, category: str) -> float:
        return self.categories.get(category, self.interval)


@dataclass(frozen=True)
class Round:
    """Services measured together; ``number`` identifies the round to ``finished``."""

    number: int
    services: tuple[str, ...]


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        services: Mapping[str, str],
        now: float,
        rng: random.Random | None = None,
    ) -> None:
        """``services`` maps each name to its category; first runs are spread over the
        jitter, so a restart does not fire everything at the same instant."""
        self.plan = plan
        self._rng = rng or random.Random()
        self._category = dict(services)
        self._due = {name: now + self._jitter() for name in services}
        self._running: dict[int, tuple[str, ...]] = {}
        self._rounds = 0

    def _jitter(self) -> float:
        return self._rng.uniform(0.0, self.plan.jitter) if self.plan.jitter > 0 else 0.0

    @property
    def busy(self) -> frozenset[str]:
        return frozenset(name for names in self._running.values() for name in names)

    def replace_services(self, services: Mapping[str, str], now: float) -> None:
        """A new target list: kept services keep their times, new ones are due soon."""
        self._due = {name: self._due.get(name, now + self._jitter()) for name in services}
        self._category = dict(services)

    def take_due(self, now: float) -> Round | None:
        if len(self._running) >= self.plan.max_rounds:
            return None
        busy = self.busy
        due = sorted(
            (when, name) for name, when in self._due.items() if when <= now and name not in busy
        )
        if not due:
            return None
        names = tuple(name for _, name in due[: self.plan.max_services_per_round])
        self._rounds += 1
        self._running[self._rounds] = names
        return Round(self._rounds, names)

    def finished(self, round_: Round, now: float) -> None:
        self._running.pop(round_.number, None)
        for name in round_.services:
            if name in self._due:
                interval = self.plan.interval_for(self._category[name])
                self._due[name] = now + interval + self._jitter()

    def next_due(self) -> float | None:
        """When the next service not already running is due; None when nothing is waiting
        or no round may start before one finishes."""
        if len(self._running) >= self.plan.max_rounds:
            return None
        busy = self.busy
        waiting = [when for name, when in self._due.items() if name not in busy]
        return min(waiting) if waiting else None

    def due_times(self) -> dict[str, float]:
        return dict(self._due)
