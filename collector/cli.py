"""``censorwatch serve``, ``db upgrade``, ``demo``, and the admin commands ``events …`` and
``subscribers …`` (in `collector.admin_cli`).

Settings come from a TOML file (``--config`` or ``CENSORWATCH_CONFIG``), then
``CENSORWATCH_*`` environment variables, then flags. Any mistake in them, or a database
that cannot be reached, ends the command with one clear line and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from collector import admin as admin_cli
from collector import auth, logs, workers
from collector.app import build_state, create_app
from collector.config import Config, ConfigError, resolve
from collector.enrolment.iptoasn import TableError
from collector.store import migrate
from collector.store.db import Database, DatabaseURLError, redact
from collector.workers import Worker
from probe.targets import TargetListError

EXIT_USAGE: Final = 2
EXIT_FAILURE: Final = 1


class CommandError(Exception):
    """Ends a command with a message for the operator."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="censorwatch", description="censorwatch collector")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the collector")
    _common(serve)
    serve.add_argument("--listen", metavar="HOST:PORT", help="address to listen on")
    serve.add_argument("--ip-asn-db", metavar="FILE", help="iptoasn TSV table (.tsv or .tsv.gz)")
    serve.add_argument("--targets", metavar="FILE", help="target list (TOML) sent to probes")
    serve.add_argument(
        "--open-enrolment",
        action="store_true",
        default=None,
        help="let probes register without a token",
    )
    serve.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR")
    serve.add_argument(
        "--workers",
        metavar="N",
        help="collector processes sharing the port (PostgreSQL only; default 1)",
    )
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="the status page's public address (https://status.example.org) for feeds and cards",
    )
    demo = commands.add_parser("demo", help="the whole pipeline on loopback, in about a minute")
    demo.add_argument("--probe-interval", type=float, default=5.0, metavar="S")
    demo.add_argument("--censor-after", type=float, default=12.0, metavar="S")
    demo.add_argument(
        "--keep",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after the alert, keep the status page up until Ctrl-C (default: on a terminal)",
    )
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    _common(db_commands.add_parser("upgrade", help="apply schema migrations"))
    _common(
        db_commands.add_parser(
            "rejudge", help="re-judge measurements judged with older fingerprint files"
        )
    )
    admin_cli.add_commands(commands, _common)
    token = commands.add_parser("admin-token", help="the admin token: a new one, or rotate")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    token_commands.add_parser("new", help="print a new admin token (e.g. for a Secret)")
    _common(
        token_commands.add_parser(
            "rotate", help="write a new admin token to the token file; the old one stops working"
        )
    )
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help="sqlite:///FILE or postgresql://…")
    parser.add_argument("--config", metavar="FILE", type=Path, help="TOML settings file")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="where the SQLite file and admin token live"
    )
    parser.add_argument(
        "--admin-token-file",
        metavar="FILE",
        help="the admin token (default DATA_DIR/admin-token); its token wins when it exists",
    )


_FLAG_KEYS: Final = (
    "db",
    "admin_token_file",
    "listen",
    "data_dir",
    "ip_asn_db",
    "targets",
    "open_enrolment",
    "log_level",
    "public_url",
    "workers",
)


def config_from(args: argparse.Namespace) -> Config:
    flags: dict[str, Any] = {key: getattr(args, key, None) for key in _FLAG_KEYS}
    return resolve(args.config, os.environ, flags)


async def _upgrade(config: Config) -> None:
    db = Database(config.db_url)
    try:
        before, after = await migrate.upgrade(db)
    finally:
        await db.close()
    if before == after:
        print(f"censorwatch: database {db.display_url} is at revision {after}, nothing to do")
    else:
        print(
            f"censorwatch: database {db.display_url} migrated from {before or 'empty'} to {after}"
        )


async def _rotate_admin_token(config: Config) -> None:
    db = Database(config.db_url)
    try:
        await migrate.upgrade(db)
        await auth.rotate_admin_token(db, config.admin_token_path)
    finally:
        await db.close()
    print(
        f"censorwatch: new admin token written to {config.admin_token_path}; the old one no "
        "longer works (restart other replicas with the new file)"
    )


