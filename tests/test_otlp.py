"""OpenTelemetry in: the SDK's own OTLP/HTTP exporter sends real psycopg spans to a running
`querywatch serve`, and the store holds what the in-app capture would: fingerprint windows with
their release and call sites, the route's requests and database time, its N+1 repeats.

The spans come from a real connection to the test PostgreSQL, instrumented by
opentelemetry-instrumentation-psycopg inside a SERVER span carrying ``http.route``, as a web
framework's instrumentation makes it.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import re
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cli_helpers import served as served_process
from querywatch.records import CallSite
from querywatch.sql import fingerprint
from querywatch.store import SqlStore, open_store
from querywatch.web.otlp import MAX_OTLP_BODY_BYTES, MAX_OTLP_DECODED_BYTES
from querywatch.web.server import make_server

pytestmark = pytest.mark.postgres

WRITE = "write-token-for-otlp-tests-000000"
READ = "read-token-for-otlp-tests-0000000"
ROUTE = "/orders/{id}"
BY_ID = "SELECT id, total FROM orders WHERE id = %s"
COUNT = "SELECT count(*) FROM orders"
BROKEN = "SELECT total / 0 FROM orders WHERE id = %s"
LOOPS = 6  # one request loads six orders one by one: an N+1 (the repeat threshold is 5)


@dataclass
class Served:
    url: str
    store: Path

    @property
    def traces(self) -> str:
        return self.url + "/v1/traces"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`querywatch serve` as a user runs it: tokens from the environment, a SQLite store."""
    work = tmp_path_factory.mktemp("otlp")
    store = work / "store.sqlite3"
    env = {"QUERYWATCH_API_TOKEN": WRITE, "QUERYWATCH_API_READ_TOKEN": READ}
    with served_process("--store", str(store), cwd=work, env=env) as url:
        yield Served(url, store)


@pytest.fixture
def orders(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL)")
        conn.execute("INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 50) g")
    return pg_dsn


DOC = Path(__file__).resolve().parent.parent / "docs" / "integrations" / "opentelemetry.md"


def documented_call_sites() -> type[SpanProcessor]:
    """The span processor docs/integrations/opentelemetry.md gives for call sites from Python
    (OpenTelemetry's instrumentations set no ``code.*``), run exactly as printed there."""
    section = DOC.read_text().split("## Call sites from Python", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "no Python block under 'Call sites from Python'"
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), str(DOC), "exec"), namespace)
    processor: type[SpanProcessor] = namespace["CallSites"]
    return processor


CallSites = documented_call_sites()


class Results(SpanExporter):
    """The real exporter, with what each export returned kept for the test."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.results: list[SpanExportResult] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


def provider(release: str, *processors: SpanProcessor) -> TracerProvider:
    resource = Resource.create({"service.name": "shop", "service.version": release})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(CallSites())
    for processor in processors:
        tp.add_span_processor(processor)
    return tp


def serve_one_request(dsn: str, tp: TracerProvider) -> None:
    """One GET /orders/{id} of a web app: six orders loaded one by one (under a span of the
    app's own), a count (under an ORM-like span of the same statement, over the driver's), and
    a statement that fails."""
    tracer = tp.get_tracer("shop.web")
    conn = PsycopgInstrumentor().instrument_connection(
        psycopg.connect(dsn, autocommit=True), tracer_provider=tp
    )
    orm = {"db.system": "postgresql", "db.statement": COUNT}
    try:
        with tracer.start_as_current_span(
            "GET /orders/{id}", kind=trace.SpanKind.SERVER, attributes={"http.route": ROUTE}
        ):
            with tracer.start_as_current_span("load orders"):
                for order_id in range(1, LOOPS + 1):
                    load_order(conn, order_id)
            with tracer.start_as_current_span("orders", kind=trace.SpanKind.CLIENT, attributes=orm):
                conn.execute(COUNT).fetchone()
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute(BROKEN, (1,))
    finally:
        conn.close()


def load_order(conn: psycopg.Connection[Any], order_id: int) -> None:
    conn.execute(BY_ID, (order_id,)).fetchone()


def exporter(served: Served, **kwargs: Any) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=served.traces, headers={"Authorization": f"Bearer {WRITE}"}, **kwargs
    )


def reader(served: Served) -> SqlStore:
    return open_store(served.store, read_only=True)


def check_recorded(served: Served, release: str) -> None:
    """What a user sees for the request: counts, fingerprints, release, call site, route."""
    by_id, count, broken = (fingerprint(s, "postgres").id for s in (BY_ID, COUNT, BROKEN))
    store = reader(served)
    try:
        windows = store.statement_windows(source="otlp", release=release)
        calls: dict[str, int] = {}
        for w in windows:
            calls[w.fingerprint] = calls.get(w.fingerprint, 0) + w.calls
            assert w.release == release and w.source == "otlp" and w.dialect == "postgres"
        assert calls == {by_id: LOOPS, count: 1, broken: 1}
        errors = {w.fingerprint: w.errors for w in windows}
        assert errors[broken] == 1 and errors[by_id] == 0
        sites = {s for w in windows if w.fingerprint == by_id for s in w.call_sites}
        line = load_order.__code__.co_firstlineno + 1
        assert sites == {CallSite(__file__, line, "load_order")}
        assert all(w.max_ms > 0 and w.sketch is not None for w in windows)
        requests = store.request_windows(route=ROUTE, release=release)
        assert sum(r.requests for r in requests) == 1
        assert sum(r.db_calls for r in requests) == LOOPS + 2
        total_db = sum(w.total_ms for w in windows)
        assert sum(r.db_ms for r in requests) == pytest.approx(total_db)
        assert sum(r.total_ms for r in requests) >= total_db
        repeats = store.repeat_windows(route=ROUTE, release=release)
        assert [(r.fingerprint, r.requests, r.max_repeats) for r in repeats] == [(by_id, 1, LOOPS)]
        top = store.top(release=release)
        assert {s.fingerprint for s in top} == {by_id, count, broken}
    finally:
        store.close()


def test_the_sdk_exporter_sends_psycopg_spans_that_become_windows(
    served: Served, orders: str
) -> None:
    """The default pipeline: a batch span processor and the OTLP/HTTP exporter (gzip), the
    token in its headers; one force_flush sends the request's spans in one export."""
    sent = Results(exporter(served, compression=Compression.Gzip))
    tp = provider("2.4.0", BatchSpanProcessor(sent))
    serve_one_request(orders, tp)
    assert tp.force_flush(10_000)
    tp.shutdown()
    assert sent.results == [SpanExportResult.SUCCESS]
    check_recorded(served, "2.4.0")


