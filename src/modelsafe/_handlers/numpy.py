"""numpy: arrays, scalars, dtypes, random generators, ufuncs (docs/format.md, "numpy")."""

from __future__ import annotations

import base64
import math
import re
from typing import Any

import numpy as np

from .._graph.table import MAX_NDIM, SMALL_ARRAY
from ..errors import FormatError
from . import Tag

# Byte order is explicit: "|" only where it cannot matter (one-byte and byte-string
# items), "<" or ">" everywhere else. Zero-width strings are not dtypes numpy keeps.
_SIMPLE_DTYPE = re.compile(
    r"\|(b1|[iu]1|[SV][1-9][0-9]{0,9})"
    r"|[<>]("
    r"[iu][248]|f(2|4|8|12|16)|c(8|16|24|32)"
    r"|U[1-9][0-9]{0,9}"
    r"|[mM]8(\[[0-9]{0,10}(Y|M|W|D|h|m|s|ms|us|ns|ps|fs|as)\])?"
    r")"
)
LONG_DOUBLE = re.compile(r"[<>](f12|f16|c24|c32)")
BITGENS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")
_MAX_DTYPE_NESTING = 8


# -- dtypes ----------------------------------------------------------------------------


def dtype_to_json(dt: np.dtype[Any]) -> Any:
    if dt.fields is not None and dt.names is not None:
        if any(len(v) > 2 for v in dt.fields.values()):
            raise TypeError("structured dtypes with field titles are not supported")
        return {
            "names": list(dt.names),
            "formats": [dtype_to_json(dt.fields[n][0]) for n in dt.names],
            "offsets": [int(dt.fields[n][1]) for n in dt.names],
            "itemsize": int(dt.itemsize),
        }
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return {"base": dtype_to_json(base), "shape": list(shape)}
    if dt.kind == "O":
        return "|O"
    return dt.str


def longdouble_mantissa() -> int:
    """Mantissa bits of this platform's long double (63 on x86, 112 on aarch64)."""
    return int(np.finfo(np.longdouble).nmant)


def dtype_from_json(
    spec: Any,
    *,
    allow_object: bool,
    depth: int = 0,
    allow_subarray: bool = False,
    longdouble_ok: bool = True,
) -> np.dtype[Any]:
    """Build a dtype from its JSON form, rejecting anything outside the spec.

    Raises ValueError with the reason; the audit turns it into FormatError.
    """
    if depth > _MAX_DTYPE_NESTING:
        raise ValueError("dtype nests too deeply")
    if type(spec) is str:
        if spec == "|O":
            if not allow_object:
                raise ValueError("object dtype is not allowed here")
            return np.dtype(object)
        if not _SIMPLE_DTYPE.fullmatch(spec):
            raise ValueError(f"unsupported dtype {spec!r}")
        dt = np.dtype(spec)
        if LONG_DOUBLE.fullmatch(spec) and (not longdouble_ok or dt.itemsize != int(spec[2:])):
            raise ValueError(
                f"dtype {spec!r} was written with a long double format this platform lacks"
            )
        return dt
    if type(spec) is not dict:
        raise ValueError(f"a dtype must be a string or an object, not {type(spec).__name__}")
    if set(spec) == {"base", "shape"}:
        if depth == 0 and not allow_subarray:
            raise ValueError("a subarray dtype is only allowed inside a structured dtype")
        shape = spec["shape"]
        if type(shape) is not list or not all(type(d) is int and 0 <= d < 2**31 for d in shape):
            raise ValueError("subarray dtype shape must be a list of small non-negative ints")
        if len(shape) > 32:
            raise ValueError("subarray dtype has too many dimensions")
        base = dtype_from_json(
            spec["base"], allow_object=False, depth=depth + 1, longdouble_ok=longdouble_ok
        )
        size = base.itemsize
        for d in shape:
            size *= d
        if size >= 2**31:
            raise ValueError("subarray dtype is too large")
        return np.dtype((base, tuple(shape)))
    if set(spec) == {"names", "formats", "offsets", "itemsize"}:
        names, formats, offsets, itemsize = (
            spec["names"],
            spec["formats"],
            spec["offsets"],
            spec["itemsize"],
        )
        if not (type(names) is list and type(formats) is list and type(offsets) is list):
            raise ValueError("structured dtype fields must be lists")
        if not len(names) == len(formats) == len(offsets) or not names:
            raise ValueError("structured dtype lists differ in length")
        if not all(type(n) is str and n for n in names) or len(set(names)) != len(names):
            raise ValueError("structured dtype names must be unique non-empty strings")
        if type(itemsize) is not int or not 0 < itemsize < 2**31:
            raise ValueError("structured dtype itemsize out of range")
        fmts = [
            dtype_from_json(f, allow_object=False, depth=depth + 1, longdouble_ok=longdouble_ok)
            for f in formats
        ]
        for off, f in zip(offsets, fmts, strict=True):
            if type(off) is not int or off < 0 or off + f.itemsize > itemsize:
                raise ValueError("structured dtype field lies outside the item")
        return np.dtype({"names": names, "formats": fmts, "offsets": offsets, "itemsize": itemsize})
    raise ValueError("unrecognised dtype object")


