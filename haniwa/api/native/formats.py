"""Choosing the native body format of an InvokeModel call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haniwa.api.native.base import ChatFormat, EmbedFormat
from haniwa.errors import ValidationError


def pick_format(model_id: str, kind: str, body: Mapping[str, Any]) -> ChatFormat | EmbedFormat:
    raise ValidationError(f"InvokeModel bodies are not supported yet for {model_id}")
