"""Measured rate against the tc rate, in each throttling scenario of the lab (root only).

For every scenario that shapes traffic or slows an origin, the long delay, and clean, runs the real probe (``--service x``)
a few times and prints the rate of its downloads of X with X's name, with the control SNI
on the same address, and of the control services, beside the rate tc was given, and the
verdict. A policer's measured rate should sit just under its tc rate; the traps should show
the controls as slow as X.

    python -m benchmarks.lab_throughput                 # 3 runs each
    python -m benchmarks.lab_throughput --runs 5 --prefix cwX-
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any, Final

from lab import scenario as scenarios
from lab.censor import SlowOrigin, Throttle
from lab.paths import REPO_ROOT, checkout_env
from lab.plan import default_plan
from lab.runner import apply_scenario, probe_command
from lab.topology import DEFAULT_PREFIX, Topology, terminate_on_sigterm
from probe import model
from probe.verdicts.throughput import rate

SCENARIOS: Final = (
    "clean",
    "throttle-sni",
    "throttle-address",
    "slow-link",
    "lossy-link",
    "slow-origin",
    "long-delay",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--prefix", default=os.environ.get("CENSORWATCH_LAB_PREFIX", DEFAULT_PREFIX)
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("lab_throughput: needs root for network namespaces", file=sys.stderr)
        return 2
    plan = default_plan(args.prefix)
    print(f"{'scenario':18} {'tc rate':>10} {'x (its name)':>14} {'x (control SNI)':>16} "
          f"{'controls':>10}  verdicts")  # fmt: skip
    with terminate_on_sigterm(), Topology(args.prefix) as topology:
        for name in SCENARIOS:
            loaded = scenarios.load(scenarios.find(name), plan)
            rows = [_one_run(topology, loaded) for _ in range(args.runs)]
            own = _median(r["own"] for r in rows)
            same = _median(r["same"] for r in rows)
            controls = _median(r["controls"] for r in rows)
            verdicts = ", ".join(sorted({r["verdict"] for r in rows}))
            print(
                f"{name:18} {_tc_rate(loaded):>10} {own:>14} {same:>16} {controls:>10}  {verdicts}"
            )
    return 0


def _one_run(topology: Topology, loaded: scenarios.Scenario) -> dict[str, Any]:
    apply_scenario(topology, loaded)
    try:
        argv = probe_command(topology, extra=["--service", "x"])
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT, env=checkout_env()
        )
    finally:
        topology.censor.clear_all()
        topology.set_client_resolver("isp")
    report = json.loads(done.stdout)
    x = next(model.from_builtins(m) for m in report["measurements"] if m["service"] == "x")
    downloads = [o for o in x.observations if isinstance(o, model.ThroughputObservation)]
    return {
        "own": [rate(o) for o in downloads if o.role == "network"],
        "same": [rate(o) for o in downloads if o.role == "control" and not o.service],
        "controls": [rate(o) for o in downloads if o.service],
        "verdict": f"{x.analysis.verdict}{' ' + ','.join(x.analysis.methods) if x.analysis.methods else ''}",
    }


def _median(groups: Any) -> str:
    values = [v for group in groups for v in group if v is not None]
    if not values:
        return "-"
    return f"{statistics.median(values) * 8 / 1000:.0f} kbit/s"


def _tc_rate(loaded: scenarios.Scenario) -> str:
    """The rate the lab sets: tc's, or a slow origin's own (in bits a second, as tc's)."""
    for action in loaded.actions:
        if isinstance(action, Throttle):
            return action.rate
        if isinstance(action, SlowOrigin):
            return f"{action.rate * 8 // 1000}kbit"
    return "-"


if __name__ == "__main__":
    sys.exit(main())
