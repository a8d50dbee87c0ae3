"""``bedrock`` Put/Get/DeleteModelInvocationLoggingConfiguration: where runtime calls are logged
(``haniwa/invocations``). The configuration is kept as sent; S3 is the destination haniwa writes.
A CloudWatch destination is accepted and kept but nothing is sent there (haniwa has no CloudWatch)."""

from __future__ import annotations

from typing import Any

from haniwa.api.context import Call
from haniwa.errors import NotFoundError, ValidationError

__all__ = ["OPERATIONS"]


async def put_config(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    cfg = p["loggingConfig"]
    s3 = cfg.get("s3Config")
    if s3 is not None:
        try:
            await call.platform.invocation_logs.store.bucket(s3["bucketName"])
        except (NotFoundError, ValidationError) as exc:  # S3's own codes (NoSuchBucket, InvalidBucketName)
            raise ValidationError(
                f"s3Config.bucketName {s3['bucketName'][:80]!r} is not a bucket at this endpoint:"
                f" {exc.message}"
            ) from exc
    await call.platform.invocation_logs.put(cfg)
    return {}


async def get_config(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    cfg = await call.platform.invocation_logs.config()
    return {} if cfg is None else {"loggingConfig": dict(cfg)}


async def delete_config(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    await call.platform.invocation_logs.delete()
    return {}


OPERATIONS = {
    ("bedrock", "PutModelInvocationLoggingConfiguration"): put_config,
    ("bedrock", "GetModelInvocationLoggingConfiguration"): get_config,
    ("bedrock", "DeleteModelInvocationLoggingConfiguration"): delete_config,
}
