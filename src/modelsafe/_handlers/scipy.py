"""scipy.sparse: every format, matrix and array classes, as one node kind (docs/handlers/scipy.md).

A sparse matrix gets a node of its own, ``sp.sparse``, rather than the generic
reduce path, for two reasons. The file says what the matrix *is* in scipy's public
vocabulary (a ``csr`` array of shape ``(m, n)`` with ``data``, ``indices`` and
``indptr``), not in the private attribute names of one scipy release (``_shape``,
``coords`` since 1.13 and ``row``/``col`` before, ``_dict`` for dok), so files
outlive those names. And the builder checks every index, with numpy, before the
object exists: scipy's compiled code trusts ``indices`` and ``indptr`` and reads and
writes memory wherever they point.

Nothing here imports scipy until a node is built or a matrix saved.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import FormatError
from . import Tag, Validator, plain_attributes

TAG = "sp.sparse"
FORMATS = ("csr", "csc", "bsr", "coo", "dia", "lil", "dok")
KINDS = ("matrix", "array")
MAXPRINT = 50  # what an absent ``maxprint`` member means (scipy's default)

# The array members of each format, in walk order. Index members hold indices.
_ARRAYS = {
    "csr": ("data", "indices", "indptr"),
    "csc": ("data", "indices", "indptr"),
    "bsr": ("data", "indices", "indptr"),
    "coo": ("data", "coords"),
    "dia": ("data", "offsets"),
    "lil": ("data", "indices", "indptr"),
    "dok": ("data", "coords"),
}
_COMPRESSED = ("csr", "csc", "bsr")
# Cached facts scipy keeps about the order of the indices: node member -> attribute.
_ROW_FLAGS = {"sorted": "_has_sorted_indices", "canonical": "_has_canonical_format"}
_FLAGS: dict[str, dict[str, str]] = {
    **{f: _ROW_FLAGS for f in _COMPRESSED},
    "coo": {"canonical": "has_canonical_format"},
}
# Dimensions of the *_array classes (every *_matrix is 2-D).
_NDIM: dict[str, range] = {"csr": range(1, 3), "dok": range(1, 3), "coo": range(1, 65)}
# The instance attributes scipy (>= 1.13) gives each format, besides the flags.
_LAYOUT = {
    **dict.fromkeys(_COMPRESSED, frozenset({"_shape", "maxprint", "data", "indices", "indptr"})),
    "coo": frozenset({"_shape", "maxprint", "coords", "data"}),
    "dia": frozenset({"_shape", "maxprint", "data", "offsets"}),
    "lil": frozenset({"_shape", "maxprint", "dtype", "rows", "data"}),
    "dok": frozenset({"_shape", "maxprint", "dtype", "_dict"}),
}
_ORDER = {
    **dict.fromkeys(_COMPRESSED, ("_shape", "maxprint", "indptr", "indices", "data")),
    "coo": ("_shape", "maxprint", "coords", "data"),
    "dia": ("_shape", "maxprint", "data", "offsets"),
    "lil": ("_shape", "maxprint", "dtype", "rows", "data"),
    "dok": ("_shape", "maxprint", "_dict", "dtype"),
}
_MODULE = {f: f"scipy.sparse._{f}" for f in FORMATS}
_INDEX_PARTS = ("indices", "indptr", "coords")


# -- invariants: numpy only, ValueError/TypeError naming the broken one ----------------------


def _index(name: str, x: Any, *, native_only: bool) -> np.ndarray[Any, Any]:
    """An index array: 1-D int32 or int64, in this machine's byte order (compiled code reads
    it raw). A file from another byte order is converted, a live object's state is not."""
    if type(x) is not np.ndarray:
        raise TypeError(f"{name} must be an array, not {type(x).__name__}")
    dt = x.dtype
    if dt.kind != "i" or dt.itemsize not in (4, 8):
        raise TypeError(f"{name} has dtype {dt}; index arrays must be int32 or int64")
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, not of shape {x.shape}")
    if not dt.isnative:
        if native_only:
            raise TypeError(f"{name} is not in this machine's byte order")
        return np.asarray(x, dtype=dt.newbyteorder("="))
    return x


