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
    dialect: str  # of its statements, for fingerprints: "postgres" or "mysql"
    description: str

    def _module(self) -> Any:
        try:
            return importlib.import_module(self.module)
        except ModuleNotFoundError as exc:
            if exc.name != self.module:
                raise
            raise LogFormatError(f"the {self.name} format is not available in this build") from None

    def parser(self, options: ParseOptions) -> Parser:
        parser: Parser = self._module().Parser(options)
        return parser

    def sniff(self, head: Sequence[bytes]) -> bool:
        try:
            return bool(self._module().sniff(head))
        except LogFormatError:
            return False


FORMATS: tuple[LogFormat, ...] = (
    LogFormat("pg-csv", "querywatch.logs.pg_csv", "postgres", "PostgreSQL csvlog"),
    LogFormat("pg-json", "querywatch.logs.pg_json", "postgres", "PostgreSQL jsonlog (15+)"),
    LogFormat("mysql-slow", "querywatch.logs.mysql_slow", "mysql", "MySQL / MariaDB slow log"),
    LogFormat("pg-stderr", "querywatch.logs.pg_stderr", "postgres", "PostgreSQL stderr log"),
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
