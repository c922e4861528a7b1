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

A loader hashes a data section of 256 KiB or more in the background while it builds
the object (``digest_many_later``), and the caller helps with what is left once done.
How much happens during the build depends on the GIL: a hashing thread needs it to
start and again between buffers, and a caller building in Python gives it up only
when it waits or at the interpreter's switch interval (5 ms). So for a build shorter
than that (the zoo's mlp: about 0.4 ms) nearly all the hashing is done after it, by
the caller and the pool together. Two ways round were measured on the zoo's mlp
and not kept: a switch interval of 50 us for the load (the build slowed by as much as
the overlap saved), and making the caller wait until the pool had taken its first
buffer (within the noise, about 5%).
"""

from __future__ import annotations

import functools
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
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


# Verifying while the caller goes on pays only from this many bytes: below it, hashing
# in the calling thread (tens of microseconds) costs less than handing the work over.
BACKGROUND_MIN = 1 << 18


class Pending:
    """Digests being computed on the hashing threads while the caller goes on.

    The work is a queue of jobs (a large buffer, or a group of smaller ones) that the
    pool's threads take one at a time; :meth:`result` makes the caller take the jobs
    still queued, then wait for those being hashed, so a caller done early hashes
    beside the pool, and one whose pool is busy elsewhere does it all itself.
    """

    def __init__(
        self,
        items: Sequence[tuple[memoryview | bytes, int]],
        jobs: list[list[int]],
        on_done: Callable[[int], None] | None = None,
    ) -> None:
        self._items = items
        self._on_done = on_done
        self._out: list[str] = [""] * len(items)
        self._jobs = deque(jobs)
        self._lock = threading.Lock()
        self._taken: list[threading.Event] = []
        self._events: dict[int, threading.Event] = {}  # item -> set once its job is done
        self._error: BaseException | None = None

    def _start(self, job: list[int]) -> threading.Event:
        """Mark ``job`` taken (under the lock): the event its hasher sets when done."""
        done = threading.Event()
        self._taken.append(done)
        for i in job:
            self._events[i] = done
        return done

    def _take(self) -> tuple[list[int] | None, threading.Event | None]:
        with self._lock:
            if not self._jobs:
                return None, None
            job = self._jobs.popleft()
            return job, self._start(job)

    def work(self) -> None:
        """Hash jobs until none is left in the queue."""
        while True:
            job, done = self._take()
            if job is None or done is None:
                return
            self._hash(job, done)

    def _hash(self, job: list[int], done: threading.Event) -> None:
        try:
            data, pad = self._items[job[0]]
            if len(data) >= _LARGE:
                self._out[job[0]] = digest(data, pad)
            else:
                for i, d in zip(job, _hash_all([self._items[i] for i in job]), strict=True):
                    self._out[i] = d
            if self._on_done is not None:
                for i in job:
                    self._on_done(i)
        except BaseException as exc:  # re-raised in the caller by result()
            self._error = exc
        finally:
            done.set()

    def wait(self, i: int) -> None:
        """Return once item ``i`` is hashed and ``on_done(i)`` has run: by hashing its job
        here if no thread has taken it yet, else by waiting for the thread that has. (A
        thread that has hashed its bytes still needs the GIL to say so; a caller busy in
        Python code would give it up only at the next switch interval, 5 ms on.) Errors
        are left to :meth:`result`."""
        with self._lock:
            done = self._events.get(i)
            job = None
            if done is None:
                job = next((j for j in self._jobs if i in j), None)
                if job is None:
                    return  # not an item of this queue
                self._jobs.remove(job)
                done = self._start(job)
        if job is not None:
            self._hash(job, done)
        else:
            done.wait()

    def result(self) -> list[str]:
        self.work()
        for done in self._taken:  # nothing is taken once the queue is empty
            done.wait()
        if self._error is not None:
            raise self._error
        return self._out


def digest_many_later(
    items: Sequence[tuple[memoryview | bytes, int]],
    on_done: Callable[[int], None] | None = None,
) -> Pending:
    """Start the digests of ``digest_many`` on the hashing threads and return at once, so
    the caller's thread does other work meanwhile (:meth:`Pending.result` to get them).
    ``on_done(i)`` is called, on whichever thread hashed it, once item ``i`` is hashed.

    Each buffer of 8 MiB or more is a job of its own (hashed by BLAKE3's threads), the
    others are grouped into jobs of about 512 KiB, largest first.
    """
    jobs: list[list[int]] = []
    group: list[int] = []
    group_bytes = 0
    for i, n in sorted(((i, len(d)) for i, (d, _) in enumerate(items)), key=lambda p: -p[1]):
        if n >= _LARGE:
            jobs.append([i])
            continue
        group.append(i)
        group_bytes += n
        if group_bytes >= _GROUP:
            jobs.append(group)
            group, group_bytes = [], 0
    if group:
        jobs.append(group)
    pending = Pending(items, jobs, on_done)
    if cores() > 1:
        pool = _threads()
        for _ in range(min(cores() - 1, len(jobs))):
            pool.submit(pending.work)
    return pending