def _values(x: Any, ndim: int) -> np.ndarray[Any, Any]:
    if type(x) is not np.ndarray:
        raise TypeError(f"data must be an array, not {type(x).__name__}")
    if x.dtype.kind not in "biufc":
        raise TypeError(f"data has dtype {x.dtype}; scipy.sparse holds booleans and numbers only")
    if x.ndim != ndim:
        raise ValueError(f"data must be {ndim}-D, not of shape {x.shape}")
    return x


def _top(dtype: np.dtype[Any]) -> int:
    """The largest value of a signed integer type (np.iinfo is 30 times slower)."""
    return (1 << (8 * dtype.itemsize - 1)) - 1


def _fit(dims: Any, dtype: np.dtype[Any], what: str = "dimension") -> None:
    """Compiled code passes sizes in the index type: each must fit it."""
    top = _top(dtype)
    for d in dims:
        if d > top:
            raise ValueError(f"{what} {d} does not fit the {dtype} index arrays")


def _within(name: str, x: np.ndarray[Any, Any], stop: int) -> None:
    """Every value in ``[0, stop)``; the error names the first one that is not.

    One pass: seen as unsigned, a negative index is at least 2**31 (2**63), beyond any
    ``stop`` the signed type can hold.
    """
    if not x.size:
        return
    if stop > _top(x.dtype):
        bad = x.min() < 0
    else:
        bad = x.view(x.dtype.str.replace("i", "u")).max() >= stop
    if bad:
        k = int(np.flatnonzero((x < 0) | (x >= stop))[0])
        raise ValueError(f"{name}[{k}] = {x[k]} is outside [0, {stop})")


def _sorted_rows(indices: np.ndarray[Any, Any], indptr: np.ndarray[Any, Any], strict: bool) -> bool:
    """Whether the indices of each row increase (strictly: no duplicates either).

    ``ok[i]`` judges the pair ``(i - 1, i)``; a pair that starts a row does not count, and
    every value of indptr (0 to nnz, checked) is such a start.
    """
    nnz = int(indptr[-1])
    if nnz < 2:
        return True
    j = indices[:nnz]
    ok = np.ones(nnz + 1, dtype=bool)
    (np.greater if strict else np.greater_equal)(j[1:], j[:-1], out=ok[1:nnz])
    ok[indptr] = True
    return bool(ok.all())


def _sorted_coords(coords: list[np.ndarray[Any, Any]]) -> bool:
    """Whether the entries are in row-major order without duplicates (scipy's canonical coo)."""
    n = len(coords[0])
    if n < 2:
        return True
    after = np.zeros(n - 1, dtype=bool)
    tied = np.ones(n - 1, dtype=bool)
    for c in coords:
        after |= tied & (c[1:] > c[:-1])
        tied &= c[1:] == c[:-1]
    return bool(after.all())


