"""``cast-on-column-in-where``: an index on a column holds the column's values, not a cast or
function of them, so ``WHERE lower(email) = ?`` cannot seek the index on ``email``.

The claim is only made where it is news:

- the comparison must be one a b-tree index on the bare column could serve (``=``, ``<``, ``>``,
  ``BETWEEN``, ``IN`` of values, ``LIKE`` with a prefix or a parameter pattern). A function
  around a column compared with ``<>``, ``NOT …``, ``ILIKE`` or ``LIKE '%x'`` loses nothing: the
  bare column could not be sought either;
- the same column must not also be compared bare, and seekably, in the same ``WHERE`` / ``ON``
  (``d BETWEEN ? AND ? AND extract(dow FROM d) = 1``: the index serves the range, the function
  filters the rows found);
- in PostgreSQL a cast to ``text`` or ``varchar`` is a relabel when the column is already
  ``varchar`` or ``text`` (binary-compatible types: the planner strips it and the index still
  serves, ``"t"."path"::text LIKE 'ab%'`` as Django writes it). Compared with a pattern it is
  never the problem (a number or date cast to text cannot be sought by pattern either), so it
  is not reported; compared with ``=`` or a range the text cannot show the column's type, so the
  message says when it holds. Other casts (``created_at::date``, ``code::int``, ``char`` or
  ``name`` to ``text``) change the value and are reported.

Whether any of it costs anything depends on the table's size and its indexes, which the text
cannot show: the rule is ``needs_plan``.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from querywatch.findings import Rule
from querywatch.sql.rules._base import (
    COMPARISONS,
    Ctx,
    Hit,
    LintRule,
    columns,
    is_hole,
    shape,
    unparen,
    walk,
)

# Functions whose result is not "the column, transformed": aggregates and window calls are not
# allowed in WHERE anyway; JSON extraction is how a JSON column is read, not a defeated index.
_NOT_TRANSFORMS = tuple(
    t
    for t in (
        getattr(exp, name, None)
        for name in (
            "AggFunc",
            "JSONExtract",
            "JSONExtractScalar",
            "JSONBExtract",
            "JSONBExtractScalar",
            "Window",
        )
    )
    if isinstance(t, type)
)
# PostgreSQL: casting varchar or text to these (no length) is a relabel, not a conversion.
_RELABEL_TARGETS = frozenset({exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR})
_SEEKABLE = (exp.EQ, exp.NullSafeEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between)
# Operators a GiST or GIN index on the bare column serves (ltree's <@, arrays' @> and &&, jsonb's
# @> and ?): a column compared bare with one of them may be sought by that index.
_INDEXED_OPERATORS = tuple(
    t
    for t in (
        getattr(exp, name, None)
        for name in (
            "ArrayContainedBy",
            "ArrayContainsAll",
            "ArrayOverlaps",
            "JSONBContains",
            "JSONBContainsTopKey",
            "JSONBContainsAnyTopKeys",
            "JSONBContainsAllTopKeys",
        )
    )
    if isinstance(t, type)
)

ColumnKey = tuple[str, str]  # (table or "", column), lower case


def _clauses(tree: exp.Expr) -> Iterator[tuple[exp.Expr, str]]:
    """Every WHERE condition ("where") and JOIN … ON condition ("on") of every query."""
    for node in walk(tree):
        if isinstance(node, exp.Where) and node.this is not None:
            yield node.this, "where"
        elif isinstance(node, exp.Join) and isinstance(node.args.get("on"), exp.Expr):
            yield node.args["on"], "on"


def _conjuncts(cond: exp.Expr) -> Iterator[exp.Expr]:
    stack = [cond]
    while stack:
        node = unparen(stack.pop())
        if isinstance(node, exp.And):
            stack.extend((node.this, node.expression))
        else:
            yield node


def _negated(cmp: exp.Expr) -> bool:
    if cmp.args.get("negate"):
        return True
    parent = cmp.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    return isinstance(parent, exp.Not)


def _pattern_may_be_prefix(pattern: exp.Expr | None) -> bool:
    """True unless the pattern is known to start with a wildcard (or is missing)."""
    if pattern is None:
        return False
    first = unparen(pattern)
    while isinstance(first, exp.DPipe | exp.Concat):
        parts = [first.this] if isinstance(first, exp.DPipe) else first.expressions
        if not parts:
            break
        first = unparen(parts[0])
    if isinstance(first, exp.Literal) and first.is_string:
        return bool(first.this) and first.this[0] not in "%_"
    return True  # a parameter or an expression: it may hold 'abc%'


def _seekable(cmp: exp.Expr) -> bool:
    """True when a b-tree index on a bare column could serve this comparison."""
    if _negated(cmp):
        return False
    if isinstance(cmp, exp.Like):
        return _pattern_may_be_prefix(cmp.expression)
    if isinstance(cmp, exp.In):
        return cmp.args.get("query") is None and cmp.args.get("unnest") is None
    return isinstance(cmp, _SEEKABLE)


def _is_pattern(cmp: exp.Expr) -> bool:
    return isinstance(cmp, exp.Like | exp.ILike)


def _sides(cmp: exp.Expr) -> list[tuple[exp.Expr, list[exp.Expr]]]:
    if isinstance(cmp, exp.In):
        if cmp.args.get("query") is not None or cmp.args.get("unnest") is not None:
            return []
        return [(cmp.this, list(cmp.expressions))]
    if isinstance(cmp, exp.Between):
        return [(cmp.this, [cmp.args["low"], cmp.args["high"]])]
    left, right = cmp.this, cmp.expression
    return [(left, [right]), (right, [left])]


def _key(col: exp.Column) -> ColumnKey:
    return (col.table.lower(), col.name.lower())


def _same(a: ColumnKey, b: ColumnKey) -> bool:
    return a[1] == b[1] and (a[0] == b[0] or not a[0] or not b[0])


def _bare_seeks(cond: exp.Expr) -> list[ColumnKey]:
    """Columns compared bare, and seekably, with a value in the condition's top-level AND."""
    out: list[ColumnKey] = []
    for conj in _conjuncts(cond):
        indexed = isinstance(conj, _INDEXED_OPERATORS) and not _negated(conj)
        if not indexed and not (isinstance(conj, COMPARISONS) and _seekable(conj)):
            continue
        for side, others in _sides(conj):
            side = unparen(side)
            if (
                isinstance(side, exp.Column)
                and not is_hole(side)
                and not isinstance(side.this, exp.Star)
                and not any(o is None or columns(o) for o in others)
            ):
                out.append(_key(side))
    return out


