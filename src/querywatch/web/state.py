"""What every request of `querywatch serve` shares: the store, the settings, the clock, the access.

One :class:`WebState` per server, kept on the Starlette app (``app.state.web``); endpoints and
pages reach it with :func:`web_state`. The store is opened once for the server's lifetime and
shared by the request threads (both store backends serialise access with a lock).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from querywatch.config import DEFAULT_ENVIRONMENT, SETTINGS
from querywatch.store.base import Store

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from querywatch.respond.responder import Responder
    from querywatch.web.auth import Access


@dataclass
class WebState:
    """The server's store and resolved settings; ``responder_for`` (an environment -> its
    rollback responder) is None when the server has no rollback settings."""

    store: Store
    access: Access
    environment: str = DEFAULT_ENVIRONMENT
    clock: Callable[[], float] = time.time
    #: The resolved config without its secrets (tokens, DSNs, webhook URLs): base_url,
    #: metrics_top_n… Pages may show these; the tokens live in ``access`` only.
    settings: Mapping[str, Any] = field(default_factory=dict)
    responder_for: Callable[[str], Responder] | None = None


def public_settings(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every setting's value (the default where ``config`` has none), secrets left out."""
    given = dict(config or {})
    return {s.name: given.get(s.name, s.default) for s in SETTINGS if not s.secret}


def web_state(request: HTTPConnection) -> WebState:
    """The server's state, for an endpoint or a page."""
    state: WebState = request.app.state.web
    return state
