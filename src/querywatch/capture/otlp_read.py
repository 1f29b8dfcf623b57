"""Reading OTLP spans: what querywatch needs of each, as plain values.

Only the attributes querywatch reads are decoded (a span's others are skipped); client-supplied
text (routes, users, call sites, releases) is cut short and made printable on one line. A span
whose ids or times cannot be right is refused, with the reason OTLP's partial success reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from querywatch.records import CallSite

if TYPE_CHECKING:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

MAX_TEXT = 300  # characters kept of a route, user, path or function name
MAX_RELEASE_CHARS = 100  # as the middleware keeps of a release header
FUTURE_SLACK_NS = 3600 * 10**9  # a span ending further ahead of our clock is refused
MAX_SITES_KEPT = 10_000  # call sites remembered by their raw attributes

#: ``db.system`` / ``db.system.name`` values whose statements querywatch fingerprints.
DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}

_SERVER, _CONSUMER = 2, 5  # Span.SpanKind
_STATUS_ERROR = 2  # Status.StatusCode
_NO_SPAN = bytes(8)
_STATEMENT = ("db.query.text", "db.statement")
_SYSTEM = ("db.system.name", "db.system")
_ROWS = "db.response.returned_rows"
_ROUTE = "http.route"
_USER = ("user.id", "enduser.id")
_FILE = ("code.file.path", "code.filepath")
_LINE = ("code.line.number", "code.lineno")
_FUNCTION = ("code.function.name", "code.function")
_NAMESPACE = "code.namespace"
_VERSION = "service.version"
_RESOURCE = frozenset((_VERSION,))
_WANTED = frozenset(
    (*_STATEMENT, *_SYSTEM, _ROWS, _ROUTE, *_USER, *_FILE, *_LINE, *_FUNCTION, _NAMESPACE)
)

SpanKey = tuple[bytes, bytes]
"""(trace id, span id)."""

_sites: dict[tuple[object, ...], CallSite] = {}


@dataclass(slots=True)
class SpanFacts:
    """What querywatch reads of one span."""

    key: SpanKey
    parent: SpanKey | None
    end_ns: int
    duration_ns: int
    error: bool
    release: str
    route: str | None = None  # a request (SERVER or CONSUMER span)
    user: str | None = None
    statement: str | None = None  # a database span of a dialect querywatch reads
    dialect: str = ""
    rows: int = 0
    site: CallSite | None = None


def read_spans(
    resource_spans: Iterable[ResourceSpans], now_ns: int
) -> tuple[list[SpanFacts], Counter[str]]:
    """The spans querywatch can place, and why the others were refused."""
    spans: list[SpanFacts] = []
    refused: Counter[str] = Counter()
    for rs in resource_spans:
        version = _text(_attributes(rs.resource.attributes, _RESOURCE).get(_VERSION))
        release = (version or "")[:MAX_RELEASE_CHARS]
        for ss in rs.scope_spans:
            for span in ss.spans:
                problem = _problem(span, now_ns)
                if problem is not None:
                    refused[problem] += 1
                    continue
                spans.append(_span(span, release))
    return spans, refused


def _problem(span: Span, now_ns: int) -> str | None:
    if len(span.trace_id) != 16 or len(span.span_id) != 8 or not any(span.span_id):
        return "an invalid trace or span id"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return "an invalid parent span id"
    if span.start_time_unix_nano == 0 or span.end_time_unix_nano < span.start_time_unix_nano:
        return "no start time, or an end time before it"
    if span.end_time_unix_nano > now_ns + FUTURE_SLACK_NS:
        return "an end time over an hour ahead of this server's clock"
    return None


def _span(span: Span, release: str) -> SpanFacts:
    attrs = _attributes(span.attributes)
    trace, parent = span.trace_id, span.parent_span_id
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    s = SpanFacts(
        key=(trace, span.span_id),
        parent=(trace, parent) if parent and parent != _NO_SPAN else None,
        end_ns=end,
        duration_ns=end - start,
        error=span.status.code == _STATUS_ERROR,
        release=release,
    )
    kind = span.kind
    if kind in (_SERVER, _CONSUMER):
        s.route = _text(attrs.get(_ROUTE)) or _text(span.name) or "<unnamed>"
        s.user = _first_text(attrs, _USER)
        return s
    if not attrs:
        return s
    statement = _first(attrs, _STATEMENT)
    dialect = DIALECTS.get(str(_first(attrs, _SYSTEM)).lower())
    if isinstance(statement, str) and statement.strip() and dialect is not None:
        s.statement, s.dialect = statement, dialect
        rows = attrs.get(_ROWS)
        s.rows = rows if isinstance(rows, int) and rows > 0 else 0
        s.site = _call_site(attrs)
    return s


def _call_site(attrs: dict[str, object]) -> CallSite | None:
    """The span's ``code.*`` attributes as a call site (the same few repeat: kept, bounded)."""
    path = _first(attrs, _FILE)
    if path is None:
        return None
    raw = (path, _first(attrs, _LINE), _first(attrs, _FUNCTION), attrs.get(_NAMESPACE))
    site = _sites.get(raw)
    if site is None:
        site = _new_call_site(*raw)
        if site is not None:
            if len(_sites) >= MAX_SITES_KEPT:
                _sites.clear()
            _sites[raw] = site
    return site


def _new_call_site(
    path: object, line: object, function: object, namespace: object
) -> CallSite | None:
    where = _text(path)
    if where is None:
        return None
    name = _text(function) or "?"
    prefix = _text(namespace)
    if prefix and not name.startswith(prefix):
        name = _text(f"{prefix}.{name}") or name
    return CallSite(where, line if isinstance(line, int) and line > 0 else 0, name)


def _attributes(kvs: Iterable[KeyValue], wanted: frozenset[str] = _WANTED) -> dict[str, object]:
    """The attributes querywatch reads, as Python values (the others are never decoded)."""
    found: dict[str, object] = {}
    for kv in kvs:
        key = kv.key
        if key in wanted:
            found[key] = _value(kv.value)
    return found


def _value(v: AnyValue) -> object:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind in ("string_value", "int_value", "bool_value") else None


def _first(attrs: dict[str, object], names: tuple[str, ...]) -> object:
    for name in names:
        if name in attrs:
            return attrs[name]
    return None


def _first_text(attrs: dict[str, object], names: tuple[str, ...]) -> str | None:
    return _text(_first(attrs, names))


def _text(value: object) -> str | None:
    """A short, printable, one-line text from a client's attribute (None when empty)."""
    if not isinstance(value, str):
        return None
    if len(value) > MAX_TEXT or not value.isprintable():
        value = "".join(c if c.isprintable() else " " for c in value[: MAX_TEXT * 2])
    return value.strip()[:MAX_TEXT] or None


def refusal_message(refused: Counter[str]) -> str:
    """OTLP's partial-success message: how many spans were refused, for which reasons."""
    if not refused:
        return ""
    reasons = "; ".join(f"{n} with {why}" for why, n in refused.most_common())
    return f"{sum(refused.values())} spans rejected: {reasons}"
