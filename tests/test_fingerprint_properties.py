"""Properties of fingerprints that must hold for every text, not just the corpus."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from querywatch.sql import fingerprint

DIALECTS = st.sampled_from(["postgres", "mysql", "sqlite"])
FAST = settings(max_examples=250, deadline=None)

# Statement templates: {} is a literal slot. Each dialect gets strings it can quote.
TEMPLATES = [
    "SELECT * FROM orders WHERE customer_id = {} AND status = {} LIMIT {}",
    "UPDATE pgbench_accounts SET abalance = abalance + {} WHERE aid = {};",
    "INSERT INTO t (a, b, c) VALUES ({}, {}, {})",
    "SELECT a.id, b.name FROM a JOIN b ON b.a_id = a.id WHERE a.x > {} ORDER BY a.id OFFSET {}",
    "select count(*) from t where x between {} and {} /* c */",
    "SELECT * FROM t WHERE price < {} AND name ILIKE {} -- trailing",
    'SELECT "T"."Id" FROM "T" WHERE "T"."v" = {}',
    "SELECT coalesce(x, {}), CASE WHEN y = {} THEN {} ELSE 0 END FROM t",
]

ints = st.integers(min_value=-(10**12), max_value=10**12).map(str)
floats = (
    st.floats(allow_nan=False, allow_infinity=False, width=64)
    .map(repr)
    .filter(lambda s: "inf" not in s and "nan" not in s)
)
decimals = (
    st.decimals(allow_nan=False, allow_infinity=False, places=3)
    .map(str)
    .filter(lambda s: "E" not in s and "Infinity" not in s and "NaN" not in s)
)
raw_text = st.text(max_size=30)
PARAMS = {
    "postgres": ["$1", "$12", "%s", "%(name)s"],
    "mysql": ["%s", "%(name)s"],
    "sqlite": ["?1", "@p", "$p"],
}


def quote(s: str, dialect: str, style: int) -> str:
    """A string literal holding ``s`` in one of the dialect's quoting styles."""
    if dialect == "postgres" and style == 1:
        return "E'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if dialect == "postgres" and style == 2 and "$q$" not in s and not s.endswith("$"):
        return "$q$" + s + "$q$"
    if dialect == "mysql" and style == 1:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if dialect == "mysql":
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + s.replace("'", "''") + "'"


@st.composite
def literal(draw: st.DrawFn, dialect: str) -> str:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(ints)
    if kind == 1:
        return draw(floats)
    if kind == 2:
        return draw(decimals)
    if kind == 3:
        return quote(draw(raw_text), dialect, draw(st.integers(0, 2)))
    return draw(st.sampled_from(["TRUE", "false", "NULL", "?", ":p", *PARAMS[dialect]]))


@st.composite
def statement_pair(draw: st.DrawFn) -> tuple[str, str, str]:
    """The same template filled with two independent sets of literals."""
    dialect = draw(DIALECTS)
    template = draw(st.sampled_from(TEMPLATES))
    n = template.count("{}")
    a = template.format(*[draw(literal(dialect)) for _ in range(n)])
    b = template.format(*[draw(literal(dialect)) for _ in range(n)])
    return dialect, a, b


@FAST
@given(statement_pair())
def test_changing_a_literal_never_changes_the_id(case: tuple[str, str, str]) -> None:
    dialect, a, b = case
    fa, fb = fingerprint(a, dialect), fingerprint(b, dialect)
    assert fa == fb, (a, b, fa.normalized, fb.normalized)


@FAST
@given(st.text(), DIALECTS)
def test_never_raises_on_any_text(text: str, dialect: str) -> None:
    fp = fingerprint(text, dialect)
    assert len(fp.id) == 16


@FAST
@given(statement_pair().map(lambda c: c[1]), DIALECTS)
def test_idempotent(text: str, dialect: str) -> None:
    """A normalized text fingerprinted again (pasted into `querywatch fingerprint`, read back
    from a log) is the same fingerprint. Arbitrary text is not SQL and is not held to it
    (``$$$$1`` or ``--%-null`` have no normalized form worth keeping stable); it must only never
    raise (above)."""
    fp = fingerprint(text, dialect)
    assert fingerprint(fp.normalized, dialect) == fp


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
@pytest.mark.parametrize(
    "text",
    [": A", ". 0", "0$A", "select x : a", "select - null", "select a from t where b = -null"],
)
def test_idempotent_where_spacing_could_make_a_parameter(text: str, dialect: str) -> None:
    fp = fingerprint(text, dialect)
    assert fingerprint(fp.normalized, dialect) == fp


@FAST
@given(statement_pair(), st.sampled_from(["  ", "\n", "\t ", " /* x */ ", " -- x\n"]))
def test_whitespace_and_comments_never_matter(case: tuple[str, str, str], gap: str) -> None:
    dialect, a, _ = case
    spaced = a.replace(" ", gap, 3)
    if "--" in gap and ("'" in a or '"' in a or "$q$" in a):
        spaced = gap.strip() + "\n" + a  # a line comment must not swallow part of a literal
    assert fingerprint(spaced, dialect) == fingerprint(a, dialect), (spaced, a)


@FAST
@given(DIALECTS, st.lists(ints, min_size=1, max_size=30), st.lists(ints, min_size=1, max_size=30))
def test_in_lists_and_rows_of_any_length(dialect: str, xs: list[str], ys: list[str]) -> None:
    a = f"SELECT * FROM t WHERE id IN ({', '.join(xs)})"
    b = f"SELECT * FROM t WHERE id IN ({','.join(ys)})"
    assert fingerprint(a, dialect) == fingerprint(b, dialect)
    rows_a = ", ".join(f"({x}, 'v')" for x in xs)
    rows_b = ",".join(f"({y},'w')" for y in ys)
    assert fingerprint(f"INSERT INTO t VALUES {rows_a}", dialect) == fingerprint(
        f"INSERT INTO t VALUES {rows_b}", dialect
    )
