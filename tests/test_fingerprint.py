"""Fingerprints: the pair corpus, the golden ids, the documented hash and the cache.

Regenerate the golden file (only when a change of ids is intended, and say so in the changelog):
    .venv/bin/python tests/test_fingerprint.py --write-golden
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from querywatch.sql import Fingerprint, fingerprint

FIXTURES = Path(__file__).parent / "fixtures" / "fingerprints"
PAIRS = FIXTURES / "pairs.txt"
GOLDEN = FIXTURES / "golden.tsv"
fp_module = sys.modules["querywatch.sql.fingerprint"]


class Pair(NamedTuple):
    same: bool
    dialect_a: str
    dialect_b: str
    description: str
    a: str
    b: str


def _text(line: str) -> str:
    return line[2:].replace("\\n", "\n").replace("\\t", "\t")


def load_pairs() -> list[Pair]:
    """Parse pairs.txt (format described at its top)."""
    pairs: list[Pair] = []
    blocks = [b for b in PAIRS.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    for block in blocks:
        lines = [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]
        if not lines:
            continue
        header, a, b = lines
        kind, rest = header.split(" ", 1)
        dialects, description = (part.strip() for part in rest.split("|", 1))
        da, _, db = dialects.partition("/")
        assert kind in ("same", "different"), header
        assert a.startswith("  ") and b.startswith("  "), header
        pairs.append(Pair(kind == "same", da, db or da, description, _text(a), _text(b)))
    return pairs


PAIR_LIST = load_pairs()


def _id(p: Pair) -> str:
    return f"{'same' if p.same else 'diff'}-{p.dialect_a}-{p.description}"


def test_corpus_size() -> None:
    assert sum(p.same for p in PAIR_LIST) >= 100
    assert sum(not p.same for p in PAIR_LIST) >= 50
    assert {p.dialect_a for p in PAIR_LIST} == {"postgres", "mysql", "sqlite"}


@pytest.mark.parametrize("pair", PAIR_LIST, ids=[_id(p) for p in PAIR_LIST])
def test_pair(pair: Pair) -> None:
    fa, fb = fingerprint(pair.a, pair.dialect_a), fingerprint(pair.b, pair.dialect_b)
    if pair.same:
        assert fa == fb, f"{pair.description}: {fa.normalized!r} != {fb.normalized!r}"
    else:
        assert fa.id != fb.id, f"{pair.description}: both {fa.normalized!r}"


# -- golden ids ------------------------------------------------------------------------------------
def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def golden_statements() -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for p in PAIR_LIST:
        seen[(p.dialect_a, p.a)] = None
        seen[(p.dialect_b, p.b)] = None
    return list(seen)


def write_golden() -> None:
    lines = ["dialect\tid\tnormalized\tstatement"]
    for dialect, sql in golden_statements():
        fp = fingerprint(sql, dialect)
        lines.append("\t".join([dialect, fp.id, _escape(fp.normalized), _escape(sql)]))
    GOLDEN.write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_golden() -> list[tuple[str, str, str, str]]:
    rows = GOLDEN.read_text(encoding="utf-8").splitlines()[1:]
    out = []
    for row in rows:
        dialect, id_, normalized, sql = row.split("\t")
        out.append((dialect, id_, _unescape(normalized), _unescape(sql)))
    return out


def test_golden_ids_never_change() -> None:
    """Ids are stored and compared across versions: any change here breaks users' history."""
    rows = load_golden()
    assert len(rows) >= 300
    changed = [
        (sql, normalized, fingerprint(sql, dialect).normalized)
        for dialect, id_, normalized, sql in rows
        if fingerprint(sql, dialect) != (id_, normalized)
    ]
    assert not changed, f"{len(changed)} golden fingerprints changed, first: {changed[0]}"


def test_hash_is_the_documented_one() -> None:
    fp = fingerprint("SELECT * FROM orders WHERE customer_id = 42 AND status IN ('a', 'b') LIMIT 5")
    assert fp.normalized == "select * from orders where customer_id = ? and status in (?) limit ?"
    expected = hashlib.blake2b(fp.normalized.encode("utf-8"), digest_size=8).hexdigest()
    assert fp.id == expected == "4511a37d5eaf5a33"


# -- readability ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "dialect", "normalized"),
    [
        (
            "SELECT * FROM t WHERE id = $1 AND s IN ($2, $3, $4) LIMIT $5",
            "postgres",
            "select * from t where id = ? and s in (?) limit ?",
        ),
        (
            "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
            "postgres",
            "insert into t(a, b) values (?, ?)",
        ),
        (
            'SELECT "U"."Id", count(*) FROM "U" WHERE x::int > -1 GROUP BY 1',
            "postgres",
            'select "U"."Id", count(*) from "U" where x::int > ? group by ?',
        ),
        (
            "select a from t where b is not null and c = (select max(c) from u);",
            "postgres",
            "select a from t where b is not null and c = (select max(c) from u)",
        ),
        ('SELECT `a` FROM `T` WHERE b = "s" # c', "mysql", "select `a` from `T` where b = ?"),
        ("SELECT [A] FROM t WHERE x = :x", "sqlite", "select [A] from t where x = ?"),
    ],
)
def test_normalized_text_is_readable(sql: str, dialect: str, normalized: str) -> None:
    assert fingerprint(sql, dialect).normalized == normalized


