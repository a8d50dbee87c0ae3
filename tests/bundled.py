"""One bundled GGUF chat model loaded as the server loads it, for the model-marked runtime tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haniwa.config import Settings
from haniwa.runtime.base import ModelInfo
from haniwa.runtime.llamacpp import LlamaChat, LlamaCppBackend, LlamaOptions
from tests.needs import MODELS_DIR

__all__ = ["load_chat"]


def load_chat(
    home: Path, bundle: str = "qwen2.5-coder-0.5b", *, threads: int | None = None, **settings: Any
) -> LlamaChat:
    """``bundle`` loaded through LlamaCppBackend with ``home`` as the haniwa home (its models folder points
    at the shared test-model cache, so weights are assembled once per machine)."""
    home.mkdir(parents=True, exist_ok=True)
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(MODELS_DIR)
    info = ModelInfo(id=f"llamacpp:{bundle}", backend="llamacpp", kind="chat", options={"bundled": bundle})
    options = (
        LlamaOptions(bundled=bundle) if threads is None else LlamaOptions(bundled=bundle, threads=threads)
    )
    chat = LlamaCppBackend().load_chat(info, options, Settings(home=home, **settings))
    assert isinstance(chat, LlamaChat)
    return chat
