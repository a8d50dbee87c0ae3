"""Choosing the native body format of an InvokeModel call; the registry knows no provider.

A format is chosen by the requested model id's family (after stripping an ARN and a cross-region
prefix such as ``us.``); ids of no known family (local ids like ``echo:echo``, custom aliases) are
recognised by their body's keys. Formats come from the ``register_formats`` hook, the built-ins
(``haniwa.api.native.builtin``) exactly as a plugin's::

    from haniwa.hookspecs import hookimpl


    @hookimpl
    def register_formats(register):
        register(
            "acme.",                                   # model ids acme.* use this format
            lambda model_id, body: AcmeFormat(),       # a ChatFormat or EmbedFormat
            detect=lambda body, kind: "acme_prompt" in body,   # and so do local ids sent this body
            shape="Acme {acme_prompt}",
        )

The app's :class:`NativeFormats` lives on ``Platform.formats``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from haniwa.api.native.base import ChatFormat, EmbedFormat
from haniwa.api.native.fields import family_id
from haniwa.errors import ValidationError

__all__ = ["AnyFormat", "FormatFactory", "Detector", "NativeFormat", "NativeFormats"]

AnyFormat = ChatFormat | EmbedFormat
# (requested model id, body) → a format object; it may keep what it needs from the body for render.
FormatFactory = Callable[[str, Mapping[str, Any]], AnyFormat]
# (body, model kind "chat" | "embedding") → whether this body is this format's, for ids of no family.
Detector = Callable[[Mapping[str, Any], str], bool]


@dataclass(frozen=True)
class NativeFormat:
    """One registration: the model-id family ``prefix``, how to build the format, how to spot its body."""

    prefix: str
    factory: FormatFactory
    detect: Detector | None = None
    shape: str = ""  # the body's outline, listed when no format matches


class NativeFormats:
    """The formats in use. A later registration is asked first and replaces one of the same prefix.

    >>> formats = NativeFormats()
    >>> formats.register("acme.", lambda model_id, body: ..., shape="Acme {acme_prompt}")
    >>> formats.prefixes
    ('acme.',)
    """

    def __init__(self) -> None:
        self._entries: list[NativeFormat] = []

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager) -> NativeFormats:
        """Collect every ``register_formats`` implementation. pluggy calls the most recently registered
        plugin first; registrations are applied in reverse, so a plugin's format is asked before the
        built-ins and replaces a built-in of the same prefix, and within one implementation the first
        registered is asked first."""
        found: list[NativeFormat] = []

        def collect(
            prefix: str, factory: FormatFactory, *, detect: Detector | None = None, shape: str = ""
        ) -> None:
            found.append(NativeFormat(prefix, factory, detect, shape))

        pm.hook.register_formats(register=collect)
        formats = cls()
        for entry in reversed(found):
            formats.register(entry.prefix, entry.factory, detect=entry.detect, shape=entry.shape)
        return formats

    def register(
        self, prefix: str, factory: FormatFactory, *, detect: Detector | None = None, shape: str = ""
    ) -> None:
        """Serve ids starting with ``prefix``, and bodies ``detect`` accepts, with ``factory``'s format."""
        self.unregister(prefix)
        self._entries.insert(0, NativeFormat(prefix, factory, detect, shape))

    def unregister(self, prefix: str) -> None:
        """Forget the format registered for ``prefix`` (tests and plugins that unload)."""
        self._entries = [e for e in self._entries if e.prefix != prefix]

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The registered prefixes, in the order they are asked."""
        return tuple(e.prefix for e in self._entries)

    def pick(self, model_id: str, kind: str, body: Mapping[str, Any]) -> AnyFormat:
        """The format for this call: by model family, else by the body's keys; ValidationError if neither."""
        fid = family_id(model_id)
        by_prefix = [e for e in self._entries if e.prefix and fid.startswith(e.prefix)]
        if by_prefix:
            return max(by_prefix, key=lambda e: len(e.prefix)).factory(model_id, body)
        for entry in self._entries:
            if entry.detect is not None and entry.detect(body, kind):
                return entry.factory(model_id, body)
        shapes = "; ".join(e.shape for e in self._entries if e.shape)
        raise ValidationError(
            f"Malformed input request: the body does not match any model provider's format for {model_id}. "
            f"Send one of: {shapes}."
        )
