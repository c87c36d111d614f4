"""The `gateway` command line: serve, migrate, reconcile and purge."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.logs import configure_logging

# The commands import the rest of the gateway when they run. `serve` must set
# PROMETHEUS_MULTIPROC_DIR before prometheus_client is first imported, or the
# workers it forks would each keep their metrics to themselves.

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Run the command that the arguments name."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc.message}", file=sys.stderr)  # noqa: T201
        return 2


def serve(args: argparse.Namespace) -> int:
    """Run gunicorn with the gateway app."""
    # flags override the environment, and gunicorn's config module reads it
    for flag, variable in (
        ("host", "GATEWAY_HOST"),
        ("port", "GATEWAY_PORT"),
        ("workers", "GATEWAY_WORKERS"),
        ("threads", "GATEWAY_THREADS"),
    ):
        value = getattr(args, flag)
        if value is not None:
            os.environ[variable] = str(value)
    settings = load_settings()
    settings.require_database_url()
    created = _prepare_metrics_dir(settings.runtime_dir)

    from gateway.server import GatewayServer  # noqa: PLC0415 -- see the note above

    try:
        GatewayServer().run()
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
    return 0


def _prepare_metrics_dir(runtime_dir: str | None) -> str | None:
    """Give the workers an empty folder for their combined metrics.

    Return the folder if it was made here, for removal when the gateway stops.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # samples of an earlier run of this folder would be summed in
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
        return None

    # every request writes its samples into files mapped into memory; on a
    # disk-backed filesystem such a write can fault and wait for the disk, and
    # it waits holding the interpreter lock, so every thread of the worker waits
    created = tempfile.mkdtemp(prefix="gateway-metrics-", dir=runtime_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
    return created


def migrate(args: argparse.Namespace) -> int:
    """Upgrade the database schema to head."""
    from gateway import schema  # noqa: PLC0415 -- see the note above

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    schema.upgrade(settings.require_database_url())
    log.info("the schema is at head %s", schema.head_revision())
    return 0


def reconcile(args: argparse.Namespace) -> int:
    """Resolve pending reservations whose lease has expired, once or in a loop."""
    from gateway.reconcile import Reconciler  # noqa: PLC0415 -- see the note above
    from gateway.services import build_services  # noqa: PLC0415

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    services = build_services(settings)
    reconciler = Reconciler(settings, services.store, services.starts)
    try:
        if args.loop:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            report = reconciler.run_forever(args.interval, stop)
        else:
            report = reconciler.run_once()
    finally:
        services.store.close()
    print(json.dumps(dataclasses.asdict(report)), flush=True)  # noqa: T201
    return 0


def purge(args: argparse.Namespace) -> int:
    """Delete started reservations older than the given number of days."""
    from gateway.services import build_services  # noqa: PLC0415 -- see the note above

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    services = build_services(settings)
    try:
        purged = services.store.purge(args.older_than)
    finally:
        services.store.close()
    log.info("purged %d reservations older than %g days", purged, args.older_than)
    print(json.dumps({"purged": purged}), flush=True)  # noqa: T201
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="Idempotent start gateway for Camunda 7 engines"
    )
    commands = parser.add_subparsers(required=True, metavar="command")

    serve_parser = commands.add_parser("serve", help="serve the gateway with gunicorn")
    serve_parser.add_argument("--host", help="overrides GATEWAY_HOST")
    serve_parser.add_argument("--port", type=int, help="overrides GATEWAY_PORT")
    serve_parser.add_argument("--workers", type=int, help="overrides GATEWAY_WORKERS")
    serve_parser.add_argument("--threads", type=int, help="overrides GATEWAY_THREADS")
    serve_parser.set_defaults(run=serve)

    migrate_parser = commands.add_parser("migrate", help="upgrade the schema to head")
    migrate_parser.set_defaults(run=migrate)

    reconcile_parser = commands.add_parser(
        "reconcile", help="resolve pending reservations whose lease has expired"
    )
    reconcile_parser.add_argument(
        "--loop", action="store_true", help="keep running until SIGTERM"
    )
    reconcile_parser.add_argument(
        "--interval", type=float, default=5.0, help="seconds between passes in a loop"
    )
    reconcile_parser.set_defaults(run=reconcile)

    purge_parser = commands.add_parser("purge", help="purge old started reservations")
    purge_parser.add_argument(
        "--older-than",
        type=_positive_days,
        required=True,
        metavar="DAYS",
        help="age in days, for example 30 or 0.5",
    )
    purge_parser.set_defaults(run=purge)
    return parser


def _positive_days(text: str) -> float:
    """Read an age in days; zero would purge every started reservation."""
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive number of days")
    return days
