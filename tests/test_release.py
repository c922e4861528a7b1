"""Mapped pages of copied buffers are given back (``_container/release.py``), and packed
dicts are built a run of keys at a time (``_graph/decode.py``)."""

from __future__ import annotations

import itertools
import mmap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelsafe
from modelsafe._container import reader, release
from modelsafe._container.release import Releaser
from modelsafe._graph import decode
from modelsafe.errors import FormatError
from tests._crafting import craft

pytestmark = pytest.mark.skipif(
    release._ADVICE is None, reason="madvise(MADV_DONTNEED) is Linux-only"
)


@pytest.fixture(autouse=True)
def _map_every_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about mapped files; a load reads a small file whole instead."""
    monkeypatch.setattr(reader, "SMALL_FILE", 0)


@pytest.fixture
def releasers(monkeypatch: pytest.MonkeyPatch) -> list[Releaser]:
    """Every Releaser the loads of a test make (the real ones, recorded), giving back
    ranges from one page on, so that small models show it."""
    monkeypatch.setattr(release, "MIN_RANGE", mmap.PAGESIZE)
    made: list[Releaser] = []
    over = Releaser.over.__func__  # type: ignore[attr-defined]

    def record(cls: type[Releaser], *args: Any, **kwargs: Any) -> Releaser | None:
        found = over(cls, *args, **kwargs)
        if found is not None:
            made.append(found)
        return found

    monkeypatch.setattr(Releaser, "over", classmethod(record))
    return made


def _resident(path: Path) -> int:
    """Resident bytes of this process's maps of ``path`` (``/proc/self/smaps``)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line
            inside = len(head) >= 6 and head[5] == str(path)
        elif inside and head[:1] == ["Rss:"]:
            total += int(head[1]) * 1024
    return total


class _Buf:
    def __init__(self, offset: int, size: int) -> None:
        self.offset, self.size = offset, size


