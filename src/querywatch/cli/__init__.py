"""The CLI layer: every `querywatch` command, on top of everything else.

Commands wire source -> store -> view and hold no analysis of their own; library modules below
hold no click code. :mod:`~querywatch.cli.context` has what commands share (settings, JSON
output, the error path), :mod:`~querywatch.cli.options` the shared options, and
:mod:`~querywatch.cli.app` the group and :func:`main`.
"""

from __future__ import annotations

from querywatch.cli.app import cli, main
from querywatch.cli.context import Context, fail

__all__ = ["Context", "cli", "fail", "main"]
