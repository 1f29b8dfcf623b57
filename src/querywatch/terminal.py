"""Text from outside (SQL, titles, notes, names) made safe to show, and tables that stay readable
on an 80-column terminal and on a pipe.

**Safe text.** SQL text, incident titles, notes, versions and error messages come from the
monitored application, the database or a person, and may hold terminal control sequences (an
``ESC [`` that recolours or clears the screen, an OSC that retitles the window or writes the
clipboard, a carriage return that hides what came before, bidirectional overrides that reorder
it) and text that Rich would read as markup (``(array[?])[i]`` showed as ``(array[?])``, the
``[i]`` taken as italics) or as an emoji code. Everything of that kind goes through one helper
before it reaches a terminal: :func:`printable` shows every control character as a visible escape
(``\\x1b``), :func:`one_line` also folds whitespace, and :func:`safe_text` wraps either in a Rich
``Text``, which Rich never parses for markup or emoji. Styled output is built by appending to a
``Text`` (``Text.assemble``), never by formatting outside text into a markup string.

**Tables.** Rich shrinks every column evenly when a table's minimum width exceeds the console,
so columns that must not wrap (numbers, ids) can collapse to nothing. The tables here are laid
out for a known width instead: columns that must stay whole get their exact widths, and one text
column takes what is left (or the table switches to a layout that puts secondary columns under
it).
"""

from __future__ import annotations

import re

from rich import box
from rich.table import Table
from rich.text import Text

_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 (tab and newline aside), DEL, C1 (e.g. CSI \x9b)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks and overrides
    "\u2028\u2029]"  # line and paragraph separators
)
_UNSAFE_IN_LINE = re.compile(_UNSAFE.pattern[:-1] + "\t\n]")


def _visible(match: re.Match[str]) -> str:
    return match.group(0).encode("unicode_escape").decode("ascii")


def printable(text: str) -> str:
    """``text`` with every control character shown as its escape (``\\x1b``, ``\\r``,
    ``\\u202e``): nothing in it can move the cursor, recolour, retitle or reorder the terminal.
    Newlines and tabs stay (use :func:`one_line` for a single line)."""
    return _UNSAFE.sub(_visible, text)


def one_line(text: str) -> str:
    """:func:`printable`, on one line: runs of whitespace (newlines included) become one space."""
    return _UNSAFE_IN_LINE.sub(_visible, " ".join(text.split()))


def safe_text(text: str, style: str = "", *, multiline: bool = False) -> Text:
    """A Rich ``Text`` of outside text: never read as markup or emoji codes, controls escaped."""
    return Text(printable(text) if multiline else one_line(text), style=style)


GAP = 3
"""Characters between two columns: right padding, the (blank) separator, left padding."""


def plain_table(title: str | None = None) -> Table:
    """A table without vertical rules or outer padding: every character goes to content. The
    title may hold outside text (a DSN, a version): it is shown as written, never as markup."""
    return Table(
        title=None if title is None else safe_text(title),
        title_justify="left",
        expand=False,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
    )


def left_for_text(width: int, fixed: list[int], minimum: int) -> int:
    """Width left for the one flexible text column of ``width`` beside ``fixed`` columns."""
    used = sum(fixed) + GAP * len(fixed)
    return max(width - used, minimum)


def fits(width: int, fixed: list[int], text_minimum: int) -> bool:
    """Whether ``fixed`` columns plus a text column of at least ``text_minimum`` fit."""
    return sum(fixed) + GAP * len(fixed) + text_minimum <= width
