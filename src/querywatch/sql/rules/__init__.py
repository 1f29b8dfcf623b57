"""Lint rules: one module per rule, named after it, each defining ``RULE``; run in this order.

Adding a rule is adding a module here (``RULE: LintRule = Rule(id, severity, summary, check)``,
with ``needs_plan=True`` when its verdict depends on table sizes or indexes), its name in
:data:`RULES`, golden cases in ``tests/fixtures/rules/<id>/lint-*.sql`` and a section in
docs/lint.md. ``parse-error`` (:data:`PARSE_ERROR`) is raised by the runner, not by a check.
"""

from __future__ import annotations

from querywatch.sql.rules import (
    cast_on_column_in_where,
    deep_offset,
    implicit_cross_join,
    leading_wildcard_like,
    not_in_subquery,
    order_by_random,
    parse_error,
    select_star,
    update_or_delete_without_where,
)
from querywatch.sql.rules._base import Ctx, Hit, LintCheck, LintRule

__all__ = ["PARSE_ERROR", "RULES", "Ctx", "Hit", "LintCheck", "LintRule"]

RULES: tuple[LintRule, ...] = (
    leading_wildcard_like.RULE,
    cast_on_column_in_where.RULE,
    select_star.RULE,
    update_or_delete_without_where.RULE,
    deep_offset.RULE,
    not_in_subquery.RULE,
    order_by_random.RULE,
    implicit_cross_join.RULE,
)
PARSE_ERROR = parse_error.RULE
