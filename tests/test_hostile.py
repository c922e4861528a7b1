"""Hostile input: every malformed, truncated, corrupted or crafted file must end in a
``ModelSafeError`` (never another exception, a crash, a hang or a huge allocation).

Files are crafted in the tests from the byte layout (see ``_crafting``), one
violation at a time, next to a positive control that proves the crafting is
right and the rejection is not an accident of it.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import random
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lz4.frame
import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

import modelsafe
from modelsafe import (
    FormatError,
    FormatVersionError,
    IntegrityError,
    MmapUnavailableError,
    ModelSafeError,
    UntrustedTypesError,
)
from modelsafe._container.layout import Limits, json_structure
from modelsafe._container.reader import parse_container

from ._crafting import (
    EVERYWHERE,
    GIB,
    LOADERS,
    MAGIC,
    PREAMBLE,
    align,
    buffer_at,
    craft,
    deep_equal,
    flip,
    frame,
    header_bytes,
    nd,
    rewrite,
    run_limited,
    seal,
    sealed,
    split,
    used_types,
)

# Loaders that accept a file whose buffers are compressed.
LOADERS_NO_MMAP = {k: v for k, v in LOADERS.items() if k != "load(mmap='r')"}


def sample() -> dict[str, Any]:
    """A small model-like object touching every kind of buffer the writer makes."""
    return {
        "weights": np.arange(600, dtype="<f8").reshape(20, 30) / 7,  # a buffer of its own
        "bias": np.linspace(-1, 1, 5),  # small arrays share a buffer
        "ids": np.arange(12, dtype=np.int32),
        "blob": bytes(range(256)) + b"tail" * 20,  # long bytes: a buffer
        "counts": list(range(100)),  # packed ints
        "mixed": [1, 2.5, "x", None, True] * 13,  # packed mixed scalars
        "name": "model",
        "shape": (3, 4),
        "labels": {"cat", "dog"},
        "big": 2**70,
        "nan": float("nan"),
        "cplx": 1 + 2j,
    }


@pytest.fixture(scope="module")
def small() -> bytes:
    return modelsafe.dumps(sample())


@pytest.fixture(scope="module")
def compressed() -> bytes:
    rng = np.random.default_rng(0)
    obj = {
        "z": np.repeat(rng.standard_normal(64), 200),  # compresses well
        "r": rng.integers(0, 4, 20_000, dtype=np.int8),
        "noise": rng.standard_normal(300),  # incompressible: stays raw
    }
    blob = modelsafe.dumps(obj, compress="zstd")
    assert any(len(e) == 5 for e in split(blob).header["buffers"]), "nothing was compressed"
    return blob


def test_the_sample_files_are_valid(small: bytes, compressed: bytes) -> None:
    assert deep_equal(modelsafe.loads(small), sample())
    modelsafe.loads(compressed)


# -- truncation ------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["loads", "inspect(bytes)", "untrusted_types(bytes)"])
def test_truncation_at_every_byte_is_a_format_error(small: bytes, entry: str) -> None:
    fn = EVERYWHERE[entry]
    wrong = []
    for k in range(len(small)):
        try:
            fn(small[:k], Path("unused"))
        except FormatError:
            continue
        except BaseException as exc:
            wrong.append(f"{k}: {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{k}: accepted")
    assert not wrong, f"{len(wrong)} truncations not refused, e.g. {wrong[:5]}"


def test_truncated_files_on_disk(small: bytes, reject: Callable[..., Any]) -> None:
    p = split(small)
    cuts = {0, 1, 7, 8, 15, 16, 17, p.data_offset - 1, p.data_offset, p.data_offset + 1}
    cuts |= {p.data_offset + e[0] + e[1] // 2 for e in p.header["buffers"]}
    cuts |= {len(small) - 64, len(small) - 1}
    for k in sorted(cuts):
        reject(small[:k], FormatError)


def test_truncated_compressed_files(compressed: bytes, reject: Callable[..., Any]) -> None:
    p = split(compressed)
    cuts = {10, p.data_offset - 3, p.data_offset + 5, len(compressed) - 1}
    for e in p.header["buffers"]:
        cuts |= {p.data_offset + e[0] + e[1] // 2, p.data_offset + e[0] + e[1] - 1}
    for k in sorted(cuts):
        reject(compressed[:k], FormatError)


# -- flipped bits --------------------------------------------------------------------------------


def _version_after(blob: bytes) -> int:
    return int(PREAMBLE.unpack_from(blob)[1])


def test_every_preamble_bit_flip_is_refused(small: bytes) -> None:
    wrong = []
    for bit in range(PREAMBLE.size * 8):
        bad = flip(small, bit)
        want: Any = (
            FormatVersionError if _version_after(bad) > modelsafe.FORMAT_VERSION else FormatError
        )
        if bit >= 64:  # the header length: the header read is then the wrong bytes
            want = (FormatError, IntegrityError)
        for entry in ("loads", "inspect(bytes)", "untrusted_types(bytes)"):
            try:
                EVERYWHERE[entry](bad, Path("unused"))
            except want:
                continue
            except BaseException as exc:
                wrong.append(f"bit {bit} {entry}: {type(exc).__name__}: {exc}")
            else:
                wrong.append(f"bit {bit} {entry}: accepted")
    assert not wrong, wrong[:10]


def _data_bits(p: Any, rng: random.Random, n: int) -> list[int]:
    """Bit offsets in the data section: ``n`` at random plus some in every padding run."""
    bits = rng.sample(range(len(p.data) * 8), n)
    for e in p.header["buffers"]:
        end = e[0] + e[1]
        if align(end) > end:  # the zero padding after the buffer
            bits += [end * 8, (align(end) - 1) * 8 + 7]
    return bits


def test_data_bit_flips_are_integrity_errors_naming_the_buffer(small: bytes) -> None:
    p = split(small)
    rng = random.Random(1234)
    wrong = []
    for bit in _data_bits(p, rng, 300):
        bad = flip(small, p.data_offset * 8 + bit)
        idx = buffer_at(p, bit // 8)
        try:
            modelsafe.loads(bad)
        except IntegrityError as exc:
            if exc.buffer != idx or f"buffer {idx}" not in str(exc):
                wrong.append(f"data byte {bit // 8}: blamed {exc.buffer}, expected {idx}: {exc}")
        except BaseException as exc:
            wrong.append(f"data byte {bit // 8} (buffer {idx}): {type(exc).__name__}: {exc}")
        else:
            end = p.header["buffers"][idx][0] + p.header["buffers"][idx][1]
            where = "padding after" if bit // 8 >= end else "bytes of"
            wrong.append(f"data byte {bit // 8} ({where} buffer {idx}): loaded without error")
    assert not wrong, f"{len(wrong)} data flips not caught:\n" + "\n".join(wrong[:10])


def test_data_bit_flips_through_files(small: bytes, tmp_path: Path) -> None:
    p = split(small)
    path = tmp_path / "flipped.msafe"
    for i, e in enumerate(p.header["buffers"]):
        path.write_bytes(flip(small, (p.data_offset + e[0] + e[1] // 2) * 8 + 3))
        for mmap in (None, False, "r", "c"):
            with pytest.raises(IntegrityError, match=f"buffer {i}\\b") as info:
                modelsafe.load(path, mmap=mmap)
            assert info.value.buffer == i
        # The check can be skipped on purpose; the damage may then go unseen, or be
        # caught as malformed data, but never escapes as another exception.
        with contextlib.suppress(ModelSafeError):
            modelsafe.load(path, verify=False)


def test_compressed_data_bit_flips_are_integrity_errors(compressed: bytes) -> None:
    p = split(compressed)
    for i, e in enumerate(p.header["buffers"]):
        for frac in (0, 0.5, 0.99):
            bad = flip(compressed, (p.data_offset + e[0] + int(e[1] * frac)) * 8)
            with pytest.raises(IntegrityError, match=f"buffer {i}\\b"):
                modelsafe.loads(bad)


def _header_outcome(bad: bytes, original: Any) -> str | None:
    """None when ``bad`` is refused with a ModelSafeError or loads to ``original``."""
    try:
        got = modelsafe.loads(bad)
    except ModelSafeError:
        return None
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if deep_equal(got, original) else "loaded a different object"


def test_header_bit_flips_never_load_something_else(small: bytes) -> None:
    p = split(small)
    original = sample()
    rng = random.Random(99)
    start, end = PREAMBLE.size * 8, p.data_offset * 8
    wrong = []
    for bit in sorted(rng.sample(range(start, end), 400)):
        problem = _header_outcome(flip(small, bit), original)
        if problem:
            at = bit // 8
            context = small[max(at - 24, 0) : at + 8]
            wrong.append(f"byte {at} bit {bit % 8} in ...{context!r}: {problem}")
    assert not wrong, f"{len(wrong)} header flips misbehaved:\n" + "\n".join(wrong[:10])


def test_header_padding_flips_are_harmless_or_refused(small: bytes) -> None:
    p = split(small)
    body = small[PREAMBLE.size : p.data_offset]
    pad_from = PREAMBLE.size + len(body.rstrip(b" "))
    assert pad_from < p.data_offset, "the sample header needs some padding"
    original = sample()
    wrong = []
    for at in range(pad_from, p.data_offset):
        for b in range(8):
            problem = _header_outcome(flip(small, at * 8 + b), original)
            if problem:
                wrong.append(f"byte {at} bit {b}: {problem}")
    assert not wrong, wrong[:10]


def _unsealed_edit(blob: bytes, old: bytes, new: bytes) -> bytes:
    """Replace ``old`` by ``new`` (same length) in the header, leaving its hash as it was."""
    assert len(old) == len(new) and blob.count(old) == 1
    return blob.replace(old, new)


def test_header_edited_without_its_hash_is_an_integrity_error(
    small: bytes, reject: Callable[..., Any]
) -> None:
    """Tampering with the header (here: renaming a key) is detected from the header alone."""
    bad = _unsealed_edit(small, b'"weights"', b'"weighty"')
    for exc in reject(bad, IntegrityError):
        assert "header" in str(exc)
    assert deep_equal(
        modelsafe.loads(seal(bad[: split(bad).data_offset]) + split(bad).data)["weighty"],
        sample()["weights"],
    )


def test_header_hash_itself_damaged(small: bytes, reject: Callable[..., Any]) -> None:
    start = PREAMBLE.size + len(b'{"hash":"')
    digit = small[start : start + 1]
    other = b"1" if digit != b"1" else b"2"
    reject(small[:start] + other + small[start + 1 :], IntegrityError)
    reject(
        small[:start] + b"G" + small[start + 1 :],  # not a hex digit
        (FormatError, IntegrityError),
    )


def test_header_without_its_hash_member(reject: Callable[..., Any]) -> None:
    h = base_header()
    del h["hash"]
    reject(frame(json.dumps(h)), FormatError)
    moved = {**{k: v for k, v in base_header().items() if k != "hash"}, "hash": "0" * 64}
    reject(frame(json.dumps(moved)), FormatError)


# -- buffers: offsets, sizes, references ------------------------------------------------------

A10 = np.arange(10.0)
I20 = np.arange(20, dtype="<i4")


def two_buffers(**kw: Any) -> bytes:
    root = {"a": nd("<f8", [10], 0), "b": nd("<i4", [20], 1)}
    return craft(root, [A10.tobytes(), I20.tobytes()], **kw)


def test_crafted_two_buffer_file_loads() -> None:
    """Positive control for the buffer cases below."""
    got = modelsafe.loads(two_buffers())
    assert deep_equal(got, {"a": A10, "b": I20})


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(h: dict[str, Any]) -> None:
        target = h
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value

    return edit


def _del(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda h: h.pop(key)  # type: ignore[no-any-return]


def _grow_data(extra: int) -> bytes:
    blob = two_buffers()
    return rewrite(blob, _set(("data_size",), split(blob).header["data_size"] + extra)) + bytes(
        extra
    )


BUFFER_CASES: dict[str, Callable[[], bytes]] = {
    "negative offset": lambda: two_buffers(edit=_set(("buffers", 1, 0), -64)),
    "overlapping buffers": lambda: two_buffers(edit=_set(("buffers", 1, 0), 0)),
    "unaligned offset": lambda: two_buffers(edit=_set(("buffers", 1, 0), 80)),
    "offset 32 past a 64-byte boundary": lambda: two_buffers(edit=_set(("buffers", 1, 0), 96)),
    "offset past the file": lambda: two_buffers(edit=_set(("buffers", 1, 0), 1 << 40)),
    "offset leaves a hole": lambda: _hole(),
    "offset is a float": lambda: two_buffers(edit=_set(("buffers", 1, 0), 128.0)),
    "offset is a bool": lambda: two_buffers(edit=_set(("buffers", 0, 0), False)),
    "offset is a string": lambda: two_buffers(edit=_set(("buffers", 1, 0), "128")),
    "size larger than stored": lambda: two_buffers(edit=_set(("buffers", 0, 1), 88)),
    "size smaller than stored": lambda: two_buffers(edit=_set(("buffers", 0, 1), 72)),
    "size zero": lambda: two_buffers(edit=_set(("buffers", 0, 1), 0)),
    "size negative": lambda: two_buffers(edit=_set(("buffers", 0, 1), -80)),
    "size huge": lambda: two_buffers(edit=_set(("buffers", 0, 1), 1 << 62)),
    "array needs more than its buffer": lambda: craft(nd("<f8", [11], 0), [A10.tobytes()]),
    "array needs less than its buffer": lambda: craft(nd("<f8", [9], 0), [A10.tobytes()]),
    "missing buffer entry": lambda: craft(
        {"a": nd("<f8", [10], 0), "b": nd("<i4", [20], 1)}, [A10.tobytes()]
    ),
    "extra unreferenced buffer": lambda: craft(
        {"a": nd("<f8", [10], 0)}, [A10.tobytes(), I20.tobytes()]
    ),
    "buffer referenced twice": lambda: craft(
        {"a": nd("<f8", [10], 0), "b": nd("<f8", [10], 0)}, [A10.tobytes()]
    ),
    "buffer index out of range": lambda: craft(nd("<f8", [10], 5), [A10.tobytes()]),
    "buffer index negative": lambda: craft(nd("<f8", [10], -1), [A10.tobytes()]),
    "buffer index not an int": lambda: craft(nd("<f8", [10], "0"), [A10.tobytes()]),
    "array without its buffer": lambda: craft(nd("<f8", [10]), [A10.tobytes()]),
    "empty array with a buffer": lambda: craft(nd("<f8", [0], 0), [A10.tobytes()]),
    "entry with 4 items": lambda: two_buffers(edit=lambda h: h["buffers"][0].append("zstd")),
    "entry with 2 items": lambda: two_buffers(edit=lambda h: h["buffers"][0].pop()),
    "entry is an object": lambda: two_buffers(
        edit=_set(("buffers", 0), {"offset": 0, "size": 80, "digest": "0" * 64})
    ),
    "buffers is an object": lambda: two_buffers(edit=_set(("buffers",), {})),
    "digest upper case": lambda: two_buffers(
        edit=lambda h: h["buffers"][0].__setitem__(2, h["buffers"][0][2].upper())
    ),
    "digest too short": lambda: two_buffers(edit=_set(("buffers", 0, 2), "ab" * 16)),
    "digest not a string": lambda: two_buffers(edit=_set(("buffers", 0, 2), 0)),
    "digest algorithm sha256": lambda: two_buffers(edit=_set(("digest",), "sha256")),
    "data_size too large": lambda: two_buffers(edit=_set(("data_size",), 256 + 64)),
    "data_size too large, bytes added": lambda: _grow_data(64),
    "data_size too small": lambda: two_buffers(edit=_set(("data_size",), 128)),
    "data_size zero": lambda: two_buffers(edit=_set(("data_size",), 0)),
    "data_size negative": lambda: two_buffers(edit=_set(("data_size",), -256)),
    "data_size huge": lambda: two_buffers(edit=_set(("data_size",), 1 << 70)),
    "data_size a string": lambda: two_buffers(edit=_set(("data_size",), "256")),
    "data_size a float": lambda: two_buffers(edit=_set(("data_size",), 256.0)),
    "data_size a bool": lambda: craft([1], edit=_set(("data_size",), False)),
    "one trailing byte": lambda: two_buffers() + b"\0",
    "64 trailing bytes": lambda: two_buffers() + bytes(64),
    "trailing junk": lambda: two_buffers() + b"PK\x03\x04 a zip file follows",
}


def _hole() -> bytes:
    blob = two_buffers()
    p = split(blob)
    data = p.data[:128] + bytes(64) + p.data[128:]

    def edit(h: dict[str, Any]) -> None:
        h["buffers"][1][0] = 192
        h["data_size"] = len(data)

    return rewrite(blob, edit, data=data, fix_digests=True)


@pytest.mark.parametrize("case", list(BUFFER_CASES))
def test_bad_buffer_layout_is_a_format_error(case: str, reject: Callable[..., Any]) -> None:
    reject(BUFFER_CASES[case](), FormatError)


# -- compressed buffers ----------------------------------------------------------------------

RAW = (np.arange(5000, dtype=np.uint8) % 7).tobytes()


def compressed_bytes_node(
    comp: bytes, codec: str, raw_size: Any, *, node: Any = None, **kw: Any
) -> bytes:
    def edit(h: dict[str, Any]) -> None:
        h["buffers"][0] += [codec, raw_size]

    return craft(node or {"$": "bytes", "buf": 0}, [comp], edit=edit, **kw)


ZSTD = zstandard.ZstdCompressor(write_content_size=True).compress(RAW)
LZ4 = lz4.frame.compress(RAW, store_size=True)


def test_crafted_compressed_files_load() -> None:
    assert modelsafe.loads(compressed_bytes_node(ZSTD, "zstd", len(RAW))) == RAW
    assert modelsafe.loads(compressed_bytes_node(LZ4, "lz4", len(RAW))) == RAW
    arr = nd("|u1", [len(RAW)], 0)
    got = modelsafe.loads(compressed_bytes_node(ZSTD, "zstd", len(RAW), node=arr))
    assert got.tobytes() == RAW


def _corrupt(comp: bytes) -> bytes:
    b = bytearray(comp)
    for i in range(len(b) // 2, len(b) // 2 + 8):
        b[i] ^= 0x5A
    return bytes(b)


COMPRESSED_CASES: dict[str, Callable[[], bytes]] = {
    "zstd raw_size too small": lambda: compressed_bytes_node(ZSTD, "zstd", len(RAW) - 1),
    "zstd raw_size too large": lambda: compressed_bytes_node(ZSTD, "zstd", len(RAW) + 1),
    "lz4 raw_size too small": lambda: compressed_bytes_node(LZ4, "lz4", len(RAW) - 1),
    "lz4 raw_size too large": lambda: compressed_bytes_node(LZ4, "lz4", len(RAW) + 1),
    "zstd frame without content size": lambda: compressed_bytes_node(
        zstandard.ZstdCompressor(write_content_size=False).compress(RAW), "zstd", len(RAW)
    ),
    "corrupt zstd stream, digest matching": lambda: compressed_bytes_node(
        _corrupt(ZSTD), "zstd", len(RAW)
    ),
    "corrupt lz4 stream, digest matching": lambda: compressed_bytes_node(
        _corrupt(LZ4), "lz4", len(RAW)
    ),
    "zstd frame followed by a second frame with content": lambda: compressed_bytes_node(
        ZSTD + ZSTD, "zstd", len(RAW)
    ),
    "lz4 frame followed by a second frame": lambda: compressed_bytes_node(
        LZ4 + LZ4, "lz4", len(RAW)
    ),
    "zstd bytes labelled lz4": lambda: compressed_bytes_node(ZSTD, "lz4", len(RAW)),
    "raw bytes labelled zstd": lambda: compressed_bytes_node(RAW, "zstd", len(RAW)),
    "array size differs from raw_size": lambda: compressed_bytes_node(
        ZSTD, "zstd", len(RAW), node=nd("|u1", [len(RAW) + 1], 0)
    ),
}
HEADER_COMPRESSED_CASES: dict[str, Callable[[], bytes]] = {
    "unknown codec": lambda: compressed_bytes_node(ZSTD, "gzip", len(RAW)),
    "codec not a string": lambda: compressed_bytes_node(ZSTD, 1, len(RAW)),
    "raw_size negative": lambda: compressed_bytes_node(ZSTD, "zstd", -1),
    "raw_size a string": lambda: compressed_bytes_node(ZSTD, "zstd", str(len(RAW))),
    "raw_size a float": lambda: compressed_bytes_node(ZSTD, "zstd", float(len(RAW))),
}


@pytest.mark.parametrize("case", list(COMPRESSED_CASES))
def test_bad_compressed_data_is_a_format_error(case: str, reject: Callable[..., Any]) -> None:
    reject(COMPRESSED_CASES[case](), FormatError, entries=LOADERS_NO_MMAP)


@pytest.mark.parametrize("case", list(HEADER_COMPRESSED_CASES))
def test_bad_compression_entry_is_a_format_error(case: str, reject: Callable[..., Any]) -> None:
    reject(HEADER_COMPRESSED_CASES[case](), FormatError)


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
@pytest.mark.parametrize("mmap", ["r", "c"])
def test_mmap_of_a_compressed_file_says_why_not(codec: str, mmap: str, tmp_path: Path) -> None:
    obj = {"w": np.zeros(100_000), "x": np.arange(10)}
    path = modelsafe.save(obj, tmp_path / "c.msafe", compress=codec, fsync=False)
    with pytest.raises(MmapUnavailableError) as info:
        modelsafe.load(path, mmap=mmap)
    text = str(info.value)
    assert "compressed" in text and codec in text and "mmap" in text
    assert deep_equal(modelsafe.load(path), obj)  # without mmap it loads
    assert deep_equal(modelsafe.load(path, mmap=False), obj)


# -- the preamble ------------------------------------------------------------------------------


def _with_preamble(blob: bytes, **kw: Any) -> bytes:
    """``blob`` with preamble fields replaced; resealed unless the header length changed."""
    magic, version, n = PREAMBLE.unpack_from(blob)
    new = {"magic": magic, "version": version, "n": n, **kw}
    out = PREAMBLE.pack(new["magic"], new["version"], new["n"]) + blob[PREAMBLE.size :]
    if new["n"] != n:
        return out
    return seal(out[: PREAMBLE.size + n]) + out[PREAMBLE.size + n :]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x93MSAFE",
        MAGIC + b"\x01\x00" + b"\x00" * 7,
        b"\x93NUMPY\x01\x00" + bytes(56),
        b"PK\x03\x04" + bytes(60),
        b"\x80\x04\x95" + bytes(61),
        b"\x00" * 64,
    ],
    ids=["empty", "magic only", "15 bytes", "npy", "zip", "pickle", "zeros"],
)
def test_not_a_modelsafe_file(data: bytes, reject: Callable[..., Any]) -> None:
    reject(data, FormatError)


@pytest.mark.parametrize("magic", [b"\x93msafe", b"\x94MSAFE", b"MSAFE\x93", b"\x93MSAF\x00"])
def test_wrong_magic(small: bytes, magic: bytes, reject: Callable[..., Any]) -> None:
    reject(_with_preamble(small, magic=magic), FormatError, match="not a modelsafe file")


@pytest.mark.parametrize("version", [modelsafe.FORMAT_VERSION + 1, 255, 65535])
def test_newer_format_version_asks_to_upgrade(
    small: bytes, version: int, reject: Callable[..., Any]
) -> None:
    for exc in reject(_with_preamble(small, version=version), FormatVersionError):
        assert isinstance(exc, FormatVersionError)
        assert exc.found == version
        assert "upgrade" in str(exc) and str(version) in str(exc)


def test_version_zero_is_a_format_error_not_a_version_error(
    small: bytes, reject: Callable[..., Any]
) -> None:
    for exc in reject(_with_preamble(small, version=0), FormatError):
        assert not isinstance(exc, FormatVersionError), "version 0 is not 'newer'"


@pytest.mark.parametrize(
    "n",
    [
        1 << 63,
        (1 << 64) - 1,
        (1 << 30) - 16,  # aligned, at most the header limit, far beyond the file
        (1 << 40) - 16,
    ],
    ids=["2**63", "2**64-1", "1GiB", "1TiB"],
)
def test_huge_header_length(small: bytes, n: int, reject: Callable[..., Any]) -> None:
    reject(_with_preamble(small, n=n), FormatError)


@pytest.mark.parametrize("delta", [-1, 1, 8, -64, 64, 128])
def test_header_length_off(small: bytes, delta: int, reject: Callable[..., Any]) -> None:
    n = split(small).header_len
    # A wrong but aligned length makes the header other bytes: malformed, or (when the
    # header is sealed) failing its hash. Either way a clean ModelSafeError.
    reject(_with_preamble(small, n=n + delta), (FormatError, IntegrityError))


# -- the header as JSON --------------------------------------------------------------------------


def base_header(**changes: Any) -> dict[str, Any]:
    h: dict[str, Any] = {
        "digest": "blake3",
        "data_size": 0,
        "buffers": [],
        "meta": {"producer": "crafted"},
        "types": [],
        "root": [1, 2, 3],
    }
    h.update(changes)
    return sealed(h)


def test_crafted_minimal_header_loads() -> None:
    assert modelsafe.loads(frame(base_header())) == [1, 2, 3]
    assert modelsafe.loads(frame(header_bytes(base_header(root="@r@"), r="[1,2,3]"))) == [1, 2, 3]


NOT_JSON: dict[str, bytes] = {
    "binary": bytes(range(256)),
    "open brace": b"{",
    "trailing garbage": json.dumps(base_header()).encode() + b"}",
    "invalid utf-8 in a string": json.dumps(base_header(root="@r@"))
    .encode()
    .replace(b'"@r@"', b'"\xff\xfe"'),
    "lone utf-8 continuation byte": b"{\x80}",
    "single quotes": json.dumps(base_header()).replace('"', "'").encode(),
    "utf-16 encoded": json.dumps(base_header()).encode("utf-16-le"),
    "utf-8 with byte order mark": b"\xef\xbb\xbf" + json.dumps(base_header()).encode(),
    "a JSON array": b"[]",
    "a JSON string": b'"header"',
    "a JSON number": b"1",
    "JSON null": b"null",
    "empty": b"",
    "NaN in the root": header_bytes(base_header(root="@r@"), r="[NaN]"),
    "Infinity in the root": header_bytes(base_header(root="@r@"), r="[1, Infinity]"),
    "-Infinity in the meta": header_bytes(base_header(meta="@m@"), m='{"x": -Infinity}'),
    "NaN as data_size": header_bytes(base_header(data_size="@d@"), d="NaN"),
    "100000 nested lists in the root": header_bytes(
        base_header(root="@r@"), r="[" * 100_000 + "]" * 100_000
    ),
    "100000 nested objects in the meta": header_bytes(
        base_header(meta="@m@"), m='{"a":' * 100_000 + "1" + "}" * 100_000
    ),
}


@pytest.mark.parametrize("case", list(NOT_JSON))
def test_header_that_is_not_a_json_object(case: str, reject: Callable[..., Any]) -> None:
    body = NOT_JSON[case]
    pad = b" \x00" if case == "utf-16 encoded" else b" "
    reject(frame(body, pad=pad), FormatError)


def test_duplicate_members_are_refused_or_the_last_one_wins(tmp_path: Path) -> None:
    """docs/format.md 3.1: readers SHOULD reject duplicate member names; one that accepts
    them MUST use the last occurrence, like every other reader of the format."""
    blob = frame(header_bytes(base_header(root="@r@"), r='[1], "root": [2]'))
    path = tmp_path / "dup.msafe"
    path.write_bytes(blob)
    for name, fn in EVERYWHERE.items():
        try:
            got = fn(blob, path)
        except FormatError:
            continue
        if name.startswith("load"):
            assert got == [2], f"{name} used the first 'root'"
        elif name.startswith("inspect"):
            assert got.tree == [2], f"{name} shows the first 'root'"


# -- how many values the header may hold (docs/format.md §8) -----------------------------------


def _structure_by_lexing(text: str) -> int:
    """[ { , : outside strings, counted by a JSON lexer written out character by character."""
    count, i, inside = 0, 0, False
    while i < len(text):
        c = text[i]
        if inside and c == "\\":
            i += 2  # the escaped character, whatever it is
            continue
        if c == '"':
            inside = not inside
        elif not inside and c in ",:[{":
            count += 1
        i += 1
    return count


_TRICKY = st.text(alphabet=st.sampled_from(list('ab,:[]{}"\\\n\u00e9\U0001f600')), max_size=8)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY, inner, max_size=4),
    max_leaves=30,
)


@given(value=_JSON_VALUES, ascii_only=st.booleans(), spaced=st.booleans())
@settings(max_examples=400, deadline=None)
def test_the_header_structure_is_counted_as_a_json_lexer_reads_it(
    value: Any, ascii_only: bool, spaced: bool
) -> None:
    """Keys and strings full of , : [ {, quotes and backslashes: only what is outside the
    strings counts, for bytes and for str."""
    text = json.dumps(value, ensure_ascii=ascii_only, separators=None if spaced else (",", ":"))
    expected = _structure_by_lexing(text)
    for given_as in (text, text.encode("utf-8")):
        assert json_structure(given_as, -1) == expected  # -1: always counted exactly
    # The limit: None at or under it, the count over it.
    assert json_structure(text, expected) is None
    if expected:
        assert json_structure(text, expected - 1) == expected


@given(value=_JSON_VALUES, tail=st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_what_follows_valid_json_never_lowers_its_count(value: Any, tail: bytes) -> None:
    """A parser builds values only up to its first error, so the count of a text must
    cover its valid prefix whatever follows it (stray quotes and backslashes included)."""
    text = json.dumps(value, separators=(",", ":")).encode()
    assert json_structure(text + tail, -1) >= _structure_by_lexing(text.decode())


def test_the_exact_count_carries_a_string_across_its_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("modelsafe._container.layout._CHUNK", 7)
    for text in ['["a,b,c,d,e,f,g,h,i,j",[1,2]]', '{"k\\\\":"\\",,,,,,,,,,,,","x":[]}']:
        assert json_structure(text, -1) == _structure_by_lexing(text)


def _list_of(n: int, item: str) -> bytes:
    return frame(header_bytes(base_header(root="@r@"), r="[" + ",".join([item] * n) + "]"))


def test_the_value_limit_is_exact() -> None:
    """A header of exactly the limit loads; one more value is a FormatError (a lower limit
    here, the default one below)."""
    fixed = _structure_by_lexing(header_bytes(base_header(root=[])).decode())
    limit = fixed + 2 * 500 - 1  # 500 items "[]": a '[' each, and the ',' between them
    at = _list_of(500, "[]")
    limits = Limits(max_header_values=limit)
    assert len(parse_container(at, limits=limits).header["root"]) == 500
    with pytest.raises(FormatError, match=rf"has {limit + 2} JSON values .* limit of {limit}$"):
        parse_container(_list_of(501, "[]"), limits=limits)


@pytest.mark.parametrize("item", ["[]", "{}", '{"a":[]}'])
def test_a_header_of_millions_of_empty_containers_is_refused_before_it_is_parsed(
    item: str, reject: Callable[..., Any]
) -> None:
    """3 bytes of JSON ("[],") make ~150 bytes of Python objects: 16.8 million values
    (24 to 34 MiB of JSON) would need ~2.5 GB and ~20 s; every entry point refuses them."""
    n = (1 << 24) // (1 + sum(map(item.count, ",:[{")))
    reject(_list_of(n, item), FormatError, match="over the limit of 8388608")


def test_a_header_over_the_limits_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """save and dumps refuse a header a reader would refuse (lower limits here, to keep the
    test small); the file being replaced stays as it was, and no temporary file is left."""
    path = tmp_path / "model.msafe"
    modelsafe.save([1, 2, 3], path)
    before = path.read_bytes()
    monkeypatch.setattr(
        "modelsafe._container.writer.DEFAULT_LIMITS",
        Limits(max_header_values=1000, max_header_bytes=8192),
    )
    tuples = [(i, i + 1) for i in range(200)]  # 7 values each
    with pytest.raises(FormatError, match=r"JSON values and keys, over the 1000 a reader"):
        modelsafe.save(tuples, path)
    with pytest.raises(FormatError, match=r"a header of \d+ bytes, over the 8192 a reader"):
        modelsafe.save("x" * 9000, path)
    with pytest.raises(FormatError, match="JSON values and keys"):
        modelsafe.dumps(tuples)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.msafe"]
    assert modelsafe.loads(modelsafe.dumps(tuples[:100])) == tuples[:100]  # under it: fine


@pytest.mark.parametrize("key", ["digest", "data_size", "buffers", "types", "root"])
def test_header_missing_a_key(key: str, reject: Callable[..., Any]) -> None:
    h = base_header()
    del h[key]
    reject(frame(h), FormatError)


@pytest.mark.parametrize(
    "change",
    [
        {"digest": None},
        {"data_size": None},
        {"buffers": None},
        {"types": None},
        {"types": "builtins.tuple"},
        {"types": [1]},
        {"meta": []},
        {"meta": "meta"},
    ],
    ids=repr,
)
def test_header_member_of_the_wrong_type(
    change: dict[str, Any], reject: Callable[..., Any]
) -> None:
    reject(frame(base_header(**change)), FormatError)


# -- nesting ---------------------------------------------------------------------------------------


def _nested(kind: str, depth: int) -> str:
    inner = "1"
    opens = {
        "list": ("[", "]"),
        "dict": ('{"k":', "}"),
        "tuple": ('{"$":"tuple","v":[', "]}"),
        "dict node": ('{"$":"dict","v":[["k",', "]]}"),
    }[kind]
    return opens[0] * depth + inner + opens[1] * depth


@pytest.mark.parametrize("kind", ["list", "dict", "tuple", "dict node"])
def test_tree_deeper_than_the_limit(kind: str, reject: Callable[..., Any]) -> None:
    types = ["builtins.tuple"] if kind == "tuple" else []
    blob = craft(None, types=types, root_raw=_nested(kind, 250))
    reject(blob, FormatError)
    shallow = craft(None, types=types, root_raw=_nested(kind, 20))
    modelsafe.loads(shallow)  # the same shape, shallow, is fine


def _deepest_saveable(make: Callable[[Any], Any]) -> tuple[int, bytes]:
    """The deepest nesting of ``make`` that ``dumps`` accepts (up to 400), and its bytes."""

    def attempt(depth: int) -> bytes | None:
        x: Any = 1
        for _ in range(depth):
            x = make(x)
        try:
            return modelsafe.dumps(x)
        except modelsafe.UnsupportedTypeError:
            return None

    lo, hi = 0, 400  # dumps accepts depth lo; binary search for the largest depth it accepts
    best = attempt(lo)
    assert best is not None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        blob = attempt(mid)
        if blob is None:
            hi = mid - 1
        else:
            lo, best = mid, blob
    return lo, best


@pytest.mark.parametrize(
    "kind",
    ["list", "dict", "tuple", "frozenset", "non-str dict"],
)
def test_every_nesting_dumps_accepts_loads_back(kind: str) -> None:
    make: Callable[[Any], Any] = {
        "list": lambda x: [x],
        "dict": lambda x: {"k": x},
        "tuple": lambda x: (x,),
        "frozenset": lambda x: frozenset([x]),
        "non-str dict": lambda x: {1: x},
    }[kind]
    depth, blob = _deepest_saveable(make)
    assert depth >= 100, f"dumps refuses {kind}s nested only {depth + 1} deep"
    try:
        modelsafe.loads(blob)
    except FormatError as exc:
        pytest.fail(f"dumps wrote {depth} nested {kind}s, loads refuses them: {exc}")


# -- trust -------------------------------------------------------------------------------------


def _system(marker: Path) -> dict[str, Any]:
    return {"$": "call", "module": "os", "name": "system", "args": [f"touch {marker}"]}


def test_os_system_call_is_untrusted_and_never_runs(
    tmp_path: Path, reject: Callable[..., Any]
) -> None:
    marker = tmp_path / "MARKER"
    blob = craft({"model": [_system(marker)]})
    for exc in reject(blob, UntrustedTypesError, entries=LOADERS):
        assert exc.types == ["os.system"]
        assert "os.system" in str(exc)
    assert modelsafe.untrusted_types(blob) == ["os.system"]
    assert modelsafe.inspect(blob).untrusted == ["os.system"]
    for trusted in (["os.system"], "os.system", ["os"], ["posix.system"]):
        with pytest.raises(ValueError, match=r"refusing|look like"):
            modelsafe.loads(blob, trusted=trusted)
    assert not marker.exists()


def test_types_list_that_hides_a_name_is_a_format_error(
    tmp_path: Path, reject: Callable[..., Any]
) -> None:
    marker = tmp_path / "MARKER"
    root = [1.5, _system(marker)]
    for types in ([], ["builtins.len"], ["os.system", "zzz.extra"], ["os.system", "os.system"]):
        reject(craft(root, types=types), FormatError, match="types")
    two = {"a": {"$": "tuple", "v": [1]}, "b": _system(marker)}
    unsorted = _set(("types",), ["os.system", "builtins.tuple"])
    reject(craft(two, edit=unsorted), FormatError)
    assert not marker.exists()


# name -> (root, the untrusted names the error and untrusted_types must list)
UNTRUSTED: dict[str, tuple[Any, list[str]]] = {
    "Counter instance": (
        {"$": "obj", "module": "collections", "name": "Counter"},
        ["collections.Counter"],
    ),
    "eval as a value": ({"$": "global", "module": "builtins", "name": "eval"}, ["builtins.eval"]),
    "getattr call": (
        {"$": "call", "module": "builtins", "name": "getattr", "args": [1, "real"]},
        ["builtins.getattr"],
    ),
    "object is a value, not something to construct": (
        {"$": "obj", "module": "builtins", "name": "object"},
        ["builtins.object"],
    ),
    "numpy.sum is a value, not something to call": (
        {"$": "call", "module": "numpy", "name": "sum", "args": [[1, 2]]},
        ["numpy.sum"],
    ),
    "ndarray.__new__ through obj": (
        {"$": "obj", "module": "numpy", "name": "ndarray", "args": [[3]]},
        ["numpy.ndarray"],
    ),
    "dotted name reaching os through numpy": (
        {"$": "global", "module": "numpy", "name": "os.system"},
        ["numpy.os.system"],
    ),
    "defaultdict factory that is not trusted": (
        {"$": "ddict", "factory": {"$": "global", "module": "os", "name": "getcwd"}, "v": []},
        ["os.getcwd"],
    ),
    "untrusted deep inside trusted containers": (
        {"a": [{"$": "tuple", "v": [{"$": "obj", "module": "mypkg.sub", "name": "Evil"}]}]},
        ["mypkg.sub.Evil"],
    ),
}


@pytest.mark.parametrize("case", list(UNTRUSTED))
def test_untrusted_names_are_refused(case: str, reject: Callable[..., Any]) -> None:
    root, expected = UNTRUSTED[case]
    blob = craft(root)
    for exc in reject(blob, UntrustedTypesError, entries=LOADERS):
        assert exc.types == expected
        assert all(t in str(exc) for t in expected)
    assert modelsafe.untrusted_types(blob) == expected
    assert modelsafe.inspect(blob).untrusted == expected


def test_trusting_a_name_explicitly_loads_it() -> None:
    blob = craft({"$": "obj", "module": "collections", "name": "Counter"})
    with pytest.raises(UntrustedTypesError):
        modelsafe.loads(blob)
    import collections

    assert modelsafe.loads(blob, trusted=["collections.Counter"]) == collections.Counter()


@pytest.mark.parametrize("trusted", [True, False])
def test_trusted_true_is_a_type_error(trusted: bool, small: bytes, tmp_path: Path) -> None:
    path = tmp_path / "f.msafe"
    path.write_bytes(small)
    with pytest.raises(TypeError, match="list the names"):
        modelsafe.load(path, trusted=trusted)
    with pytest.raises(TypeError, match="list the names"):
        modelsafe.loads(small, trusted=trusted)


@pytest.mark.parametrize(
    "name",
    ["os.system", "subprocess.Popen", "builtins.eval", "builtins.exec", "pickle.loads", "sys.exit"],
)
def test_dangerous_names_cannot_be_trusted(name: str, small: bytes, tmp_path: Path) -> None:
    path = tmp_path / "f.msafe"
    path.write_bytes(small)
    with pytest.raises(ValueError, match="refusing"):
        modelsafe.load(path, trusted=[name])
    with pytest.raises(ValueError, match="refusing"):
        modelsafe.loads(small, trusted=["collections.Counter", name])


# -- the object tree ---------------------------------------------------------------------------


TREE_CASES: dict[str, Any] = {
    # references
    "ref to an undefined id": {"$": "ref", "id": 0},
    "ref before its target": [{"$": "ref", "id": 0}, {"$": "list", "id": 0, "v": []}],
    "duplicate ids": [{"$": "list", "id": 0, "v": []}, {"$": "list", "id": 0, "v": []}],
    "duplicate ids on different kinds": [
        {"$": "set", "id": 3, "v": []},
        {"$": "dict", "id": 3, "v": []},
    ],
    "tuple containing itself": {"$": "tuple", "id": 0, "v": [{"$": "ref", "id": 0}]},
    "frozenset containing itself": {"$": "frozenset", "id": 0, "v": [{"$": "ref", "id": 0}]},
    "ref id is a string": [{"$": "list", "id": 0, "v": []}, {"$": "ref", "id": "0"}],
    "ref id is a bool": [{"$": "list", "id": 1, "v": []}, {"$": "ref", "id": True}],
    "negative id": {"$": "list", "id": -1, "v": []},
    "ref with an extra member": [{"$": "list", "id": 0, "v": []}, {"$": "ref", "id": 0, "x": 1}],
    "list node without an id": {"$": "list", "v": []},
    # node kinds
    "unknown tag": {"$": "evil", "v": 1},
    "tag is not a string": {"$": 5},
    "tag is a list": {"$": ["nd"]},
    "tuple items not a list": {"$": "tuple", "v": "abc"},
    "dict pairs not pairs": {"$": "dict", "v": [[1, 2, 3]]},
    "complex of strings": {"$": "complex", "v": ["1", "2"]},
    "range of floats": {"$": "range", "v": [0, 1.5, 1]},
    "special float NaN spelled wrong": {"$": "float", "v": "NaN"},
    # big ints
    "big int with bad hex": {"$": "int", "hex": "xyz"},
    "big int with 0x prefix": {"$": "int", "hex": "0x10"},
    "big int upper case": {"$": "int", "hex": "FF"},
    "big int empty": {"$": "int", "hex": ""},
    "big int just a sign": {"$": "int", "hex": "-"},
    "big int with spaces": {"$": "int", "hex": " 10"},
    "big int not a string": {"$": "int", "hex": 16},
    "big int with an extra member": {"$": "int", "hex": "10", "base": 16},
    # base64
    "bytes: invalid base64": {"$": "bytes", "b64": "!!!!"},
    "bytes: bad base64 padding": {"$": "bytes", "b64": "abc"},
    "bytes: non-ascii base64": {"$": "bytes", "b64": "é="},
    "bytes: base64 not a string": {"$": "bytes", "b64": 5},
    "bytes: both b64 and buf": {"$": "bytes", "b64": "", "buf": 0},
    "numpy scalar: short base64": {"$": "npscalar", "dtype": "<f8", "b64": "AAAAAA=="},
    "numpy scalar: invalid base64": {"$": "npscalar", "dtype": "<f8", "b64": "*" * 12},
    "numpy scalar: object dtype": {"$": "npscalar", "dtype": "|O", "b64": "AAAAAAAAAAA="},
    # names
    "module name with a semicolon": {"$": "global", "module": "os;x", "name": "y"},
    "empty name": {"$": "global", "module": "numpy", "name": ""},
    "name with two dots": {"$": "global", "module": "numpy", "name": "a..b"},
    "module not a string": {"$": "global", "module": ["numpy"], "name": "sum"},
    "obj args not a list": {"$": "obj", "module": "a", "name": "B", "args": "x"},
}


@pytest.mark.parametrize("case", list(TREE_CASES))
def test_malformed_tree_is_a_format_error(case: str, reject: Callable[..., Any]) -> None:
    root = TREE_CASES[case]
    try:
        types = used_types(root)
    except Exception:  # the node is too broken to name its types
        types = []
    reject(craft(root, [b"\0" * 8] if case.endswith("b64 and buf") else [], types=types))


def test_self_references_that_are_legal_load() -> None:
    """Positive control for the reference cases: a list may contain itself."""
    got = modelsafe.loads(craft({"$": "list", "id": 0, "v": [1, {"$": "ref", "id": 0}]}))
    assert got[0] == 1 and got[1] is got
    got = modelsafe.loads(craft({"$": "int", "hex": "-" + "f" * 40}))
    assert got == -(16**40 - 1)


BUILD_CASES: dict[str, Any] = {
    "set containing itself": {"$": "set", "id": 0, "v": [{"$": "ref", "id": 0}]},
    "dict with a list as key": {"$": "dict", "v": [[[1], 2]]},
    "datetime that is not a date": {"$": "datetime", "v": "yesterday"},
    "timedelta too large": {"$": "timedelta", "v": [10**12, 0, 0]},
}


@pytest.mark.parametrize("case", list(BUILD_CASES))
def test_values_that_cannot_be_built_are_format_errors(
    case: str, reject: Callable[..., Any]
) -> None:
    reject(craft(BUILD_CASES[case]), FormatError, entries=LOADERS)


# -- packed scalars --------------------------------------------------------------------------


def i8(*xs: int) -> bytes:
    return np.array(xs, dtype="<i8").tobytes()


def f8(*xs: float) -> bytes:
    return np.array(xs, dtype="<f8").tobytes()


def test_packed_scalars_positive_control() -> None:
    node = {"$": "scalars", "n": 6, "codes": 0, "ints": 1, "floats": 2, "strs": ["s"]}
    got = modelsafe.loads(craft(node, [bytes([0, 1, 2, 3, 4, 5]), i8(7), f8(0.5)]))
    assert got == [None, False, True, 7, 0.5, "s"]
    assert modelsafe.loads(craft({"$": "scalars", "n": 2, "kind": "int", "ints": 0}, [i8(1, 2)]))
    # strings as one UTF-8 buffer split at U+0000, with kind and with codes
    text = "é\x00\x00z".encode()
    assert modelsafe.loads(craft({"$": "scalars", "n": 3, "kind": "str", "strs": 0}, [text])) == [
        "é",
        "",
        "z",
    ]
    node = {"$": "scalars", "n": 4, "codes": 0, "strs": 1}
    assert modelsafe.loads(craft(node, [bytes([5, 0, 5, 5]), text])) == ["é", None, "", "z"]


SCALARS_HEADER_CASES: dict[str, tuple[dict[str, Any], list[bytes]]] = {
    "kind int with a floats column": (
        {"$": "scalars", "n": 2, "kind": "int", "floats": 0},
        [f8(1, 2)],
    ),
    "kind int, n disagrees with the buffer": (
        {"$": "scalars", "n": 3, "kind": "int", "ints": 0},
        [i8(1, 2)],
    ),
    "kind str, n disagrees with strs": ({"$": "scalars", "n": 3, "kind": "str", "strs": ["a"]}, []),
    "kind str, strs is null": ({"$": "scalars", "n": 0, "kind": "str", "strs": None}, []),
    "kind str, strs holds a number": ({"$": "scalars", "n": 1, "kind": "str", "strs": [1]}, []),
    "unknown kind": ({"$": "scalars", "n": 1, "kind": "bool", "ints": 0}, [i8(1)]),
    "kind is a list": ({"$": "scalars", "n": 1, "kind": ["int"], "ints": 0}, [i8(1)]),
    "both kind and codes": (
        {"$": "scalars", "n": 1, "kind": "int", "codes": 0, "ints": 1},
        [bytes([3]), i8(1)],
    ),
    "neither kind nor codes": ({"$": "scalars", "n": 1, "ints": 0}, [i8(1)]),
    "codes shorter than n": ({"$": "scalars", "n": 4, "codes": 0}, [bytes([0, 0, 0])]),
    "n negative": ({"$": "scalars", "n": -1, "kind": "str", "strs": []}, []),
    "n a string": ({"$": "scalars", "n": "1", "kind": "str", "strs": ["a"]}, []),
    "n enormous": ({"$": "scalars", "n": 1 << 40, "kind": "int", "ints": 0}, [i8(1)]),
    "strs is a float": ({"$": "scalars", "n": 1, "kind": "str", "strs": 0.0}, [b"a"]),
    "strs buffer out of range": ({"$": "scalars", "n": 1, "kind": "str", "strs": 5}, [b"a"]),
    "strs buffer is the codes buffer": (
        {"$": "scalars", "n": 1, "codes": 0, "strs": 0},
        [bytes([5])],
    ),
}
SCALARS_DATA_CASES: dict[str, tuple[dict[str, Any], list[bytes]]] = {
    "codes say 3 ints, the column holds 2": (
        {"$": "scalars", "n": 3, "codes": 0, "ints": 1},
        [bytes([3, 3, 3]), i8(1, 2)],
    ),
    "codes say 1 int, the column holds 2": (
        {"$": "scalars", "n": 1, "codes": 0, "ints": 1},
        [bytes([3]), i8(1, 2)],
    ),
    "codes say floats, there is no column": (
        {"$": "scalars", "n": 2, "codes": 0},
        [bytes([4, 4])],
    ),
    "codes say 2 strings, strs holds 1": (
        {"$": "scalars", "n": 2, "codes": 0, "strs": ["a"]},
        [bytes([5, 5])],
    ),
    "unknown code": ({"$": "scalars", "n": 2, "codes": 0}, [bytes([0, 9])]),
    "strs buffer: invalid UTF-8": ({"$": "scalars", "n": 1, "kind": "str", "strs": 0}, [b"\xff"]),
    "strs buffer: a lone surrogate": (
        {"$": "scalars", "n": 1, "kind": "str", "strs": 0},
        ["\ud800".encode("utf-8", "surrogatepass")],
    ),
    "strs buffer: 3 strings, n says 2": (
        {"$": "scalars", "n": 2, "kind": "str", "strs": 0},
        [b"a\x00b\x00c"],
    ),
    "strs buffer: 1 string, n enormous": (
        {"$": "scalars", "n": 1 << 40, "kind": "str", "strs": 0},
        [b"a"],
    ),
    "codes say 2 strings, the strs buffer holds 3": (
        {"$": "scalars", "n": 2, "codes": 0, "strs": 1},
        [bytes([5, 5]), b"a\x00b\x00c"],
    ),
    "code 255": ({"$": "scalars", "n": 1, "codes": 0}, [bytes([255])]),
    "ints column not a multiple of 8": (
        {"$": "scalars", "n": 1, "codes": 0, "ints": 1},
        [bytes([3]), b"\x01" * 7],
    ),
}


@pytest.mark.parametrize("case", list(SCALARS_HEADER_CASES))
def test_packed_scalars_header_disagreements(case: str, reject: Callable[..., Any]) -> None:
    node, buffers = SCALARS_HEADER_CASES[case]
    reject(craft(node, buffers, types=[]), FormatError)


@pytest.mark.parametrize("case", list(SCALARS_DATA_CASES))
def test_packed_scalars_data_disagreements(case: str, reject: Callable[..., Any]) -> None:
    node, buffers = SCALARS_DATA_CASES[case]
    reject(craft(node, buffers, types=[]), FormatError, entries=LOADERS)


# -- packed dicts (sdict: str keys, packed scalar values) --------------------------------------

_INTS2 = {"$": "scalars", "n": 2, "kind": "int", "ints": 1}


def test_packed_dict_positive_control() -> None:
    node = {"$": "sdict", "keys": 0, "v": _INTS2}
    assert modelsafe.loads(craft(node, [b"a\x00b", i8(1, 2)])) == {"a": 1, "b": 2}
    node = {"$": "sdict", "keys": ["x", "y"], "v": {**_INTS2, "ints": 0}}
    assert modelsafe.loads(craft(node, [i8(3, 4)])) == {"x": 3, "y": 4}


_KEYS_AB = b"a\x00b"


def sd(keys: Any, v: Any = None, **extra: Any) -> dict[str, Any]:
    """An sdict node over ``keys``; ``v`` defaults to two int64s in buffer 0."""
    return {"$": "sdict", "keys": keys, "v": {**_INTS2, "ints": 0} if v is None else v, **extra}


SDICT_HEADER_CASES: dict[str, tuple[dict[str, Any], list[bytes]]] = {
    "no keys": ({"$": "sdict", "v": {**_INTS2, "ints": 0}}, [i8(1, 2)]),
    "no values": ({"$": "sdict", "keys": ["a", "b"]}, []),
    "values not a scalars node": (sd(["a", "b"], [1, 2]), []),
    "values a list node": (sd(["a"], {"$": "list", "v": [1], "id": 0}), []),
    "values carry an id": (sd(["a", "b"], {**_INTS2, "ints": 0, "id": 0}), [i8(1, 2)]),
    "keys list shorter than values": (sd(["a"]), [i8(1, 2)]),
    "keys hold a number": (sd(["a", 1]), [i8(1, 2)]),
    "keys a float": (sd(0.0), [i8(1, 2)]),
    "keys buffer out of range": (sd(7, _INTS2), [_KEYS_AB, i8(1, 2)]),
    "keys buffer is the values buffer": (sd(1, _INTS2), [_KEYS_AB, i8(1, 2)]),
    "unexpected member": (sd(0, _INTS2, x=1), [_KEYS_AB, i8(1, 2)]),
}
SDICT_DATA_CASES: dict[str, tuple[dict[str, Any], list[bytes]]] = {
    "3 keys for 2 values": (sd(0, _INTS2), [b"a\x00b\x00c", i8(1, 2)]),
    "1 key for 2 values": (sd(0, _INTS2), [b"a", i8(1, 2)]),
    "a repeated key": (sd(0, _INTS2), [b"a\x00a", i8(1, 2)]),
    "keys: invalid UTF-8": (sd(0, _INTS2), [b"\xff\x00b", i8(1, 2)]),
}


@pytest.mark.parametrize("case", list(SDICT_HEADER_CASES))
def test_packed_dict_header_disagreements(case: str, reject: Callable[..., Any]) -> None:
    node, buffers = SDICT_HEADER_CASES[case]
    reject(craft(node, buffers, types=[]), FormatError)


@pytest.mark.parametrize("case", list(SDICT_DATA_CASES))
def test_packed_dict_data_disagreements(case: str, reject: Callable[..., Any]) -> None:
    node, buffers = SDICT_DATA_CASES[case]
    reject(craft(node, buffers, types=[]), FormatError, entries=LOADERS)


# -- the small-array table ("arrays" member, nodes {"$": "nd", "t": k}) ----------------------


def record(
    dtype: int = 0, shape: tuple[int, ...] = (2,), *, buf: int = 0, at: int = 0, order: int = 0
) -> bytes:
    """One 20-byte table record: dtype u16, ndim u8, order u8, buf u32, at u32, 4 x u16 dims."""
    dims = (*shape, 0, 0, 0, 0)[:4]
    return struct.pack("<HBBII4H", dtype, len(shape), order, buf, at, *dims)


def tabled(
    rows: bytes | str,
    root: Any = None,
    *,
    dtypes: Any = ("<f8",),
    buffers: list[bytes] | None = None,
    arrays: Any = None,
) -> bytes:
    """A file whose small arrays live in the header's table, over one 32-byte buffer."""
    if root is None:
        root = {"a": {"$": "nd", "t": 0}, "b": {"$": "nd", "t": 1}}
    if arrays is None:
        text = rows if isinstance(rows, str) else base64.b64encode(rows).decode()
        arrays = {"dtypes": list(dtypes), "rows": text}
    buffers = [np.arange(4, dtype="<f8").tobytes()] if buffers is None else buffers
    return craft(root, buffers, types=["numpy.ndarray"], edit=_set(("arrays",), arrays))


TWO_ROWS = record(at=0) + record(at=16)


def t_nodes(*ks: Any) -> list[dict[str, Any]]:
    return [{"$": "nd", "t": k} for k in ks]


def test_table_positive_control() -> None:
    got = modelsafe.loads(tabled(TWO_ROWS))
    assert deep_equal(got, {"a": np.array([0.0, 1.0]), "b": np.array([2.0, 3.0])})
    got = modelsafe.loads(tabled(record(shape=(2, 2), order=1), {"$": "nd", "t": 0}))
    assert deep_equal(got, np.arange(4.0).reshape(2, 2, order="F"))


TABLE_CASES: dict[str, Callable[[], bytes]] = {
    "records overlap": lambda: tabled(record(shape=(4,)) + record(at=16)),
    "offset not 16-aligned": lambda: tabled(record() + record(at=8)),
    "record past the end of its buffer": lambda: tabled(record() + record(at=32)),
    "records out of order": lambda: tabled(record(at=16) + record(at=0)),
    "offset near 2**32": lambda: tabled(record() + record(at=2**32 - 16)),
    "dtype index beyond the list": lambda: tabled(record() + record(dtype=5, at=16)),
    "5 dimensions": lambda: tabled(record() + record(shape=(1, 1, 1, 1, 1), at=16)[:20]),
    "order 2": lambda: tabled(record() + record(at=16, order=2)),
    "a used dimension of 0": lambda: tabled(record() + record(shape=(0,), at=16)),
    "an unused dimension set": lambda: tabled(record() + record(at=16)[:-2] + b"\x01\x00"),
    "more than 4 KiB": lambda: tabled(
        record(shape=(513,)), {"$": "nd", "t": 0}, buffers=[bytes(4104)]
    ),
    "buffer index beyond the list": lambda: tabled(record() + record(buf=1, at=16)),
    "rows not base64": lambda: tabled("not base64!"),
    "rows not whole records": lambda: tabled(TWO_ROWS[:-1]),
    "rows empty": lambda: tabled(b"", [1]),
    "rows not a string": lambda: tabled(b"", arrays={"dtypes": ["<f8"], "rows": 5}),
    "dtypes empty": lambda: tabled(TWO_ROWS, dtypes=[]),
    "object dtype": lambda: tabled(TWO_ROWS, dtypes=["|O"]),
    "structured dtype": lambda: tabled(
        TWO_ROWS, dtypes=[{"names": ["a"], "formats": ["<f8"], "offsets": [0], "itemsize": 8}]
    ),
    "bad dtype": lambda: tabled(TWO_ROWS, dtypes=["<f3"]),
    "arrays not an object": lambda: tabled(b"", arrays=[["<f8"], ""]),
    "arrays without rows": lambda: tabled(b"", arrays={"dtypes": ["<f8"]}),
    "arrays with an extra member": lambda: tabled(
        b"", arrays={"dtypes": ["<f8"], "rows": base64.b64encode(TWO_ROWS).decode(), "x": 1}
    ),
    "record used twice": lambda: tabled(TWO_ROWS, t_nodes(0, 0)),
    "record never used": lambda: tabled(TWO_ROWS, t_nodes(0)),
    "record index out of range": lambda: tabled(
        TWO_ROWS, [{"$": "nd", "t": 0}, {"$": "nd", "t": 2}]
    ),
    "record index negative": lambda: tabled(TWO_ROWS, t_nodes(0, -1)),
    "record index a string": lambda: tabled(TWO_ROWS, t_nodes(0, "1")),
    "record node with a shape too": lambda: tabled(
        TWO_ROWS, [{"$": "nd", "t": 0}, {"$": "nd", "t": 1, "shape": [2]}]
    ),
    "record node without a table": lambda: craft({"$": "nd", "t": 0}, [bytes(16)]),
    "table buffer also used by a node": lambda: tabled(
        record(), [{"$": "nd", "t": 0}, nd("<f8", [4], 0)]
    ),
}


@pytest.mark.parametrize("case", list(TABLE_CASES))
def test_table_violations(case: str, reject: Callable[..., Any]) -> None:
    reject(TABLE_CASES[case](), FormatError)


def _table_outcome(table_module: Any, spec: dict[str, Any], sizes: list[int], few: bool) -> Any:
    """What Table makes of ``spec``: its per-record lists, or the error it raises."""
    from modelsafe._handlers.numpy import dtype_from_json

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(table_module, "_SMALL_TABLE", 10**9 if few else 0)
        try:
            t = table_module.Table(spec, sizes, lambda d: dtype_from_json(d, allow_object=False))
        except table_module.TableError as exc:
            return str(exc)
    return (t.dt, t.buf, t.at, t.end, t.fortran, t.shape, t.didx, t.buffers)


def test_small_tables_are_checked_in_python_by_the_same_rules() -> None:
    """Tables of up to 64 records are checked record by record in Python, larger ones with
    numpy: on 600 tables, valid and with one field of one record changed, both give the
    same records or the same error."""
    import modelsafe._graph.table as table_module

    rng = random.Random(0)
    dtypes = ["<f8", "<i4", "|u1", "<c16"]
    itemsize = [8, 4, 1, 16]
    outcomes = {"ok": 0, "error": 0}
    for _ in range(600):
        rows, sizes = [], []
        for b in range(rng.randint(1, 3)):
            at = 0
            for _k in range(rng.randint(1, 5)):
                d = rng.randrange(len(dtypes))
                shape = tuple(rng.randint(1, 6) for _ in range(rng.randint(0, 3)))
                rows.append([d, shape, b, at, rng.randint(0, 1)])
                at = (at + itemsize[d] * int(np.prod(shape)) + 15) // 16 * 16
            sizes.append(rows[-1][3] + itemsize[rows[-1][0]] * int(np.prod(rows[-1][1])))
        if rng.random() < 0.8:
            row = rng.choice(rows)
            which = rng.randrange(5)
            row[which] = {
                0: lambda: rng.choice([0, 3, 4, 65535]),
                1: lambda: rng.choice([(), (0,), (1, 1, 1, 1), (600,), (2, 3)]),
                2: lambda: rng.choice([0, 1, 2, 3]),
                3: lambda: rng.choice([0, 8, 16, 32, 4096, 2**32 - 16]),
                4: lambda: rng.choice([0, 1, 2, 255]),
            }[which]()
        raw = b"".join(
            record(d, shape, buf=b, at=at, order=o) if len(shape) <= 4 else record(d, shape[:4])
            for d, shape, b, at, o in rows
        )
        spec = {"dtypes": dtypes, "rows": base64.b64encode(raw).decode()}
        few = _table_outcome(table_module, spec, sizes, few=True)
        many = _table_outcome(table_module, spec, sizes, few=False)
        assert few == many, (rows, sizes)
        outcomes["error" if isinstance(few, str) else "ok"] += 1
    assert outcomes["ok"] > 100 and outcomes["error"] > 200, outcomes


# -- numpy random state: trusted by default, so its state must be checked ----------------------

_RNG_SCRIPT = """
import sys, modelsafe
try:
    rng = modelsafe.loads(open(sys.argv[1], "rb").read())
except modelsafe.ModelSafeError as exc:
    print("REFUSED", type(exc).__name__, exc)
    sys.exit(0)
print("LOADED", flush=True)
draw = getattr(rng, "random", None) or rng.random_raw
draw(1_000_000)
print("DREW")
"""


def _rng_case(obj: Any, edit: Callable[[dict[str, Any]], None]) -> bytes:
    return rewrite(modelsafe.dumps(obj), lambda h: edit(h["root"]))


RNG_CASES: dict[str, Callable[[], bytes]] = {
    "RandomState, MT19937 pos 10**8": lambda: _rng_case(
        np.random.RandomState(0), lambda r: r["state"]["state"].__setitem__("pos", 10**8)
    ),
    "RandomState, MT19937 pos negative": lambda: _rng_case(
        np.random.RandomState(0), lambda r: r["state"]["state"].__setitem__("pos", -(10**8))
    ),
    "Generator, Philox buffer_pos negative": lambda: _rng_case(
        np.random.Generator(np.random.Philox(0)),
        lambda r: r["state"].__setitem__("buffer_pos", -(10**8)),
    ),
}


@pytest.mark.parametrize("case", list(RNG_CASES))
def test_random_state_out_of_bounds_is_refused(case: str, tmp_path: Path) -> None:
    """A position outside the generator's buffer makes numpy read out of bounds later."""
    path = tmp_path / "rng.msafe"
    path.write_bytes(RNG_CASES[case]())
    proc = subprocess.run(
        [sys.executable, "-c", _RNG_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "REFUSED FormatError" in out, (
        f"exit code {proc.returncode}; a crafted generator state must be refused at load, "
        f"not crash the process when it is used:\n{out[-1500:]}"
    )


# -- huge shapes, bad dtypes and bombs: run under an address-space limit ----------------------


def _lz4_bomb(expanded: int) -> bytes:
    """An lz4 frame that does not declare its size, expanding to ``expanded`` zero bytes."""
    c = lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX4MB)
    chunk = bytes(1 << 24)
    parts = [c.begin()] + [c.compress(chunk) for _ in range(expanded // len(chunk))]
    return b"".join([*parts, c.flush()])


def _nested_dtype(depth: int) -> Any:
    spec: Any = "<f8"
    for _ in range(depth):
        spec = {"base": spec, "shape": [1]}
    return spec


def _arr(dtype: Any, shape: list[Any], nbytes: int = 80, **extra: Any) -> bytes:
    if nbytes:
        return craft(nd(dtype, shape, 0, **extra), [bytes(nbytes)], types=["numpy.ndarray"])
    return craft(nd(dtype, shape, **extra), types=["numpy.ndarray"])


STRUCT_OUTSIDE = {"names": ["a"], "formats": ["<f8"], "offsets": [4], "itemsize": 8}
STRUCT_OBJECT = {"names": ["a"], "formats": ["|O"], "offsets": [0], "itemsize": 8}
STRUCT_HUGE = {"names": ["a"], "formats": ["|u1"], "offsets": [0], "itemsize": 2**31 - 1}

# name -> (file, may it load?)
RESOURCE_CASES: dict[str, tuple[Callable[[], bytes], bool]] = {
    "shape 2**40 x 2**40 with an 80-byte buffer": (lambda: _arr("<f8", [2**40, 2**40]), False),
    "shape whose product overflows int64": (lambda: _arr("|i1", [2**32, 2**32, 2**32]), False),
    "shape with a 0 and a 2**40 dim": (lambda: _arr("<f8", [0, 2**40], 0), True),
    "shape with a 0 and a 2**62-1 dim": (lambda: _arr("<f8", [0, 2**62 - 1], 0), False),
    "a dim of 2**62": (lambda: _arr("|u1", [2**62]), False),
    "a dim of 2**64": (lambda: _arr("|u1", [2**64]), False),
    "a negative dim": (lambda: _arr("<f8", [-10]), False),
    "a negative dim in 2-d": (lambda: _arr("<f8", [5, -2]), False),
    "a float dim": (lambda: _arr("<f8", [10.0]), False),
    "a bool dim": (lambda: _arr("|u1", [True]), False),
    "65 dimensions": (lambda: _arr("<f8", [1] * 65, 8), False),
    "1000 dimensions": (lambda: _arr("<f8", [1] * 1000, 8), False),
    "object dtype with a buffer": (lambda: _arr("|O", [10]), False),
    "object array of 2**40 elements listing none": (
        lambda: craft({"$": "nd", "dtype": "|O", "shape": [2**40], "v": []}),
        False,
    ),
    "dtype <f3": (lambda: _arr("<f3", [20], 60), False),
    "dtype float64": (lambda: _arr("float64", [10]), False),
    "dtype f8 without byte order": (lambda: _arr("f8", [10]), False),
    "dtype with a trailing space": (lambda: _arr("<f8 ", [10]), False),
    "dtype empty string": (lambda: _arr("", [10]), False),
    "dtype a number": (lambda: _arr(8, [10]), False),
    "dtype null": (lambda: _arr(None, [10]), False),
    "dtype a list": (lambda: _arr(["<f8"], [10]), False),
    "dtype an empty object": (lambda: _arr({}, [10]), False),
    "dtype python object repr": (lambda: _arr("<class 'os._wrap_close'>", [10]), False),
    "dtype <U9999999999": (lambda: _arr("<U9999999999", [1]), False),
    "dtype <M8[9999999999Y]": (lambda: _arr("<M8[9999999999Y]", [10]), False),
    "structured dtype with a field outside the item": (lambda: _arr(STRUCT_OUTSIDE, [10]), False),
    "structured dtype with an object field": (lambda: _arr(STRUCT_OBJECT, [10]), False),
    "structured dtype of 2 GiB items, 2**40 of them": (
        lambda: _arr(STRUCT_HUGE, [2**40]),
        False,
    ),
    "dtype nested 50 deep": (lambda: _arr(_nested_dtype(50), [10]), False),
    "dtype nested 10000 deep": (
        lambda: craft(
            None,
            [bytes(80)],
            types=["numpy.ndarray"],
            root_raw='{"$":"nd","shape":[10],"buf":0,"dtype":'
            + '{"shape":[1],"base":' * 10_000
            + '"<f8"'
            + "}" * 10_000
            + "}",
        ),
        False,
    ),
    "subarray dtype of 2**40 elements": (
        lambda: _arr({"base": "<f8", "shape": [2**20, 2**20]}, [1]),
        False,
    ),
    "dtype S0 with 2**33 elements": (lambda: _arr("<S0", [2**33], 0), True),
    "dtype U0 with 2**31 elements": (lambda: _arr("<U0", [2**31], 0), True),
    "dtype V0 with 2**40 elements": (lambda: _arr("|V0", [2**40], 0), True),
    "packed strs claiming 2**40 items": (
        lambda: craft({"$": "scalars", "n": 2**40, "kind": "str", "strs": []}, types=[]),
        False,
    ),
    "packed codes claiming 2**40 items": (
        lambda: craft({"$": "scalars", "n": 2**40, "codes": 0}, [bytes(8)], types=[]),
        False,
    ),
    "lz4 buffer declaring 0 bytes, expanding to 1.5 GiB": (
        lambda: compressed_bytes_node(_lz4_bomb(GIB + GIB // 2), "lz4", 0),
        False,
    ),
    "header length 1 GiB on a 200-byte file": (
        lambda: _with_preamble(craft([1]), n=GIB - 16),
        False,
    ),
    "header of 8.4 million empty lists (24 MiB; ~2.5 GB once built)": (
        lambda: _list_of(1 << 23, "[]"),
        False,
    ),
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    cases = {name: make() for name, (make, _) in RESOURCE_CASES.items()}
    return run_limited(cases, tmp_path_factory.mktemp("limited"))


@pytest.mark.parametrize("case", list(RESOURCE_CASES))
def test_no_huge_allocation(case: str, limited: dict[str, dict[str, Any]]) -> None:
    r = limited[case]
    may_load = RESOURCE_CASES[case][1]
    growth = r["rss_growth"]
    assert growth < GIB, f"peak RSS grew by {growth / GIB:.1f} GiB"
    if r["error"] is None:
        assert may_load, "loaded without error"
        assert r["loaded_bytes"] < GIB, f"loaded {r['loaded_bytes'] / GIB:.0f} GiB of arrays"
        return
    assert r["modelsafe"], f"{r['error']} (not a ModelSafeError): {r['message']}"
    tried = r["cause"] == "MemoryError" or "allocate" in r["message"] or "resize" in r["message"]
    assert not tried, (
        f"the loader tried a huge allocation before refusing: {r['error']}: {r['message']}"
    )


def _zstd_zeros(n: int) -> bytes:
    out = io.BytesIO()
    cctx = zstandard.ZstdCompressor(write_content_size=True)
    with cctx.stream_writer(out, size=n, closefd=False) as w:
        chunk = bytes(1 << 24)
        for start in range(0, n, len(chunk)):
            w.write(chunk[: n - start])
    return out.getvalue()


def test_resource_runner_sees_big_allocations(tmp_path: Path) -> None:
    """Control for the check above: an honest 600 MiB array shows up in the child's RSS."""
    n = 600 << 20
    blob = compressed_bytes_node(_zstd_zeros(n), "zstd", n, node=nd("|u1", [n], 0))
    r = run_limited({"control": blob}, tmp_path)["control"]
    assert r["error"] is None, r
    assert r["loaded_bytes"] == n
    assert r["rss_growth"] > 500 << 20
