"""Meta Llama bodies: a raw ``prompt`` plus ``max_gen_len``, ``temperature``, ``top_p`` (and ``images``).

The prompt is usually already wrapped in the model's chat template. We read the template back into
turns so the local model applies its own: Llama 3 headers (``<|start_header_id|>role<|end_header_id|>``)
or Llama 2 / Mistral ``[INST] … [/INST]`` with an optional ``<<SYS>>`` block. A prompt with neither is
one user message.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

from haniwa.api.native.fields import (
    check_keys,
    decode_base64,
    lagged_text,
    malformed,
    need_str,
    opt_int,
    opt_number,
    sniff_image,
)
from haniwa.runtime.base import (
    Block,
    ChatEvent,
    ChatRequest,
    ChatResult,
    ImageBlock,
    InferenceParams,
    Message,
    StopReason,
    TextBlock,
)

__all__ = ["LlamaFormat", "parse_prompt", "parse_llama3", "parse_inst", "simple_stop_reason"]

_HEADER = re.compile(r"<\|start_header_id\|>(.*?)<\|end_header_id\|>", re.DOTALL)
_SPECIAL = re.compile(r"<\|(?:begin_of_text|end_of_text|eot_id|eom_id|image|python_tag)\|>")
_INST = re.compile(r"\[INST\](.*?)\[/INST\]", re.DOTALL)
_SYS = re.compile(r"<<SYS>>(.*?)<</SYS>>", re.DOTALL)
_SYSTEM_PROMPT = re.compile(r"\[SYSTEM_PROMPT\](.*?)\[/SYSTEM_PROMPT\]", re.DOTALL)

Parsed = tuple[str | None, tuple[Message, ...]]


def simple_stop_reason(stop: StopReason) -> str:
    """Llama and Mistral report ``length`` when cut off and ``stop`` otherwise."""
    return "length" if stop == "max_tokens" else "stop"


def _text(role: Literal["user", "assistant"], text: str) -> Message:
    return Message(role, (TextBlock(text),))


def parse_llama3(prompt: str) -> Parsed:
    """``<|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\n…<|eot_id|>…`` → (system, turns)."""
    heads = list(_HEADER.finditer(prompt))
    system: list[str] = []
    turns: list[Message] = []
    for i, h in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(prompt)
        body = _SPECIAL.sub("", prompt[h.end() : end]).strip()
        role = h.group(1).strip()
        if role == "system":
            system.append(body)
        elif role == "assistant":
            if body or i + 1 < len(heads):  # an empty last assistant header is where the answer goes
                turns.append(_text("assistant", body))
        else:  # user, ipython / tool output: the model reads them as the user's turn
            turns.append(_text("user", body))
    return "\n\n".join(s for s in system if s) or None, tuple(turns)


def parse_inst(prompt: str) -> Parsed:
    """``<s>[INST] <<SYS>>…<</SYS>> q [/INST] a </s><s>[INST] q2 [/INST]`` → (system, turns)."""
    text = prompt.replace("<s>", "").replace("</s>", "")
    system: list[str] = [m.group(1).strip() for m in _SYSTEM_PROMPT.finditer(text)]
    text = _SYSTEM_PROMPT.sub("", text)
    marks = list(_INST.finditer(text))
    preface = text[: marks[0].start()].strip()
    if preface:
        system.append(preface)
    turns: list[Message] = []
    for i, m in enumerate(marks):
        user = m.group(1)
        sys_block = _SYS.search(user)
        if sys_block:
            system.append(sys_block.group(1).strip())
            user = _SYS.sub("", user)
        turns.append(_text("user", user.strip()))
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        answer = text[m.end() : end].strip()
        if answer:
            turns.append(_text("assistant", answer))
    return "\n\n".join(s for s in system if s) or None, tuple(turns)


def parse_prompt(prompt: str) -> Parsed:
    """Whichever template the prompt uses; a plain prompt is one user message."""
    if _HEADER.search(prompt):
        return parse_llama3(prompt)
    if _INST.search(prompt):
        return parse_inst(prompt)
    return None, (_text("user", _SPECIAL.sub("", prompt).strip()),)


def _with_images(turns: tuple[Message, ...], body: Mapping[str, Any]) -> tuple[Message, ...]:
    raw = body.get("images")
    if raw is None:
        return turns
    if not isinstance(raw, list):
        raise malformed("/images", "expected a JSONArray of base64 strings")
    images: list[Block] = []
    for i, item in enumerate(raw):
        data = decode_base64(item, f"/images/{i}")
        media = sniff_image(data)
        if media is None:
            raise malformed(f"/images/{i}", "not a PNG, JPEG, GIF or WebP image")
        images.append(ImageBlock(data, media))
    last_user = max((i for i, m in enumerate(turns) if m.role == "user"), default=None)
    if last_user is None:
        return (*turns, Message("user", tuple(images)))
    out = list(turns)
    out[last_user] = Message("user", (*images, *turns[last_user].content))
    return tuple(out)


class LlamaFormat:
    """Meta Llama 2 / 3 / 3.x text generation (and Llama 3.2 vision ``images``)."""

    name = "meta-llama"
    kind: Literal["chat"] = "chat"

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        check_keys(body, ("prompt", "max_gen_len", "temperature", "top_p", "images"))
        system, turns = parse_prompt(need_str(body, "prompt"))
        if not turns or turns[0].role != "user":
            raise malformed("/prompt", "the prompt holds no user turn")
        max_gen_len = opt_int(body, "max_gen_len", 1, 2048)
        return ChatRequest(
            messages=_with_images(turns, body),
            system=system,
            params=InferenceParams(
                max_tokens=512 if max_gen_len is None else max_gen_len,  # Meta's documented default
                temperature=opt_number(body, "temperature", 0, 1),
                top_p=opt_number(body, "top_p", 0, 1),
            ),
        )

    def render(self, result: ChatResult, model_id: str) -> dict[str, Any]:
        return {
            "generation": result.message.text,
            "prompt_token_count": result.usage.input_tokens,
            "generation_token_count": result.usage.output_tokens,
            "stop_reason": simple_stop_reason(result.stop_reason),
        }

    async def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        async for text, count, end in lagged_text(events):
            yield {
                "generation": text,
                "prompt_token_count": end.usage.input_tokens if end else None,
                "generation_token_count": end.usage.output_tokens if end else count,
                "stop_reason": simple_stop_reason(end.stop_reason) if end else None,
            }