def scalar_type_name(dt: np.dtype[Any]) -> str:
    return f"numpy.{dt.type.__name__}"


# -- arrays ------------------------------------------------------------------------------


_SIMPLE_TEXT: dict[np.dtype[Any], str | None] = {}


def _simple_text(dt: np.dtype[Any]) -> str | None:
    """The dtype string when a small array of this dtype may go in the table."""
    text = _SIMPLE_TEXT.get(dt, "")
    if text == "":
        ok = dt.fields is None and dt.subdtype is None and not dt.hasobject
        text = dt.str if ok and _SIMPLE_DTYPE.fullmatch(dt.str) else None
        _SIMPLE_TEXT[dt] = text
    return text


def _enc_array(e: Any, a: np.ndarray[Any, Any]) -> Any:
    entry = e.memo.get(id(a))
    if entry is not None:
        return e.ref(entry)
    nbytes = a.nbytes
    if 0 < nbytes <= SMALL_ARRAY and a.ndim <= MAX_NDIM:
        text = _simple_text(a.dtype)
        if text is not None:
            flags = a.flags
            fortran = not flags.c_contiguous and flags.f_contiguous
            raw = a.T.tobytes() if fortran else a.tobytes()
            buf, at = e.add_small(raw)
            row: dict[str, Any] = {"$": "nd", "t": e.table.add(text, a.shape, fortran, buf, at)}
            e.remember(a, row)
            e.types.add("numpy.ndarray")
            return row
    try:
        dtj = dtype_to_json(a.dtype)
    except TypeError as exc:
        from .._graph.encode import Unsupported

        raise Unsupported(str(exc), advice=None) from None
    node: dict[str, Any] = {"$": "nd", "dtype": dtj, "shape": list(a.shape)}
    e.remember(a, node)
    e.types.add("numpy.ndarray")
    order: Any = "F" if a.flags.f_contiguous and not a.flags.c_contiguous and a.ndim > 1 else "C"
    if order == "F":
        node["order"] = "F"
    if a.dtype.hasobject:
        if a.dtype.kind != "O":
            from .._graph.encode import Unsupported

            raise Unsupported("structured arrays with object fields are not supported", None)
        from .._graph.encode import PACK_MIN, _pack_scalars

        elements = a.ravel(order=order)
        # Category names, feature names: many plain scalars are packed into columns.
        packed = _pack_scalars(e, elements.tolist()) if len(elements) >= PACK_MIN else None
        if packed is not None:
            node["v"] = packed
            return node
        items: list[Any] = []
        node["v"] = items
        e.enc_seq(elements, items)
        e.note_run(items)
        return node
    if a.nbytes:
        data = a.T if order == "F" else (a if a.flags.c_contiguous else np.ascontiguousarray(a))
        node["buf"] = e.add_buffer(memoryview(data.reshape(-1).view(np.uint8)))  # type: ignore[arg-type]
    return node