# -- robustness, API, cache ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "junk",
    [
        "",
        " ",
        ";",
        "'",
        '"',
        "`",
        "[",
        "$$",
        "$a$ x",
        "/*",
        "/* /* */",
        "--",
        "E'\\",
        "\x00\x01\x02",
        "\ud800",
        "\x01\x01'\"x",
        "((((",
        "))))",
        "- - -",
        "?::",
        "::",
        "%(",
        ":",
        "'''",
        "e'",
        "N'",
        "SELECT '\\",
        "\\'",
        "IN (",
        "VALUES (,), (,)",
        "ÿþ\x00S\x00E\x00L",
        "🙂 select 1",
    ],
)
@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
def test_never_raises(junk: str, dialect: str) -> None:
    fp = fingerprint(junk, dialect)
    assert len(fp.id) == 16 and int(fp.id, 16) >= 0
    assert fingerprint(fp.normalized, dialect) == fp


def test_fingerprint_type_and_id() -> None:
    fp = fingerprint("select 1")
    assert isinstance(fp, Fingerprint) and isinstance(fp, tuple)
    assert fp.id == fp[0] and fp.normalized == fp[1] == "select ?"
    assert len(fp.id) == 16 and all(c in "0123456789abcdef" for c in fp.id)


def test_dialect_aliases_and_unknown_dialect() -> None:
    assert fingerprint("select 1", "postgresql") == fingerprint("select 1", "postgres")
    assert fingerprint("select 1", "mariadb") == fingerprint("select 1", "mysql")
    assert fingerprint("select 1", "SQLite") == fingerprint("select 1", "sqlite")
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        fingerprint("select 1", "oracle")


def test_cache_hits_and_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    fp_module.clear_cache()
    first = fingerprint("SELECT * FROM cache_test WHERE a = 1")
    assert fingerprint("SELECT * FROM cache_test WHERE a = 1") is first
    monkeypatch.setattr(fp_module, "CACHE_LIMIT", 10)
    for i in range(25):
        fingerprint(f"SELECT {i} FROM cache_bound")
    assert len(fp_module._CACHE["postgres"]) <= 10
    assert fingerprint("SELECT * FROM cache_test WHERE a = 1") == first


# -- the key property against a real pg_stat_statements -------------------------------------------
PGSS_STATEMENTS = [
    "SELECT * FROM qw_t WHERE id = 5 AND s IN ('1', '2', '3') LIMIT 10",
    "SELECT * FROM qw_t WHERE id = -5 AND b = true",
    "INSERT INTO qw_t (id, s) VALUES (1, 'a'), (2, NULL)",
    "UPDATE qw_t SET id = id + -4123 WHERE s = E'it\\'s' /* app */",
    "SELECT '1'::int, CAST('2' AS int), date '2020-01-01', interval '1 day' FROM qw_t",
    "SELECT * FROM qw_t WHERE id BETWEEN -1 AND 2 ORDER BY 1 LIMIT 5 OFFSET 10",
    "SELECT * FROM qw_t WHERE (id, s) IN ((1, 'a'), (2, 'b')) AND id = ANY(ARRAY[1, 2])",
    "SELECT CASE WHEN id > 1 THEN -1 ELSE 2 END, s IS NULL FROM qw_t WHERE s = $$x$$",
    'SELECT "qw_t"."id" FROM "qw_t" WHERE "qw_t"."s" ILIKE \'%x%\'',
]


@pytest.mark.postgres
def test_pg_stat_statements_text_matches_literal_text(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE qw_t (id int, s text, b bool)")
        conn.execute("SELECT pg_stat_statements_reset()")
        for sql in PGSS_STATEMENTS:
            conn.execute(sql.encode(), prepare=False)
        rows = conn.execute(
            "SELECT query FROM pg_stat_statements WHERE query LIKE '%qw_t%' AND query NOT LIKE "
            "'%pg_stat_statements%'"
        ).fetchall()
    by_fp = {fingerprint(sql).id: sql for sql in PGSS_STATEMENTS}
    seen = set()
    for (text,) in rows:
        fp = fingerprint(text)
        assert fp.id in by_fp, f"pg_stat_statements text {text!r} -> {fp.normalized!r} matches none"
        seen.add(fp.id)
    assert seen == set(by_fp)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-golden"]:
        write_golden()
        print(f"wrote {GOLDEN}")
