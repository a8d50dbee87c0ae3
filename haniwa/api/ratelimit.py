"""Who a request is charged to, for the rate limits of ``runtime/ratelimit.py``.

Both surfaces call :func:`caller_key` on the ``Authorization`` header the request was authenticated with
and pass the result to ``registry.chat(..., caller=)`` / ``registry.embed(..., caller=)``:

- a SigV4 signature is charged to its access key id (``aws:AKID...``);
- a bearer token (an OpenAI API key, or a Bedrock API key sent by boto3) to a digest of the token, so the
  limiter never holds a key itself (``key:3f2a...``);
- anything else (no credentials, on a server without authentication) to ``anonymous``.

The header has already been verified when this runs, so on a server with credentials a caller cannot pick
another's budget. Without authentication anyone may name any key: per-key budgets then only separate
well-behaved clients, and the per-model budgets of ``anonymous`` cover the rest.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["caller_key", "ANONYMOUS"]

ANONYMOUS = "anonymous"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]{1,128})/")


def caller_key(authorization: str | None) -> str:
    """The rate-limit identity of a request's ``Authorization`` header (see the module docstring)."""
    value = (authorization or "").strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        digest = hashlib.sha256(token.strip().encode("utf-8", "replace")).hexdigest()[:16]
        return f"key:{digest}"
    if scheme == "AWS4-HMAC-SHA256":
        m = _CREDENTIAL.search(token)
        if m:
            return f"aws:{m.group(1)}"
    return ANONYMOUS