def _elements(shape: list[int]) -> int:
    return math.prod(shape)


_ARRAY_KEYS = frozenset({"$", "dtype", "shape", "order", "buf", "v", "id"})
_TABLE_KEYS = frozenset({"$", "t", "id"})
_INT = frozenset({int})


def _audit_array(a: Any, node: dict[str, Any]) -> None:
    # Hot path: a model may hold 100,000 small arrays, so checks are inlined.
    k = node.get("t")
    if k is not None:
        table = a.table
        if not node.keys() <= _TABLE_KEYS:
            a.fail(f"'nd' node has unexpected member(s) {sorted(set(node) - _TABLE_KEYS)}")
        if table is None or type(k) is not int or not 0 <= k < table.n:
            a.fail(f"array record {k!r} is not in the header's 'arrays' table")
        if table.used[k]:
            a.fail(f"array record {k} is referenced twice")
        table.used[k] = 1
        if "numpy.ndarray" not in a.needs:
            a.need("numpy.ndarray", "node")
        if "id" in node:
            a.define_late(node)
        return
    if not node.keys() <= _ARRAY_KEYS:
        a.fail(f"'nd' node has unexpected member(s) {sorted(set(node) - _ARRAY_KEYS)}")
    shape: Any = node.get("shape")
    if type(shape) is not list or len(shape) > a.limits.max_ndim:
        a.fail("array shape must be a list of at most 64 dimensions")
    if len(shape) == 1:
        d0 = shape[0]
        if type(d0) is not int or not 0 <= d0 < 2**62:
            a.fail("array dimensions must be non-negative integers below 2**62")
    elif shape and (set(map(type, shape)) != _INT or min(shape) < 0 or max(shape) >= 2**62):
        a.fail("array dimensions must be non-negative integers below 2**62")
    order = node.get("order", "C")
    if order != "C" and order != "F":
        a.fail(f"array order must be 'C' or 'F', not {order!r}")
    spec = node.get("dtype")
    dt = a.simple_dtypes.get(spec) if type(spec) is str else None
    if dt is None:
        if "dtype" not in node:
            a.fail("'nd' node lacks 'dtype'")
        dt = a.dtype(spec, allow_object=True)
    if "numpy.ndarray" not in a.needs:
        a.need("numpy.ndarray", "node")
    count = math.prod(shape)
    if dt.kind == "O":
        v: Any = node.get("v")
        # Its elements: a list of nodes, or a node that builds a list without an identity of
        # its own: an ``objs`` run of instances or packed ``scalars`` (docs/format.md §6.6).
        run = type(v) is dict and v.get("$") in ("objs", "scalars") and "id" not in v
        if "buf" in node or not (type(v) is list or run):
            a.fail("an object array lists its elements in 'v' and has no buffer")
        got = v.get("n") if run else len(v)
        if got != count:
            a.fail(f"object array of shape {shape} needs {count} elements, has {got!r}")
        if count == 0 and math.prod([d for d in shape if d]) * 8 >= 2**63:
            a.fail(f"array shape {shape} is too large")
        a.cache[id(node)] = (dt, 0)
        a.define_early(node)
        if run:
            a.visit(v)
        else:
            a.visit_all(v)
        return
    if "v" in node:
        a.fail("only object arrays list elements inline")
    nbytes = count * dt.itemsize
    # numpy itself rejects shapes whose product of non-zero dims overflows.
    if nbytes >= 2**63 or (
        nbytes == 0 and math.prod([d for d in shape if d]) * dt.itemsize >= 2**63
    ):
        a.fail(f"array of shape {shape} and dtype {dt} is too large")
    if nbytes == 0:
        if "buf" in node:
            a.fail("an empty array has no buffer")
    elif "buf" not in node:
        a.fail(f"array of {nbytes} bytes has no buffer")
    else:
        a.use_buffer(node["buf"], nbytes)
    a.cache[id(node)] = (dt, nbytes)
    if "id" in node:
        a.define_late(node)


