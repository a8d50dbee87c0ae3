"""The OpenAI Batch API through the ``openai`` SDK against a real haniwa: upload a JSONL file
(purpose=batch), create a batch, poll it, read its output and error files, list, cancel, delete."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.test_batch import CATALOG

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[openai.OpenAI]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models.toml").write_text(CATALOG, encoding="utf-8")
    with serve_in_thread(create_app(Settings(home=home, profile="fast"))) as url:
        yield openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def _line(i: int, model: str = MODEL) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": f"こんにちは {i}"}], "max_tokens": 30}
    return json.dumps(
        {"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
    )


def _upload(client: openai.OpenAI, lines: list[str]) -> Any:
    return client.files.create(
        file=("requests.jsonl", io.BytesIO("\n".join(lines).encode())), purpose="batch"
    )


def _wait(client: openai.OpenAI, batch_id: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while (b := client.batches.retrieve(batch_id)).status not in (
        "completed",
        "failed",
        "cancelled",
        "expired",
    ):
        assert time.monotonic() < deadline, b
        time.sleep(0.05)
    return b


def test_a_batch_answers_every_request_in_order(client: openai.OpenAI) -> None:
    lines = [_line(i) for i in range(12)]
    lines.insert(5, "{broken")
    lines.insert(9, _line(99, model="no-such-model"))
    f = _upload(client, lines)
    assert (f.purpose, f.filename, f.object) == ("batch", "requests.jsonl", "file")
    assert client.files.retrieve(f.id).bytes == len("\n".join(lines).encode())
    assert client.files.content(f.id).content == "\n".join(lines).encode()
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"run": "1"}
    )
    assert batch.status in ("validating", "in_progress", "completed") and batch.metadata == {"run": "1"}
    done = _wait(client, batch.id)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (
        14,
        12,
        2,
    )
    assert done.output_file_id and done.error_file_id and done.completed_at
    answers = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert [a["custom_id"] for a in answers] == [f"req-{i}" for i in range(12)]
    for i, a in enumerate(answers):
        assert a["response"]["status_code"] == 200 and a["error"] is None
        assert a["response"]["body"]["choices"][0]["message"]["content"] == f"こんにちは {i}"
        assert a["response"]["body"]["object"] == "chat.completion"
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert errors[0]["custom_id"] is None and errors[0]["error"]["code"] == "invalid_json"
    assert errors[1]["custom_id"] == "req-99" and errors[1]["response"]["status_code"] == 404
    assert [b.id for b in client.batches.list()] == [batch.id]
    files = {x.id for x in client.files.list()}
    assert {f.id, done.output_file_id, done.error_file_id} <= files
    assert {x.id for x in client.files.list(purpose="batch")} == {f.id}
    assert client.files.delete(f.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)


def test_cancel_and_refusals(client: openai.OpenAI) -> None:
    f = _upload(client, [_line(i, model="echo:slow") for i in range(300)])
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 30
    while client.batches.retrieve(batch.id).request_counts.completed < 10:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    done = _wait(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    kept = client.files.content(done.output_file_id).text.splitlines()
    assert 10 <= len(kept) < 300
    assert [json.loads(x)["custom_id"] for x in kept] == [f"req-{i}" for i in range(len(kept))]
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="1h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nosuchbatch1")
    with pytest.raises(openai.NotFoundError):
        client.batches.create(
            input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("x.jsonl", io.BytesIO(b"{}")), purpose="nonsense")  # type: ignore[arg-type]


def test_an_upload_over_the_body_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with serve_in_thread(create_app(Settings(home=tmp_path, profile="fast", max_body_bytes=1000))) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIStatusError) as err:
            client.files.create(file=("big.jsonl", io.BytesIO(b"x" * 5000)), purpose="batch")
        assert err.value.status_code == 413  # on its Content-Length, before a byte is read
        assert client.files.list().data == []
