"""Predicates read from a plan's condition text (or a statement's WHERE/ON) with sqlglot.

Rules and index advice both ask the same questions of a condition: which column does it compare,
is the column wrapped in a function or cast, is it an equality, a range, a join between two
relations, a LIKE with a leading wildcard. The answers come from the expression's structure, never
from what anything is called. Text sqlglot cannot read yields no predicates (nothing is guessed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from querywatch.plans.model import Dialect
from querywatch.sql import fingerprint

Kind = Literal["eq", "in", "range", "null", "like", "neq", "join", "other"]

_SUBPLAN = re.compile(r"\((?:hashed )?SubPlan \d+\)|\(InitPlan \d+\)\.col\d+|\bSubPlan \d+\b")
_COMPARISONS: dict[type[exp.Expr], Kind] = {
    exp.EQ: "eq",
    exp.NullSafeEQ: "eq",
    exp.NEQ: "neq",
    exp.GT: "range",
    exp.GTE: "range",
    exp.LT: "range",
    exp.LTE: "range",
    exp.Between: "range",
    exp.In: "in",
    exp.Is: "null",
    exp.Like: "like",
    exp.ILike: "like",
}


@dataclass(frozen=True, slots=True)
class Predicate:
    """One comparison. ``qualifier`` is the alias the column was written with (None if bare)."""

    kind: Kind
    qualifier: str | None
    column: str
    wrapper: str | None = None  # "lower", "cast"…: what is applied to the column, if anything
    expression: str | None = None  # the wrapped expression without qualifiers (for an index)
    pattern: str | None = None  # a LIKE's literal pattern
    case_insensitive: bool = False
    negated: bool = False
    top_level: bool = True  # one of the condition's AND-ed terms (usable by a plain index)
    other_qualifier: str | None = None  # for kind "join": the other side
    other_column: str | None = None
    text: str = ""  # the comparison with literals replaced by ?, safe to show anywhere

    @property
    def leading_wildcard(self) -> bool:
        return self.kind == "like" and self.pattern is not None and self.pattern[:1] in ("%", "_")


def parse_condition(text: str | None, dialect: Dialect = "postgres") -> list[Predicate]:
    """Every column comparison in ``text`` (a plan condition or a WHERE/ON clause)."""
    if not text:
        return []
    return list(_parse_cached(text, dialect))


@lru_cache(maxsize=2048)
def _parse_cached(text: str, dialect: Dialect) -> tuple[Predicate, ...]:
    cleaned = _SUBPLAN.sub("NULL", text)
    try:
        tree = sqlglot.parse_one(cleaned, read=dialect)
    except (SqlglotError, ValueError, RecursionError):
        return ()
    if tree is None:
        return ()
    return tuple(predicates_of(tree, dialect))


def predicates_of(tree: exp.Expr, dialect: Dialect) -> list[Predicate]:
    """Predicates of a parsed boolean expression; ``top_level`` marks the AND-ed terms."""
    top_ids = {id(t) for t in conjuncts(tree)}
    out: list[Predicate] = []
    for node in tree.walk(bfs=False):  # depth first: predicates in the order written
        kind = _COMPARISONS.get(type(node))
        if kind is None:
            continue
        parent = _parent_unparen(node)
        negated = isinstance(parent, exp.Not) or bool(node.args.get("negate"))
        top = id(node) in top_ids or (isinstance(parent, exp.Not) and id(parent) in top_ids)
        out.extend(_predicate(node, kind, negated, top, dialect))
    return out


def conjuncts(tree: exp.Expr) -> list[exp.Expr]:
    """The AND-ed terms of a condition, parentheses removed."""
    node = tree.unnest()
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    return [node]


def _parent_unparen(node: exp.Expr) -> exp.Expr | None:
    parent = node.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    return parent


def _predicate(
    node: exp.Expr, kind: Kind, negated: bool, top: bool, dialect: Dialect
) -> list[Predicate]:
    left = node.this.unnest() if isinstance(node.this, exp.Expr) else None
    right_raw = node.args.get("expression")
    right = right_raw.unnest() if isinstance(right_raw, exp.Expr) else None
    if left is None:
        return []
    text = _redacted(node, dialect)
    left_col = _column_of(left)
    right_col = _column_of(right) if right is not None and kind == "eq" else None
    if left_col is None and right_col is not None:
        left, right = right, left
        left_col, right_col = right_col, None
    if left_col is None or left is None:
        return []
    column, qualifier = left_col
    wrapper, expression = _wrapper(left, dialect)
    if (
        kind == "eq"
        and right is not None
        and (other := _column_of(right)) is not None
        and isinstance(right, exp.Column)
        and isinstance(left, exp.Column)
        and other[1] != qualifier
    ):
        return [
            Predicate(
                kind="join",
                qualifier=qualifier,
                column=column,
                other_qualifier=other[1],
                other_column=other[0],
                negated=negated,
                top_level=top,
                text=text,
            )
        ]
    if right is not None and _column_of(right) is not None and _mentions(right, qualifier):
        kind = "other"  # a column compared with another column of the same relation
    pattern = None
    if kind == "like" and right is not None:
        pattern = _literal_string(right)
    if kind == "eq" and right is not None and isinstance(right, exp.Any):
        kind = "in"
    return [
        Predicate(
            kind=kind,
            qualifier=qualifier,
            column=column,
            wrapper=wrapper,
            expression=expression,
            pattern=pattern,
            case_insensitive=isinstance(node, exp.ILike),
            negated=negated,
            top_level=top,
            text=text,
        )
    ]


def _column_of(node: exp.Expr | None) -> tuple[str, str | None] | None:
    """(column, qualifier) when ``node`` is a column, or a function/cast of exactly one column."""
    if node is None:
        return None
    if isinstance(node, exp.Column):
        return _col(node)
    if isinstance(node, (exp.Func, exp.Cast, exp.Paren)) and not isinstance(node, exp.Any):
        columns = list(node.find_all(exp.Column))
        if len({_col(c) for c in columns}) == 1:
            return _col(columns[0])
    return None


def _col(node: exp.Column) -> tuple[str, str | None]:
    return node.name, (node.table or None)


def _mentions(node: exp.Expr, qualifier: str | None) -> bool:
    return any((c.table or None) == qualifier for c in node.find_all(exp.Column))


def _wrapper(node: exp.Expr, dialect: Dialect) -> tuple[str | None, str | None]:
    """What is applied to the column (``lower``, ``cast``…) and the expression without aliases."""
    if isinstance(node, exp.Column):
        return None, None
    if isinstance(node, exp.Cast):
        name = "cast"
    elif isinstance(node, exp.Anonymous):
        name = str(node.this).lower()
    elif isinstance(node, exp.Func):
        name = node.sql_name().lower()
    else:
        name = type(node).__name__.lower()
    bare = node.copy()
    for col in bare.find_all(exp.Column):
        col.set("table", None)
    bare = bare.transform(
        lambda n: n.this if isinstance(n, exp.Paren) and isinstance(n.this, exp.Column) else n
    )
    try:
        expression = bare.sql(dialect=dialect)
    except (SqlglotError, ValueError):
        expression = None
    return name, expression


def cast_target(predicate_expression: str | None) -> str | None:
    """The type a ``CAST(col AS type)`` expression converts to (upper-case), else None."""
    if not predicate_expression:
        return None
    m = re.fullmatch(
        r"CAST\(\(?[^()]*\)? AS ([A-Z ]+?)(?:\(\d+(?:, ?\d+)?\))?\)", predicate_expression
    )
    return m.group(1) if m else None


def _literal_string(node: exp.Expr) -> str | None:
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    return None


def _redacted(node: exp.Expr, dialect: Dialect) -> str:
    try:
        sql = node.sql(dialect=dialect)
    except (SqlglotError, ValueError):
        return ""
    return fingerprint(sql, "sqlite" if dialect == "sqlite" else "postgres").normalized


def redact_condition(text: str | None, dialect: Dialect = "postgres") -> str | None:
    """A plan condition with literals replaced by ``?`` (for findings, which leave the machine)."""
    if not text:
        return None
    return fingerprint(text, "sqlite" if dialect == "sqlite" else "postgres").normalized


@dataclass(frozen=True, slots=True)
class TableRef:
    """A relation named in a statement's FROM/JOIN, with the alias it is referred to by."""

    name: str
    alias: str
    schema: str | None = None


