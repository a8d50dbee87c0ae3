"""Request authentication: SigV4 (or a Bedrock API key as bearer) on the Bedrock surface, bearer keys on
the OpenAI surface.

Signatures are recomputed with botocore's own ``SigV4Auth`` over the request as received, restricted to
the headers the client says it signed, so canonicalisation matches the client byte for byte.

Everything that does not need the body (the header's form, the key id, the clock, which headers are signed,
the payload-hash policy, bearer keys) is checked by :func:`authenticate_headers` *before* the body is read,
so an unauthenticated client cannot make the server buffer anything. :func:`verify_signature` then binds the
signature to the bytes actually received.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

from botocore.auth import HmacV1QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from haniwa.config import Settings
from haniwa.errors import AccessDeniedError

__all__ = [
    "SignedRequest",
    "authenticate_headers",
    "verify_signature",
    "verify_presigned",
    "verify_presigned_v2",
    "verify_sigv4",
    "verify_bearer",
]

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,\s*"
    r"SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<sig>[0-9a-f]{64})"
)
_SCOPE = re.compile(r"(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_SKEW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class SignedRequest:
    """A SigV4 ``Authorization`` header that passed every check that needs no body."""

    key: str
    region: str
    service: str
    signed: tuple[str, ...]
    signature: str
    amz_date: str
    payload_hash: str | None  # the x-amz-content-sha256 value the client sent, if any


class _Verifier(SigV4Auth):  # type: ignore[misc]
    def __init__(self, creds: Credentials, service: str, region: str, signed: tuple[str, ...]) -> None:
        super().__init__(creds, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        # exactly the headers the client listed in SignedHeaders, as received
        out = HTTPHeaders()
        for name in self._signed:
            if name in request.headers:
                out[name] = request.headers[name]
        return out


class _S3Verifier(_Verifier):
    def _normalize_url_path(self, path: str) -> str:
        # as botocore's S3SigV4Auth: S3 keys may hold '//' and '.', so the path is signed as sent
        return path


def _lower(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers}


# S3 bodies may be large and streamed: a signature may leave them unsigned (TLS then protects them) or
# sign a hash that is checked once the last byte is in (api/s3_wire.py Body)
_S3_PAYLOAD_MODES = ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")


def authenticate_headers(
    settings: Settings, headers: list[tuple[str, str]], *, s3: bool = False
) -> SignedRequest | None:
    """Check everything the headers alone can prove; raise AccessDeniedError on the first failure.

    Returns None when nothing is left to check once the body is in (authentication is off, or a valid
    API key was sent as a bearer token), else the parsed signature for :func:`verify_signature`.
    """
    lower = _lower(headers)
    authorization = lower.get("authorization", "")
    if not settings.auth_enabled:
        if settings.api_keys:
            # API keys without a SigV4 pair: signatures cannot be checked, so the Bedrock surface takes
            # the same bearer keys as /v1 (boto3: AWS_BEARER_TOKEN_BEDROCK) rather than staying open
            verify_bearer(settings, authorization)
        return None
    if authorization[:7].lower() == "bearer ":
        # Bedrock API keys: boto3 sends AWS_BEARER_TOKEN_BEDROCK this way, and the playground in a
        # browser (where SigV4 signing would need the secret in page script) sends its API key
        verify_bearer(settings, authorization)
        return None
    m = _AUTH.fullmatch(authorization.strip())
    if not m:
        raise AccessDeniedError("missing or malformed SigV4 Authorization header")
    if not hmac.compare_digest(m["key"].encode(), (settings.access_key_id or "").encode()):
        raise AccessDeniedError("The security token included in the request is invalid (unknown access key)")
    amz_date = lower.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise AccessDeniedError("missing or malformed X-Amz-Date header") from exc
    if abs(dt.datetime.now(dt.UTC) - when) > _MAX_SKEW:
        raise AccessDeniedError("Signature expired: X-Amz-Date is more than 15 minutes from server time")
    signed = tuple(m["signed"].split(";"))
    if "host" not in signed:
        # an unsigned Host lets a signature captured for one server be replayed against another
        raise AccessDeniedError("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    payload_hash = lower.get("x-amz-content-sha256")
    if s3:
        if m["service"] != "s3":
            raise AccessDeniedError(f"a signature for {m['service']!r} is not valid for S3")
        if payload_hash is None or not (
            payload_hash in _S3_PAYLOAD_MODES or _SHA256_HEX.fullmatch(payload_hash)
        ):
            raise AccessDeniedError(
                f"x-amz-content-sha256 {str(payload_hash)[:40]!r} is not accepted: send the hex SHA-256 of"
                f" the body or one of {', '.join(_S3_PAYLOAD_MODES)}"
            )
    elif payload_hash is not None and not _SHA256_HEX.fullmatch(payload_hash):
        # UNSIGNED-PAYLOAD and STREAMING-* would leave the body unsigned: the Bedrock and OpenAI surfaces
        # take small JSON bodies, so there is no reason to accept a signature that does not cover them
        raise AccessDeniedError(
            f"x-amz-content-sha256 {payload_hash[:40]!r} is not accepted here: sign the payload "
            "(the hex SHA-256 of the body)"
        )
    return SignedRequest(m["key"], m["region"], m["service"], signed, m["sig"], amz_date, payload_hash)


def verify_signature(
    settings: Settings,
    signed: SignedRequest,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
) -> None:
    """Raise AccessDeniedError unless ``signed`` is a signature of this request and these exact bytes.

    ``url`` must carry the path exactly as the client sent it (still percent-encoded), because SigV4
    canonicalises the encoded path. ``body`` None: the body streams in after this check, and the caller
    compares it with ``signed.payload_hash`` (S3, ``api/s3_wire.py``).
    """
    if body is None:
        if signed.payload_hash is None:
            raise AccessDeniedError("x-amz-content-sha256 is required when the body is streamed")
        body = b""
    elif signed.payload_hash is not None and not hmac.compare_digest(
        signed.payload_hash, hashlib.sha256(body).hexdigest()
    ):
        # botocore takes a present x-amz-content-sha256 as the payload hash without looking at the body,
        # so without this comparison a signed request could carry any other body
        raise AccessDeniedError(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    secret = settings.secret_access_key
    assert secret is not None  # authenticate_headers returned a SignedRequest, so auth is enabled
    creds = Credentials(signed.key, secret.get_secret_value(), _lower(headers).get("x-amz-security-token"))
    req = AWSRequest(
        method=method, url=url, data=body, headers={k: v for k, v in headers if k.lower() in signed.signed}
    )
    req.context["timestamp"] = signed.amz_date
    verifier = (_S3Verifier if signed.service == "s3" else _Verifier)(
        creds, signed.service, signed.region, signed.signed
    )
    canonical = verifier.canonical_request(req)
    expected = verifier.signature(verifier.string_to_sign(req, canonical), req)
    if not hmac.compare_digest(expected, signed.signature):
        raise AccessDeniedError(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )


def verify_presigned(settings: Settings, method: str, url: str, headers: list[tuple[str, str]]) -> None:
    """Raise AccessDeniedError unless ``url`` is a valid, unexpired SigV4 presigned S3 URL for ``method``.

    The signature covers the query (less ``X-Amz-Signature``), the signed headers and ``UNSIGNED-PAYLOAD``,
    recomputed with botocore's signer as for a header signature.
    """
    if not settings.auth_enabled:
        return
    split = urlsplit(url)
    params = parse_qs(split.query, keep_blank_values=True)

    def one(name: str) -> str:
        values = params.get(name)
        if not values or len(values) != 1:
            raise AccessDeniedError(f"the presigned URL lacks {name}")
        return values[0]

    if one("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise AccessDeniedError("X-Amz-Algorithm must be AWS4-HMAC-SHA256")
    m = _SCOPE.fullmatch(one("X-Amz-Credential"))
    if m is None or m["service"] != "s3":
        raise AccessDeniedError("malformed X-Amz-Credential")
    if not hmac.compare_digest(m["key"].encode(), (settings.access_key_id or "").encode()):
        raise AccessDeniedError("The AWS Access Key Id you provided does not exist in our records.")
    amz_date = one("X-Amz-Date")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        expires = int(one("X-Amz-Expires"))
    except ValueError as exc:
        raise AccessDeniedError("malformed X-Amz-Date or X-Amz-Expires") from exc
    now = dt.datetime.now(dt.UTC)
    if (
        not 0 < expires <= 7 * 24 * 3600
        or now > when + dt.timedelta(seconds=expires)
        or when - now > _MAX_SKEW
    ):
        raise AccessDeniedError("Request has expired")
    signed = tuple(one("X-Amz-SignedHeaders").split(";"))
    if "host" not in signed:
        raise AccessDeniedError("'Host' must be a signed header of the presigned URL")
    signature = one("X-Amz-Signature")
    # the canonical query is every parameter but the signature, re-encoded by botocore as the client did
    rest = "&".join(p for p in split.query.split("&") if not p.startswith("X-Amz-Signature="))
    unsigned_url = urlunsplit((split.scheme, split.netloc, split.path, rest, ""))
    secret = settings.secret_access_key
    assert secret is not None
    req = AWSRequest(
        method=method,
        url=unsigned_url,
        headers={k: v for k, v in headers if k.lower() in signed},
    )
    # the payload of a presigned request is never signed; this value is read, not sent
    req.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    req.context["timestamp"] = amz_date
    verifier = _S3Verifier(Credentials(m["key"], secret.get_secret_value()), "s3", m["region"], signed)
    canonical = verifier.canonical_request(req)
    expected = verifier.signature(verifier.string_to_sign(req, canonical), req)
    if not hmac.compare_digest(expected, signature):
        raise AccessDeniedError(
            "The request signature we calculated does not match the signature you provided."
        )


class _V2QueryVerifier(HmacV1QueryAuth):  # type: ignore[misc]
    def __init__(self, creds: Credentials, expires: str) -> None:
        super().__init__(creds, expires=0)
        self._expires_at = expires

    def _get_date(self) -> str:
        # the string to sign holds the URL's own Expires, not a new one
        return self._expires_at


def verify_presigned_v2(settings: Settings, method: str, url: str, headers: list[tuple[str, str]]) -> None:
    """Raise AccessDeniedError unless ``url`` is a valid, unexpired S3 presigned URL of the older form
    (``AWSAccessKeyId``, ``Expires``, ``Signature``) that boto3's ``generate_presigned_url`` makes for S3
    by default; recomputed with botocore's ``HmacV1QueryAuth``."""
    if not settings.auth_enabled:
        return
    split = urlsplit(url)
    params = parse_qs(split.query, keep_blank_values=True)
    try:
        (key,), (signature,), (expires,) = (params[n] for n in ("AWSAccessKeyId", "Signature", "Expires"))
        expires_at = int(expires)
    except (KeyError, ValueError) as exc:
        raise AccessDeniedError("malformed presigned URL (AWSAccessKeyId, Signature, Expires)") from exc
    if not hmac.compare_digest(key.encode(), (settings.access_key_id or "").encode()):
        raise AccessDeniedError("The AWS Access Key Id you provided does not exist in our records.")
    now = dt.datetime.now(dt.UTC).timestamp()
    if not now <= expires_at <= now + 7 * 24 * 3600:
        raise AccessDeniedError("Request has expired")
    signed = HTTPHeaders()
    for name, value in headers:
        if name.lower() in ("content-md5", "content-type") or name.lower().startswith("x-amz-"):
            signed[name] = value
    secret = settings.secret_access_key
    assert secret is not None
    expected = _V2QueryVerifier(Credentials(key, secret.get_secret_value()), expires).get_signature(
        method, split, signed
    )
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise AccessDeniedError(
            "The request signature we calculated does not match the signature you provided."
        )


