"""``python -m lab``: bring the censorship lab up and down, and score the probe in it.

python -m lab list                          the scenarios
python -m lab up SCENARIO                   the lab, one scenario applied, left running
python -m lab down                          everything the lab made, removed
python -m lab run [SCENARIO…] [--repeat N]  the probe under each scenario, and the table
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

from lab import scenario as scenarios
from lab.hops import topology_for
from lab.plan import default_plan
from lab.process import LabProcessError
from lab.runner import (
    ProbeError,
    Row,
    Tally,
    apply_scenario,
    format_table,
    format_tallies,
    probe_command,
    run_scenario,
    tally,
)
from lab.scenario import Scenario, ScenarioError
from lab.shell import CommandError
from lab.topology import DEFAULT_PREFIX, Topology, remove_stale, terminate_on_sigterm


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command != "list" and os.geteuid() != 0:
        print("lab: needs root (network namespaces, iptables)", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except (ScenarioError, CommandError, LabProcessError, ProbeError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted; cleaned up", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.split("\n")[0])
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="namespace name prefix")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list the scenarios")
    listing.set_defaults(handler=_list)
    up = commands.add_parser("up", help="bring the lab up with one scenario applied")
    up.add_argument("scenario", help="name (e.g. dns-nxdomain) or path of a scenario file")
    up.set_defaults(handler=_up)
    down = commands.add_parser("down", help="remove the lab (safe to repeat)")
    down.set_defaults(handler=_down)
    run = commands.add_parser("run", help="run the probe under scenarios and score it")
    run.add_argument("scenarios", nargs="*", help="names or paths (default: all)")
    run.add_argument("--repeat", type=int, default=1, metavar="N")
    run.add_argument(
        "--probe-arg", action="append", default=[], help="extra argument for the probe"
    )
    run.set_defaults(handler=_run)
    return parser


def _load(names: Sequence[str], prefix: str) -> list[Scenario]:
    lab_plan = default_plan(prefix)
    paths = [scenarios.find(n) for n in names] if names else scenarios.scenario_files()
    return [scenarios.load(path, lab_plan) for path in paths]


def _list(args: argparse.Namespace) -> int:
    for loaded in _load([], args.prefix):
        print(f"{loaded.name:<22} {loaded.title}")
    return 0


def _up(args: argparse.Namespace) -> int:
    (chosen,) = _load([args.scenario], args.prefix)
    topology = topology_for(args.prefix, chosen.hops)
    with terminate_on_sigterm():
        topology.up()
        try:
            apply_scenario(topology, chosen)
        except BaseException:
            topology.down()
            raise
    command = shlex.join(probe_command(topology))
    print(f"lab up with scenario {chosen.name}: {chosen.title}")
    print(f"  run the probe:  {command}")
    print(f"  a shell:        ip netns exec {topology.ns.client} bash")
    print(f"  logs:           {topology.state_dir / 'logs'}")
    print("  tear down:      python -m lab down")
    return 0


def _down(args: argparse.Namespace) -> int:
    remove_stale(args.prefix)
    print("lab down")
    return 0


def _run(args: argparse.Namespace) -> int:
    chosen = _load(args.scenarios, args.prefix)
    all_rows: list[Row] = []
    tallies: list[Tally] = []
    plain = [s for s in chosen if s.hops is None]
    # The plain lab serves every scenario without a [path]; one with a path gets its own.
    groups = [(Topology(args.prefix), plain)] if plain else []
    groups += [(topology_for(args.prefix, s.hops), [s]) for s in chosen if s.hops is not None]
    for lab, group in groups:
        with terminate_on_sigterm(), lab as topology:
            for loaded in group:
                runs = [run_scenario(topology, loaded, args.probe_arg) for _ in range(args.repeat)]
                for rows in runs:
                    all_rows.extend(rows)
                tallies.append(tally(loaded.name, runs))
                print(f"{loaded.name}: {tallies[-1].correct_runs}/{args.repeat} right", flush=True)
    print()
    print(format_table(all_rows))
    print()
    print(format_tallies(tallies))
    right = sum(row.correct for row in all_rows)
    print(f"\n{right}/{len(all_rows)} service verdicts as expected")
    return 0 if right == len(all_rows) else 1
