"""``POST /v1/traces``: OpenTelemetry's OTLP/HTTP traces endpoint on `querywatch serve`.

The path and content types the OTLP/HTTP exporters use by default, so an SDK or a Collector
exports here by URL and header alone: protobuf (``application/x-protobuf``) or OTLP's JSON
(``application/json``: hex trace and span ids, lowerCamelCase names, 64-bit integers as
strings), each optionally compressed with gzip or deflate (zlib). The spans become windows through
:mod:`querywatch.capture.otlp_spans`; this module is the HTTP side.

Answers follow the OTLP/HTTP specification, in the encoding of the request: ``200`` with an
``ExportTraceServiceResponse`` (``partial_success`` counts refused spans and says why), and for
a failure a ``google.rpc.Status`` with the same message: ``400`` for a body that does not decode,
``401``/``403`` for a missing or wrong token, ``413`` past the size limits, ``415`` for another
content type or encoding, ``503`` (retryable, ``Retry-After``) when the store cannot be written.
Exporting writes to the store, so it needs the write token (``api_token``) like every action;
the read token gets ``403``. The app's Guard still applies first (Origin, Host, Content-Length),
with :data:`MAX_OTLP_BODY_BYTES` instead of the API's 64 KiB.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import zlib
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from querywatch.capture.otlp_spans import Received, SpanReceiver, write_batch
from querywatch.config import DEFAULT_SLO_MS
from querywatch.errors import StoreError
from querywatch.web.api import Refused, printable, read_body
from querywatch.web.auth import Forbidden, NotSignedIn, require_write
from querywatch.web.state import web_state

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

OTLP_PATH = "/v1/traces"
MAX_OTLP_BODY_BYTES = 4 * 1024 * 1024
"""An export as sent (compressed or not); past it, ``413``. A Collector's batch processor with
``send_batch_max_size: 2048`` stays well under it."""
MAX_OTLP_DECODED_BYTES = 16 * 1024 * 1024
"""An export once decompressed: a small gzip body must not unpack into gigabytes."""
RETRY_AFTER_S = 5
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_INSTALL = "the OTLP receiver needs the opentelemetry-proto package: pip install 'querywatch[otlp]'"
# google.rpc.Code for each HTTP status we answer with.
_RPC_CODES = {400: 3, 401: 16, 403: 7, 408: 4, 413: 8, 415: 3, 500: 13, 501: 12, 503: 14}
_ID_FIELDS = {"traceId": 16, "trace_id": 16, "spanId": 8, "span_id": 8}
_ID_FIELDS |= {"parentSpanId": 8, "parent_span_id": 8}

log = logging.getLogger("querywatch.web")
_receiver_lock = threading.Lock()


class OtlpError(Exception):
    """An export refused with ``status``; the message goes back as a ``google.rpc.Status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def otlp_routes() -> list[BaseRoute]:
    return [Route(OTLP_PATH, traces, methods=["POST"])]


async def traces(request: Request) -> Response:
    """One export: check, read, decode, turn into windows, answer."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    json_body = content_type != PROTOBUF
    try:
        require_write(request)
        if content_type not in (PROTOBUF, JSON):
            shown = printable(content_type) or "none"
            raise OtlpError(415, f"Content-Type must be {PROTOBUF} or {JSON} (got {shown})")
        proto = _proto()
        data = _decompress(await _body(request), request.headers.get("content-encoding", ""))
        export = _decode_json(proto, data) if json_body else _decode_protobuf(proto, data)
        received = await run_in_threadpool(_receive, request, export, data)
    except OtlpError as exc:
        return _status(exc.status, str(exc), json_body, exc.headers)
    except NotSignedIn as exc:
        challenge = {"WWW-Authenticate": 'Bearer realm="querywatch"'}
        return _status(401, str(exc), json_body, challenge)
    except Forbidden as exc:
        return _status(403, str(exc), json_body)
    return _success(proto, received, json_body)


def _receive(request: Request, export: ExportTraceServiceRequest, data: bytes) -> Received:
    state = web_state(request)
    try:
        received = _receiver(request).receive(
            export.resource_spans,
            lambda batch: write_batch(state.store, batch),
            body=data,
            now_ns=int(state.clock() * 1e9),
        )
    except StoreError as exc:  # the exporter retries: nothing of the batch was written
        log.error("store unavailable, OTLP export refused: %s", exc)
        retry = {"Retry-After": str(RETRY_AFTER_S)}
        raise OtlpError(503, "the store is unavailable: retry later", retry) from None
    except Exception:
        log.exception("internal error while reading an OTLP export")
        raise OtlpError(500, "internal error: see the server log") from None
    if received.rejected:
        log.info("OTLP export: %s", received.message)
    return received


def _receiver(request: Request) -> SpanReceiver:
    """The server's one receiver (its memory of recent spans spans exports), made on first use."""
    app_state = request.app.state
    with _receiver_lock:
        receiver = getattr(app_state, "qw_otlp_receiver", None)
        if not isinstance(receiver, SpanReceiver):
            settings = web_state(request).settings
            receiver = SpanReceiver(slo_ms=float(settings.get("slo_ms") or DEFAULT_SLO_MS))
            app_state.qw_otlp_receiver = receiver
        return receiver