def _build_array(b: Any, node: dict[str, Any]) -> Any:
    k = node.get("t")
    if k is not None:
        t = b.table
        buf = t.buf[k]
        arr = b.bytes_array(buf)[t.at[k] : t.end[k]].view(t.dt[k])
        if b.copy:
            arr = arr.copy()
        shape = t.shape[k]
        if t.fortran[k]:
            arr = arr.reshape(shape[::-1]).T
        elif len(shape) != 1:
            arr = arr.reshape(shape)
        if "id" in node:
            b.register(node, arr)
        return arr
    dt, _nbytes = b.cache[id(node)]
    shape = node["shape"]
    order = node.get("order", "C")
    if dt.kind == "O":
        arr = np.empty(shape, dtype=object, order=order)
        b.register(node, arr)
        items = b.build(node["v"])  # a list of plain values (category names) is used as is
        flat = np.empty(len(items), dtype=object)
        flat[:] = items
        # The elements are listed in the array's memory order.
        if order == "F":
            arr.T[...] = flat.reshape(shape[::-1])
        else:
            arr[...] = flat.reshape(shape)
        return arr
    buf = node.get("buf")
    if buf is None:
        arr = np.empty(shape, dtype=dt, order=order)
    else:
        raw = b.buffer(buf)
        # Copy the bytes, not the array: ndarray.copy() leaves a structured dtype's padding
        # uninitialised, and re-saving would then write heap garbage into a file.
        arr = np.frombuffer(bytearray(raw) if b.copy else raw, dtype=dt)
        if order == "F":
            arr = arr.reshape(shape[::-1]).T
        elif len(shape) != 1:
            arr = arr.reshape(shape)
    if "id" in node:
        b.register(node, arr)
    return arr


# -- scalars and dtypes -------------------------------------------------------------------


def _enc_scalar(e: Any, x: np.generic) -> Any:
    dt = x.dtype
    if dt.kind == "O":
        from .._graph.encode import Unsupported

        raise Unsupported("numpy object scalars are not supported", None)
    if dt.itemsize == 0 and dt.kind == "V":  # np.void(b""): np.array() would not widen it
        e.types.add("numpy.void")
        return {"$": "npscalar", "dtype": "|V0", "b64": ""}
    arr = np.array(x)  # numpy widens zero-width strings (U0 -> U1) here
    e.types.add(scalar_type_name(arr.dtype))
    raw = arr.tobytes()
    spec = dtype_to_json(arr.dtype)
    return {"$": "npscalar", "dtype": spec, "b64": base64.b64encode(raw).decode()}


def _audit_scalar(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("dtype", "b64"))
    if node["dtype"] == "|V0" and node["b64"] == "":
        a.need("numpy.void", "node")
        a.cache[id(node)] = None
        return
    dt = a.dtype(node["dtype"], allow_object=False)
    raw = a.b64(node["b64"])
    if len(raw) != dt.itemsize:
        a.fail(f"scalar of dtype {dt} needs {dt.itemsize} bytes, has {len(raw)}")
    a.need(scalar_type_name(dt), "node")
    a.cache[id(node)] = (dt, raw)


def _build_scalar(b: Any, node: dict[str, Any]) -> Any:
    if b.cache[id(node)] is None:
        return np.void(b"")
    dt, raw = b.cache[id(node)]
    return np.frombuffer(raw, dtype=dt, count=1)[0]


def _enc_dtype(e: Any, dt: np.dtype[Any]) -> Any:
    try:
        spec = dtype_to_json(dt)
    except TypeError as exc:
        from .._graph.encode import Unsupported

        raise Unsupported(str(exc), advice=None) from None
    e.types.add("numpy.dtype")
    return {"$": "dtype", "v": spec}


