"""The `gateway` command line: serve, migrate, reconcile and purge."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gateway import schema
from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.logs import configure_logging
from gateway.server import GatewayServer

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

    GatewayServer().run()
    return 0


def migrate(args: argparse.Namespace) -> int:
    """Upgrade the database schema to head."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    schema.upgrade(settings.require_database_url())
    log.info("the schema is at head %s", schema.head_revision())
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
    return parser
