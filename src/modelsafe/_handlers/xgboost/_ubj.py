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

import re
import struct
from typing import Any, NamedTuple

import numpy as np

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
# Byte counts the per-tree loop adds up: the prefixes of base_weights, categories and
# categories_nodes; from categories_nodes' count to the id's marker (constant, per
# categorical split, per node); and from the id's value to tree_param (constant, per node).
_FAST_HEAD = [len(prefix) for prefix, _, _ in _FAST_ARRAYS[:3]]
_FAST_TO_ID = (
    8 + sum(len(prefix) + 8 for prefix, _, _ in _FAST_ARRAYS[3:6]) + len(_ID_KEY),
    1,  # default_left: one byte per node
)
_FAST_TAIL = (
    sum(len(prefix) + 8 for prefix, _, _ in _FAST_ARRAYS[6:]),
    sum(size for _, _, size in _FAST_ARRAYS[6:]),
)
_DIGITS = rb"(.)([0-9]{1,10})"
_FAST_PARAM = re.compile(
    re.escape(_key("tree_param"))
    + rb"\{"
    + b"".join(re.escape(_key(p) + b"SL" + bytes(7)) + _DIGITS for p in TREE_PARAMS)
    + rb"\}\}",
    re.DOTALL,
)


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
        if key == "trees":
            return self._trees(pos, n, depth)
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

        A Python loop per tree reads only what fixes the layout (the node count, the
        categorical counts, the width of the id, the tree_param digits); every key,
        marker and count the layout implies is then verified for all trees at once.
        Accepting here therefore means the bytes are that layout: any other file is
        read by the general path.
        """
        buf, end = self.buf, self.end
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            none = {name: empty for name, _ in TREE_ARRAYS}
            return TreeColumns(none, none, empty, empty), pos
        starts, rows, ids, params = [], [], [], []
        try:
            for _ in range(n):
                if buf[pos] != 0x7B:
                    return None
                p = pos + 1 + _FAST_HEAD[0]
                nodes = _INT64(buf, p)[0]
                p += 8 + 4 * nodes + _FAST_HEAD[1]
                cats = _INT64(buf, p)[0]
                p += 8 + 4 * cats + _FAST_HEAD[2]
                splits = _INT64(buf, p)[0]
                p += _FAST_TO_ID[0] + 20 * splits + _FAST_TO_ID[1] * nodes
                if min(nodes, cats, splits) < 0 or p >= end:
                    return None
                spec = _INTS.get(buf[p])
                if spec is None:
                    return None
                ids.append(spec[0](buf, p + 1)[0])
                width = spec[1]
                p += 1 + width + _FAST_TAIL[0] + _FAST_TAIL[1] * nodes
                match = _FAST_PARAM.match(buf, p)
                if match is None:
                    return None
                groups = match.groups()
                for i in range(0, 8, 2):
                    if groups[i][0] != len(groups[i + 1]):
                        return None
                    params.append(int(groups[i + 1]))
                starts.append(pos)
                rows.append((nodes, cats, splits, width, p))
                pos = match.end()
        except (IndexError, struct.error):
            return None
        cols = self._fast_verify(starts, rows, ids, params)
        return None if cols is None else (cols, pos)

    def _fast_verify(
        self,
        starts: list[int],
        rows: list[tuple[int, int, int, int, int]],
        ids: list[int],
        params: list[int],
    ) -> TreeColumns | None:
        u8 = np.frombuffer(self.buf, dtype=np.uint8)
        if len(u8) < 8:
            return None
        # Element k of these views is the 8 bytes from byte k: one gather checks 8 bytes
        # at every tree's offset.
        words = np.ndarray(shape=(len(u8) - 7,), dtype="<u8", buffer=u8, strides=(1,))
        counts_at = np.ndarray(shape=(len(u8) - 7,), dtype=">i8", buffer=u8, strides=(1,))
        table = np.array(rows, dtype=np.int64).reshape(len(rows), 5)
        nodes, cats, splits, width, tree_param = table.T
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
                if not _same(words, p, _ID_KEY):
                    return None
                p = p + len(_ID_KEY) + 1 + width
            if not _same(words, p, prefix):
                return None
            count = count_of.get(name, nodes)
            at = p + len(prefix)
            if at.max() >= len(counts_at) or (counts_at[at] != count).any():
                return None
            offsets[name] = at + 8
            counts[name] = count
            p = at + 8 + count * size
        if (p != tree_param).any():
            return None
        return TreeColumns(
            offsets, counts, np.array(ids, dtype=np.int64), np.array(params, dtype=np.int64)
        )

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
