"""Phase two of loading: construct objects from an audited tree.

Only reached after :class:`~modelsafe._graph.audit.Audit` passed, so every
name here is trusted, every id is defined before it is referenced, and every
buffer has the size its node needs. Plain JSON lists and dicts are turned
into the result in place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._handlers import Validator, validator_for, validator_of
from ..errors import FormatError, ModelSafeError
from .audit import Audit
from .names import resolve


class Builder:
    """The state of one construction: the memo and the data views."""

    def __init__(
        self,
        views: Sequence[memoryview | bytearray],
        audit: Audit,
        *,
        copy: bool,
        mapped: bool = False,
        source: str = "the file",
        handed: Callable[[int], None] | None = None,
        consumed: Callable[..., None] | None = None,
        wait_hashed: Callable[[int], None] | None = None,
    ) -> None:
        self.views = views
        # Told of each buffer the builder takes a view of, before it reads it.
        self.handed: Callable[[int], None] = handed or _nothing
        # Returns once a buffer's digest is computed (hashing may run in the background):
        # a handler that copies a large buffer waits, so that ``consumed`` gives its pages
        # back at once rather than when the hashing thread next gets the GIL.
        self.wait_hashed: Callable[[int], None] = wait_hashed or _nothing
        # Told of each view of the map the builder has copied and will not read again
        # (``consumed(view)``, or ``consumed(view, minimum=...)``: see Releaser.consumed).
        self.consumed: Callable[..., None] = consumed or _ignore
        self.cache = audit.cache
        self.pure = audit.pure
        self.specs = audit.specs
        self.copy = copy  # arrays must not alias the caller's memory (loads)
        self.mapped = mapped and not copy  # arrays are views of a memory-mapped file
        self.table = audit.table
        self.groups = audit.groups
        self.prepared: dict[str, Any] = {}  # a handler's work on a whole group, done once
        self.memo: dict[int, Any] = {}
        self.source = source
        self._u8: dict[int, Any] = {}
        self._fns: dict[str, Callable[[Builder, dict[str, Any]], Any]] = dict(_CORE)

    def buffer(self, index: int) -> memoryview | bytearray:
        self.handed(index)
        return self.views[index]

    def copy_of(self, index: int, into: type[bytes] | type[bytearray] = bytes) -> Any:
        """Buffer ``index`` copied into this process's memory (``bytes`` or ``bytearray``),
        for a handler that checks the copy and hands the same copy on (a file rewritten in
        place during the load must not show the check other bytes than the library gets).
        The mapped pages are given back at once: the wait for the buffer's digest, where
        it is computed in the background, lets them go before the check's scratch is made
        rather than when the hashing thread next gets the GIL."""
        view = self.buffer(index)
        copy = into(view)
        if self.mapped:
            self.wait_hashed(index)
            self.consumed(view)
        return copy

    def bytes_array(self, index: int) -> Any:
        """A buffer as a flat uint8 array, made once per buffer and sliced per array."""
        arr = self._u8.get(index)
        if arr is None:
            arr = self._u8[index] = np.frombuffer(self.buffer(index), dtype=np.uint8)
        return arr

    def private(self, arr: Any) -> Any:
        """``arr`` in this process's own memory: a copy when it views a mapped file.

        For the arrays that compiled code indexes with their values (tree nodes, index
        arrays), which are checked on the copy: a file rewritten in place while the
        object lives (``cp other.msafe model.msafe``, a sync tool) changes the pages of
        its map, and must not change arrays whose checks have passed.
        """
        if not self.mapped or type(arr) is not np.ndarray:
            return arr
        if arr.flags.c_contiguous:  # the bytes, padding included: re-saving stays exact
            own = np.frombuffer(bytearray(arr.data), dtype=arr.dtype).reshape(arr.shape)
        elif arr.flags.f_contiguous:
            t = arr.T
            own = np.frombuffer(bytearray(t.data), dtype=t.dtype).reshape(t.shape).T
        else:
            return arr.copy()
        self.consumed(arr)
        return own

    def register(self, node: dict[str, Any], obj: Any) -> None:
        mid = node.get("id")
        if mid is not None:
            self.memo[mid] = obj

    def build_root(self, root: Any) -> Any:
        try:
            return self.build(root)
        except ModelSafeError:
            raise
        except Exception as exc:
            raise FormatError(
                f"{self.source}: the object could not be constructed: {type(exc).__name__}: {exc}"
            ) from exc

    def build(self, node: Any) -> Any:
        t = type(node)
        if t is list:
            if id(node) in self.pure:
                return node
            for i, x in enumerate(node):
                tx = type(x)
                if tx is list or tx is dict:
                    node[i] = self.build(x)
            return node
        if t is dict:
            tag = node.get("$")
            if tag is None:
                if id(node) not in self.pure:
                    for k, v in node.items():
                        tv = type(v)
                        if tv is list or tv is dict:
                            node[k] = self.build(v)
                return node
            fn = self._fns.get(tag)
            if fn is None:
                fn = self._fns[tag] = self.specs[tag].build
            return fn(self, node)
        return node


def _b_ref(b: Builder, node: dict[str, Any]) -> Any:
    if "pre" in node:
        b.build(node["pre"])
    return b.memo[node["id"]]


def _b_list(b: Builder, node: dict[str, Any]) -> Any:
    lst = node["v"]
    b.register(node, lst)
    return b.build(lst)


def _b_dict(b: Builder, node: dict[str, Any]) -> Any:
    d: dict[Any, Any] = {}
    b.register(node, d)
    build = b.build
    for k, v in node["v"]:
        key = build(k)  # first: the value may refer to the key
        d[key] = build(v)
    return d


def _b_tuple(b: Builder, node: dict[str, Any]) -> Any:
    t = tuple(b.build(node["v"]))
    b.register(node, t)
    return t


def _b_set(b: Builder, node: dict[str, Any]) -> Any:
    s: set[Any] = set()
    b.register(node, s)
    s.update(b.build(node["v"]))
    return s


def _b_frozenset(b: Builder, node: dict[str, Any]) -> Any:
    s = frozenset(b.build(node["v"]))
    b.register(node, s)
    return s


def _b_int(b: Builder, node: dict[str, Any]) -> Any:
    return int(node["hex"], 16)


def _b_float(b: Builder, node: dict[str, Any]) -> Any:
    return float(node["v"])  # a new object each time, as pickle gives: NaN keys stay distinct


def _b_complex(b: Builder, node: dict[str, Any]) -> Any:
    re, im = (b.build(x) for x in node["v"])
    return complex(re, im)


def _b_bytes(b: Builder, node: dict[str, Any]) -> Any:
    if "b64" in node:
        raw: Any = b.cache[id(node)]
    else:
        raw = b.buffer(node["buf"])
    out = bytes(raw) if node["$"] == "bytes" else bytearray(raw)
    b.register(node, out)
    return out


def _b_slice(b: Builder, node: dict[str, Any]) -> Any:
    return slice(*b.build(node["v"]))


def _b_range(b: Builder, node: dict[str, Any]) -> Any:
    return range(*b.build(node["v"]))


def _b_global(b: Builder, node: dict[str, Any]) -> Any:
    return resolve(node["module"], node["name"])


def _set_state(obj: Any, state: Any) -> None:
    """Apply state as pickle's BUILD does."""
    setstate = getattr(obj, "__setstate__", None)
    if setstate is not None:
        setstate(state)
        return
    slotstate = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slotstate = state
    if state:
        if not isinstance(state, dict):
            raise TypeError(f"state of {type(obj).__name__} must be a dict")
        inst_dict = obj.__dict__
        for k, v in state.items():
            if type(k) is not str:
                raise TypeError("attribute names must be strings")
            inst_dict[k] = v
    if slotstate:
        if not isinstance(slotstate, dict):
            raise TypeError(f"slot state of {type(obj).__name__} must be a dict")
        for k, v in slotstate.items():
            setattr(obj, k, v)


