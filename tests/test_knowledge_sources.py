"""Knowledge-base document sources: the local bucket folder and a real S3-protocol endpoint (moto)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from haniwa.config import Settings
from haniwa.errors import NotFoundError, PlatformError, ValidationError
from haniwa.knowledge.sources import (
    EndpointSource,
    FolderSource,
    SourceItem,
    parse_bucket_arn,
    resolve_upload_path,
    s3_source,
    sidecar_metadata,
)

run = asyncio.run
ARN = "arn:aws:s3:::docs"


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def _sidecar(attrs: dict[str, object]) -> str:
    return json.dumps({"metadataAttributes": attrs})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


@pytest.fixture
def bucket(settings: Settings) -> Path:
    root = settings.s3_folder / "docs"
    _write(root / "a.md", "# A")
    _write(root / "a.md.metadata.json", _sidecar({"k": "v", "n": 3, "flag": True, "tags": ["x", "y"]}))
    _write(root / "guide" / "ja" / "b.txt", "b")
    _write(root / "guide" / "jan.md", "jan")
    _write(root / "guide" / "en" / "c.txt", "c")
    _write(root / ".hidden.md", "no")
    _write(root / ".git" / "config", "no")
    _write(root / "guide" / ".DS_Store", b"\0")
    return root


def _keys(items: list[SourceItem]) -> list[str]:
    return [i.key for i in items]


# -- folder source ---------------------------------------------------------------------------------------
def test_folder_lists_nested_sorted_without_hidden_or_sidecars(settings: Settings, bucket: Path) -> None:
    source = s3_source(settings, ARN)
    assert isinstance(source, FolderSource)
    items = run(source.list())
    assert _keys(items) == ["a.md", "guide/en/c.txt", "guide/ja/b.txt", "guide/jan.md"]
    first = items[0]
    assert first.uri == "s3://docs/a.md"
    assert first.size == 3


@pytest.mark.parametrize(
    ("prefixes", "expected"),
    [
        (["guide/ja"], ["guide/ja/b.txt", "guide/jan.md"]),
        (["guide/ja/"], ["guide/ja/b.txt"]),
        (["guide/"], ["guide/en/c.txt", "guide/ja/b.txt", "guide/jan.md"]),
        (["a", "guide/en/", "guide/"], ["a.md", "guide/en/c.txt", "guide/ja/b.txt", "guide/jan.md"]),
        (["nothing/"], []),
        ([""], ["a.md", "guide/en/c.txt", "guide/ja/b.txt", "guide/jan.md"]),
    ],
)
def test_folder_prefixes_are_string_prefixes(
    settings: Settings, bucket: Path, prefixes: list[str], expected: list[str]
) -> None:
    assert _keys(run(s3_source(settings, ARN, prefixes).list())) == expected


def test_folder_reads_data_and_plain_sidecar(settings: Settings, bucket: Path) -> None:
    source = s3_source(settings, ARN)
    items = {i.key: i for i in run(source.list())}
    doc = run(source.read(items["a.md"]))
    assert doc.data == b"# A"
    assert doc.metadata == {"k": "v", "n": 3, "flag": True, "tags": ["x", "y"]}
    assert doc.item == items["a.md"]
    assert run(source.read(items["guide/jan.md"])).metadata == {}


def test_folder_reads_typed_sidecar(settings: Settings, bucket: Path) -> None:
    typed = {
        "metadataAttributes": {
            "s": {"value": {"type": "STRING", "stringValue": "v"}, "includeForEmbedding": True},
            "n": {"value": {"type": "NUMBER", "numberValue": 2.5}},
            "b": {"value": {"type": "BOOLEAN", "booleanValue": False}},
            "l": {"value": {"type": "STRING_LIST", "stringListValue": ["p", "q"]}},
        }
    }
    _write(bucket / "guide" / "jan.md.metadata.json", json.dumps(typed))
    source = s3_source(settings, ARN, ["guide/jan"])
    (item,) = run(source.list())
    assert run(source.read(item)).metadata == {"s": "v", "n": 2.5, "b": False, "l": ["p", "q"]}


def test_folder_bad_sidecar_fails_only_that_document(settings: Settings, bucket: Path) -> None:
    _write(bucket / "guide" / "jan.md.metadata.json", "{not json")
    source = s3_source(settings, ARN)
    items = {i.key: i for i in run(source.list())}
    assert len(items) == 4
    with pytest.raises(ValidationError, match=r"guide/jan\.md\.metadata\.json: metadata is not valid JSON"):
        run(source.read(items["guide/jan.md"]))
    assert run(source.read(items["a.md"])).data == b"# A"


def test_folder_versions_track_content_and_sidecar(settings: Settings, bucket: Path) -> None:
    source = s3_source(settings, ARN)
    before = {i.key: i.version for i in run(source.list())}
    sidecar = bucket / "a.md.metadata.json"
    _write(sidecar, _sidecar({"k": "changed"}))
    os.utime(sidecar, ns=(1, 1_000_000_123))  # a distinct mtime even on coarse-clock filesystems
    content = bucket / "guide" / "jan.md"
    _write(content, "jan!")
    os.utime(content, ns=(1, 2_000_000_456))
    after = {i.key: i.version for i in run(source.list())}
    assert after["a.md"] != before["a.md"]
    assert after["guide/jan.md"] != before["guide/jan.md"]
    assert after["guide/en/c.txt"] == before["guide/en/c.txt"]
    assert after["guide/ja/b.txt"] == before["guide/ja/b.txt"]
    assert run(source.list()) == run(source.list())  # listing is stable


def test_folder_vanished_document_is_not_found(settings: Settings, bucket: Path) -> None:
    source = s3_source(settings, ARN)
    item = run(source.list())[0]
    (bucket / item.key).unlink()
    with pytest.raises(NotFoundError, match="no longer exists"):
        run(source.read(item))


def test_folder_skips_symlinks_leaving_the_bucket(settings: Settings, bucket: Path, tmp_path: Path) -> None:
    outside = _write(tmp_path / "secret" / "passwd", "root")
    other_bucket = _write(settings.s3_folder / "other" / "x.md", "other")
    (bucket / "leak.md").symlink_to(outside)
    (bucket / "leakdir").symlink_to(outside.parent, target_is_directory=True)
    (bucket / "cross.md").symlink_to(other_bucket)  # inside the root, but outside this bucket
    (bucket / "alias.md").symlink_to(bucket / "a.md")  # inside the bucket: a document
    (bucket / "loop").symlink_to(bucket, target_is_directory=True)  # cycles are not followed forever
    source = s3_source(settings, ARN)
    keys = _keys(run(source.list()))
    assert "leak.md" not in keys
    assert not any(k.startswith("leakdir") for k in keys)
    assert "cross.md" not in keys
    assert "alias.md" in keys
    assert len(keys) < 50
    forged = SourceItem(uri="s3://docs/leak.md", key="leak.md", version="0", size=0)
    with pytest.raises(NotFoundError):
        run(source.read(forged))


def test_folder_bucket_symlinked_outside_root_is_refused(settings: Settings, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    _write(target / "x.md", "x")
    settings.s3_folder.mkdir(parents=True)
    (settings.s3_folder / "docs").symlink_to(target, target_is_directory=True)
    with pytest.raises(ValidationError, match="outside the S3 root"):
        s3_source(settings, ARN)


def test_folder_missing_bucket_lists_nothing(settings: Settings) -> None:
    source = s3_source(settings, "arn:aws:s3:::not-yet")
    assert run(source.list()) == []
    _write(settings.s3_folder / "not-yet" / "late.md", "late")
    assert _keys(run(source.list())) == ["late.md"]


@pytest.mark.parametrize(
    ("prefix", "why"),
    [("../x", "escapes the bucket folder"), ("a/../../x", "escapes"), ("/etc", "escapes"), ("..", "escapes")],
)
def test_escaping_prefixes_are_refused(settings: Settings, prefix: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as info:
        s3_source(settings, ARN, [prefix])
    assert repr(prefix) in info.value.message


@pytest.mark.parametrize(
    "arn",
    [
        "docs",
        "arn:aws:s3:::",
        "arn:aws:s3:::ab",
        "arn:aws:s3:::Docs",
        "arn:aws:s3:::docs/key",
        "arn:aws:s3:::../etc",
        "arn:aws:s3:::a..b",
        "arn:aws:s3:::-docs",
        "arn:aws:s3:::192.168.1.1",
        "arn:aws:s3:::xn--docs",
        "arn:aws:s3:::docs-s3alias",
        "arn:aws:s3:::" + "a" * 64,
        "arn:aws:s3:us-east-1::docs",
        "arn:aws:sqs:::docs",
    ],
)
def test_bad_arns_are_refused(settings: Settings, arn: str) -> None:
    with pytest.raises(ValidationError, match="bucketArn"):
        s3_source(settings, arn)


def test_good_arns() -> None:
    assert parse_bucket_arn("arn:aws:s3:::my.bucket-1") == "my.bucket-1"
    assert parse_bucket_arn("arn:aws-cn:s3:::abc") == "abc"
    assert parse_bucket_arn("arn:aws-us-gov:s3:::abc") == "abc"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"[]", "metadataAttributes"),
        (b'{"metadataAttributes": {"k": null}}', "not a string, number"),
        (b'{"metadataAttributes": {"k": [1]}}', "only strings"),
        (b'{"metadataAttributes": {"k": {"value": {"type": "DATE"}}}}', "is not one of"),
        (
            b'{"metadataAttributes": {"k": {"value": {"type": "NUMBER", "numberValue": "1"}}}}',
            "does not match",
        ),
        (b'{"metadataAttributes": {"k": {"value": {"type": "STRING"}}}}', "needs 'stringValue'"),
        (b'{"metadataAttributes": {"x-amz-bedrock-kb-source-uri": "s"}}', "reserved"),
        (b'{"metadataAttributes": {"n": NaN}}', "finite"),
    ],
)
def test_bad_sidecars(raw: bytes, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        sidecar_metadata(raw)


def test_resolve_upload_path(tmp_path: Path) -> None:
    assert resolve_upload_path(tmp_path, "a/b.md") == tmp_path.resolve() / "a" / "b.md"
    (tmp_path / "out").symlink_to(tmp_path.parent, target_is_directory=True)
    for bad in ["", "../x", "/etc/passwd", "a/../../x", ".", "out/x"]:
        with pytest.raises(ValidationError):
            resolve_upload_path(tmp_path, bad)


# -- S3-compatible endpoint ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_endpoint_lists_and_reads(s3_url: str, tmp_path: Path) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket="manuals")
    client.put_object(Bucket="manuals", Key="ja/a.md", Body=b"# A")
    client.put_object(Bucket="manuals", Key="ja/a.md.metadata.json", Body=_sidecar({"k": "v"}).encode())
    client.put_object(Bucket="manuals", Key="ja/sub/b.txt", Body=b"bb")
    client.put_object(Bucket="manuals", Key="en/c.txt", Body=b"c")
    client.put_object(Bucket="manuals", Key="ja/bad.md", Body=b"x")
    client.put_object(Bucket="manuals", Key="ja/bad.md.metadata.json", Body=b"{")
    settings = Settings(
        home=tmp_path, s3_endpoint=s3_url, s3_access_key_id="test", s3_secret_access_key="test"
    )

    source = s3_source(settings, "arn:aws:s3:::manuals", ["ja/"])
    assert isinstance(source, EndpointSource)
    items = run(source.list())
    assert _keys(items) == ["ja/a.md", "ja/bad.md", "ja/sub/b.txt"]
    a = items[0]
    assert (a.uri, a.size) == ("s3://manuals/ja/a.md", 3)
    doc = run(source.read(a))
    assert (doc.data, doc.metadata) == (b"# A", {"k": "v"})
    assert run(source.read(items[2])).metadata == {}
    with pytest.raises(ValidationError, match=r"ja/bad\.md\.metadata\.json"):
        run(source.read(items[1]))

    # editing only the sidecar changes the version; a fresh source (no listing yet) still finds sidecars
    client.put_object(Bucket="manuals", Key="ja/a.md.metadata.json", Body=_sidecar({"k": "w"}).encode())
    again = {i.key: i for i in run(source.list())}
    assert again["ja/a.md"].version != a.version
    assert again["ja/sub/b.txt"].version == items[2].version
    fresh = s3_source(settings, "arn:aws:s3:::manuals", ["ja/"])
    assert run(fresh.read(again["ja/a.md"])).metadata == {"k": "w"}

    client.delete_object(Bucket="manuals", Key="ja/sub/b.txt")
    with pytest.raises(NotFoundError, match="no longer exists"):
        run(source.read(items[2]))
    assert _keys(run(s3_source(settings, "arn:aws:s3:::manuals").list()))[0] == "en/c.txt"


def test_endpoint_missing_bucket_is_not_found(s3_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, s3_endpoint=s3_url, s3_access_key_id="t", s3_secret_access_key="t")
    with pytest.raises(NotFoundError, match="'no-such-bucket'"):
        run(s3_source(settings, "arn:aws:s3:::no-such-bucket").list())


def test_endpoint_unreachable_is_a_platform_error(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, s3_endpoint="http://127.0.0.1:9", s3_access_key_id="t", s3_secret_access_key="t"
    )
    with pytest.raises(PlatformError, match="cannot reach the S3 endpoint"):
        run(s3_source(settings, "arn:aws:s3:::docs").list())
