"""The public surface: names, errors, inspect, integrity checks, metadata, files on disk."""

from __future__ import annotations

import builtins
import datetime as dt
import os
import platform
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelsafe
from modelsafe._container import reader as _reader

from . import sample_types as S

EXPECTED_ALL = [
    "FORMAT_VERSION",
    "FileInfo",
    "FormatError",
    "FormatVersionError",
    "IntegrityError",
    "MmapUnavailableError",
    "ModelSafeError",
    "SignatureError",
    "UnsupportedTypeError",
    "UntrustedTypesError",
    "__version__",
    "dumps",
    "generate_key",
    "inspect",
    "load",
    "load_signing_key",
    "loads",
    "save",
    "sign",
    "untrusted_types",
    "verify_signatures",
]


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(modelsafe.__all__) == EXPECTED_ALL
    assert len(set(modelsafe.__all__)) == len(modelsafe.__all__)
    for name in modelsafe.__all__:
        assert hasattr(modelsafe, name), name
    public = {n for n in vars(modelsafe) if not n.startswith("_")}
    public -= {"annotations"}  # from __future__
    extra = {n for n in public if not isinstance(getattr(modelsafe, n), type(modelsafe))}
    assert extra <= set(EXPECTED_ALL), f"public but not in __all__: {extra - set(EXPECTED_ALL)}"


def test_version_and_format_version() -> None:
    assert isinstance(modelsafe.__version__, str) and modelsafe.__version__
    assert isinstance(modelsafe.FORMAT_VERSION, int) and modelsafe.FORMAT_VERSION >= 1
    info = modelsafe.inspect(modelsafe.dumps(None))
    assert info.format_version == modelsafe.FORMAT_VERSION
    assert info.metadata["producer"] == f"modelsafe {modelsafe.__version__}"


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        ("ModelSafeError", (Exception,)),
        ("FormatError", ("ModelSafeError", ValueError)),
        ("FormatVersionError", ("FormatError",)),
        ("IntegrityError", ("ModelSafeError",)),
        ("UntrustedTypesError", ("ModelSafeError",)),
        ("UnsupportedTypeError", ("ModelSafeError", TypeError)),
        ("MmapUnavailableError", ("ModelSafeError", ValueError)),
        ("SignatureError", ("ModelSafeError",)),
    ],
)
def test_error_tree(error: str, bases: tuple[Any, ...]) -> None:
    cls = getattr(modelsafe, error)
    for base in bases:
        base_cls = getattr(modelsafe, base) if isinstance(base, str) else base
        assert issubclass(cls, base_cls), f"{error} should derive from {base_cls.__name__}"
    assert issubclass(cls, Exception)
    if error != "ModelSafeError":
        assert issubclass(cls, modelsafe.ModelSafeError)


def test_untrusted_types_error_lists_types_and_the_way_out() -> None:
    data = modelsafe.dumps({"a": S.Plain(x=S.Node())})
    with pytest.raises(modelsafe.UntrustedTypesError) as info:
        modelsafe.loads(data)
    names = ["tests.sample_types.Node", "tests.sample_types.Plain"]
    assert info.value.types == names
    text = str(info.value)
    assert all(n in text for n in names)
    assert "trusted=" in text


def test_trusted_true_is_refused() -> None:
    data = modelsafe.dumps(S.Plain())
    with pytest.raises(TypeError, match="list the names"):
        modelsafe.loads(data, trusted=True)  # type: ignore[arg-type]


def test_save_accepts_str_and_path_and_returns_the_path(tmp_path: Path) -> None:
    as_path = modelsafe.save([1], tmp_path / "a.msafe")
    assert as_path == tmp_path / "a.msafe" and isinstance(as_path, Path)
    as_str = modelsafe.save([1], str(tmp_path / "b.msafe"), fsync=False)
    assert as_str == tmp_path / "b.msafe" and isinstance(as_str, Path)
    assert modelsafe.load(as_str) == [1]


