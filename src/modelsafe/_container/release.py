"""Give back the mapped pages of buffers the loader has copied.

Some buffers are read once, then copied: tree nodes (scikit-learn's ``Tree`` copies
them into memory of its own), index arrays the loader copies before checking them, a
LightGBM model text. Once a buffer's digest is computed and a range of it is copied,
its mapped pages serve no one, yet they would count in the process's resident memory
for as long as the map lives: a forest of 63 MB held 126 MB. The builder says what it
copied (:meth:`Releaser.consumed`), the hashing threads say what they have hashed
(:meth:`Releaser.hashed`); the pages of a range are dropped (``MADV_DONTNEED``) once
both are done, whichever comes second, so hashing never faults a dropped page back in.

Hashing pages in every buffer at the start of a load, though the builder may read
some of them only much later: a TF-IDF model's ``idf_`` and ``coef_`` after its
200,000-word vocabulary, whose dict is built meanwhile. So a buffer hashed before
the builder has taken a view of it (:meth:`Releaser.handed`) is dropped at once;
its pages come back when something reads them.

Only whole pages inside one buffer are dropped: a page shared with the next buffer may
still be viewed. A dropped page of an intact file reads back the same bytes from the
page cache, should anything read it again.
"""

from __future__ import annotations

import bisect
import mmap as _mmap
import threading
from collections.abc import Sequence
from typing import Any

_ADVICE = getattr(_mmap, "MADV_DONTNEED", None)  # None: not on Linux, nothing is dropped
# Smaller ranges stay: dropping them saves little and costs time (a small HGB model's
# 200 KB of nodes: 26 us of its 0.8 ms load).
MIN_RANGE = 1 << 20


class Releaser:
    """Drops the mapped pages of copied ranges of one data section.

    ``whole`` is the data section, a view of ``mm`` from ``offset``; ``buffers`` its
    buffers (``.offset``, ``.size``, in order: the reader checks that they follow each
    other). ``hashed``: every digest is already known (verified before building, or
    not verified at all). Made for every mapped load, so it costs next to nothing until
    a range of ``MIN_RANGE`` or more is consumed.
    """

    def __init__(
        self, mm: _mmap.mmap, whole: memoryview, offset: int, buffers: Sequence[Any], hashed: bool
    ) -> None:
        self._mm = mm
        self._whole = whole
        self._offset = offset
        self._buffers = buffers
        self._lock = threading.Lock()
        n = len(buffers)
        self._done = bytearray(b"\x01" * n if hashed else n)
        self._handed = bytearray(n)  # the builder has a view of the buffer
        self._waiting: dict[int, list[tuple[int, int]]] = {}
        self._base = -1  # the address of whole, once a range is consumed
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.dropped = 0  # bytes given back, for tests and benchmarks

    @classmethod
    def over(
        cls, mm: _mmap.mmap, whole: memoryview, offset: int, buffers: Sequence[Any], hashed: bool
    ) -> Releaser | None:
        """A releaser for the data section, or None where pages cannot be dropped."""
        if _ADVICE is None or not buffers or not len(whole):
            return None
        return cls(mm, whole, offset, buffers, hashed)

    def consumed(self, arr: Any, minimum: int | None = None) -> None:
        """``arr`` (a contiguous array or buffer viewing the map) has been copied and
        will not be read again; anything else, or less than ``minimum`` bytes (default
        ``MIN_RANGE``), is ignored: a caller that gives a buffer back a part at a time
        passes a smaller minimum."""
        if getattr(arr, "nbytes", 0) < max(MIN_RANGE if minimum is None else minimum, 1):
            return
        span = _span(arr)
        if span is None:
            return
        if self._base < 0:
            import numpy as np

            whole = np.frombuffer(self._whole, dtype=np.uint8)
            self._base = int(whole.__array_interface__["data"][0])
            self._starts = [b.offset for b in self._buffers]
            self._ends = [b.offset + b.size for b in self._buffers]
        start = span[0] - self._base
        end = start + span[1]
        if start < 0 or end > self._ends[-1]:
            return
        i = bisect.bisect_right(self._starts, start) - 1
        if i < 0 or end > self._ends[i]:
            return  # outside every buffer, or across two
        with self._lock:
            if not self._done[i]:
                self._waiting.setdefault(i, []).append((start, end))
                return
        self._drop(start, end)

    def handed(self, index: int) -> None:
        """The builder takes a view of buffer ``index``: its pages stay until it says it
        has copied them (:meth:`consumed`)."""
        if not self._handed[index]:  # once set it stays set: no lock needed to read it
            with self._lock:  # waits for a drop of the buffer's pages under way
                self._handed[index] = 1

    def hashed(self, index: int) -> None:
        """The digest of buffer ``index`` is computed: its copied ranges may go, and all
        of its pages if the builder has not taken a view of it yet."""
        with self._lock:
            self._done[index] = 1
            ranges = self._waiting.pop(index, ())
            b = self._buffers[index]
            if not self._handed[index] and b.size >= MIN_RANGE:
                # Under the lock: no view is handed out, so nothing written into the
                # (copy-on-write) pages, while they go.
                self.dropped += drop_pages(
                    self._mm, self._offset + b.offset, self._offset + b.offset + b.size
                )
        for start, end in ranges:
            self._drop(start, end)

    def _drop(self, start: int, end: int) -> None:
        dropped = drop_pages(self._mm, self._offset + start, self._offset + end)
        with self._lock:
            self.dropped += dropped


def drop_pages(mm: _mmap.mmap, start: int, end: int) -> int:
    """Let the kernel drop the whole pages of ``mm`` inside ``start:end`` (offsets in the
    map), so they stop counting in this process's memory; returns the bytes dropped.
    Pages that cannot be dropped are kept: never a reason to fail a load."""
    page = _mmap.PAGESIZE
    lo, hi = -(-start // page) * page, end // page * page
    if hi <= lo or _ADVICE is None:
        return 0
    try:
        mm.madvise(_ADVICE, lo, hi - lo)
    except (OSError, ValueError):
        return 0
    return hi - lo


def _span(arr: Any) -> tuple[int, int] | None:
    """The address and size of a contiguous array or buffer, or None."""
    import numpy as np

    if type(arr) is not np.ndarray:
        if type(arr) is not memoryview or not arr.c_contiguous:
            return None
        arr = np.frombuffer(arr, dtype=np.uint8)
    if not arr.flags.c_contiguous and not arr.flags.f_contiguous:
        return None
    return int(arr.__array_interface__["data"][0]), int(arr.nbytes)
