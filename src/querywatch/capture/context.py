"""The request a statement belongs to, so the middleware can add up database time per request.

A ContextVar follows threads (one request per WSGI worker thread) and asyncio tasks alike; tasks a
request spawns inherit the same mutable RequestState, so their statements count toward it too.
"""

from __future__ import annotations

from contextvars import ContextVar


class RequestState:
    """Database time and calls of the request in progress; mutated by the statement hot path."""

    __slots__ = ("db_calls", "db_ns")

    def __init__(self) -> None:
        self.db_ns = 0
        self.db_calls = 0


current_request: ContextVar[RequestState | None] = ContextVar("querywatch_request", default=None)