def test_spans_exported_one_by_one_still_find_their_route(
    served: Served, orders: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request's statements can reach querywatch before the SERVER span that ends after them
    (here each span is its own export): they wait for it and count toward its route. The
    exporter is set up by the environment only, as docs/integrations/opentelemetry.md says."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", served.traces)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", f"Authorization=Bearer%20{WRITE}")
    sent = Results(OTLPSpanExporter())
    tp = provider("2.4.1", SimpleSpanProcessor(sent))
    serve_one_request(orders, tp)
    tp.shutdown()
    assert sent.results == [SpanExportResult.SUCCESS] * (LOOPS + 5)
    check_recorded(served, "2.4.1")


def test_statements_arriving_after_their_request_count_toward_it(
    served: Served, orders: str
) -> None:
    """The other way round (a collector reordering, a task outliving its request): the SERVER
    span first, its statements in a later export."""
    memory = InMemorySpanExporter()
    tp = provider("2.4.2", SimpleSpanProcessor(memory))
    serve_one_request(orders, tp)
    spans = memory.get_finished_spans()
    server = [s for s in spans if s.kind is trace.SpanKind.SERVER]
    assert post_protobuf(served, encode_spans(server)).status == 200
    assert post_protobuf(served, encode_spans([s for s in spans if s not in server])).status == 200
    check_recorded(served, "2.4.2")


def test_otlp_json_from_the_same_spans(served: Served, orders: str) -> None:
    """OTLP's JSON encoding (hex ids, lowerCamelCase, 64-bit integers as strings), as a
    Collector's otlphttp exporter sends it with ``encoding: json``."""
    memory = InMemorySpanExporter()
    tp = provider("2.4.3", SimpleSpanProcessor(memory))
    serve_one_request(orders, tp)
    document = otlp_json(encode_spans(memory.get_finished_spans()))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"])
    assert isinstance(span["startTimeUnixNano"], str)
    reply = post(served, json.dumps(document).encode(), "application/json")
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/json"
    assert json.loads(reply.body) == {}  # everything accepted: no partialSuccess
    check_recorded(served, "2.4.3")


def test_refused_spans_are_a_partial_success(served: Served, orders: str) -> None:
    """A span that ends before it starts is refused; the rest of the export is kept, and the
    reply counts the refused ones and says why."""
    memory = InMemorySpanExporter()
    tp = provider("2.4.4", SimpleSpanProcessor(memory))
    serve_one_request(orders, tp)
    export = encode_spans(memory.get_finished_spans())
    spans = export.resource_spans[0].scope_spans[0].spans
    broken = next(s for s in spans if dict_of(s.attributes).get("db.statement") == BY_ID)
    broken.end_time_unix_nano = broken.start_time_unix_nano - 1
    reply = post(served, gzip.compress(export.SerializeToString()), encoding="gzip")
    assert reply.status == 200
    answer = ExportTraceServiceResponse.FromString(reply.body)
    assert answer.partial_success.rejected_spans == 1
    assert "end time before" in answer.partial_success.error_message
    store = reader(served)
    try:
        calls = sum(w.calls for w in store.statement_windows(source="otlp", release="2.4.4"))
    finally:
        store.close()
    assert calls == LOOPS - 1 + 2  # one of the six loads refused; the count and the failure


