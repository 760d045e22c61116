"""``censorwatch-probe``: the volunteer's command line."""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from probe import __version__, report
from probe.daemon.config import DEFAULT_CONTROL_RESOLVERS, MISSING_EVIDENCE
from probe.measure.dns import network_resolver
from probe.measure.engine import Engine, Settings
from probe.measure.network import Resolver, ResolverSpecError, parse_resolver
from probe.measure.sockets import SocketNetwork, Timing
from probe.model import Measurement, ProbeInfo
from probe.targets import TargetList, TargetListError, load, load_default


class UsageError(Exception):
    """Bad arguments or files: reported in one line, exit status 2."""


def _positive(kind: type[float] | type[int]) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number greater than zero")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="censorwatch-probe",
        description="Test whether messengers and social sites are blocked from this network.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="test once from this network and print verdicts")
    check.add_argument(
        "--targets", type=Path, metavar="FILE", help="target list (TOML); default: the shipped list"
    )
    check.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="NAME",
        help="only this service (repeatable)",
    )
    check.add_argument(
        "--resolver",
        metavar="IP[:PORT]",
        help="the network's resolver; default: from /etc/resolv.conf",
    )
    check.add_argument(
        "--control-resolver",
        metavar="URL",
        action="append",
        help="trusted resolver: https://…, tls://…, udp://IP[:PORT], tcp://IP[:PORT]; repeat for "
        f"fallbacks (default: {', '.join(DEFAULT_CONTROL_RESOLVERS)})",
    )
    check.add_argument(
        "--ca-file", type=Path, metavar="PEM", help="extra trusted root certificates"
    )
    check.add_argument(
        "--timeout",
        type=_positive(float),
        default=5.0,
        metavar="S",
        help="per-step timeout (default 5)",
    )
    check.add_argument(
        "--concurrency",
        type=_positive(int),
        default=50,
        metavar="N",
        help="network operations at once (default 50)",
    )
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument(
        "--no-raw",
        action="store_true",
        help="do not capture packets even with CAP_NET_RAW (no TTL evidence of injection)",
    )
    _add_run(commands)
    _add_status(commands)
    return parser


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="the daemon: measure on a schedule, spool, upload")
    run.add_argument(
        "--collector", required=True, metavar="URL", help="the collector's base URL (https://)"
    )
    token = run.add_mutually_exclusive_group()
    token.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="file holding the enrolment token (first run, or enrolling again after a revocation)",
    )
    token.add_argument(
        "--token",
        metavar="ENROLMENT_TOKEN",
        help="the enrolment token itself; other users can read it in /proc: prefer --token-file",
    )
    run.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow a plain http:// collector that is not on loopback (labs only: the token and "
        "target lists can then be read and rewritten on the way)",
    )
    run.add_argument("--config", type=Path, metavar="FILE", help="settings (TOML)")
    run.add_argument("--state-dir", type=Path, metavar="DIR", help="state directory")
    run.add_argument(
        "--accept-consent",
        action="store_true",
        help="accept the informed-consent text without a prompt (packaged installs)",
    )
    run.add_argument(
        "--metrics-listen", metavar="HOST:PORT", help="serve /metrics here (e.g. 127.0.0.1:9309)"
    )
    run.add_argument("--log-level", default="INFO", metavar="LEVEL", help="DEBUG, INFO, WARNING")


def _add_status(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser("status", help="what the daemon has seen and sent")
    status.add_argument("--state-dir", type=Path, metavar="DIR", help="state directory")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            from probe.daemon.commands import run_command

            return run_command(args)
        if args.command == "status":
            from probe.daemon.commands import status_command

            return status_command(args)
        return asyncio.run(_check(args))
    except UsageError as exc:
        print(f"censorwatch-probe: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("censorwatch-probe: interrupted", file=sys.stderr)
        return 130


async def _check(args: argparse.Namespace) -> int:
    targets = _targets(args)
    resolver = _network_resolver(args.resolver)
    try:
        control_resolvers = [
            parse_resolver(u) for u in args.control_resolver or DEFAULT_CONTROL_RESOLVERS
        ]
    except ResolverSpecError as exc:
        raise UsageError(f"--control-resolver: {exc}") from exc
    if args.ca_file is not None and not args.ca_file.is_file():
        raise UsageError(f"--ca-file: {args.ca_file}: no such file")
    try:
        network = SocketNetwork(
            Timing(timeout=args.timeout), args.ca_file, raw=False if args.no_raw else None
        )
    except OSError as exc:
        raise UsageError(
            f"--ca-file: {args.ca_file}: not a PEM certificate bundle ({exc})"
        ) from exc
    engine = Engine(
        network,
        resolver,
        control_resolvers,
        Settings(concurrency=args.concurrency),
        ProbeInfo(
            missing_evidence=MISSING_EVIDENCE,
            network_resolver_asn=resolver.asn if resolver else None,
        ),
    )
    judged = [s for s in targets.services if not s.is_control]
    progress = _Progress(len(judged)) if sys.stderr.isatty() else None
    try:
        result = await engine.run(targets, progress)
    finally:
        await network.close()
    if progress is not None:
        progress.clear()
    if args.json:
        sys.stdout.buffer.write(
            report.to_json(
                result,
                resolver.label if resolver else None,
                [r.label for r in control_resolvers],
            )
        )
    else:
        sys.stdout.write(report.table(result))
    sys.stdout.flush()
    return 0


def _targets(args: argparse.Namespace) -> TargetList:
    try:
        targets = load(args.targets) if args.targets else load_default()
        targets = targets.select(args.service) if args.service else targets
    except TargetListError as exc:
        raise UsageError(str(exc)) from exc
    if not targets.controls:
        # Without controls nothing tells an offline network from blocking.
        print(
            f"censorwatch-probe: {targets.source} has no control services; adding the default ones",
            file=sys.stderr,
        )
        targets = TargetList(targets.source, targets.services + load_default().controls)
    return targets


def _network_resolver(text: str | None) -> Resolver | None:
    try:
        return network_resolver(text)
    except ResolverSpecError as exc:
        raise UsageError(f"--resolver: {exc}") from exc


class _Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        sys.stderr.write(f"testing {total} services…")
        sys.stderr.flush()

    def __call__(self, measurement: Measurement) -> None:
        self.done += 1
        sys.stderr.write(
            f"\r\x1b[K[{self.done}/{self.total}] {measurement.service}: {measurement.analysis.verdict}"
        )
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
