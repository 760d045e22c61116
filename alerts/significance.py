"""How surprising a count of failures is under a baseline: the binomial tail, exactly.

Under "nothing is censored" every independent voice fails with some baseline probability
``p``; the chance that at least ``k`` of ``n`` fail is the binomial upper tail. It is summed
in log space term by term from ``k`` upwards, so it stays exact for the tiny p-values a real
block produces (1e-40 and below); past the mode the terms only shrink, and the sum stops
where what remains is below a 1e-20 share of it (a country of 5,000 voices: some 200 terms,
not 5,000).
"""

from __future__ import annotations

import math


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    mode = (n + 1) * p
    log_terms: list[float] = []
    top = -math.inf
    for i in range(k, n + 1):
        term = _log_choose(n, i) + i * log_p + (n - i) * log_q
        if i > mode and term < top + _NEGLIGIBLE:
            break  # past the mode the terms only shrink: the n or fewer left are negligible
        log_terms.append(term)
        top = max(top, term)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in log_terms))


_NEGLIGIBLE = math.log(1e-20) - math.log(1e6)  # n <= 1e6 terms left below 1e-20 of the top


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def format_p(p: float) -> str:
    """``p < 1e-6`` below a millionth (more digits would claim a precision nobody has)."""
    if p < 1e-6:
        return "p < 1e-6"
    return f"p = {p:.1g}"


def format_rate(rate: float) -> str:
    return f"{rate * 100:.2g} %"
