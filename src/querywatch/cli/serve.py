"""`querywatch serve`: the deploy API (:mod:`querywatch.web`) for CI/CD, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys

import click

from querywatch.cli.context import Context
from querywatch.cli.options import env_option, store_option
from querywatch.dsn import redact
from querywatch.web.api import log
from querywatch.web.server import DEFAULT_HOST, DEFAULT_PORT, make_server


@click.command()
@store_option
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@env_option("Environment for deploys that name none.")
@click.option(
    "--no-auth",
    is_flag=True,
    help="Serve without a token, on loopback only (local trials). Otherwise the token comes "
    "from QUERYWATCH_API_TOKEN or api_token in the config file, never from the command line.",
)
@click.pass_obj
def serve(
    obj: Context,
    store: str | None,
    host: str,
    port: int,
    environment: str | None,
    no_auth: bool,
) -> None:
    """Serve the deploy API for CI/CD (see docs/api.md)."""
    cfg = obj.config(store=store, environment=environment)
    server = make_server(
        cfg["store"],
        host,
        port,
        cfg["api_token"],
        no_auth=no_auth,
        environment=cfg["environment"],
        config_for=lambda env: obj.config(store=store, environment=env),
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    auth = "no auth, loopback only" if no_auth else "bearer token required"
    click.echo(
        f"serving the deploy API on {server.url} ({auth}), storing in "
        f"{redact(str(cfg['store']))} (Ctrl-C to stop)",
        err=True,
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)  # containers stop with SIGTERM
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        log.removeHandler(handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
