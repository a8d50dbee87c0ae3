"""The native-format registry: filled through ``register_formats``, built-ins first, plugins ahead of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import pluggy
import pytest

from haniwa import hookspecs
from haniwa.api.native import builtin
from haniwa.api.native.anthropic import AnthropicMessages
from haniwa.api.native.formats import AnyFormat, NativeFormats
from haniwa.api.native.nova import NovaMessages
from haniwa.api.native.titan import TitanEmbed, TitanText
from haniwa.errors import ValidationError
from haniwa.hookspecs import hookimpl
from haniwa.plugins import DEFAULT_PLUGINS
from haniwa.runtime.base import ChatEvent, ChatRequest, ChatResult, Message, TextBlock

BUILTIN_ORDER = (
    "amazon.nova-",
    "anthropic.",
    "amazon.titan-embed",
    "amazon.titan-",
    "cohere.embed",
    "cohere.command-r",
    "mistral.",
    "meta.",
)
CLAUDE_BODY = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8, "messages": []}


class _Acme:
    name = "acme"
    kind: Literal["chat"] = "chat"

    def parse(self, body: Mapping[str, Any]) -> ChatRequest:
        return ChatRequest(messages=(Message("user", (TextBlock(str(body["acme_prompt"])),)),))

    def render(self, result: ChatResult, model_id: str) -> dict[str, Any]:
        return {"acme": result.text}

    async def chunks(self, events: AsyncIterator[ChatEvent], model_id: str) -> AsyncIterator[dict[str, Any]]:
        async for _ in events:
            yield {}


def _acme(model_id: str, body: Mapping[str, Any]) -> AnyFormat:
    return _Acme()


class _AcmePlugin:
    @hookimpl
    def register_formats(self, register: Any) -> None:
        register("acme.", _acme, detect=lambda body, kind: "messages" in body, shape="Acme {acme_prompt}")
        register("anthropic.claude-acme", _acme)


def _manager(*plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("haniwa")
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, "haniwa.api.native.builtin")
    for plugin in plugins:
        pm.register(plugin)
    return pm


def test_builtins_register_through_the_hook_in_detection_order() -> None:
    assert "haniwa.api.native.builtin" in DEFAULT_PLUGINS
    formats = NativeFormats.from_plugins(_manager())
    assert formats.prefixes == BUILTIN_ORDER
    assert isinstance(
        formats.pick("us.anthropic.claude-3-haiku-20240307-v1:0", "chat", {}), AnthropicMessages
    )
    # ids of no family: by the body, Nova before Anthropic and Titan Embeddings before Titan Text
    nova = {"schemaVersion": "messages-v1", "messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    assert isinstance(formats.pick("echo:echo", "chat", nova), NovaMessages)
    assert isinstance(formats.pick("echo:echo", "chat", CLAUDE_BODY), AnthropicMessages)
    assert isinstance(formats.pick("hash:hash-384", "embedding", {"inputText": "x"}), TitanEmbed)
    assert isinstance(formats.pick("echo:echo", "chat", {"inputText": "x"}), TitanText)


def test_a_plugin_is_asked_before_the_builtins() -> None:
    formats = NativeFormats.from_plugins(_manager(_AcmePlugin()))
    assert formats.prefixes[:2] == ("acme.", "anthropic.claude-acme")
    assert formats.prefixes[2:] == BUILTIN_ORDER
    assert isinstance(formats.pick("acme.large", "chat", {}), _Acme)
    assert isinstance(formats.pick("echo:echo", "chat", CLAUDE_BODY), _Acme)  # its detector first
    # the longest prefix wins, whoever registered it
    assert isinstance(formats.pick("anthropic.claude-acme-v1", "chat", {}), _Acme)
    assert isinstance(formats.pick("anthropic.claude-3-haiku", "chat", CLAUDE_BODY), AnthropicMessages)


def test_a_later_registration_of_a_prefix_replaces_the_earlier() -> None:
    formats = NativeFormats.from_plugins(_manager())
    formats.register("anthropic.", _acme)
    assert formats.prefixes.count("anthropic.") == 1
    assert isinstance(formats.pick("anthropic.claude-3-haiku", "chat", CLAUDE_BODY), _Acme)
    formats.unregister("anthropic.")
    assert "anthropic." not in formats.prefixes


def test_registries_are_independent() -> None:
    one, two = NativeFormats.from_plugins(_manager()), NativeFormats.from_plugins(_manager())
    one.register("acme.", _acme)
    assert "acme." not in two.prefixes


def test_no_match_lists_every_shape() -> None:
    formats = NativeFormats.from_plugins(_manager(_AcmePlugin()))
    with pytest.raises(ValidationError, match=r"Send one of: Acme \{acme_prompt\}; Amazon Nova") as err:
        formats.pick("echo:echo", "chat", {"unknown": 1})
    assert "Meta Llama {prompt, max_gen_len}" in str(err.value)
    with pytest.raises(ValidationError, match="does not match any model provider's format"):
        NativeFormats().pick("echo:echo", "chat", {})
