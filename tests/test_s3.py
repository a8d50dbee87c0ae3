"""S3 at haniwa's endpoint, driven by the real boto3 against a real server with SigV4 credentials."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore import UNSIGNED
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.s3.base import PutOptions, S3Store
from haniwa.s3.store import FolderStore
from haniwa.testing.objectstore import ObjectStoreConformance
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs
from tests.test_knowledge_api import make_kb, sync

KEY, SECRET = "AKIDEXAMPLE", "secret-example"  # what client_kwargs signs with


@pytest.fixture
def s3_settings(home: Path) -> Settings:
    return Settings(home=home, access_key_id=KEY, secret_access_key=SECRET)


@pytest.fixture
def s3_url(s3_settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(s3_settings)) as url:
        yield url


@pytest.fixture
def s3(s3_url: str) -> Any:
    return boto3.client("s3", **client_kwargs(s3_url))


@pytest.fixture
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="data")
    return "data"


def code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_crud(s3: Any, home: Path) -> None:
    s3.create_bucket(Bucket="alpha")
    s3.create_bucket(Bucket="beta")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["alpha", "beta"]
    assert (home / "s3" / "alpha").is_dir()  # the folder knowledge bases read
    s3.head_bucket(Bucket="alpha")
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="alpha")
    assert code(exc) == ("BucketAlreadyOwnedByYou", 409)
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="Bad_Name")
    assert code(exc) == ("InvalidBucketName", 400)
    s3.put_object(Bucket="alpha", Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket="alpha")
    assert code(exc) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="alpha", Key="k")
    s3.delete_bucket(Bucket="alpha")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="alpha")
    assert code(exc) == ("404", 404)
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="alpha")
    assert code(exc) == ("NoSuchBucket", 404)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["beta"]


def test_put_get_head_delete_with_metadata(s3: Any, bucket: str) -> None:
    body = "ハニワの仕様書\n".encode() * 100
    put = s3.put_object(
        Bucket=bucket, Key="docs/spec.txt", Body=body, ContentType="text/plain", Metadata={"team": "kb"}
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="docs/spec.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"team": "kb"}
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="docs/spec.txt")
    assert head["ContentLength"] == len(body)
    assert head["Metadata"] == {"team": "kb"}
    assert head["LastModified"].year >= 2024
    s3.delete_object(Bucket=bucket, Key="docs/spec.txt")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="docs/spec.txt")
    assert code(exc) == ("NoSuchKey", 404)
    assert "RequestId" in exc.value.response["Error"] or exc.value.response["ResponseMetadata"]["RequestId"]
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="docs/spec.txt")
    assert code(exc) == ("404", 404)
    s3.delete_object(Bucket=bucket, Key="never-was")  # deleting a missing key is no error


def test_keys_with_unusual_characters(s3: Any, bucket: str, home: Path) -> None:
    keys = ["日本語/ファイル 1+2%.txt", "a b/c&d=e?f#g", "x/~tilde;semi,comma", "quote'\"", "sp ace"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]  # EncodingType=url by boto3
    assert listed == sorted(keys)
    assert (home / "s3" / bucket / "日本語" / "ファイル 1+2%.txt").read_bytes() == keys[0].encode()


def test_operations_not_served_answer_not_implemented(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_acl(Bucket=bucket)
    assert code(exc) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as exc:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": []})
    assert code(exc) == ("NotImplemented", 501)


def test_readers_never_see_half_an_object(s3: Any, s3_url: str, bucket: str) -> None:
    import threading

    bodies = [bytes([c]) * (1024 * 1024) for c in b"ab"]
    s3.put_object(Bucket=bucket, Key="hot", Body=bodies[0])
    stop = threading.Event()

    def write() -> None:
        writer = boto3.client("s3", **client_kwargs(s3_url))
        i = 0
        while not stop.is_set():
            writer.put_object(Bucket=bucket, Key="hot", Body=bodies[i % 2])
            i += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        for _ in range(15):
            got = s3.get_object(Bucket=bucket, Key="hot")
            data = got["Body"].read()
            assert data in bodies
            assert got["ContentLength"] == len(data)
            assert got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'  # the ETag of the bytes served
    finally:
        stop.set()
        thread.join()


def test_ranges(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    part = s3.get_object(Bucket=bucket, Key="r", Range="bytes=2-5")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == "bytes 2-5/10"
    assert part["Body"].read() == b"2345"
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-3")["Body"].read() == b"789"
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=7-")["Body"].read() == b"789"
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=8-100")["Body"].read() == b"89"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-")
    assert code(exc) == ("InvalidRange", 416)
    etag = s3.head_object(Bucket=bucket, Key="r")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="r", IfMatch=etag)["Body"].read() == b"0123456789"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfMatch='"0000"')
    assert code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfNoneMatch=etag)
    assert code(exc)[1] == 304


def test_list_prefix_delimiter_pagination(s3: Any, bucket: str) -> None:
    keys = [f"logs/{i:02d}.txt" for i in range(25)] + ["a/x", "a/y", "b/z", "top"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    first = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", MaxKeys=10)
    assert first["KeyCount"] == 10 and first["IsTruncated"]
    seen = [o["Key"] for o in first["Contents"]]
    token = first["NextContinuationToken"]
    while token:
        page = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", MaxKeys=10, ContinuationToken=token)
        seen += [o["Key"] for o in page["Contents"]]
        token = page.get("NextContinuationToken")
    assert seen == sorted(k for k in keys if k.startswith("logs/"))
    paginator = s3.get_paginator("list_objects_v2")
    every = [
        o["Key"]
        for p in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 7})
        for o in p["Contents"]
    ]
    assert every == sorted(keys)
    rolled = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["a/", "b/", "logs/"]
    assert [o["Key"] for o in rolled["Contents"]] == ["top"]
    after = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", StartAfter="logs/22.txt")
    assert [o["Key"] for o in after["Contents"]] == ["logs/23.txt", "logs/24.txt"]
    v1 = boto3.resource("s3", **client_kwargs(s3.meta.endpoint_url)).Bucket(bucket)
    assert sorted(o.key for o in v1.objects.all()) == sorted(keys)


def test_copy_and_delete_objects(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"hello", Metadata={"a": "1"}, ContentType="text/plain")
    s3.copy_object(Bucket=bucket, Key="dst/copy", CopySource={"Bucket": bucket, "Key": "src"})
    copied = s3.get_object(Bucket=bucket, Key="dst/copy")
    assert copied["Body"].read() == b"hello" and copied["Metadata"] == {"a": "1"}
    s3.copy_object(
        Bucket=bucket,
        Key="dst/new",
        CopySource=f"{bucket}/src",
        Metadata={"b": "2"},
        MetadataDirective="REPLACE",
        ContentType="application/json",
    )
    head = s3.head_object(Bucket=bucket, Key="dst/new")
    assert head["Metadata"] == {"b": "2"} and head["ContentType"] == "application/json"
    out = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "src"}, {"Key": "dst/copy"}, {"Key": "../x"}]}
    )
    assert sorted(d["Key"] for d in out["Deleted"]) == ["dst/copy", "src"]
    assert [e["Key"] for e in out["Errors"]] == ["../x"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["dst/new"]


def test_multipart_upload_file_round_trip(s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(20 * 1024 * 1024)
    src.write_bytes(data)
    s3.upload_file(str(src), bucket, "big/model.bin")  # 8 MiB parts: CreateMultipartUpload + 3 parts
    head = s3.head_object(Bucket=bucket, Key="big/model.bin")
    md5s = [hashlib.md5(data[i : i + 8 * 1024 * 1024]).digest() for i in range(0, len(data), 8 * 1024 * 1024)]
    assert head["ETag"] == f'"{hashlib.md5(b"".join(md5s)).hexdigest()}-3"'
    assert head["ContentLength"] == len(data)
    out = tmp_path / "back.bin"
    s3.download_file(bucket, "big/model.bin", str(out))
    assert out.read_bytes() == data
    # parts: listed while open, gone after abort
    up = s3.create_multipart_upload(Bucket=bucket, Key="parts")
    s3.upload_part(Bucket=bucket, Key="parts", UploadId=up["UploadId"], PartNumber=1, Body=b"p1")
    assert [
        p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="parts", UploadId=up["UploadId"])["Parts"]
    ] == [1]
    s3.abort_multipart_upload(Bucket=bucket, Key="parts", UploadId=up["UploadId"])
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="parts", UploadId=up["UploadId"])
    assert code(exc) == ("NoSuchUpload", 404)


def test_keys_never_leave_their_bucket(s3: Any, s3_url: str, bucket: str, home: Path) -> None:
    for key in ("../escape", "a/../../escape", "..\\escape", "a\\..\\b", "/abs"):
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        assert code(exc)[1] in (400, 403), key  # urllib3 resolves some dot segments: then no signature fits
    # a raw percent-encoded path that decodes to ../ (botocore would encode the dots itself)
    signed = _signed("PUT", f"{s3_url}/{bucket}/%2e%2e/escape", b"x")
    assert httpx.put(signed.url, content=b"x", headers=dict(signed.headers)).status_code == 400
    assert not (home / "s3" / "escape").exists() and not (home / "escape").exists()
    # a symlinked folder that points outside the bucket is not followed
    outside = home / "outside"
    outside.mkdir()
    (home / "s3" / bucket / "link").symlink_to(outside)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="link/x", Body=b"x")
    assert code(exc)[1] == 400, exc.value.response
    assert list(outside.iterdir()) == []
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key=".haniwa-s3meta/objects/x.json", Body=b"{}")
    assert code(exc)[1] == 400


def _signed(method: str, url: str, body: bytes, headers: dict[str, str] | None = None) -> AWSRequest:
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    if "X-Amz-Content-SHA256" not in req.headers:
        req.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    S3SigV4Auth(Credentials(KEY, SECRET), "s3", "us-east-1").add_auth(req)
    return req


def test_aws_chunked_upload_with_trailing_checksum(s3_url: str, s3: Any, bucket: str, home: Path) -> None:
    """What boto3 sends over TLS by default: aws-chunked with an unsigned CRC32 trailer."""
    data = os.urandom(300_000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()

    def chunked(payload: bytes, checksum: str) -> bytes:
        out = b""
        for i in range(0, len(payload), 65536):
            piece = payload[i : i + 65536]
            out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        return out + f"0\r\nx-amz-checksum-crc32:{checksum}\r\n\r\n".encode()

    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "X-Amz-Trailer": "x-amz-checksum-crc32",
        "X-Amz-Decoded-Content-Length": str(len(data)),
    }
    body = chunked(data, crc)
    req = _signed("PUT", f"{s3_url}/{bucket}/chunked.bin", body, headers)
    r = httpx.put(req.url, content=body, headers=dict(req.headers))
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="chunked.bin")["Body"].read() == data
    bad = chunked(data, base64.b64encode(b"\0\0\0\0").decode())
    req = _signed("PUT", f"{s3_url}/{bucket}/bad.bin", bad, headers)
    r = httpx.put(req.url, content=bad, headers=dict(req.headers))
    assert r.status_code == 400 and b"<Code>BadDigest</Code>" in r.content
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad.bin")  # nothing was stored
    assert list((home / "s3" / bucket / ".haniwa-s3meta" / "tmp").iterdir()) == []  # nor left behind


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_boto3_defaults_over_tls(s3_settings: Settings, tmp_path: Path) -> None:
    """Over TLS boto3 (>= 1.36) streams PutObject/UploadPart as aws-chunked with an unsigned CRC32 trailer."""
    cert, key = _self_signed(tmp_path)
    with serve_in_thread(create_app(s3_settings), ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        s3 = boto3.client("s3", **{**client_kwargs(url), "verify": str(cert)})
        s3.create_bucket(Bucket="tls")
        sent: list[dict[str, Any]] = []
        s3.meta.events.register(
            "before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers))
        )
        data = os.urandom(100_000)
        with (tmp_path / "f.bin").open("wb") as f:
            f.write(data)
        with (tmp_path / "f.bin").open("rb") as f:
            s3.put_object(Bucket="tls", Key="f.bin", Body=f)
        assert sent[0]["X-Amz-Content-SHA256"] == b"STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        assert b"aws-chunked" in sent[0]["Content-Encoding"]
        assert s3.get_object(Bucket="tls", Key="f.bin")["Body"].read() == data
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(17 * 1024 * 1024))
        s3.upload_file(str(big), "tls", "big.bin")
        s3.download_file("tls", "big.bin", str(tmp_path / "back.bin"))
        assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
        s3.close()  # idle TLS connections would hold the server's shutdown for its 30 s grace


def test_checksum_headers_are_verified(s3_url: str, s3: Any, bucket: str) -> None:
    """Over plain HTTP boto3 signs the payload hash and sends x-amz-checksum-crc32 as a header."""
    sent: list[dict[str, Any]] = []
    s3.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers))
    )
    s3.put_object(Bucket=bucket, Key="ok", Body=b"payload")
    assert "x-amz-checksum-crc32" in {k.lower() for k in sent[0]}
    wrong = base64.b64encode(b"\0\0\0\0").decode()
    req = _signed("PUT", f"{s3_url}/{bucket}/bad", b"payload", {"x-amz-checksum-crc32": wrong})
    r = httpx.put(req.url, content=b"payload", headers=dict(req.headers))
    assert r.status_code == 400 and b"<Code>BadDigest</Code>" in r.content
    md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    req = _signed("PUT", f"{s3_url}/{bucket}/bad", b"payload", {"Content-MD5": md5})
    assert httpx.put(req.url, content=b"payload", headers=dict(req.headers)).status_code == 400
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["ok"]


def test_signatures_are_checked(s3_url: str, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"s")
    unsigned = boto3.client("s3", **{**client_kwargs(s3_url), "config": Config(signature_version=UNSIGNED)})
    with pytest.raises(ClientError) as exc:
        unsigned.get_object(Bucket=bucket, Key="secret.txt")
    assert code(exc) == ("AccessDenied", 403)
    r = httpx.get(f"{s3_url}/{bucket}/secret.txt")
    assert (
        r.status_code == 403 and r.content.startswith(b"<?xml") and b"<Code>AccessDenied</Code>" in r.content
    )
    wrong = boto3.client("s3", **{**client_kwargs(s3_url), "aws_secret_access_key": "nope"})
    with pytest.raises(ClientError) as exc:
        wrong.get_object(Bucket=bucket, Key="secret.txt")
    assert code(exc) == ("AccessDenied", 403)
    # a body other than the one signed is refused, and not stored
    req = _signed("PUT", f"{s3_url}/{bucket}/swap.txt", b"signed")
    assert httpx.put(req.url, content=b"swapped", headers=dict(req.headers)).status_code == 403
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="swap.txt")
    v4 = boto3.client("s3", **{**client_kwargs(s3_url), "config": Config(signature_version="s3v4")})
    url = v4.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "secret.txt"}, ExpiresIn=60
    )
    assert httpx.get(url).content == b"s"
    assert httpx.get(url.replace("secret.txt", "other.txt")).status_code == 403
    v2 = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "secret.txt"}, ExpiresIn=60)
    assert "AWSAccessKeyId=" in v2  # boto3's default form for S3
    assert httpx.get(v2).content == b"s"
    assert httpx.get(v2.replace("secret.txt", "other.txt")).status_code == 403


def test_s3_does_not_shadow_bedrock(s3_url: str, s3: Any) -> None:
    s3.create_bucket(Bucket="model")  # the first segment of Bedrock's /model/{id}/converse
    rt = boto3.client("bedrock-runtime", **client_kwargs(s3_url))
    out = rt.converse(
        modelId="anthropic.claude-3-haiku", messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    assert out["output"]["message"]["content"][0]["text"]


def test_open_loopback_server_serves_s3(server: str, home: Path) -> None:
    """Without credentials (a loopback server) boto3 works as it does against LocalStack."""
    s3 = boto3.client("s3", **client_kwargs(server))
    s3.create_bucket(Bucket="open")
    s3.put_object(Bucket="open", Key="k", Body=b"v")
    assert httpx.get(f"{server}/open/k").content == b"v"  # unsigned, to an existing bucket
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    s3.create_bucket(Bucket="playground")  # a bucket named like another surface does not shadow it
    assert httpx.get(f"{server}/playground/index.html").status_code in (200, 404)
    assert b"<Error>" not in httpx.get(f"{server}/playground/index.html").content


def test_object_size_limit_applies_before_the_body(home: Path) -> None:
    settings = Settings(home=home, access_key_id=KEY, secret_access_key=SECRET, s3_max_object_bytes=1000)
    with serve_in_thread(create_app(settings)) as url:
        s3 = boto3.client("s3", **client_kwargs(url))
        s3.create_bucket(Bucket="small")
        s3.put_object(Bucket="small", Key="ok", Body=b"x" * 1000)
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket="small", Key="big", Body=b"x" * 1001)
        assert code(exc) == ("EntityTooLarge", 400)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="small")["Contents"]] == ["ok"]


def test_knowledge_base_reads_an_uploaded_object(s3_url: str, s3: Any, home: Path) -> None:
    agent = boto3.client("bedrock-agent", **client_kwargs(s3_url))
    runtime = boto3.client("bedrock-agent-runtime", **client_kwargs(s3_url))
    s3.create_bucket(Bucket="manuals")
    text = "ハニワロボ HR-7 の材料は、アルミニウム 12 kg と銅線 3 m です。"
    s3.put_object(Bucket="manuals", Key="kb/robot.txt", Body=text.encode(), Metadata={"lang": "ja"})
    assert any((home / "s3" / "manuals" / ".haniwa-s3meta").rglob("*.json"))  # metadata is kept aside
    kb_id = make_kb(agent, name="manuals")
    ds_id = agent.create_data_source(
        knowledgeBaseId=kb_id,
        name="manuals",
        dataSourceConfiguration={"type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::manuals"}},
    )["dataSource"]["dataSourceId"]
    job = sync(agent, kb_id, ds_id)
    assert job["status"] == "COMPLETE", job
    assert job["statistics"]["numberOfNewDocumentsIndexed"] == 1  # haniwa's metadata is no document
    hits = runtime.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": "HR-7 の材料"})["retrievalResults"]
    assert [h["location"]["s3Location"]["uri"] for h in hits] == ["s3://manuals/kb/robot.txt"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="manuals")["Contents"]] == ["kb/robot.txt"]


def test_temp_files_left_by_a_crash_are_swept(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "s3")

    async def go() -> None:
        await store.create_bucket("crash")
        tmp = tmp_path / "s3" / "crash" / ".haniwa-s3meta" / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "old").write_bytes(b"x")
        (tmp / "recent").write_bytes(b"x")
        os.utime(tmp / "old", (0, 0))

        async def body() -> AsyncIterator[bytes]:
            yield b"v"

        await store.put("crash", "k", body(), PutOptions())
        assert sorted(p.name for p in tmp.iterdir()) == ["recent"]

    asyncio.run(go())


def test_a_file_dropped_in_the_folder_is_an_object(s3: Any, bucket: str, home: Path) -> None:
    (home / "s3" / bucket / "hand").mkdir()
    (home / "s3" / bucket / "hand" / "made.txt").write_bytes(b"by hand")
    head = s3.head_object(Bucket=bucket, Key="hand/made.txt")
    assert head["ETag"] == f'"{hashlib.md5(b"by hand").hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="hand/made.txt")["Body"].read() == b"by hand"


class TestFolderStore(ObjectStoreConformance):
    @pytest.fixture
    def object_store(self, tmp_path: Path) -> S3Store:
        return FolderStore(tmp_path / "s3")
