"""Sending fuzzed cases (:mod:`tests.fuzzing`) to a real haniwa and judging the answers.

:func:`run` sends them as raw HTTP (httpx), one at a time, and records where the server's log says it
raised; a :class:`HealthPoller` measures ``/health`` meanwhile. :func:`check` says what is wrong with an
answer (``None`` when it is fine): a 2xx, or a typed error (JSON ``message`` + ``x-amzn-errortype``, with
the status the service model gives that code), never an untyped or 5xx answer (a typed 501
NotImplementedException excepted), and event streams that end cleanly, without a validation or
internal-error event after the 200.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.eventstream import EventStreamBuffer

from haniwa.api.wire import service_model
from haniwa.config import Settings
from tests.fuzzing import BUCKET, CHAT, EMBED_ARN, HINTS, Case

__all__ = ["Outcome", "HealthPoller", "check", "send", "run", "report", "make_resources"]


# a huge-list case can exceed it (50,000 copies of a large item); the server then answers 413 as documented
_BODY_LIMIT = Settings.model_fields["max_body_bytes"].default


# -- checking answers -----------------------------------------------------------------------------------
def check(
    case: Case, status: int, headers: Mapping[str, str], body: bytes, forbidden: Sequence[str] = ()
) -> str | None:
    """What is wrong with this answer, or ``None``. Bedrock errors are typed; nothing is 5xx but 501."""
    if status == 0:
        return "no answer (connection failed or timed out)"
    code = headers.get("x-amzn-errortype", "")
    if status < 300 and case.invalid:
        return f"{status}: accepted although the service model forbids it ({case.mutation} @ {case.target})"
    if status < 300:
        media = headers.get("content-type", "")
        if case.streaming and media.startswith("application/vnd.amazon.eventstream"):
            return _check_stream(body)
        if "json" in media and body:
            try:
                json.loads(body, parse_constant=_reject_constant)
            except ValueError as exc:
                return f"{status} with a body that is not standard JSON: {exc}"
        return None
    if not code:
        return f"untyped {status} (no x-amzn-errortype)"
    try:
        data = json.loads(body)
    except ValueError:
        return f"{status} {code} with a body that is not JSON"
    if not isinstance(data, dict) or not isinstance(data.get("message", data.get("Message")), str):
        return f"{status} {code} without a JSON message"
    message = str(data.get("message", data.get("Message")))
    leak = next((f for f in (*forbidden, "Traceback (most recent call last)") if f and f in message), None)
    if leak:
        return f"{status} {code} message reveals {leak!r}"
    if status >= 500 and code != "NotImplementedException":
        return f"{status} {code}"
    if status == 413 and len(case.body) > _BODY_LIMIT:
        return None  # the documented body-size limit (README "Security and limits"), before any parsing
    declared = _declared_status(case.service, code)
    if declared is not None and declared != status:
        return f"{status} {code}, but the service model gives {code} status {declared}"
    return None


def _declared_status(service: str, code: str) -> int | None:
    try:
        shape = service_model(service).shape_for(code)
    except Exception:  # noqa: BLE001 - botocore's NoShapeFoundError: a code this service does not declare
        return None
    status = shape.metadata.get("error", {}).get("httpStatusCode")
    return int(status) if status else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_stream(body: bytes) -> str | None:
    buf = EventStreamBuffer()
    buf.add_data(body)
    try:
        messages = list(buf)
    except Exception as exc:  # noqa: BLE001 - botocore raises its own parser errors on a broken frame
        return f"200 event stream is malformed: {type(exc).__name__}: {exc}"
    size = sum(m.prelude.total_length for m in messages)
    if size != len(body):
        return f"200 event stream cut: {len(body) - size} trailing bytes of an incomplete frame"
    for m in messages:
        if m.headers.get(":message-type") == "exception":
            kind = str(m.headers.get(":exception-type", ""))
            if kind in ("validationException", "internalServerException", ""):
                return f"200 then a {kind or 'nameless'} event: {m.payload[:200]!r}"
    return None


# -- running --------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    case: Case
    status: int
    error_type: str
    body: bytes
    problem: str | None
    seconds: float
    where: str = ""  # the traceback location the server logged while answering, if it logged one


class _Logs(logging.Handler):
    """Collects the server's error records (uvicorn's logger does not propagate to the root)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def where(self) -> str:
        for r in self.records:
            if r.exc_info and r.exc_info[1] is not None:
                return _location(r.exc_info[1])
        return self.records[0].getMessage()[:200] if self.records else ""