def _validate(b: Builder, name: str, check: Callable[..., None], *what: Any) -> None:
    """Run a handler's check; a ValueError or TypeError names the broken invariant."""
    try:
        check(*what)
    except (ValueError, TypeError) as exc:
        raise FormatError(f"{b.source}: invalid {name}: {exc}") from None


def _checks(name: str, target: Any) -> tuple[str, Validator | None]:
    """The validator for what ``name`` (resolved to ``target``) makes, and the name its
    errors give: a class without one of its own is checked as its nearest validated base
    class (``validator_of``)."""
    if not isinstance(target, type):
        return name, validator_for(name)
    found = validator_of(target)
    if found is None:
        return name, None
    base, check = found
    return (name if base == name else f"{name} (checked as its base class {base})"), check


def _failed(b: Builder, name: str, exc: Exception) -> FormatError:
    """The error for an exception raised while constructing ``name`` (or its state)."""
    return FormatError(f"{b.source}: constructing {name} failed: {type(exc).__name__}: {exc}")


def _b_instance(b: Builder, node: dict[str, Any]) -> Any:
    name = f"{node['module']}.{node['name']}"
    try:
        target = resolve(node["module"], node["name"])
        args = b.build(node["args"]) if "args" in node else []
        kwargs = b.build(node["kwargs"]) if "kwargs" in node else {}
        checked_as, check = _checks(name, target)
        if check is not None and check.args is not None:
            _validate(b, checked_as, check.args, args, kwargs)
        if node["$"] == "obj":
            if not isinstance(target, type):
                raise TypeError(f"{name} is not a class")
            obj = target.__new__(target, *args, **kwargs)
        else:
            if not callable(target):
                raise TypeError(f"{name} is not callable")
            obj = target(*args, **kwargs)
        b.register(node, obj)
        if check is not None and check.state is not None:
            # A validated class gets no state it has not seen; no state at all is a state.
            state = b.build(node["state"]) if "state" in node else None
            if check.private is not None and state is not None:
                state = check.private(state, b.private)
            _validate(b, checked_as, check.state, obj, state)
            if "state" in node:
                _set_state(obj, state)
        elif "state" in node:
            _set_state(obj, b.build(node["state"]))
        if "items" in node:
            items = b.build(node["items"])
            extend = getattr(obj, "extend", None)
            if extend is not None:
                extend(items)
            else:
                for x in items:
                    obj.append(x)
        if "kv" in node:
            for k, v in node["kv"]:
                key = b.build(k)
                obj[key] = b.build(v)
    except ModelSafeError:
        raise
    except Exception as exc:
        raise _failed(b, name, exc) from exc
    return obj


