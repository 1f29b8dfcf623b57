"""What `querywatch serve`'s /v1/traces costs per span: decoding, windows, the store write.

Exports shaped like an instrumented web service's: each request is a SERVER span, an app span
and ``--statements`` psycopg-like database spans (an N+1 of one fingerprint, plus a few others),
in batches of ``--batch`` spans (the SDK's BatchSpanProcessor sends 512). Three figures, each the
median of ``--rounds`` runs over fresh span ids:

- receive: ``SpanReceiver.receive`` over decoded exports, no store (the conversion alone);
- decode + receive + SQLite: protobuf bytes to windows written to a SQLite store, in process;
- HTTP: gzip'd protobuf POSTed to a running server on loopback (``make_server``), end to end.

    .venv/bin/python bench/otlp_receive.py [--batch 512] [--batches 40] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from querywatch.capture.otlp_spans import SpanReceiver, write_batch
from querywatch.store import open_store
from querywatch.web.server import make_server

TOKEN = "bench-token-0123456789abcdef"
OTHERS = [
    "SELECT count(*) FROM orders WHERE customer_id = %s",
    "UPDATE customers SET seen_at = now() WHERE id = %s",
    "SELECT id, name FROM products WHERE id IN (%s, %s, %s)",
]


def attr(key: str, value: str | int) -> KeyValue:
    v = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=v)


def exports(batch: int, batches: int, statements: int, t0: int) -> list[bytes]:
    """``batches`` serialized exports of ``batch`` spans each, whole requests in order."""
    out: list[bytes] = []
    spans: list[Span] = []
    trace_no = 0
    now = t0
    while len(out) < batches:
        trace_no += 1
        trace_id = os.urandom(16)
        server, app = os.urandom(8), os.urandom(8)
        start = now
        for i in range(statements):
            sql = "SELECT id, total FROM orders WHERE id = %s" if i % 3 else OTHERS[i % 3]
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=os.urandom(8),
                    parent_span_id=app,
                    name="SELECT",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=now,
                    end_time_unix_nano=now + 300_000,
                    attributes=[
                        attr("db.system", "postgresql"),
                        attr("db.statement", sql),
                        attr("code.filepath", "/srv/shop/orders.py"),
                        attr("code.lineno", 40 + i % 3),
                        attr("code.function", "load_order"),
                    ],
                )
            )
            now += 400_000
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=app,
                parent_span_id=server,
                name="load orders",
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=start,
                end_time_unix_nano=now,
            )
        )
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=server,
                name="GET /orders/{id}",
                kind=Span.SPAN_KIND_SERVER,
                start_time_unix_nano=start - 100_000,
                end_time_unix_nano=now + 100_000,
                attributes=[attr("http.route", f"/orders/{{id}}/{trace_no % 20}")],
            )
        )
        while len(spans) >= batch and len(out) < batches:
            taken, spans = spans[:batch], spans[batch:]
            out.append(request(taken).SerializeToString())
    return out


def request(spans: list[Span]) -> ExportTraceServiceRequest:
    rs = ResourceSpans()
    rs.resource.attributes.append(attr("service.version", "2.4.0"))
    rs.scope_spans.add().spans.extend(spans)
    return ExportTraceServiceRequest(resource_spans=[rs])


def timed(
    run: Callable[[list[bytes]], None], make: Callable[[], list[bytes]], rounds: int
) -> float:
    """Median µs per span over ``rounds`` runs, each over fresh exports."""
    results = []
    for _ in range(rounds):
        bodies = make()
        spans = sum(
            len(ExportTraceServiceRequest.FromString(b).resource_spans[0].scope_spans[0].spans)
            for b in bodies
        )
        t = time.perf_counter()
        run(bodies)
        results.append((time.perf_counter() - t) / spans * 1e6)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--statements", type=int, default=8, help="database spans per request")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    now = time.time_ns()

    def make() -> list[bytes]:
        return exports(args.batch, args.batches, args.statements, now - 60 * 10**9)

    decoded: dict[int, ExportTraceServiceRequest] = {}

    def receive_only(bodies: list[bytes]) -> None:
        receiver = SpanReceiver()
        for body in bodies:
            receiver.receive(decoded[id(body)].resource_spans, lambda b: None, now_ns=now)

    def make_decoded() -> list[bytes]:
        bodies = make()
        decoded.clear()
        decoded.update({id(b): ExportTraceServiceRequest.FromString(b) for b in bodies})
        return bodies

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "direct.sqlite3")

        def into_store(bodies: list[bytes]) -> None:
            receiver = SpanReceiver()
            for body in bodies:
                export = ExportTraceServiceRequest.FromString(body)
                receiver.receive(
                    export.resource_spans, lambda b: write_batch(store, b), body=body, now_ns=now
                )

        server = make_server(Path(tmp) / "served.sqlite3", port=0, token=TOKEN)
        server.start()

        def over_http(bodies: list[bytes]) -> None:
            for body in bodies:
                data = gzip.compress(body)
                headers = {
                    "Content-Type": "application/x-protobuf",
                    "Content-Encoding": "gzip",
                    "Authorization": f"Bearer {TOKEN}",
                }
                req = urllib.request.Request(server.url + "/v1/traces", data, headers)
                with urllib.request.urlopen(req, timeout=30) as response:
                    assert response.status == 200

        try:
            rows = [
                ("receive (conversion only)", timed(receive_only, make_decoded, args.rounds)),
                ("decode + receive + SQLite write", timed(into_store, make, args.rounds)),
                ("HTTP: gzip protobuf to serve", timed(over_http, make, args.rounds)),
            ]
        finally:
            server.shutdown()
            server.server_close()
            store.close()
    print(f"{args.batches} exports x {args.batch} spans, {args.statements} statements per request")
    print("| path | µs per span | spans/s |")
    print("|---|---|---|")
    for name, us in rows:
        print(f"| {name} | {us:.2f} | {1e6 / us:,.0f} |")


if __name__ == "__main__":
    main()
