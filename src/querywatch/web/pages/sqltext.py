"""Normalized SQL as highlighted HTML: each token escaped, then wrapped in a class.

The store keeps normalized text only (literals are ``?``). Should a literal reach this far anyway
(a quoted string, a number standing alone), it is shown as ``?`` too: a page never shows a
value from production data.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

KEYWORDS = frozenset(
    """
    select from where and or not in is null as on join left right inner outer full cross
    group by order having limit offset distinct union all insert into values update set
    delete returning with recursive case when then else end exists between like ilike asc
    desc nulls first last create table index drop alter add primary key foreign references
    begin commit rollback savepoint release for share nowait skip locked lateral using
    natural window over partition rows range current row fetch next only true false
    default conflict do nothing explain analyze vacuum truncate cast any some
    """.split()  # noqa: SIM905 - a word list reads better than a hundred quoted strings
)
_TOKENS = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*'?|\$\$.*?(?:\$\$|$))
  | (?P<quoted>"(?:[^"]|"")*"?|`[^`]*`?)
  | (?P<placeholder>\?|\$\d+|%s|:[A-Za-z_]\w*)
  | (?P<number>(?<![\w.])\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
  | (?P<word>[A-Za-z_][\w$]*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def highlight(sql: str) -> Markup:
    """``sql`` as escaped HTML with ``<span class="sql-…">`` around its tokens."""
    out: list[str] = []
    for m in _TOKENS.finditer(sql):
        kind, text = m.lastgroup or "other", m.group()
        if kind == "space":
            out.append(str(escape(text)))
        elif kind in ("string", "number"):  # a literal that should not be here: never shown
            out.append('<span class="sql-placeholder" title="a value, not shown">?</span>')
        elif kind == "word" and text.lower() in KEYWORDS:
            out.append(f'<span class="sql-keyword">{escape(text)}</span>')
        elif kind in ("placeholder", "quoted"):
            out.append(f'<span class="sql-{kind}">{escape(text)}</span>')
        else:
            out.append(str(escape(text)))
    return Markup("".join(out))


def one_line(sql: str, limit: int = 160) -> str:
    """The SQL on one line, cut to ``limit`` characters (for tables); literals as ``?``."""
    pieces = []
    for m in _TOKENS.finditer(sql):
        kind = m.lastgroup
        pieces.append(" " if kind == "space" else "?" if kind in ("string", "number") else m[0])
    flat = "".join(pieces).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
