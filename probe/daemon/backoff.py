"""How long to wait before the next upload attempt: a pure plan.

Exponential backoff with jitter, so that probes cut off together do not all come back in
the same second, and never sooner than the collector asked for with ``Retry-After``.

Webhook delivery has its own plan (``alerts.webhooks.next_attempt``), on purpose: an upload
is retried for ever (a measurement is evidence and the collector is ours), so its wait keeps
a floor ("equal jitter") and a short cap, and the collector's ``Retry-After`` is obeyed up
to a day (``MAX_RETRY_AFTER``: longer is a misconfiguration, or not the collector speaking,
and a probe silenced for longer serves the censor); a webhook goes to a stranger's server, gives up into a dead letter after a fixed number
of attempts, spreads retries fully ("full jitter") over hours, and caps a receiver's
``Retry-After`` at a day. Shared, the formula would be four lines behind five parameters,
and its one possible home would break the dependency rule (``alerts`` imports nothing of
the probe but its vocabulary).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from dataclasses import dataclass
from typing import Final

MAX_RETRY_AFTER: Final = 86_400.0


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0
    factor: float = 2.0
    cap: float = 600.0

    def delay(self, failures: int, unit: float, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` failures in a row (1 or more).

        ``unit`` is a random number in [0, 1): the delay falls in the upper half of the
        exponential step ("equal jitter"), so it grows steadily yet stays spread out.
        """
        exponent = min(max(failures - 1, 0), 64)
        step = min(self.cap, self.base * self.factor**exponent)
        wait = step / 2 + step / 2 * min(max(unit, 0.0), 1.0)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``, at most ``MAX_RETRY_AFTER``: delta-seconds
    (ASCII digits, RFC 9110) or an HTTP date; None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    seconds = (moment - now).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None
