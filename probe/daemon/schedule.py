"""When each service is measured next: a sans-I/O scheduler.

Each service has an interval (from its category) and is due again that long after its last
run ended, plus a random jitter so that many probes started together drift apart instead of
measuring in lockstep. A service is never in two rounds at once, and at most
``max_rounds`` rounds run at the same time; the loop that carries rounds out asks
``take_due`` and reports back with ``finished``. The clock is the caller's.

Watch windows (announced events, handed over at check-in) are data in the plan: inside one,
a service it covers is due again after the window's shorter interval, and is due at the
window's start if its normal turn would come later. A window never brings a service back
sooner than ``min_interval`` after its last run, and outside windows nothing changes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Window:
    """Denser measuring from ``start`` to ``end`` (the scheduler's clock) for ``services``
    (None: all), every ``intervals[category]`` seconds (``*`` for other categories)."""

    start: float
    end: float
    services: frozenset[str] | None
    intervals: Mapping[str, float]

    def interval_for(self, service: str, category: str) -> float | None:
        if self.services is not None and service not in self.services:
            return None
        return self.intervals.get(category, self.intervals.get("*"))


@dataclass(frozen=True)
class Plan:
    """Intervals in seconds: per category, else ``interval``; jitter added on top."""

    interval: float
    jitter: float = 0.0
    categories: Mapping[str, float] = field(default_factory=dict)
    max_rounds: int = 1
    max_services_per_round: int = 64
    windows: tuple[Window, ...] = ()
    min_interval: float = 30.0  # the floor a window can tighten to (the volunteer may raise it)

    def interval_for(self, category: str) -> float:
        return self.categories.get(category, self.interval)

    def window_turn(
        self, service: str, category: str, last_end: float | None, now: float
    ) -> float | None:
        """When a window makes ``service`` due next, or None when no window does."""
        turns = []
        for window in self.windows:
            interval = window.interval_for(service, category)
            if interval is None or window.end <= now:
                continue
            interval = max(interval, self.min_interval)
            turn = window.start if last_end is None else max(window.start, last_end + interval)
            if turn < window.end:
                turns.append(turn)
        return min(turns) if turns else None

    def active_windows(self, now: float) -> tuple[Window, ...]:
        return tuple(w for w in self.windows if w.start <= now < w.end)


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
        self._last_end: dict[str, float] = {}
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

    def _when(self, name: str, now: float) -> float:
        """When ``name`` is due: its normal turn, or sooner if a window says so."""
        turn = self.plan.window_turn(name, self._category[name], self._last_end.get(name), now)
        normal = self._due[name]
        return normal if turn is None else min(normal, turn)

    def take_due(self, now: float) -> Round | None:
        if len(self._running) >= self.plan.max_rounds:
            return None
        busy = self.busy
        due = sorted(
            (when, name)
            for name in self._due
            if name not in busy and (when := self._when(name, now)) <= now
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
                self._last_end[name] = now

    def next_due(self, now: float) -> float | None:
        """When the next service not already running is due; None when nothing is waiting
        or no round may start before one finishes."""
        if len(self._running) >= self.plan.max_rounds:
            return None
        busy = self.busy
        waiting = [self._when(name, now) for name in self._due if name not in busy]
        return min(waiting) if waiting else None

    def due_times(self, now: float) -> dict[str, float]:
        return {name: self._when(name, now) for name in self._due}


class DataBudget:
    """A volunteer's daily data budget for watch windows (UTC days).

    Outside windows the probe measures on its normal plan whatever this says; once a day's
    traffic has reached the budget, windows stop tightening the schedule until the next day.
    """

    def __init__(self, bytes_per_day: int | None) -> None:
        self.bytes_per_day = bytes_per_day
        self._day = ""
        self._spent = 0

    def charge(self, nbytes: int, day: str) -> None:
        if day != self._day:
            self._day, self._spent = day, 0
        self._spent += nbytes

    def spent(self, day: str) -> int:
        return self._spent if day == self._day else 0

    def allows_windows(self, day: str) -> bool:
        return self.bytes_per_day is None or self.spent(day) < self.bytes_per_day