_UNSIZED = {"|S0": "S", "<U0": "U", ">U0": "U", "|V0": "V"}  # np.dtype("S") and kin


def _audit_dtype(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("v",))
    if type(node["v"]) is str and node["v"] in _UNSIZED:
        # A dtype value only (no array is ever made from it here).
        a.cache[id(node)] = np.dtype(_UNSIZED[node["v"]])
        a.need("numpy.dtype", "node")
        return
    from .._graph.audit import _Fail

    try:
        a.cache[id(node)] = dtype_from_json(
            node["v"], allow_object=True, allow_subarray=True, longdouble_ok=a.longdouble_ok
        )
    except (ValueError, TypeError) as exc:
        raise _Fail(str(exc)) from None
    a.need("numpy.dtype", "node")


def _build_dtype(b: Any, node: dict[str, Any]) -> Any:
    return b.cache[id(node)]


# -- random generators ----------------------------------------------------------------------


def _enc_rng(e: Any, obj: Any) -> Any:
    entry = e.memo.get(id(obj))
    if entry is not None:
        return e.ref(entry)
    if isinstance(obj, np.random.RandomState):
        tag, state = "randomstate", dict(obj.get_state(legacy=False))
        bg = obj._bit_generator
    elif isinstance(obj, np.random.Generator):
        tag, state, bg = "generator", dict(obj.bit_generator.state), obj.bit_generator
    else:
        tag, state, bg = "bitgen", dict(obj.state), obj
    name = type(bg).__name__
    if name not in BITGENS:
        from .._graph.encode import Unsupported

        raise Unsupported(f"unknown numpy bit generator {name}", None)
    e.types.add(f"numpy.random.{name}")
    if tag != "bitgen":
        e.types.add(
            "numpy.random.RandomState" if tag == "randomstate" else "numpy.random.Generator"
        )
    node: dict[str, Any] = {"$": tag, "bitgen": name}
    e.remember(obj, node)
    node["state"] = e.enc(state)
    return node


def _audit_rng(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("bitgen", "state"), optional=("id",))
    name = node["bitgen"]
    if name not in BITGENS:
        a.fail(f"unknown bit generator {name!r}")
    a.need(f"numpy.random.{name}", "node")
    tag = node["$"]
    if tag == "randomstate":
        a.need("numpy.random.RandomState", "node")
    elif tag == "generator":
        a.need("numpy.random.Generator", "node")
    a.define_early(node)
    a.visit(node["state"])


_U64 = 1 << 64
_U128 = 1 << 128


def _want(cond: bool, name: str, what: str) -> None:
    if not cond:
        raise FormatError(f"numpy.random.{name} state: {what}")


def _is_int(x: Any, lo: int, hi: int) -> bool:
    return type(x) is int and lo <= x < hi


def _is_words(x: Any, dtype: str, n: int) -> bool:
    want = np.dtype(dtype)  # either byte order: made native before numpy sees it
    return (
        isinstance(x, np.ndarray)
        and x.dtype.kind == want.kind
        and x.dtype.itemsize == want.itemsize
        and x.shape == (n,)
    )


def _native(state: Any) -> Any:
    """The state with every array in this machine's byte order."""
    if isinstance(state, dict):
        return {k: _native(v) for k, v in state.items()}
    if isinstance(state, np.ndarray) and not state.dtype.isnative:
        return state.astype(state.dtype.newbyteorder("="))
    return state


