"""What locating the censor costs: the traces of each hop scenario in the lab (root).

    python -m benchmarks.hop_trace [--prefix bht-] [--runs 3] [SCENARIO…]

For each scenario with a ``[path]`` table (default: every one), the lab with its second
router comes up, the real probe runs once per ``--runs``, and for every traced endpoint the
benchmark prints the hop reported, the TTL-limited sends made and the trace's wall time,
beside the probe's whole runtime for that service. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Any

from lab import scenario as scenarios
from lab.hops import HopTopology
from lab.plan import default_plan
from lab.runner import apply_scenario, probe_command, run_probe_document


def traces(document: dict[str, Any]) -> list[tuple[str, Any, int, float]]:
    """(service, reported hop, TTLs sent per name pair, seconds) per traced endpoint."""
    found = []
    for measurement in document["measurements"]:
        steps = [o for o in measurement["observations"] if o["step"] == "trace"]
        if not steps:
            continue
        sends = max(len(o["hops"]) for o in steps)
        seconds = max(o["t"] for o in steps) - min(o["t0"] for o in steps)
        hop = next(
            (
                e["location"]["hop"]
                for e in measurement["analysis"]["endpoints"]
                if e.get("location")
            ),
            None,
        )
        found.append((measurement["service"], hop, sends, seconds))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hop_trace")
    parser.add_argument("scenarios", nargs="*")
    parser.add_argument("--prefix", default="bht-")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("hop_trace: needs root (network namespaces)", file=sys.stderr)
        return 2
    paths = [scenarios.find(n) for n in args.scenarios] or scenarios.scenario_files()
    chosen = [scenarios.load(p, default_plan(args.prefix)) for p in paths]
    print(f"{'scenario':<22} {'service':<10} {'hop':>5} {'TTLs':>6} {'trace s':>8}")
    for loaded in (s for s in chosen if s.hops is not None):
        rows: dict[str, list[tuple[Any, int, float]]] = {}
        with HopTopology(args.prefix, loaded.hops) as lab:
            apply_scenario(lab, loaded)
            for _ in range(args.runs):
                for service, hop, sends, seconds in traces(run_probe_document(probe_command(lab))):
                    rows.setdefault(service, []).append((hop, sends, seconds))
        for service, seen in rows.items():
            hops = ",".join(sorted({str(h) for h, _, _ in seen}))
            sends = statistics.median(s for _, s, _ in seen)
            seconds = statistics.median(t for _, _, t in seen)
            print(f"{loaded.name:<22} {service:<10} {hops:>5} {sends:>6.0f} {seconds:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
