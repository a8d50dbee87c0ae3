"""Document parsers on real files written with the libraries users write them with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pluggy
import pytest

from haniwa import hookspecs
from haniwa.errors import ValidationError
from haniwa.hookspecs import hookimpl
from haniwa.knowledge import parse
from haniwa.knowledge.base import ParsedDocument, Parser, Section
from haniwa.knowledge.parse import ParserSet, TextParser, decode_text

MATERIALS = [("アルミニウム", "12kg"), ("銅", "3kg"), ("粘土", "25kg")]


@pytest.fixture(scope="module")
def parsers() -> ParserSet:
    pm = pluggy.PluginManager("haniwa")
    pm.add_hookspecs(hookspecs)
    pm.register(parse, "haniwa.knowledge.parse")
    return ParserSet.from_plugins(pm)


def tables(doc: ParsedDocument) -> list[Section]:
    return [s for s in doc.sections if s.kind == "table"]


# -- the set ---------------------------------------------------------------------------------------------
def test_builtins_registered_through_the_hook(parsers: ParserSet) -> None:
    assert parsers.suffixes == (
        ".csv",
        ".docx",
        ".htm",
        ".html",
        ".json",
        ".markdown",
        ".md",
        ".pdf",
        ".txt",
        ".xlsx",
    )
    for suffix in parsers.suffixes:
        parser = parsers.for_name("dir/file" + suffix)
        assert isinstance(parser, Parser)
    assert parsers.for_name("a/b/REPORT.PDF") is parsers.for_name("x.pdf")
    assert parsers.for_name("archive.tar.gz") is None
    assert parsers.for_name("Makefile") is None


def test_a_later_plugin_overrides_a_builtin() -> None:
    class Shouting:
        name = "shouting"
        suffixes: tuple[str, ...] = (".txt",)

        def parse(self, data: bytes, filename: str) -> ParsedDocument:
            return ParsedDocument((Section(data.decode().upper()),))

    class Plugin:
        @hookimpl
        def register_parsers(self, register: Any) -> None:
            register(Shouting())

    pm = pluggy.PluginManager("haniwa")
    pm.add_hookspecs(hookspecs)
    pm.register(parse, "haniwa.knowledge.parse")
    pm.register(Plugin(), "shouting")
    parsers = ParserSet.from_plugins(pm)
    assert parsers.parse(b"hello", "a.txt").text == "HELLO"
    assert parsers.for_name("a.md") is not None  # the other built-ins stay
    # a plain list: the later parser wins as well
    assert ParserSet([Shouting(), TextParser()]).parse(b"hello", "a.txt").text == "hello"


def test_unsupported_suffix_is_a_validation_error(parsers: ParserSet) -> None:
    with pytest.raises(ValidationError, match=r"photo\.png.*unsupported.*\.docx"):
        parsers.parse(b"\x89PNG", "photo.png")


@pytest.mark.parametrize("name", ["a.txt", "a.md", "a.html", "a.csv", "a.json", "a.pdf", "a.docx", "a.xlsx"])
def test_empty_documents_have_no_sections(parsers: ParserSet, name: str) -> None:
    assert parsers.parse(b"", name) == ParsedDocument(sections=())
    assert parsers.parse(b" \n\t\n ", name).sections == ()


@pytest.mark.parametrize("name", ["broken.pdf", "broken.docx", "broken.xlsx", "broken.json"])
def test_corrupt_files_name_the_file(parsers: ParserSet, name: str) -> None:
    with pytest.raises(ValidationError, match=name.replace(".", r"\.")) as info:
        parsers.parse(b"{this is not a " + name.encode(), name)
    assert info.value.__cause__ is not None  # the library's exception is kept for the logs


# -- text ------------------------------------------------------------------------------------------------
JA = "ハニワロボは家庭用ロボットです。\n\n材料はアルミニウムです。重さは12kgです。"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp932"])
def test_text_encodings(parsers: ParserSet, tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "spec.txt"
    path.write_bytes(JA.encode(encoding))
    doc = parsers.parse(path.read_bytes(), path.name)
    assert [s.text for s in doc.sections] == [
        "ハニワロボは家庭用ロボットです。",
        "材料はアルミニウムです。重さは12kgです。",
    ]
    assert all(s.kind == "text" and s.headings == () and s.page is None for s in doc.sections)


def test_decode_text_falls_back_to_latin1() -> None:
    assert decode_text("Café crème, naïve résumé.".encode("latin-1")) == "Café crème, naïve résumé."
    assert decode_text("ｶﾀｶﾅと漢字。".encode("cp932")) == "ｶﾀｶﾅと漢字。"
    assert decode_text("東京都港区".encode("cp932")) == "東京都港区"  # kanji only, still Shift_JIS


def test_text_windows_newlines(parsers: ParserSet) -> None:
    doc = parsers.parse(b"first line\r\nsame paragraph\r\n\r\nsecond", "a.txt")
    assert [s.text for s in doc.sections] == ["first line\nsame paragraph", "second"]


# -- markdown --------------------------------------------------------------------------------------------
MARKDOWN = """ハニワ製品仕様
==============

