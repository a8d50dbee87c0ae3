"""Jobs follow ``HANIWA_S3_ENDPOINT``: a second real haniwa serves as the S3-compatible store, the first
points its jobs at it. boto3 drives the first server; the second's S3 API and folder show where the bytes
went. Also the :class:`RemoteStore` conformance suite against that endpoint."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.errors import PlatformError
from haniwa.s3.base import (
    BucketExistsError,
    InvalidBucketNameError,
    NoSuchBucketError,
    NoSuchKeyError,
    PutOptions,
    S3Store,
)
from haniwa.s3.jobs import open_job_store
from haniwa.s3.remote import PART_BYTES, RemoteStore
from haniwa.s3.store import FolderStore
from haniwa.testing.objectstore import ObjectStoreConformance
from haniwa.testing.server import serve_in_thread
from tests.conftest import ECHO_CATALOG, client_kwargs

KEY, SECRET = "AKIDEXAMPLE", "secret-example"  # what client_kwargs signs with
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ROLE = "arn:aws:iam::123456789012:role/remote"


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The second haniwa: its S3 surface is the S3-compatible store; yields its URL and home."""
    home = tmp_path_factory.mktemp("remote-home")
    settings = Settings(home=home, access_key_id=KEY, secret_access_key=SECRET)
    with serve_in_thread(create_app(settings)) as url:
        yield url, home


@pytest.fixture
def remote_settings(tmp_path: Path, remote: tuple[str, Path]) -> Settings:
    return Settings(home=tmp_path, s3_endpoint=remote[0], s3_access_key_id=KEY, s3_secret_access_key=SECRET)


@pytest.fixture
def remote_s3(remote: tuple[str, Path]) -> Any:
    return boto3.client("s3", **client_kwargs(remote[0]))


