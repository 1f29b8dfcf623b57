"""Lint rules: one module per rule in ``querywatch.sql.rules``, each with golden cases under
tests/fixtures/rules/<rule-id>/lint-*.sql (a statement, the dialect, whether the rule fires)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from querywatch.findings import SEVERITIES
from querywatch.sql import rules as rules_pkg
from querywatch.sql.lint import RULES, lint_sql, without_plan

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
DOC = (Path(__file__).parent.parent / "docs" / "lint.md").read_text(encoding="utf-8")
_HEADER = re.compile(r"--\s*(expect|dialect):\s*(\S+)")


def _cases() -> list[tuple[str, Path]]:
    return [(p.parent.name, p) for p in sorted(FIXTURES.glob("*/lint-*.sql"))]


def _read(path: Path) -> tuple[str, str, str]:
    """expect, dialect, statement of one case file."""
    text = path.read_text(encoding="utf-8")
    headers = dict(_HEADER.findall("\n".join(line for line in text.splitlines()[:3])))
    body = "\n".join(line for line in text.splitlines() if not _HEADER.match(line)).strip()
    return headers["expect"], headers["dialect"], body


@pytest.mark.parametrize(("rule", "path"), _cases(), ids=lambda v: getattr(v, "stem", v))
def test_golden_case(rule: str, path: Path) -> None:
    expect, dialect, sql = _read(path)
    assert expect in (rule, "none"), f"{path}: expect must be {rule} or none"
    found = lint_sql(sql, dialect)
    fired = [f for f in found if f.rule == rule]
    if expect == "none":
        assert not fired, (path.name, [f.message for f in fired])
        return
    assert len(fired) == 1, (path.name, [(f.rule, f.message) for f in found])
    f = fired[0]
    assert f.severity == RULES[rule].severity
    assert f.message and f.fix and "\n" not in f.message
    assert f.sql is not None and f.fingerprint is not None
    assert "qw_" not in (f.message + f.fix).lower() and "SENTINEL" not in f.message


def test_every_rule_is_a_module_named_after_it_with_cases_and_docs() -> None:
    ids = [r.id for r in rules_pkg.RULES] + [rules_pkg.PARSE_ERROR.id]
    assert sorted(ids) == sorted(RULES)
    for rule_id in ids:
        module = importlib.import_module(f"querywatch.sql.rules.{rule_id.replace('-', '_')}")
        assert module.RULE.id == rule_id and module.RULE.severity in SEVERITIES
        kinds = {_read(p)[0] for p in (FIXTURES / rule_id).glob("lint-*.sql")}
        assert kinds == {rule_id, "none"}, f"{rule_id} needs a positive and a look-alike case"
        dialects = {_read(p)[1] for p in (FIXTURES / rule_id).glob("lint-*.sql")}
        assert len(dialects) >= 2, f"{rule_id} cases cover one dialect only"
        assert f"### `{rule_id}`" in DOC, rule_id
        assert re.search(rf"\| `{rule_id}` \| {RULES[rule_id].severity} \|", DOC), rule_id


def test_severities_mean_what_docs_say() -> None:
    """Static lint cannot know sizes: the rules whose verdict depends on a table's size or its
    indexes need a plan (the gate lets the plan speak; `querywatch lint` reports them as info),
    a change of every row among them (an error where the table is large: the plan rule
    large-write judges it), advice and what could not be checked are info (which never fails
    the gate)."""
    assert RULES["update-or-delete-without-where"].severity == "error"
    assert RULES["select-star"].severity == "info"
    assert RULES["parse-error"].severity == "info"
    sized = {r for r, rule in RULES.items() if rule.needs_plan}
    assert sized == {
        "leading-wildcard-like",
        "cast-on-column-in-where",
        "deep-offset",
        "order-by-random",
        "not-in-subquery",
        "implicit-cross-join",
        "update-or-delete-without-where",
    }
    assert {RULES[r].severity for r in sized - {"update-or-delete-without-where"}} == {"warning"}
    assert "`info` never fails" in DOC
    for rule_id in sized:
        section = DOC.split(f"### `{rule_id}`", 1)[1].split("\n### ", 1)[0]
        assert "needs a plan" in section, rule_id


def test_without_plan_makes_size_dependent_findings_info() -> None:
    sql = "SELECT id FROM products WHERE name LIKE '%phone'; DELETE FROM carts"
    found = lint_sql(sql, "postgres")
    assert [(f.rule, f.severity) for f in found] == [
        ("leading-wildcard-like", "warning"),
        ("update-or-delete-without-where", "error"),
    ]
    judged = without_plan(found)
    assert [(f.rule, f.severity) for f in judged] == [
        ("leading-wildcard-like", "info"),
        ("update-or-delete-without-where", "info"),
    ]
    assert all(f.evidence["needs_plan"] is True for f in judged)
