"""Document parsers: a file's bytes → a :class:`~haniwa.knowledge.base.ParsedDocument`.

One class per format, each a :class:`~haniwa.knowledge.base.Parser`, registered through the
``register_parsers`` hook like any plugin's. Parsers keep the structure chunking needs: the heading path
of every section, tables whole as Markdown (``kind="table"``) with their header row, and PDF page numbers.

Corrupt input can fail anywhere inside a third-party library, so each parser translates every library
exception into one :class:`~haniwa.errors.ValidationError` naming the file, at this one boundary.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pluggy

from haniwa.errors import PlatformError, ValidationError
from haniwa.hookspecs import hookimpl
from haniwa.knowledge.base import ParsedDocument, Parser, Section

__all__ = [
    "ParserSet",
    "TextParser",
    "MarkdownParser",
    "HtmlParser",
    "PdfParser",
    "DocxParser",
    "CsvParser",
    "XlsxParser",
    "JsonParser",
    "decode_text",
    "register_parsers",
]

_TABLE_ROWS_PER_SECTION = 50  # CSV/XLSX: small enough to chunk well, large enough to keep context
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# Evidence that bytes really were Shift_JIS: kana, CJK punctuation or full-width forms. Latin-1 text
# mis-read as cp932 yields kanji and half-width katakana, never these.
_JAPANESE_EVIDENCE = re.compile(r"[\u3000-\u30ff\uff01-\uff5e]")
_KANJI_NEXT_TO_LATIN = re.compile(r"[A-Za-z][\u4e00-\u9fff]|[\u4e00-\u9fff][A-Za-z]")
_HALF_WIDTH_KANA = re.compile(r"[\uff61-\uff9f]")


def decode_text(data: bytes) -> str:
    """Decode a text file: BOM (UTF-8, UTF-16) first, then strict UTF-8, then cp932 (Shift_JIS, common
    for Japanese files) when the result looks Japanese, else Latin-1 (which decodes any bytes)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data.decode("utf-8-sig")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp932")
    except UnicodeDecodeError:
        return data.decode("latin-1")
    plausible = _JAPANESE_EVIDENCE.search(text) or not (
        _HALF_WIDTH_KANA.search(text) or _KANJI_NEXT_TO_LATIN.search(text)
    )
    return text if plausible else data.decode("latin-1")


