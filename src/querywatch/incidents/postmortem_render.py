"""The postmortem's document model, its Markdown and HTML, and keeping a person's edits.

A document is a list of sections; each is written between two comment markers (the same in
Markdown and HTML) that record its id and the SHA-256 of the text generated for it:

    <!-- querywatch:section id=summary incident=QW-20251124-1 hash=… -->
    …
    <!-- /querywatch:section -->

Rendered again over an existing file, a section whose text no longer matches its hash was edited
by a person and is kept as they left it (with its old hash, so it stays theirs); an unedited one is
replaced by the fresh text. Text outside the markers is a person's too and stays after the section
it followed. Generated text never contains a marker line: every line of it is escaped content.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from querywatch.errors import QuerywatchError
from querywatch.terminal import one_line, printable

Format = Literal["md", "html"]
FORMATS: tuple[Format, ...] = ("md", "html")
SpanKind = Literal["text", "code", "strong"]
Span = tuple[SpanKind, str]
Part = str | Span  # plain text, or a styled span


class PostmortemError(QuerywatchError):
    """The postmortem cannot be written where asked (names the file and what to do)."""


# -- the document model ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One statement, with where its figures come from, and lines that detail it."""

    spans: tuple[Span, ...]
    source: str | None = None
    children: tuple[Line, ...] = ()


@dataclass(frozen=True, slots=True)
class Block:
    """A labelled group of lines, like the report's "• Duration:" bullets."""

    label: str | None
    lines: tuple[Line, ...]
    style: Literal["bullets", "numbered", "paragraphs"] = "bullets"


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: str
    blocks: tuple[Block, ...]
    level: int = 2  # the heading level: 1 for the document title


@dataclass(frozen=True, slots=True)
class Document:
    incident_id: str
    title: str
    sections: tuple[Section, ...]


def line(*parts: Part, source: str | None = None, children: Sequence[Line] = ()) -> Line:
    """A line from plain strings (text) and ``("code", …)``/``("strong", …)`` spans."""
    spans = tuple(_span(p) for p in parts)
    return Line(spans, source, tuple(children))


def _span(part: Part) -> Span:
    return ("text", part) if isinstance(part, str) else part


def code(text: str) -> Span:
    return ("code", text)


def strong(text: str) -> Span:
    return ("strong", text)


# -- Markdown -------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*\[\]])|(?<!\w)_|_(?!\w)|<|&(?=\w+;|#)")


def _one_line(text: str) -> str:
    """Newlines and runs of spaces become one space (a span's edge spaces stay); control
    characters are shown escaped, so the document is safe to print on a terminal."""
    return printable(re.sub(r"\s+", " ", text))


def md_escape(text: str) -> str:
    """Plain text that Markdown shows as written: no emphasis, links, code or raw HTML."""

    def sub(m: re.Match[str]) -> str:
        s = m.group(0)
        return {"<": "&lt;", "&": "&amp;"}.get(s, "\\" + s)

    return _MD_SPECIAL.sub(sub, _one_line(text))


