"""The ``run`` and ``status`` commands: arguments to the daemon, failures to one clear line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys

from probe.daemon import config, consent
from probe.daemon import service as daemon
from probe.daemon.state import StateDir, StateError, default_dir


def _fail(message: str, code: int = 2) -> int:
    print(f"censorwatch-probe: {message}", file=sys.stderr)
    return code


def _listen(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--metrics-listen: {text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        state = StateDir(args.state_dir or default_dir()).ensure()
        consent.ensure(state, args.accept_consent, sys.stdin, sys.stderr)
        options = daemon.Options(
            collector=args.collector,
            state=state,
            config=config.load(args.config),
            enrolment_token=args.token,
            metrics_listen=_listen(args.metrics_listen),
        )
        return asyncio.run(daemon.run(options))
    except (
        StateError,
        consent.ConsentRequired,
        config.ConfigError,
        daemon.DaemonError,
        ValueError,
    ) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}", 1)


def status_command(args: argparse.Namespace) -> int:
    from probe.daemon import (
        status,  # prometheus-client stays out of the daemon unless /metrics is on
    )

    state = StateDir(args.state_dir or default_dir())
    try:
        sys.stdout.write(status.show(state, args.json))
    except (OSError, sqlite3.Error, ValueError) as exc:
        return _fail(f"cannot read {state.spool_path}: {exc}", 1)
    return 0