@dataclass(slots=True)
class StatementShape:
    """What a statement asks of each relation, read from its text (for SQLite, which has no
    condition text in its plans, and for ORDER BY columns)."""

    tables: list[TableRef]
    where: list[Predicate]
    joins: list[Predicate]
    order_by: list[tuple[str | None, str, bool]]  # (qualifier, column, descending)


def statement_shape(sql: str, dialect: Dialect) -> StatementShape | None:
    """Tables, WHERE predicates, join conditions and ORDER BY of the outermost SELECT."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (SqlglotError, ValueError, RecursionError):
        return None
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None:
        return None
    tables: list[TableRef] = []
    from_ = select.args.get("from") or select.args.get("from_")
    sources: list[exp.Expr] = []
    if isinstance(from_, exp.From):
        sources.append(from_.this)
    join_preds: list[Predicate] = []
    for join in select.args.get("joins") or []:
        sources.append(join.this)
        on = join.args.get("on")
        if isinstance(on, exp.Expr):
            join_preds.extend(predicates_of(on, dialect))
    for src in sources:
        if isinstance(src, exp.Table):
            tables.append(TableRef(name=src.name, alias=src.alias_or_name, schema=src.db or None))
    where_preds: list[Predicate] = []
    where = select.args.get("where")
    if isinstance(where, exp.Where):
        for p in predicates_of(where.this, dialect):
            (join_preds if p.kind == "join" else where_preds).append(p)
    order: list[tuple[str | None, str, bool]] = []
    order_node = select.args.get("order")
    if isinstance(order_node, exp.Order):
        for o in order_node.expressions:
            if isinstance(o, exp.Ordered) and isinstance(o.this, exp.Column):
                order.append((o.this.table or None, o.this.name, bool(o.args.get("desc"))))
    return StatementShape(tables=tables, where=where_preds, joins=join_preds, order_by=order)
