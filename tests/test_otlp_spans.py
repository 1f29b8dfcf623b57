"""Spans to windows without HTTP: how statements find their request across exports, and the
bounds that keep the receiver's memory small whatever the exporters send.

The exports are real OTLP protobuf messages; the windows go to a real SQLite store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

from querywatch.capture.otlp_spans import SpanReceiver, write_batch
from querywatch.records import CallSite
from querywatch.sql import fingerprint
from querywatch.store import SqlStore, open_store

NOW = 1_800_000_000 * 10**9
BY_ID = "SELECT * FROM orders WHERE id = %s"
FP = fingerprint(BY_ID, "postgres")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(tmp_path / "store.sqlite3")
    yield s
    s.close()


def attrs(**values: str | int) -> list[KeyValue]:
    out = []
    for key, value in values.items():
        v = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
        out.append(KeyValue(key=key.replace("_", "."), value=v))
    return out


class Trace:
    """Spans of one trace, made the way an instrumented service ends them."""

    def __init__(self) -> None:
        self.id = os.urandom(16)
        self.t = NOW

    def span(self, parent: bytes | None, kind: int, name: str, **values: str | int) -> Span:
        self.t += 1_000_000
        return Span(
            trace_id=self.id,
            span_id=os.urandom(8),
            parent_span_id=parent or b"",
            name=name,
            kind=kind,
            start_time_unix_nano=self.t - 500_000,
            end_time_unix_nano=self.t,
            attributes=attrs(**values),
        )

    def statement(self, parent: bytes, sql: str = BY_ID, **values: str | int) -> Span:
        return self.span(
            parent,
            Span.SPAN_KIND_CLIENT,
            "SELECT",
            db_system="postgresql",
            db_statement=sql,
            **values,
        )

    def server(self, route: str = "/orders/{id}") -> Span:
        return self.span(None, Span.SPAN_KIND_SERVER, f"GET {route}", http_route=route)


def export(*spans: Span, release: str = "v1") -> list[ResourceSpans]:
    rs = ResourceSpans()
    rs.resource.attributes.extend(attrs(service_version=release))
    rs.scope_spans.add().spans.extend(spans)
    return [rs]


def send(receiver: SpanReceiver, store: SqlStore, *spans: Span, release: str = "v1") -> None:
    receiver.receive(export(*spans, release=release), lambda b: write_batch(store, b), now_ns=NOW)


def calls(store: SqlStore) -> int:
    return sum(w.calls for w in store.statement_windows(source="otlp"))


def repeats(store: SqlStore, route: str = "/orders/{id}") -> list[tuple[str, int, int, int]]:
    return [
        (r.fingerprint, r.requests, r.total_repeats, r.max_repeats)
        for r in store.repeat_windows(route=route)
    ]


def test_statements_find_their_request_through_spans_sent_in_three_exports(
    store: SqlStore,
) -> None:
    """Statements first, then the app span they ran under, then the request: the route, its
    database time and its N+1 come together when the request arrives."""
    t, receiver = Trace(), SpanReceiver()
    server = t.server()
    app = t.span(server.span_id, Span.SPAN_KIND_INTERNAL, "load orders")
    loads = [t.statement(app.span_id) for _ in range(6)]
    send(receiver, store, *loads)
    assert store.request_windows() == []
    send(receiver, store, app)
    send(receiver, store, server)
    (request,) = store.request_windows(route="/orders/{id}")
    assert (request.requests, request.db_calls) == (1, 6)
    assert request.db_ms == pytest.approx(6 * 0.5)
    assert repeats(store) == [(FP.id, 1, 6, 6)]
    assert calls(store) == 6


def test_statements_after_their_request_cross_the_repeat_threshold_once(store: SqlStore) -> None:
    t, receiver = Trace(), SpanReceiver()
    server = t.server()
    send(receiver, store, server, *(t.statement(server.span_id) for _ in range(3)))
    assert repeats(store) == []  # 3 runs: not an N+1 yet
    send(receiver, store, *(t.statement(server.span_id) for _ in range(3)))
    assert repeats(store) == [(FP.id, 1, 6, 6)]
    send(receiver, store, t.statement(server.span_id))
    assert repeats(store) == [(FP.id, 1, 7, 7)]
    (request,) = store.request_windows(route="/orders/{id}")
    assert (request.requests, request.db_calls) == (1, 7)


def test_an_orm_span_over_the_drivers_counts_once_whichever_arrives_first(
    store: SqlStore,
) -> None:
    t, receiver = Trace(), SpanReceiver()
    server = t.server()
    orm = t.statement(server.span_id)
    driver = t.statement(orm.span_id)
    send(receiver, store, driver)
    send(receiver, store, orm, server)
    assert calls(store) == 1
    t2 = Trace()
    server2 = t2.server()
    orm2 = t2.statement(server2.span_id)
    send(receiver, store, t2.statement(orm2.span_id), orm2, server2)
    assert calls(store) == 2
    assert sum(r.db_calls for r in store.request_windows()) == 2


def test_a_release_call_site_and_error_come_from_the_span(store: SqlStore) -> None:
    t, receiver = Trace(), SpanReceiver()
    server = t.server()
    failing = t.statement(
        server.span_id,
        code_filepath="/srv/shop/orders.py",
        code_lineno=42,
        code_function="load",
        code_namespace="shop.orders",
    )
    failing.status.code = Status.STATUS_CODE_ERROR
    send(receiver, store, failing, server, release="2.0.1")
    (window,) = store.statement_windows(source="otlp", release="2.0.1")
    assert (window.fingerprint, window.errors, window.release) == (FP.id, 1, "2.0.1")
    assert window.call_sites == (CallSite("/srv/shop/orders.py", 42, "shop.orders.load"),)


def test_what_is_not_a_sql_statement_is_left_out(store: SqlStore) -> None:
    t, receiver = Trace(), SpanReceiver()
    server = t.server()
    redis = t.span(
        server.span_id, Span.SPAN_KIND_CLIENT, "GET", db_system="redis", db_statement="GET k"
    )
    no_text = t.span(server.span_id, Span.SPAN_KIND_CLIENT, "SELECT", db_system="postgresql")
    send(receiver, store, redis, no_text, server)
    assert calls(store) == 0
    (request,) = store.request_windows()
    assert request.db_calls == 0


def test_client_text_is_one_short_printable_line(store: SqlStore) -> None:
    t, receiver = Trace(), SpanReceiver()
    server = t.server(route="/a\x1b[31m\n" + "x" * 1000)
    send(receiver, store, server, release="v\x07" + "9" * 500)
    (request,) = store.request_windows()
    assert request.route == ("/a [31m " + "x" * 1000)[:300]
    assert request.release == "v " + "9" * 98


def test_a_loop_of_parent_links_ends(store: SqlStore) -> None:
    """A trace whose spans name each other as parents is not a tree: its statements count,
    without a route, and the receiver does not loop."""
    t, receiver = Trace(), SpanReceiver()
    a = t.span(None, Span.SPAN_KIND_INTERNAL, "a")
    b = t.span(a.span_id, Span.SPAN_KIND_INTERNAL, "b")
    a.parent_span_id = b.span_id
    send(receiver, store, a, b, t.statement(b.span_id))
    assert calls(store) == 1
    assert store.request_windows() == []


def test_the_memories_stay_within_their_bounds() -> None:
    """Statements whose request never comes (sampled out, dropped) are forgotten, oldest first,
    once their counts pass the bound; the windows were written all the same."""
    receiver = SpanReceiver(recent=100, entries=300)
    written = 0

    def write(batch: object) -> None:
        nonlocal written
        written += 1

    for n in range(200):
        t = Trace()
        missing = os.urandom(8)
        sqls = [f"SELECT * FROM t{n}_{i} WHERE id = %s" for i in range(3)]
        spans = [t.statement(missing, sql) for sql in sqls]
        spans.append(t.span(missing, Span.SPAN_KIND_INTERNAL, "other"))
        receiver.receive(export(*spans), write, now_ns=NOW)
    assert written == 200
    assert receiver._waiting.size <= 300 and len(receiver._waiting.items) == 300 // 4
    assert len(receiver._known.items) == 100
    assert len(receiver._db_parents.items) <= 100