def _proto() -> Any:
    """The protobuf classes, imported on first use: the core install does without them."""
    try:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    except ImportError:
        log.warning("OTLP export refused: %s", _INSTALL)
        raise OtlpError(501, _INSTALL) from None
    return trace_service_pb2


async def _body(request: Request) -> bytes:
    try:
        return await read_body(request)  # the Guard has bounded it by MAX_OTLP_BODY_BYTES
    except Refused as refused:  # a stalled body: 408
        raise OtlpError(refused.answer.status, str(refused)) from None


def _decompress(data: bytes, encoding: str) -> bytes:
    """The body as the exporter encoded it before compressing, at most MAX_OTLP_DECODED_BYTES."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return data
    if name not in ("gzip", "deflate", "zlib"):
        shown = printable(name)
        raise OtlpError(
            415, f"Content-Encoding {shown!r} is not supported: use gzip, deflate or none"
        )
    wbits = 16 + zlib.MAX_WBITS if name == "gzip" else zlib.MAX_WBITS
    limit = MAX_OTLP_DECODED_BYTES
    out = bytearray()
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise OtlpError(
                    413, f"the body unpacks to more than {limit} bytes: send smaller batches"
                )
            if not inflater.eof:
                raise OtlpError(400, f"the {name} body is cut short")
            data = inflater.unused_data  # gzip allows several members, one after the other
            if not data:
                return bytes(out)
    except zlib.error as exc:
        raise OtlpError(400, f"the body is not valid {name}: {exc}") from None


def _decode_protobuf(proto: Any, data: bytes) -> ExportTraceServiceRequest:
    try:
        export: ExportTraceServiceRequest = proto.ExportTraceServiceRequest.FromString(data)
    except Exception as exc:  # DecodeError, or nesting past protobuf's recursion limit
        raise OtlpError(400, f"the body is not an OTLP ExportTraceServiceRequest: {exc}") from None
    return export


def _decode_json(proto: Any, data: bytes) -> ExportTraceServiceRequest:
    """OTLP's JSON mapping: protobuf's, except that trace and span ids are hex, not base64."""
    from google.protobuf import json_format

    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
        raise OtlpError(400, f"malformed JSON: {_first_line(exc)}") from None
    if not isinstance(document, dict):
        raise OtlpError(400, "the body must be a JSON object (an ExportTraceServiceRequest)")
    for span in _spans(document):
        _hex_ids(span)
        for link in _items(span, "links"):
            _hex_ids(link)
    export: ExportTraceServiceRequest = proto.ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, export, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise OtlpError(400, f"not an OTLP ExportTraceServiceRequest: {_first_line(exc)}") from None
    return export


def _spans(document: dict[str, Any]) -> list[Any]:
    return [
        span
        for rs in _items(document, "resourceSpans", "resource_spans")
        for ss in _items(rs, "scopeSpans", "scope_spans")
        for span in _items(ss, "spans")
    ]


def _items(obj: Any, *names: str) -> list[Any]:
    """A repeated field under either of its JSON names; anything malformed is ParseDict's to
    refuse."""
    if isinstance(obj, dict):
        for name in names:
            value = obj.get(name)
            if isinstance(value, list):
                return value
    return []


def _hex_ids(obj: Any) -> None:
    """Hex ids to the base64 protobuf's JSON parser reads for bytes fields."""
    if not isinstance(obj, dict):
        return
    for name in _ID_FIELDS:
        value = obj.get(name)
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raise OtlpError(400, f"{name} {printable(value, 40)!r} is not hex") from None
            obj[name] = base64.b64encode(raw).decode("ascii")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


# -- answers --------------------------------------------------------------------------------------


def _success(proto: Any, received: Received, json_body: bool) -> Response:
    answer = proto.ExportTraceServiceResponse()
    if received.rejected or received.message:
        answer.partial_success.rejected_spans = received.rejected
        answer.partial_success.error_message = received.message
    if json_body:
        from google.protobuf import json_format

        body = json.dumps(json_format.MessageToDict(answer), separators=(",", ":")).encode()
        return Response(body, 200, media_type=JSON)
    return Response(answer.SerializeToString(), 200, media_type=PROTOBUF)


def _status(
    status: int, message: str, json_body: bool, headers: dict[str, str] | None = None
) -> Response:
    """A failure as OTLP/HTTP wants it: a ``google.rpc.Status`` in the request's encoding."""
    code = _RPC_CODES.get(status, 2)  # 2: UNKNOWN
    if json_body:
        body = json.dumps({"code": code, "message": message}).encode()
        return Response(body, status, headers, JSON)
    return Response(_status_protobuf(code, message), status, headers, PROTOBUF)


def _status_protobuf(code: int, message: str) -> bytes:
    """``google.rpc.Status{code = 1; message = 2}`` encoded by hand (its class lives in another
    package, googleapis-common-protos, that the receiver does not need otherwise)."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
