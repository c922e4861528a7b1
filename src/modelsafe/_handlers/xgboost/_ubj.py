"""A strict reader for the UBJSON that XGBoost writes (``Booster.save_raw("ubj")``).

XGBoost's own reader trusts its input: it copies lengths and counts from the
file into ``memcpy`` and allocations without checking them against the buffer.
So a model reaches XGBoost only after this reader has consumed every byte of
it and the schema checks (``_check``) have passed. It accepts only the forms
XGBoost writes, which keeps its interpretation identical to XGBoost's:

- objects ``{ (key value)* }`` whose keys are ``L`` + int64 length + UTF-8
  bytes, each key at most once (XGBoost would keep the first of two, Python the
  last: a file cannot be read two ways);
- arrays with a count, ``[#L n value*n``, and typed arrays ``[$t#L n data``
  for ``t`` in ``d`` (float32), ``U`` (uint8), ``i`` (int8), ``l`` (int32),
  ``L`` (int64), big-endian;
- strings ``S`` + ``L`` + int64 length + UTF-8; integers ``i U I l L``;
  float32 ``d``; null ``Z``.

Booleans (which older XGBoost read back wrongly), float64, high-precision
numbers, no-ops, count-less containers and anything else are refused.

Typed arrays are returned as :class:`Typed` (marker, offset, count) records
into the buffer, not copied. The ``trees`` array of a tree booster, which is
nearly all of a model, is read by a fast path that expects the keys XGBoost
writes in its order and records every tree field in :class:`TreeColumns`; a
tree laid out otherwise is read by the general reader and must have the same
fields.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import numpy as np

from ..._container.layout import DEFAULT_LIMITS

_INT64 = struct.Struct(">q").unpack_from
_FLOAT32 = struct.Struct(">f").unpack_from
_INTS = {
    0x69: (struct.Struct(">b").unpack_from, 1),  # i
    0x55: (struct.Struct(">B").unpack_from, 1),  # U
    0x49: (struct.Struct(">h").unpack_from, 2),  # I
    0x6C: (struct.Struct(">i").unpack_from, 4),  # l
    0x4C: (_INT64, 8),  # L
}
ITEM_SIZE = {0x64: 4, 0x55: 1, 0x69: 1, 0x6C: 4, 0x4C: 8}  # typed-array markers
MARKER_DTYPE = {0x64: ">f4", 0x55: "u1", 0x69: "i1", 0x6C: ">i4", 0x4C: ">i8"}
MAX_DEPTH = 32
# Values built outside typed arrays (an array's items, an object's keys), as many as a
# file's header may hold: a two-byte empty object '{}' is ~70 bytes of Python objects.
MAX_VALUES = DEFAULT_LIMITS.max_header_values

# The fields of one tree, in the order XGBoost writes them (its objects are sorted
# maps), with the typed-array marker each must have; ``id`` is an integer and
# ``tree_param`` an object of four decimal strings.
TREE_ARRAYS = (
    ("base_weights", 0x64),
    ("categories", 0x6C),
    ("categories_nodes", 0x6C),
    ("categories_segments", 0x4C),
    ("categories_sizes", 0x4C),
    ("default_left", 0x55),
    ("left_children", 0x6C),
    ("loss_changes", 0x64),
    ("parents", 0x6C),
    ("right_children", 0x6C),
    ("split_conditions", 0x64),
    ("split_indices", 0x6C),
    ("split_type", 0x55),
    ("sum_hessian", 0x64),
)
TREE_PARAMS = ("num_deleted", "num_feature", "num_nodes", "size_leaf_vector")
TREE_KEYS = frozenset([name for name, _ in TREE_ARRAYS] + ["id", "tree_param"])


class UBJError(ValueError):
    """The bytes are not the UBJSON XGBoost writes."""


class Typed(NamedTuple):
    """A typed array: its marker, the offset of its data in the buffer, its item count."""

    marker: int
    offset: int
    items: int


class TreeColumns:
    """Every tree of a ``trees`` array, field by field: per tree, where each typed array's
    data starts in the buffer and how many items it has; and each tree's id and
    ``tree_param`` (num_deleted, num_feature, num_nodes, size_leaf_vector)."""

    def __init__(
        self,
        offsets: dict[str, np.ndarray[Any, Any]],
        counts: dict[str, np.ndarray[Any, Any]],
        ids: np.ndarray[Any, Any],
        params: np.ndarray[Any, Any],
    ) -> None:
        self.n = len(ids)
        self.offsets = offsets
        self.counts = counts
        self.ids = ids
        self.params = params.reshape(self.n, len(TREE_PARAMS))


def _key(name: str) -> bytes:
    raw = name.encode()
    return b"L" + len(raw).to_bytes(8, "big") + raw


# The fast path matches these byte strings in sequence: key, then typed-array header.
_FAST_ARRAYS = [(_key(n) + b"[$" + bytes([m]) + b"#L", n, ITEM_SIZE[m]) for n, m in TREE_ARRAYS]
_ID_KEY = _key("id")
# Byte counts the fast path adds up, for all trees at once: the prefixes of base_weights,
# categories and categories_nodes; from categories_nodes' count to the id's marker
# (constant, per categorical split, per node); and from the id's value to tree_param
# (constant, per node).
_FAST_HEAD = [len(prefix) for prefix, _, _ in _FAST_ARRAYS[:3]]
_FAST_TO_ID = (
    8 + sum(len(prefix) + 8 for prefix, _, _ in _FAST_ARRAYS[3:6]) + len(_ID_KEY),
    1,  # default_left: one byte per node
)
_FAST_TAIL = (
    sum(len(prefix) + 8 for prefix, _, _ in _FAST_ARRAYS[6:]),
    sum(size for _, _, size in _FAST_ARRAYS[6:]),
)


# Every tree XGBoost writes starts with these bytes: its object, then base_weights' key
# and typed-array header.
_TREE_HEAD = b"{" + _FAST_ARRAYS[0][0]
# From tree_param's key to the first digit string, and from each digit string to the next:
# a key, then a string marker and the first 7 bytes of its int64 length.
_PARAM_KEYS = [
    (_key("tree_param") + b"{" if i == 0 else b"") + _key(p) + b"SL" + bytes(7)
    for i, p in enumerate(TREE_PARAMS)
]
_MAX_RUNS = 8  # runs of one integer marker read at once in an untyped array
_INT_DTYPES = {0x69: "i1", 0x55: "u1", 0x49: ">i2", 0x6C: ">i4", 0x4C: ">i8"}


class _Views:
    """Reads at many offsets of a buffer at once, each read checked against its end.

    A method returns None where any offset would read outside the buffer or finds
    something else than it reads: the caller then falls back to the general reader.
    """

    def __init__(self, buf: bytes | bytearray) -> None:
        self.u8 = np.frombuffer(buf, dtype=np.uint8)
        self.end = len(self.u8)
        self.words = self.at(8, "<u8")

    def at(self, size: int, dtype: str) -> np.ndarray[Any, Any]:
        """Element k is the ``size`` bytes from byte k, as ``dtype``."""
        return np.ndarray(
            shape=(max(self.end - size + 1, 0),), dtype=dtype, buffer=self.u8, strides=(1,)
        )

    def _fits(self, p: np.ndarray[Any, Any], size: int | np.ndarray[Any, Any]) -> bool:
        return bool(p.min() >= 0 and (p + size).max() <= self.end)

    def count(self, p: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
        """The int64 count at each offset, if each is from 0 to the buffer's size."""
        if not self._fits(p, 8):
            return None
        count = self.at(8, ">i8")[p].astype(np.int64)
        return count if ((count >= 0) & (count <= self.end)).all() else None

    def integer(
        self, p: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None:
        """The UBJSON integer at each offset (marker, then value) and its value's width."""
        if not self._fits(p, 1):
            return None
        markers = self.u8[p]
        width = np.zeros(len(p), dtype=np.int64)
        value = np.zeros(len(p), dtype=np.int64)
        for marker, dtype in _INT_DTYPES.items():
            hit = markers == marker
            if hit.any():
                size = np.dtype(dtype).itemsize
                where = p[hit] + 1
                if not self._fits(where, size):
                    return None
                width[hit] = size
                value[hit] = self.at(size, dtype)[where]
        return None if (width == 0).any() else (value, width)

    def params(
        self, p: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None:
        """Each tree_param object as XGBoost writes it (four decimal strings of 1 to 10
        digits), closed with the tree's own brace: the values, and where each ends."""
        values = np.zeros((len(p), len(_PARAM_KEYS)), dtype=np.int64)
        u8 = self.u8
        for i, key in enumerate(_PARAM_KEYS):
            if not _same(self.words, p, key):
                return None
            p = p + len(key)
            if not self._fits(p, 1):
                return None
            digits = u8[p].astype(np.int64)
            if ((digits < 1) | (digits > 10)).any() or not self._fits(p + 1, digits):
                return None
            for k in range(int(digits.max())):
                on = k < digits
                d = u8[np.where(on, p + 1 + k, 0)].astype(np.int64) - 0x30
                if (on & ((d < 0) | (d > 9))).any():
                    return None
                values[:, i] = np.where(on, values[:, i] * 10 + d, values[:, i])
            p = p + 1 + digits
        if not self._fits(p, 2) or (u8[p] != 0x7D).any() or (u8[p + 1] != 0x7D).any():
            return None
        return values, p + 2


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse(buf: bytes | bytearray) -> Any:
    """The document in ``buf``, which must hold exactly one value and nothing after it."""
    reader = _Reader(buf)
    try:
        value, pos = reader.value(0, 0)
    except (IndexError, struct.error):
        raise UBJError("the model ends in the middle of a value") from None
    if pos != len(buf):
        raise UBJError(f"{len(buf) - pos} bytes follow the end of the model")
    return value


class _Reader:
    def __init__(self, buf: bytes | bytearray) -> None:
        self.buf = buf
        self.end = len(buf)
        self._views: _Views | None = None
        self._values = 0  # built so far, outside typed arrays (MAX_VALUES)

    def _spend(self, n: int, pos: int) -> None:
        """``n`` more values to build at byte ``pos``: refused past ``MAX_VALUES``, before
        they are built."""
        self._values += n
        if self._values > MAX_VALUES:
            raise UBJError(
                f"the model holds more than {MAX_VALUES} values outside typed arrays "
                f"(at byte {pos})"
            )

    def _length(self, pos: int, unit: int) -> tuple[int, int]:
        """An int64 count at ``pos`` of items of ``unit`` bytes that must fit in the buffer."""
        if pos + 8 > self.end:
            raise UBJError("the model ends in the middle of a length")
        n: int = _INT64(self.buf, pos)[0]
        if n < 0 or n * unit > self.end - pos - 8:
            raise UBJError(f"length {n} at byte {pos} reaches past the end of the model")
        return n, pos + 8

    def _text(self, pos: int) -> tuple[str, int]:
        if self.buf[pos] != 0x4C:
            raise UBJError(f"a string length must be an int64 ('L') at byte {pos}")
        n, pos = self._length(pos + 1, 1)
        try:
            return self.buf[pos : pos + n].decode("utf-8"), pos + n
        except UnicodeDecodeError:
            raise UBJError(f"the string at byte {pos} is not valid UTF-8") from None

    def value(self, pos: int, depth: int) -> tuple[Any, int]:
        buf = self.buf
        m = buf[pos]
        pos += 1
        if m == 0x7B:  # {
            return self._object(pos, depth)
        if m == 0x5B:  # [
            return self._array(pos, depth, None)
        if m == 0x53:  # S
            return self._text(pos)
        spec = _INTS.get(m)
        if spec is not None:
            unpack, size = spec
            if pos + size > self.end:
                raise UBJError("the model ends in the middle of an integer")
            return unpack(buf, pos)[0], pos + size
        if m == 0x64:  # d
            if pos + 4 > self.end:
                raise UBJError("the model ends in the middle of a number")
            return _FLOAT32(buf, pos)[0], pos + 4
        if m == 0x5A:  # Z
            return None, pos
        raise UBJError(f"unsupported UBJSON marker {bytes([m])!r} at byte {pos - 1}")

    def _object(self, pos: int, depth: int) -> tuple[dict[str, Any], int]:
        if depth >= MAX_DEPTH:
            raise UBJError("the model nests too deeply")
        out: dict[str, Any] = {}
        buf = self.buf
        while buf[pos] != 0x7D:  # }
            self._spend(1, pos)
            key, pos = self._text(pos)
            if key in out:
                raise UBJError(f"key {key!r} appears twice in one object")
            if key == "trees" and buf[pos] == 0x5B:
                out[key], pos = self._array(pos + 1, depth + 1, key)
            else:
                out[key], pos = self.value(pos, depth + 1)
        return out, pos + 1

    def _array(self, pos: int, depth: int, key: str | None) -> tuple[Any, int]:
        if depth >= MAX_DEPTH:
            raise UBJError("the model nests too deeply")
        buf = self.buf
        if buf[pos] == 0x24:  # $: typed
            marker = buf[pos + 1]
            size = ITEM_SIZE.get(marker)
            if size is None:
                raise UBJError(f"unsupported typed array of {bytes([marker])!r} at byte {pos}")
            if buf[pos + 2 : pos + 4] != b"#L":
                raise UBJError(f"a typed array needs an int64 count at byte {pos}")
            n, pos = self._length(pos + 4, size)
            return Typed(marker, pos, n), pos + n * size
        if buf[pos : pos + 2] != b"#L":
            raise UBJError(f"an array needs an int64 count at byte {pos}")
        n, pos = self._length(pos + 2, 1)
        self._spend(n, pos)
        if key == "trees":
            return self._trees(pos, n, depth)
        uniform = self._uniform_integers(pos, n)
        if uniform is not None:
            return uniform
        items: list[Any] = []
        for _ in range(n):
            spec = _INTS.get(buf[pos])
            if spec is not None and pos + spec[1] < self.end:  # inline: arrays of integers
                items.append(spec[0](buf, pos + 1)[0])
                pos += 1 + spec[1]
                continue
            item, pos = self.value(pos, depth + 1)
            items.append(item)
        return items, pos

    def _uniform_integers(self, pos: int, n: int) -> tuple[list[int], int] | None:
        """A long untyped array of integers in a few runs of one marker each (XGBoost writes
        ``tree_info`` and ``iteration_indptr`` so, each integer as narrow as it fits), read
        a run at a time; or None, for the general loop."""
        if n < 32:
            return None
        buf, end, v = self.buf, self.end, self.views()
        items: list[int] = []
        for _ in range(_MAX_RUNS):
            if len(items) == n:
                return items, pos
            spec = _INTS.get(buf[pos]) if pos < end else None
            if spec is None:
                return None
            marker, step = buf[pos], 1 + spec[1]
            most = min(n - len(items), (end - pos) // step)
            markers = v.u8[pos : pos + most * step : step]
            other = np.flatnonzero(markers != marker)
            run = int(other[0]) if len(other) else most
            if run == 0:
                return None
            values = v.at(spec[1], _INT_DTYPES[marker])[pos + 1 : pos + run * step : step]
            items += values.tolist()
            pos += run * step
        return (items, pos) if len(items) == n else None

    def views(self) -> _Views:
        if self._views is None:
            self._views = _Views(self.buf)
        return self._views

    # -- the trees -----------------------------------------------------------------------
    def _trees(self, pos: int, n: int, depth: int) -> tuple[TreeColumns, int]:
        fast = self._fast_trees(pos, n)
        if fast is not None:
            return fast
        lists: dict[str, list[Any]] = {name: [] for name, _ in TREE_ARRAYS}
        counts: dict[str, list[int]] = {name: [] for name, _ in TREE_ARRAYS}
        ids: list[int] = []
        params: list[int] = []
        for t in range(n):
            pos = self._slow_tree(pos, t, depth, lists, counts, ids, params)
        return (
            TreeColumns(
                {k: np.array(v, dtype=np.int64) for k, v in lists.items()},
                {k: np.array(v, dtype=np.int64) for k, v in counts.items()},
                np.array(ids, dtype=np.int64),
                np.array(params, dtype=np.int64),
            ),
            pos,
        )

    def _fast_trees(self, pos: int, n: int) -> tuple[TreeColumns, int] | None:
        """The trees laid out exactly as XGBoost writes them, or None.

        The trees are found by the bytes every one of them starts with; from each start,
        what fixes the layout (the node count, the categorical counts, the width of the
        id, the tree_param digits) is read for all trees at once, and the trees must
        follow each other exactly from ``pos``. Every key, marker and count the layout
        implies is then verified for all trees at once. Accepting here therefore means
        the bytes are that layout: any other file is read by the general path.
        """
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            none = {name: empty for name, _ in TREE_ARRAYS}
            return TreeColumns(none, none, empty, empty), pos
        buf, end = self.buf, self.end
        starts: list[int] = []
        at = pos
        for _ in range(n):  # the first n places the head occurs: C-speed searches
            at = buf.find(_TREE_HEAD, at)
            if at < 0:
                return None
            starts.append(at)
            at += len(_TREE_HEAD)
        if starts[0] != pos or end < 16:
            return None
        v = self.views()
        p = np.array(starts, dtype=np.int64) + 1 + _FAST_HEAD[0]
        counts = []
        for step in (_FAST_HEAD[1], _FAST_HEAD[2], None):
            count = v.count(p)
            if count is None:
                return None
            counts.append(count)
            if step is not None:
                p = p + 8 + 4 * count + step
        nodes, cats, splits = counts
        p = p + _FAST_TO_ID[0] + 20 * splits + _FAST_TO_ID[1] * nodes
        found = v.integer(p)
        if found is None:
            return None
        ids, width = found
        tree_param = p + 1 + width + _FAST_TAIL[0] + _FAST_TAIL[1] * nodes
        found = v.params(tree_param)
        if found is None:
            return None
        params, after = found
        if (after[:-1] != np.array(starts[1:], dtype=np.int64)).any():
            return None  # not one tree after the other
        cols = self._fast_verify(starts, (nodes, cats, splits, width, tree_param), ids, params)
        return None if cols is None else (cols, int(after[-1]))

    def _fast_verify(
        self,
        starts: list[int],
        layout: tuple[np.ndarray[Any, Any], ...],
        ids: np.ndarray[Any, Any],
        params: np.ndarray[Any, Any],
    ) -> TreeColumns | None:
        """Every key, marker and count that ``layout`` (per tree: nodes, categories,
        categorical splits, the id's width, where tree_param starts) implies, checked for
        all trees at once; the trees' columns, or None."""
        v = self.views()
        nodes, cats, splits, width, tree_param = layout
        count_of = {
            "categories": cats,
            "categories_nodes": splits,
            "categories_segments": splits,
            "categories_sizes": splits,
        }
        p = np.array(starts, dtype=np.int64) + 1
        offsets, counts = {}, {}
        for prefix, name, size in _FAST_ARRAYS:
            if name == "left_children":  # the id sits between default_left and this
                if not _same(v.words, p, _ID_KEY):
                    return None
                p = p + len(_ID_KEY) + 1 + width
            if not _same(v.words, p, prefix):
                return None
            count = count_of.get(name, nodes)
            at = p + len(prefix)
            found = v.count(at)
            if found is None or (found != count).any():
                return None
            offsets[name] = at + 8
            counts[name] = count
            p = at + 8 + count * size
        if (p != tree_param).any():
            return None
        return TreeColumns(offsets, counts, ids, params)

    def _slow_tree(
        self,
        pos: int,
        t: int,
        depth: int,
        offsets: dict[str, list[Any]],
        counts: dict[str, list[int]],
        ids: list[int],
        params: list[int],
    ) -> int:
        where = f"tree {t}"
        tree, pos = self.value(pos, depth + 1)
        if type(tree) is not dict:
            raise UBJError(f"{where} is not an object")
        if set(tree) != TREE_KEYS:
            extra = sorted(set(tree) - TREE_KEYS)
            missing = sorted(TREE_KEYS - set(tree))
            raise UBJError(
                f"{where} does not have the fields of an XGBoost tree "
                f"(unexpected: {extra}, missing: {missing}); multi-output trees are not supported"
            )
        for name, marker in TREE_ARRAYS:
            value = tree[name]
            if type(value) is not Typed or value.marker != marker:
                raise UBJError(f"{where}: {name} must be a typed array of {MARKER_DTYPE[marker]}")
            offsets[name].append(value.offset)
            counts[name].append(value.items)
        tree_id = tree["id"]
        if type(tree_id) is not int:
            raise UBJError(f"{where}: id must be an integer")
        param = tree["tree_param"]
        if type(param) is not dict or set(param) != set(TREE_PARAMS):
            raise UBJError(f"{where}: tree_param must hold exactly {list(TREE_PARAMS)}")
        for name in TREE_PARAMS:
            text = param[name]
            if type(text) is not str or not 0 < len(text) <= 10 or not _is_decimal(text):
                raise UBJError(f"{where}: tree_param.{name} must be a decimal string")
            params.append(int(text))
        ids.append(tree_id)
        return pos


def _same(words: np.ndarray[Any, Any], at: np.ndarray[Any, Any], expected: bytes) -> bool:
    """Whether ``expected`` (8 bytes or more) stands at every offset in ``at``; ``words[k]``
    is the 8 bytes from byte k, little-endian."""
    n = len(expected)
    if at.min() < 0 or at.max() + n > len(words) + 7:
        return False
    for chunk in (*range(0, n - 8, 8), n - 8):  # the last chunk may overlap the one before
        value = int.from_bytes(expected[chunk : chunk + 8], "little")
        if (words[at + chunk] != value).any():
            return False
    return True
