"""The thresholds plan rules and index advice judge by, in one place (docs/plans.md lists them).

Every threshold is a size (rows, bytes), a ratio or a cost, never a name: the same query passes on
a 10,000-row table and is flagged on a 10-million-row one because the figures cross these lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from querywatch.plans.catalog import RelationInfo


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    """Thresholds of the plan rules and of index advice."""

    large_table_rows: float = 100_000
    """A relation with at least this many rows is large: a full read of it costs real time."""
    large_table_bytes: int = 1 << 30
    """…or one of at least this many bytes (1 GiB), whatever its row count."""
    selective_fraction: float = 0.01
    """A predicate is selective when it keeps at most this fraction of the relation (1%)."""
    nested_loop_inner_rows: float = 1_000_000
    """Rows read over all executions of a loop's inner side or a SubPlan that count as heavy."""
    deep_offset_rows: int = 100_000
    """An OFFSET that makes the database produce and throw away at least this many rows."""
    misestimate_factor: float = 100
    """Estimated vs actual rows differing by this factor or more is a wrong estimate."""
    misestimate_min_rows: float = 1_000
    """…when the larger of the two is at least this many rows (small nodes cannot hurt)."""
    few_rows: float = 1_000
    """A result of at most this many rows is "a few" (a page, a top-N, a count)."""
    work_ratio: float = 100
    """Rows processed per row returned from which a sort, hash or aggregate is disproportionate."""
    fanout_factor: float = 10
    """A join whose output a DISTINCT/GROUP BY shrinks by this factor or more fanned out."""
    large_result_rows: float = 100_000
    """A statement sending at least this many rows to the client is an unbounded read…"""
    large_result_bytes: float = 64 << 20
    """…or one sending at least this many bytes (64 MiB) of rows."""
    wide_rows_factor: float = 4
    """Rows held or read at least this many times wider than the columns used are wide…"""
    wide_rows_bytes: float = 64 << 20
    """…when the bytes carried beyond those columns reach this much (64 MiB) in a Sort, Hash,
    Materialize or materialized CTE (a scan: ``large_table_bytes`` of heap read)."""
    heavy_read_rows: float = 1_000_000
    """Rows a plan reads in all (every scan, every loop) from which it is heavy…"""
    heavy_read_ratio: float = 10
    """…when it returns at most one row for this many read."""
    index_verdict_factor: float = 10
    """A validated index that makes the plan this many times cheaper is a finding on its own."""
    index_verdict_min_cost: float = 10_000
    """…when the plan costs at least this much: about 50 ms at the median speed measured on the
    plan corpus (5.2 ms per 1,000 cost units), within a factor 2 of a 100 ms request; cheaper
    plans are not worth an error or advice."""
    min_improvement: float = 0.30
    """Index advice: a candidate must cut the estimated cost by at least this fraction (30%)."""
    min_advice_rows: float = 10_000
    """Index advice: relations smaller than this get no candidates (a full read is cheap)."""
    max_candidates: int = 8
    """Index advice: at most this many candidates validated per statement."""

    def is_large(self, info: RelationInfo | None) -> bool:
        if info is None:
            return False
        return (info.rows or 0) >= self.large_table_rows or (
            info.size_bytes or 0
        ) >= self.large_table_bytes