def _clean(text: str) -> str:
    return " ".join(text.split())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _markdown_table(rows: Iterable[Sequence[Any]]) -> str:
    """Rows (the first is the header) as a Markdown table; empty rows and trailing empty columns dropped."""
    cells = [[_clean(_cell(v)).replace("|", "\\|") for v in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return ""
    width = max(i + 1 for row in cells for i, v in enumerate(row) if v)
    cells = [(row + [""] * width)[:width] for row in cells]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    lines.insert(1, "|" + " --- |" * width)
    return "\n".join(lines)


class _Builder:
    """Collects sections while tracking the heading path (a stack of (level, text))."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._path: list[tuple[int, str]] = []

    @property
    def headings(self) -> tuple[str, ...]:
        return tuple(text for _, text in self._path)

    def heading(self, level: int, text: str) -> None:
        text = _clean(text)
        if not text:
            return
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, text))

    def text(self, text: str, page: int | None = None) -> None:
        text = text.strip()
        if text:
            self.sections.append(Section(text, self.headings, "text", page))

    def table(self, rows: Iterable[Sequence[Any]], page: int | None = None, per_section: int = 0) -> None:
        """A table section; with ``per_section``, several, each repeating the header row."""
        rows = list(rows)
        if not rows:
            return
        step = per_section or len(rows)
        for start in range(1, max(len(rows), 2), step):
            rendered = _markdown_table([rows[0], *rows[start : start + step]])
            if rendered:
                self.sections.append(Section(rendered, self.headings, "table", page))

    def paragraphs(self, text: str, page: int | None = None) -> None:
        for paragraph in _PARAGRAPH_BREAK.split(text):
            self.text(paragraph, page)

    def done(self, title: str | None = None) -> ParsedDocument:
        title = _clean(title) if title else None
        return ParsedDocument(tuple(self.sections), title or None)


@contextmanager
def _reading(filename: str, kind: str) -> Iterator[None]:
    try:
        yield
    except PlatformError:
        raise
    except Exception as exc:  # any library error on corrupt input means the same to the caller
        raise ValidationError(
            f"{filename}: not a readable {kind} file ({type(exc).__name__}: {exc})"
        ) from exc


class _BaseParser:
    name: str = ""
    suffixes: tuple[str, ...] = ()

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        """Parse ``data``; empty input gives no sections, corrupt input raises ``ValidationError``."""
        if not data.strip():
            return ParsedDocument(sections=())
        with _reading(filename, self.name):
            return self._parse(data)

    def _parse(self, data: bytes) -> ParsedDocument:
        raise NotImplementedError


class TextParser(_BaseParser):
    """Plain text: encoding detected (:func:`decode_text`), one section per blank-line paragraph."""

    name = "text"
    suffixes: tuple[str, ...] = (".txt",)

    def _parse(self, data: bytes) -> ParsedDocument:
        out = _Builder()
        out.paragraphs(decode_text(data).replace("\r\n", "\n"))
        return out.done()


class MarkdownParser(_BaseParser):
    """Markdown (markdown-it-py, CommonMark + tables): ATX/setext headings give the heading path of the
    sections after them, tables become ``kind="table"`` sections, other blocks keep their source text.
    The title is the first level-1 heading."""

    name = "markdown"
    suffixes: tuple[str, ...] = (".md", ".markdown")

    def _parse(self, data: bytes) -> ParsedDocument:
        from markdown_it import MarkdownIt

        text = decode_text(data).replace("\r\n", "\n")
        tokens = MarkdownIt("commonmark").enable("table").parse(text)
        lines = text.split("\n")
        out, title, i = _Builder(), None, 0
        while i < len(tokens):
            tok = tokens[i]
            end = _block_end(tokens, i)
            if tok.type == "heading_open":
                heading = _inline_text(tokens[i + 1])
                out.heading(int(tok.tag[1:]), heading)
                if tok.tag == "h1" and title is None:
                    title = heading
            elif tok.type == "table_open":
                rows: list[list[str]] = []
                for inner in tokens[i:end]:
                    if inner.type == "tr_open":
                        rows.append([])
                    elif inner.type == "inline" and rows:
                        rows[-1].append(_inline_text(inner))
                out.table(rows)
            elif tok.map is not None and tok.type != "hr":
                out.text("\n".join(lines[tok.map[0] : tok.map[1]]))
            i = end
        return out.done(title)


def _block_end(tokens: Sequence[Any], i: int) -> int:
    """Index just past the block opened at ``tokens[i]`` (the token itself when it opens nothing)."""
    if tokens[i].nesting != 1:
        return i + 1
    level = tokens[i].level
    j = i + 1
    while not (tokens[j].nesting == -1 and tokens[j].level == level):
        j += 1
    return j + 1


def _inline_text(tok: Any) -> str:
    """The plain text of an inline token (emphasis and link markup dropped)."""
    parts = [
        " " if child.type in ("softbreak", "hardbreak") else child.content
        for child in tok.children or ()
        if child.type in ("text", "code_inline", "softbreak", "hardbreak")
    ]
    return "".join(parts) if parts else str(tok.content)


_HTML_DROP = ("script", "style", "nav", "noscript", "template", "head", "title")
_HTML_BLOCKS = frozenset(
    ("address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption")
    + ("figure", "footer", "form", "header", "li", "main", "ol", "p", "pre", "section", "ul")
)


class HtmlParser(_BaseParser):
    """HTML (BeautifulSoup, built-in ``html.parser``): script/style/nav dropped, h1–h6 give the heading
    path, each block element becomes a section (``<li>`` prefixed ``- ``), ``<table>`` a Markdown table
    section. The title comes from ``<title>``."""

    name = "html"
    suffixes: tuple[str, ...] = (".html", ".htm")

    def _parse(self, data: bytes) -> ParsedDocument:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(data, "html.parser")
        title = soup.title.get_text() if soup.title else None
        for tag in soup.find_all(_HTML_DROP):
            tag.decompose()
        out = _Builder()
        buf: list[str] = []
        _walk_html(soup.body or soup, out, buf)
        out.text(_clean("".join(buf)))
        return out.done(title)


def _walk_html(node: Any, out: _Builder, buf: list[str]) -> None:
    from bs4.element import NavigableString, Tag

    def flush(prefix: str = "") -> None:
        text = _clean("".join(buf))
        buf.clear()
        if text:
            out.text(prefix + text)

    for child in node.children:
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # subclasses are comments, doctypes, CDATA
                buf.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower()
        if re.fullmatch(r"h[1-6]", name):
            flush()
            out.heading(int(name[1]), child.get_text())
        elif name == "table":
            flush()
            rows = [[c.get_text() for c in tr.find_all(["th", "td"])] for tr in child.find_all("tr")]
            out.table(rows)
        elif name == "br":
            buf.append("\n")
            flush()
        elif name in _HTML_BLOCKS:
            flush()
            _walk_html(child, out, buf)
            flush("- " if name == "li" else "")
        else:
            _walk_html(child, out, buf)


class PdfParser(_BaseParser):
    """PDF (pypdf): extracted text, one section per blank-line paragraph of each page, ``page`` 1-based.
    The title comes from the document metadata. Encrypted files are tried with an empty password."""

    name = "pdf"
    suffixes: tuple[str, ...] = (".pdf",)

    def _parse(self, data: bytes) -> ParsedDocument:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("the PDF is encrypted with a password")
        out = _Builder()
        for number, page in enumerate(reader.pages, start=1):
            out.paragraphs(page.extract_text() or "", page=number)
        meta = reader.metadata
        return out.done(meta.title if meta else None)


_DOCX_HEADING = re.compile(r"(?:heading|見出し)\s*(\d)", re.IGNORECASE)


class DocxParser(_BaseParser):
    """Word (python-docx): body paragraphs and tables in document order; paragraphs styled ``Title``
    (level 0), ``Heading N`` or ``見出し N`` give the heading path; tables become Markdown table sections.
    The title comes from the core properties, else the first ``Title`` paragraph."""

    name = "docx"
    suffixes: tuple[str, ...] = (".docx",)

    def _parse(self, data: bytes) -> ParsedDocument:
        import docx
        from docx.table import Table

        document = docx.Document(io.BytesIO(data))
        out, title = _Builder(), document.core_properties.title or None
        # iter_inner_content walks the body's XML children, so tables stay between their paragraphs
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                out.table([cell.text for cell in row.cells] for row in block.rows)
                continue
            style = unicodedata.normalize("NFKC", block.style.name if block.style is not None else "")
            level = 0 if style.strip().lower() == "title" else None
            if match := _DOCX_HEADING.fullmatch(style.strip()):
                level = int(match.group(1))
            if level is None:
                out.text(block.text)
            else:
                out.heading(level, block.text)
                if level == 0 and title is None:
                    title = block.text
        return out.done(title)


class CsvParser(_BaseParser):
    """CSV (encoding detected as for text; tab-separated when the first line has tabs but no commas):
    Markdown table sections of up to 50 rows, each repeating the header row."""

    name = "csv"
    suffixes: tuple[str, ...] = (".csv",)

    def _parse(self, data: bytes) -> ParsedDocument:
        text = decode_text(data)
        first = text.split("\n", 1)[0]
        delimiter = "\t" if "\t" in first and "," not in first else ","
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(row)]
        out = _Builder()
        out.table(rows, per_section=_TABLE_ROWS_PER_SECTION)
        return out.done()


class XlsxParser(_BaseParser):
    """Excel (openpyxl, read-only, cached values): each sheet is a heading (its name) over Markdown table
    sections of up to 50 rows, each repeating the sheet's first non-empty row as header."""

    name = "xlsx"
    suffixes: tuple[str, ...] = (".xlsx",)

    def _parse(self, data: bytes) -> ParsedDocument:
        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            out = _Builder()
            for sheet in book.worksheets:
                out.heading(1, sheet.title)
                rows = [row for row in sheet.iter_rows(values_only=True) if any(_cell(v) for v in row)]
                out.table(rows, per_section=_TABLE_ROWS_PER_SECTION)
            return out.done(book.properties.title)
        finally:
            book.close()


class JsonParser(_BaseParser):
    """JSON: a list gives one section per item (an object as ``key: value`` lines, nested keys dotted),
    anything else one section of ``key.path: value`` lines. Invalid JSON raises ``ValidationError``."""

    name = "json"
    suffixes: tuple[str, ...] = (".json",)

    def _parse(self, data: bytes) -> ParsedDocument:
        value = json.loads(decode_text(data))
        out = _Builder()
        for item in value if isinstance(value, list) else [value]:
            out.text("\n".join(_json_lines(item, "")))
        return out.done()


def _json_scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _json_lines(value: Any, path: str) -> list[str]:
    if isinstance(value, dict):
        lines = [line for k, v in value.items() for line in _json_lines(v, f"{path}.{k}" if path else str(k))]
        return lines or ([f"{path}: {{}}"] if path else [])
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            joined = ", ".join(_json_scalar(v) for v in value)
            return [f"{path}: {joined}" if path else joined]
        return [line for i, v in enumerate(value) for line in _json_lines(v, f"{path}[{i}]")]
    return [f"{path}: {_json_scalar(value)}" if path else _json_scalar(value)]


_BUILTINS: tuple[Parser, ...] = (
    TextParser(),
    MarkdownParser(),
    HtmlParser(),
    PdfParser(),
    DocxParser(),
    CsvParser(),
    XlsxParser(),
    JsonParser(),
)


@hookimpl
def register_parsers(register: Any) -> None:
    """Register the built-in parsers."""
    for parser in _BUILTINS:
        register(parser)


def _suffix(filename: str) -> str:
    base = re.split(r"[/\\]", filename)[-1]
    return "." + base.rsplit(".", 1)[1].lower() if "." in base.strip(".") else ""


class ParserSet:
    """The parsers in use, by lower-case suffix; for a suffix registered twice the later one wins.

    >>> ParserSet([TextParser()]).for_name("notes/README.TXT").name
    'text'
    """

    def __init__(self, parsers: Iterable[Parser] = ()) -> None:
        self._by_suffix: dict[str, Parser] = {}
        for parser in parsers:
            self.add(parser)

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager) -> ParserSet:
        """Collect every ``register_parsers`` implementation. pluggy calls the most recently registered
        plugin (and ``tryfirst``) first; registrations are applied in reverse so that one wins."""
        found: list[Parser] = []
        pm.hook.register_parsers(register=found.append)
        return cls(reversed(found))

    def add(self, parser: Parser) -> None:
        """Use ``parser`` for its suffixes, replacing earlier ones."""
        for suffix in parser.suffixes:
            self._by_suffix[suffix.lower()] = parser

    @property
    def suffixes(self) -> tuple[str, ...]:
        """Every supported suffix, sorted (``(".csv", ".docx", ...)``)."""
        return tuple(sorted(self._by_suffix))

    def for_name(self, filename: str) -> Parser | None:
        """The parser for ``filename`` by its suffix, or ``None``."""
        return self._by_suffix.get(_suffix(filename))

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        """Parse with the parser for ``filename``; unsupported suffixes raise ``ValidationError``."""
        parser = self.for_name(filename)
        if parser is None:
            supported = ", ".join(self.suffixes)
            raise ValidationError(f"{filename}: unsupported file type (supported: {supported})")
        return parser.parse(data, filename)
