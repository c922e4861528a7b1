"""Saving the same object gives the same bytes.

With ``SOURCE_DATE_EPOCH`` set, byte for byte, within a process and across
processes with different hash seeds (sets of strings iterate differently
there). Without it, two saves differ only inside the ``created`` timestamp.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import modelsafe

from ._crafting import deep_equal, split
from ._payloads import NODE_TYPES, determinism_payload

REPO = Path(__file__).resolve().parent.parent
EPOCH = "1700000000"
COMPRESS: list[str | None] = [None, "zstd", "lz4"]
TRUSTED = NODE_TYPES


def _created_span(blob: bytes) -> tuple[int, int]:
    """Start and end of the ``created`` value inside ``blob``."""
    key = b'"created":"'
    start = blob.index(key) + len(key)
    assert blob.count(key) == 1
    return start, blob.index(b'"', start)


@pytest.mark.parametrize("compress", COMPRESS)
def test_same_bytes_with_source_date_epoch(
    compress: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    obj = determinism_payload()
    first = modelsafe.dumps(obj, compress=compress)
    assert modelsafe.dumps(obj, compress=compress) == first
    assert modelsafe.dumps(determinism_payload(), compress=compress) == first  # an equal copy
    a = modelsafe.save(obj, tmp_path / "a.msafe", compress=compress, fsync=False)
    b = modelsafe.save(determinism_payload(), tmp_path / "b.msafe", compress=compress)
    assert a.read_bytes() == b.read_bytes() == first
    if compress:
        assert any(len(e) == 5 for e in split(first).header["buffers"]), "nothing compressed"
    loaded = modelsafe.loads(first, trusted=TRUSTED)
    assert deep_equal(loaded, determinism_payload())


def _hash_span(blob: bytes) -> tuple[int, int] | None:
    """Where the header's own hash is, when the header starts with one."""
    prefix = b'{"hash":"'
    if not blob[16:].startswith(prefix):
        return None
    return 16 + len(prefix), 16 + len(prefix) + 64


@pytest.mark.parametrize("compress", COMPRESS)
def test_without_epoch_only_the_timestamp_differs(
    compress: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without SOURCE_DATE_EPOCH two saves differ only inside ``created`` (and inside the
    header's hash, which covers it)."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    one = modelsafe.dumps(determinism_payload(), compress=compress)
    two = modelsafe.dumps(determinism_payload(), compress=compress)
    assert len(one) == len(two), "the timestamp must be fixed-width"
    spans = [_created_span(one)]
    assert _created_span(two) == spans[0]
    hashed = _hash_span(one)
    if hashed is not None:
        spans.append(hashed)
    a, b = bytearray(one), bytearray(two)
    for start, end in spans:
        a[start:end] = b[start:end] = b"#" * (end - start)
    assert a == b, f"the saves also differ near {_first_difference(bytes(a), bytes(b))!r}"
    start, end = spans[0]
    for blob in (one, two):
        created = split(blob).header["meta"]["created"]
        assert created.encode() == blob[start:end]
        assert len(created) == 27 and created.endswith("Z")
        assert deep_equal(modelsafe.loads(blob, trusted=TRUSTED), determinism_payload())


def _first_difference(a: bytes, b: bytes) -> bytes | None:
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    return i if i is None else a[max(i - 40, 0) : i + 40]


_CHILD = """
import sys
import modelsafe
from tests._payloads import determinism_payload

out = sys.argv[1]
obj = determinism_payload()
for codec in ("none", "zstd", "lz4"):
    modelsafe.save(obj, f"{out}/{codec}.msafe", compress=None if codec == "none" else codec)
"""


def _save_in_child(out: Path, hash_seed: str) -> dict[str, bytes]:
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), SOURCE_DATE_EPOCH=EPOCH, PYTHONHASHSEED=hash_seed)
    subprocess.run(
        [sys.executable, "-c", _CHILD, str(out)], cwd=REPO, env=env, check=True, timeout=120
    )
    return {p.stem: p.read_bytes() for p in out.glob("*.msafe")}


def test_same_bytes_across_processes_and_hash_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [_save_in_child(tmp_path / f"seed{seed}", seed) for seed in ("1", "2", "12345")]
    assert sorted(runs[0]) == ["lz4", "none", "zstd"]
    for codec in runs[0]:
        for other in runs[1:]:
            assert other[codec] == runs[0][codec], (
                f"{codec}: the hash seed changed the bytes near "
                f"{_first_difference(runs[0][codec], other[codec])!r}"
            )
    # and the same as this process writes, whatever its own hash seed
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    assert modelsafe.dumps(determinism_payload()) == runs[0]["none"]
    assert modelsafe.dumps(determinism_payload(), compress="zstd") == runs[0]["zstd"]


_SETS_CHILD = """
import json, sys
import modelsafe
values = {
    "set of tuples": {("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)},
    "set of frozensets": {frozenset({"a"}), frozenset({"b"}), frozenset({"c", "d"})},
    "frozenset of tuples of strings": frozenset({("x", "y"), ("z", "w"), ("u", "v")}),
    "dict keyed by a frozenset of strings": {frozenset({"k1", "k2", "k3"}): 1},
}
print(json.dumps({k: modelsafe.dumps(v).hex() for k, v in values.items()}))
"""


