"""Tables that stay readable on an 80-column terminal and on a pipe.

Rich shrinks every column evenly when a table's minimum width exceeds the console, so columns
that must not wrap (numbers, ids) can collapse to nothing. The tables here are laid out for a known
width instead: columns that must stay whole get their exact widths, and one text column takes what
is left (or the table switches to a layout that puts secondary columns under it).
"""

from __future__ import annotations

from rich import box
from rich.table import Table

GAP = 3
"""Characters between two columns: right padding, the (blank) separator, left padding."""


def plain_table(title: str | None = None) -> Table:
    """A table without vertical rules or outer padding: every character goes to content."""
    return Table(
        title=title,
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
