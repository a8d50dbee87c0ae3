"""The web playground: static ES modules served by ``haniwa serve`` at ``/`` (no build step).

``STATIC`` is the folder of assets; :mod:`haniwa.playground.comparisons` keeps compare-mode history.
Every action in the page goes through the public HTTP APIs (Bedrock, OpenAI and ``/haniwa/v1``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATIC"]

STATIC = Path(__file__).parent / "static"
