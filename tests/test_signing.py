"""Signatures: keys, signing, verifying, and a tamper matrix of real edits to signed files."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelsafe
from modelsafe import FormatError, IntegrityError, SignatureError
from modelsafe._container.layout import SIGNATURE_SIZE

from ._crafting import deep_equal

DATA = Path(__file__).parent / "data"
REFUSED = (SignatureError, IntegrityError, FormatError)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Key pairs: alice and bob sign, mallory is trusted by nobody."""
    folder = tmp_path_factory.mktemp("keys")
    return {name: modelsafe.generate_key(folder, name) for name in ("alice", "bob", "mallory")}


def _model() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "coef": rng.standard_normal((20, 30)),
        "intercept": np.arange(3.0),
        "classes": ["a", "b", "c"],
    }


@pytest.fixture(scope="module")
def signed(keys: dict[str, tuple[Path, Path]]) -> bytes:
    """A file signed by alice and bob."""
    return modelsafe.dumps(_model(), sign_with=[keys["alice"][0], keys["bob"][0]])


def test_save_signed_and_load_requiring_the_signature(keys: Any, tmp_path: Path) -> None:
    path = modelsafe.save(_model(), tmp_path / "m.msafe", sign_with=keys["alice"][0])
    assert deep_equal(modelsafe.load(path, require_signature=keys["alice"][1]), _model())
    assert deep_equal(modelsafe.load(path, require_signature=keys["alice"][1], mmap="r"), _model())
    assert deep_equal(modelsafe.load(path), _model())  # signatures do not stop a plain load
    info = modelsafe.inspect(path)
    assert [s["key_id"] for s in info.signatures] == [_key_id(keys["alice"][1])]
    with pytest.raises(SignatureError) as caught:
        modelsafe.load(path, require_signature=keys["bob"][1])
    assert caught.value.found == [_key_id(keys["alice"][1])]
    assert _key_id(keys["alice"][1]) in str(caught.value)


def _key_id(public: Path) -> str:
    from modelsafe._signing import trusted_keys

    return next(iter(trusted_keys(public)))


