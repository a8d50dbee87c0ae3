"""Request authentication: SigV4 (or a Bedrock API key as bearer) on the Bedrock surface, bearer keys on
the OpenAI surface.

Signatures are recomputed with botocore's own ``SigV4Auth`` over the request as received, restricted to
the headers the client says it signed, so canonicalisation matches the client byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from haniwa.config import Settings
from haniwa.errors import AccessDeniedError

__all__ = ["verify_sigv4", "verify_bearer"]

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,\s*"
    r"SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<sig>[0-9a-f]{64})"
)
_MAX_SKEW = dt.timedelta(minutes=15)


class _Verifier(SigV4Auth):  # type: ignore[misc]
    def __init__(self, creds: Credentials, service: str, region: str, signed: list[str]) -> None:
        super().__init__(creds, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        # exactly the headers the client listed in SignedHeaders, as received
        out = HTTPHeaders()
        for name in self._signed:
            if name in request.headers:
                out[name] = request.headers[name]
        return out


def verify_sigv4(
    settings: Settings, method: str, url: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    """Raise AccessDeniedError unless the request carries a valid signature by the configured key.

    ``url`` must carry the path exactly as the client sent it (still percent-encoded), because SigV4
    canonicalises the encoded path.
    """
    if not settings.auth_enabled:
        return
    lower = {k.lower(): v for k, v in headers}
    if lower.get("authorization", "").startswith("Bearer "):
        # Bedrock API keys: boto3 sends AWS_BEARER_TOKEN_BEDROCK this way, and the playground in a
        # browser (where SigV4 signing would need the secret in page script) sends its API key
        verify_bearer(settings, lower["authorization"])
        return
    m = _AUTH.fullmatch(lower.get("authorization", "").strip())
    if not m:
        raise AccessDeniedError("missing or malformed SigV4 Authorization header")
    if m["key"] != settings.access_key_id:
        raise AccessDeniedError("The security token included in the request is invalid (unknown access key)")
    amz_date = lower.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise AccessDeniedError("missing or malformed X-Amz-Date header") from exc
    if abs(dt.datetime.now(dt.UTC) - when) > _MAX_SKEW:
        raise AccessDeniedError("Signature expired: X-Amz-Date is more than 15 minutes from server time")
    assert settings.secret_access_key is not None
    creds = Credentials(
        m["key"], settings.secret_access_key.get_secret_value(), lower.get("x-amz-security-token")
    )
    signed = m["signed"].split(";")
    req = AWSRequest(
        method=method, url=url, data=body, headers={k: v for k, v in headers if k.lower() in signed}
    )
    req.context["timestamp"] = amz_date
    verifier = _Verifier(creds, m["service"], m["region"], signed)
    canonical = verifier.canonical_request(req)
    expected = verifier.signature(verifier.string_to_sign(req, canonical), req)
    if not hmac.compare_digest(expected, m["sig"]):
        raise AccessDeniedError(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )


def verify_bearer(settings: Settings, authorization: str | None) -> None:
    """OpenAI surface: accept the secret access key or a configured API key as the bearer token."""
    keys = list(settings.api_keys)
    if settings.secret_access_key is not None:
        keys.append(settings.secret_access_key.get_secret_value())
    if not keys:
        return
    token = (authorization or "").removeprefix("Bearer ").strip()
    if not any(hmac.compare_digest(token, k) for k in keys):
        raise AccessDeniedError("Incorrect API key provided")
