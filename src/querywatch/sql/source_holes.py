"""Python's ways of building a string, read as SQL text with holes.

Query builders write ``"… %s …" % args``, ``"… {} …".format(x)``, f-strings and ``+``: where a
part's value is unknown statically it becomes a hole written as its source (``{table}``,
``{quote(name)}``), so lint reads the statement with its holes and messages show the source
text. Used by :mod:`querywatch.sql.source_python`.
"""

from __future__ import annotations

import ast
import re

__all__ = ["format_holes", "hole", "percent_holes", "touch"]

_FORMAT_FIELD = re.compile(r"\{\{|\}\}|\{([^{}!:]*)(?:![rsa])?(?::[^{}]*)?\}")
_PERCENT_FIELD = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?[sdirfgeExXoc%]")


def hole(node: ast.expr) -> str:
    """A value unknown here, written as its source: ``{table}``, ``{quote(name)}``."""
    try:
        text = ast.unparse(node)
    except Exception:  # an odd node only loses its name
        text = "…"
    text = " ".join(text.replace("{", "(").replace("}", ")").split())
    return "{" + (text if len(text) <= 40 else text[:39] + "…") + "}"


def touch(left: str, right: str) -> bool:
    """True when two concatenated pieces would glue two words together."""
    return bool(left and right and (left[-1].isalnum() or left[-1] in "_}")) and (
        right[0].isalnum() or right[0] in "_{"
    )


def percent_holes(text: str, args: ast.expr) -> str:
    """``"… %s …" % args`` with each conversion as a hole named by its argument."""
    values = list(args.elts) if isinstance(args, ast.Tuple) else [args]
    index = 0

    def field(m: re.Match[str]) -> str:
        nonlocal index
        if m.group() == "%%":
            return "%"
        if m.group(1):
            return "{" + m.group(1) + "}"
        value = values[index] if index < len(values) else None
        index += 1
        return hole(value) if value is not None else "{…}"

    return _PERCENT_FIELD.sub(field, text)


def format_holes(text: str, call: ast.Call) -> str:
    """``"… {} …".format(a)`` with each field as a hole named by its argument."""
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    auto = 0

    def field(m: re.Match[str]) -> str:
        nonlocal auto
        if m.group() in ("{{", "}}"):
            return m.group()[0]
        key = (m.group(1) or "").strip()
        value: ast.expr | None = None
        if not key:
            value = call.args[auto] if auto < len(call.args) else None
            auto += 1
        elif key.isdigit():
            value = call.args[int(key)] if int(key) < len(call.args) else None
        else:
            value = keywords.get(key.split(".")[0].split("[")[0])
        if value is None:
            return "{" + key + "}"
        if isinstance(value, ast.Constant) and isinstance(value.value, str | int | float):
            return str(value.value)
        return hole(value)

    return _FORMAT_FIELD.sub(field, text)
