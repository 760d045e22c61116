"""Accuracy of the probe in the censorship lab, over repeated runs (root only).

Prints, per scenario, how many runs gave every service its expected verdict and how many
runs produced any ``blocked`` where none was expected. The clean and flaky scenarios are
repeated many times (the figure that matters there is "false blocked: 0"); every censorship
scenario is repeated fewer times (the figure there is "all right" in every run).

    python -m benchmarks.lab_accuracy                       # clean, flaky, loss25 ×20; others ×2
    python -m benchmarks.lab_accuracy --uncensored 50 --censored 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from lab import scenario as scenarios
from lab.plan import default_plan
from lab.runner import format_tallies, run_scenario, tally
from lab.topology import DEFAULT_PREFIX, Topology, terminate_on_sigterm

UNCENSORED = ("clean", "flaky", "loss25")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uncensored", type=int, default=20, help="runs of clean and flaky")
    parser.add_argument("--censored", type=int, default=2, help="runs of every other scenario")
    parser.add_argument(
        "--prefix",
        default=os.environ.get("CENSORWATCH_LAB_PREFIX", DEFAULT_PREFIX),
        help="namespace name prefix (default: $CENSORWATCH_LAB_PREFIX, else the lab's)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("lab_accuracy: needs root for network namespaces", file=sys.stderr)
        return 2
    plan = default_plan(args.prefix)
    loaded = [scenarios.load(path, plan) for path in scenarios.scenario_files()]
    tallies = []
    started = time.monotonic()
    with terminate_on_sigterm(), Topology(args.prefix) as topology:
        for scenario in loaded:
            repeat = args.uncensored if scenario.name in UNCENSORED else args.censored
            runs = [run_scenario(topology, scenario) for _ in range(repeat)]
            tallies.append(tally(scenario.name, runs))
            print(f"{scenario.name}: {tallies[-1].correct_runs}/{repeat} right", flush=True)
    print()
    print(format_tallies(tallies))
    false_blocks = sum(t.runs_with_false_block for t in tallies)
    wrong = sum(t.runs - t.correct_runs for t in tallies)
    print(f"\nruns with any false blocked: {false_blocks} (goal 0)")
    print(f"runs with any verdict not as expected: {wrong} (goal 0)")
    print(f"wall time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