def _b_objs(b: Builder, node: dict[str, Any]) -> Any:
    """A list of instances made as ``obj`` nodes without arguments would be, their states
    assembled column by column, then checked and applied in order."""
    name = f"{node['module']}.{node['name']}"
    try:
        target = resolve(node["module"], node["name"])
        if not isinstance(target, type):
            raise TypeError(f"{name} is not a class")
        n = node["n"]
        checked_as, check = _checks(name, target)
        if check is not None and check.args is not None:
            _validate(b, checked_as, check.args, [], {})
        new: Any = target.__new__
        objs = [new(target) for _ in range(n)]
        ids = node.get("ids")
        if ids is not None:
            for obj, mid in zip(objs, ids, strict=True):
                if mid is not None:
                    b.memo[mid] = obj
        states: list[dict[str, Any]] = [{} for _ in range(n)]
        same, each = node["same"], node["each"]
        build = b.build
        for k in node["keys"]:
            if k in same:
                value = build(same[k])
                for state in states:
                    state[k] = value
            elif type(each[k]) is dict:  # a column node: a list of n values
                values = build(each[k])
                if type(values) is not list or len(values) != n:
                    raise FormatError(f"{b.source}: column {k!r} does not give {n} values")
                for state, x in zip(states, values, strict=True):
                    state[k] = x
            else:
                for state, x in zip(states, each[k], strict=True):
                    tx = type(x)
                    state[k] = build(x) if tx is list or tx is dict else x
        for obj, state in zip(objs, states, strict=True):
            if check is not None and check.state is not None:
                if check.private is not None:
                    state = check.private(state, b.private)
                _validate(b, checked_as, check.state, obj, state)
            _set_state(obj, state)
    except ModelSafeError:
        raise
    except Exception as exc:
        raise _failed(b, name, exc) from exc
    return objs