def md_code(text: str) -> str:
    """An inline code span that holds any text, backticks included."""
    text = one_line(text)
    longest = max((len(r) for r in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_spans(spans: Sequence[Span]) -> str:
    out = []
    for kind, text in spans:
        if kind == "code":
            out.append(md_code(text))
        elif kind == "strong":
            out.append(f"**{md_escape(text)}**")
        else:
            out.append(md_escape(text))
    return "".join(out)


def _md_line(item: Line) -> str:
    text = _md_spans(item.spans)
    if item.source:
        text += f" _(from {md_escape(item.source)})_"
    return text


def _md_items(lines: Sequence[Line], indent: str, numbered: bool) -> list[str]:
    out: list[str] = []
    for n, item in enumerate(lines, start=1):
        bullet = f"{n}. " if numbered else "- "
        out.append(f"{indent}{bullet}{_md_line(item)}")
        out += _md_items(item.children, indent + " " * len(bullet), False)
    return out


def section_md(section: Section) -> str:
    out = [f"{'#' * section.level} {md_escape(section.title)}"]
    for block in section.blocks:
        out.append("")
        if block.style == "paragraphs":
            paragraphs = [_md_line(item) for item in block.lines]
            out.append("\n\n".join(paragraphs))
            continue
        if block.label is None:
            out += _md_items(block.lines, "", block.style == "numbered")
            continue
        label = f"**{md_escape(block.label)}:**"
        if len(block.lines) == 1 and not block.lines[0].children and block.style == "bullets":
            out.append(f"{label} {_md_line(block.lines[0])}")
        else:
            out.append(label)
            out.append("")
            out += _md_items(block.lines, "", block.style == "numbered")
    return "\n".join(out)


# -- HTML -----------------------------------------------------------------------------------------

CSS = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #1d232a; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
code { font: .9em ui-monospace, monospace; background: #f3f4f6; padding: .1em .3em;
       border-radius: 3px; word-break: break-word; }
.src { color: #57606a; font-size: .85em; font-style: italic; }
.label { font-weight: 600; margin: .8rem 0 .2rem; }
section#consistency { background: #fff8c5; border: 1px solid #d4a72c; padding: 0 1rem;
       border-radius: 6px; }
""".strip()


def _html_spans(spans: Sequence[Span]) -> str:
    out = []
    for kind, text in spans:
        t = html.escape(_one_line(text))
        out.append(
            f"<code>{t}</code>"
            if kind == "code"
            else f"<strong>{t}</strong>"
            if kind == "strong"
            else t
        )
    return "".join(out)


def _html_line(item: Line) -> str:
    text = _html_spans(item.spans)
    if item.source:
        text += f' <span class="src">(from {html.escape(_one_line(item.source))})</span>'
    return text


def _html_items(lines: Sequence[Line], numbered: bool) -> str:
    tag = "ol" if numbered else "ul"
    items = []
    for item in lines:
        sub = _html_items(item.children, False) if item.children else ""
        items.append(f"<li>{_html_line(item)}{sub}</li>")
    return f"<{tag}>" + "".join(items) + f"</{tag}>"


def section_html(section: Section) -> str:
    h = f"h{section.level}"
    out = [f'<section id="{html.escape(section.id)}">']
    out.append(f"<{h}>{html.escape(_one_line(section.title))}</{h}>")
    for block in section.blocks:
        if block.style == "paragraphs":
            out += [f"<p>{_html_line(item)}</p>" for item in block.lines]
            continue
        if block.label is not None:
            out.append(f'<p class="label">{html.escape(block.label)}:</p>')
        out.append(_html_items(block.lines, block.style == "numbered"))
    out.append("</section>")
    return "\n".join(out)


def html_page(title: str, body: str) -> str:
    """A self-contained page: inline CSS, no scripts, nothing fetched."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="generator" content="querywatch postmortem">\n'
        f"<title>{html.escape(_one_line(title))}</title>\n"
        f"<style>\n{CSS}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# -- markers and edits ----------------------------------------------------------------------------

_OPEN = re.compile(
    r"^<!-- querywatch:section id=(?P<id>[\w-]+) incident=(?P<incident>\S+) "
    r"hash=(?P<hash>[0-9a-f]{64}) -->$"
)
_CLOSE = "<!-- /querywatch:section -->"
_BODY = re.compile(r"<body[^>]*>\n?(?P<body>.*)\n?</body>", re.DOTALL | re.IGNORECASE)


def normalize(text: str) -> str:
    """What a section's hash covers: line endings and trailing spaces do not count as edits."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(x.rstrip() for x in lines).strip("\n")


def digest(text: str) -> str:
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Marked:
    """A section as found in an existing file."""

    id: str
    incident: str
    hash: str
    content: str

    @property
    def edited(self) -> bool:
        return digest(self.content) != self.hash


@dataclass(frozen=True, slots=True)
class Free:
    """Text a person wrote outside every section."""

    text: str


def parse(text: str) -> list[Marked | Free]:
    """Split a rendered postmortem into its marked sections and the text around them.

    A section whose closing marker was deleted ends at the next opening marker (or the end).
    """
    parts: list[Marked | Free] = []
    free: list[str] = []
    current: tuple[re.Match[str], list[str]] | None = None

    def close() -> None:
        nonlocal current
        if current is not None:
            m, body = current
            parts.append(Marked(m["id"], m["incident"], m["hash"], "\n".join(body)))
            current = None

    def flush_free() -> None:
        if "\n".join(free).strip():
            parts.append(Free(normalize("\n".join(free))))
        free.clear()

    for raw in text.replace("\r\n", "\n").split("\n"):
        opening = _OPEN.match(raw.strip())
        if opening is not None:
            close()
            flush_free()
            current = (opening, [])
        elif raw.strip() == _CLOSE and current is not None:
            close()
        elif current is not None:
            current[1].append(raw)
        else:
            free.append(raw)
    close()
    flush_free()
    return parts


def wrap(section_id: str, incident_id: str, content: str, hash_: str | None = None) -> str:
    content = normalize(content)
    h = hash_ or digest(content)
    return (
        f"<!-- querywatch:section id={section_id} incident={incident_id} hash={h} -->\n"
        f"{content}\n{_CLOSE}"
    )


@dataclass(slots=True)
class Rendered:
    text: str
    kept_sections: list[str] = field(default_factory=list)
    kept_additions: list[str] = field(default_factory=list)


def render(doc: Document, fmt: Format, existing: str | None = None) -> Rendered:
    """The document in ``fmt``; over ``existing`` text, a person's edits and additions stay."""
    one = section_md if fmt == "md" else section_html
    fresh = [(s.id, s.title, one(s)) for s in doc.sections]
    body, kept, added = _merge(doc.incident_id, fresh, _existing_body(existing, fmt))
    joiner = "\n\n" if fmt == "md" else "\n"
    text = joiner.join(body)
    if fmt == "md":
        return Rendered(text + "\n", kept, added)
    return Rendered(html_page(doc.title, text), kept, added)


def _existing_body(existing: str | None, fmt: Format) -> list[Marked | Free]:
    if existing is None or not existing.strip():
        return []
    is_html = re.search(r"<html[\s>]", existing, re.IGNORECASE) is not None
    if is_html and fmt == "md":
        raise PostmortemError("it holds an HTML postmortem: render it with --format html")
    if fmt == "html":
        if not is_html:
            raise PostmortemError("it is not an HTML postmortem: render it with --format md")
        m = _BODY.search(existing)
        existing = m["body"] if m is not None else existing
    parts = parse(existing)
    if not any(isinstance(p, Marked) for p in parts):
        raise PostmortemError(
            "it was not written by querywatch postmortem (no section markers): "
            "choose another output file or remove it"
        )
    return parts


def _merge(
    incident_id: str, fresh: list[tuple[str, str, str]], old: list[Marked | Free]
) -> tuple[list[str], list[str], list[str]]:
    """Fresh sections in their order, each followed by what a person put after it before."""
    titles = {sid: title for sid, title, _ in fresh}
    for p in old:
        if isinstance(p, Marked) and p.incident != incident_id:
            raise PostmortemError(f"it holds the postmortem of incident {p.incident}")
    by_id = {p.id: p for p in old if isinstance(p, Marked)}
    fresh_ids = set(titles)
    # What follows each section (or the top: None) in the old file and is not a fresh section:
    # a person's text, or an edited section that is no longer generated.
    after: dict[str | None, list[Marked | Free]] = {}
    anchor: str | None = None
    for p in old:
        if isinstance(p, Marked) and p.id in fresh_ids:
            anchor = p.id
            continue
        if isinstance(p, Marked) and not p.edited:
            continue  # generated once, not any more, and nobody touched it: gone
        after.setdefault(anchor, []).append(p)
        if isinstance(p, Marked):
            anchor = p.id
    out: list[str] = []
    kept: list[str] = []
    added: list[str] = []

    def emit_after(key: str | None) -> None:
        for p in after.pop(key, []):
            where = f"after {titles.get(key, key)}" if key is not None else "at the top"
            if isinstance(p, Free):
                out.append(p.text)
                added.append(f"your text {where}")
            else:
                out.append(wrap(p.id, p.incident, p.content, p.hash))
                kept.append(p.id)
                emit_after(p.id)

    emit_after(None)
    for sid, title, content in fresh:
        was = by_id.get(sid)
        if was is not None and was.edited:
            out.append(wrap(sid, incident_id, was.content, was.hash))
            kept.append(title)
        else:
            out.append(wrap(sid, incident_id, content))
        emit_after(sid)
    for key in list(after):  # anchored to something that is gone: keep it at the end
        emit_after(key)
    return out, kept, added
