"""`querywatch serve`: the dashboard, the API and /metrics (:mod:`querywatch.web`), until Ctrl-C
or SIGTERM."""

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
    """Serve the dashboard, the API for CI/CD and /metrics (see docs/api.md)."""
    cfg = obj.config(store=store, environment=environment)
    server = make_server(
        cfg["store"],
        host,
        port,
        cfg["api_token"],
        read_token=cfg["api_read_token"],
        session_secret=cfg["session_secret"],
        no_auth=no_auth,
        environment=cfg["environment"],
        config_for=lambda env: obj.config(store=store, environment=env),
        settings=cfg,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    uvicorn_log = logging.getLogger("uvicorn.error")  # its warnings (a malformed request…)
    for logger, level in ((log, logging.INFO), (uvicorn_log, logging.WARNING)):
        logger.addHandler(handler)
        logger.setLevel(level)
    uvicorn_log.propagate = False
    auth = "no auth, loopback only" if no_auth else "bearer token required"
    click.echo(
        f"serving the dashboard and the API on {server.url} ({auth}), storing in "
        f"{redact(str(cfg['store']))} (Ctrl-C to stop)",
        err=True,
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)  # containers stop with SIGTERM
    try:
        server.serve_forever()  # in the main thread: returns after SIGINT/SIGTERM, re-raised
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        for logger in (log, uvicorn_log):
            logger.removeHandler(handler)
        uvicorn_log.propagate = True
    click.echo("stopped", err=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
