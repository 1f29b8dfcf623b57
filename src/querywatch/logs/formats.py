"""The log formats ``querywatch digest`` reads, by name, and the guess for ``--format auto``.

Each row names a module holding ``Parser`` (a class taking :class:`ParseOptions`, see
``model.Parser``) and ``sniff`` (``model.Sniffer``); modules are imported only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from querywatch.logs.model import LogFormatError, ParseOptions, Parser


@dataclass(frozen=True, slots=True)
class LogFormat:
    name: str
    module: str
    description: str

    def parser(self, options: ParseOptions) -> Parser:
        cls: Any = importlib.import_module(self.module).Parser
        parser: Parser = cls(options)
        return parser

    def sniff(self, head: Sequence[bytes]) -> bool:
        return bool(importlib.import_module(self.module).sniff(head))


FORMATS: tuple[LogFormat, ...] = (
    LogFormat("pg-csv", "querywatch.logs.pg_csv", "PostgreSQL csvlog"),
    LogFormat("pg-json", "querywatch.logs.pg_json", "PostgreSQL jsonlog (PostgreSQL 15+)"),
    LogFormat("mysql-slow", "querywatch.logs.mysql_slow", "MySQL / MariaDB slow query log"),
    LogFormat("pg-stderr", "querywatch.logs.pg_stderr", "PostgreSQL stderr log, any prefix"),
)
NAMES = tuple(f.name for f in FORMATS)


def get(name: str) -> LogFormat:
    for f in FORMATS:
        if f.name == name:
            return f
    raise LogFormatError(f"unknown log format {name!r}: use one of {', '.join(NAMES)} or auto")


def guess(head: Sequence[bytes], where: str) -> LogFormat:
    """The format whose sniffer accepts the first lines of a file (in FORMATS' order)."""
    for f in FORMATS:
        if f.sniff(head):
            return f
    raise LogFormatError(
        f"{where}: not a log format querywatch reads ({', '.join(NAMES)}); "
        "name it with --format, and for a PostgreSQL stderr log with an unusual "
        "log_line_prefix, pass it with --prefix"
    )
