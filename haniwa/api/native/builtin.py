"""The built-in native body formats, registered through ``register_formats`` like any plugin's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from haniwa.api.native.anthropic import AnthropicMessages
from haniwa.api.native.cohere import CohereEmbed, command_r_format
from haniwa.api.native.fields import family_id
from haniwa.api.native.formats import AnyFormat, Detector, FormatFactory
from haniwa.api.native.meta import LlamaFormat
from haniwa.api.native.mistral import MistralChat, MistralPrompt
from haniwa.api.native.nova import NovaMessages, looks_like_nova
from haniwa.api.native.titan import TitanEmbed, TitanText
from haniwa.hookspecs import hookimpl

__all__ = ["register_formats"]


def _anthropic(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    return AnthropicMessages(body)


def _nova(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    return NovaMessages()


def _is_nova(body: Mapping[str, Any], kind: str) -> bool:
    return looks_like_nova(body)


def _titan_text(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    return TitanText()


def _titan_embed(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    return TitanEmbed.for_model(family_id(model_id))


def _cohere_embed(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    return CohereEmbed()


def _command_r(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    return command_r_format(body)


def _llama(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    return LlamaFormat()


def _mistral(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    return MistralChat() if "messages" in body and "prompt" not in body else MistralPrompt()


def _is_mistral_prompt(body: Mapping[str, Any], kind: str) -> bool:
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        return False
    if "max_gen_len" in body:
        return False
    if any(k in body for k in ("max_tokens", "stop", "top_k")):
        return True
    return "[INST]" in prompt and "<|start_header_id|>" not in prompt and "<<SYS>>" not in prompt


# In the order bodies are asked about (Nova before Anthropic: both have "messages"; Titan Embeddings
# before Titan Text: both have "inputText").
_BUILTINS: tuple[tuple[str, FormatFactory, Detector, str], ...] = (
    (
        "amazon.nova-",
        _nova,
        _is_nova,
        "Amazon Nova {schemaVersion: messages-v1, messages: [{role, content: [{text}]}], inferenceConfig}",
    ),
    (
        "anthropic.",
        _anthropic,
        lambda b, k: "anthropic_version" in b or "messages" in b,
        "Anthropic Messages {anthropic_version, max_tokens, messages}",
    ),
    (
        "amazon.titan-embed",
        _titan_embed,
        lambda b, k: "inputText" in b and k == "embedding",
        "Titan Embeddings {inputText}",
    ),
    (
        "amazon.titan-",
        _titan_text,
        lambda b, k: "inputText" in b,
        "Titan Text {inputText, textGenerationConfig}",
    ),
    ("cohere.embed", _cohere_embed, lambda b, k: "texts" in b, "Cohere Embed {texts, input_type}"),
    ("cohere.command-r", _command_r, lambda b, k: "message" in b, "Cohere Command R {message}"),
    ("mistral.", _mistral, _is_mistral_prompt, "Mistral {prompt: '<s>[INST] ... [/INST]'}"),
    ("meta.", _llama, lambda b, k: isinstance(b.get("prompt"), str), "Meta Llama {prompt, max_gen_len}"),
)


@hookimpl
def register_formats(register: Callable[..., None]) -> None:
    """Register the built-in formats (``NativeFormats.from_plugins`` keeps this order for detection)."""
    for prefix, factory, detect, shape in _BUILTINS:
        register(prefix, factory, detect=detect, shape=shape)
