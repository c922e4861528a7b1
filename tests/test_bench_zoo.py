"""The zoo's `pickle+hash+fsync` row and the report's comparisons on the same work."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmarks import zoo_report
from benchmarks.tools import MODEL_TOOLS, TOOLS
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

CHECKED = TOOLS["pickle+hash+fsync"]
ROOT = Path(__file__).resolve().parent.parent


def test_checked_pickle_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    big = np.arange(300_000, dtype=np.float64)  # > 1 MiB: the mapped path of the load
    for obj in (model, {"weights": big}):
        path = str(tmp_path / "m.pkl")
        CHECKED.save(obj, path)
        assert sorted(os.listdir(tmp_path)) == ["m.pkl", "m.pkl.blake3"]
        loaded = CHECKED.load(path)
        if isinstance(obj, dict):
            assert np.array_equal(loaded["weights"], big)
        else:
            assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("size", [1_000, 300_000])
def test_checked_pickle_refuses_a_changed_file(tmp_path: Path, size: int) -> None:
    path = str(tmp_path / "m.pkl")
    CHECKED.save({"a": np.ones(size)}, path)
    with open(path, "r+b") as fh:
        fh.seek(os.path.getsize(path) // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match="BLAKE3 digest differs"):
        CHECKED.load(path)


def test_the_zoo_runs_the_rows_of_the_same_work_comparison() -> None:
    assert {zoo_report.CHECKED, zoo_report.NOVERIFY} <= set(MODEL_TOOLS)


def _row(load: float, save: float) -> dict[str, Any]:
    return {"load_s": load, "save_s": save, "size_bytes": 100, "correct": True, "error": None}


def _results(rows: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    build = {"build_s": 1.0, "output": "predict_proba", "pickle_bytes": 100, "n_iter": None}
    return {"models": {m: {"rows": r, "description": m, "build": build} for m, r in rows.items()}}


def test_same_work_compares_with_the_checked_pickle_not_with_pickle() -> None:
    results = _results(
        {
            "a": {
                "pickle": _row(1.0, 1.0),
                "modelsafe": _row(3.0, 3.0),
                zoo_report.CHECKED: _row(2.0, 2.5),
                zoo_report.NOVERIFY: _row(0.2, 3.0),
            },
            "b": {
                "pickle": _row(1.0, 1.0),
                "modelsafe": _row(1.0, 1.0),
                zoo_report.CHECKED: _row(2.0, 2.0),
                zoo_report.NOVERIFY: _row(0.8, 1.0),
            },
        }
    )
    found = {v.check: v for v in zoo_report.same_work(results)}
    geo_load, every_load, mmap, save = found.values()
    # load: 3/2 and 1/2 -> geometric mean sqrt(0.75) = 0.866; worst 1.5 (a)
    assert (geo_load.status, geo_load.measured.split()[0]) == ("PASS", "0.866x")
    assert every_load.status == "PASS" and "worst 1.5x (a)" in every_load.measured
    # mmap without verification: 0.2 and 0.8 -> 0.4
    assert (mmap.status, mmap.measured.split()[0]) == ("PASS", "0.4x")
    # save: 3/2.5 and 1/2 -> sqrt(0.6) = 0.7746
    assert (save.status, save.measured.split()[0]) == ("PASS", "0.7746x")
    # The issue's own verdicts still compare with plain pickle: 3x and 1x fail 1.0x.
    issue = {v.check: v for v in zoo_report.verdicts(results)}
    load_geo = next(v for c, v in issue.items() if c.startswith("`modelsafe` load ≤ 1.0x"))
    assert load_geo.status == "FAIL"
    text = _report(results)
    assert "## On the same work (not the issue's targets)" in text


def test_same_work_fails_when_modelsafe_is_slower_than_the_checked_pickle() -> None:
    results = _results(
        {
            "a": {
                "pickle": _row(1.0, 1.0),
                "modelsafe": _row(5.0, 4.0),
                zoo_report.CHECKED: _row(2.0, 2.0),
                zoo_report.NOVERIFY: _row(0.9, 4.0),
            }
        }
    )
    statuses = [v.status for v in zoo_report.same_work(results)]
    assert statuses == ["FAIL", "FAIL", "FAIL", "FAIL"]


def test_same_work_is_left_out_of_a_run_without_its_rows() -> None:
    results = _results({"a": {"pickle": _row(1.0, 1.0), "modelsafe": _row(1.0, 1.0)}})
    assert zoo_report.same_work(results) == []
    assert not any("same work" in line for line in zoo_report.acceptance_lines(results))
    text = _report(results)
    assert "On the same work" not in text


def _report(results: dict[str, Any]) -> str:
    """The Markdown of ``results`` with the machine and settings of the committed run."""
    committed = json.loads((ROOT / "benchmarks" / "results" / "models.json").read_text())
    keep = {k: committed[k] for k in ("machine", "settings")}
    return zoo_report.markdown({**keep, **results, "notes": []}, "c.png")


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux's /proc")
@pytest.mark.parametrize("tool", ["pickle", "modelsafe"])
def test_the_memory_floor_finds_a_loaded_array_in_private_memory(tmp_path: Path, tool: str) -> None:
    """`benchmarks.floors --memory-child` in a fresh interpreter: 8 MiB of float64 loaded
    with pickle sit in the process's own memory; loaded by modelsafe (a copy-on-write map
    of the file, read by the digest check), in the file's mapping."""
    import subprocess
    import sys

    import modelsafe

    data = {"weights": np.arange(1 << 20, dtype=np.float64)}
    path = str(tmp_path / ("m.pkl" if tool == "pickle" else "m.msafe"))
    if tool == "pickle":
        TOOLS["pickle"].save(data, path)
    else:
        modelsafe.save(data, path)
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.floors", "--memory-child", "mlp", tool, path],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(child.stdout.splitlines()[-1])
    resident = result["resident_kb"]
    own = resident.get("[heap]", 0) + resident.get("[anon]", 0)
    mapped = resident.get(os.path.basename(path), 0)
    if tool == "pickle":
        assert own >= 8 * 1024 and mapped == 0
    else:
        assert mapped >= 8 * 1024 and own < 2 * 1024
    assert result["peak_delta_mb"] >= 8


def test_the_memory_table_lists_every_mapping_and_the_totals() -> None:
    from benchmarks.floors import _memory_table

    tools = {
        "pickle": {"peak_delta_mb": 5.04, "resident_kb": {"[heap]": 2012, "lib.so": 1020}},
        "modelsafe": {"peak_delta_mb": 5.59, "resident_kb": {"lib.so": 1148, "np.so": 1088}},
    }
    table = "\n".join(_memory_table("lgbm500", tools))
    assert "| peak Δ, MiB | 5.04 | 5.59 |" in table
    assert "| `lib.so` | 1020 | 1148 |" in table
    assert "| `[heap]` | 2012 | 0 |" in table
    assert "| `np.so` | 0 | 1088 |" in table
    assert "| resident after the load, total | 3032 | 2236 |" in table
