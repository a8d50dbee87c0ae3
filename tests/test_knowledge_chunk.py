"""Chunking strategies on Japanese (and some English) documents: sizes, overlaps, sentence ends, tables."""

from __future__ import annotations

import asyncio

import pytest

from haniwa.knowledge.base import (
    ChunkDraft,
    ChunkingStrategy,
    FixedSize,
    Hierarchical,
    NoChunking,
    ParsedDocument,
    Section,
    Semantic,
)
from haniwa.knowledge.chunk import EmbedFn, chunk_document, count_tokens, split_sentences

SPEC = ("ハニワ製品仕様",)
MATERIALS = ("ハニワ製品仕様", "材料")
USAGE = ("ハニワ製品仕様", "使い方")
FEATURES = [
    "ハニワロボは土で作られています。",
    "とても丈夫です！",
    "雨にも強いです。",
    "掃除を手伝います。",
    "夜は眠りますか？",
    "子供と遊びます。",
    "歌を歌います。",
    "庭の草を抜きます。",
    "料理も少しできます。",
    "電池は長持ちです。",
    "重さは軽いです。",
    "色は茶色です。",
]
STEPS = ["電源を入れます。", "ボタンを押します。", "しばらく待ちます。", "ロボが動き出します。"]
TABLE_HEADER = "| 材料 | 重さ |\n| --- | --- |"
ROWS = [
    f"| 部品{name} | {weight} |"
    for name, weight in zip("甲乙丙丁戊己庚辛壬癸", "一二三四五六七八九十", strict=True)
]


def run(doc: ParsedDocument, strategy: ChunkingStrategy, embed: EmbedFn | None = None) -> list[ChunkDraft]:
    return asyncio.run(chunk_document(doc, strategy, embed))


def product_sheet() -> ParsedDocument:
    return ParsedDocument(
        (
            Section("".join(FEATURES[:6]), SPEC),
            Section("".join(FEATURES[6:]), SPEC),
            Section("\n".join(["| 材料 | 重さ |", "| --- | --- |", *ROWS]), MATERIALS, "table"),
            Section("".join(STEPS), USAGE),
        ),
        title="ハニワロボ",
    )


def body(chunk: ChunkDraft) -> str:
    """The chunk's text without its heading line (which every chunk with headings starts with)."""
    line = " > ".join(chunk.headings) + "\n"
    assert chunk.text.startswith(line)
    return chunk.text[len(line) :]


# -- sentences and tokens --------------------------------------------------------------------------------
def test_count_tokens_is_one_per_cjk_character_word_and_mark() -> None:
    assert count_tokens("ハニワ robot, 12 kg.") == 8  # ハ ニ ワ robot , 12 kg .
    assert count_tokens("") == count_tokens(" \n ") == 0


def test_split_japanese_sentences() -> None:
    text = "ハニワロボは家庭用です。重さは軽いです！本当ですか？はい．「こんにちは。」"
    assert split_sentences(text) == [
        "ハニワロボは家庭用です。",
        "重さは軽いです！",
        "本当ですか？",
        "はい．",
        "「こんにちは。」",
    ]


def test_split_english_sentences() -> None:
    text = 'It weighs 3.5 kg. See e.g. the manual! Does Mr. Smith agree? He said "yes." Then left'
    assert split_sentences(text) == [
        "It weighs 3.5 kg.",
        "See e.g. the manual!",
        "Does Mr. Smith agree?",
        'He said "yes."',
        "Then left",
    ]


def test_split_on_paragraphs_but_not_on_line_wraps() -> None:
    assert split_sentences("見出しなしの段落\n\n次の段落です。\nまだ同じ文") == [
        "見出しなしの段落",
        "次の段落です。",
        "まだ同じ文",
    ]
    assert split_sentences("wrapped\nline.  Next one.") == ["wrapped\nline.", "Next one."]
    assert split_sentences("") == split_sentences(" \n\n \n") == []


# -- fixed size ------------------------------------------------------------------------------------------
def test_fixed_size_respects_sizes_headings_and_japanese_sentence_ends() -> None:
    chunks = run(product_sheet(), FixedSize(max_tokens=40, overlap_percentage=25))
    assert all(count_tokens(c.text) <= 40 for c in chunks)
    assert [c.headings for c in chunks][0] == SPEC
    assert {c.headings for c in chunks} == {SPEC, MATERIALS, USAGE}
    for chunk in chunks:
        if chunk.headings != MATERIALS:
            assert body(chunk).endswith(("。", "！", "？")), chunk.text
    # a new heading path starts a new chunk: no chunk holds sentences of two groups
    for headings, sentences in ((SPEC, FEATURES), (USAGE, STEPS)):
        got = [s for c in chunks if c.headings == headings for s in split_sentences(body(c))]
        assert list(dict.fromkeys(got)) == sentences  # in order, once each apart from overlaps
    assert chunks[-1].text.endswith("\n" + STEPS[-2] + STEPS[-1])