def test_sets_of_other_values_are_deterministic_across_hash_seeds() -> None:
    """Sets of tuples or frozensets of strings are as common in models as sets of strings."""
    outs = []
    for seed in ("1", "2", "3", "4"):
        env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH, PYTHONHASHSEED=seed)
        proc = subprocess.run(
            [sys.executable, "-c", _SETS_CHILD],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        outs.append(json.loads(proc.stdout))
    differ = sorted({k for o in outs[1:] for k in o if o[k] != outs[0][k]})
    assert not differ, f"bytes depend on the hash seed for: {differ}"


@pytest.mark.parametrize("threads", [None, 1, 2, 3])
def test_digests_do_not_depend_on_how_many_threads_hash(threads: int | None) -> None:
    """The writer hashes on all cores but one; the reader on all: the digests must agree,
    for small buffers, pooled mid-size ones and large ones hashed by BLAKE3's own threads."""
    import blake3
    import numpy as np

    from modelsafe._container.digest import digest_many

    rng = np.random.default_rng(0)
    sizes = [0, 100, 1 << 16, (1 << 16) + 5, 3 << 20, (1 << 23) + 1]
    items = [(memoryview(rng.bytes(n)), (-n) % 64) for n in sizes]
    want = [blake3.blake3(bytes(d) + bytes(p)).hexdigest() for d, p in items]
    assert digest_many(items, threads) == want


def _mixed_items() -> tuple[list[tuple[memoryview, int]], list[str]]:
    import blake3
    import numpy as np

    rng = np.random.default_rng(1)
    sizes = [0, 100, 1 << 16, 300_000, 3 << 20, (1 << 23) + 1, 7, 1 << 19]
    items = [(memoryview(rng.bytes(n)), (-n) % 64) for n in sizes]
    want = [blake3.blake3(bytes(d) + bytes(p)).hexdigest() for d, p in items]
    return items, want


def test_digests_computed_in_the_background_are_the_same() -> None:
    """``digest_many_later`` (the loader's, while it builds) agrees with the plain digests,
    for every kind of job: small groups, mid-size buffers, a buffer hashed by BLAKE3's
    threads."""
    from modelsafe._container.digest import digest_many_later

    items, want = _mixed_items()
    assert digest_many_later(items).result() == want
    assert digest_many_later([]).result() == []


def test_background_digests_finish_when_the_pool_is_busy() -> None:
    """The caller takes the jobs no pool thread has started: a pool busy with another
    load's work (here, blocked) does not make this one wait for it."""
    import threading

    from modelsafe._container import digest as d

    items, want = _mixed_items()
    release = threading.Event()
    pool = d._threads()
    blockers = [pool.submit(release.wait, 30) for _ in range(d.cores())]
    try:
        assert d.digest_many_later(items).result() == want
    finally:
        release.set()
        for b in blockers:
            b.result()


def test_a_failure_while_hashing_in_the_background_reaches_the_caller() -> None:
    from modelsafe._container.digest import digest_many_later

    items: list[Any] = [(memoryview(b"x" * 600_000), 0), (12345, 0)]  # not bytes
    with pytest.raises(TypeError):
        digest_many_later(items).result()


def test_waiting_for_one_digest_hashes_it_here_when_no_thread_has() -> None:
    """``Pending.wait(i)``: with the pool blocked, the caller hashes item ``i``'s job
    itself, ``on_done`` runs for that job's items only, and the rest is still hashed by
    ``result``."""
    import threading

    from modelsafe._container import digest as d

    items, want = _mixed_items()
    done: list[int] = []
    release = threading.Event()
    pool = d._threads()
    blockers = [pool.submit(release.wait, 30) for _ in range(d.cores())]
    try:
        pending = d.digest_many_later(items, on_done=done.append)
        pending.wait(3)  # 300,000 bytes: grouped with others into one job
        assert 3 in done and len(done) < len(items)
        job = list(done)
        pending.wait(3)  # again: already hashed, nothing more is done
        pending.wait(len(items) + 5)  # not an item: returns at once
        assert done == job
        assert pending.result() == want
        assert sorted(done) == list(range(len(items)))
    finally:
        release.set()
        for b in blockers:
            b.result()


def test_waiting_for_one_digest_waits_for_the_thread_hashing_it() -> None:
    """An item a pool thread is hashing: ``wait`` returns once that thread has finished
    it and called ``on_done``, not before."""
    import threading

    from modelsafe._container import digest as d

    if d.cores() < 2:
        pytest.skip("no pool thread on one core: the caller hashes everything itself")
    items, want = _mixed_items()
    started, finish = threading.Event(), threading.Event()
    seen: list[int] = []

    def on_done(i: int) -> None:
        started.set()
        assert finish.wait(30)
        seen.append(i)

    pending = d.digest_many_later(items, on_done=on_done)
    assert started.wait(30)  # a pool thread is inside its job, holding it
    held = [i for i, e in pending._events.items() if not e.is_set()]
    waiter = threading.Thread(target=pending.wait, args=(held[0],))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # still waiting on the thread
    finish.set()
    waiter.join(30)
    assert not waiter.is_alive() and held[0] in seen
    assert pending.result() == want
