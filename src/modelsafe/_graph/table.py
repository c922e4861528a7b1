"""The small-array table (docs/format.md, "Small arrays").

A model can hold a hundred thousand tiny arrays. Describing each with its own
JSON node and buffer would make loading slower than pickle, so arrays of at
most 4 KiB with a simple dtype and at most 4 dimensions are described by one
fixed-size binary record each, in the header member ``arrays``::

    {"dtypes": ["<f8", "<i8", ...], "rows": "<base64 of N 20-byte records>"}

A record is, little-endian: dtype index (u16), ndim (u8), order (u8: 0 C,
1 F), buffer index (u32), offset inside that buffer (u32), four dimensions
(u16 each, unused ones 0). The array's bytes lie in a shared "pack" buffer.
The tree refers to record ``k`` with ``{"$": "nd", "t": k}``. The whole table
is checked at once, with numpy, before anything is built.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import numpy as np

ROW = np.dtype(
    [
        ("dtype", "<u2"),
        ("ndim", "u1"),
        ("order", "u1"),
        ("buf", "<u4"),
        ("at", "<u4"),
        ("shape", "<u2", (4,)),
    ]
)
assert ROW.itemsize == 20
SMALL_ARRAY = 4096  # bytes
PACK_ALIGN = 16
PACK_BYTES = 1 << 22  # a new pack buffer starts once one holds this much
MAX_NDIM = 4
_SMALL_TABLE = 64  # records; fewer are checked in Python, not numpy


class TableWriter:
    """Collects small arrays while encoding, column by column."""

    def __init__(self) -> None:
        self.dtypes: dict[str, int] = {}
        self.didx: list[int] = []
        self.ndim: list[int] = []
        self.fortran: list[int] = []
        self.buf: list[int] = []
        self.at: list[int] = []
        self.dims: list[int] = []  # four per record

    def add(self, dtype: str, shape: tuple[int, ...], fortran: bool, buf: int, at: int) -> int:
        idx = self.dtypes.get(dtype)
        if idx is None:
            idx = self.dtypes[dtype] = len(self.dtypes)
        self.didx.append(idx)
        self.ndim.append(len(shape))
        self.fortran.append(fortran)
        self.buf.append(buf)
        self.at.append(at)
        self.dims.extend((*shape, 0, 0, 0, 0)[:4])
        return len(self.didx) - 1

    def header(self) -> dict[str, Any] | None:
        n = len(self.didx)
        if not n:
            return None
        table = np.zeros(n, dtype=ROW)
        table["dtype"] = self.didx
        table["ndim"] = self.ndim
        table["order"] = self.fortran
        table["buf"] = self.buf
        table["at"] = self.at
        table["shape"] = np.array(self.dims, dtype="<u2").reshape(n, 4)
        return {
            "dtypes": list(self.dtypes),
            "rows": base64.b64encode(table.tobytes()).decode("ascii"),
        }


class TableError(ValueError):
    """The table breaks a rule; the message says which."""


class Table:
    """A checked table, as Python lists for fast per-record access."""

    def __init__(self, spec: Any, buffer_sizes: Sequence[int], dtype_of: Any) -> None:
        if type(spec) is not dict or set(spec) != {"dtypes", "rows"}:
            raise TableError("'arrays' must be an object with 'dtypes' and 'rows'")
        names, rows = spec["dtypes"], spec["rows"]
        if type(names) is not list or not 0 < len(names) <= 65536:
            raise TableError("'arrays.dtypes' must be a non-empty list")
        dtypes = [dtype_of(n) for n in names]
        if any(dt.kind == "O" or dt.fields is not None or dt.subdtype for dt in dtypes):
            raise TableError("table arrays need simple, non-object dtypes")
        if type(rows) is not str:
            raise TableError("'arrays.rows' must be base64 text")
        try:
            raw = base64.b64decode(rows, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TableError("'arrays.rows' is not valid base64") from exc
        if len(raw) % ROW.itemsize:
            raise TableError(f"'arrays.rows' is not a whole number of {ROW.itemsize}-byte records")
        t = np.frombuffer(raw, dtype=ROW)
        n = len(t)
        if n == 0:
            raise TableError("'arrays.rows' is empty")
        if n <= _SMALL_TABLE:
            self._check_few(t, dtypes, buffer_sizes)
        else:
            self._check_many(t, dtypes, buffer_sizes)
        self.n = n
        self.dtypes = dtypes
        self.names = names
        self.used = bytearray(n)

    def _check_many(self, t: Any, dtypes: list[Any], buffer_sizes: Sequence[int]) -> None:
        """The rules, vectorised over all records."""
        n = len(t)
        didx = t["dtype"].astype(np.int64)
        if didx.max() >= len(dtypes):
            raise TableError("a record names a dtype index beyond 'arrays.dtypes'")
        ndim = t["ndim"].astype(np.int64)
        if ndim.max() > MAX_NDIM:
            raise TableError(f"a record has more than {MAX_NDIM} dimensions")
        if t["order"].max() > 1:
            raise TableError("a record's order must be 0 (C) or 1 (F)")
        shape = t["shape"].astype(np.int64)
        used = np.arange(4)[None, :] < ndim[:, None]
        if (shape[used] == 0).any() or (shape[~used] != 0).any():
            raise TableError("a record's used dimensions must be positive and unused ones 0")
        itemsize = np.array([dt.itemsize for dt in dtypes], dtype=np.int64)[didx]
        nbytes = np.where(used, shape, 1).prod(axis=1) * itemsize
        if nbytes.max() > SMALL_ARRAY:
            raise TableError(f"a record describes more than {SMALL_ARRAY} bytes")
        buf = t["buf"].astype(np.int64)
        at = t["at"].astype(np.int64)
        if buf.max() >= len(buffer_sizes):
            raise TableError("a record names a buffer that does not exist")
        if (at % PACK_ALIGN).any():
            raise TableError(f"a record's offset is not a multiple of {PACK_ALIGN}")
        end = at + nbytes
        sizes = np.asarray(buffer_sizes, dtype=np.int64)[buf]
        if (end > sizes).any():
            raise TableError("a record runs past the end of its buffer")
        # Records fill their buffers in order, each at the next 16-byte boundary
        # after the previous one, from offset 0 to the buffer's last byte.
        first = np.ones(n, dtype=bool)
        first[1:] = buf[1:] != buf[:-1]
        last = np.ones(n, dtype=bool)
        last[:-1] = first[1:]
        expect = np.zeros(n, dtype=np.int64)
        expect[1:] = (end[:-1] + PACK_ALIGN - 1) // PACK_ALIGN * PACK_ALIGN
        expect[first] = 0
        if (at != expect).any():
            raise TableError("records must fill their buffer in order, 16-byte aligned, from 0")
        if len(set(buf[first].tolist())) != int(first.sum()):
            raise TableError("the records of one buffer must be consecutive")
        if (end[last] != sizes[last]).any():
            raise TableError("the records of a buffer must end exactly at its end")
        self.buffers = sorted(set(buf.tolist()))
        self.dt = [dtypes[i] for i in didx.tolist()]
        self.buf = buf.tolist()
        self.at = at.tolist()
        self.end = end.tolist()
        self.fortran = t["order"].astype(bool).tolist()
        nd = ndim.tolist()
        sh = shape.tolist()
        self.shape = [tuple(s[:k]) for s, k in zip(sh, nd, strict=True)]
        self.didx = didx.tolist()

    def _check_few(self, t: Any, dtypes: list[Any], buffer_sizes: Sequence[int]) -> None:
        """The same rules, in the same order, record by record: a model's few small arrays
        cost less this way than numpy's per-call overhead on the whole table."""
        didx = t["dtype"].tolist()
        ndim = t["ndim"].tolist()
        order = t["order"].tolist()
        buf = t["buf"].tolist()
        at = t["at"].tolist()
        if max(didx) >= len(dtypes):
            raise TableError("a record names a dtype index beyond 'arrays.dtypes'")
        if max(ndim) > MAX_NDIM:
            raise TableError(f"a record has more than {MAX_NDIM} dimensions")
        if max(order) > 1:
            raise TableError("a record's order must be 0 (C) or 1 (F)")
        shapes = []
        for dims, k in zip(t["shape"].tolist(), ndim, strict=True):
            if 0 in dims[:k] or any(dims[k:]):
                raise TableError("a record's used dimensions must be positive and unused ones 0")
            shapes.append(tuple(dims[:k]))
        end = []
        for shape, d, a in zip(shapes, didx, at, strict=True):
            nbytes = dtypes[d].itemsize
            for dim in shape:
                nbytes *= dim
            if nbytes > SMALL_ARRAY:
                raise TableError(f"a record describes more than {SMALL_ARRAY} bytes")
            end.append(a + nbytes)
        if max(buf) >= len(buffer_sizes):
            raise TableError("a record names a buffer that does not exist")
        if any(a % PACK_ALIGN for a in at):
            raise TableError(f"a record's offset is not a multiple of {PACK_ALIGN}")
        if any(e > buffer_sizes[b] for e, b in zip(end, buf, strict=True)):
            raise TableError("a record runs past the end of its buffer")
        firsts = [k for k in range(len(buf)) if k == 0 or buf[k] != buf[k - 1]]
        starts = set(firsts)
        for k in range(len(buf)):
            expect = 0 if k in starts else -(-end[k - 1] // PACK_ALIGN) * PACK_ALIGN
            if at[k] != expect:
                raise TableError("records must fill their buffer in order, 16-byte aligned, from 0")
        if len({buf[k] for k in firsts}) != len(firsts):
            raise TableError("the records of one buffer must be consecutive")
        lasts = [k - 1 for k in firsts[1:]] + [len(buf) - 1]
        if any(end[k] != buffer_sizes[buf[k]] for k in lasts):
            raise TableError("the records of a buffer must end exactly at its end")
        self.buffers = sorted(set(buf))
        self.dt = [dtypes[i] for i in didx]
        self.buf = buf
        self.at = at
        self.end = end
        self.fortran = [bool(o) for o in order]
        self.shape = shapes
        self.didx = didx

    def describe(self, k: int) -> tuple[str, tuple[int, ...], int, int]:
        """dtype text, shape, buffer and byte size of record ``k`` (for inspect)."""
        return self.names[self.didx[k]], self.shape[k], self.buf[k], self.end[k] - self.at[k]
