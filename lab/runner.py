"""Running the real probe in the lab under each scenario and scoring what it says.

The I/O is two functions (``apply_scenario``, ``run_probe``); reading the probe's report,
comparing it with a scenario's expectations and drawing the table are pure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lab.hops import reported_hop
from lab.paths import REPO_ROOT, checkout_env
from lab.scenario import TARGETS_FILE, Expectation, Scenario
from lab.shell import in_netns
from lab.topology import Topology

PROBE_MODULE: Final = "probe.cli"
PROBE_TIMEOUT: Final = 600.0


class ProbeError(RuntimeError):
    """The probe did not produce a report: its command line, exit status and output."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str, stdout: str):
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        super().__init__(
            f"probe failed ({'timed out' if returncode is None else f'exit {returncode}'}): "
            f"{' '.join(argv)}\n--- stderr ---\n{stderr[-4000:]}\n--- stdout ---\n{stdout[:2000]}"
        )


@dataclass(frozen=True)
class Got:
    verdict: str
    methods: tuple[str, ...] = ()
    hop: str | None = None  # the censoring hop reported, "none" if traced and not located


@dataclass(frozen=True)
class Row:
    scenario: str
    service: str
    expected: Expectation | None
    got: Got | None

    @property
    def correct(self) -> bool:
        if self.expected is None:
            return True
        return self.got is not None and self.expected.met_by(
            self.got.verdict, self.got.methods, self.got.hop
        )

    @property
    def false_block(self) -> bool:
        """The probe said blocked where the scenario censors nothing of this service."""
        return (
            self.got is not None
            and self.got.verdict == "blocked"
            and (self.expected is None or self.expected.verdict != "blocked")
        )


# I/O -----------------------------------------------------------------------------------------
def apply_scenario(topology: Topology, scenario: Scenario) -> None:
    """Clear whatever the previous scenario left, then apply this one's actions."""
    topology.censor.clear_all()
    topology.set_client_resolver(scenario.resolver)
    for action in scenario.actions:
        topology.censor.apply(action)


def probe_command(
    topology: Topology, targets: Path = TARGETS_FILE, extra: Sequence[str] = ()
) -> list[str]:
    check = [
        *("check", "--targets", str(targets)),
        *("--control-resolver", topology.control_resolver_url),
        *("--ca-file", str(topology.ca_file)),
        "--json",
        *extra,
    ]
    # env: the probe runs from this checkout whether or not the package is installed.
    probe = ["env", f"PYTHONPATH={REPO_ROOT}", sys.executable, "-m", PROBE_MODULE]
    return in_netns(topology.ns.client, [*probe, *check])


def run_probe(argv: Sequence[str], timeout: float = PROBE_TIMEOUT) -> dict[str, Got]:
    done = _run_probe_process(argv, timeout)
    try:
        return parse_report(done.stdout)
    except ValueError as exc:
        raise ProbeError(argv, done.returncode, done.stderr, done.stdout) from exc


def run_probe_document(argv: Sequence[str], timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """The probe's whole ``--json`` document (endpoints, measurements), for tests that read
    more than verdicts."""
    done = _run_probe_process(argv, timeout)
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise ProbeError(argv, done.returncode, done.stderr, done.stdout) from exc
    if not isinstance(document, dict):
        raise ProbeError(argv, done.returncode, done.stderr, done.stdout)
    return document


def _run_probe_process(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = checkout_env()
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise ProbeError(argv, None, _text(exc.stderr), _text(exc.stdout)) from exc


def run_scenario(topology: Topology, scenario: Scenario, extra: Sequence[str] = ()) -> list[Row]:
    apply_scenario(topology, scenario)
    try:
        report = run_probe(probe_command(topology, extra=extra))
    finally:
        topology.censor.clear_all()
        topology.set_client_resolver("isp")
    return compare(scenario, report)


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


# Pure ----------------------------------------------------------------------------------------
def parse_report(text: str) -> dict[str, Got]:
    """``{service: Got}`` from ``censorwatch-probe check --json`` output."""
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, list):
        raise ValueError("no `services` list in the report")
    found: dict[str, Got] = {}
    for item in services:
        if not isinstance(item, dict) or not isinstance(item.get("service"), str):
            raise ValueError(f"a service entry without a name: {item!r}")
        methods = item.get("methods") or []
        found[item["service"]] = Got(
            str(item.get("verdict")),
            tuple(str(m) for m in methods),
            reported_hop(item.get("endpoints")),
        )
    return found


def compare(scenario: Scenario, report: dict[str, Got]) -> list[Row]:
    """One row per lab service (a service the probe left out is a miss) and per extra one."""
    services = list(dict.fromkeys([*scenario.services, *report]))
    return [
        Row(scenario.name, service, scenario.expectation(service), report.get(service))
        for service in services
    ]


def format_table(rows: Sequence[Row]) -> str:
    header = ("scenario", "service", "expected", "got", "methods", "")
    lines = [header]
    for row in rows:
        expected = row.expected.verdict if row.expected else "-"
        if row.expected and row.expected.methods:
            expected += f" [{', '.join(row.expected.methods)}]"
        got = row.got.verdict if row.got else "(missing)"
        if row.expected and row.expected.hop is not None:
            expected += f" hop {row.expected.hop}"
            got += f" hop {row.got.hop if row.got else '-'}"
        methods = ", ".join(row.got.methods) if row.got else ""
        mark = "ok" if row.correct else ("FALSE BLOCK" if row.false_block else "WRONG")
        lines.append((row.scenario, row.service, expected, got, methods, mark))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    ]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text.rstrip() for text in rendered)


@dataclass(frozen=True)
class Tally:
    scenario: str
    runs: int
    correct_runs: int
    runs_with_false_block: int


def tally(scenario: str, runs: Sequence[Sequence[Row]]) -> Tally:
    correct = sum(all(row.correct for row in rows) for rows in runs)
    false_blocks = sum(any(row.false_block for row in rows) for rows in runs)
    return Tally(scenario, len(runs), correct, false_blocks)


def format_tallies(tallies: Sequence[Tally]) -> str:
    lines = [f"{'scenario':<24} {'runs':>5} {'all right':>10} {'false blocked':>14}"]
    for t in tallies:
        lines.append(
            f"{t.scenario:<24} {t.runs:>5} {t.correct_runs:>10} {t.runs_with_false_block:>14}"
        )
    return "\n".join(lines)
