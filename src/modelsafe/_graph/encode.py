"""Python value -> JSON node tree + byte buffers (docs/format.md, "Nodes")."""

from __future__ import annotations

import base64
import copyreg
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from .._trust import never_trustable
from ..errors import UnsupportedTypeError
from .names import qualname, split_global
from .table import PACK_ALIGN, PACK_BYTES, TableWriter

Node = Any
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1
INLINE_BYTES = 256  # bytes up to this length live in the header as base64
PACK_MIN = 64  # lists of at least this many scalars are packed into binary columns
RUN_MIN = 8  # lists of at least this many instances may be stored in columns (columns.py)
_SCALAR_TYPES = frozenset({type(None), bool, int, float, str})
_GLOBAL_TYPES = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
)
_NEWOBJ = getattr(copyreg, "__newobj__")  # noqa: B009 - not in the stubs
_NEWOBJ_EX = getattr(copyreg, "__newobj_ex__")  # noqa: B009
ADVICE = (
    "Ways out: move it into an importable module and pass its name in trusted=[...] when "
    "loading, or save with a pickle-family format (planned) if you trust every reader."
)


class Unsupported(Exception):
    """Raised inside the encoder; the path is collected while it unwinds."""

    def __init__(self, reason: str, advice: str | None = ADVICE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.advice = advice
        self.segments: list[str] = []

    def to_public(self) -> UnsupportedTypeError:
        path = "root" + "".join(reversed(self.segments))
        return UnsupportedTypeError(self.reason, path=path, advice=self.advice)


def _seg_key(k: Any) -> str:
    return f"[{k!r}]" if isinstance(k, str | int | float | bool | type(None)) else "[...]"


def float_node(x: float) -> Node:
    if x - x == 0.0:
        return x
    return {"$": "float", "v": "nan" if x != x else ("inf" if x > 0 else "-inf")}


def int_node(x: int) -> Node:
    if INT_MIN <= x <= INT_MAX:
        return x
    return {"$": "int", "hex": format(x, "x")}


class Encoder:
    """One save: holds the memo (shared references), the buffers and the type names."""

    def __init__(self, max_depth: int = 200) -> None:
        self.buffers: list[memoryview] = []
        self.types: set[str] = set()
        # id(obj) -> [obj, node, memo id or None]; holding obj keeps temporaries alive,
        # so an id is never reused by another object during one save.
        self.memo: dict[int, list[Any]] = {}
        self.next_id = 0
        self.wrap: dict[int, int] = {}  # plain list/dict nodes that turned out shared
        self.depth = 0
        self.max_depth = max_depth
        self._pack: bytearray | None = None
        self._pack_index = -1
        self._packs: dict[int, bytearray] = {}
        self.table = TableWriter()
        self.runs = 0  # lists that may be runs of instances (see note_run)
        # Values a handler encodes once the tree is complete (see later), by id(node).
        self._later: dict[int, tuple[dict[str, Any], list[Any]]] = {}
        # Handler work on the finished tree (see after), by key.
        self._after: dict[str, Callable[[Node], Node]] = {}
        # Node kind -> a handler's way to store a run's column of such nodes as one node.
        self.column_kinds: dict[str, Callable[[Encoder, list[Node]], Node | None]] = {}
        self._dispatch: dict[type, Callable[[Encoder, Any], Node]] = dict(_CORE)

    # -- entry point -------------------------------------------------------------
    def encode_root(self, obj: Any) -> Node:
        try:
            root = self.enc(obj)
            if self.wrap:
                holder = [root]
                _wrap_shared(holder, self.wrap)
                root = holder[0]
            if self.runs:
                from .columns import to_columns

                root = to_columns(root, self)
            for fn in self._after.values():
                root = fn(root)
            self._finish_later()
        except Unsupported as exc:
            raise exc.to_public() from None
        except RecursionError:
            raise UnsupportedTypeError("the object nests too deeply to save", advice=None) from None
        self.finish_packs()
        return root

    def note_run(self, items: list[Node]) -> None:
        """Note a list of encoded items that may be a run of instances (``to_columns``
        walks the tree only when there is one)."""
        if len(items) >= RUN_MIN and type(items[0]) is dict and items[0].get("$") == "obj":
            self.runs += 1

    # -- helpers for handlers -----------------------------------------------------
    def later(
        self,
        node: dict[str, Any],
        member: str,
        value: Any,
        finish: Callable[[Any], Any] | None = None,
    ) -> None:
        """Set ``node[member]`` to the encoding of ``value`` (of ``finish(value)``) once
        the whole tree is encoded, unless a column kind takes ``node``'s values first
        (``take_later``) to store them otherwise.

        What is encoded must be a fresh object that nothing else refers to (an array
        the handler made), so encoding it later can never turn into a reference to a
        value defined after ``node``.
        """
        node[member] = None  # keeps the member's place in the node
        entry = self._later.get(id(node))
        if entry is None:
            entry = self._later[id(node)] = (node, [])
        entry[1].append((member, value, finish, self.depth))

    def after(self, key: str, fn: Callable[[Node], Node]) -> None:
        """Have ``root = fn(root)`` run once (per ``key``) when the whole tree is encoded
        (shared containers wrapped, runs in columns), before the values held by ``later``
        are: a handler may then rewrite nodes it made, knowing that a plain list or object
        is referred to from nowhere else."""
        self._after.setdefault(key, fn)

    def take_later(self, node: dict[str, Any]) -> dict[str, Any]:
        """The values ``later`` holds for ``node`` (before ``finish``), which then
        encodes none of them."""
        entry = self._later.pop(id(node), None)
        return {} if entry is None else {member: value for member, value, _, _ in entry[1]}

    def _finish_later(self) -> None:
        """Encode what ``later`` holds, in the order it was noted (deterministic)."""
        pending, self._later = self._later, {}
        depth = self.depth
        for node, entries in pending.values():
            for member, value, finish, at in entries:
                self.depth = at
                node[member] = self.enc(value if finish is None else finish(value))
        self.depth = depth

    def add_buffer(self, data: memoryview) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def add_small(self, data: bytes | memoryview) -> tuple[int, int]:
        """Append small array bytes to the current pack: returns (buffer, offset)."""
        pack = self._pack
        if pack is None or len(pack) + len(data) > PACK_BYTES:
            pack = self._pack = bytearray()
            self._pack_index = self.add_buffer(memoryview(b""))
            self._packs[self._pack_index] = pack
        at = -len(pack) % PACK_ALIGN + len(pack)
        if at > len(pack):
            pack.extend(bytes(at - len(pack)))
        pack.extend(data)
        return self._pack_index, at

    def finish_packs(self) -> None:
        for index, pack in self._packs.items():
            self.buffers[index] = memoryview(pack)
        self._pack = None

    def bytes_field(self, data: bytes | bytearray | memoryview, node: dict[str, Any]) -> None:
        """Store bytes inline (short) or as a buffer (long) in ``node``."""
        if len(data) <= INLINE_BYTES:
            node["b64"] = base64.b64encode(data).decode("ascii")
        else:
            node["buf"] = self.add_buffer(memoryview(data).cast("B"))

    def seen(self, obj: Any) -> Node | None:
        """A ref node if ``obj`` was already encoded, else None."""
        entry = self.memo.get(id(obj))
        if entry is None:
            return None
        return self.ref(entry)

    def remember(self, obj: Any, node: Node) -> None:
        self.memo[id(obj)] = [obj, node, None]

    def deeper(self) -> None:
        """One more level: one per node, counted as the reader counts it (docs/format.md)."""
        self.depth += 1
        if self.depth > self.max_depth:
            raise Unsupported(
                f"the object nests more than {self.max_depth} levels deep", advice=None
            )

    def ref(self, entry: list[Any]) -> Node:
        mid = entry[2]
        if mid is None:
            mid = entry[2] = self.next_id
            self.next_id += 1
            node = entry[1]
            if type(node) is dict and "$" in node:
                node["id"] = mid
            else:
                self.wrap[id(node)] = mid
        return {"$": "ref", "id": mid}

    # -- dispatch -------------------------------------------------------------------
    def enc(self, obj: Any) -> Node:
        t = type(obj)
        if t is str or t is bool or obj is None:
            return obj
        if t is int:
            return obj if INT_MIN <= obj <= INT_MAX else int_node(obj)
        if t is float:
            return obj if obj - obj == 0.0 else float_node(obj)
        fn = self._dispatch.get(t)
        if fn is None:
            fn = self._find(t)
        self.deeper()
        node = fn(self, obj)
        self.depth -= 1
        return node

    def enc_seq(self, items: Any, out: list[Node]) -> None:
        """Append each encoded item to ``out``; on failure the index joins the path."""
        enc = self.enc
        append = out.append
        try:
            for x in items:
                t = type(x)
                if (
                    t is str
                    or t is bool
                    or x is None
                    or (t is int and INT_MIN <= x <= INT_MAX)
                    or (t is float and x - x == 0.0)
                ):
                    append(x)
                else:
                    append(enc(x))
        except Unsupported as exc:
            exc.segments.append(f"[{len(out)}]")
            raise

    def _find(self, t: type) -> Callable[[Encoder, Any], Node]:
        from .._handlers import encoder_for

        fn = encoder_for(t)
        if fn is None:
            if issubclass(t, _GLOBAL_TYPES) or (isinstance(t, type) and issubclass(t, type)):
                fn = _enc_global
            else:
                fn = _enc_reduce
        self._dispatch[t] = fn
        return fn


# -- core kinds ----------------------------------------------------------------------


def _enc_list(e: Encoder, lst: list[Any]) -> Node:
    entry = e.memo.get(id(lst))
    if entry is not None:
        return e.ref(entry)
    if len(lst) >= PACK_MIN:
        packed = _pack_scalars(e, lst)
        if packed is not None:
            e.remember(lst, packed)
            return packed
    node: list[Node] = []
    e.remember(lst, node)
    e.enc_seq(lst, node)
    e.note_run(node)
    return node


def _enc_dict(e: Encoder, d: dict[Any, Any]) -> Node:
    entry = e.memo.get(id(d))
    if entry is not None:
        return e.ref(entry)
    str_keys = "$" not in d and all(type(k) is str for k in d)
    if str_keys and len(d) >= PACK_MIN:
        packed = _pack_dict(e, d)
        if packed is not None:
            e.remember(d, packed)
            return packed
    node: dict[str, Any] = {}
    e.remember(d, node)
    if str_keys:
        enc = e.enc
        key: Any = None
        try:
            for key, v in d.items():
                t = type(v)
                if t is str or t is bool or v is None or (t is int and INT_MIN <= v <= INT_MAX):
                    node[key] = v
                else:
                    node[key] = enc(v)
        except Unsupported as exc:
            exc.segments.append(_seg_key(key))
            raise
    else:
        node["$"] = "dict"
        pairs: list[Node] = []
        node["v"] = pairs
        _enc_pairs(e, d.items(), pairs)
    return node


def _enc_pairs(e: Encoder, items: Any, out: list[Node]) -> None:
    key: Any = None
    try:
        for key, v in items:
            out.append([e.enc(key), e.enc(v)])
    except Unsupported as exc:
        exc.segments.append(_seg_key(key))
        raise


def _enc_tuple(e: Encoder, t: tuple[Any, ...]) -> Node:
    entry = e.memo.get(id(t))
    if entry is not None:
        return e.ref(entry)
    items: list[Node] = []
    e.enc_seq(t, items)
    # A tuple is built after its items; if an item led back to this tuple it was
    # already encoded there (as pickle does), and this copy is dropped.
    entry = e.memo.get(id(t))
    if entry is not None:
        # Its definition lies inside ``items``: keep them, as pickle keeps the
        # items it pops, so every id is defined before this reference.
        return {**e.ref(entry), "pre": items}
    e.types.add("builtins.tuple")
    node = {"$": "tuple", "v": items}
    if t:
        e.remember(t, node)
    return node


def _canonical(x: Any) -> tuple[str, Any]:
    """A sort key independent of hashing, for values whose order can be canonical."""
    t = type(x)
    if t is str or t is int or t is bool or t is bytes:
        return (t.__name__, x)
    if t is float:
        return ("float", repr(x))
    if x is None:
        return ("none", 0)
    if t is tuple:
        return ("tuple", tuple(map(_canonical, x)))
    if t is frozenset:
        return ("frozenset", tuple(sorted(map(_canonical, x))))
    raise TypeError("no canonical order")


def _set_order(s: set[Any] | frozenset[Any]) -> list[Any]:
    # Sorting makes the bytes independent of hash randomisation where it can.
    try:
        return sorted(s, key=_canonical)
    except TypeError:
        return list(s)


def _enc_set(e: Encoder, s: set[Any] | frozenset[Any]) -> Node:
    entry = e.memo.get(id(s))
    if entry is not None:
        return e.ref(entry)
    tag = "set" if type(s) is set else "frozenset"
    e.types.add(f"builtins.{tag}")
    items: list[Node] = []
    node = {"$": tag, "v": items}
    if tag == "set":
        e.remember(s, node)
    e.enc_seq(_set_order(s), items)
    if tag == "frozenset":
        entry = e.memo.get(id(s))
        if entry is not None:
            return {**e.ref(entry), "pre": items}
        if s:
            e.remember(s, node)
    return node


def _enc_bytes(e: Encoder, b: bytes | bytearray) -> Node:
    entry = e.memo.get(id(b))
    if entry is not None:
        return e.ref(entry)
    node: dict[str, Any] = {"$": "bytes" if type(b) is bytes else "bytearray"}
    e.types.add(f"builtins.{node['$']}")
    e.bytes_field(b, node)
    if len(b) > INLINE_BYTES or type(b) is bytearray:
        e.remember(b, node)
    return node


def _enc_complex(e: Encoder, c: complex) -> Node:
    e.types.add("builtins.complex")
    return {"$": "complex", "v": [float_node(c.real), float_node(c.imag)]}


def _enc_slice(e: Encoder, s: slice) -> Node:
    e.types.add("builtins.slice")
    items: list[Node] = []
    e.enc_seq((s.start, s.stop, s.step), items)
    return {"$": "slice", "v": items}


def _enc_range(e: Encoder, r: range) -> Node:
    e.types.add("builtins.range")
    return {"$": "range", "v": [int_node(r.start), int_node(r.stop), int_node(r.step)]}


def _never(name: str) -> None:
    if never_trustable(name):
        raise Unsupported(
            f"{name} reaches the operating system or runs code, so no modelsafe file may "
            f"hold it (loading would always refuse it)",
            advice="Leave it out of the saved object, or rebuild it after loading.",
        )


def _enc_global(e: Encoder, obj: Any) -> Node:
    where = split_global(obj)
    if isinstance(where, str):
        raise Unsupported(where)
    module, name = where
    _never(f"{module}.{name}")
    e.types.add(f"{module}.{name}")
    return {"$": "global", "module": module, "name": name}


def _mv(arr: Any) -> memoryview:
    return memoryview(arr).cast("B")


def _pack_scalars(e: Encoder, lst: list[Any]) -> Node | None:
    """Pack a long list of None/bool/int64/float/str into binary columns, or None."""
    kinds = set(map(type, lst))
    if not kinds <= _SCALAR_TYPES:
        return None
    n = len(lst)
    node: dict[str, Any] = {"$": "scalars", "n": n}
    if len(kinds) == 1:
        (k,) = kinds
        if k is float:
            node["kind"] = "float"
            node["floats"] = e.add_buffer(_mv(np.array(lst, dtype="<f8")))
            return node
        if k is int:
            try:
                ints = np.array(lst, dtype="<i8")
            except OverflowError:
                return None
            node["kind"] = "int"
            node["ints"] = e.add_buffer(_mv(ints))
            return node
        if k is str:
            node["kind"] = "str"
            node["strs"] = _strs_column(e, lst)
            return node
    codes = bytearray(n)
    ints_l: list[int] = []
    floats_l: list[float] = []
    strs: list[str] = []
    for i, x in enumerate(lst):
        t = type(x)
        if t is float:
            codes[i] = 4
            floats_l.append(x)
        elif t is int:
            if not INT_MIN <= x <= INT_MAX:
                return None
            codes[i] = 3
            ints_l.append(x)
        elif t is str:
            codes[i] = 5
            strs.append(x)
        elif x is True:
            codes[i] = 2
        elif x is False:
            codes[i] = 1
    node["codes"] = e.add_buffer(memoryview(codes))
    if ints_l:
        node["ints"] = e.add_buffer(_mv(np.array(ints_l, dtype="<i8")))
    if floats_l:
        node["floats"] = e.add_buffer(_mv(np.array(floats_l, dtype="<f8")))
    if strs:
        node["strs"] = _strs_column(e, strs)
    return node


def _pack_dict(e: Encoder, d: dict[str, Any]) -> Node | None:
    """A long dict of str keys and scalar values (a vocabulary) as two packed columns."""
    values = _pack_scalars(e, list(d.values()))
    if values is None:
        return None
    return {"$": "sdict", "keys": _strs_column(e, list(d)), "v": values}


def _strs_column(e: Encoder, strs: list[str]) -> int | list[str]:
    """The strings as one UTF-8 buffer, joined by U+0000; the JSON list where that can't be.

    Splitting one decoded text is faster than parsing a JSON string per item and keeps
    the header small. Strings that hold U+0000 or lone surrogates stay in the header.
    """
    text = "\x00".join(strs)
    if not text or text.count("\x00") != len(strs) - 1:
        return strs
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return strs
    return e.add_buffer(memoryview(data))


# -- anything else: the reduce protocol ---------------------------------------------------


def _enc_reduce(e: Encoder, obj: Any, *, with_state: bool = True) -> Node:
    """``obj`` by the reduce protocol; ``with_state=False`` leaves out the state, for a
    class whose ``__setstate__`` ignores it (a handler says so)."""
    entry = e.memo.get(id(obj))
    if entry is not None:
        return e.ref(entry)
    t = type(obj)
    tname = qualname(t)
    reducer = copyreg.dispatch_table.get(t)
    try:
        rv = reducer(obj) if reducer is not None else obj.__reduce_ex__(4)
    except Exception as exc:
        raise Unsupported(f"{tname} cannot be serialized: {exc}") from None
    if isinstance(rv, str):
        return _enc_global(e, obj)
    if not isinstance(rv, tuple) or not 2 <= len(rv) <= 6:
        raise Unsupported(f"{tname}.__reduce_ex__ returned {type(rv).__name__}, not a tuple")
    rv = rv + (None,) * (6 - len(rv))
    func, args, state, listitems, dictitems, setter = rv
    if setter is not None:
        raise Unsupported(f"{tname} uses a state setter function, which is not supported")
    if func is getattr:
        raise Unsupported(f"{tname} (a bound method or attribute lookup) cannot be stored")
    kwargs: dict[str, Any] | None = None
    if func is _NEWOBJ:
        cls, args = args[0], args[1:]
        kind = "obj"
    elif func is _NEWOBJ_EX:
        cls, args, kwargs = args
        kind = "obj"
    else:
        cls = func
        kind = "call"
    where = split_global(cls)
    if isinstance(where, str):
        raise Unsupported(f"{tname}: {where}")
    module, name = where
    _never(f"{module}.{name}")
    e.types.add(f"{module}.{name}")
    node: dict[str, Any] = {"$": kind, "module": module, "name": name}
    if args:
        node["args"] = _seq(e, args, ".__reduce__ args")
    if kwargs:
        kw: dict[str, Any] = {}
        key: Any = ""
        e.depth += 1  # the kwargs object is a level of its own, as for the reader
        try:
            for key, v in dict(kwargs).items():
                kw[str(key)] = e.enc(v)
        except Unsupported as exc:
            exc.segments.append(f".__reduce__ kwargs[{key!r}]")
            raise
        e.depth -= 1
        node["kwargs"] = kw
    entry = e.memo.get(id(obj))
    if entry is not None:
        # Reached again through its own arguments: that copy is the definition;
        # keep these arguments (they define ids it uses) and refer to it.
        pre = [*node.get("args", []), *([node["kwargs"]] if "kwargs" in node else [])]
        return {**e.ref(entry), "pre": pre}
    e.remember(obj, node)
    if state is not None and with_state:
        node["state"] = _state(e, state)
    if listitems is not None:
        node["items"] = _seq(e, listitems, "")
    if dictitems is not None:
        pairs: list[Node] = []
        _enc_pairs(e, dictitems, pairs)
        node["kv"] = pairs
    return node


def _seq(e: Encoder, values: Any, seg: str) -> list[Node]:
    out: list[Node] = []
    try:
        e.enc_seq(values, out)
    except Unsupported as exc:
        if seg:
            exc.segments.append(seg)
        raise
    return out


def _sub(e: Encoder, value: Any, seg: str) -> Node:
    try:
        return e.enc(value)
    except Unsupported as exc:
        if seg:
            exc.segments.append(seg)
        raise


def _attrs(e: Encoder, d: dict[str, Any]) -> Node:
    """A dict of attributes: a plain node, one level deep, ``.name`` in error paths."""
    entry = e.memo.get(id(d))
    if entry is not None:
        return e.ref(entry)
    node: dict[str, Any] = {}
    e.remember(d, node)
    e.deeper()
    key = ""
    try:
        for key, v in d.items():
            node[key] = e.enc(v)
    except Unsupported as exc:
        exc.segments.append(f".{key}")
        raise
    e.depth -= 1
    return node


def _is_attrs(x: Any) -> bool:
    return type(x) is dict and "$" not in x and all(type(k) is str for k in x)


def _state(e: Encoder, state: Any) -> Node:
    """Encode instance state; attribute names become ``.name`` in error paths."""
    if _is_attrs(state):
        return _attrs(e, state)
    if (
        type(state) is tuple
        and len(state) == 2
        and (state[0] is None or _is_attrs(state[0]))
        and _is_attrs(state[1])
    ):
        # (__dict__, slots) as object.__reduce_ex__ gives for classes with __slots__.
        e.types.add("builtins.tuple")
        e.depth += 1
        first = None if state[0] is None else _attrs(e, state[0])
        node = {"$": "tuple", "v": [first, _attrs(e, state[1])]}
        e.depth -= 1
        return node
    return _sub(e, state, "")


def _wrap_shared(holder: list[Node], wrap: dict[int, int]) -> None:
    """Give shared plain lists and dicts the tagged form that can carry an id."""
    stack: list[Any] = [holder]
    while stack and wrap:
        cur = stack.pop()
        keys: Any = range(len(cur)) if type(cur) is list else list(cur)
        for k in keys:
            child = cur[k]
            tc = type(child)
            if tc is not list and tc is not dict:
                continue
            mid = wrap.pop(id(child), None)
            if mid is not None:
                if tc is list:
                    child = {"$": "list", "id": mid, "v": child}
                else:
                    child = {"$": "dict", "id": mid, "v": [[a, b] for a, b in child.items()]}
                cur[k] = child
            stack.append(child)


_CORE: dict[type, Callable[[Encoder, Any], Node]] = {
    list: _enc_list,
    dict: _enc_dict,
    tuple: _enc_tuple,
    set: _enc_set,
    frozenset: _enc_set,
    bytes: _enc_bytes,
    bytearray: _enc_bytes,
    complex: _enc_complex,
    slice: _enc_slice,
    range: _enc_range,
}


def encode(
    obj: Any, *, max_depth: int = 200
) -> tuple[Node, list[memoryview], list[str], dict[str, Any] | None]:
    """Encode ``obj``: the root node, the buffers, the sorted type names and the
    small-array table (None when there is none)."""
    e = Encoder(max_depth=max_depth)
    root = e.encode_root(obj)
    return root, e.buffers, sorted(e.types), e.table.header()
