"""The shop's runbook commands, run by querywatch as a separate process like any runbook step.

    python -m querywatch.demo.shop.maintenance flush-cache [LOCATION]

LOCATION defaults to ``$QUERYWATCH_SHOP``, so a PostgreSQL DSN with a password need not appear
on a command line (or on the incident timeline, which records the command).

``flush-cache`` is the report's "database cache flush": after the bad release the database's
caches and statistics are full of the full scans it ran. On SQLite it checkpoints and truncates
the write-ahead log, releases the page cache and refreshes the planner's statistics
(``PRAGMA optimize``); on PostgreSQL it refreshes the statistics of the shop's tables (ANALYZE)
and discards cached plans of its own session. It prints what it did, which querywatch records on
the incident's timeline.
"""

from __future__ import annotations

import os
import sys
import time

from querywatch.demo.shop.db import PG_SCHEMA, connect, is_postgres

SHOP_ENV = "QUERYWATCH_SHOP"


def flush_cache(location: str) -> list[str]:
    """Run the flush; returns one line per thing done."""
    done = []
    conn = connect(location, read_only=False)
    try:
        cur = conn.cursor()
        if is_postgres(location):
            cur.execute(f"ANALYZE {PG_SCHEMA}.orders, {PG_SCHEMA}.order_items")
            done.append("ANALYZE orders, order_items: planner statistics refreshed")
            cur.execute("DISCARD PLANS")
            done.append("DISCARD PLANS: cached plans dropped")
        else:
            busy, log, moved = cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            done.append(f"wal_checkpoint(TRUNCATE): {moved} of {log} pages moved, busy={busy}")
            cur.execute("PRAGMA shrink_memory")
            done.append("shrink_memory: page cache released")
            cur.execute("PRAGMA optimize")
            done.append("optimize: planner statistics refreshed where stale")
        cur.close()
    finally:
        conn.close()
    return done


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    location = args[1] if len(args) == 2 else os.environ.get(SHOP_ENV)
    if not args or args[0] != "flush-cache" or len(args) > 2 or not location:
        print(
            "usage: python -m querywatch.demo.shop.maintenance flush-cache [LOCATION] "
            f"(default: ${SHOP_ENV})",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    try:
        lines = flush_cache(location)
    except Exception as exc:  # a runbook step reports its failure in one line and an exit status
        print(f"flush-cache failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    print(f"cache flushed in {time.monotonic() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
