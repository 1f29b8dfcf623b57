"""pg_stat_statements as data: entry keys, the view's columns per version, the poll queries,
counters and the arithmetic of one entry's delta, and the state encoding of one entry.

Kept apart from the source (``pg_stat_statements.py``), which connects, polls and keeps the
snapshot, so each can be read on its own.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from querywatch import pg
from querywatch.errors import SourceError

Key = int
"""One entry of this database: (userid, queryid, toplevel) packed into one int by :func:`key_of`
(a tuple of three would cost more than the entry's counters, for every entry, twice)."""

_TOP = {None: 0, False: 1, True: 2}  # toplevel is None before PostgreSQL 14
_TOP_OF = (None, False, True)
_U64 = 1 << 64


def key_of(userid: int, queryid: int, toplevel: bool | None) -> Key:
    """queryid is a signed 64-bit int and userid an oid (32 bits)."""
    return ((queryid % _U64) << 34) | (userid << 2) | _TOP[toplevel]


def key_parts(key: Key) -> tuple[int, int, bool | None]:
    """(userid, queryid, toplevel) of a :func:`key_of` key."""
    queryid = key >> 34
    return (
        (key >> 2) & 0xFFFF_FFFF,
        queryid - _U64 if queryid >= 1 << 63 else queryid,
        _TOP_OF[key & 3],
    )


Raw = bytes
"""One entry's counters as read, in :class:`Counters` field order, packed by :func:`pack`: the
seven numbers as 56 bytes, then the two PostgreSQL 17 stamps when there are any. One bytes
object per entry, where a tuple of the row's values was ten objects (about 300 bytes against
110, for every entry the snapshot holds). An entry whose record equals the last one did nothing,
and costs no more than that comparison."""

_NUMBERS = struct.Struct("<qdddqqq")  # calls, total, min, max (ms), rows, blocks hit, read


def pack(values: Sequence[Any], at: int = 0) -> Raw:
    """The :data:`Raw` record of ``values[at:at + 9]`` (a row's counters, in field order)."""
    numbers = _NUMBERS.pack(
        values[at],
        values[at + 1],
        values[at + 2],
        values[at + 3],
        values[at + 4],
        values[at + 5],
        values[at + 6],
    )
    since, minmax = values[at + 7], values[at + 8]
    if since is None and minmax is None:
        return numbers
    # "" stands for None: a stamp is never empty text.
    return numbers + f"{since or ''}\x00{minmax or ''}".encode()


def unpack(raw: Raw) -> tuple[Any, ...]:
    """The nine values :func:`pack` packed (stamps None when absent)."""
    numbers = _NUMBERS.unpack_from(raw)
    if len(raw) == _NUMBERS.size:
        return (*numbers, None, None)
    since, minmax = raw[_NUMBERS.size :].decode().split("\x00")
    return (*numbers, since or None, minmax or None)


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which pg_stat_statements columns hold what, on the server's version of the extension.

    13+: ``*_exec_time``; 12 and older: ``*_time``; 14 added ``toplevel``; 17 renamed
    ``blk_read_time`` to ``shared_blk_read_time`` and added ``stats_since`` /
    ``minmax_stats_since`` (per-entry reset markers).
    """

    total_time: str
    min_time: str
    max_time: str
    blk_read_time: str | None
    toplevel: bool
    stats_since: bool
    minmax_stats_since: bool


_REQUIRED = ("userid", "dbid", "queryid", "calls", "rows", "shared_blks_hit", "shared_blks_read")


def map_columns(columns: Collection[str]) -> ColumnMap:
    """Build the :class:`ColumnMap` from the view's column names (detected once per connection)."""
    cols = set(columns)
    missing = [c for c in _REQUIRED if c not in cols]
    if "total_exec_time" in cols:
        times = ("total_exec_time", "min_exec_time", "max_exec_time")
    elif "total_time" in cols:
        times = ("total_time", "min_time", "max_time")
    else:
        missing.append("total_exec_time")
        times = ("", "", "")
    missing += [c for c in times if c and c not in cols]
    if missing:
        raise SourceError(
            "unsupported pg_stat_statements version: missing column(s) " + ", ".join(missing)
        )
    if "shared_blk_read_time" in cols:
        blk: str | None = "shared_blk_read_time"
    elif "blk_read_time" in cols:
        blk = "blk_read_time"
    else:
        blk = None
    return ColumnMap(
        total_time=times[0],
        min_time=times[1],
        max_time=times[2],
        blk_read_time=blk,
        toplevel="toplevel" in cols,
        stats_since="stats_since" in cols,
        minmax_stats_since="minmax_stats_since" in cols,
    )


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_CURRENT_DB = "(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())"


def counters_sql(schema: str, cmap: ColumnMap) -> str:
    """The poll query: counters of this database's entries, without query texts.

    ``pg_stat_statements(false)`` skips reading the query-text file, the expensive part on a busy
    server; texts are fetched only for entries not seen before (:func:`texts_sql`). Only the
    counters deltas are made of are read (each column costs every entry, every poll).
    """
    cols = [
        "userid::bigint",
        "dbid::bigint",
        "queryid",
        "toplevel" if cmap.toplevel else "NULL::boolean",
        "calls",
        cmap.total_time,
        cmap.min_time,
        cmap.max_time,
        "rows",
        "shared_blks_hit",
        "shared_blks_read",
        "stats_since::text" if cmap.stats_since else "NULL::text",
        "minmax_stats_since::text" if cmap.minmax_stats_since else "NULL::text",
    ]
    return pg.tagged(
        f"SELECT {', '.join(cols)} FROM {ident(schema)}.pg_stat_statements(false) "
        f"WHERE dbid = {_CURRENT_DB}"
    )


def texts_sql(schema: str, cmap: ColumnMap) -> str:
    """Query texts for a list of queryids (parameter: bigint[])."""
    toplevel = "toplevel" if cmap.toplevel else "NULL::boolean"
    return pg.tagged(
        f"SELECT userid::bigint, dbid::bigint, queryid, {toplevel}, query "
        f"FROM {ident(schema)}.pg_stat_statements(true) "
        f"WHERE dbid = {_CURRENT_DB} AND queryid = ANY(%s::bigint[])"
    )


@dataclass(slots=True)
class Counters:
    """One entry's cumulative counters at one poll."""

    calls: int
    total_ms: float
    min_ms: float
    max_ms: float
    rows: int
    blks_hit: int
    blks_read: int
    stats_since: str | None = None
    minmax_since: str | None = None

    @classmethod
    def of(cls, raw: Raw) -> Counters:
        return cls(*unpack(raw))

    def restarted_since(self, prev: Counters) -> bool:
        """True when this entry was reset or evicted and re-created after ``prev`` was taken."""
        since = (self.stats_since, prev.stats_since)
        if None not in since and since[0] != since[1]:
            return True
        return (
            self.calls < prev.calls
            or self.total_ms < prev.total_ms
            or self.rows < prev.rows
            or self.blks_hit < prev.blks_hit
            or self.blks_read < prev.blks_read
        )


@dataclass(slots=True)
class _Delta:
    calls: int
    total_ms: float
    min_ms: float
    max_ms: float
    rows: int
    blks_hit: int
    blks_read: int


def entry_delta(cur: Counters, prev: Counters | None) -> _Delta | None:
    """What happened to one entry between two snapshots; ``None`` when nothing did.

    ``prev`` is None for an entry that is new (or whose baseline was lost to a reset): then its
    current counters are exactly what happened since it was created. pg_stat_statements' min/max
    are cumulative, so they describe this interval only when they moved (or the entry is new);
    otherwise the interval's mean stands in for both (a lower bound for max, upper bound for min).
    """
    if prev is not None and cur.restarted_since(prev):
        prev = None
    if prev is None:
        if cur.calls <= 0:
            return None
        return _Delta(
            cur.calls,
            cur.total_ms,
            cur.min_ms,
            max(cur.max_ms, cur.min_ms),
            cur.rows,
            cur.blks_hit,
            cur.blks_read,
        )
    calls = cur.calls - prev.calls
    if calls <= 0:
        return None
    total = max(cur.total_ms - prev.total_ms, 0.0)
    mean = total / calls
    minmax_reset = cur.minmax_since != prev.minmax_since
    if calls == 1:
        lo = hi = mean
    else:
        hi = cur.max_ms if (cur.max_ms > prev.max_ms or minmax_reset) else mean
        lo = cur.min_ms if (cur.min_ms < prev.min_ms or minmax_reset) else mean
    return _Delta(
        calls,
        total,
        min(lo, mean),
        max(hi, mean),
        cur.rows - prev.rows,
        cur.blks_hit - prev.blks_hit,
        cur.blks_read - prev.blks_read,
    )


_KEY_BYTES = 13  # a key_of key: 64-bit queryid, 32-bit userid and two bits of toplevel
_BATCH = 512  # records joined before they go to the compressor


def encode_entries(entries: Iterable[tuple[Key, Raw]]) -> str:
    """The snapshot's entries as text for the state row: each entry's key and :data:`Raw` record
    (length-prefixed), zlib-compressed, base64. Written after every poll, for every entry: as
    JSON, 10,000 entries were a megabyte of text built beside a list of their strings; this is
    about a third of that, built a batch at a time."""
    packer = zlib.compressobj(1)
    out: list[bytes] = []
    batch: list[bytes] = []
    for key, raw in entries:
        batch.append(key.to_bytes(_KEY_BYTES, "little") + bytes((len(raw),)) + raw)
        if len(batch) == _BATCH:
            out.append(packer.compress(b"".join(batch)))
            batch.clear()
    out.append(packer.compress(b"".join(batch)))
    out.append(packer.flush())
    return base64.b64encode(b"".join(out)).decode("ascii")


def decode_entries(text: str) -> Iterator[tuple[Key, Raw]]:
    """The entries :func:`encode_entries` wrote; ``ValueError`` when the text is not that."""
    try:
        data = zlib.decompress(base64.b64decode(text, validate=True))
    except (binascii.Error, zlib.error) as exc:
        raise ValueError(f"entries are not readable: {exc}") from None
    at = 0
    while at < len(data):
        size = data[at + _KEY_BYTES] if at + _KEY_BYTES < len(data) else -1
        end = at + _KEY_BYTES + 1 + size
        if size < _NUMBERS.size or end > len(data):
            raise ValueError("entries are cut short")
        yield int.from_bytes(data[at : at + _KEY_BYTES], "little"), data[end - size : end]
        at = end