def _b_scalars(b: Builder, node: dict[str, Any]) -> Any:
    n = node["n"]
    kind = node.get("kind")
    if kind == "str":
        out: Any = _strings(b, node["strs"], n)
    elif kind == "int" or kind == "float":
        column = b.buffer(node[_COLUMNS[kind]])
        out = np.frombuffer(column, dtype=_DTYPES[kind]).tolist()
        b.consumed(column)
    else:
        out = _mixed(b, node, n)
    b.register(node, out)
    return out


_COLUMNS = {"int": "ints", "float": "floats"}
_DTYPES = {"int": "<i8", "float": "<f8"}


def _b_sdict(b: Builder, node: dict[str, Any]) -> Any:
    v = node["v"]
    if type(node["keys"]) is int and v.get("kind") in _COLUMNS:
        out = _packed_dict(b, node["keys"], v)
    else:
        values = _b_scalars(b, v)
        keys = _strings(b, node["keys"], len(values))
        out = dict(zip(keys, values, strict=True))
        if len(out) != len(keys):
            raise FormatError(f"{b.source}: a packed dict repeats a key")
    b.register(node, out)
    return out


def _packed_dict(b: Builder, keys_ref: int, v: dict[str, Any]) -> dict[str, Any]:
    """A packed dict of number values, its keys a buffer: made a run of keys at a time,
    without the whole list of keys, the list of values and the decoded text beside the
    dict (a 200,000-word vocabulary: ~5 MB less at the peak). The mapped pages of the
    keys and values already in the dict are given back as it grows, not once it is
    whole: its last resizes, when it needs the most memory, come near the end."""
    n, kind = v["n"], v["kind"]
    column = b.buffer(v[_COLUMNS[kind]])
    values = np.frombuffer(column, dtype=_DTYPES[kind])
    raw = b.buffer(keys_ref)
    out: dict[str, Any] = {}
    done = 0
    given = (0, 0)  # keys' bytes and values given back so far
    for keys, stop in _string_runs(b, raw):
        if done + len(keys) > n:
            raise FormatError(f"{b.source}: packed strings hold more than {n} items, 'n' says {n}")
        out.update(zip(keys, values[done : done + len(keys)].tolist(), strict=True))
        done += len(keys)
        if stop - given[0] >= _GIVE_BACK:
            b.consumed(raw[given[0] : stop], minimum=_GIVE_BACK)
            b.consumed(values[given[1] : done], minimum=_PAGE)
            given = (stop, done)
    if done < n:
        raise FormatError(f"{b.source}: packed strings hold {done} items, 'n' says {n}")
    if len(out) != n:
        raise FormatError(f"{b.source}: a packed dict repeats a key")
    b.consumed(raw[given[0] :], minimum=_PAGE)
    b.consumed(values[given[1] :], minimum=_PAGE)
    return out


_RUN = 1 << 16  # bytes of packed strings decoded at a time by _string_runs
_GIVE_BACK = 1 << 16  # keys' bytes a packed dict reads between two gives back (see above)
_PAGE = 1 << 12  # less than this holds no whole page: not worth the call


def _string_runs(b: Builder, raw: Any) -> Any:
    """The strings of a ``strs`` buffer (UTF-8 text split at U+0000), a list per run of
    about ``_RUN`` bytes, with the offset where the run's bytes end. A NUL byte is never
    part of another character's UTF-8 bytes, so splitting the bytes first gives the
    strings of splitting the text."""
    size, at = len(raw), 0
    while True:
        cut = _nul_at_or_after(raw, at + _RUN) if at + _RUN < size else -1
        piece = raw[at:] if cut < 0 else raw[at:cut]
        try:
            text = str(piece, "utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(
                f"{b.source}: packed strings are not valid UTF-8 "
                f"({exc.reason} at byte {at + exc.start})"
            ) from None
        yield text.split("\x00"), size if cut < 0 else cut
        if cut < 0:
            return
        at = cut + 1


def _nul_at_or_after(raw: Any, at: int) -> int:
    """The first NUL byte of ``raw`` from ``at`` on, or -1."""
    while at < len(raw):
        window = bytes(raw[at : at + 4096])
        found = window.find(0)
        if found >= 0:
            return at + found
        at += len(window)
    return -1