def test_tokens_follow_the_api_rules(served: Served) -> None:
    """Exporting writes: the write token only. No token is 401 (with the Bearer challenge), the
    read token or a wrong one 403; the answer is a google.rpc.Status in the request's encoding."""
    body = ExportTraceServiceRequest().SerializeToString()
    missing = post(served, body, token=None)
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"Authorization: Bearer" in missing.body
    assert post(served, body, token=READ).status == 403
    wrong = post(served, b"{}", "application/json", token="not-the-token-0000000000")
    assert wrong.status == 403
    assert json.loads(wrong.body) == {
        "code": 7,
        "message": "the bearer token is not valid for this server",
    }
    assert post(served, body).status == 200
    assert post(served, zlib.compress(body), encoding="deflate").status == 200


def test_what_is_not_an_export_is_refused(served: Served) -> None:
    garbage = post(served, b"\xff\xfe not protobuf")
    assert garbage.status == 400
    assert garbage.headers["Content-Type"] == "application/x-protobuf"
    assert b"ExportTraceServiceRequest" in garbage.body
    assert post(served, b"{not json", "application/json").status == 400
    assert post(served, b'{"resourceSpans": 3}', "application/json").status == 400
    bad_id = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}
    assert post(served, json.dumps(bad_id).encode(), "application/json").status == 400
    assert post(served, b"not gzip", encoding="gzip").status == 400
    assert post(served, b"{}", "text/plain").status == 415
    assert post(served, gzip.compress(b""), encoding="br").status == 415


def test_bodies_past_the_limits_are_413(served: Served) -> None:
    """The API's 64 KiB limit does not apply here (a batch is larger), but a bound does, also
    after decompression: a small gzip body that unpacks into too much is refused."""
    assert MAX_OTLP_BODY_BYTES > 64 * 1024
    assert post(served, bytes(100 * 1024)).status == 400  # read: over 64 KiB is fine
    assert announce_too_much(served) == 413
    bomb = gzip.compress(bytes(MAX_OTLP_DECODED_BYTES + 1))
    assert len(bomb) < 64 * 1024
    reply = post(served, bomb, encoding="gzip")
    assert reply.status == 413
    assert b"send smaller batches" in reply.body


def test_an_export_the_store_cannot_take_is_503_and_its_retry_counts_once(
    pg_dsn: str, orders: str
) -> None:
    """A shared PostgreSQL store that stops taking connections: 503 with Retry-After (the
    exporter retries), nothing of the export kept; the retry lands whole, and the same export
    sent once more (its reply lost) is not counted twice."""
    memory = InMemorySpanExporter()
    tp = provider("2.5.0", SimpleSpanProcessor(memory))
    serve_one_request(orders, tp)
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    server = make_server(pg_dsn, port=0, token=WRITE)
    server.start()
    served = Served(server.url, Path())
    name = pg_dsn.rsplit("/", 1)[1]
    try:
        with psycopg.connect(orders.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            refused = post(served, body)
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "5"
        assert post(served, body).status == 200  # the exporter's retry
        assert post(served, body).status == 200  # and again, its reply lost on the way
        windows = server.store.statement_windows(source="otlp", release="2.5.0")
        assert sum(w.calls for w in windows) == LOOPS + 2
        requests = server.store.request_windows(route=ROUTE, release="2.5.0")
        assert sum(r.requests for r in requests) == 1
    finally:
        server.shutdown()
        server.server_close()


# -- helpers --------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes


def post(
    served: Served,
    body: bytes,
    content_type: str = "application/x-protobuf",
    *,
    token: str | None = WRITE,
    encoding: str | None = None,
) -> Reply:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(served.traces, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.headers, exc.read())


def announce_too_much(served: Served) -> int:
    """A body announced over the limit: refused from its Content-Length, after the server has
    read (and dropped) the first megabyte it was sent."""
    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest("POST", "/v1/traces")
        conn.putheader("Content-Type", "application/x-protobuf")
        conn.putheader("Authorization", f"Bearer {WRITE}")
        conn.putheader("Content-Length", str(MAX_OTLP_BODY_BYTES + 1))
        conn.endheaders()
        conn.send(bytes(1024 * 1024))
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def post_protobuf(served: Served, export: ExportTraceServiceRequest) -> Reply:
    return post(served, export.SerializeToString())


def dict_of(attributes: Any) -> dict[str, Any]:
    return {kv.key: kv.value.string_value for kv in attributes}


def otlp_json(export: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON: protobuf's JSON mapping with hex trace and span ids instead of base64."""
    document = json_format.MessageToDict(export)
    for rs in document["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return document