ハニワロボは**家庭用**ロボットです。

## 材料

| 材料 | 重さ |
|:-----|-----:|
| アルミニウム | 12kg |
| 銅 | 3kg |

- 軽い
- 丈夫

### 仕上げ
釉薬を使います。

概要
----
以上です。
"""


def test_markdown_structure(parsers: ParserSet, tmp_path: Path) -> None:
    path = tmp_path / "spec.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    doc = parsers.parse(path.read_bytes(), path.name)
    assert doc.title == "ハニワ製品仕様"
    got = [(s.kind, s.headings, s.text) for s in doc.sections]
    assert got == [
        ("text", ("ハニワ製品仕様",), "ハニワロボは**家庭用**ロボットです。"),
        (
            "table",
            ("ハニワ製品仕様", "材料"),
            "| 材料 | 重さ |\n| --- | --- |\n| アルミニウム | 12kg |\n| 銅 | 3kg |",
        ),
        ("text", ("ハニワ製品仕様", "材料"), "- 軽い\n- 丈夫"),
        ("text", ("ハニワ製品仕様", "材料", "仕上げ"), "釉薬を使います。"),
        ("text", ("ハニワ製品仕様", "概要"), "以上です。"),  # setext level 2 replaces 材料
    ]


def test_markdown_inline_markup_dropped_from_headings_and_cells(parsers: ParserSet) -> None:
    doc = parsers.parse(b"# *Big* `title`\n\n|**a**|b|\n|-|-|\n|1|x \\| y|\n", "a.markdown")
    assert doc.title == "Big title"
    assert tables(doc)[0].text == "| a | b |\n| --- | --- |\n| 1 | x \\| y |"
    assert tables(doc)[0].headings == ("Big title",)


def test_markdown_long_table_stays_one_section(parsers: ParserSet) -> None:
    text = "| n | 二倍 |\n|---|---|\n" + "".join(f"| {i} | {2 * i} |\n" for i in range(80))
    (section,) = parsers.parse(text.encode(), "big.md").sections
    assert section.kind == "table" and section.text.count("\n") == 81  # chunking splits it on rows


# -- html ------------------------------------------------------------------------------------------------
HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>ハニワロボ 仕様書</title>
<style>body { color: red }</style><script>var secret = 1;</script></head>
<body>
<nav><a href="/">ホーム</a> メニュー</nav>
<h1>ハニワ<em>ロボ</em></h1>
<p>ハニワロボは<b>家庭用</b>ロボットです。</p>
<!-- a comment -->
<h2>材料</h2>
<table>
  <thead><tr><th>材料</th><th>重さ</th></tr></thead>
  <tbody><tr><td>アルミニウム</td><td>12kg</td></tr><tr><td>銅</td><td>3kg</td></tr></tbody>
</table>
<ul><li>軽い</li><li>丈夫</li></ul>
<h2>使い方</h2>
<div>電源を入れます。<script>alert(1)</script></div>
</body></html>
"""