def verify_sigv4(
    settings: Settings, method: str, url: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    """Both steps at once, for callers that already hold the body."""
    signed = authenticate_headers(settings, headers)
    if signed is not None:
        verify_signature(settings, signed, method, url, headers, body)


def verify_bearer(settings: Settings, authorization: str | None) -> None:
    """Accept one of ``HANIWA_API_KEYS`` as ``Authorization: Bearer <key>``.

    Only dedicated API keys are bearer tokens: the SigV4 secret never travels in a header. Without API
    keys the surface is open only while no credentials are configured at all (loopback, see
    ``Settings.check_bind``); a server with SigV4 credentials and no API keys refuses every bearer request.
    """
    keys = [k.encode() for k in settings.api_keys if k]  # "" is not a key (Settings drops it too)
    if not keys:
        if settings.auth_enabled:
            raise AccessDeniedError(
                "this server requires credentials but has no API keys: bearer tokens are accepted only "
                "from HANIWA_API_KEYS (the SigV4 secret is not one); set HANIWA_API_KEYS on the server"
            )
        return
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AccessDeniedError("missing API key: send 'Authorization: Bearer <one of HANIWA_API_KEYS>'")
    # compare bytes: compare_digest refuses non-ASCII str, and a header may carry any latin-1 text
    given = token.strip().encode()
    if not any(hmac.compare_digest(given, k) for k in keys):
        raise AccessDeniedError("Incorrect API key provided")