def test_save_writes_what_dumps_returns(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    obj = {"w": np.arange(100.0), "name": "m"}
    path = modelsafe.save(obj, tmp_path / "m.msafe", metadata={"k": 1})
    assert path.read_bytes() == modelsafe.dumps(obj, metadata={"k": 1})


def test_invalid_mmap_is_refused(tmp_path: Path) -> None:
    path = modelsafe.save([1], tmp_path / "m.msafe")
    with pytest.raises(ValueError, match="mmap"):
        modelsafe.load(path, mmap="w")


# -- inspect -------------------------------------------------------------------------------------

MODEL = {
    "w": np.arange(1000.0).reshape(100, 10),
    "b": np.ones(300, dtype=np.float32),
    "layers": [{"kernel": np.zeros((4, 4))}],
    "name": "net",
}


@pytest.fixture
def model_file(tmp_path: Path, monkeypatch: Any) -> Path:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)  # "created" is the real time
    obj = dict(MODEL, model=S.Plain(coef=np.arange(5.0)))
    return modelsafe.save(obj, tmp_path / "m.msafe", metadata={"team": "fraud", "auc": 0.91})


def test_inspect_reports_the_header(model_file: Path) -> None:
    info = modelsafe.inspect(model_file)
    assert isinstance(info, modelsafe.FileInfo)
    meta = info.metadata
    assert meta["producer"] == f"modelsafe {modelsafe.__version__}"
    assert meta["python"] == platform.python_version()
    created = dt.datetime.fromisoformat(meta["created"].replace("Z", "+00:00"))
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=5)
    assert meta["user"] == {"team": "fraud", "auc": 0.91}
    assert "numpy.ndarray" in info.types and "tests.sample_types.Plain" in info.types
    assert info.untrusted == ["tests.sample_types.Plain"]
    assert info.file_size == model_file.stat().st_size
    owners = {o for b in info.buffers for o in _owners(b)}
    assert {"root['w']", "root['b']", "root['layers'][0]['kernel']", "root['model'].coef"} <= owners
    for b in info.buffers:
        assert b["nbytes"] > 0 and len(b["digest"]) == 64
    rows = {r.path: r for r in info.rows()}
    assert rows["root['w']"].kind == "ndarray" and "(100, 10)" in rows["root['w']"].detail
    assert rows["root['name']"].detail == "'net'"
    assert "tests.sample_types.Plain" in rows["root['model']"].kind


def test_inspect_bytes_equals_inspect_file(model_file: Path) -> None:
    a = modelsafe.inspect(model_file)
    b = modelsafe.inspect(model_file.read_bytes())
    assert (a.metadata, a.types, a.untrusted, a.buffers) == (
        b.metadata,
        b.types,
        b.untrusted,
        b.buffers,
    )


def _owners(buffer: dict[str, Any]) -> list[str]:
    """The object paths named by a buffer's ``owner`` (one buffer may hold several arrays)."""
    return re.findall(r"root[^,\s]*", buffer["owner"] or "")


def _data_offset(path: Path) -> int:
    info = modelsafe.inspect(path)
    return info.file_size - info.data_size


def _corrupt_data(path: Path) -> None:
    """Overwrite the whole data section with other bytes; the header stays intact."""
    raw = bytearray(path.read_bytes())
    start = _data_offset(path)
    raw[start:] = bytes(b ^ 0xA5 for b in raw[start:])
    path.write_bytes(bytes(raw))


def test_inspect_does_not_need_the_data_section(model_file: Path) -> None:
    before = modelsafe.inspect(model_file)
    _corrupt_data(model_file)
    after = modelsafe.inspect(model_file)
    assert (before.metadata, before.types, before.buffers) == (
        after.metadata,
        after.types,
        after.buffers,
    )
    assert [r.path for r in before.rows()] == [r.path for r in after.rows()]
    assert modelsafe.untrusted_types(model_file) == ["tests.sample_types.Plain"]
    with pytest.raises(modelsafe.IntegrityError):
        modelsafe.load(model_file, trusted=["tests.sample_types.Plain"])


@pytest.fixture
def reads(monkeypatch: Any) -> Iterator[list[tuple[int, int]]]:
    """Record the (offset, length) of every read the container reader makes."""
    log: list[tuple[int, int]] = []

    class Tracked:
        def __init__(self, fh: Any) -> None:
            self._fh = fh

        def read(self, n: int = -1) -> bytes:
            pos = self._fh.tell()
            out: bytes = self._fh.read(n)
            log.append((pos, len(out)))
            return out

        def readinto(self, buf: Any) -> int:
            pos = self._fh.tell()
            n: int = self._fh.readinto(buf)
            log.append((pos, n))
            return n

        def __getattr__(self, name: str) -> Any:
            return getattr(self._fh, name)

        def __enter__(self) -> Tracked:
            return self

        def __exit__(self, *exc: Any) -> None:
            self._fh.close()

    def tracked_open(*args: Any, **kwargs: Any) -> Any:
        return Tracked(builtins.open(*args, **kwargs))

    monkeypatch.setattr(_reader, "open", tracked_open, raising=False)
    yield log


