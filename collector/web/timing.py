"""Where a page's server time goes, in a ``Server-Timing`` header: the whole handler
(``app``, wall clock), the process's CPU time in it (``cpu``, which other work on a
shared machine does not inflate), and its phases (``db`` reads, ``build`` of the picture,
``render`` of the template), so a slow page says which part was slow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Stopwatch:
    wall: float = field(default_factory=time.perf_counter)
    cpu: float = field(default_factory=time.process_time)
    phases: list[tuple[str, float]] = field(default_factory=list)
    _last: float = 0.0

    def __post_init__(self) -> None:
        self._last = self.wall

    def lap(self, phase: str) -> None:
        """The time since the previous lap (or the start) was spent in ``phase``."""
        now = time.perf_counter()
        self.phases.append((phase, now - self._last))
        self._last = now

    def header(self) -> str:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        parts = [f"app;dur={wall * 1000:.1f}", f"cpu;dur={cpu * 1000:.1f}"]
        parts += [f"{name};dur={seconds * 1000:.1f}" for name, seconds in self.phases]
        return ", ".join(parts)