def test_fixed_size_overlap_is_trailing_sentences() -> None:
    chunks = [c for c in run(product_sheet(), FixedSize(40, 25)) if c.headings == SPEC]
    assert len(chunks) >= 3
    rebuilt = split_sentences(body(chunks[0]))
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        a, b = split_sentences(body(prev)), split_sentences(body(nxt))
        shared = next(k for k in range(len(b), 0, -1) if a[-k:] == b[:k])
        assert 0 < shared < len(a)
        assert count_tokens("".join(b[:shared])) <= 40 * 25 // 100
        rebuilt += b[shared:]
    assert rebuilt == FEATURES  # every sentence, in order, the overlap counted once


def test_no_overlap_when_percentage_is_zero() -> None:
    chunks = [c for c in run(product_sheet(), FixedSize(40, 0)) if c.headings == SPEC]
    assert [s for c in chunks for s in split_sentences(body(c))] == FEATURES


def test_tables_split_on_rows_and_repeat_the_header() -> None:
    chunks = [c for c in run(product_sheet(), FixedSize(45, 0)) if c.headings == MATERIALS]
    assert len(chunks) >= 3
    rows = []
    for chunk in chunks:
        assert count_tokens(chunk.text) <= 45
        assert body(chunk).startswith(TABLE_HEADER + "\n")
        rows += body(chunk).split("\n")[2:]
    assert rows == ROWS


def test_a_sentence_longer_than_max_tokens_is_hard_split() -> None:
    long = "ハニワ" * 40 + "。"
    doc = ParsedDocument((Section("短い文です。" + long + "次の文です。"),))
    chunks = run(doc, FixedSize(30, 0))
    assert all(count_tokens(c.text) <= 30 for c in chunks)
    assert "".join(c.text for c in chunks) == "短い文です。" + long + "次の文です。"
    # the long sentence starts its own chunk; only its pieces end mid-sentence
    assert [c.text for c in chunks[:5]] == ["短い文です。", *["ハニワ" * 10] * 4]
    assert chunks[-1].text == "。次の文です。"
    assert chunks[0].headings == () and chunks[0].page is None


def test_english_chunks_end_at_sentence_ends() -> None:
    text = " ".join(f"Sentence number {word} is about the clay robot." for word in "abcdefghij")
    chunks = run(ParsedDocument((Section(text, ("Manual",)),)), FixedSize(25, 0))
    assert len(chunks) == 5
    assert all(body(c).endswith("robot.") and count_tokens(c.text) <= 25 for c in chunks)


