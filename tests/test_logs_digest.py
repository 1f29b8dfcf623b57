"""The digest's bounds: memory grows with fingerprints, not with the log's length or span."""

from __future__ import annotations

import pickle

import pytest

from querywatch.logs import digest as digest_module
from querywatch.logs.digest import OTHER, Digest, phases_between
from querywatch.logs.model import LogStatement

T0 = 1_780_000_000.0


def statements(n: int, *, every_s: float = 1.0, shapes: int = 3) -> list[LogStatement]:
    return [
        LogStatement(T0 + i * every_s, 1.0 + i % 7, f"SELECT * FROM t{i % shapes} WHERE id = {i}")
        for i in range(n)
    ]


def test_a_long_span_keeps_a_bounded_chart_series() -> None:
    d = Digest()
    d.consume(statements(60_000, every_s=60.0))  # 60,000 minutes: six weeks
    assert len(d.per_minute) <= digest_module.MAX_BUCKETS
    assert d.minute_width > 60 and d.minute_width % 60 == 0
    assert sum(calls for calls, _ in d.per_minute.values()) == 60_000
    assert sum(ms for _, ms in d.per_minute.values()) == pytest.approx(
        sum(1.0 + i % 7 for i in range(60_000))
    )


def test_fingerprints_past_the_limit_fold_into_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digest_module, "MAX_FINGERPRINTS", 5)
    d = Digest()
    d.consume(statements(100, shapes=50))
    rows = d.rows()
    assert len(rows) == 6 and sum(r.calls for r in rows) == 100
    assert any(r.fingerprint == OTHER for r in rows)


def test_merged_pieces_equal_one_pass() -> None:
    records = statements(3_000)
    one = Digest()
    one.consume(records)
    merged = Digest()
    for part in (records[:1000], records[1000:2200], records[2200:]):
        piece = Digest()
        piece.consume(part)
        merged.merge(pickle.loads(pickle.dumps(piece)))  # as a worker hands it back
    for a, b in zip(one.rows(), merged.rows(), strict=True):
        assert (a.fingerprint, a.calls, a.max_ms, a.min_ms, a.first_seen, a.last_seen) == (
            b.fingerprint,
            b.calls,
            b.max_ms,
            b.min_ms,
            b.first_seen,
            b.last_seen,
        )
        assert a.total_ms == pytest.approx(b.total_ms) and a.sketch == b.sketch
        assert a.slowest is not None and b.slowest is not None
        assert a.slowest.duration_ms == b.slowest.duration_ms
    assert one.per_minute == merged.per_minute and one.span == merged.span


def test_deploys_cut_phases_at_their_start() -> None:
    phases = phases_between([(T0 + 100, "deploy v2"), (T0 + 50, "deploy v1")])
    assert [p.label for p in phases] == ["before deploy v1", "after deploy v1", "after deploy v2"]
    d = Digest(phases=phases)
    d.consume(statements(150, shapes=1))
    assert [sum(r.calls for r in d.rows(i)) for i in range(3)] == [50, 50, 50]
    assert sum(r.calls for r in d.all_rows()) == 150
