"""BLAKE3 digests of buffers, computed in parallel where it pays.

A buffer's digest covers its stored bytes followed by the zero padding up to
the next 64-byte boundary, so every byte of the data section is covered by
exactly one digest (docs/format.md, "Digests").

Threads: many mid-sized buffers (a forest's trees, an MLP's layers) are split
into one group per core, hashed by a pool of threads kept for the life of the
process (starting threads for every load cost more than hashing a small model).
A buffer of 8 MiB or more is hashed by BLAKE3's own threads. Neither survives
``fork``: in a forked child the pool is made anew, and BLAKE3 is given an
explicit thread count, which makes it start its own threads instead of waiting
on the parent's shared ones (that wait never ends).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_ZEROS = bytes(64)
_SMALL = 1 << 14  # below this, a buffer is hashed in the calling thread: a hand-off costs more
# From here, BLAKE3's own threads split the buffer. Not below: a model of a few MiB (a
# booster) is loaded beside its library's OpenMP threads, and more threads woken for a
# few hundred microseconds of hashing made such loads slower, not faster (zoo: xgb500
# 11 -> 25 ms with 1 MiB here).
_LARGE = 1 << 23
_GROUP = 1 << 19  # mid-sized buffers totalling less than this are not worth the pool


def _blake3() -> Any:
    import blake3  # lazy: keeps `import modelsafe` light

    return blake3.blake3


@functools.cache
def cores() -> int:
    """The machine's cores (asked once: the call reads /sys, a cost on every small load)."""
    return os.cpu_count() or 1


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_forked = False  # this process was forked from one that may have used BLAKE3's shared threads


def _after_fork() -> None:
    global _pool, _pool_lock, _forked
    _pool = None  # its threads stayed in the parent
    _pool_lock = threading.Lock()  # another thread may have held it at the fork
    _forked = True


os.register_at_fork(after_in_child=_after_fork)


def _threads() -> ThreadPoolExecutor:
    """The hashing pool (every core but the caller's), started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, cores() - 1), thread_name_prefix="modelsafe-hash")
        return _pool


def digest(data: memoryview | bytes | bytearray, pad: int = 0, threads: int | None = None) -> str:
    """Hex BLAKE3-256 of ``data`` followed by ``pad`` zero bytes (pad < 64).

    ``threads`` caps the threads hashing a large buffer (default: every core).
    """
    b3 = _blake3()
    if len(data) >= _LARGE and threads != 1 and cores() > 1:
        if threads is None and not _forked:
            h = b3(data, max_threads=b3.AUTO)  # BLAKE3's shared threads, started once
        else:
            h = b3(data, max_threads=threads or cores())  # threads of this call's own
    else:
        h = b3(data)
    if pad:
        h.update(_ZEROS[:pad])
    return str(h.hexdigest())


def _hash_all(items: Sequence[tuple[memoryview | bytes, int]]) -> list[str]:
    b3 = _blake3()
    out = []
    for data, pad in items:
        h = b3(data)
        if pad:
            h.update(_ZEROS[:pad])
        out.append(h.hexdigest())
    return out


def _groups(sizes: Sequence[tuple[int, int]], count: int) -> list[list[int]]:
    """Split ``(index, size)`` pairs into ``count`` groups of about equal bytes
    (largest first, each to the lightest group)."""
    groups: list[list[int]] = [[] for _ in range(count)]
    loads = [0] * count
    for i, n in sorted(sizes, key=lambda p: -p[1]):
        g = loads.index(min(loads))
        groups[g].append(i)
        loads[g] += n
    return [g for g in groups if g]


def digest_many(
    items: Sequence[tuple[memoryview | bytes, int]], threads: int | None = None
) -> list[str]:
    """Digests of many ``(data, pad)`` pairs, in order, on ``threads`` threads at most
    (default: every core)."""
    threads = cores() if threads is None else max(1, threads)
    out: list[str] = [""] * len(items)
    mid: list[tuple[int, int]] = []
    mid_bytes = 0
    for i, (data, pad) in enumerate(items):
        n = len(data)
        if n >= _LARGE:
            out[i] = digest(data, pad, None if threads == cores() else threads)
        elif n < _SMALL or threads == 1:
            out[i] = _hash_all([(data, pad)])[0]
        else:
            mid.append((i, n))
            mid_bytes += n
    if not mid:
        return out
    groups = _groups(mid, threads) if mid_bytes >= _GROUP else [[i for i, _ in mid]]
    pending: list[tuple[list[int], Future[list[str]]]] = []
    if len(groups) > 1:
        pool = _threads()
        pending = [(g, pool.submit(_hash_all, [items[i] for i in g])) for g in groups[1:]]
    done = [(groups[0], _hash_all([items[i] for i in groups[0]]))]  # this thread's share
    done += [(g, f.result()) for g, f in pending]
    for g, found in done:
        for i, d in zip(g, found, strict=True):
            out[i] = d
    return out