@pytest.fixture
def first(tmp_path: Path, remote: tuple[str, Path]) -> Iterator[tuple[str, Path]]:
    """The first haniwa, its jobs pointed at the second's S3."""
    home = tmp_path / "first-home"
    home.mkdir()
    (home / "models.toml").write_text(ECHO_CATALOG, encoding="utf-8")
    settings = Settings(
        home=home,
        profile="fast",
        access_key_id=KEY,
        secret_access_key=SECRET,
        s3_endpoint=remote[0],
        s3_access_key_id=KEY,
        s3_secret_access_key=SECRET,
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url, home


async def _body(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _read(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


class TestRemoteStore(ObjectStoreConformance):
    @pytest.fixture
    def object_store(self, remote_settings: Settings, remote_s3: Any) -> S3Store:
        for bucket in remote_s3.list_buckets()["Buckets"]:  # each conformance test starts empty
            if bucket["Name"].startswith("conf-"):
                for obj in remote_s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", ()):
                    remote_s3.delete_object(Bucket=bucket["Name"], Key=obj["Key"])
                remote_s3.delete_bucket(Bucket=bucket["Name"])
        return open_job_store(remote_settings)


def test_the_factory_picks_the_folder_without_an_endpoint(tmp_path: Path, remote_settings: Settings) -> None:
    assert isinstance(open_job_store(Settings(home=tmp_path)), FolderStore)
    assert isinstance(open_job_store(remote_settings), RemoteStore)


def test_errors_are_mapped_and_ranges_and_big_puts_stream(
    remote_settings: Settings, remote: tuple[str, Path]
) -> None:
    store = open_job_store(remote_settings)
    big = bytes(range(256)) * (PART_BYTES // 256) + b"tail"  # past one part: a multipart upload

    async def go() -> None:
        await store.create_bucket("mapped")
        with pytest.raises(BucketExistsError):
            await store.create_bucket("mapped")
        with pytest.raises(InvalidBucketNameError):
            await store.create_bucket("Bad_Name")
        with pytest.raises(NoSuchBucketError):
            await store.bucket("no-such-bucket")
        with pytest.raises(NoSuchBucketError):
            await store.head("no-such-bucket", "k")
        with pytest.raises(NoSuchBucketError):
            await store.open("no-such-bucket", "k")
        with pytest.raises(NoSuchKeyError):
            await store.open("mapped", "missing")
        with pytest.raises(NoSuchKeyError):
            await store.head("mapped", "missing")
        info = await store.put("mapped", "big.bin", _body(big[:1000], big[1000:]), PutOptions())
        assert info.size == len(big) and info.parts == 2 and info.etag.endswith("-2")
        head, chunks = await store.open("mapped", "big.bin", (PART_BYTES - 2, PART_BYTES + 3))
        assert head.size == len(big) and await _read(chunks) == big[PART_BYTES - 2 : PART_BYTES + 4]
        _, chunks = await store.open("mapped", "big.bin")
        assert await _read(chunks) == big
        # 日本語 keys and metadata survive the trip
        await store.put(
            "mapped", "資料/説明.txt", _body("埴輪".encode()), PutOptions(content_type="text/plain")
        )
        listing = await store.list("mapped", prefix="資料/")
        assert [o.key for o in listing.objects] == ["資料/説明.txt"]

    asyncio.run(go())
    assert (remote[1] / "s3" / "mapped" / "big.bin").stat().st_size == len(big)


def test_an_unreachable_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, s3_endpoint="http://127.0.0.1:9", s3_access_key_id="t", s3_secret_access_key="t"
    )
    store = open_job_store(settings)
    with pytest.raises(PlatformError, match="cannot reach the S3 endpoint"):
        asyncio.run(store.head("data", "k"))


def test_a_batch_job_reads_and_writes_the_remote_store(
    first: tuple[str, Path], remote_s3: Any, remote: tuple[str, Path]
) -> None:
    url, home = first
    remote_s3.create_bucket(Bucket="rbatch-in")
    remote_s3.create_bucket(Bucket="rbatch-out")
    lines = [
        {
            "recordId": f"r{i}",
            "modelInput": {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": f"埴輪 {i}"}],
            },
        }
        for i in range(3)
    ]
    body = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines).encode()
    remote_s3.put_object(Bucket="rbatch-in", Key="in/records.jsonl", Body=body)
    bedrock = boto3.client("bedrock", **client_kwargs(url))
    arn = bedrock.create_model_invocation_job(
        jobName="remote-batch",
        roleArn=ROLE,
        modelId=MODEL,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://rbatch-in/in/"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://rbatch-out/results/"}},
    )["jobArn"]
    job = _wait(
        lambda: bedrock.get_model_invocation_job(jobIdentifier=arn),
        {"InProgress", "Submitted", "Scheduled", "Validating"},
    )
    assert job["status"] == "Completed", job
    job_id = arn.rsplit("/", 1)[-1]
    out = remote_s3.get_object(Bucket="rbatch-out", Key=f"results/{job_id}/records.jsonl.out")["Body"].read()
    records = [json.loads(x) for x in out.decode().splitlines()]
    assert [r["recordId"] for r in records] == ["r0", "r1", "r2"]
    assert "埴輪 1" in json.dumps(records[1], ensure_ascii=False)
    assert (remote[1] / "s3" / "rbatch-out" / "results" / job_id / "records.jsonl.out").is_file()
    # nothing landed in the first server's own folder
    assert not (home / "s3" / "rbatch-out").exists() and not (home / "s3" / "rbatch-in").exists()


def test_an_evaluation_job_reads_and_writes_the_remote_store(
    first: tuple[str, Path], remote_s3: Any, remote: tuple[str, Path]
) -> None:
    url, home = first
    remote_s3.create_bucket(Bucket="revals")
    rows = [
        {
            "prompt": "日本の首都はどこですか？",
            "referenceResponse": "日本の首都は東京です。",
            "modelResponses": [{"response": "首都は東京です。", "modelIdentifier": "mine"}],
        },
        {
            "prompt": "水の沸点は何度ですか？",
            "referenceResponse": "水は100度で沸騰します。",
            "modelResponses": [{"response": "水の沸点は100度です。", "modelIdentifier": "mine"}],
        },
    ]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    remote_s3.put_object(Bucket="revals", Key="ds/qa.jsonl", Body=body)
    bedrock = boto3.client("bedrock", **client_kwargs(url))
    arn = bedrock.create_evaluation_job(
        jobName="remote-eval",
        roleArn=ROLE,
        evaluationConfig={
            "automated": {
                "datasetMetricConfigs": [
                    {
                        "taskType": "QuestionAndAnswer",
                        "dataset": {"name": "ja-qa", "datasetLocation": {"s3Uri": "s3://revals/ds/qa.jsonl"}},
                        "metricNames": ["Builtin.Accuracy"],
                    }
                ]
            }
        },
        inferenceConfig={"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": "mine"}}]},
        outputDataConfig={"s3Uri": "s3://revals/out/"},
    )["jobArn"]
    job = _wait(lambda: bedrock.get_evaluation_job(jobIdentifier=arn), {"InProgress", "Stopping"})
    assert job["status"] == "Completed", job.get("failureMessages")
    keys = [o["Key"] for o in remote_s3.list_objects_v2(Bucket="revals", Prefix="out/").get("Contents", ())]
    assert keys, "the evaluation wrote nothing to the remote store"
    outputs = [remote_s3.get_object(Bucket="revals", Key=k)["Body"].read().decode() for k in keys]
    assert any("東京" in text for text in outputs)
    assert all((remote[1] / "s3" / "revals" / k).is_file() for k in keys)
    assert not (home / "s3" / "revals").exists()


def _wait(get: Any, running: set[str], timeout: float = 60) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = get()
        if job["status"] not in running:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_invocation_logs_go_to_the_remote_store(first: tuple[str, Path], remote_s3: Any) -> None:
    url, home = first
    bedrock = boto3.client("bedrock", **client_kwargs(url))
    runtime = boto3.client("bedrock-runtime", **client_kwargs(url))
    with pytest.raises(ClientError) as err:  # the bucket must exist on the remote store
        bedrock.put_model_invocation_logging_configuration(
            loggingConfig={"s3Config": {"bucketName": "rlogs"}, "textDataDeliveryEnabled": True}
        )
    assert err.value.response["Error"]["Code"] == "ValidationException"
    remote_s3.create_bucket(Bucket="rlogs")
    bedrock.put_model_invocation_logging_configuration(
        loggingConfig={
            "s3Config": {"bucketName": "rlogs", "keyPrefix": "logs"},
            "textDataDeliveryEnabled": True,
        }
    )
    runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "こんにちは"}]}])
    keys = [o["Key"] for o in remote_s3.list_objects_v2(Bucket="rlogs").get("Contents", ())]
    assert keys and all(k.startswith("logs/AWSLogs/") and k.endswith(".json.gz") for k in keys)
    records = [
        json.loads(line)
        for k in keys
        for line in gzip.decompress(remote_s3.get_object(Bucket="rlogs", Key=k)["Body"].read()).splitlines()
    ]
    assert [r["operation"] for r in records] == ["Converse"]
    assert "こんにちは" in json.dumps(records[0]["input"], ensure_ascii=False)
    assert not (home / "s3" / "rlogs").exists()
