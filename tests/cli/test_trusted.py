"""``modelsafe trusted``: the default trust set, listed from data."""

from __future__ import annotations

import json

from click.testing import CliRunner

from modelsafe._trust import default_trusted
from modelsafe.cli import main


def test_json_is_exactly_the_default_trust_set() -> None:
    result = CliRunner().invoke(main, ["trusted", "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert listed == {name: sorted(uses) for name, uses in default_trusted().items()}
    assert listed["numpy.ndarray"] == ["node", "value"]
    assert "builtins.eval" not in listed and "os.system" not in listed


def test_prefix_filters_the_human_listing() -> None:
    result = CliRunner().invoke(main, ["trusted", "--prefix", "numpy.random."])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("numpy.random.") for line in lines)
    assert any(line.split() == ["numpy.random.Generator", "node"] for line in lines)
    assert f"{len(lines)} names" in result.stderr


def test_unknown_prefix_lists_nothing() -> None:
    result = CliRunner().invoke(main, ["trusted", "--prefix", "no_such_package."])
    assert result.exit_code == 0 and result.stdout == ""
    assert "0 names" in result.stderr
