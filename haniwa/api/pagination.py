"""One page of a listing and its opaque ``nextToken``: the pagination of every Bedrock List operation.

A token is ``<position>.<mac>``, both base64url. The position is JSON: the offset of the next item and a
short digest of the last item's key. The MAC is an HMAC-SHA256 over the position *and the list it
belongs to* (the service, the operation and every request member except ``nextToken`` and the page size),
under a key drawn when the app is built. So garbage, a tampered token, a token from another list (another
operation, knowledge base, filter or sort) and one issued before a restart are all a
``ValidationException`` rather than a silent restart from the first page, which would make a paginator
loop or return duplicates. Clients may change the page size between calls, as Bedrock allows.

The next page starts right after the last item served, wherever that item is now, so adding or removing
items before it between two calls neither skips nor repeats one. If the last item itself was removed, the
page resumes one place before its old offset (a repeat is possible then; a skip is not, unless several
items before it went too).

Example (a handler)::

    async def list_agents(call: Call, p: dict[str, Any]) -> dict[str, Any]:
        page = paginate(call, p, await call.platform.agents.list_agents(), key=lambda a: a.id)
        return page.wire("agentSummaries", [summary(a) for a in page.items])
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from haniwa.errors import ValidationError

__all__ = ["Page", "Pager", "paginate", "refuse_token"]

T = TypeVar("T")

TOKEN = "nextToken"
_MAC_BYTES = 16
_BAD_TOKEN = (
    "nextToken is not a token this server issued for this list (a token belongs to one list and its"
    " filters, and ends when the server restarts); list again without it"
)


@dataclass(frozen=True)
class Page(Generic[T]):
    """The items of one page and the token of the next (None on the last page)."""

    items: list[T]
    next_token: str | None

    def wire(self, member: str, items: list[Any]) -> dict[str, Any]:
        """The output shape: ``items`` (this page, converted to the wire) under ``member``, and nextToken."""
        out: dict[str, Any] = {member: items}
        if self.next_token is not None:
            out[TOKEN] = self.next_token
        return out


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(key: str) -> str:
    # a digest keeps tokens short and free of ids (document URIs can be long)
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


class Pager:
    """Cuts listings into pages and issues and checks their tokens; one per app (``Platform.pages``)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def page(
        self, items: Sequence[T], *, scope: str, size: int, token: str | None, key: Callable[[T], str]
    ) -> Page[T]:
        """Up to ``size`` items from where ``token`` left off (the start when None) in the listing named
        ``scope``; ``key`` is an item's identity within the listing."""
        if size < 1:
            raise ValidationError(f"the page size must be at least 1 (got {size})")
        start = 0 if token is None else self._resume(items, scope, token, key)
        chunk = list(items[start : start + size])
        end = start + len(chunk)
        if end >= len(items):
            return Page(chunk, None)
        return Page(chunk, self._issue(scope, end, key(chunk[-1])))

    def _mac(self, scope: str, position: bytes) -> bytes:
        message = scope.encode("utf-8", "surrogatepass") + b"\0" + position
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def _issue(self, scope: str, offset: int, last: str) -> str:
        position = json.dumps({"o": offset, "a": _digest(last)}, separators=(",", ":")).encode()
        return f"{_b64(position)}.{_b64(self._mac(scope, position))}"

    def _resume(self, items: Sequence[T], scope: str, token: str, key: Callable[[T], str]) -> int:
        head, dot, tail = token.partition(".")
        try:
            position, mac = _unb64(head), _unb64(tail)
        except (binascii.Error, ValueError):
            raise ValidationError(_BAD_TOKEN) from None
        if not dot or not hmac.compare_digest(mac, self._mac(scope, position)):
            raise ValidationError(_BAD_TOKEN)
        where = json.loads(position)  # ours: the MAC matched
        offset, last = int(where["o"]), str(where["a"])
        for i, item in enumerate(items):
            if _digest(key(item)) == last:
                return i + 1
        return min(max(offset - 1, 0), len(items))


class _OpName(Protocol):
    service: str
    name: str


class Paged(Protocol):
    """What :func:`paginate` needs of a call (``api/context.Call`` is one): its operation and the app's
    pager. A Protocol, so this module needs nothing from the modules that use it."""

    @property
    def op(self) -> _OpName: ...

    @property
    def pages(self) -> Pager: ...


def _scope(call: Paged, p: Mapping[str, Any], size_member: str) -> str:
    rest = {k: v for k, v in p.items() if k not in (TOKEN, size_member)}
    return f"{call.op.service}:{call.op.name}:" + json.dumps(
        rest, sort_keys=True, separators=(",", ":"), default=str
    )


def paginate(
    call: Paged,
    p: Mapping[str, Any],
    items: Sequence[T],
    key: Callable[[T], str],
    *,
    size_member: str = "maxResults",
    default_size: int = 100,
) -> Page[T]:
    """The page of ``items`` that request ``p`` asks for (``nextToken`` and ``size_member``), bound to the
    operation and the rest of ``p``; ``key`` is an item's identity (an id)."""
    size = p.get(size_member)
    return call.pages.page(
        items,
        scope=_scope(call, p, size_member),
        size=default_size if size is None else int(size),
        token=p.get(TOKEN),
        key=key,
    )


def refuse_token(p: Mapping[str, Any]) -> None:
    """For operations whose shape has a ``nextToken`` but that answer in one page (Retrieve, Rerank):
    haniwa issues no token there, so any token a client sends is one it did not issue."""
    if p.get(TOKEN) is not None:
        raise ValidationError(_BAD_TOKEN)