def _is_relabel(node: exp.Expr, dialect: str) -> bool:
    """A PostgreSQL cast to text / varchar without a length: free for varchar and text."""
    if dialect != "postgres" or not isinstance(node, exp.Cast):
        return False
    to = node.args.get("to")
    return isinstance(to, exp.DataType) and to.this in _RELABEL_TARGETS and not to.expressions


def _wrapped_column(
    side: exp.Expr, ctx: Ctx, pattern: bool
) -> tuple[exp.Expr, exp.Column, bool] | None:
    """The function or cast around a column on one side of a comparison, the column, and
    whether it is a possible relabel (a PostgreSQL cast to text of a bare column)."""
    side = unparen(side)
    # Relabels are peeled off: varchar::text LIKE …, lower(x)::text = … (lower is the news).
    inner = side
    while _is_relabel(inner, ctx.dialect):
        inner = unparen(inner.this)
    if inner is not side and isinstance(inner, exp.Column):
        if pattern or is_hole(inner):
            return None
        return side, inner, True
    if not isinstance(inner, exp.Func) or isinstance(inner, _NOT_TRANSFORMS):
        return None
    cols = columns(inner)
    return (inner, cols[0], False) if cols else None


def _name_of(func: exp.Expr) -> str:
    if isinstance(func, exp.Anonymous):
        return func.name.lower()
    if isinstance(func, exp.Cast):
        return "cast"
    return func.sql_name().lower() if isinstance(func, exp.Func) else func.key


def check(tree: exp.Expr, ctx: Ctx) -> Iterator[Hit]:
    for cond, clause in _clauses(tree):
        bare: list[ColumnKey] | None = None  # computed when first needed
        for cmp in walk(cond, into_queries=False):
            if not isinstance(cmp, COMPARISONS) or not _seekable(cmp):
                continue
            for side, others in _sides(cmp):
                wrapped = _wrapped_column(side, ctx, _is_pattern(cmp))
                if wrapped is None or any(o is None or columns(o) for o in others):
                    continue
                func, col, relabel = wrapped
                if bare is None:
                    bare = _bare_seeks(cond)
                if any(_same(_key(col), b) for b in bare):
                    continue  # the index serves the bare comparison; this one filters
                yield _hit(cmp, func, col, relabel, clause, ctx)
                break


def _hit(
    cmp: exp.Expr, func: exp.Expr, col: exp.Column, relabel: bool, clause: str, ctx: Ctx
) -> Hit:
    expr = shape(func, ctx.dialect)
    name = col.sql(dialect=ctx.dialect)
    where = "WHERE" if clause == "where" else "JOIN … ON"
    if relabel:
        message = (
            f"{expr} in {where} casts column {name}: unless {name} is already varchar or text "
            f"(then the cast is a relabel and the index still serves), every row's value is "
            f"converted and an index on {name} cannot be used for this comparison"
        )
        fix = (
            f"compare the bare column with a value of its type ({name} = $1::int), or create "
            f"an index on the expression: CREATE INDEX … (({expr}))"
        )
    else:
        message = (
            f"{expr} in {where} wraps column {name}: an index on the column cannot be used "
            "for this comparison"
        )
        fix = (
            "compare the bare column (convert the value instead, e.g. a range for dates), "
            f"or create an index on the expression: CREATE INDEX … (({expr}))"
        )
    evidence = {
        "clause": clause,
        "expression": expr,
        "column": col.name,
        "function": _name_of(func),
    }
    if relabel:
        evidence["relabel_if"] = "varchar or text"
    return Hit(cmp, message, fix, evidence)


RULE: LintRule = Rule(
    "cast-on-column-in-where",
    "warning",
    "A cast or function around a column in WHERE/ON, compared to a value, defeats the index "
    "on that column.",
    check,
    needs_plan=True,  # whether the column has an index, and the table rows to read
)
