"""Japanese script at decoding time (haniwa/runtime/script.py): the character rules, the vocabulary mask on
a synthetic byte-level vocabulary, and the bundled 0.5B model answering Japanese prompts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from haniwa.runtime.base import (
    ChatRequest,
    Message,
    StreamEnd,
    TextBlock,
    TextDelta,
    ToolResultBlock,
    ToolUseBlock,
)
from haniwa.runtime.llamacpp import LlamaChat, LlamaOptions
from haniwa.runtime.script import (
    ScriptMask,
    foreign_han,
    has_kana,
    is_han,
    is_japanese_conversation,
    is_japanese_han,
)
from tests.test_llamacpp import WEATHER, events, greedy, load, user

SIMPLIFIED = "们这说圆质铜线"


# -- characters ----------------------------------------------------------------------------------------
def test_simplified_forms_are_foreign() -> None:
    for ch in SIMPLIFIED:
        assert is_han(ch) and not is_japanese_han(ch), ch
    assert foreign_han(f"これは{SIMPLIFIED}です") == list(SIMPLIFIED)


def test_japanese_forms_follow_jis() -> None:
    # all of these are in JIS X 0208; 這 (to crawl) is a kanji too, whatever its Chinese use
    for ch in "円質銅線説這們國々〇":
        assert is_japanese_han(ch), ch
    assert is_japanese_han("\U0002000b")  # 𠀋: JIS X 0213 plane 2, outside the BMP
    assert not is_japanese_han("\U00020000")  # 𠀀: Extension B, in no JIS table
    assert foreign_han("円の質、銅線の説明。這う。") == []


def test_text_without_han_is_fine() -> None:
    text = "ひらがな カタカナ ｶﾀｶﾅ ASCII 123 ー・、。！？「」 한국어 ÄÖÜ 😀"
    assert not any(is_han(c) for c in text)
    assert foreign_han(text) == []
    assert not is_japanese_han("a") and not is_japanese_han("あ")


def test_foreign_han_lists_each_character_once_in_order() -> None:
    assert foreign_han("这是们，这是线，们") == ["这", "们", "线"]


def test_a_conversation_is_japanese_when_it_has_kana() -> None:
    assert is_japanese_conversation(["", "日本の首都は？"])
    assert is_japanese_conversation(["カレー"])
    assert is_japanese_conversation(["ｶﾚｰ"])  # half-width katakana
    assert not is_japanese_conversation(["What is 日本?", "東京都"])  # Han alone may be Chinese
    assert not is_japanese_conversation(["中国的首都是哪里？"])
    assert not is_japanese_conversation(["约翰・史密斯", "ー"])  # Chinese borrows ・ for names
    assert not is_japanese_conversation([])
    assert has_kana("ぁ") and not has_kana("〜")


# -- the vocabulary mask on a synthetic byte-level vocabulary -------------------------------------------
MEN = "们".encode()  # e4 bb ac
REN = "仁".encode()  # e4 bb 81: the same first two bytes, a Japanese kanji
PIECES: list[bytes] = [
    b"",  # 0: a special token
    b"a",  # 1
    "です".encode(),  # 2
    MEN,  # 3: whole foreign character
    "这里".encode(),  # 4: foreign inside a longer token
    "円".encode(),  # 5
    MEN[:2],  # 6: ends with a prefix that 仁 can still complete
    MEN[2:],  # 7: completes 们 after e4 bb, 仁-less
    REN[2:],  # 8: completes 仁 after e4 bb
    MEN[1:],  # 9: two continuation bytes: completes 们 after e4
    MEN[2:] + "です".encode(),  # 10: completes 们, then more text
    "说".encode()[:2],  # 11: e8 af, U+8BC0-8BFF: only simplified characters start so (a dead prefix)
    "の".encode() + MEN[:1],  # 12: whole kana, then a lead byte with Japanese completions
    "銅".encode(),  # 13
    "\U00020000".encode()[:3],  # 14: 4-byte prefix U+20000-2003F
]


@pytest.fixture
def mask() -> ScriptMask:
    return ScriptMask(PIECES)


def test_static_bans(mask: ScriptMask) -> None:
    assert set(mask.static.tolist()) >= {3, 4, 11}
    assert not {0, 1, 2, 5, 6, 7, 8, 9, 10, 12, 13} & set(mask.static.tolist())
    ok = mask.allowed()
    assert ok.dtype == np.bool_ and ok.shape == (len(PIECES),)
    assert not ok[3] and ok[5] and ok[6]


def test_dynamic_bans_depend_on_the_pending_bytes(mask: ScriptMask) -> None:
    after_two = set(mask.dynamic(MEN[:2]).tolist())
    assert 7 in after_two and 10 in after_two  # would complete 们
    assert 8 not in after_two  # completes 仁
    assert 9 not in after_two  # e4 bb + bb ac: broken UTF-8 (U+FFFD), not a foreign character
    after_one = set(mask.dynamic(MEN[:1]).tolist())
    assert 9 in after_one  # e4 + bb ac = 们
    assert 7 not in after_one and 8 not in after_one  # e4 ac / e4 81: an incomplete prefix, not a dead one
    ok = mask.allowed(MEN[:2])
    assert not ok[7] and ok[8] and not ok[3]


def test_processor_tracks_the_generated_bytes(mask: ScriptMask) -> None:
    prompt = [1, 2, 1]
    proc = mask.processor(len(prompt))

    def step(ids: list[int]) -> np.ndarray:
        return proc(np.array(ids, dtype=np.intc), np.zeros(len(PIECES), dtype=np.single))

    scores = step(prompt)  # nothing generated yet: only the static bans
    assert np.isneginf(scores[[3, 4, 11]]).all() and np.isfinite(scores[[5, 6, 7, 8]]).all()
    scores = step([*prompt, 6])  # generated e4 bb
    assert proc.pending == MEN[:2]
    assert np.isneginf(scores[[7, 10]]).all() and np.isfinite(scores[8])
    scores = step([*prompt, 6, 8])  # 仁 complete
    assert proc.pending == b"" and np.isfinite(scores[7])
    scores = step([*prompt, 6, 8, 12])  # の + e4
    assert proc.pending == MEN[:1] and np.isneginf(scores[9])


def test_mask_on_a_strided_view_as_llama_cpp_python_passes_it(mask: ScriptMask) -> None:
    # llama-cpp-python hands the logit column of its llama_token_data records, a strided view
    rec = np.zeros(len(PIECES), dtype=np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)]))
    rec["id"] = np.arange(len(PIECES))
    view = rec["logit"]
    out = mask.processor(0)(np.array([], dtype=np.intc), view)
    rec["logit"][:] = out
    assert (
        np.isneginf(rec["logit"][3]) and rec["logit"][5] == 0 and (rec["id"] == np.arange(len(PIECES))).all()
    )


# -- the option ----------------------------------------------------------------------------------------
def test_option_values() -> None:
    assert LlamaOptions(bundled="qwen2.5-coder-0.5b").japanese_script == "auto"
    assert LlamaOptions(bundled="qwen2.5-coder-0.5b", japanese_script="off").japanese_script == "off"
    with pytest.raises(ValueError):
        LlamaOptions(bundled="qwen2.5-coder-0.5b", japanese_script="ja")


def _chooser(mode: str) -> LlamaChat:
    chat = LlamaChat.__new__(LlamaChat)  # only what _script reads: no model
    chat._japanese_script = mode
    chat._script_mask = ScriptMask(PIECES)
    return chat


def test_auto_applies_to_kana_in_the_system_prompt_and_user_turns() -> None:
    english = ChatRequest((user("Hello"),))
    assert _chooser("auto")._script(english) is None
    assert _chooser("always")._script(english) is not None
    assert _chooser("auto")._script(ChatRequest((user("こんにちは"),))) is not None
    assert _chooser("auto")._script(ChatRequest((user("Hi"),), system="日本語で答えてください")) is not None
    tool_result = Message("user", (ToolResultBlock("t1", "晴れのち曇り"),))
    assert _chooser("auto")._script(ChatRequest((user("Weather?"), tool_result))) is not None
    answer_only = Message("assistant", (TextBlock("はい"),))
    assert _chooser("auto")._script(ChatRequest((user("Hi"), answer_only, user("Thanks")))) is None
    assert _chooser("off")._script(ChatRequest((user("こんにちは"),))) is None


# -- the bundled 0.5B -----------------------------------------------------------------------------------
# prompts on which the 0.5B writes Simplified-Chinese forms without the mask (bench/japanese_script.py)
TRIGGERS = (
    "虹はなぜ七色に見えるのですか？",  # 红色 (red)
    "明治維新について簡単に説明してください。",  # 19世纪 (century)
)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaChat]:
    chat = load("qwen2.5-coder-0.5b", tmp_path_factory.mktemp("home-script"))
    yield chat
    chat.close()


def _answer(chat: LlamaChat, prompt: str) -> str:
    chat._llm.reset()  # both runs evaluate the whole prompt the same way (greedy answers stay comparable)
    return asyncio.run(chat.converse(ChatRequest((user(prompt),), params=greedy(80)))).message.text


@pytest.mark.model
def test_small_model_answers_in_japanese_kanji(small: LlamaChat) -> None:
    small._japanese_script = "off"
    try:
        unmasked = [foreign_han(_answer(small, p)) for p in TRIGGERS]
    finally:
        small._japanese_script = "auto"
    assert any(unmasked), "the prompts no longer trigger foreign forms: pick new ones with the bench"
    for prompt in TRIGGERS:
        answer = _answer(small, prompt)
        assert foreign_han(answer) == [], (prompt, answer)
        assert "\ufffd" not in answer


@pytest.mark.model
def test_masked_stream_and_tool_steps(small: LlamaChat) -> None:
    req = ChatRequest((user(TRIGGERS[0]),), params=greedy(60))
    evs = asyncio.run(events(small, req))
    assert isinstance(evs[-1], StreamEnd)
    assert foreign_han("".join(e.text for e in evs if isinstance(e, TextDelta))) == []
    # the mask runs before the grammar of the routing and argument steps
    req = ChatRequest((user("東京の天気を教えてください。"),), tools=(WEATHER,), params=greedy(128))
    (block,) = asyncio.run(small.converse(req)).message.content
    assert isinstance(block, ToolUseBlock) and block.name == "get_weather"
    assert isinstance(block.input["city"], str) and foreign_han(block.input["city"]) == []
