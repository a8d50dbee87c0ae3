"""Invocation logging through boto3: Put/Get/DeleteModelInvocationLoggingConfiguration, and the records
each runtime call then writes to haniwa's S3 (read back with the s3 client), beside the SQLite log."""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
KEY = re.compile(
    r"^logs/AWSLogs/000000000000/BedrockModelInvocationLogs/us-east-1/\d{4}/\d{2}/\d{2}/\d{2}/[^/]+\.json\.gz$"
)


def _records(s3: Any) -> list[dict[str, Any]]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="invocation-logs").get("Contents", [])]
    assert all(KEY.match(k) for k in keys), keys
    out = []
    for k in keys:
        data = gzip.decompress(s3.get_object(Bucket="invocation-logs", Key=k)["Body"].read())
        out += [json.loads(line) for line in data.decode().splitlines()]
    return sorted(out, key=lambda r: r["timestamp"])


def test_runtime_calls_are_logged_to_s3_once_configured(home: Path, settings: Settings) -> None:
    with serve_in_thread(create_app(settings)) as url:
        bedrock = boto3.client("bedrock", **client_kwargs(url))
        runtime = boto3.client("bedrock-runtime", **client_kwargs(url))
        s3 = boto3.client("s3", **client_kwargs(url))
        assert "loggingConfig" not in bedrock.get_model_invocation_logging_configuration()
        with pytest.raises(ClientError) as err:  # the bucket must exist
            bedrock.put_model_invocation_logging_configuration(
                loggingConfig={"s3Config": {"bucketName": "invocation-logs"}, "textDataDeliveryEnabled": True}
            )
        assert err.value.response["Error"]["Code"] == "ValidationException"
        s3.create_bucket(Bucket="invocation-logs")
        runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "before"}]}])
        config = {
            "s3Config": {"bucketName": "invocation-logs", "keyPrefix": "logs"},
            "textDataDeliveryEnabled": True,
            "embeddingDataDeliveryEnabled": False,
        }
        bedrock.put_model_invocation_logging_configuration(loggingConfig=config)
        assert bedrock.get_model_invocation_logging_configuration()["loggingConfig"] == config

        runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "こんにちは"}]}])
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}],
        }
        invoked = runtime.invoke_model(modelId=MODEL, body=json.dumps(body))
        stream = runtime.converse_stream(
            modelId=MODEL, messages=[{"role": "user", "content": [{"text": "stream me"}]}]
        )
        assert [e for e in stream["stream"]]
        chunks = runtime.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(body))
        assert [e for e in chunks["body"]]
        with pytest.raises(ClientError):  # refused before any model runs: no record, as in Bedrock
            runtime.converse(modelId=MODEL, messages=[{"role": "assistant", "content": [{"text": "x"}]}])
        runtime.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "x"}))

        records = _records(s3)
        assert [r["operation"] for r in records] == [
            "Converse",
            "InvokeModel",
            "ConverseStream",
            "InvokeModelWithResponseStream",
        ]
        conv, inv, cstream, istream = records
        for r in records:
            assert r["schemaType"] == "ModelInvocationLog" and r["schemaVersion"] == "1.0"
            assert r["accountId"] == "000000000000" and r["region"] == "us-east-1" and r["modelId"] == MODEL
            assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", r["timestamp"])
            assert r["input"]["inputContentType"] == "application/json"
        assert conv["input"]["inputBodyJson"]["messages"][0]["content"][0]["text"] == "こんにちは"
        assert conv["output"]["outputBodyJson"]["output"]["message"]["content"][0]["text"] == "こんにちは"
        assert conv["input"]["inputTokenCount"] > 0 and conv["output"]["outputTokenCount"] > 0
        assert inv["requestId"] == invoked["ResponseMetadata"]["RequestId"]
        assert inv["input"]["inputBodyJson"] == body
        assert inv["output"]["outputBodyJson"]["content"][0]["text"] == "hi"
        assert inv["output"]["outputTokenCount"] == int(
            invoked["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-output-token-count"]
        )
        assert {"messageStop": {"stopReason": "end_turn"}} in cstream["output"]["outputBodyJson"]
        assert istream["output"]["outputBodyJson"][-1]["amazon-bedrock-invocationMetrics"]
        bedrock.delete_model_invocation_logging_configuration()
        assert "loggingConfig" not in bedrock.get_model_invocation_logging_configuration()
        runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "after"}]}])
        assert len(_records(s3)) == 4
        bedrock.put_model_invocation_logging_configuration(loggingConfig=config)
    # the configuration outlives the server (m010), and the SQLite log holds every call as before
    with serve_in_thread(create_app(settings)) as url:
        bedrock = boto3.client("bedrock", **client_kwargs(url))
        assert bedrock.get_model_invocation_logging_configuration()["loggingConfig"] == config
    with sqlite3.connect(home / "haniwa.db") as db:
        assert db.execute("SELECT count(*) FROM invocations").fetchone()[0] == 7