def test_inspect_reads_only_the_header(model_file: Path, reads: list[tuple[int, int]]) -> None:
    data_start = _data_offset(model_file)
    reads.clear()
    modelsafe.inspect(model_file)
    modelsafe.untrusted_types(model_file)
    assert reads, "the reader was expected to read the header through open()"
    assert max(pos + n for pos, n in reads) <= data_start


# -- integrity ------------------------------------------------------------------------------------


def _flip_byte_of(path: Path, owner: str, index: int) -> None:
    """Flip one bit of element ``index`` of the (float64) array held at ``owner``."""
    info = modelsafe.inspect(path)
    (buf,) = [b for b in info.buffers if owner in _owners(b)]
    assert _owners(buf) == [owner], "the array should have a buffer of its own"
    raw = bytearray(path.read_bytes())
    raw[_data_offset(path) + buf["offset"] + 8 * index + 7] ^= 0x40  # the exponent's top bit
    path.write_bytes(bytes(raw))


def test_corruption_is_detected_and_named(tmp_path: Path) -> None:
    path = modelsafe.save({"w": np.ones(1000), "b": np.zeros(1000)}, tmp_path / "m.msafe")
    _flip_byte_of(path, "root['w']", 10)
    for mmap in (None, "r", False):
        with pytest.raises(modelsafe.IntegrityError, match=r"root\['w'\]") as info:
            modelsafe.load(path, mmap=mmap)
        assert "root['w']" in (info.value.where or "")
    with pytest.raises(modelsafe.IntegrityError, match=r"root\['w'\]"):
        modelsafe.loads(path.read_bytes())


def test_verify_false_loads_the_corrupted_value(tmp_path: Path) -> None:
    path = modelsafe.save({"w": np.ones(1000), "b": np.zeros(1000)}, tmp_path / "m.msafe")
    _flip_byte_of(path, "root['w']", 10)
    expected = np.ones(1000)
    expected.view(np.uint8)[8 * 10 + 7] ^= 0x40
    for mmap in (None, "r", False):
        got = modelsafe.load(path, mmap=mmap, verify=False)
        assert np.array_equal(got["w"], expected, equal_nan=True)
        assert got["w"][10] != 1.0 and np.array_equal(got["b"], np.zeros(1000))
    got = modelsafe.loads(path.read_bytes(), verify=False)
    assert np.array_equal(got["w"], expected, equal_nan=True)