async def _rejudge(config: Config) -> None:
    from collector.ingest import rejudge

    db = Database(config.db_url)
    try:
        await migrate.upgrade(db)
        report = await rejudge.rejudge_stale(db)
    finally:
        await db.close()
    print(
        f"censorwatch: re-judged {report.examined} measurements with fingerprints "
        f"{report.version}: {report.changed} verdicts changed"
    )


def _tune_garbage_collector() -> None:
    """Fewer, cheaper passes of the cycle collector for a server that ingests batches.

    A batch of 1,000 measurements decodes into some 40,000 acyclic objects that live until
    it is stored; at the default threshold (700 allocations) the collector traversed them,
    and with them the whole heap, again and again, which cost the decode three to four
    times its own time (``benchmarks/collector_ingest``). What is loaded at start is never
    garbage, so it leaves the collector's view for good.
    """
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


async def _serve(config: Config, worker: Worker | None = None) -> None:
    state = build_state(config)
    app = create_app(state, primary=worker is None or worker.primary)
    runner = web.AppRunner(
        app,
        access_log_class=logs.AccessLogger,
        shutdown_timeout=config.shutdown_timeout_seconds,
        handle_signals=False,
    )
    await runner.setup()
    _tune_garbage_collector()
    try:
        host, port = config.listen.host, config.listen.port
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_port=worker is not None)
        await site.start()
        where = f"collector on http://{config.listen}, database {state.db.display_url}"
        print(f"censorwatch: {where}{f' ({worker})' if worker else ''}", flush=True)
        if worker is not None:
            worker.ready.set()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("censorwatch: shutting down, finishing requests in flight", flush=True)
        state.shutting_down = True
    finally:
        await runner.cleanup()


def run_worker(config: Config, worker: Worker) -> int:
    """One worker of ``serve --workers N`` (``collector.workers``); its exit status."""
    logs.configure(config.log_level)
    return _guarded(lambda: asyncio.run(_serve(config, worker)), lambda: config.db_url)


def _run(args: argparse.Namespace) -> None:
    if args.command == "demo":
        from collector.demo import pipeline as demo

        keep = args.keep if args.keep is not None else sys.stdin.isatty() and sys.stdout.isatty()
        try:
            code = asyncio.run(demo.run(args.probe_interval, args.censor_after, keep=keep))
        except KeyboardInterrupt:
            code = 0  # Ctrl-C is how a kept demo ends
        if code:
            raise SystemExit(code)
        return
    if args.command == "admin-token" and args.token_command == "new":
        print(auth.new_token("admin"))
        return
    config = config_from(args)
    logs.configure(config.log_level)
    if args.command == "admin-token":
        asyncio.run(_rotate_admin_token(config))
    elif args.command == "serve" and config.workers > 1:
        code = workers.supervise(config)
        if code:
            raise SystemExit(code)
    elif args.command == "serve":
        asyncio.run(_serve(config))
    elif args.command in ("events", "sources", "subscribers"):
        asyncio.run(admin_cli.run(args, config))
    elif args.db_command == "rejudge":
        asyncio.run(_rejudge(config))
    else:
        asyncio.run(_upgrade(config))


def _database_problem(exc: BaseException, url: Callable[[], str]) -> str:
    try:
        shown = redact(url())
    except ConfigError:
        shown = "the database"
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"cannot use {shown}: {type(reason).__name__}: {reason}".splitlines()[0]


def _guarded(run: Callable[[], object], db_url: Callable[[], str]) -> int:
    """``run``, with each mistake an operator can fix ended by one line and a status."""
    try:
        run()
    except (
        ConfigError,
        DatabaseURLError,
        TableError,
        TargetListError,
        admin_cli.AdminInputError,
        auth.AdminTokenFileError,
    ) as exc:
        print(f"censorwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except admin_cli.NotFoundError as exc:
        print(f"censorwatch: {exc.args[0]}", file=sys.stderr)
        return EXIT_FAILURE
    except (SQLAlchemyError, OSError) as exc:
        print(f"censorwatch: {_database_problem(exc, db_url)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _guarded(lambda: _run(args), lambda: config_from(args).db_url)


if __name__ == "__main__":
    sys.exit(main())