def check_rng_state(name: str, state: Any, legacy: bool) -> None:
    """Check a bit generator state completely: numpy's setters do not bound
    positions, and an out-of-range one makes later draws read out of bounds."""
    _want(type(state) is dict, name, "must be a dict")
    _want(state.get("bit_generator") == name, name, "names another bit generator")
    inner = state.get("state")
    _want(type(inner) is dict, name, "'state' must be a dict")
    keys = set(state)
    if legacy:  # RandomState adds its Gaussian cache to any bit generator's state
        _want(_is_int(state.get("has_gauss"), 0, 2), name, "has_gauss must be 0 or 1")
        _want(type(state.get("gauss")) is float, name, "gauss must be a float")
        keys -= {"has_gauss", "gauss"}
    if name == "MT19937":
        _want(keys == {"bit_generator", "state"}, name, "unexpected keys")
        _want(set(inner) == {"key", "pos"}, name, "'state' keys must be key, pos")
        _want(_is_words(inner["key"], "uint32", 624), name, "key must be 624 uint32")
        _want(_is_int(inner["pos"], 0, 625), name, "pos must be in 0..624")
        return
    extra = {"buffer", "buffer_pos"} if name == "Philox" else set()
    want = {"bit_generator", "state", "has_uint32", "uinteger"} | extra
    _want(keys == want, name, f"keys must be {sorted(want)}")
    _want(_is_int(state["has_uint32"], 0, 2), name, "has_uint32 must be 0 or 1")
    _want(_is_int(state["uinteger"], 0, 1 << 32), name, "uinteger must be a uint32")
    if name in ("PCG64", "PCG64DXSM"):
        _want(set(inner) == {"state", "inc"}, name, "'state' keys must be state, inc")
        _want(
            _is_int(inner["state"], 0, _U128) and _is_int(inner["inc"], 0, _U128),
            name,
            "state and inc must be 128-bit unsigned integers",
        )
    elif name == "SFC64":
        _want(set(inner) == {"state"}, name, "'state' keys must be state")
        _want(_is_words(inner["state"], "uint64", 4), name, "state must be 4 uint64")
    elif name == "Philox":
        _want(set(inner) == {"counter", "key"}, name, "'state' keys must be counter, key")
        _want(_is_words(inner["counter"], "uint64", 4), name, "counter must be 4 uint64")
        _want(_is_words(inner["key"], "uint64", 2), name, "key must be 2 uint64")
        _want(_is_words(state["buffer"], "uint64", 4), name, "buffer must be 4 uint64")
        _want(_is_int(state["buffer_pos"], 0, 5), name, "buffer_pos must be in 0..4")


def _build_rng(b: Any, node: dict[str, Any]) -> Any:
    bg = getattr(np.random, node["bitgen"])()
    tag = node["$"]
    obj: Any = bg
    if tag == "randomstate":
        obj = np.random.RandomState(bg)
    elif tag == "generator":
        obj = np.random.Generator(bg)
    b.register(node, obj)
    state = b.build(node["state"])
    check_rng_state(node["bitgen"], state, legacy=tag == "randomstate")
    state = _native(state)
    if tag == "randomstate":
        obj.set_state(state)
    else:
        bg.state = state
    return obj


# -- functions -------------------------------------------------------------------------------


def _enc_ufunc(e: Any, f: np.ufunc) -> Any:
    name = f.__name__
    for module in ("numpy", "scipy.special"):
        import sys

        mod = sys.modules.get(module)
        if mod is not None and getattr(mod, name, None) is f:
            e.types.add(f"{module}.{name}")
            return {"$": "global", "module": module, "name": name}
    from .._graph.encode import Unsupported

    raise Unsupported(f"ufunc {name} cannot be found by name in numpy or scipy.special", None)


# -- masked arrays ------------------------------------------------------------------------
# scikit-learn's searches keep their parameter columns (cv_results_["param_C"]) as these.


def _enc_masked(e: Any, m: np.ma.MaskedArray[Any, Any]) -> Any:
    entry = e.memo.get(id(m))
    if entry is not None:
        return e.ref(entry)
    e.types.add("numpy.ma.MaskedArray")
    node: dict[str, Any] = {"$": "ma"}
    e.remember(m, node)
    node["data"] = e.enc(np.asarray(m.data))
    mask = m.mask
    node["mask"] = False if mask is np.ma.nomask else e.enc(np.asarray(mask))
    fill = getattr(m, "_fill_value", None)  # None: the default for the dtype, chosen when asked
    node["fill"] = None if fill is None else e.enc(fill[()] if np.ndim(fill) == 0 else fill)
    node["hard"] = bool(m.hardmask)
    return node


