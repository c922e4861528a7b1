"""modelsafe keygen, sign and verify from the command line, with their exit codes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from click.testing import CliRunner

from modelsafe.cli import main


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env or {}, catch_exceptions=False)
    return result.exit_code, result.output


def test_keygen_sign_verify(model_file: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    code, out = _run("keygen", "--out", str(keys), "--name", "trainer")
    assert code == 0, out
    assert stat.S_IMODE(os.stat(keys / "trainer.key").st_mode) == 0o600
    env = {"MODELSAFE_KEY_PASSPHRASE": "pw"}
    assert _run("keygen", "--out", str(keys), "--name", "reviewer", "--passphrase", env=env)[0] == 0
    code, out = _run("keygen", "--out", str(keys), "--name", "trainer")
    assert code == 2 and "exists" in out

    # Not signed yet: intact, no signatures; with a trusted key, exit 8.
    code, out = _run("verify", str(model_file))
    assert code == 0 and "no signatures" in out and "not checked against trusted keys" in out
    code, out = _run("verify", str(model_file), "--key", str(keys / "trainer.pub"))
    assert code == 8 and "not signed" in out

    assert _run("sign", str(model_file), "--key", str(keys / "trainer.key"))[0] == 0
    code, out = _run("sign", str(model_file), "--key", str(keys / "reviewer.key"))
    assert code == 8 and "MODELSAFE_KEY_PASSPHRASE" in out  # encrypted, no passphrase
    assert _run("sign", str(model_file), "--key", str(keys / "reviewer.key"), env=env)[0] == 0

    code, out = _run("verify", str(model_file), "--key", str(keys / "trainer.pub"))
    assert code == 0 and out.count("signature by") == 2 and "trusted" in out, out
    code, out = _run("verify", str(model_file), "--keyring", str(keys), "--json")
    assert code == 0
    result = json.loads(out)
    assert len(result["trusted_signers"]) == 2 and result["intact"]
    code, out = _run("verify", str(model_file), env={"MODELSAFE_KEYRING": str(keys)})
    assert code == 0 and out.count(": trusted") == 2, out
    code, out = _run("inspect", str(model_file))
    assert code == 0 and "signatures" in out


def test_verify_exit_codes_for_damage(model_file: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    _run("keygen", "--out", str(keys))
    _run("sign", str(model_file), "--key", str(keys / "modelsafe.key"))
    pub = str(keys / "modelsafe.pub")
    raw = model_file.read_bytes()

    damaged = tmp_path / "damaged.msafe"
    data = bytearray(raw)
    data[-200] ^= 1  # the last buffer (the trailer is the last 128 bytes)
    damaged.write_bytes(data)
    assert _run("verify", str(damaged), "--key", pub)[0] == 4

    bad_signature = bytearray(raw)
    bad_signature[-40] ^= 1  # inside the signature
    damaged.write_bytes(bad_signature)
    code, out = _run("verify", str(damaged), "--key", pub)
    assert code == 8 and "does not match" in out

    damaged.write_bytes(raw + b"\x00")
    assert _run("verify", str(damaged), "--key", pub)[0] == 3