def _big_forest_file(tmp_path: Path) -> tuple[Path, Any]:
    """A forest whose trees are one column of some 300 KiB: digests are computed while
    it is built (``BACKGROUND_MIN``)."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    from modelsafe._container.digest import BACKGROUND_MIN

    x, y = make_classification(8000, 10, random_state=0)
    model = RandomForestClassifier(12, random_state=0).fit(x, y)
    path = modelsafe.save(model, tmp_path / "forest.msafe")
    info = modelsafe.inspect(path)
    assert sum(b["size"] for b in info.buffers) >= BACKGROUND_MIN
    return path, model


def test_corruption_is_detected_while_the_object_is_built(tmp_path: Path) -> None:
    """Digests of a large file are computed on the hashing threads while the object is
    built: a damaged buffer is still an IntegrityError naming it, nothing is returned."""
    arrays = {"w": np.ones(100_000), "b": np.zeros(100_000)}
    path = modelsafe.save(arrays, tmp_path / "m.msafe")
    _flip_byte_of(path, "root['w']", 99_000)
    for mmap in (None, "r", False):
        with pytest.raises(modelsafe.IntegrityError, match=r"root\['w'\]"):
            modelsafe.load(path, mmap=mmap)
    with pytest.raises(modelsafe.IntegrityError, match=r"root\['w'\]"):
        modelsafe.loads(path.read_bytes())


def test_a_build_failed_by_damaged_bytes_is_reported_as_the_damage(tmp_path: Path) -> None:
    """A flipped bit in a tree's records makes its checks fail while the digests are
    still being computed: the load reports the damaged buffer (IntegrityError), the real
    cause, not the broken tree it led to."""
    path, _model = _big_forest_file(tmp_path)
    info = modelsafe.inspect(path)
    (records,) = [b for b in info.buffers if any(".tree_.<nodes>" in o for o in _owners(b))]
    raw = bytearray(path.read_bytes())
    raw[_data_offset(path) + records["offset"] + 64 * 3 + 5] ^= 0x40  # a left_child, far out
    path.write_bytes(bytes(raw))
    with pytest.raises(modelsafe.FormatError, match="children_left"):
        modelsafe.load(path, verify=False)  # what the damage does without digests
    with pytest.raises(modelsafe.IntegrityError, match=r"tree_\.<nodes>"):
        modelsafe.load(path)


def test_loads_in_many_threads_at_once_verify_each_file(tmp_path: Path) -> None:
    """Concurrent loads share the hashing threads: each gets its own digests, a damaged
    file fails every time and the intact one never does."""
    from concurrent.futures import ThreadPoolExecutor

    path, model = _big_forest_file(tmp_path)
    bad = tmp_path / "bad.msafe"
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x01  # inside the last buffer (or its padding)
    bad.write_bytes(bytes(raw))
    x = np.random.default_rng(0).normal(size=(50, 10))
    want = model.predict_proba(x)

    def one(i: int) -> str:
        if i % 3 == 0:
            try:
                modelsafe.load(bad)
            except modelsafe.IntegrityError:
                return "refused"
            return "loaded a damaged file"
        got = modelsafe.load(path, mmap=("r", None, False)[i % 3])
        return "ok" if np.array_equal(got.predict_proba(x), want) else "wrong output"

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(24)))
    assert results == ["refused" if i % 3 == 0 else "ok" for i in range(24)]


def test_corrupted_compressed_buffer_is_detected(tmp_path: Path) -> None:
    path = modelsafe.save({"w": np.zeros(100_000)}, tmp_path / "m.msafe", compress="zstd")
    raw = bytearray(path.read_bytes())
    raw[_data_offset(path) + 20] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(modelsafe.IntegrityError, match=r"root\['w'\]"):
        modelsafe.load(path)


# -- metadata -------------------------------------------------------------------------------------

JSON_METADATA = {
    "s": "x",
    "n": [1, -2.5, 1e300, None, True],
    "nested": {"a": {"b": []}},
    "unicode": "é\ud800",
}


def test_metadata_round_trips(tmp_path: Path) -> None:
    path = modelsafe.save(1, tmp_path / "m.msafe", metadata=JSON_METADATA)
    assert modelsafe.inspect(path).metadata["user"] == JSON_METADATA
    assert modelsafe.inspect(modelsafe.dumps(1)).metadata["user"] == {}


@pytest.mark.parametrize(
    "metadata",
    [
        {"x": object()},
        {"x": np.arange(3)},
        {"x": float("nan")},
        {"x": float("inf")},
        {"x": {1, 2}},
        {"x": b"bytes"},
        [1, 2],
        "text",
    ],
    ids=["object", "ndarray", "nan", "inf", "set", "bytes", "list", "str"],
)
def test_non_json_metadata_is_a_type_error(tmp_path: Path, metadata: Any) -> None:
    with pytest.raises(TypeError, match="metadata"):
        modelsafe.save(1, tmp_path / "m.msafe", metadata=metadata)
    with pytest.raises(TypeError, match="metadata"):
        modelsafe.dumps(1, metadata=metadata)
    assert not (tmp_path / "m.msafe").exists()


@pytest.mark.parametrize(
    "metadata",
    [{1: "int key"}, {"t": (1, 2)}, {None: 1}],
    ids=["int-key", "tuple", "None-key"],
)
def test_metadata_is_stored_as_given_or_refused(metadata: Any) -> None:
    """JSON would silently turn these into something else: refuse rather than change them."""
    try:
        data = modelsafe.dumps(1, metadata=metadata)
    except TypeError:
        return
    assert modelsafe.inspect(data).metadata["user"] == metadata


# -- loads and bytes ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_loads_arrays_are_writable_copies(kind: type) -> None:
    """The docstring promises copies: the loaded value must not alias the caller's buffer."""
    data = modelsafe.dumps({"w": np.arange(100.0)})
    buf = kind(bytearray(data)) if kind is memoryview else kind(data)
    w = modelsafe.loads(buf)["w"]
    assert w.flags.writeable
    w[:] = -1.0
    assert bytes(buf) == data


