"""BLAKE3 digests of buffers, computed in parallel where it pays.

A buffer's digest covers its stored bytes followed by the zero padding up to
the next 64-byte boundary, so every byte of the data section is covered by
exactly one digest (docs/format.md, "Digests").
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_ZEROS = bytes(64)
_SMALL = 1 << 16  # below this, thread hand-off costs more than the hash
_LARGE = 1 << 23  # from here, BLAKE3's own multi-threading is used


def _blake3() -> Any:
    import blake3  # lazy: keeps `import modelsafe` light

    return blake3.blake3


@functools.cache
def cores() -> int:
    """The machine's cores (asked once: the call reads /sys, a cost on every small load)."""
    return os.cpu_count() or 1


def digest(data: memoryview | bytes | bytearray, pad: int = 0, threads: int | None = None) -> str:
    """Hex BLAKE3-256 of ``data`` followed by ``pad`` zero bytes (pad < 64).

    ``threads`` caps the threads hashing a large buffer (default: every core).
    """
    b3 = _blake3()
    if len(data) >= _LARGE and threads != 1:
        h = b3(data, max_threads=b3.AUTO if threads is None else threads)
    else:
        h = b3(data)
    if pad:
        h.update(_ZEROS[:pad])
    return str(h.hexdigest())


def digest_many(
    items: Sequence[tuple[memoryview | bytes, int]], threads: int | None = None
) -> list[str]:
    """Digests of many ``(data, pad)`` pairs, in order, on ``threads`` threads at most
    (default: every core)."""
    threads = cores() if threads is None else max(1, threads)
    out: list[str] = [""] * len(items)
    mid: list[int] = []
    b3 = _blake3()
    for i, (data, pad) in enumerate(items):
        n = len(data)
        if n < _SMALL:
            h = b3(data)
            if pad:
                h.update(_ZEROS[:pad])
            out[i] = h.hexdigest()
        elif n >= _LARGE:
            out[i] = digest(data, pad, threads)
        else:
            mid.append(i)
    if len(mid) == 1 or (mid and threads == 1):
        for i in mid:
            out[i] = digest(*items[i])
    elif mid:
        workers = min(len(mid), threads)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, d in zip(mid, pool.map(lambda j: digest(*items[j]), mid), strict=True):
                out[i] = d
    return out
