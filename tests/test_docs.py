"""The README documents every setting and hook, and its Python examples at least compile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from haniwa import hookspecs
from haniwa.config import Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    assert f"HANIWA_{name.upper()}" in README


@pytest.mark.parametrize("hook", [n for n in dir(hookspecs) if n.startswith("register_")])
def test_every_hook_is_documented(hook: str) -> None:
    assert f"`{hook}" in README


def test_python_examples_compile() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks
    for block in blocks:
        compile(block, "README.md", "exec")


def test_two_commands_match_ci() -> None:
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = next(line for line in ci.splitlines() if "pytest" in line).strip()
    assert test_cmd in README
