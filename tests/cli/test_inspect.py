from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

import modelsafe
from modelsafe.cli import main
from modelsafe.cli.demo import add_node, craft_hostile, flip_data_byte, rewrite_header


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_human_output_shows_summary_types_and_tree(model_file: Path) -> None:
    code, out, err = run("inspect", str(model_file))
    assert code == 0, err
    for text in ("format version", "header size", "in 3 buffer(s)", "modelsafe 0.1.0", "fraud"):
        assert text in out
    assert "numpy.random.RandomState" in out
    assert "Every type is trusted by default" in out
    assert "['weights']" in out and "<f8 shape=(32, 32)" in out and "8.0 KiB" in out
    assert "['scale']" in out and "24 B" in out
    assert "['names']" in out


def test_json_is_the_file_info(model_file: Path) -> None:
    code, out, _ = run("inspect", "--json", str(model_file))
    assert code == 0
    data = json.loads(out)
    assert data == json.loads(json.dumps(modelsafe.inspect(model_file).to_dict()))
    assert data["types"] == ["numpy.ndarray", "numpy.random.MT19937", "numpy.random.RandomState"]
    assert data["untrusted"] == []
    assert len(data["buffers"]) == 3
    assert data["metadata"]["user"] == {"team": "fraud"}


def test_max_rows_limits_the_tree(model_file: Path) -> None:
    code, out, _ = run("inspect", "--json", "--max-rows", "2", str(model_file))
    assert code == 0 and len(json.loads(out)["tree"]) == 2
    code, out, _ = run("inspect", "--max-rows", "2", str(model_file))
    assert code == 0 and "first 2 rows shown" in out and "['names']" not in out
    code, out, _ = run("inspect", "--max-rows", "0", str(model_file))
    assert code == 0 and "Object tree" not in out


def test_buffers_are_listed_on_request(model_file: Path) -> None:
    info = modelsafe.inspect(model_file)
    assert "Buffers" not in run("inspect", str(model_file))[1]
    code, out, _ = run("inspect", "--buffers", str(model_file))
    assert code == 0 and "Buffers (3)" in out
    for b in info.buffers:
        assert b["digest"][:12] in out


def test_untrusted_types_are_marked_with_how_to_trust_them(
    model_file: Path, tmp_path: Path
) -> None:
    # inspect never imports: the module need not exist.
    other = tmp_path / "custom.msafe"
    add_node(
        model_file,
        other,
        "net",
        {"$": "obj", "module": "mypkg.nets", "name": "Net"},
        "mypkg.nets.Net",
    )
    code, out, _ = run("inspect", str(other))
    assert code == 0
    assert "mypkg.nets.Net" in out and "UNTRUSTED" in out
    assert "modelsafe.load(path, trusted=['mypkg.nets.Net'])" in out


def test_never_trustable_types_are_not_offered_for_trust(model_file: Path, tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.msafe"
    marker = tmp_path / "PWNED"
    craft_hostile(model_file, hostile, f'echo pwned > "{marker}"')
    code, out, _ = run("inspect", str(hostile))
    assert code == 0
    assert "os.system" in out and "can never be trusted" in out
    assert "trusted=[" not in out
    assert not marker.exists()


def test_inspect_reads_only_the_header(model_file: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.msafe"
    flip_data_byte(model_file, damaged, owner="['bias']")
    code, out, _ = run("inspect", "--json", str(damaged))
    assert code == 0 and len(json.loads(out)["buffers"]) == 3


def test_json_from_a_real_process(model_file: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "modelsafe.cli", "inspect", "--json", str(model_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["types"] == ["numpy.ndarray", "numpy.random.MT19937", "numpy.random.RandomState"]
    assert len(data["buffers"]) == 3


def test_control_characters_from_the_header_are_escaped(model_file: Path, tmp_path: Path) -> None:
    # A hostile header must not be able to move the cursor and erase the UNTRUSTED line.
    def edit(header: dict[str, Any]) -> None:
        header["meta"]["producer"] = "\x1b[1A\x1b[2Kall clear"
        header["meta"]["user"] = {"note": "safe\u202eelif"}
        header["meta"]["extra"] = "\x9b2K"

    spoofed = tmp_path / "spoofed.msafe"
    rewrite_header(model_file, spoofed, edit)
    code, out, _ = run("inspect", "--buffers", str(spoofed))
    assert code == 0
    assert "\\x1b[1A\\x1b[2Kall clear" in out and "safe\\u202eelif" in out and "\\x9b2K" in out
    for ch in ("\x1b", "\u202e", "\x9b"):
        assert ch not in out
    code, out, _ = run("inspect", "--json", str(spoofed))
    assert out.isascii() and json.loads(out)["metadata"]["producer"].startswith("\x1b")