def test_page_is_the_page_where_the_chunk_starts() -> None:
    pages = ParsedDocument(
        tuple(Section("".join(FEATURES[i : i + 3]), page=i // 3 + 1) for i in range(0, 12, 3))
    )
    chunks = run(pages, FixedSize(30, 30))
    page_of = {s: i // 3 + 1 for i, s in enumerate(FEATURES)}
    assert [c.page for c in chunks] == [page_of[split_sentences(c.text)[0]] for c in chunks]
    assert {c.page for c in chunks} == {1, 2, 3, 4}
    assert "雨にも強いです。\n\n掃除を手伝います。" in chunks[1].text  # pages joined by a blank line


def test_long_heading_paths_are_cut_to_leave_room() -> None:
    doc = ParsedDocument((Section("本文です。", ("見" * 50, "出し")),))
    (chunk,) = run(doc, FixedSize(20, 0))
    assert chunk.text == "見" * 10 + "\n本文です。"


# -- hierarchical ----------------------------------------------------------------------------------------
def test_hierarchical_children_point_at_their_parents() -> None:
    features = ParsedDocument((Section("".join(FEATURES), SPEC), Section("".join(STEPS), USAGE)))
    chunks = run(features, Hierarchical(parent_max_tokens=60, child_max_tokens=30, overlap_tokens=10))
    parents = list(dict.fromkeys(c.parent for c in chunks))
    assert len(parents) >= 3
    assert sum(len([c for c in chunks if c.parent == p]) > 1 for p in parents) >= 3
    for parent in parents:
        assert parent is not None and count_tokens(parent) <= 60
        children = [c for c in chunks if c.parent == parent]
        line = " > ".join(children[0].headings) + "\n"
        assert parent.startswith(line)
        for child in children:
            assert count_tokens(child.text) <= 30
            assert body(child) in parent
            assert body(child).endswith(("。", "！", "？"))
        # the children cover the parent, consecutive children share a trailing sentence
        covered = {s for c in children for s in split_sentences(body(c))}
        assert covered == set(split_sentences(parent[len(line) :]))
        for a, b in zip(children, children[1:], strict=False):
            last = split_sentences(body(a))[-1]
            if count_tokens(last) <= 10 and len(split_sentences(body(a))) > 1:
                assert split_sentences(body(b))[0] == last


# -- semantic --------------------------------------------------------------------------------------------
ROBOT = ["ハニワロボは土でできています。", "ハニワロボは歌が上手です。", "ハニワロボの目は丸いです。"]
ROBOT += ["ハニワロボは掃除をします。", "ハニワロボは静かです。"]
WEATHER = ["明日の天気は晴れです。", "週末の天気は雨です。", "天気予報を見ましょう。"]
WEATHER += ["山の天気は変わりやすいです。", "今日は天気が良いです。"]


class TopicEmbedder:
    """A deterministic embedder: how often each topic word occurs; records its calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(texts)
        return [[float(t.count("ハニワ")), float(t.count("天気"))] for t in texts]


@pytest.mark.parametrize("buffer_size", [0, 1])
def test_semantic_breaks_between_topics(buffer_size: int) -> None:
    embed = TopicEmbedder()
    doc = ParsedDocument((Section("".join(ROBOT + WEATHER)),))
    chunks = run(
        doc, Semantic(max_tokens=300, buffer_size=buffer_size, breakpoint_percentile_threshold=90), embed
    )
    assert [c.text for c in chunks] == ["".join(ROBOT), "".join(WEATHER)]
    assert len(embed.calls) == 1 and len(embed.calls[0]) == 10  # one batched call
    if buffer_size:
        assert embed.calls[0][5] == " ".join([ROBOT[4], WEATHER[0], WEATHER[1]])


def test_semantic_still_enforces_max_tokens() -> None:
    doc = ParsedDocument((Section("".join(ROBOT + WEATHER), SPEC),))
    chunks = run(doc, Semantic(max_tokens=40, breakpoint_percentile_threshold=90), TopicEmbedder())
    assert len(chunks) > 2
    for chunk in chunks:
        assert count_tokens(chunk.text) <= 40
        sentences = split_sentences(body(chunk))
        assert set(sentences) <= set(ROBOT) or set(sentences) <= set(WEATHER)


def test_semantic_needs_an_embed_function() -> None:
    with pytest.raises(ValueError, match="embed"):
        run(ParsedDocument((Section("一文です。"),)), Semantic())
    embed = TopicEmbedder()
    assert [c.text for c in run(ParsedDocument((Section("一文です。"),)), Semantic(), embed)] == [
        "一文です。"
    ]
    assert embed.calls == []  # nothing to compare


# -- none, empty, invalid --------------------------------------------------------------------------------
def test_no_chunking_is_the_whole_document() -> None:
    (chunk,) = run(product_sheet(), NoChunking())
    assert chunk.headings == SPEC and chunk.parent is None
    assert chunk.text.startswith("ハニワ製品仕様\n" + "".join(FEATURES[:6]))
    for section in product_sheet().sections:
        assert section.text in chunk.text
    assert "ハニワ製品仕様 > 材料\n" + TABLE_HEADER in chunk.text


@pytest.mark.parametrize("strategy", [FixedSize(), Hierarchical(), Semantic(), NoChunking()])
def test_empty_documents_give_no_chunks(strategy: ChunkingStrategy) -> None:
    assert run(ParsedDocument(()), strategy, TopicEmbedder()) == []
    assert run(ParsedDocument((Section("  \n"),)), strategy, TopicEmbedder()) == []


@pytest.mark.parametrize(
    "strategy",
    [
        FixedSize(max_tokens=0),
        FixedSize(overlap_percentage=-1),
        Hierarchical(child_max_tokens=0),
        Semantic(0),
    ],
)
def test_invalid_sizes(strategy: ChunkingStrategy) -> None:
    with pytest.raises(ValueError, match="must be at least"):
        run(product_sheet(), strategy, TopicEmbedder())


def test_parsed_markdown_end_to_end() -> None:
    from haniwa.knowledge.parse import MarkdownParser

    text = (
        "# ハニワ製品仕様\n\n"
        + "".join(FEATURES)
        + "\n\n## 材料\n\n| 材料 | 重さ |\n|---|---|\n| アルミニウム | 12kg |\n"
    )
    doc = MarkdownParser().parse(text.encode("utf-8"), "spec.md")
    chunks = run(doc, FixedSize(60, 10))
    assert chunks[-1].text == "ハニワ製品仕様 > 材料\n| 材料 | 重さ |\n| --- | --- |\n| アルミニウム | 12kg |"
    assert all(c.text.startswith("ハニワ製品仕様\n") for c in chunks[:-1])