def check_compressed(
    fmt: str, shape: tuple[int, ...], data: Any, indices: Any, indptr: Any, *, native_only: bool
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """csr, csc, bsr (and the row lists of lil): the arrays, checked and made native."""
    indices = _index("indices", indices, native_only=native_only)
    indptr = _index("indptr", indptr, native_only=native_only)
    if indices.dtype != indptr.dtype:
        raise TypeError(f"indices ({indices.dtype}) and indptr ({indptr.dtype}) differ in dtype")
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape
    _fit(shape, indptr.dtype)
    if fmt == "bsr":
        data = _values(data, 3)
        r, c = data.shape[1:]
        if r < 1 or c < 1 or rows % r or cols % c:
            raise ValueError(f"blocksize {(r, c)} does not divide shape {shape}")
        _fit([r * c], indptr.dtype, "block size")
        rows, cols = rows // r, cols // c
    else:
        data = _values(data, 1)
    major, minor = (cols, rows) if fmt == "csc" else (rows, cols)
    if len(indptr) != major + 1:
        raise ValueError(f"indptr has {len(indptr)} entries; shape {shape} needs {major + 1}")
    if len(data) != len(indices):
        raise ValueError(f"data has {len(data)} entries but indices {len(indices)}")
    if indptr[0] != 0:
        raise ValueError(f"indptr[0] = {indptr[0]}, not 0")
    down = indptr[1:] < indptr[:-1]
    if down.any():
        k = int(np.argmax(down))
        raise ValueError(
            f"indptr decreases: indptr[{k + 1}] = {indptr[k + 1]} < indptr[{k}] = {indptr[k]}"
        )
    if indptr[-1] > len(indices):
        raise ValueError(f"indptr[-1] = {indptr[-1]} is beyond the {len(indices)} stored entries")
    _within("indices", indices, minor)  # all of them: scipy reads past nnz in places
    return data, indices, indptr


def check_coo(
    shape: tuple[int, ...], data: Any, coords: Any, *, native_only: bool
) -> tuple[np.ndarray[Any, Any], list[np.ndarray[Any, Any]]]:
    """coo (and the keys of dok): one index array per dimension, as long as data."""
    if len(coords) != len(shape):
        raise ValueError(f"{len(coords)} coordinate arrays for a {len(shape)}-D shape")
    coords = [_index(f"coords[{k}]", c, native_only=native_only) for k, c in enumerate(coords)]
    if len({c.dtype for c in coords}) > 1:
        raise TypeError(f"coordinate arrays differ in dtype: {[str(c.dtype) for c in coords]}")
    data = _values(data, 1)
    _fit(shape, coords[0].dtype)
    for k, c in enumerate(coords):
        if len(c) != len(data):
            raise ValueError(f"coords[{k}] has {len(c)} entries but data {len(data)}")
        _within(f"coords[{k}]", c, shape[k])
    return data, coords


def check_dia(
    shape: tuple[int, ...], data: Any, offsets: Any, *, native_only: bool
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """dia: one row of data per diagonal, offsets distinct and small enough for scipy.

    A diagonal outside the matrix is legal (scipy keeps them after ``resize``) and holds
    no element. scipy's compiled code adds up to four offsets and sizes in the offsets'
    type (``dia_matmat``: ``max(A) + max(B) - min(A) - min(B)``, then indexes a buffer of
    that size), so each must be at most a quarter of the type's maximum.
    """
    offsets = _index("offsets", offsets, native_only=native_only)
    data = _values(data, 2)
    if data.shape[0] != len(offsets):
        raise ValueError(f"data has {data.shape[0]} diagonals but offsets {len(offsets)}")
    room = _top(offsets.dtype) // 4
    for what, size in (("rows", shape[0]), ("columns", shape[1]), ("diagonals", data.shape[1])):
        if size > room:
            raise ValueError(f"{size} {what} exceed {room}, the limit for {offsets.dtype} offsets")
    if len(offsets) and (offsets.min() < -room or offsets.max() > room):
        k = int(np.flatnonzero((offsets < -room) | (offsets > room))[0])
        raise ValueError(f"offsets[{k}] = {offsets[k]} is outside [-{room}, {room}]")
    if len(np.unique(offsets)) != len(offsets):
        raise ValueError("offsets name a diagonal twice")
    return data, offsets


def _ndim_ok(fmt: str, kind: str, ndim: int) -> bool:
    return ndim == 2 if kind == "matrix" else ndim in _NDIM.get(fmt, range(2, 3))


def _check_flags(
    fmt: str, flags: dict[str, bool], indices: Any = None, indptr: Any = None, coords: Any = None
) -> None:
    """A flag saying the indices are sorted must be true: scipy then skips the sorting.
    The strongest claim is checked, once (canonical rows are sorted rows)."""
    flag = "canonical" if flags.get("canonical") else "sorted" if flags.get("sorted") else None
    if flag is None:
        return
    if fmt == "coo":
        ok = _sorted_coords(coords)
    else:
        ok = _sorted_rows(indices, indptr, strict=flag == "canonical")
    if not ok:
        raise ValueError(f"it is marked {flag} ({_FLAGS[fmt][flag]}), but its indices are not")


# -- the node -------------------------------------------------------------------------------


def _long(dt: np.dtype[Any]) -> bool:
    return (dt.kind == "f" and dt.itemsize > 8) or (dt.kind == "c" and dt.itemsize > 16)


def _scalars(values: np.ndarray[Any, Any]) -> list[Any]:
    """Python scalars (as ``tolil`` stores them), numpy ones where Python's would round."""
    if _long(values.dtype):
        return list(values)
    return values.tolist()  # type: ignore[no-any-return]


def _array_of(values: list[Any], dtype: Any) -> np.ndarray[Any, Any]:
    """The values of a lil or dok as one array. Long doubles are stored through a ufunc
    into zeros: copied from scalars, their padding bytes (6 of 16 on x86) would be
    whatever memory held, and two saves of one matrix would differ."""
    arr = np.array(values, dtype=dtype)
    if arr.ndim == 1 and _long(arr.dtype):
        out = np.zeros(arr.shape, dtype=arr.dtype)
        np.positive(arr, out=out)
        return out
    return arr


def _state(fmt: str, shape: tuple[int, ...], p: dict[str, Any], flags: dict[str, bool]) -> Any:
    """The instance attributes for the installed scipy, from checked parts."""
    base: dict[str, Any] = {"_shape": shape}
    if fmt in _COMPRESSED:
        data, indices, indptr = check_compressed(
            fmt, shape, p["data"], p["indices"], p["indptr"], native_only=False
        )
        _check_flags(fmt, flags, indices, indptr)
        return {**base, "indices": indices, "indptr": indptr, "data": data}
    if fmt == "coo":
        data, coords = check_coo(shape, p["data"], p["coords"], native_only=False)
        _check_flags(fmt, flags, coords=coords)
        return {**base, "coords": tuple(coords), "data": data}
    if fmt == "dia":
        data, offsets = check_dia(shape, p["data"], p["offsets"], native_only=False)
        return {**base, "data": data, "offsets": offsets}
    if fmt == "lil":
        data, indices, indptr = check_compressed(
            "csr", shape, p["data"], p["indices"], p["indptr"], native_only=False
        )
        if indptr[-1] != len(indices):
            raise ValueError(f"indptr[-1] = {indptr[-1]}, but there are {len(indices)} entries")
        cols, values, bounds = indices.tolist(), _scalars(data), indptr.tolist()
        spans = list(itertools.pairwise(bounds))
        rows = np.fromiter((cols[a:b] for a, b in spans), dtype=object, count=len(spans))
        vals = np.fromiter((values[a:b] for a, b in spans), dtype=object, count=len(spans))
        return {**base, "dtype": data.dtype, "rows": rows, "data": vals}
    data, coords = check_coo(shape, p["data"], p["coords"], native_only=False)
    if len(shape) == 1:
        keys: list[Any] = coords[0].tolist()
    else:
        keys = list(zip(*(c.tolist() for c in coords), strict=True))
    entries = dict(zip(keys, list(data), strict=True))  # numpy scalars, as dok's own setter
    if len(entries) != len(keys):
        raise ValueError("coords name the same entry twice")
    return {**base, "_dict": entries, "dtype": data.dtype}


@functools.cache
def _classes() -> dict[type, tuple[str, str]]:
    import scipy.sparse

    return {getattr(scipy.sparse, f"{f}_{k}"): (f, k) for f in FORMATS for k in KINDS}


@functools.cache
def _layout_problem(cls: type, fmt: str) -> str | None:
    """Why this scipy cannot be given the attributes the builder writes, or None."""
    probe = set(vars(cls((1, 1)))) - set(_FLAGS.get(fmt, {}).values())
    if probe == _LAYOUT[fmt]:
        return None
    import scipy

    return (
        f"scipy {scipy.__version__} lays out {cls.__name__} as {sorted(probe)}, "
        f"which this modelsafe does not know how to fill"
    )


def _audit(a: Any, node: dict[str, Any]) -> None:
    fmt = node.get("format")
    if type(fmt) is not str or fmt not in _ARRAYS:
        a.fail(f"sparse format must be one of {list(FORMATS)}, not {fmt!r}")
        return
    flags = tuple(_FLAGS.get(fmt, ()))
    a.keys(node, ("format", "kind", "shape", *_ARRAYS[fmt]), ("maxprint", "id", *flags))
    kind = node["kind"]
    if kind not in KINDS:
        a.fail(f"sparse kind must be 'matrix' or 'array', not {kind!r}")
    shape = node["shape"]
    if type(shape) is not list or not all(type(d) is int and 0 <= d < 2**63 for d in shape):
        a.fail("sparse shape must be a list of non-negative int64 integers")
    if not _ndim_ok(fmt, kind, len(shape)):
        a.fail(f"a {fmt} {kind} cannot have {len(shape)} dimensions")
    for flag in flags:
        if flag in node and type(node[flag]) is not bool:
            a.fail(f"'{flag}' must be true or false")
    mp = node.get("maxprint", MAXPRINT)
    if type(mp) is not int or not 0 <= mp < 2**63:
        a.fail("'maxprint' must be a non-negative integer")
    a.need(f"scipy.sparse.{fmt}_{kind}", "node")
    a.visit(_array_member(a, node["data"], "data", index=False))
    for name in _ARRAYS[fmt][1:]:
        if name == "coords":
            coords = node["coords"]
            if type(coords) is not list or len(coords) != len(shape):
                a.fail(f"'coords' must list one array per dimension ({len(shape)})")
            for c in coords:
                _array_member(a, c, "coords", index=True)
            a.visit_all(coords)
        else:
            a.visit(_array_member(a, node[name], name, index=True))
    a.define_late(node)


def _array_member(a: Any, x: Any, name: str, *, index: bool) -> Any:
    """Index arrays are ``nd`` nodes of their own: shared, another part of the file could
    change them after they were checked. Data may be shared (a ``ref``)."""
    tag = x.get("$") if type(x) is dict else None
    if index and (tag != "nd" or "id" in x):
        a.fail(f"'{name}' must be an 'nd' node without an id")
    if not index and tag not in ("nd", "ref"):
        a.fail(f"'{name}' must be an 'nd' or 'ref' node")
    return x


def _build(b: Any, node: dict[str, Any]) -> Any:
    fmt, kind = node["format"], node["kind"]
    shape = tuple(node["shape"])
    name = f"scipy.sparse.{fmt}_{kind}"
    # scipy's compiled code reads with the index members' values (all but data): they
    # are checked, and kept, in this process's own memory (Builder.private)
    own = b.private
    parts = {
        k: b.build(node[k]) if k == "data" else own(b.build(node[k]))
        for k in _ARRAYS[fmt]
        if k != "coords"
    }
    if "coords" in node:
        parts["coords"] = [own(b.build(c)) for c in node["coords"]]
    flags = {f: node[f] for f in _FLAGS.get(fmt, {}) if f in node}
    import scipy.sparse

    cls = getattr(scipy.sparse, f"{fmt}_{kind}")
    problem = _layout_problem(cls, fmt)
    if problem is not None:
        raise FormatError(f"{b.source}: cannot build {name}: {problem}")
    if len(shape) not in getattr(cls, "_allow_nd", (2,)):
        raise FormatError(
            f"{b.source}: cannot build {name}: scipy {scipy.__version__} has no "
            f"{len(shape)}-D {cls.__name__}"
        )
    try:
        state = _state(fmt, shape, parts, flags)
    except (ValueError, TypeError) as exc:
        raise FormatError(f"{b.source}: invalid {name}: {exc}") from None
    state["maxprint"] = node.get("maxprint", MAXPRINT)
    if fmt == "coo":  # a plain attribute scipy reads: absent means not known to be canonical
        flags.setdefault("canonical", False)
    for flag, value in flags.items():
        state[_FLAGS[fmt][flag]] = value
    obj = cls.__new__(cls)
    # In the order scipy's constructors give them (vars() of a matrix made from an array),
    # the flags after: a matrix made that way, scikit-learn's included, comes back as it was.
    order = _ORDER[fmt]
    obj.__dict__.update({k: state[k] for k in order if k in state})
    obj.__dict__.update({k: v for k, v in state.items() if k not in order})
    b.register(node, obj)
    return obj


# -- saving -----------------------------------------------------------------------------------


def _parts(fmt: str, m: Any, attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool]]:
    """The arrays a node stores for ``m``, checked as a reader will check them, and the
    flags that hold (a flag the indices contradict is left out: scipy recomputes it)."""
    shape = tuple(int(d) for d in m.shape)
    if fmt in _COMPRESSED:
        data, indices, indptr = check_compressed(
            fmt, shape, m.data, m.indices, m.indptr, native_only=False
        )
        parts: dict[str, Any] = {"data": data, "indices": indices, "indptr": indptr}
    elif fmt == "coo":
        coords = getattr(m, "coords", None) or (m.row, m.col)
        data, coords = check_coo(shape, m.data, list(coords), native_only=False)
        parts = {"data": data, "coords": coords}
    elif fmt == "dia":
        data, offsets = check_dia(shape, m.data, m.offsets, native_only=False)
        parts = {"data": data, "offsets": offsets}
    elif fmt == "lil":
        parts = _lil_parts(m, shape)
    else:
        parts = _dok_parts(m, shape)
    flags: dict[str, bool] = {}
    for flag, attr in _FLAGS.get(fmt, {}).items():
        if attr in attrs:
            value = bool(attrs[attr])
            try:
                _check_flags(fmt, {flag: value}, *(parts.get(k) for k in _INDEX_PARTS))
            except ValueError:
                continue
            flags[flag] = value
    return parts, flags


def _small_index(*dims: int) -> type[np.integer[Any]]:
    """int32 where every index fits, as scipy chooses."""
    return np.int32 if max(dims, default=0) <= np.iinfo(np.int32).max else np.int64


def _ints(items: list[Any], dtype: Any, what: str) -> np.ndarray[Any, Any]:
    arr = np.array(items)
    if arr.size == 0:
        return np.zeros(0, dtype=dtype)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise TypeError(f"{what} must be integers")
    return arr.astype(dtype)


def _lil_parts(m: Any, shape: tuple[int, ...]) -> dict[str, Any]:
    rows, vals = m.rows, m.data
    n = shape[0]
    counts = np.fromiter(map(len, rows), dtype=np.int64, count=n)
    differ = counts != np.fromiter(map(len, vals), dtype=np.int64, count=n)
    if differ.any():
        k = int(np.argmax(differ))
        raise ValueError(f"row {k} has {len(rows[k])} columns but {len(vals[k])} values")
    idx = _small_index(*shape, int(counts.sum()))
    indptr = np.zeros(n + 1, dtype=idx)
    np.cumsum(counts, out=indptr[1:])
    cols = _ints(list(itertools.chain.from_iterable(rows)), idx, "lil column numbers")
    data = _array_of(list(itertools.chain.from_iterable(vals)), m.dtype)
    data, cols, indptr = check_compressed("csr", shape, data, cols, indptr, native_only=False)
    return {"data": data, "indices": cols, "indptr": indptr}


def _key_coords(keys: list[Any], ndim: int, dtype: Any) -> list[np.ndarray[Any, Any]]:
    """dok keys (ints for 1-D, (row, column) tuples for 2-D) as one array per dimension."""
    if ndim == 1:
        return [_ints(keys, dtype, "dok keys")]
    if set(map(type, keys)) - {tuple} or set(map(len, keys)) - {2}:
        raise TypeError("dok keys must be (row, column) tuples")
    flat = _ints(list(itertools.chain.from_iterable(keys)), dtype, "dok keys")
    return [flat[0::2].copy(), flat[1::2].copy()]


def _dok_parts(m: Any, shape: tuple[int, ...]) -> dict[str, Any]:
    coords = _key_coords(list(m.keys()), len(shape), _small_index(*shape))
    data = _array_of(list(m.values()), m.dtype)
    data, coords = check_coo(shape, data, coords, native_only=False)
    return {"data": data, "coords": coords}


def _enc_sparse(e: Any, m: Any) -> Any:
    entry = e.memo.get(id(m))
    if entry is not None:
        return e.ref(entry)
    from .._graph.encode import Unsupported

    fmt, kind = _classes()[type(m)]
    name = f"scipy.sparse.{fmt}_{kind}"
    attrs = vars(m)
    extra = set(attrs) - _LAYOUT[fmt] - set(_FLAGS.get(fmt, {}).values())
    if extra:
        raise Unsupported(f"{name} has attributes modelsafe does not store: {sorted(extra)}", None)
    try:
        parts, flags = _parts(fmt, m, attrs)
    except (ValueError, TypeError) as exc:
        raise Unsupported(f"{name} is not a valid sparse structure: {exc}", None) from None
    node: dict[str, Any] = {
        "$": TAG,
        "format": fmt,
        "kind": kind,
        "shape": [int(d) for d in m.shape],
    }
    maxprint = attrs.get("maxprint", MAXPRINT)
    if maxprint != MAXPRINT:
        node["maxprint"] = int(maxprint)
    e.types.add(name)
    node["data"] = _child(e, parts["data"], ".data")
    for key in _ARRAYS[fmt][1:]:
        # A view: an index array is never shared through the memo (the reader refuses that).
        if key == "coords":
            node[key] = [_child(e, c.view(), f".coords[{k}]") for k, c in enumerate(parts[key])]
        else:
            node[key] = _child(e, parts[key].view(), f".{key}")
    node.update(flags)
    e.remember(m, node)
    return node


def _child(e: Any, value: Any, seg: str) -> Any:
    from .._graph.encode import Unsupported

    try:
        return e.enc(value)
    except Unsupported as exc:
        exc.segments.append(seg)
        raise


def encoder_for(t: type) -> Any:
    if not (getattr(t, "__module__", "") or "").startswith("scipy.sparse."):
        return None
    return _enc_sparse if t in _classes() else None


TAGS = {TAG: Tag(_audit, _build)}


# -- the generic reduce path: only with trusted=[...], and then validated too -----------------


def _no_args(args: list[Any], kwargs: dict[str, Any]) -> None:
    if args or kwargs:
        raise TypeError("it is restored from its state, never called with arguments from a file")


def _check_lil_lists(shape: tuple[int, ...], rows: Any, data: Any, dtype: Any) -> None:
    for name, x in (("rows", rows), ("data", data)):
        if type(x) is not np.ndarray or x.dtype != object or x.shape != shape[:1]:
            raise TypeError(f"{name} must be an object array of {shape[0]} lists")
    if set(map(type, rows)) - {list} or set(map(type, data)) - {list}:
        raise TypeError("every item of rows and data must be a list")
    if len(set(map(id, itertools.chain(rows, data)))) != 2 * len(rows):
        raise ValueError("rows and data share lists")
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    differ = lengths != np.fromiter(map(len, data), dtype=np.int64, count=len(data))
    if differ.any():
        k = int(np.argmax(differ))
        raise ValueError(f"row {k} has {lengths[k]} columns but {len(data[k])} values")
    cols = _ints(list(itertools.chain.from_iterable(rows)), np.int64, "rows")
    _within("columns", cols, shape[1])
    _dtype(dtype)


def _check_dok_dict(shape: tuple[int, ...], entries: Any, dtype: Any) -> None:
    if type(entries) is not dict:
        raise TypeError("_dict must be a dict")
    for k, c in enumerate(_key_coords(list(entries), len(shape), np.int64)):
        _within(f"key coordinate {k}", c, shape[k])
    _dtype(dtype)


def _dtype(dtype: Any) -> None:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc":
        raise TypeError(f"dtype must be a numeric numpy dtype, not {dtype!r}")


def _no_aliasing(arrays: list[Any]) -> None:
    """In-place operations on one array (``m.data *= 2``) must not move another's indices."""
    for x, y in itertools.combinations(arrays, 2):
        if np.may_share_memory(x, y):
            raise ValueError("two of its arrays share memory")


# Instance attributes scipy's own code reads in some format (the index order flags): never
# a subclass's own attribute.
_SCIPY_FLAGS = frozenset({*_ROW_FLAGS.values(), *_FLAGS["coo"].values()})


def _own_attributes(obj: Any, state: dict[str, Any], layout: set[str] | frozenset[str]) -> Any:
    """``state`` without the attributes a caller's subclass of the scipy class (trusted by
    name) adds beside scipy's ``layout``, which must be plain, hide nothing the class
    defines and not be one of scipy's flags; a scipy class itself has none."""
    extra = {k: v for k, v in state.items() if k not in layout}
    if not extra:
        return state
    if type(obj).__module__.partition(".")[0] == "scipy" or extra.keys() & _SCIPY_FLAGS:
        raise ValueError(f"its attributes are {sorted(state)}, expected {sorted(layout)}")
    plain_attributes(obj, extra)
    return {k: v for k, v in state.items() if k in layout}


def _state_validator(fmt: str) -> Callable[[Any, Any], None]:
    flag_attrs = _FLAGS.get(fmt, {})

    def check(obj: Any, state: Any) -> None:
        if type(state) is not dict:
            raise TypeError("its state must be a dict of attributes")
        want = _LAYOUT[fmt]
        state = _own_attributes(obj, state, want | set(flag_attrs.values()))
        if not want <= state.keys():
            raise ValueError(f"its attributes are {sorted(state)}, expected {sorted(want)}")
        shape = state["_shape"]
        if type(shape) is not tuple or not all(type(d) is int and d >= 0 for d in shape):
            raise TypeError("_shape must be a tuple of non-negative ints")
        if len(shape) not in getattr(type(obj), "_allow_nd", (2,)):
            raise ValueError(f"_shape {shape} has a number of dimensions scipy does not allow")
        if type(state["maxprint"]) is not int:
            raise TypeError("maxprint must be an int")
        flags = {f: state[a] for f, a in flag_attrs.items() if a in state}
        if any(type(v) is not bool for v in flags.values()):
            raise TypeError("the index order flags must be booleans")
        if fmt in _COMPRESSED:
            _, indices, indptr = check_compressed(
                fmt, shape, state["data"], state["indices"], state["indptr"], native_only=True
            )
            _check_flags(fmt, flags, indices, indptr)
            _no_aliasing([state["data"], indices, indptr])
        elif fmt == "coo":
            if "has_canonical_format" not in state:
                raise ValueError("it lacks has_canonical_format")
            if type(state["coords"]) is not tuple:
                raise TypeError("coords must be a tuple of arrays")
            _, coords = check_coo(shape, state["data"], state["coords"], native_only=True)
            _check_flags(fmt, flags, coords=coords)
            _no_aliasing([state["data"], *coords])
        elif fmt == "dia":
            check_dia(shape, state["data"], state["offsets"], native_only=True)
            _no_aliasing([state["data"], state["offsets"]])
        elif fmt == "lil":
            _check_lil_lists(shape, state["rows"], state["data"], state["dtype"])
        else:
            _check_dok_dict(shape, state["_dict"], state["dtype"])

    return check


# -- scipy.interpolate.BSpline (scikit-learn's SplineTransformer holds one per feature) ----
# Its evaluation (compiled) walks the knots `t` and indexes the coefficients `c` by the
# interval found: knots out of order or too few coefficients read outside the arrays.

_BSPLINE_KEYS = frozenset({"_t", "_c", "k", "extrapolate", "axis", "_asarray"})
MAX_SPLINE_DEGREE = 100


def _bspline_state(obj: Any, state: Any) -> None:
    if type(state) is not dict:
        raise TypeError("its state must be a dict of attributes")
    state = _own_attributes(obj, state, _BSPLINE_KEYS)
    if not {"_t", "_c", "k"} <= state.keys():
        raise ValueError(f"its attributes are {sorted(state)}, expected {sorted(_BSPLINE_KEYS)}")
    t, c, k = state["_t"], state["_c"], state["k"]
    if type(k) is not int or not 0 <= k <= MAX_SPLINE_DEGREE:
        raise ValueError(f"degree k = {k!r} is not an int in [0, {MAX_SPLINE_DEGREE}]")
    if type(t) is not np.ndarray or t.ndim != 1 or t.dtype != np.float64:
        raise TypeError("knots _t must be a 1-D float64 array")
    if len(t) < 2 * k + 2:
        raise ValueError(f"{len(t)} knots are too few for degree {k} (at least {2 * k + 2})")
    if np.isnan(t).any() or (np.diff(t) < 0).any():
        raise ValueError("knots _t must be non-decreasing and not NaN")
    if type(c) is not np.ndarray or c.ndim < 1 or c.dtype.kind not in "fc":
        raise TypeError("coefficients _c must be a float or complex array")
    if c.shape[0] < len(t) - k - 1:
        raise ValueError(
            f"_c has {c.shape[0]} coefficients along its first axis, needs {len(t) - k - 1}"
        )
    extrapolate = state.get("extrapolate", True)
    if type(extrapolate) is not bool and extrapolate != "periodic":
        raise ValueError("extrapolate must be true, false or 'periodic'")
    axis = state.get("axis", 0)
    if type(axis) is not int or not 0 <= axis < c.ndim:
        raise ValueError(f"axis {axis!r} is outside the {c.ndim} axes of _c")
    if "_asarray" in state and not callable(state["_asarray"]):
        raise TypeError("_asarray must be a function")


VALIDATORS = {
    f"{_MODULE[f]}.{f}_{k}": Validator(args=_no_args, state=_state_validator(f))
    for f in FORMATS
    for k in KINDS
}
VALIDATORS["scipy.interpolate._bsplines.BSpline"] = Validator(args=_no_args, state=_bspline_state)
