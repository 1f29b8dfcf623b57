"""The digest's fingerprint cache keys statements by their shape (literal values blanked): a
statement must get exactly the fingerprint it would get on its own, for every text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from querywatch.logs.fpcache import Fingerprints, shape_key
from querywatch.sql.fingerprint import fingerprint
from test_fingerprint import golden_statements


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_the_corpus_keeps_its_fingerprints(dialect: str) -> None:
    texts = [sql for d, sql in golden_statements() if d in (dialect, "sqlite")]
    cache = Fingerprints(dialect)
    keyed = 0
    for sql in texts:
        key = shape_key(sql, dialect)
        if key is not None:
            keyed += 1
            assert fingerprint(key, dialect) == fingerprint(sql, dialect), sql
        assert cache(sql) == tuple(fingerprint(sql, dialect)), sql
    assert keyed > len(texts) // 3  # the fast path is the common one


def test_values_share_a_key_and_names_do_not() -> None:
    assert shape_key("SELECT * FROM t WHERE id = 5 AND s = 'x'") == shape_key(
        "SELECT * FROM t WHERE id = 123 AND s = 'it''s'"
    )
    assert shape_key("SELECT * FROM t1") != shape_key("SELECT * FROM t2")
    assert shape_key("SELECT a.x1, 1.5e-3, .5 FROM a") == "SELECT a.x1, 0, .5 FROM a"
    for unsafe in ('SELECT "col 1" FROM t', "SELECT $$a 1$$", "SELECT 1 -- 2", "SELECT E'\\n'"):
        assert shape_key(unsafe) is None, unsafe
    assert shape_key("SELECT 1 # 2", "mysql") is None


_WORDS = st.sampled_from(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "IN",
        "LIMIT",
        "ORDER BY",
        "GROUP BY",
        "t",
        "t1",
        "x2y",
        "a.b3",
        "users",
        "=",
        "<",
        "+",
        "-",
        ",",
        "(",
        ")",
        "::int",
        "::numeric(10,2)",
        "*",
        "$1",
        "$22",
        "interval",
        "date",
        "ANY",
        "E",
        "N",
        "1_000",
        "0x1F",
        ";",
    ]
)
_NUMBERS = st.one_of(
    st.integers(-(10**9), 10**9).map(str),
    st.floats(0, 1e6, allow_nan=False).map(lambda f: f"{f:.4f}"),
    st.sampled_from(["1e5", "1.5e-3", ".5", "5.", "007"]),
)
_STRINGS = st.text(alphabet="ab 1'\n", max_size=6).map(lambda s: "'" + s.replace("'", "''") + "'")
_TOKENS = st.lists(st.one_of(_WORDS, _NUMBERS, _STRINGS), min_size=1, max_size=14)


@settings(max_examples=400, deadline=None)
@given(_TOKENS, st.sampled_from([" ", "", "\n", "  "]), st.sampled_from(["postgres", "mysql"]))
def test_a_shape_key_never_changes_a_fingerprint(tokens: list[str], sep: str, dialect: str) -> None:
    sql = sep.join(tokens)
    key = shape_key(sql, dialect)
    if key is not None:
        assert fingerprint(key, dialect) == fingerprint(sql, dialect)
    assert Fingerprints(dialect)(sql) == tuple(fingerprint(sql, dialect))
