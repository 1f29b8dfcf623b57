"""Plan judgement against the labelled corpus: recall, false positives, confusion per family.

    .venv/bin/python bench/plans.py --data-dir /tmp/qw-corpus            # persistent cluster
    .venv/bin/python bench/plans.py --data-dir /tmp/qw-corpus --family deep-offset --limit 5
    .venv/bin/python bench/plans.py --dsn postgresql://postgres@host/postgres --json
    .venv/bin/python bench/plans.py                                       # throwaway cluster

Each query of bench/corpus/queries is judged exactly as `querywatch explain --json` judges it
(plain EXPLAIN, the plan rules, HypoPG-validated index advice; querywatch.plans.report
.inspect_query) on the database of its schema. A query is *flagged* when the report has at least
one finding of severity warning or error. Its truth is the label measured by
bench/corpus/label.py (EXPLAIN ANALYZE: slow when the median execution time is ≥ 100 ms).
Recall = flagged slow / slow; false-positive rate = flagged fine / fine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import db  # noqa: E402
from corpus.label import SLOW_MS, read_labels  # noqa: E402
from corpus.queries import CorpusError, load_queries  # noqa: E402
from querywatch.errors import QuerywatchError  # noqa: E402
from querywatch.plans.explain import Explainer  # noqa: E402
from querywatch.plans.report import inspect_query  # noqa: E402

FLAGGING = ("warning", "error")
STATEMENT_TIMEOUT_MS = 5000  # querywatch's default statement_timeout_ms


@dataclass
class Verdict:
    id: str
    family: str
    schema: str
    label: str  # measured: slow | fine
    measured_ms: float
    flagged: bool
    rules: list[str] = field(default_factory=list)  # "severity:rule" of every finding
    advice: list[str] = field(default_factory=list)  # recommended DDL
    error: str | None = None
    seconds: float = 0.0


def judge(explainer: Explainer, sql: str, with_advice: bool) -> tuple[bool, list[str], list[str]]:
    report = inspect_query(explainer, sql, with_advice=with_advice)
    rules = [f"{f.severity}:{f.rule}" for f in report.findings]
    flagged = any(f.severity in FLAGGING for f in report.findings)
    advice = [c.ddl for c in report.advice.recommended] if report.advice else []
    return flagged, rules, advice


@contextlib.contextmanager
def _server(args: argparse.Namespace) -> Iterator[str]:
    if args.dsn:
        yield args.dsn
        return
    with db.cluster(args.data_dir) as dsn:
        yield dsn


def run(args: argparse.Namespace) -> list[Verdict]:
    queries = load_queries(args.family, args.name)
    labels = read_labels()
    unlabelled = [q.id for q in queries if labels.get(q.id, {}).get("digest") != q.digest]
    if unlabelled:
        print(
            f"skipping {len(unlabelled)} unlabelled or changed queries "
            f"(run bench/corpus/label.py): {', '.join(unlabelled[:5])}"
            + (" …" if len(unlabelled) > 5 else ""),
            file=sys.stderr,
        )
    queries = [q for q in queries if q.id not in unlabelled]
    if args.limit:
        queries = queries[: args.limit]
    verdicts: list[Verdict] = []
    with _server(args) as admin:
        dsns = db.ensure_loaded(admin, sorted({q.schema for q in queries}))
        explainers = {
            s: Explainer(d, statement_timeout_ms=STATEMENT_TIMEOUT_MS) for s, d in dsns.items()
        }
        try:
            for q in queries:
                lab = labels[q.id]
                v = Verdict(q.id, q.family, q.schema, lab["label"], lab["median_ms"], False)
                start = time.perf_counter()
                try:
                    v.flagged, v.rules, v.advice = judge(
                        explainers[q.schema], q.sql, not args.no_advice
                    )
                except QuerywatchError as exc:
                    v.error = str(exc).splitlines()[0]
                v.seconds = time.perf_counter() - start
                verdicts.append(v)
                if args.verbose:
                    print(_line(v), file=sys.stderr)
        finally:
            for e in explainers.values():
                e.close()
    return verdicts


def _line(v: Verdict) -> str:
    mark = "FLAG" if v.flagged else "    "
    ok = "ok " if v.flagged == (v.label == "slow") else "BAD"
    rules = ", ".join(v.rules) or (f"error: {v.error}" if v.error else "-")
    return f"{ok} {mark} {v.label:<4} {v.measured_ms:>9.1f} ms  {v.id:<55} {rules}"


def summary(verdicts: list[Verdict]) -> dict[str, Any]:
    slow = [v for v in verdicts if v.label == "slow"]
    fine = [v for v in verdicts if v.label == "fine"]
    tp = sum(v.flagged for v in slow)
    fp = sum(v.flagged for v in fine)
    families: dict[str, dict[str, int]] = {}
    for v in verdicts:
        f = families.setdefault(v.family, {"slow": 0, "caught": 0, "fine": 0, "false_pos": 0})
        if v.label == "slow":
            f["slow"] += 1
            f["caught"] += v.flagged
        else:
            f["fine"] += 1
            f["false_pos"] += v.flagged
    secs = [v.seconds for v in verdicts] or [0.0]
    return {
        "queries": len(verdicts),
        "slow": len(slow),
        "fine": len(fine),
        "threshold_ms": SLOW_MS,
        "true_positives": tp,
        "false_positives": fp,
        "recall": round(tp / len(slow), 3) if slow else None,
        "false_positive_rate": round(fp / len(fine), 3) if fine else None,
        "could_not_check": [v.id for v in verdicts if v.error],
        "seconds_per_query": {
            "mean": round(statistics.fmean(secs), 4),
            "median": round(statistics.median(secs), 4),
            "max": round(max(secs), 4),
        },
        "families": dict(sorted(families.items())),
        "misses": [v.id for v in slow if not v.flagged],
        "false_positive_ids": [v.id for v in fine if v.flagged],
    }


def print_text(verdicts: list[Verdict], s: dict[str, Any], markdown: bool) -> None:
    print(
        f"{s['queries']} queries ({s['slow']} slow, {s['fine']} fine; slow = median EXPLAIN "
        f"ANALYZE ≥ {s['threshold_ms']:.0f} ms)"
    )
    print(
        f"recall               {s['recall']}  ({s['true_positives']} of {s['slow']} slow flagged)"
    )
    print(
        f"false-positive rate  {s['false_positive_rate']}  "
        f"({s['false_positives']} of {s['fine']} fine flagged)"
    )
    t = s["seconds_per_query"]
    print(
        f"time per query       mean {t['mean'] * 1000:.0f} ms, median "
        f"{t['median'] * 1000:.0f} ms, max {t['max'] * 1000:.0f} ms"
    )
    if s["could_not_check"]:
        print(
            f"could not check      {len(s['could_not_check'])}: {', '.join(s['could_not_check'])}"
        )
    print()
    if markdown:
        print("| family | slow | caught | fine | false positives |")
        print("|---|---:|---:|---:|---:|")
        for name, f in s["families"].items():
            print(f"| {name} | {f['slow']} | {f['caught']} | {f['fine']} | {f['false_pos']} |")
    else:
        print(f"{'family':<34} {'slow':>5} {'caught':>7} {'fine':>5} {'FP':>4}")
        for name, f in s["families"].items():
            print(f"{name:<34} {f['slow']:>5} {f['caught']:>7} {f['fine']:>5} {f['false_pos']:>4}")
    by_id = {v.id: v for v in verdicts}
    for title, ids in (("misses", s["misses"]), ("false positives", s["false_positive_ids"])):
        print(f"\n{title} ({len(ids)}):")
        for i in ids:
            print("  " + _line(by_id[i]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--dsn", help="admin DSN of a running server (corpus loaded if missing)")
    where.add_argument(
        "--data-dir", type=Path, help="persistent cluster directory: created once, then reused"
    )
    ap.add_argument("--family", action="append", help="only this family (repeatable)")
    ap.add_argument("--name", action="append", help="only query ids containing this (repeatable)")
    ap.add_argument("--limit", type=int, help="at most this many queries")
    ap.add_argument("--no-advice", action="store_true", help="skip HypoPG index advice")
    ap.add_argument("--json", action="store_true", help="one JSON object: summary and verdicts")
    ap.add_argument("--markdown", action="store_true", help="per-family table as Markdown")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per query as it runs")
    args = ap.parse_args(argv)
    try:
        verdicts = run(args)
    except (CorpusError, QuerywatchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = summary(verdicts)
    if args.json:
        print(json.dumps({"summary": s, "verdicts": [asdict(v) for v in verdicts]}, indent=1))
    else:
        print_text(verdicts, s, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
