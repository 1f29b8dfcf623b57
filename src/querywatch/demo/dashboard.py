"""`querywatch demo --serve`: the dashboard over the demo's store while the outage plays out.

The same server as `querywatch serve --no-auth` (:mod:`querywatch.web.server`), bound to loopback
before the shop is seeded, so its URL is printed first and the pages show the deploy, the spike,
the incident and the rollback as the demo writes them. Loopback and no token, as with serve's
``--no-auth``: anyone on this machine may read and act, the Host, Origin and CSRF checks still
apply. The server runs in a background thread; the demo's own work is unchanged.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from querywatch.demo.run import check_workdir
from querywatch.demo.watcher import ENVIRONMENT
from querywatch.errors import ConfigError
from querywatch.web.server import DEFAULT_PORT, WebServer, make_server

__all__ = ["DEFAULT_PORT", "Dashboard"]

HOST = "127.0.0.1"
#: The range the printed link opens with: the demo's few minutes, not the default hour.
RANGE = "15m"


class Dashboard:
    """The demo's dashboard: serving from construction until :meth:`close`."""

    def __init__(self, store_path: Path, port: int = DEFAULT_PORT) -> None:
        check_workdir(store_path.parent)  # one line when it cannot be written, as the demo says
        try:
            self.server: WebServer = make_server(
                store_path,
                HOST,
                port,
                no_auth=True,
                environment=ENVIRONMENT,
                settings={"environment": ENVIRONMENT},
            )
        except ConfigError as exc:
            if "cannot listen" not in str(exc):
                raise
            raise ConfigError(f"{exc}: pick another --serve-port (0: any free port)") from None
        self._thread = self.server.start()

    @property
    def url(self) -> str:
        """The overview over the last 15 minutes, the link to open."""
        return f"{self.server.url}/?since={RANGE}"

    def serve_until_interrupted(self) -> None:
        """Keep serving until Ctrl-C or SIGTERM (main thread only), then return."""
        stopped = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stopped.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stopped.wait(0.5) and self._thread.is_alive():
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def close(self) -> None:
        """Stop serving (requests in flight get up to 5 s) and close the server's store."""
        self.server.shutdown()
        self.server.server_close()
