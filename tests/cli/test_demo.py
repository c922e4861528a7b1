from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelsafe.cli import demo, main


@pytest.fixture(autouse=True)
def small_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    # The in-process runs check the tour, not the speed; the subprocess run keeps 100 MiB.
    monkeypatch.setattr(demo, "BENCH_BYTES", 1 << 20)


def test_tour_shows_each_step_and_keeps_files(tmp_path: Path) -> None:
    where = tmp_path / "tour"
    result = CliRunner().invoke(main, ["demo", "--dir", str(where), "--keep"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.count("equal to the original") == 3
    assert "MmapUnavailableError" in out
    assert "UntrustedTypesError" in out and "os.system" in out
    assert "IntegrityError" in out and "root['weights']['W1']" in out
    assert "pickle" in out and "make bench" in out
    names = {p.name for p in where.iterdir()}
    assert {"model.msafe", "model-zstd.msafe", "hostile.msafe", "damaged.msafe"} <= names
    assert "PWNED" not in names


def test_given_dir_is_emptied_but_kept(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("not the demo's")
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_temporary_dir_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == []


def test_full_demo_in_a_real_process(tmp_path: Path) -> None:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "modelsafe.cli", "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.perf_counter() - start < 30
    assert "100.0 MiB" in proc.stdout and "Done in" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_files_in_the_given_dir(tmp_path: Path) -> None:
    (tmp_path / "model.msafe").write_bytes(b"the user's own model")
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "model.msafe" in result.stderr
    assert (tmp_path / "model.msafe").read_bytes() == b"the user's own model"
