"""Statement fingerprints: the normalized shape of a statement and its stable hash.

One statement reaches us as pg_stat_statements text (``$1``), as in-app text (literals, ``%s``,
``?``, ``:name``) and as server log text; all must land on one fingerprint, so literals, bind
parameters, IN-list lengths, multi-row VALUES, comments, whitespace and keyword case are
normalized away. docs/fingerprints.md has the rules, the hash definition and examples.

This runs on every captured statement, so there is no parser. On Python 3.11 a regex replacement
that is not a constant string costs a Python call per match, so the hot path uses only constant
replacements, ``str`` methods, and patterns whose branches each start with a literal character
(the engine then scans for their first characters in C). Texts with comments, prefixed strings
(``E'..'``) or unusual quoted identifiers first take a slower pass with a callback.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

__all__ = ["CACHE_LIMIT", "Fingerprint", "clear_cache", "fingerprint", "generated_name"]

CACHE_LIMIT = 50_000
"""Cached texts per dialect; the cache is emptied when it grows past this."""


class Fingerprint(NamedTuple):
    id: str  # 16 hex chars: blake2b (8-byte digest) of the UTF-8 normalized text
    normalized: str  # readable normalized text, e.g. "select * from t where id = ?"


_OPS = r"\-+*/<>=~!@#%^&|"
_OPS_END = r"*/<>=~!@#%^&|"  # as PostgreSQL lexes: "=-" is "=" then "-"
_W = r"\x80-\U0010ffff"  # non-ASCII letters may start identifiers and dollar-quote tags


def _after(words: str, tail: str) -> str:
    """Lookbehinds for ``tail`` right after one of ``words`` (grouped by length: fewer tries)."""
    by_len: dict[int, list[str]] = {}
    for w in words.split():
        by_len.setdefault(len(w), []).append(w)
    return "|".join(rf"(?<=\b(?:{'|'.join(ws)}){tail})" for _, ws in sorted(by_len.items()))


# -- the slow first pass: strings, comments, quoted identifiers, with a callback -----------------
_STD = r"'[^']*+(?:''[^']*+)*+'?"  # standard string, '' escape, may be unterminated
_BS = r"[^'\\]*+(?:(?:\\.|'')[^'\\]*+)*+'?"  # the rest of a string with backslash escapes
_MYDQ = r'"[^"\\]*+(?:(?:\\.|"")[^"\\]*+)*+"?'  # MySQL "string"
_DOLLAR = rf"(?P<tag>[A-Za-z_{_W}][\w{_W}]*|)\$(?:.*?\$(?P=tag)\$|.*)"  # after the first "$"
_DQ = r'"[^"]*+(?:""[^"]*+)*+"?'
_BQ = r"`[^`]*+(?:``[^`]*+)*+`?"
_PFX = r"(?<![\w$])(?:[nNbBxX]|[uU]&)"
_NESTED = r"/\*(?:[^*/]++|\*(?!/)|/(?!\*)|/\*(?:[^*]++|\*(?!/))*+\*/)*+\*/|/\*.*"
_SLOW = {  # groups: s = string, c = comment, q = quoted identifier
    "postgres": rf"(?P<s>{_STD}|(?<![\w$])[eE]'{_BS}|{_PFX}{_STD}|\$(?<![\w$]\$){_DOLLAR})"
    rf"|(?P<c>--[^\n]*+|{_NESTED})|(?P<q>{_DQ})",
    "mysql": rf"(?P<s>(?:(?<![\w$])(?:[nNbBxX]|_[A-Za-z0-9]+))?'{_BS}|{_MYDQ})"
    rf"|(?P<c>(?:--(?=\s|$)|#)[^\n]*+|/\*.*?\*/|/\*.*)|(?P<q>{_BQ})",
    "sqlite": rf"(?P<s>{_PFX}?{_STD})|(?P<c>--[^\n]*+|/\*.*?\*/|/\*.*)"
    rf"|(?P<q>{_DQ}|{_BQ}|\[[^\]]*+\]?)",
}
_SIMPLE_ID = r"[a-z_][a-z0-9_$]*+"  # quoted identifiers that every later pass leaves alone
_SIMPLE = {  # the whole text, when all its quoted identifiers are simple
    "postgres": rf'(?:[^"]*+"{_SIMPLE_ID}")*+[^"]*+',
    "mysql": rf"(?:[^`]*+`{_SIMPLE_ID}`)*+[^`]*+",
    "sqlite": rf'(?:[^"`\[]*+(?:"{_SIMPLE_ID}"|`{_SIMPLE_ID}`))*+[^"`\[]*+',
}
# A prefixed string (E'..', N'..', X'..', _utf8mb4'..') leaves "E?" after the literal pass:
# such texts are redone with the slow pass (E'..' has backslash escapes, '..' has not).
_PREFIXED = re.compile(r"\?(?<=[\w&]\?)")
_DOT_NUM = re.compile(r"\.\?(?<![\w$)\]\"`]\.\?)")  # ".5" leaves ".?" (rare: not in the pass)
_N_PARAM = re.compile(r"[nN]\$(?<![\w$][nN]\$)(?=[0-9])")  # pg_stat_statements: N'x' -> N$1


# -- the literal pass: strings, numbers, bind parameters -> "?" ----------------------------------
def _literals(dialect: str) -> re.Pattern[str]:
    """One alternation whose branches all start with a literal character."""
    rest = r"[0-9_]*+(?:\.[0-9_]*+)?(?:[eE][-+]?[0-9]+)?"
    hex_ = r"[xX][0-9a-fA-F_]+|[oO][0-7_]+|[bB][01_]+"
    branches = [
        rf"{d}(?<![\w$]{d})" + (f"(?:{hex_}|{rest})" if d == "0" else rest) for d in "0123456789"
    ]
    branches += [
        r"\?[0-9]*+",  # ? and ?NNN
        r"%(?:\([^()]*\))?[sbt](?!\w)",  # %s, %(name)s (psycopg 3 also has %b, %t)
        r":(?<![\w:?]:)[A-Za-z_]\w*",  # :name, never the "::" of a cast
    ]
    if dialect == "postgres":
        branches += [_STD, rf"\$(?<![\w$?]\$)(?:[0-9]+|{_DOLLAR})"]  # $1 and $$..$$, $t$..$t$
    elif dialect == "mysql":
        branches += [f"'{_BS}", _MYDQ]
    else:
        branches += [_STD, r"[@$](?<![\w$?][@$])[A-Za-z_][\w$]*"]
    return re.compile("|".join(branches), re.S)


# After lower-casing and single-spacing. A unary minus folds into its literal, as in
# pg_stat_statements ("x = -5" -> "x = $1", "a - 5" -> "a - $1"): unary is after an operator,
# "(", ",", "[" or a keyword. TRUE, FALSE and NULL are constants there too (IS [NOT] NULL not).
_UNARY_KW = "select and or not when then else between like ilike is by limit offset return set"
_NEG = re.compile(rf"-(?:(?<=[{_OPS}(,\[]-)|(?<=[{_OPS}(,\[] -)|{_after(_UNARY_KW, ' -')}) ?\?")
_CONSTS = ("true", "false", "null")
_NULLS = re.compile(  # "x IS [NOT] TRUE" is a test, not a constant
    "(?:"
    + "|".join(rf"{w}(?<![\w$.\"`]{w})(?<!\bis {w})(?<!\bnot {w})" for w in _CONSTS)
    + r")(?![\w$\"`])"
)

# -- canonical spacing ---------------------------------------------------------------------------
# Operators get one space on each side; "(" "[" "." ":" are tight; ")" "]" "," ";" are tight on
# their left; "(" gets its space back after an operator, a comma or a keyword.
_MYOPS = _OPS.replace("@", "")  # MySQL @var is a variable, not an operator
_SPLIT = {  # operator tokens
    d: re.compile(rf"([{ops}](?:[{ops}]*[{end}])?)")
    for d, ops, end in [
        ("postgres", _OPS, _OPS_END),
        ("mysql", _MYOPS, _OPS_END.replace("@", "")),
        ("sqlite", _OPS, _OPS_END),
    ]
}
_LOOSE = {  # does an operator touch anything but a space or a tight neighbour? (else no split)
    d: re.compile(
        rf"[{ops}](?:(?<=[^ (\[.:{ops}][{ops}])|(?=[^ )\],.;{ops}])"
        rf"|(?<=[{ops}][-+])(?![{ops}]))"
    )
    for d, ops in [("postgres", _OPS), ("mysql", _MYOPS), ("sqlite", _OPS)]
}
_KW_PAREN = (
    "in values value and or not exists as on from join where using over when then else "
    "select union except intersect lateral filter set conflict all distinct"
)
_PAREN = re.compile(rf"\((?:(?<=[{_OPS},]\()|{_after(_KW_PAREN, '[(]')})")
_IN = re.compile(r"in \(\?(?:, \?)+\)")
_ROW = r"\?(?:::[\w\[\]]+)?|\((?:[^()]++|\([^()]*+\))*+\)"
_ROWS = re.compile(rf"(values? |in \()({_ROW})(?:, \2)+")  # identical rows or items: keep one
_ARRAY = re.compile(r"array\[\?(?:, \?)+\]")
# Tight ":" must not make a name look like a ":name" parameter that the text never had
# (": a" would become ":a", a parameter when fingerprinted again): such a colon keeps its space.
# A name right after a "?" is not a parameter either ("0$a" is "?$a", never "??").
_BARE_COLON = re.compile(r":(?<![\w:?]:)(?=[a-z_])")

# -- generated identifiers -----------------------------------------------------------------------
# Code that names temporary tables, columns and functions with a random or address-derived token
# (``t`` + uuid4 hex, ``dogs_new_`` + 6 random bytes in hex, ``lambda_`` + hash(fn)) issues a new
# text every run; the token becomes "?" so the statement keeps one fingerprint. A token is a
# uuid (8-4-4-4-12, "-" or "_") or a run of 12 or more hex digits holding at least one digit:
# random hex of that length almost always holds one, words never do.
_HEX = "0-9a-fA-F"
_GENERATED = re.compile(
    rf"[{_HEX}]{{8}}(?:[-_][{_HEX}]{{4}}){{3}}[-_][{_HEX}]{{12}}|(?=[a-fA-F]*[0-9])[{_HEX}]{{12,}}"
)
# Savepoint names carry no meaning (ORMs number them, sqlite-utils draws them at random): as in
# pg_stat_statements since PostgreSQL 17 ("SAVEPOINT $1", "RELEASE $1"), the name is a constant.
_SAVEPOINT_VERBS = ("savepoint ", "release ", "rollback ")
_SAVEPOINT = re.compile(
    r"\A(savepoint|release(?: savepoint)?|rollback(?: transaction| work)? to(?: savepoint)?) "
    r"(?:\"[^\"]*\"?|`[^`]*`?|\[[^\]]*\]?|[^ ;]+)"
)
_DIGITS = b"0123456789"
# TRUNCATE's table list has no order that matters, and code that builds it from a set or a
# dict (Django's flush) sends the tables in another order each run: the list is sorted.
_TRUNCATE = re.compile(
    r"\A(truncate(?: table)?(?: only)?) (.+?)"
    r"((?: (?:restart|continue) identity| cascade| restrict)*)\Z"
)


def _truncate_sorted(text: str) -> str:
    """``truncate b, a cascade`` as ``truncate a, b cascade`` (see _TRUNCATE)."""
    m = _TRUNCATE.match(text)
    if m is None or ", " not in m[2]:
        return text
    return f"{m[1]} {', '.join(sorted(m[2].split(', ')))}{m[3]}"


def generated_name(name: str) -> str:
    """``name`` with its generated tokens (see above) as "?": ``dogs_new_9f3a…`` is
    ``dogs_new_?``, the form such a name has in a normalized text."""
    return _GENERATED.sub("?", name)


class _Dialect:
    """The compiled passes of one dialect."""

    __slots__ = (
        "brackets",
        "dollar",
        "hash_comments",
        "literals",
        "loose",
        "qchar",
        "simple",
        "slow",
        "split",
    )

    def __init__(self, name: str) -> None:
        self.dollar = name == "postgres"  # $1 parameters (and N$1 in pg_stat_statements)
        self.slow = re.compile(_SLOW[name], re.S)
        self.simple = re.compile(_SIMPLE[name])
        self.literals = _literals(name)
        self.split = _SPLIT[name]
        self.loose = _LOOSE[name]
        self.hash_comments = name == "mysql"  # "# ..." comments
        self.qchar = "`" if name == "mysql" else '"'  # quoted identifiers
        self.brackets = name == "sqlite"  # [name] identifiers, and `name` besides "name"


_DIALECTS = {name: _Dialect(name) for name in _SLOW}
_CACHE: dict[str, dict[str, Fingerprint]] = {name: {} for name in _DIALECTS}
for _alias, _name in [
    ("postgresql", "postgres"),
    ("pg", "postgres"),
    ("mariadb", "mysql"),
    ("sqlite3", "sqlite"),
]:
    _DIALECTS[_alias], _CACHE[_alias] = _DIALECTS[_name], _CACHE[_name]


def _slow_pass(sql: str, d: _Dialect) -> tuple[str, list[str]]:
    """Strings -> "?", comments -> " ", unusual quoted identifiers -> "\x01" (returned aside)."""
    names: list[str] = []

    def repl(m: re.Match[str]) -> str:
        if m.lastgroup == "s":
            return "?"
        if m.lastgroup == "c":
            return " "
        name = m.group()
        if d.simple.fullmatch(name):
            return name
        names.append(name)
        return "\x01"

    return d.slow.sub(repl, sql.replace("\x01", " ")), names


def _normalize(sql: str, d: _Dialect) -> str:
    """The normalized text: see the module docstring and docs/fingerprints.md."""
    names: list[str] | None = None
    slow = (
        "--" in sql
        or "/*" in sql
        or (d.hash_comments and "#" in sql)
        or (d.qchar in sql and d.simple.fullmatch(sql) is None)
        or (d.brackets and ("[" in sql or ("`" in sql and d.simple.fullmatch(sql) is None)))
        or "\x01" in sql
    )
    if slow:
        sql, names = _slow_pass(sql, d)
    if d.dollar and "$" in sql and ("N$" in sql or "n$" in sql):
        sql = _N_PARAM.sub("$", sql)
    t = d.literals.sub("?", sql)
    if not slow and "'" in sql and _PREFIXED.search(t):
        sql, names = _slow_pass(sql, d)
        t = d.literals.sub("?", sql)
    if ".?" in t:
        t = _DOT_NUM.sub("?", t)
    t = t.lower()
    if "," in t:
        t = t.replace(",", ", ")
    t = " ".join(t.split())
    if "null" in t or "true" in t or "false" in t:
        t = _NULLS.sub("?", t)
    if "-" in t and ("-?" in t or "- ?" in t):
        t = _NEG.sub("?", t)
    if d.loose.search(t):
        t = " ".join(" ".join(d.split.split(t)).split())
    t = t.replace(" ,", ",").replace(" (", "(").replace("( ", "(").replace(" )", ")")
    if "." in t:
        t = t.replace(" .", ".").replace(". ", ".")
        if ".?" in t and _DOT_NUM.search(t):  # ". ?" is not the number ".5": keep it apart
            t = _DOT_NUM.sub(". ?", t)
    if "[" in t:
        t = t.replace(" [", "[").replace("[ ", "[").replace(" ]", "]")
    if ":" in t:
        t = t.replace(" :", ":").replace(": ", ":")
        if _BARE_COLON.search(t):
            t = _BARE_COLON.sub(": ", t)
    if ";" in t:
        t = " ".join(t.replace(";", "; ").split()).replace(" ;", ";").rstrip("; ")
    if "!=" in t:
        t = t.replace("!=", "<>")
    if "(" in t:
        t = _PAREN.sub(" (", t)
    if names:
        pieces = t.split("\x01")
        t = pieces[0] + "".join(n + p for n, p in zip(names, pieces[1:], strict=False))
    if "?" not in t and t.startswith(_SAVEPOINT_VERBS):
        t = _SAVEPOINT.sub(lambda m: m[1] + " ?", t, count=1)
    if "?, ?" in t or "), (" in t:
        if "(?, ?" in t:
            t = _IN.sub("in (?)", t)
        if "), (" in t:
            t = _ROWS.sub(lambda m: m[1] + m[2], t)
        if "array[?, " in t:
            t = _ARRAY.sub("array[?]", t)
    return t


def fingerprint(sql: str, dialect: str = "postgres", *, remember: bool = True) -> Fingerprint:
    """Fingerprint one statement; never raises on any text (an unknown dialect is a ValueError).

    ``remember=False`` keeps neither the text nor its result in the cache: for texts seen once
    (the agent fingerprints each pg_stat_statements entry once and keeps the result itself).
    """
    try:
        cache = _CACHE[dialect]
    except KeyError:
        dialect = str(dialect).lower()
        if dialect not in _DIALECTS:
            msg = f"unknown SQL dialect {dialect!r}: use postgres, mysql or sqlite"
            raise ValueError(msg) from None
        cache = _CACHE[dialect]
    fp = cache.get(sql)
    if fp is None:
        text = _normalize(sql, _DIALECTS[dialect])
        try:
            data = text.encode()
        except UnicodeEncodeError:  # lone surrogates: encode them as they are
            data = text.encode("utf-8", "surrogatepass")
        # Digits left after the literal pass sit in identifiers; bytes.translate finds them
        # several times faster than a regex search, so texts without any skip the next pass.
        if len(data.translate(None, _DIGITS)) != len(data):
            named = _GENERATED.sub("?", text)
            if named != text:
                text, data = named, named.encode("utf-8", "surrogatepass")
        if text.startswith("truncate ") and ", " in text:
            text = _truncate_sorted(text)
            data = text.encode("utf-8", "surrogatepass")
        # tuple.__new__ skips NamedTuple's Python-level __new__ (a measurable share of the time)
        fp = tuple.__new__(Fingerprint, (hashlib.blake2b(data, digest_size=8).hexdigest(), text))
        if not remember:
            return fp
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        cache[sql] = fp
    return fp


def clear_cache() -> None:
    """Forget cached fingerprints (benchmarks use this to measure unseen statements)."""
    for cache in _CACHE.values():
        cache.clear()  # aliases share their dialect's dict: clearing twice is harmless
