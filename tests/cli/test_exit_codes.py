from __future__ import annotations

import re
import struct
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import modelsafe
from modelsafe.cli import main
from modelsafe.cli.main import EXIT_CODES, ModelSafeGroup, exit_code_for

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

ERRORS: list[tuple[BaseException, int]] = [
    (modelsafe.FormatError("bad bytes"), 3),
    (modelsafe.FormatVersionError(9, 1), 3),
    (modelsafe.IntegrityError("buffer 0 (root['w']) is corrupted", buffer=0), 4),
    (modelsafe.UntrustedTypesError(["mypkg.Net"], source="m.msafe"), 5),
    (modelsafe.UnsupportedTypeError("a lambda", path="root['f']"), 6),
    (modelsafe.MmapUnavailableError("compressed"), 7),
    (modelsafe.SignatureError("not signed"), 8),
    (modelsafe.ModelSafeError("a future error without a code yet"), 1),
    (RuntimeError("a bug"), 1),
]


@pytest.mark.parametrize(("exc", "code"), ERRORS, ids=lambda x: type(x).__name__)
def test_each_error_has_its_exit_code(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code


@pytest.mark.parametrize(("exc", "code"), ERRORS[:8], ids=lambda x: type(x).__name__)
def test_a_command_that_raises_exits_with_the_code_and_a_message(
    exc: BaseException, code: int
) -> None:
    group = ModelSafeGroup()

    @group.command()
    def fail() -> None:
        raise exc

    result = CliRunner().invoke(group, ["fail"])
    assert result.exit_code == code
    assert result.stderr.startswith(f"Error: {type(exc).__name__}: ")
    assert str(exc) in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_os_errors_exit_1_without_a_traceback() -> None:
    group = ModelSafeGroup()

    @group.command()
    def fail() -> None:
        raise PermissionError(13, "Permission denied", "model.msafe")

    result = CliRunner().invoke(group, ["fail"])
    assert result.exit_code == 1
    assert "Permission denied" in result.stderr and "Traceback" not in result.stderr


def _inspect(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["inspect", str(path)])
    return result.exit_code, result.stderr


def test_truncated_file_exits_3(model_file: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.msafe"
    cut.write_bytes(model_file.read_bytes()[:-100])
    code, err = _inspect(cut)
    assert code == 3 and "FormatError" in err and "truncated" in err


def test_not_a_modelsafe_file_exits_3(tmp_path: Path) -> None:
    junk = tmp_path / "model.pkl"
    junk.write_bytes(b"\x80\x05" + b"\x00" * 200)
    code, err = _inspect(junk)
    assert code == 3 and "not a modelsafe file" in err


def test_newer_format_version_exits_3(model_file: Path, tmp_path: Path) -> None:
    raw = bytearray(model_file.read_bytes())
    struct.pack_into("<H", raw, 6, modelsafe.FORMAT_VERSION + 1)
    newer = tmp_path / "newer.msafe"
    newer.write_bytes(raw)
    code, err = _inspect(newer)
    assert code == 3 and "FormatVersionError" in err and "upgrade modelsafe" in err


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "missing.msafe"],
        ["inspect", "."],
        ["inspect", "--max-rows", "-1", "x"],
        ["nope"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr


def test_missing_file_message_is_clicks(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "missing.msafe")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert f"modelsafe {modelsafe.__version__}" in result.stdout


def _documented(text: str) -> dict[int, str]:
    return {int(m[1]): m[2] for m in re.finditer(r"^\W*(\d+)\W+(\w+Error)\b", text, re.M)}


@pytest.mark.parametrize("source", ["help", "docs"])
def test_help_and_docs_list_every_exit_code(source: str) -> None:
    if source == "help":
        result = CliRunner().invoke(main, ["--help"], terminal_width=200)
        assert result.exit_code == 0
        text = result.stdout
    else:
        text = DOCS.read_text(encoding="utf-8")
    documented = _documented(text)
    for cls, code in EXIT_CODES:
        assert documented.get(code) == cls.__name__
    assert "FormatVersionError" in text


def test_click_group_is_the_entry_point() -> None:
    assert isinstance(main, click.Group)
    assert {"inspect", "demo"} <= set(main.commands)