# -- files on disk --------------------------------------------------------------------------------


@pytest.fixture
def umask() -> Iterator[Any]:
    old = os.umask(0o022)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    try:
        yield set_mask
    finally:
        os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_mode_follows_umask(tmp_path: Path, umask: Any, mask: int, mode: int) -> None:
    umask(mask)
    path = modelsafe.save([1], tmp_path / "m.msafe")
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_overwrite_keeps_the_existing_mode(tmp_path: Path, umask: Any) -> None:
    path = modelsafe.save([1], tmp_path / "m.msafe")
    path.chmod(0o640)
    modelsafe.save([2], path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert modelsafe.load(path) == [2]


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    for fsync in (True, False):
        modelsafe.save({"w": np.zeros(10)}, tmp_path / "m.msafe", fsync=fsync)
    assert [p.name for p in tmp_path.iterdir()] == ["m.msafe"]


def test_overwrite_while_mapped_keeps_the_old_view(tmp_path: Path) -> None:
    path = modelsafe.save({"w": np.zeros(1000)}, tmp_path / "m.msafe")
    old = modelsafe.load(path, mmap="r")
    modelsafe.save({"w": np.ones(1000)}, path)
    assert old["w"].sum() == 0.0
    assert modelsafe.load(path)["w"].sum() == 1000.0


def test_a_small_file_is_read_whole_and_a_large_one_mapped(tmp_path: Path) -> None:
    """A file of at most SMALL_FILE bytes is read in one call (a map costs more than the
    read), so a later rewrite of its bytes in place cannot reach the loaded arrays; a
    larger file is mapped, and the same rewrite shows through its views (README)."""
    from modelsafe._container.reader import SMALL_FILE

    for n, mapped in ((100, False), (SMALL_FILE // 8 + 100, True)):
        path = modelsafe.save({"w": np.full(n, 7.0)}, tmp_path / f"m{n}.msafe")
        assert (path.stat().st_size > SMALL_FILE) == mapped
        loaded = {mode: modelsafe.load(path, mmap=mode) for mode in (None, "r", False)}
        assert loaded[None]["w"].flags.writeable and loaded[False]["w"].flags.writeable
        assert not loaded["r"]["w"].flags.writeable
        raw = path.read_bytes()
        at = raw.find(np.full(n, 7.0).tobytes())
        with open(path, "r+b") as f:  # in place: the same file, the same pages
            f.seek(at)
            f.write(np.full(n, 9.0).tobytes())
        for mode, obj in loaded.items():
            shows = mapped and mode is not False
            assert obj["w"][0] == (9.0 if shows else 7.0), (n, mode)
            assert (obj["w"] == obj["w"][0]).all()


_FORK_SCRIPT = """
import os, sys
import numpy as np
import modelsafe

path = sys.argv[1]
big = {"a": np.arange(2 << 20, dtype=np.float64), "mid": [np.ones(20_000) for _ in range(40)]}
modelsafe.save(big, path)
modelsafe.load(path)  # the parent's hashing threads (ours and BLAKE3's) now exist
pid = os.fork()
if pid == 0:
    import signal
    signal.alarm(30)  # a child waiting on threads that did not survive the fork dies here
    try:
        got = modelsafe.load(path)
        modelsafe.save(got, path + ".child")
        os._exit(0 if np.array_equal(got["a"], big["a"]) else 3)
    except BaseException:
        os._exit(4)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))  # -14: the child hung (SIGALRM)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_loads_and_saves_after_its_parent_did(tmp_path: Path) -> None:
    """Hashing threads do not survive fork: a child of a process that loaded a large
    file must not wait on the parent's threads (BLAKE3's shared pool deadlocked here)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT, str(tmp_path / "big.msafe")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0", f"child exit: {proc.stdout!r} {proc.stderr[-2000:]}"
