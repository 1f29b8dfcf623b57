"""Which ORM relation an N+1 loads, from the repeated statement and Django's model meta.

A relation loaded lazily in a loop repeats one statement whose filter is the join column:
``WHERE "shop_customer"."id" = ?`` (``order.customer``: a forward foreign key, fixed by
``select_related``), ``WHERE "shop_order"."customer_id" = ?`` (``customer.orders.all()``: the
reverse side, fixed by ``prefetch_related``), or the same on a many-to-many's join table. The
table and column come from the statement; the relation whose table and join column match them is
looked up in ``django.apps`` (every installed model), never guessed from names. When several
relations match, the ones whose loop model was read in the same request (or test) are preferred.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from querywatch.gate.nplusone import is_read

SELECT_RELATED = "select_related"
PREFETCH_RELATED = "prefetch_related"

_FILTER = re.compile(
    r'\bwhere\s+\(?\s*"?(?P<table>[\w$]+)"?\s*\.\s*"?(?P<column>[\w$]+)"?\s*'
    r"(?:=\s*(?:\?|%s|\$\d+)|in\s*\(\s*(?:\?|%s|\$\d+))",
    re.IGNORECASE,
)
_TABLES = re.compile(r'\b(?:from|join)\s+"?([\w$]+)"?', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RelationAdvice:
    """The relation an N+1 loads lazily: ``model``'s ``relation``, fixed by ``method``."""

    model: str  # the model looped over, by class name (``Order``)
    label: str  # its app label (``shop.Order``)
    relation: str  # the field or accessor name on it (``customer``)
    method: str  # select_related or prefetch_related
    table: str  # the looped model's table

    @property
    def message(self) -> str:
        return (
            f"{self.model}.{self.relation} is loaded lazily in a loop: one query per {self.model}"
            f" ({self.label})"
        )

    @property
    def suggestion(self) -> str:
        return f'{self.model}.objects.{self.method}("{self.relation}")'

    @property
    def fix(self) -> str:
        how = (
            "one query with a JOIN"
            if self.method == SELECT_RELATED
            else "one more query for all the related rows (IN)"
        )
        return (
            f"fetch the {self.model} rows with {self.suggestion}: {how} instead of one query"
            f" per {self.model}"
        )

    def as_dict(self) -> dict[str, str]:
        return {
            "model": self.label,
            "relation": self.relation,
            "method": self.method,
            "suggestion": self.suggestion,
        }


Index = dict[tuple[str, str], list[RelationAdvice]]
_index: Index | None = None


def _build_index() -> Index:
    """(table, column) of every lazy relation load -> the relations that issue it."""
    from django.apps import apps
    from django.db.models import ForeignKey, ManyToManyField

    index: Index = {}

    def add(table: str, column: str, owner: Any, relation: str, method: str) -> None:
        meta = owner._meta
        index.setdefault((table.lower(), column.lower()), []).append(
            RelationAdvice(meta.object_name, meta.label, relation, method, meta.db_table.lower())
        )

    for model in apps.get_models():
        meta = model._meta
        for field in meta.local_fields:
            if not isinstance(field, ForeignKey):
                continue
            target = field.target_field
            remote = field.related_model
            # order.customer: SELECT … FROM customer WHERE customer.id = ?
            add(remote._meta.db_table, target.column, model, field.name, SELECT_RELATED)
            # customer.orders.all() / user.profile: SELECT … FROM order WHERE order.customer_id = ?
            accessor = field.remote_field.get_accessor_name()
            if accessor and not field.remote_field.hidden:
                method = SELECT_RELATED if field.one_to_one else PREFETCH_RELATED
                add(meta.db_table, field.column, remote, accessor, method)
        for m2m in meta.local_many_to_many:
            if not isinstance(m2m, ManyToManyField):
                continue
            through = m2m.remote_field.through._meta.db_table
            # post.tags.all(): … JOIN post_tags … WHERE post_tags.post_id = ?
            add(through, m2m.m2m_column_name(), model, m2m.name, PREFETCH_RELATED)
            accessor = m2m.remote_field.get_accessor_name()
            if accessor and not m2m.remote_field.hidden:
                add(through, m2m.m2m_reverse_name(), m2m.related_model, accessor, PREFETCH_RELATED)
    return index


def reset() -> None:
    """Forget the relation index (models changed: tests that swap apps)."""
    global _index
    _index = None


def tables_of(normalized: str) -> set[str]:
    """Tables a statement reads (``FROM`` and ``JOIN``), lowercased."""
    return {t.lower() for t in _TABLES.findall(normalized)}


def advise(normalized: str, context: Iterable[str] = ()) -> list[RelationAdvice]:
    """The relations ``normalized`` (a repeated statement) loads lazily, best first; ``context``:
    the other statements of the same request or test (the loop's own query is among them)."""
    found = _FILTER.search(normalized) if is_read(normalized) else None
    if found is None:
        return []
    global _index
    if _index is None:
        _index = _build_index()
    candidates = _index.get((found["table"].lower(), found["column"].lower()), [])
    if len(candidates) <= 1:
        return list(candidates)
    read: set[str] = set()
    for text in context:
        if text != normalized:
            read |= tables_of(text)
    looped = [c for c in candidates if c.table in read]
    return looped or list(candidates)
