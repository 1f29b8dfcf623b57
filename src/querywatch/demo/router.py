"""Where traffic goes: the base URL of the backend currently serving the shop.

The load generator reads :attr:`Router.base_url` on every request, so switching it is the
"traffic switch" of a deploy (what a load balancer does in production).
"""

from __future__ import annotations

import threading


class Router:
    """The current backend base URL and release, swapped atomically by the deployer."""

    def __init__(self, base_url: str | None = None, version: str | None = None) -> None:
        self._lock = threading.Lock()
        self._target = (base_url, version)

    @property
    def base_url(self) -> str | None:
        return self._target[0]

    @property
    def version(self) -> str | None:
        return self._target[1]

    def switch(self, base_url: str | None, version: str | None = None) -> None:
        """Send all new requests to ``base_url`` from now on."""
        with self._lock:
            self._target = (base_url, version)
