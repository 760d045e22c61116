"""The ``run`` and ``status`` commands: arguments to the daemon, failures to one clear line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
from pathlib import Path

from probe.daemon import config, consent, spool, transport
from probe.daemon import service as daemon
from probe.daemon.state import StateDir, StateError, default_dir

log = logging.getLogger("censorwatch.probe")


def _fail(message: str, code: int = 2) -> int:
    print(f"censorwatch-probe: {message}", file=sys.stderr)
    return code


def _listen(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"--metrics-listen: {text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def enrolment_token(args: argparse.Namespace) -> str | None:
    """The token of ``--token-file`` (or ``--token``, which says where it can be seen)."""
    if args.token is not None:
        log.warning(
            "--token: the enrolment token on the command line is visible to every user of "
            "this machine in /proc/PID/cmdline; use --token-file FILE instead"
        )
        return str(args.token)
    if args.token_file is None:
        return None
    try:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--token-file: {args.token_file}: cannot read: {exc}") from exc
    if not token:
        return None  # an empty file: no token (open enrolment, or enrolled already)
    if any(c.isspace() for c in token):
        raise ValueError(f"--token-file: {args.token_file}: expected one token on one line")
    return token


def run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        warning = transport.check_collector(args.collector, args.insecure_http)
        if warning is not None:
            log.warning("%s", warning)
        state = StateDir(args.state_dir or default_dir()).ensure()
        consent.ensure(state, args.accept_consent, sys.stdin, sys.stderr)
        options = daemon.Options(
            collector=args.collector,
            state=state,
            config=config.load(args.config),
            enrolment_token=enrolment_token(args),
            metrics_listen=_listen(args.metrics_listen),
        )
        return asyncio.run(daemon.run(options))
    except (
        StateError,
        consent.ConsentRequired,
        config.SettingsError,
        daemon.DaemonError,
        ValueError,
    ) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}", 1)
    except sqlite3.Error as exc:  # e.g. no room for even a new, empty spool
        return _fail(f"the spool cannot be opened: {exc}", 1)


def status_command(args: argparse.Namespace) -> int:
    from probe.daemon import (
        status,  # prometheus-client stays out of the daemon unless /metrics is on
    )

    state = StateDir(args.state_dir or default_dir())
    try:
        sys.stdout.write(status.show(state, args.json))
    except sqlite3.DatabaseError as exc:
        if not spool.unreadable(exc):
            return _fail(f"cannot read {state.spool_path}: {exc}", 1)
        return _fail(
            f"{state.spool_path} is not a readable spool ({exc}); the daemon moves it aside and "
            "starts a new one when it next opens it (restart it if it is running)",
            1,
        )
    except (OSError, sqlite3.Error, ValueError) as exc:
        return _fail(f"cannot read {state.spool_path}: {exc}", 1)
    return 0