def test_several_signatures_each_verify(signed: bytes, keys: Any, tmp_path: Path) -> None:
    alice, bob = _key_id(keys["alice"][1]), _key_id(keys["bob"][1])
    assert modelsafe.verify_signatures(signed, keys["alice"][1]) == [alice]
    assert modelsafe.verify_signatures(signed, keys["bob"][1]) == [bob]
    assert modelsafe.verify_signatures(signed, [keys["alice"][1], keys["bob"][1]]) == [alice, bob]
    assert deep_equal(modelsafe.loads(signed, require_signature=keys["bob"][1]), _model())
    twice = modelsafe.dumps(1, sign_with=[keys["alice"][0], keys["alice"][0]])
    assert [s["key_id"] for s in modelsafe.inspect(twice).signatures] == [alice]
    # A third signature added to the file later keeps the first two.
    path = tmp_path / "m.msafe"
    path.write_bytes(signed)
    before = path.read_bytes()
    assert modelsafe.sign(path, keys["mallory"][0]) == [_key_id(keys["mallory"][1])]
    after = path.read_bytes()
    assert after[: len(before)] == before and len(after) == len(before) + SIGNATURE_SIZE
    assert modelsafe.verify_signatures(path, keys["mallory"][1]) == [_key_id(keys["mallory"][1])]
    assert modelsafe.verify_signatures(path, keys["alice"][1]) == [alice]
    # Signing again with a key that signed adds nothing.
    modelsafe.sign(path, keys["alice"][0])
    assert path.read_bytes() == after
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_a_keyring_directory_and_the_environment_variable(
    signed: bytes, keys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = tmp_path / "ring"
    ring.mkdir()
    (ring / "bob.pub").write_bytes(keys["bob"][1].read_bytes())
    assert modelsafe.verify_signatures(signed, ring) == [_key_id(keys["bob"][1])]
    monkeypatch.delenv("MODELSAFE_KEYRING", raising=False)
    with pytest.raises(SignatureError, match="MODELSAFE_KEYRING"):
        modelsafe.loads(signed, require_signature=True)
    monkeypatch.setenv("MODELSAFE_KEYRING", str(ring))
    assert deep_equal(modelsafe.loads(signed, require_signature=True), _model())
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MODELSAFE_KEYRING", str(empty))
    with pytest.raises(SignatureError, match=r"no \.pub files"):
        modelsafe.loads(signed, require_signature=True)


def test_an_unsigned_file_is_refused_when_a_signature_is_required(keys: Any) -> None:
    data = modelsafe.dumps(_model())
    with pytest.raises(SignatureError, match="not signed") as caught:
        modelsafe.loads(data, require_signature=keys["alice"][1])
    assert caught.value.found == []


def test_require_signature_needs_verification(signed: bytes, keys: Any) -> None:
    with pytest.raises(ValueError, match="verify=True"):
        modelsafe.loads(signed, require_signature=keys["alice"][1], verify=False)


def test_the_signature_is_checked_before_the_audit(keys: Any, tmp_path: Path) -> None:
    """A file signed by an untrusted key that also needs untrusted types fails on the
    signature: nothing of it is audited, imported or built first."""
    from ._victim_module import Payload

    data = modelsafe.dumps(Payload(), sign_with=keys["mallory"][0])
    with pytest.raises(modelsafe.UntrustedTypesError):
        modelsafe.loads(data)
    with pytest.raises(SignatureError):
        modelsafe.loads(data, require_signature=keys["alice"][1])


# -- the tamper matrix ---------------------------------------------------------------------


def _refused(data: bytes, public: Path) -> str | None:
    """None when verifying and loading with the signature required both refuse ``data``;
    otherwise what was accepted."""
    for name, call in (
        ("verify_signatures", lambda: modelsafe.verify_signatures(data, public)),
        ("loads", lambda: modelsafe.loads(data, require_signature=public)),
    ):
        try:
            call()
        except REFUSED:
            continue
        return name
    return None


def test_every_sampled_byte_flip_is_refused(signed: bytes, keys: Any) -> None:
    """1,200 positions over the header, the data and the trailer, each flipped alone."""
    rng = random.Random(6)
    n = len(signed)
    trailer = n - 2 * SIGNATURE_SIZE
    positions = set(rng.sample(range(n), 1000))
    positions |= set(range(0, 16))  # the whole preamble
    positions |= set(range(trailer, n, 3))  # every third byte of both records
    assert len(positions) >= 1000
    accepted = []
    for pos in sorted(positions):
        bad = bytearray(signed)
        bad[pos] ^= 1 << rng.randrange(8)
        if (what := _refused(bytes(bad), keys["alice"][1])) is not None:
            accepted.append((pos, what))
    assert not accepted, accepted[:10]


def test_truncated_and_extended_files_are_refused(signed: bytes, keys: Any) -> None:
    n = len(signed)
    cuts = sorted({*range(0, n, 97), n - 1, n - SIGNATURE_SIZE, n - 2 * SIGNATURE_SIZE})
    accepted = [k for k in cuts if _refused(signed[:k], keys["alice"][1]) is not None]
    # Cutting whole records leaves a file signed by fewer keys: alice's record is first,
    # so cutting bob's leaves a file alice signed (that is what it is); cutting both must fail.
    assert accepted == [n - SIGNATURE_SIZE], accepted
    other = modelsafe.dumps({"x": 1}, sign_with=keys["alice"][0])
    for extra in (b"\x00", bytes(SIGNATURE_SIZE - 1), bytes(SIGNATURE_SIZE), other[-128:]):
        assert _refused(signed + extra, keys["alice"][1]) is None, extra[:8]


def test_a_file_re_signed_by_an_untrusted_key_is_refused(signed: bytes, keys: Any) -> None:
    body = signed[: len(signed) - 2 * SIGNATURE_SIZE]  # the signatures stripped
    resigned = _append_signature(body, keys["mallory"][0])
    with pytest.raises(SignatureError) as caught:
        modelsafe.verify_signatures(resigned, keys["alice"][1])
    assert caught.value.found == [_key_id(keys["mallory"][1])]
    # An edited header re-sealed and re-signed by mallory: still not alice's.
    edited = bytearray(body)
    at = edited.index(b'"classes"')
    edited[at + 1] = ord("C")
    from ._crafting import seal

    head_len = 16 + int.from_bytes(edited[8:16], "little")
    resealed = seal(bytes(edited[:head_len])) + bytes(edited[head_len:])
    forged = _append_signature(resealed, keys["mallory"][0])
    with pytest.raises(SignatureError):
        modelsafe.verify_signatures(forged, keys["alice"][1])


def _append_signature(body: bytes, key: Path) -> bytes:
    from modelsafe._signing import load_private_key, record_for

    n = int.from_bytes(body[8:16], "little")
    return body + record_for(load_private_key(key), body[: 16 + n])


def test_a_signature_copied_from_another_file_is_refused(signed: bytes, keys: Any) -> None:
    other = modelsafe.dumps({"x": 1}, sign_with=keys["alice"][0])
    body = signed[: len(signed) - 2 * SIGNATURE_SIZE]
    with pytest.raises(SignatureError, match="does not match"):
        modelsafe.verify_signatures(body + other[-SIGNATURE_SIZE:], keys["alice"][1])


# -- keys ----------------------------------------------------------------------------------


def test_key_files(tmp_path: Path) -> None:
    private, public = modelsafe.generate_key(tmp_path, "k", passphrase="correct horse")
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert b"ENCRYPTED" in private.read_bytes()
    assert b"PUBLIC KEY" in public.read_bytes()
    with pytest.raises(FileExistsError):
        modelsafe.generate_key(tmp_path, "k")
    with pytest.raises(SignatureError, match="encrypted"):
        modelsafe.dumps(1, sign_with=private)
    with pytest.raises(SignatureError, match="passphrase is wrong"):
        modelsafe.load_signing_key(private, "wrong")
    key = modelsafe.load_signing_key(private, "correct horse")
    assert modelsafe.verify_signatures(modelsafe.dumps(1, sign_with=key), public)
    with pytest.raises(SignatureError, match="not a PEM public key"):
        modelsafe.verify_signatures(modelsafe.dumps(1, sign_with=key), private)


def test_signing_checks_the_file_first_and_leaves_a_bad_one_alone(
    keys: Any, tmp_path: Path
) -> None:
    path = modelsafe.save(_model(), tmp_path / "m.msafe", fsync=False)
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 1  # in the data: a buffer no longer matches its digest
    path.write_bytes(raw)
    with pytest.raises(IntegrityError):
        modelsafe.sign(path, keys["alice"][0])
    assert path.read_bytes() == raw


def test_format_version_1_files_load_forever_but_cannot_be_signed(
    keys: Any, tmp_path: Path
) -> None:
    expected = {
        "w": np.arange(3.0),
        "name": "demo",
        "pair": (1, 2),
        "raw": b"xy",
        "eye": np.eye(3, dtype=np.float32),
        "big": np.arange(4096, dtype=np.int64),
    }
    for name in ("plain", "zstd"):
        path = DATA / "format-v1" / f"{name}.msafe"
        assert modelsafe.inspect(path).format_version == 1
        assert deep_equal(modelsafe.load(path), expected)
        copy = tmp_path / f"{name}.msafe"
        copy.write_bytes(path.read_bytes())
        with pytest.raises(FormatError, match="version 1 has no room for signatures"):
            modelsafe.sign(copy, keys["alice"][0])
        # Version 1 has no trailer: a record appended to it is refused.
        with pytest.raises(FormatError, match="unexpected bytes"):
            modelsafe.loads(path.read_bytes() + bytes(SIGNATURE_SIZE))
