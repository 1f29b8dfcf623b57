"""Fingerprinting throughput: querywatch vs pglast.fingerprint vs sqlglot, on one workload.

The workload is pgbench's five statements plus typical ORM statements (joins, IN lists of varying
length, multi-row inserts, ILIKE, ORDER BY/LIMIT/OFFSET), with literals drawn from a seeded RNG so
nearly every text is distinct: the cache cannot help, which is the "unseen statements" case.

    .venv/bin/python bench/fingerprint.py [--n 100000] [--sqlglot-n 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from querywatch.sql.fingerprint import clear_cache, fingerprint

WORDS = ["alpha", "bravo", "o'brien", "dupont", "smith", "zoë", "back\\slash", "x y", "Ünïcode"]


def _s(r: random.Random) -> str:
    return "'" + r.choice(WORDS).replace("'", "''") + str(r.randint(0, 999)) + "'"


def _ints(r: random.Random, lo: int, hi: int) -> str:
    return ", ".join(str(r.randint(1, 10**6)) for _ in range(r.randint(lo, hi)))


def _strs(r: random.Random, lo: int, hi: int) -> str:
    return ", ".join(_s(r) for _ in range(r.randint(lo, hi)))


def _ts(r: random.Random) -> str:
    return f"'2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} {r.randint(0, 23):02d}:00:00'"


def _rows(r: random.Random) -> str:
    return ", ".join(
        f"({r.randint(1, 10**6)}, {_s(r)}, {r.randint(1, 99)}.{r.randint(0, 99):02d}, {_ts(r)})"
        for _ in range(r.randint(1, 10))
    )


TEMPLATES: list[Callable[[random.Random], str]] = [
    # pgbench (tpcb-like)
    lambda r: (
        f"UPDATE pgbench_accounts SET abalance = abalance + {r.randint(-5000, 5000)} "
        f"WHERE aid = {r.randint(1, 10**7)};"
    ),
    lambda r: f"SELECT abalance FROM pgbench_accounts WHERE aid = {r.randint(1, 10**7)};",
    lambda r: (
        f"UPDATE pgbench_tellers SET tbalance = tbalance + {r.randint(-5000, 5000)} "
        f"WHERE tid = {r.randint(1, 100)};"
    ),
    lambda r: (
        f"UPDATE pgbench_branches SET bbalance = bbalance + {r.randint(-5000, 5000)} "
        f"WHERE bid = {r.randint(1, 10)};"
    ),
    lambda r: (
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES "
        f"({r.randint(1, 100)}, {r.randint(1, 10)}, {r.randint(1, 10**7)}, "
        f"{r.randint(-5000, 5000)}, CURRENT_TIMESTAMP);"
    ),
    # web app / ORM
    lambda r: (
        'SELECT "shop_order"."id", "shop_order"."customer_id", "shop_order"."status", '
        '"shop_order"."total" FROM "shop_order" WHERE ("shop_order"."customer_id" = '
        f'{r.randint(1, 10**6)} AND "shop_order"."status" IN ({_strs(r, 1, 4)})) '
        f'ORDER BY "shop_order"."created_at" DESC LIMIT {r.choice([10, 20, 50])}'
    ),
    lambda r: (
        f"SELECT * FROM orders WHERE customer_id = {r.randint(1, 10**6)} "
        f"AND status IN ({_strs(r, 1, 5)}) LIMIT {r.randint(1, 100)}"
    ),
    lambda r: f"SELECT id, name, email FROM users WHERE id IN ({_ints(r, 1, 40)})",
    lambda r: (
        "SELECT p.id, p.title, p.price, c.name FROM products p JOIN categories c "
        f"ON c.id = p.category_id WHERE p.title ILIKE {_s(r)} AND p.price < {r.randint(1, 500)}.99 "
        f"ORDER BY p.price ASC LIMIT {r.choice([20, 50])} OFFSET {r.randint(0, 50) * 20}"
    ),
    lambda r: f"INSERT INTO order_items (order_id, sku, price, created_at) VALUES {_rows(r)}",
    lambda r: (
        f"UPDATE users SET last_login = {_ts(r)}, login_count = login_count + 1 "
        f"WHERE id = {r.randint(1, 10**6)}"
    ),
    lambda r: (
        f"DELETE FROM sessions WHERE expires_at < {_ts(r)} AND user_id = {r.randint(1, 10**6)}"
    ),
    lambda r: (
        'SELECT COUNT(*) AS "__count" FROM "shop_product" WHERE '
        f'("shop_product"."active" AND "shop_product"."stock" > {r.randint(0, 10)})'
    ),
    lambda r: (
        "SELECT o.id, o.total, u.email FROM orders o INNER JOIN users u ON u.id = o.user_id "
        f"LEFT JOIN payments pay ON pay.order_id = o.id WHERE o.created_at >= {_ts(r)} "
        f"AND pay.id IS NULL ORDER BY o.created_at DESC LIMIT {r.randint(10, 100)}"
    ),
    lambda r: (
        f"SELECT EXISTS(SELECT 1 FROM carts WHERE user_id = {r.randint(1, 10**6)} "
        f"AND product_id = {r.randint(1, 10**5)}) AS has_item"
    ),
    lambda r: (
        f"UPDATE products SET stock = stock - {r.randint(1, 5)} "
        f"WHERE id = {r.randint(1, 10**5)} "
        f"AND stock >= {r.randint(1, 5)} RETURNING stock"
    ),
    lambda r: (
        f"SELECT * FROM products WHERE category_id = {r.randint(1, 200)} AND active = true "
        f"AND price BETWEEN {r.randint(0, 50)} AND {r.randint(51, 900)} ORDER BY price LIMIT 24"
    ),
    lambda r: (
        "SELECT u.id, count(o.id) AS n, sum(o.total) AS revenue FROM users u JOIN orders o "
        f"ON o.user_id = u.id WHERE o.created_at > {_ts(r)} GROUP BY u.id HAVING count(o.id) > "
        f"{r.randint(1, 9)} ORDER BY revenue DESC LIMIT 10"
    ),
    lambda r: (
        f"SELECT id, body FROM comments WHERE post_id = {r.randint(1, 10**6)} "
        f"AND deleted_at IS NULL ORDER BY created_at DESC LIMIT 20 OFFSET {r.randint(0, 10) * 20}"
    ),
    lambda r: (
        f"INSERT INTO audit_log (user_id, action, payload) VALUES ({r.randint(1, 10**6)}, "
        f"{_s(r)}, '{{\"k\": {r.randint(0, 99)}}}') RETURNING id"
    ),
    lambda r: f"SELECT * FROM coupons WHERE lower(code) = lower({_s(r)}) AND valid_until > now()",
    lambda r: (
        "SELECT a.id, a.street, a.city FROM addresses a WHERE a.user_id = "
        f"{r.randint(1, 10**6)} AND a.country IN ({_strs(r, 1, 3)})"
    ),
    lambda r: (
        "UPDATE carts SET updated_at = now(), items = items || "
        f"'[{r.randint(1, 99)}]'::jsonb WHERE id = {r.randint(1, 10**6)}"
    ),
    lambda r: (
        f"SELECT id FROM shipments WHERE tracking_no = {_s(r)} "
        f"/* controller='shipments',action='show' */"
    ),
    lambda r: (
        f"SELECT p.* FROM products p WHERE p.id IN (SELECT product_id FROM order_items "
        f"WHERE order_id = {r.randint(1, 10**6)}) AND p.price >= {r.randint(1, 99)}.5"
    ),
]


def workload(n: int, seed: int = 20240917) -> list[str]:
    r = random.Random(seed)
    return [r.choice(TEMPLATES)(r) for _ in range(n)]


def _rate(fn: Callable[[list[str]], object], texts: list[str], repeat: int) -> float:
    """Best of ``repeat`` runs, statements per second."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="statements (default 100000)")
    ap.add_argument("--sqlglot-n", type=int, default=2_000, help="sqlglot subset size")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    args = ap.parse_args()

    import pglast
    import sqlglot
    from sqlglot import exp

    texts = workload(args.n)
    distinct = len(set(texts))

    def ours_unseen(ts: list[str]) -> None:
        clear_cache()  # every text is new; the bounded cache still fills (and empties) as in use
        for t in ts:
            fingerprint(t)

    hot = texts[: min(1000, len(texts))] * (len(texts) // min(1000, len(texts)))

    def ours_hits(ts: list[str]) -> None:
        for t in ts:
            fingerprint(t)

    def pg_fp(ts: list[str]) -> None:
        f = pglast.fingerprint
        for t in ts:
            f(t)

    def sqlglot_norm(ts: list[str]) -> None:
        for t in ts:
            tree = sqlglot.parse_one(t, read="postgres")
            tree = tree.transform(
                lambda node: exp.Placeholder() if isinstance(node, exp.Literal) else node
            )
            tree.sql(dialect="postgres")

    # Interleaved rounds, best of each: load from other processes hits both sides alike.
    ours = pgl = hits = 0.0
    fingerprint(hot[0])
    for _ in range(args.repeat):
        ours = max(ours, _rate(ours_unseen, texts, 1))
        pgl = max(pgl, _rate(pg_fp, texts, 1))
        ours_hits(hot[:1000])  # the cache was cleared: fill it with the hot set first
        hits = max(hits, _rate(ours_hits, hot, 1))
    sub = texts[: args.sqlglot_n]
    sg = _rate(sqlglot_norm, sub, 1)

    ours_ids = {fingerprint(t).id for t in texts}
    pg_ids = {pglast.fingerprint(t) for t in texts}
    # Grouping agreement: the partition of texts must be the same, not just the count.
    pairs = {(fingerprint(t).id, pglast.fingerprint(t)) for t in texts}

    print(
        f"workload: {len(texts)} statements ({distinct} distinct texts), "
        f"{len(TEMPLATES)} templates, mean {statistics.mean(map(len, texts)):.0f} chars"
    )
    print(f"{'normalizer':<44}{'statements/s':>14}{'µs/stmt':>10}")
    rows = [
        ("querywatch fingerprint, unseen (cache cleared)", ours),
        ("querywatch fingerprint, cache hits", hits),
        ("pglast.fingerprint", pgl),
        (f"sqlglot parse+replace+print ({len(sub)} stmts, extrapolated)", sg),
    ]
    for name, rate in rows:
        print(f"{name:<44}{rate:>14,.0f}{1e6 / rate:>10.2f}")
    print(f"ratio querywatch unseen / pglast: {ours / pgl:.2f}x (goal >= 0.90x)")
    same = len(pairs) == len(ours_ids) == len(pg_ids)
    print(
        f"distinct fingerprints: querywatch {len(ours_ids)}, pglast {len(pg_ids)}, "
        f"joint {len(pairs)} ({'same grouping' if same else 'DIFFERENT grouping'})"
    )


if __name__ == "__main__":
    main()