def _over_file(tmp_path: Path, sizes: list[int], hashed: bool) -> tuple[Releaser, Any]:
    """A Releaser over a copy-on-write map of a file of buffers of ``sizes`` bytes, and
    the map as a uint8 array."""
    path = tmp_path / "data"
    path.write_bytes(bytes(range(256)) * (sum(sizes) // 256))
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    whole = memoryview(mm)
    starts = np.cumsum([0, *sizes[:-1]]).tolist()
    buffers = [_Buf(start, size) for start, size in zip(starts, sizes, strict=True)]
    r = Releaser.over(mm, whole, 0, buffers, hashed)
    assert r is not None
    return r, np.frombuffer(whole, dtype=np.uint8)


def test_a_copied_range_goes_only_once_its_buffer_is_hashed(
    tmp_path: Path, releasers: list[Releaser]
) -> None:
    page = mmap.PAGESIZE
    r, arr = _over_file(tmp_path, [32 * page, 32 * page], hashed=False)
    expected = arr[: 32 * page].copy()
    r.handed(0)
    r.handed(1)
    r.consumed(arr[: 32 * page])
    assert r.dropped == 0  # buffer 0 not hashed yet: hashing would fault the pages back
    r.hashed(1)
    assert r.dropped == 0
    r.hashed(0)
    assert r.dropped == 32 * page
    r.consumed(arr[32 * page + 10 : 40 * page])  # buffer 1 is hashed: at once, whole pages
    assert r.dropped == 32 * page + 7 * page
    # A dropped page of the unchanged file reads back the file's bytes.
    assert np.array_equal(arr[: 32 * page], expected)


def test_a_buffer_hashed_before_the_builder_takes_it_goes_and_reads_back(
    tmp_path: Path, releasers: list[Releaser]
) -> None:
    page = mmap.PAGESIZE
    r, arr = _over_file(tmp_path, [16 * page, 16 * page], hashed=False)
    expected = arr.copy()
    assert int(arr.sum()) == int(expected.sum())  # every page read: resident
    r.handed(0)
    r.hashed(0)  # the builder has a view of buffer 0: its pages stay
    assert r.dropped == 0
    r.hashed(1)  # nothing has read buffer 1 but hashing: its pages go until read
    assert r.dropped == 16 * page
    assert _resident(tmp_path / "data") == 16 * page
    r.handed(1)
    assert np.array_equal(arr, expected)  # read back from the file


def test_what_the_builder_writes_into_a_view_is_never_dropped(tmp_path: Path) -> None:
    """A view handed out may be written into (a copy-on-write map): the pages of its buffer
    must not go afterwards, even with the hashing thread finishing at the same moment."""
    import threading

    page = mmap.PAGESIZE
    for _ in range(200):
        r, arr = _over_file(tmp_path, [release.MIN_RANGE, release.MIN_RANGE], hashed=False)
        hashing = threading.Thread(target=r.hashed, args=(0,))
        hashing.start()
        r.handed(0)
        arr[: 4 * page] = 7  # written into private pages of the map
        hashing.join()
        assert (arr[: 4 * page] == 7).all()
        assert arr[4 * page] == 0  # the file's byte: 4 * page is a multiple of 256


def test_small_buffers_stay_when_hashed(tmp_path: Path) -> None:
    r, _ = _over_file(tmp_path, [release.MIN_RANGE // 2, release.MIN_RANGE // 2], hashed=False)
    r.hashed(0)
    assert r.dropped == 0


def test_a_load_hashed_before_it_builds_reads_every_dropped_buffer_back(
    tmp_path: Path, releasers: list[Releaser], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hashing threads done before the builder takes its first view (as when it is
    busy for a while, with a vocabulary): every buffer's pages go, and the object built
    afterwards reads them back from the file, arrays writable as ever."""
    from modelsafe._container import reader

    real = reader.digest_many_later

    def hashed_first(items: Any, on_done: Any = None) -> Any:
        pending = real(items, on_done)
        pending.work()  # this thread takes every job still queued
        pending.result()
        return pending

    monkeypatch.setattr(reader, "digest_many_later", hashed_first)
    rng = np.random.default_rng(0)
    obj = {"idf": rng.random(1 << 17), "coef": rng.random((2, 1 << 16)), "n": 3}
    path = tmp_path / "arrays.msafe"
    modelsafe.save(obj, path)
    loaded = modelsafe.load(path)
    assert len(releasers) == 1 and releasers[0].dropped >= 0.99 * 2 * (8 << 17)
    assert np.array_equal(loaded["idf"], obj["idf"]) and np.array_equal(loaded["coef"], obj["coef"])
    loaded["idf"][:] = 0.0  # a copy-on-write map: the file keeps its bytes
    assert np.array_equal(modelsafe.load(path)["idf"], obj["idf"])


def test_ranges_across_buffers_outside_the_map_or_partial_pages_stay(
    tmp_path: Path, releasers: list[Releaser]
) -> None:
    page = mmap.PAGESIZE
    r, arr = _over_file(tmp_path, [8 * page, 8 * page], hashed=True)
    r.consumed(arr[4 * page : 12 * page])  # spans two buffers
    r.consumed(np.zeros(8 * page, dtype=np.uint8))  # not the map
    r.consumed(arr[10 : page + 10])  # no whole page inside
    r.consumed(arr[::2])  # not contiguous
    r.consumed(b"not an array")
    assert r.dropped == 0


def test_small_ranges_stay_by_default(tmp_path: Path) -> None:
    r, arr = _over_file(tmp_path, [2 * release.MIN_RANGE], hashed=True)
    r.consumed(arr[: release.MIN_RANGE - 1])
    assert r.dropped == 0
    r.consumed(arr[: release.MIN_RANGE])
    assert r.dropped == release.MIN_RANGE


@pytest.mark.parametrize("mode", [None, "r"])
def test_a_forest_gives_back_the_pages_of_its_nodes(
    tmp_path: Path, releasers: list[Releaser], mode: str | None
) -> None:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    x, y = make_classification(3000, 10, random_state=0)
    model = RandomForestClassifier(n_estimators=40, random_state=0).fit(x, y)
    path = tmp_path / "forest.msafe"
    modelsafe.save(model, path)
    loaded = modelsafe.load(path, mmap=mode)
    nodes = sum(t.tree_.node_count for t in model.estimators_)
    stored = nodes * (64 + 16)  # a node record and its two class values
    assert len(releasers) == 1
    assert releasers[0].dropped > 0.9 * stored
    assert _resident(path) < 0.1 * path.stat().st_size
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_a_vocabulary_gives_back_its_keys_and_values(
    tmp_path: Path, releasers: list[Releaser]
) -> None:
    vocabulary = {f"wörd{i}": i for i in range(100_000)}
    path = tmp_path / "vocabulary.msafe"
    modelsafe.save(vocabulary, path)
    assert modelsafe.load(path) == vocabulary
    assert len(releasers) == 1
    assert releasers[0].dropped > 0.9 * path.stat().st_size


def test_a_vocabulary_gives_back_its_keys_and_values_as_the_dict_grows(
    tmp_path: Path, releasers: list[Releaser], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not once the dict is whole: its last resizes, when it needs the most memory, come
    near the end. Each part given back follows the one before, and together they cover
    the keys' and the values' buffers."""
    keys: list[tuple[int, int]] = []  # (address, size) of each part given back
    values: list[tuple[int, int]] = []
    real = Releaser.consumed

    def spy(self: Releaser, arr: Any, minimum: int | None = None) -> None:
        span = release._span(arr)
        if span is not None and span[1]:  # the keys: bytes; the values: int64
            (keys if arr.itemsize == 1 else values).append(span)
        real(self, arr, minimum)

    monkeypatch.setattr(Releaser, "consumed", spy)
    vocabulary = {f"wörd{i}": i for i in range(100_000)}
    path = tmp_path / "vocabulary.msafe"
    modelsafe.save(vocabulary, path)
    assert modelsafe.load(path) == vocabulary
    assert len(keys) > 10 and len(keys) == len(values)
    for parts, size in ((keys, sum(len(k.encode()) + 1 for k in vocabulary) - 1),
                        (values, 8 * len(vocabulary))):  # fmt: skip
        assert all(a[0] + a[1] == b[0] for a, b in itertools.pairwise(parts))  # in order
        assert sum(n for _, n in parts) == size
    assert releasers[0].dropped > 0.9 * path.stat().st_size


def _dropped_at_check(
    monkeypatch: pytest.MonkeyPatch, handler: Any, releasers: list[Releaser]
) -> list[int]:
    """Record, each time ``handler`` checks a model's bytes, the bytes given back so far."""
    seen: list[int] = []
    real = handler.check

    def spy(raw: Any) -> Any:
        seen.append(sum(r.dropped for r in releasers))
        return real(raw)

    monkeypatch.setattr(handler, "check", spy)
    return seen


def test_a_lightgbm_text_gives_back_its_pages_before_the_check(
    tmp_path: Path, releasers: list[Releaser], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The text is copied, then its mapped pages are given back before the check (whose
    scratch would sit beside them): the copy waits for the text's digest, computed in the
    background (a model of 340 KB, above BACKGROUND_MIN), rather than leave the drop to
    the hashing thread's next turn with the GIL."""
    lightgbm = pytest.importorskip("lightgbm")
    from sklearn.datasets import make_classification

    from modelsafe._container.digest import BACKGROUND_MIN
    from modelsafe._handlers import lightgbm as handler

    x, y = make_classification(2000, 10, random_state=0)
    model = lightgbm.LGBMClassifier(n_estimators=100, verbose=-1).fit(x, y)
    path = tmp_path / "lgbm.msafe"
    modelsafe.save(model, path)
    text = len(model.booster_.model_to_string().encode())
    assert text > BACKGROUND_MIN
    at_check = _dropped_at_check(monkeypatch, handler, releasers)
    loaded = modelsafe.load(path)
    assert len(releasers) == 1 and at_check and at_check[0] > 0.9 * text
    assert releasers[0].dropped > 0.9 * text
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_an_xgboost_model_gives_back_its_pages_before_the_check(
    tmp_path: Path, releasers: list[Releaser], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UBJSON is copied for the check and for XGBoost: its mapped pages are given back
    before either reads the copy."""
    xgboost = pytest.importorskip("xgboost")
    from sklearn.datasets import make_classification

    from modelsafe._container.digest import BACKGROUND_MIN
    from modelsafe._handlers import xgboost as handler

    x, y = make_classification(5000, 10, random_state=0)
    model = xgboost.XGBClassifier(n_estimators=200, max_depth=8, n_jobs=2).fit(x, y)
    path = tmp_path / "xgb.msafe"
    modelsafe.save(model, path)
    ubj = len(model.get_booster().save_raw("ubj"))
    assert ubj > BACKGROUND_MIN
    at_check = _dropped_at_check(monkeypatch, handler, releasers)
    loaded = modelsafe.load(path)
    assert len(releasers) == 1 and at_check and at_check[0] > 0.9 * ubj
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))


# -- packed dicts, a run of keys at a time ------------------------------------------------------

_KEYS = ["", "a", "é", "", "日本語", "b" * 20, "x\U0001f600y", "", "c", "ñ", ""]


def _sdict(keys: bytes, values: list[int]) -> bytes:
    node = {"$": "sdict", "keys": 0, "v": {"$": "scalars", "n": len(values), "kind": "int",
                                           "ints": 1}}  # fmt: skip
    return craft(node, [keys, np.array(values, dtype="<i8").tobytes()], types=[])


@pytest.mark.parametrize("run", [1, 2, 3, 5, 8, 64, 1 << 16])
def test_runs_of_keys_give_the_dict_of_the_whole_text(
    monkeypatch: pytest.MonkeyPatch, run: int
) -> None:
    monkeypatch.setattr(decode, "_RUN", run)
    keys = [f"{k}{i}" if k == "" and i % 2 else k for i, k in enumerate(_KEYS)]
    keys = list(dict.fromkeys(keys))  # distinct, the empty string among them
    blob = _sdict("\x00".join(keys).encode(), list(range(len(keys))))
    assert modelsafe.loads(blob) == dict(zip(keys, range(len(keys)), strict=True))
    last = _sdict(b"a\x00bb\x00", [1, 2, 3])  # the last key is empty
    assert modelsafe.loads(last) == {"a": 1, "bb": 2, "": 3}


@pytest.mark.parametrize("run", [1, 3, 1 << 16])
@pytest.mark.parametrize(
    ("keys", "values", "message"),
    [
        (b"a\x00b\x00c\x00d", [1, 2], "packed strings hold more than"),
        (b"a\x00b", [1, 2, 3], "packed strings hold 2 items, 'n' says 3"),
        (b"a\x00b\x00a", [1, 2, 3], "repeats a key"),
        (b"abc\x00de\x00\xff", [1, 2, 3], "not valid UTF-8 (invalid start byte at byte 7)"),
        (b"abc\x00\xc3", [1, 2], "not valid UTF-8 (unexpected end of data at byte 4)"),
    ],
)
def test_runs_of_keys_reject_what_the_whole_text_would(
    monkeypatch: pytest.MonkeyPatch, run: int, keys: bytes, values: list[int], message: str
) -> None:
    monkeypatch.setattr(decode, "_RUN", run)
    with pytest.raises(FormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        modelsafe.loads(_sdict(keys, values))


def test_compressed_bytes_are_given_back_once_decompressed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelsafe._container.reader import Container

    released: list[int] = []
    real = Container._release

    def spy(self: Container, mm: mmap.mmap, packed: list[Any]) -> None:
        released.extend(b.index for b in packed)
        real(self, mm, packed)

    monkeypatch.setattr(Container, "_release", spy)
    data = np.random.default_rng(0).integers(0, 4, 1 << 20).astype(np.int64)
    path = tmp_path / "packed.msafe"
    modelsafe.save(data, path, compress="zstd")
    assert np.array_equal(modelsafe.load(path), data)
    # The compressed buffer's pages go twice: once hashed, and again once decompressed
    # (decompression reads them back in).
    assert released == [0, 0]