def _audit_masked(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("data", "mask", "fill", "hard"), optional=("id",))
    if type(node["hard"]) is not bool:
        a.fail("'hard' must be true or false")
    a.need("numpy.ma.MaskedArray", "node")
    a.visit(node["data"])
    if node["mask"] is not False:
        a.visit(node["mask"])
    a.visit(node["fill"])
    a.define_late(node)  # built from its parts: nothing inside can refer to it


def _build_masked(b: Any, node: dict[str, Any]) -> Any:
    data = b.build(node["data"])
    mask = node["mask"] if node["mask"] is False else b.build(node["mask"])
    if not isinstance(data, np.ndarray) or type(data) is not np.ndarray:
        raise FormatError(f"{b.source}: a masked array's data must be an array")
    if mask is not False and not (
        type(mask) is np.ndarray and mask.dtype == np.bool_ and mask.shape == data.shape
    ):
        raise FormatError(f"{b.source}: a masked array's mask must be booleans of its data's shape")
    out = np.ma.MaskedArray(
        data, mask=np.ma.nomask if mask is False else mask, copy=False, hard_mask=node["hard"]
    )
    fill = b.build(node["fill"])
    if fill is not None:
        try:
            out.fill_value = fill
        except (TypeError, ValueError) as exc:
            raise FormatError(
                f"{b.source}: a masked array's fill value does not fit: {exc}"
            ) from None
    if "id" in node:
        b.register(node, out)
    return out


# -- numpy.matrix: a 2-D array view; scipy.sparse reductions return it ----------------------


def _enc_matrix(e: Any, m: np.matrix[Any, Any]) -> Any:
    entry = e.memo.get(id(m))
    if entry is not None:
        return e.ref(entry)
    e.types.add("numpy.matrix")
    node: dict[str, Any] = {"$": "npmatrix"}
    e.remember(m, node)
    node["v"] = e.enc(m.view(np.ndarray))
    return node


def _audit_matrix(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("v",), optional=("id",))
    a.need("numpy.matrix", "node")
    a.visit(node["v"])
    a.define_late(node)


def _build_matrix(b: Any, node: dict[str, Any]) -> Any:
    arr = b.build(node["v"])
    if type(arr) is not np.ndarray or arr.ndim != 2 or arr.dtype.hasobject:
        raise FormatError(f"{b.source}: a numpy.matrix must hold a 2-D array without objects")
    out = arr.view(np.matrix)
    if "id" in node:
        b.register(node, out)
    return out


def encoder_for(t: type) -> Any:
    if t is np.ndarray or t is np.memmap:
        return _enc_array
    if t is np.ma.MaskedArray:
        return _enc_masked
    if t is np.matrix:
        return _enc_matrix
    if issubclass(t, np.generic):
        return _enc_scalar
    if issubclass(t, np.dtype):
        return _enc_dtype
    if t is np.ufunc:
        return _enc_ufunc
    if t is np.random.RandomState or t is np.random.Generator:
        return _enc_rng
    if isinstance(t, type) and issubclass(t, np.random.BitGenerator) and t.__name__ in BITGENS:
        return _enc_rng
    return None


TAGS = {
    "nd": Tag(_audit_array, _build_array),
    "npscalar": Tag(_audit_scalar, _build_scalar),
    "dtype": Tag(_audit_dtype, _build_dtype),
    "randomstate": Tag(_audit_rng, _build_rng),
    "generator": Tag(_audit_rng, _build_rng),
    "bitgen": Tag(_audit_rng, _build_rng),
    "ma": Tag(_audit_masked, _build_masked),
    "npmatrix": Tag(_audit_matrix, _build_matrix),
}
