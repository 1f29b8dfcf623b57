"""Run the main corpus tooling (label.py, plans.py) on the second held-out set in this directory.

    .venv/bin/python bench/holdout2/run.py label --data-dir /tmp/qw-holdout2     # measure
    .venv/bin/python bench/holdout2/run.py plans --data-dir /tmp/qw-holdout2 -v  # judge

Everything after the sub-command is passed to bench/corpus/label.py or bench/plans.py unchanged;
only where they read schemas, queries and labels is pointed here (schema/, queries/,
labels.json), so the held-out set is labelled and judged by exactly the same code and threshold
as the main corpus, without editing it.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
sys.path.insert(0, str(BENCH))

from corpus import db, label, queries  # noqa: E402

# (module, global, value): the only places the main tooling names its directory.
REQUIRED = (
    (db, "SCHEMA_DIR", HERE / "schema"),
    (queries, "QUERY_DIR", HERE / "queries"),
    (label, "LABELS", HERE / "labels.json"),
)
OPTIONAL = ((queries, "SCHEMA_DIR", HERE / "schema"),)


def point_here() -> None:
    for module, name, value in REQUIRED:
        if not hasattr(module, name):
            raise SystemExit(f"error: {module.__name__}.{name} is gone; update {__file__}")
        setattr(module, name, value)
    for module, name, value in OPTIONAL:
        if hasattr(module, name):
            setattr(module, name, value)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("label", "plans"):
        print("usage: run.py label|plans [options of bench/corpus/label.py or bench/plans.py]")
        return 2
    point_here()
    if argv[0] == "label":
        return label.main(argv[1:])
    import plans

    return plans.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