def _strings(b: Builder, ref: Any, count: int | None) -> list[str]:
    """A ``strs`` column: the header's list, or a buffer of UTF-8 text split at U+0000."""
    if type(ref) is list:
        strs: list[str] = ref
    else:
        raw = b.buffer(ref)
        try:
            text = str(raw, "utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(
                f"{b.source}: packed strings are not valid UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None
        strs = text.split("\x00")
        b.consumed(raw)
    if count is not None and len(strs) != count:
        raise FormatError(f"{b.source}: packed strings hold {len(strs)} items, 'n' says {count}")
    return strs


_CHUNK = 1 << 15  # items per pass of _mixed: its scratch arrays stay small and get reused
_CONSTANTS = (None, False, True)  # kind codes 0, 1 and 2 of a packed list


def _mixed(b: Builder, node: dict[str, Any], n: int) -> list[Any]:
    """Interleave the columns of a mixed packed list, checking them against the codes.

    The list is assembled a chunk at a time: every temporary is a few hundred KiB that
    the allocator hands back on the next pass, so a load does not page-fault through
    tens of MiB of fresh scratch memory (measured: a third of the time on 1M items).
    """
    codes = np.frombuffer(b.buffer(node["codes"]), dtype=np.uint8)
    ints = np.frombuffer(b.buffer(node["ints"]), dtype="<i8") if "ints" in node else None
    floats = np.frombuffer(b.buffer(node["floats"]), dtype="<f8") if "floats" in node else None
    strs = _strings(b, node["strs"], None) if "strs" in node else []
    columns: dict[int, Any] = {3: ints, 4: floats, 5: strs}
    counts = [int(np.count_nonzero(codes == code)) for code in range(6)]
    if sum(counts) != n:
        raise FormatError(f"{b.source}: packed scalars use an unknown kind code")
    for code, column in columns.items():
        size = 0 if column is None else len(column)
        if counts[code] != size:
            raise FormatError(
                f"{b.source}: packed scalars have {counts[code]} items of kind {code} "
                f"but a column of {size}"
            )
    result: list[Any] = []
    if not n:
        return result
    step = min(n, _CHUNK)
    chunk = np.empty(step, dtype=object)
    used = dict.fromkeys(columns, 0)
    for start in range(0, n, step):
        part = codes[start : start + step]
        out = chunk[: len(part)]  # every slot is overwritten: no need to clear the previous chunk
        for code in range(6):
            mask = part == code
            count = int(np.count_nonzero(mask))
            if not count:
                continue
            if code < 3:
                out[mask] = _CONSTANTS[code]
                continue
            first = used[code]
            used[code] = first + count
            if code == 5:  # fromiter: no per-item check for nested sequences
                out[mask] = np.fromiter(strs[first : first + count], dtype=object, count=count)
            else:  # boxing a contiguous run, then placing it, beats a masked cast to object
                out[mask] = columns[code][first : first + count].astype(object)
        result += out.tolist()
    return result


_CORE: dict[str, Callable[[Builder, dict[str, Any]], Any]] = {
    "ref": _b_ref,
    "list": _b_list,
    "dict": _b_dict,
    "tuple": _b_tuple,
    "set": _b_set,
    "frozenset": _b_frozenset,
    "int": _b_int,
    "float": _b_float,
    "complex": _b_complex,
    "bytes": _b_bytes,
    "bytearray": _b_bytes,
    "slice": _b_slice,
    "range": _b_range,
    "global": _b_global,
    "obj": _b_instance,
    "call": _b_instance,
    "objs": _b_objs,
    "scalars": _b_scalars,
    "sdict": _b_sdict,
}


def _ignore(arr: Any, minimum: int | None = None) -> None:
    """``Builder.consumed`` where no pages can be given back."""


def _nothing(index: int) -> None:
    """``Builder.handed`` where no pages are dropped."""


def build(root: Any, views: Sequence[memoryview | bytearray], audit: Audit, **kw: Any) -> Any:
    return Builder(views, audit, **kw).build_root(root)