def test_html_structure(parsers: ParserSet, tmp_path: Path) -> None:
    path = tmp_path / "spec.html"
    path.write_text(HTML, encoding="utf-8")
    doc = parsers.parse(path.read_bytes(), "spec.HTM")
    assert doc.title == "ハニワロボ 仕様書"
    got = [(s.kind, s.headings, s.text) for s in doc.sections]
    assert got == [
        ("text", ("ハニワロボ",), "ハニワロボは家庭用ロボットです。"),
        (
            "table",
            ("ハニワロボ", "材料"),
            "| 材料 | 重さ |\n| --- | --- |\n| アルミニウム | 12kg |\n| 銅 | 3kg |",
        ),
        ("text", ("ハニワロボ", "材料"), "- 軽い"),
        ("text", ("ハニワロボ", "材料"), "- 丈夫"),
        ("text", ("ハニワロボ", "使い方"), "電源を入れます。"),
    ]
    assert "secret" not in doc.text and "メニュー" not in doc.text and "comment" not in doc.text


# -- pdf -------------------------------------------------------------------------------------------------
def test_pdf_pages_and_title(parsers: ParserSet, tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Haniwa Robot Manual")
    pdf.set_font("helvetica", size=12)
    for text in ("The Haniwa robot is made of clay.", "Aluminium parts weigh 12 kg in total."):
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    path = tmp_path / "manual.pdf"
    pdf.output(str(path))
    doc = parsers.parse(path.read_bytes(), path.name)
    assert doc.title == "Haniwa Robot Manual"
    assert [(s.page, s.text) for s in doc.sections] == [
        (1, "The Haniwa robot is made of clay."),
        (2, "Aluminium parts weigh 12 kg in total."),
    ]


# -- docx ------------------------------------------------------------------------------------------------
def test_docx_headings_and_tables_in_order(parsers: ParserSet, tmp_path: Path) -> None:
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    document.add_paragraph("ハニワ製品仕様", style="Title")
    document.add_paragraph("ハニワロボは家庭用ロボットです。")
    document.add_heading("材料", level=1)
    document.add_paragraph("主な材料は次の通りです。")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "材料", "重さ"
    for name, weight in MATERIALS:
        row = table.add_row().cells
        row[0].text, row[1].text = name, weight
    document.add_paragraph("以上が材料です。")
    document.add_heading("仕上げ", level=2)
    document.add_paragraph("釉薬を使います。")
    # a Japanese Word names its heading styles 見出し N
    japanese = document.styles.add_style("見出し 1", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("保証", style=japanese)
    document.add_paragraph("一年間保証します。")
    path = tmp_path / "spec.docx"
    document.save(str(path))

    doc = parsers.parse(path.read_bytes(), path.name)
    assert doc.title == "ハニワ製品仕様"
    got = [(s.kind, s.headings, s.text) for s in doc.sections]
    assert got == [
        ("text", ("ハニワ製品仕様",), "ハニワロボは家庭用ロボットです。"),
        ("text", ("ハニワ製品仕様", "材料"), "主な材料は次の通りです。"),
        (
            "table",
            ("ハニワ製品仕様", "材料"),
            "| 材料 | 重さ |\n| --- | --- |\n| アルミニウム | 12kg |\n| 銅 | 3kg |\n| 粘土 | 25kg |",
        ),
        ("text", ("ハニワ製品仕様", "材料"), "以上が材料です。"),
        ("text", ("ハニワ製品仕様", "材料", "仕上げ"), "釉薬を使います。"),
        ("text", ("ハニワ製品仕様", "保証"), "一年間保証します。"),
    ]


# -- csv / xlsx ------------------------------------------------------------------------------------------
def test_csv_cp932_split_into_sections_repeating_the_header(parsers: ParserSet, tmp_path: Path) -> None:
    lines = ["部品,重さ", *(f"部品{i},{i}kg" for i in range(120)), ""]
    path = tmp_path / "parts.csv"
    path.write_bytes("\r\n".join(lines).encode("cp932"))
    doc = parsers.parse(path.read_bytes(), path.name)
    assert [s.kind for s in doc.sections] == ["table"] * 3
    for section in doc.sections:
        assert section.text.startswith("| 部品 | 重さ |\n| --- | --- |\n")
    rows = [line for s in doc.sections for line in s.text.split("\n")[2:]]
    assert rows == [f"| 部品{i} | {i}kg |" for i in range(120)]
    assert [len(s.text.split("\n")) - 2 for s in doc.sections] == [50, 50, 20]


def test_csv_quoted_fields_and_tabs(parsers: ParserSet) -> None:
    doc = parsers.parse(b'name,note\n"Haniwa, Mk2","says ""hi"""\n', "a.csv")
    assert doc.sections[0].text == '| name | note |\n| --- | --- |\n| Haniwa, Mk2 | says "hi" |'
    assert parsers.parse(b"a\tb\n1\t2\n", "t.csv").sections[0].text == "| a | b |\n| --- | --- |\n| 1 | 2 |"


def test_xlsx_one_heading_per_sheet(parsers: ParserSet, tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "材料"
    sheet.append(["材料", "重さ(kg)", "備考"])
    for name, weight in MATERIALS:
        sheet.append([name, float(weight.removesuffix("kg")), None])
    sheet.append([None, None, None])
    other = book.create_sheet("価格")
    other.append(["型番", "価格"])
    other.append(["HR-1", 98000])
    book.create_sheet("空")
    book.properties.title = "ハニワロボ部品表"
    path = tmp_path / "parts.xlsx"
    book.save(str(path))

    doc = parsers.parse(path.read_bytes(), path.name)
    assert doc.title == "ハニワロボ部品表"
    assert [(s.kind, s.headings, s.text) for s in doc.sections] == [
        (
            "table",
            ("材料",),
            "| 材料 | 重さ(kg) | 備考 |\n| --- | --- | --- |\n"
            "| アルミニウム | 12 |  |\n| 銅 | 3 |  |\n| 粘土 | 25 |  |",
        ),
        ("table", ("価格",), "| 型番 | 価格 |\n| --- | --- |\n| HR-1 | 98000 |"),
    ]


# -- json ------------------------------------------------------------------------------------------------
def test_json_list_of_objects(parsers: ParserSet) -> None:
    data = [
        {"name": "アルミニウム", "weight": 12, "spec": {"grade": "A5052", "recycled": True}},
        {"name": "銅", "weight": 3.5, "tags": ["導電", "重い"], "parts": [{"id": 1}]},
    ]
    doc = parsers.parse(json.dumps(data, ensure_ascii=False).encode(), "materials.json")
    assert [s.text for s in doc.sections] == [
        "name: アルミニウム\nweight: 12\nspec.grade: A5052\nspec.recycled: true",
        "name: 銅\nweight: 3.5\ntags: 導電, 重い\nparts[0].id: 1",
    ]


def test_json_object_becomes_key_paths(parsers: ParserSet) -> None:
    data = {"robot": {"name": "ハニワロボ", "size": {"height_cm": 120}}, "discontinued": None}
    doc = parsers.parse(json.dumps(data).encode("utf-16"), "robot.json")
    assert doc.sections == (Section("robot.name: ハニワロボ\nrobot.size.height_cm: 120\ndiscontinued: null"),)


def test_invalid_json(parsers: ParserSet) -> None:
    with pytest.raises(ValidationError, match=r"bad\.json.*json"):
        parsers.parse(b'{"a": 1,}', "bad.json")