def _location(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/haniwa/" in f.filename and "/site-packages/" not in f.filename] or frames
    f = ours[-1] if ours else None
    at = f"{f.filename.split('/haniwa/')[-1]}:{f.lineno} in {f.name}" if f else "?"
    return f"haniwa/{at}: {type(exc).__name__}: {str(exc)[:160]}"


class HealthPoller:
    """Polls ``/health`` from its own thread; ``latencies`` are seconds, a timeout counts as its limit."""

    def __init__(self, base_url: str, every: float = 0.05, timeout: float = 5.0) -> None:
        self.url, self.every, self.timeout = base_url + "/health", every, timeout
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = client.get(self.url)
                    if r.status_code != 200:
                        self.failures.append(f"/health answered {r.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"/health failed: {type(exc).__name__}")
                self.latencies.append(time.perf_counter() - t0)
                self._stop.wait(self.every)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def p99(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] if len(self.latencies) >= 2 else 0.0

    def summary(self) -> str:
        lat = self.latencies or [0.0]
        return (
            f"/health: {len(self.latencies)} polls, p50 {statistics.median(lat) * 1000:.0f} ms, "
            f"p99 {self.p99() * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms, {len(self.failures)} failed"
        )


def send(
    client: httpx.Client, base_url: str, case: Case, deadline: float = 60.0, cap: int = 64 << 20
) -> tuple[int, dict[str, str], bytes, str | None]:
    """Send ``case`` raw; read at most ``cap`` bytes of the answer; a cut or stalled answer is an error."""
    t0 = time.monotonic()
    try:
        url = httpx.URL(base_url, raw_path=case.path.encode("latin-1"))
        headers = [(k.encode(), v) for k, v in case.headers]
        request = client.build_request(case.method, url, headers=headers, content=case.body)
    except (httpx.InvalidURL, ValueError) as exc:  # the generator's fault, not the server's
        return 0, {}, b"", f"the client could not send it: {exc}"
    try:
        response = client.send(request, stream=True)
    except httpx.HTTPError as exc:
        return 0, {}, b"", f"{type(exc).__name__}: {exc}"
    chunks, size = [], 0
    try:
        for chunk in response.iter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:  # a fuzzed request should not be worth this much answer
                return response.status_code, dict(response.headers), b"", f"answer over {cap >> 20} MiB"
            if time.monotonic() - t0 > deadline:
                return response.status_code, dict(response.headers), b"".join(chunks), "answer still running"
    except httpx.HTTPError as exc:
        failure = f"answer cut: {type(exc).__name__}"
        return response.status_code, dict(response.headers), b"".join(chunks), failure
    finally:
        response.close()
    return response.status_code, dict(response.headers), b"".join(chunks), None


def run(
    base_url: str, cases: Iterable[Case], *, timeout: float = 30.0, forbidden: Sequence[str] = ()
) -> list[Outcome]:
    """Send the cases in order (stopping after three unanswered in a row: the server is stuck); each
    outcome carries the server's traceback location when it logged one."""
    logs = _Logs()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error")]
    for lg in loggers:
        lg.addHandler(logs)
    outcomes: list[Outcome] = []
    previous: Case | None = None
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client:
            for case in cases:
                logs.records.clear()
                t0 = time.perf_counter()
                status, headers, body, failure = send(client, base_url, case, deadline=2 * timeout)
                seconds = time.perf_counter() - t0
                problem: str | None = None
                if failure:
                    problem = f"{status or 'no answer'}: {failure}"
                    if previous is not None:
                        # a connection the server broke while finishing the previous answer fails this one
                        problem += f" (the connection last carried case {previous.index}: {previous.label})"
                problem = problem or check(case, status, headers, body, forbidden)
                where = logs.where()
                if problem is None and where:
                    # the answer looked fine, yet the server raised while sending it (or just after)
                    problem = f"{status}, but the server logged an error"
                code = headers.get("x-amzn-errortype", "")
                outcomes.append(Outcome(case, status, code, body[:600], problem, seconds, where))
                previous = case
                if len(outcomes) >= 3 and all(o.status == 0 for o in outcomes[-3:]):
                    # three answers in a row did not come: the server is stuck, later cases would only
                    # wait out their timeouts and say nothing new
                    break
    finally:
        for lg in loggers:
            lg.removeHandler(logs)
    return outcomes


def _shape_of(problem: str) -> str:
    """A problem without its particulars (values, cases), to count problems of one kind together."""
    return re.sub(r"'[^']*'|\"[^\"]*\"|\d{4,}", "…", problem.split(" (")[0])[:100]


def report(outcomes: Sequence[Outcome], examples: int = 2) -> str:
    """Status counts, then every problem grouped by operation and mutation with examples."""
    lines = [f"{len(outcomes)} cases; status " + ", ".join(
        f"{s}: {n}" for s, n in sorted(Counter(o.status for o in outcomes).items())
    )]  # fmt: skip
    groups: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.problem:
            groups[(f"{o.case.service} {o.case.operation}", o.case.mutation)].append(o)
    count = sum(len(g) for g in groups.values())
    lines.append(f"{count} problems in {len(groups)} (operation, mutation) groups; the likely causes:")
    # one line per cause: where the server raised, or the kind of answer, so a fix can be checked off
    causes = Counter(
        o.where.split(": ")[0] if o.where else _shape_of(o.problem or "") for g in groups.values() for o in g
    )
    lines += [f"  {n:5d} x {cause}" for cause, n in causes.most_common(12)]
    for (op, mutation), group in sorted(groups.items()):
        lines.append(f"- {op} [{mutation}] x{len(group)}")
        for o in group[:examples]:
            lines.append(f"    case {o.case.index} @ {o.case.target or '-'}: {(o.problem or '')[:300]}")
            lines.append(f"      request: {o.case.show()}")
            lines.append(f"      answer: {o.status} {o.error_type} {o.body[:300]!r}")
            if o.where:
                lines.append(f"      server: {o.where}")
    return "\n".join(lines)


# -- real resources to aim at ---------------------------------------------------------------------------
_DOCS = {
    "kb/tea.txt": "Green tea\n\nGreen tea is made from unoxidised leaves. Matcha is powdered green tea.",
    "kb/robot.md": "# ハニワロボ\n\nハニワロボは家庭用の掃除ロボットです。アルミニウムの骨格を溶接します。",
}


def make_resources(base_url: str, s3_folder: Any) -> dict[str, str]:
    """Create a knowledge base (ingested), an agent with an action group, a prepared alias and a guardrail:
    their ids by the member names that carry them, so fuzzed requests reach handlers instead of a 404."""
    import boto3
    from botocore.config import Config

    kw: dict[str, Any] = {
        "endpoint_url": base_url,
        "region_name": "us-east-1",
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "secret-example",
        "config": Config(retries={"max_attempts": 1}),
    }
    for name, text in _DOCS.items():
        p = s3_folder / BUCKET / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    agent = boto3.client("bedrock-agent", **kw)
    kb = agent.create_knowledge_base(
        name="fuzz",
        roleArn=HINTS["roleArn"],
        knowledgeBaseConfiguration={
            "type": "VECTOR",
            "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED_ARN},
        },
        storageConfiguration={
            "type": "OPENSEARCH_SERVERLESS",
            "opensearchServerlessConfiguration": {
                "collectionArn": "arn:aws:aoss:us-east-1:000000000000:collection/fuzz",
                "vectorIndexName": "idx",
                "fieldMapping": {"vectorField": "v", "textField": "t", "metadataField": "m"},
            },
        },
    )["knowledgeBase"]["knowledgeBaseId"]
    ds = agent.create_data_source(
        knowledgeBaseId=kb,
        name="docs",
        dataSourceConfiguration={"type": "S3", "s3Configuration": {"bucketArn": HINTS["bucketArn"]}},
    )["dataSource"]["dataSourceId"]
    job = agent.start_ingestion_job(knowledgeBaseId=kb, dataSourceId=ds)["ingestionJob"]["ingestionJobId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = agent.get_ingestion_job(knowledgeBaseId=kb, dataSourceId=ds, ingestionJobId=job)
        if got["ingestionJob"]["status"] in ("COMPLETE", "FAILED"):
            break
        time.sleep(0.1)
    agent_id = agent.create_agent(
        agentName="fuzz-agent",
        foundationModel=CHAT,
        instruction="You are a fuzz test agent. Answer every question briefly and politely.",
        agentResourceRoleArn=HINTS["roleArn"],
    )["agent"]["agentId"]
    group = agent.create_agent_action_group(
        agentId=agent_id,
        agentVersion="DRAFT",
        actionGroupName="fuzz",
        functionSchema={"functions": [{"name": "lookup", "parameters": {"q": {"type": "string"}}}]},
        actionGroupExecutor={"customControl": "RETURN_CONTROL"},
    )["agentActionGroup"]["actionGroupId"]
    agent.associate_agent_knowledge_base(
        agentId=agent_id, agentVersion="DRAFT", knowledgeBaseId=kb, description="fuzz documents"
    )
    agent.prepare_agent(agentId=agent_id)
    alias = agent.create_agent_alias(agentId=agent_id, agentAliasName="live")["agentAlias"]["agentAliasId"]
    guardrail = boto3.client("bedrock", **kw).create_guardrail(
        name="fuzz-guardrail",
        blockedInputMessaging="blocked",
        blockedOutputsMessaging="blocked",
        sensitiveInformationPolicyConfig={"piiEntitiesConfig": [{"type": "EMAIL", "action": "ANONYMIZE"}]},
    )["guardrailId"]
    return {
        "knowledgeBaseId": kb,
        "dataSourceId": ds,
        "ingestionJobId": job,
        "agentId": agent_id,
        "actionGroupId": group,
        "agentAliasId": alias,
        "guardrailIdentifier": guardrail,
    }
