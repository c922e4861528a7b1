"""Phase one of loading: walk the inert JSON tree and check everything.

Nothing here imports a module named by the file or calls anything the file
chose. The audit checks the structure of every node, the nesting depth, ids
and references, that every buffer is used exactly once with the size its
node needs, that the header's ``types`` list is exactly what the tree uses,
and finally that every name is trusted for the way it is used.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from typing import Any

from .._container.layout import DEFAULT_LIMITS, Limits
from .._handlers import Tag, known_tag, tag_for
from .._trust import CALL, NEW, NODE, VALUE, Policy
from ..errors import FormatError, UntrustedTypesError
from .encode import INT_MAX, INT_MIN
from .names import MODULE_RE, QUALNAME_RE
from .table import Table, TableError

_HEXINT = re.compile(r"-?[0-9a-f]+")
_FLOATS = ("nan", "inf", "-inf")


class _Fail(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []


def _seg(k: Any) -> str:
    return f"[{k!r}]"


class Audit:
    """The state of one audit; handlers call its methods from their ``audit``."""

    def __init__(
        self,
        buffer_sizes: Sequence[int],
        *,
        limits: Limits = DEFAULT_LIMITS,
        source: str = "the file",
    ) -> None:
        self.limits = limits
        self.source = source
        self.sizes = buffer_sizes
        self.used = bytearray(len(buffer_sizes))  # 0 unused, 1 owned by a node or the table
        self.table: Table | None = None
        self.longdouble_ok = True  # False when the writer's long double differs from ours
        self.depth = 0
        self.defined: set[int] = set()
        self.needs: dict[str, set[str]] = {}
        self.cache: dict[int, Any] = {}
        self.pure: set[int] = set()
        self.specs: dict[str, Tag] = {}
        self.simple_dtypes: dict[str, Any] = {}
        self.groups: dict[str, list[dict[str, Any]]] = {}  # nodes a handler checks together
        # (id of the column node being visited, the run's n): see column_length.
        self._column: tuple[int, int] | None = None
        self._fns: dict[str, Callable[[Audit, dict[str, Any]], None]] = dict(_CORE)

    def load_table(self, spec: Any) -> None:
        """Check the header's small-array table and claim its buffers."""
        try:
            table = Table(spec, self.sizes, lambda s: self.dtype(s, allow_object=False))
        except (TableError, _Fail) as exc:
            raise FormatError(f"{self.source}: header 'arrays': {exc}") from None
        for index in table.buffers:
            self.used[index] = 1
        self.table = table

    # -- used by handlers -----------------------------------------------------------
    def fail(self, message: str) -> None:
        raise _Fail(message)

    def keys(
        self, node: dict[str, Any], required: Sequence[str], optional: Sequence[str] = ()
    ) -> None:
        for k in required:
            if k not in node:
                self.fail(f"'{node['$']}' node lacks '{k}'")
        if len(node) > len(required) + 1:
            allowed = {"$", *required, *optional}
            extra = [k for k in node if k not in allowed]
            if extra:
                self.fail(f"'{node['$']}' node has unexpected member(s) {extra}")

    def need(self, name: str, use: str) -> None:
        uses = self.needs.get(name)
        if uses is None:
            self.needs[name] = {use}
        else:
            uses.add(use)

    def group(self, key: str, node: dict[str, Any]) -> None:
        """Note ``node`` for a handler that validates all nodes of a kind in one pass."""
        self.groups.setdefault(key, []).append(node)

    def column_length(self, node: dict[str, Any]) -> int:
        """For the audit of a column kind (a node that denotes a list and may only stand
        as a column of an ``objs`` run): the run's ``n``. Fails anywhere else, including
        inside another node standing as the column."""
        column = self._column
        if column is None or column[0] != id(node):
            raise _Fail("this kind of node may only stand as a column of an 'objs' run")
        self._column = None  # the node's own members are not columns
        return column[1]

    def define_early(self, node: dict[str, Any]) -> None:
        """Register the node's id before its children: they may refer to it."""
        self._define(node)

    def define_late(self, node: dict[str, Any]) -> None:
        """Register the node's id after its children: it exists only once they do."""
        self._define(node)

    def _define(self, node: dict[str, Any]) -> None:
        self.define_id(node.get("id"))

    def define_id(self, mid: Any) -> None:
        """Register an id (None: nothing to register)."""
        if mid is None:
            return
        if type(mid) is not int or mid < 0:
            self.fail("'id' must be a non-negative integer")
        if mid in self.defined:
            self.fail(f"id {mid} is defined twice")
        self.defined.add(mid)

    def use_buffer(self, index: Any, nbytes: int | None) -> None:
        if type(index) is not int or not 0 <= index < len(self.sizes):
            self.fail(f"buffer reference {index!r} is out of range")
        if self.used[index]:
            self.fail(f"buffer {index} is referenced twice")
        self.used[index] = 1
        if nbytes is not None and self.sizes[index] != nbytes:
            self.fail(f"needs {nbytes} bytes, but buffer {index} holds {self.sizes[index]}")

    def dtype(self, spec: Any, *, allow_object: bool) -> Any:
        # A structured dtype repeats once per array (a forest's 300 trees): parse it once,
        # keyed by its JSON text (repr of the parsed JSON; never a simple dtype string).
        key = spec if type(spec) is str else repr(spec) if type(spec) is dict else None
        if key is not None:
            hit = self.simple_dtypes.get(key)
            if hit is not None and (allow_object or hit.kind != "O"):
                return hit
        from .._handlers.numpy import dtype_from_json

        try:
            dt = dtype_from_json(spec, allow_object=allow_object, longdouble_ok=self.longdouble_ok)
        except (ValueError, TypeError) as exc:
            self.fail(str(exc))
        if key is not None:
            self.simple_dtypes[key] = dt
        return dt

    def b64(self, text: Any) -> bytes:
        if type(text) is not str:
            self.fail("base64 data must be a string")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            self.fail("invalid base64 data")
        raise AssertionError("unreachable")

    # -- the walk ------------------------------------------------------------------------
    def visit(self, node: Any) -> None:
        t = type(node)
        if t is list:
            self._list(node)
        elif t is dict:
            if "$" in node:
                self._tagged(node, node["$"])
            else:
                self._plain(node)

    def visit_all(self, items: Any) -> None:
        """The nodes in a member of a tagged node; the list itself is no level."""
        if type(items) is not list:
            self.fail("expected a list of nodes")
        self._list(items, count=False)

    def visit_members(self, d: Any) -> None:
        """The values of a plain object member (kwargs); the object is a level."""
        if type(d) is not dict or "$" in d:
            self.fail("expected a plain object of nodes")
        self._plain(d)

    def visit_pairs(self, pairs: Any) -> None:
        if type(pairs) is not list:
            self.fail("expected a list of [key, value] pairs")
        for i, p in enumerate(pairs):
            if type(p) is not list or len(p) != 2:
                self.fail(f"item {i} is not a [key, value] pair")
            try:
                self.visit(p[0])
                self.visit(p[1])
                check_number(self, p[0])
                check_number(self, p[1])
            except _Fail as exc:
                exc.segments.append(f"[pair {i}]")
                raise

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            self.fail(f"the object tree nests deeper than {self.limits.max_depth} levels")

    def _numbers(self, values: Any, kinds: set[type]) -> None:
        """JSON numbers must be int64 integers or finite floats (others are tagged)."""
        if int in kinds:
            ints = [x for x in values if type(x) is int]
            if min(ints) < INT_MIN or max(ints) > INT_MAX:
                self.fail("a JSON integer is outside int64; big integers must be tagged")
        if float in kinds:
            for x in values:
                if type(x) is float and x - x != 0.0:
                    self.fail("a JSON number overflows a float; infinities must be tagged")

    def _list(self, lst: list[Any], count: bool = True) -> None:
        kinds = set(map(type, lst))
        if int in kinds or float in kinds:
            self._numbers(lst, kinds)
        if list not in kinds and dict not in kinds:
            self.pure.add(id(lst))
            if count and self.depth >= self.limits.max_depth:
                self.fail(f"the object tree nests deeper than {self.limits.max_depth} levels")
            return
        if count:
            self._enter()
        visit = self.visit
        i = 0
        try:
            for i, x in enumerate(lst):  # noqa: B007 - i names the failing item
                tx = type(x)
                if tx is list or tx is dict:
                    visit(x)
        except _Fail as exc:
            exc.segments.append(f"[{i}]")
            raise
        if count:
            self.depth -= 1

    def _plain(self, d: dict[str, Any]) -> None:
        kinds = set(map(type, d.values()))
        if int in kinds or float in kinds:
            self._numbers(d.values(), kinds)
        if list not in kinds and dict not in kinds:
            self.pure.add(id(d))
            if self.depth >= self.limits.max_depth:
                self.fail(f"the object tree nests deeper than {self.limits.max_depth} levels")
            return
        self._enter()
        key = ""
        try:
            for key, x in d.items():  # noqa: B007 - key names the failing item
                tx = type(x)
                if tx is dict:
                    if "$" in x:
                        self._tagged(x, x["$"])
                    else:
                        self._plain(x)
                elif tx is list:
                    self._list(x)
        except _Fail as exc:
            exc.segments.append(_seg(key))
            raise
        self.depth -= 1

    def _tagged(self, node: dict[str, Any], tag: Any) -> None:
        if type(tag) is not str:
            self.fail(f"'$' must name a node kind, not {tag!r}")
        fn = self._fns.get(tag)
        if fn is None:
            fn = self._resolve(tag)
        self.depth += 1
        if self.depth > self.limits.max_depth:
            self.fail(f"the object tree nests deeper than {self.limits.max_depth} levels")
        try:
            fn(self, node)
        except _Fail as exc:
            if not exc.segments or not exc.segments[-1].startswith("<"):
                exc.segments.append(f"<{tag}>")
            raise
        self.depth -= 1

    def _resolve(self, tag: Any) -> Callable[[Audit, dict[str, Any]], None]:
        if type(tag) is str and known_tag(tag):
            spec = tag_for(tag)
            if spec is not None:
                self.specs[tag] = spec
                self._fns[tag] = spec.audit
                return spec.audit
        self.fail(f"unknown node kind {tag!r}")
        raise AssertionError("unreachable")

    # -- after the walk -------------------------------------------------------------------
    def finish(self, declared: list[str], policy: Policy | None) -> None:
        if self.table is not None and not all(self.table.used):
            unused = self.table.used.index(0)
            raise FormatError(f"{self.source}: array record {unused} is not referenced")
        missing = [i for i, u in enumerate(self.used) if not u]
        if missing:
            raise FormatError(
                f"{self.source}: buffer(s) {missing[:10]} are not referenced by any object"
            )
        if sorted(set(declared)) != declared or set(declared) != set(self.needs):
            extra = sorted(set(self.needs) - set(declared))
            absent = sorted(set(declared) - set(self.needs))
            raise FormatError(
                f"{self.source}: the header's 'types' list does not match the object tree "
                f"(used but not listed: {extra[:10]}; listed but not used: {absent[:10]})"
            )
        if policy is not None:
            bad = policy.untrusted(self.needs)
            if bad:
                raise UntrustedTypesError(bad, source=self.source)


def check_number(a: Audit, x: Any) -> None:
    """A JSON number outside lists and plain objects: int64 or finite."""
    t = type(x)
    if t is int and not INT_MIN <= x <= INT_MAX:
        a.fail("a JSON integer is outside int64; big integers must be tagged")
    if t is float and x - x != 0.0:
        a.fail("a JSON number overflows a float; infinities must be tagged")


# -- core node kinds ---------------------------------------------------------------------------


def _a_ref(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("id",), ("pre",))
    if "pre" in node:
        # Nodes built for their definitions, then dropped (a cycle through a tuple).
        a.visit_all(node["pre"])
    mid = node["id"]
    if type(mid) is not int or mid not in a.defined:
        a.fail(f"reference to id {mid!r}, which is not defined before this point")


def _a_list(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("v", "id"))
    a.define_early(node)
    a.visit_all(node["v"])


def _a_dict(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("v",), ("id",))
    a.define_early(node)
    a.visit_pairs(node["v"])


def _a_tuple(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("v",), ("id",))
    a.need("builtins.tuple", NODE)
    a.visit_all(node["v"])
    a.define_late(node)


def _a_set(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("v",), ("id",))
    tag = node["$"]
    a.need(f"builtins.{tag}", NODE)
    if tag == "set":
        a.define_early(node)
    a.visit_all(node["v"])
    if tag == "frozenset":
        a.define_late(node)


def _a_int(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("hex",))
    h = node["hex"]
    if type(h) is not str or not _HEXINT.fullmatch(h):
        a.fail("big integer must be hex digits with an optional '-'")


def _a_float(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("v",))
    if node["v"] not in _FLOATS:
        a.fail(f"special float must be one of {_FLOATS}")


def _is_float_node(x: Any) -> bool:
    if type(x) is float:
        return x - x == 0.0
    return type(x) is dict and len(x) == 2 and x.get("$") == "float" and x.get("v") in _FLOATS


def _a_complex(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("v",))
    v = node["v"]
    if type(v) is not list or len(v) != 2 or not all(_is_float_node(x) for x in v):
        a.fail("complex must be [real, imag] floats")
    a.need("builtins.complex", NODE)


def _a_bytes(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, (), ("b64", "buf", "id"))
    if ("b64" in node) == ("buf" in node):
        a.fail("bytes need exactly one of 'b64' and 'buf'")
    if "b64" in node:
        a.cache[id(node)] = a.b64(node["b64"])
    else:
        a.use_buffer(node["buf"], None)
    a.need(f"builtins.{node['$']}", NODE)
    a.define_late(node)


def _a_slice(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("v",))
    v = node["v"]
    if type(v) is not list or len(v) != 3:
        a.fail("slice must be [start, stop, step]")
    a.visit_all(v)
    a.need("builtins.slice", NODE)


def _is_int_node(x: Any) -> bool:
    if type(x) is int:
        return INT_MIN <= x <= INT_MAX
    if type(x) is dict and len(x) == 2 and x.get("$") == "int":
        h = x.get("hex")
        return type(h) is str and _HEXINT.fullmatch(h) is not None
    return False


def _a_range(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("v",))
    v = node["v"]
    if type(v) is not list or len(v) != 3 or not all(_is_int_node(x) for x in v):
        a.fail("range must be [start, stop, step] integers")
    a.need("builtins.range", NODE)


def _name(a: Audit, node: dict[str, Any]) -> str:
    module, name = node["module"], node["name"]
    if type(module) is not str or not MODULE_RE.fullmatch(module):
        a.fail(f"invalid module name {module!r}")
    if type(name) is not str or not QUALNAME_RE.fullmatch(name):
        a.fail(f"invalid qualified name {name!r}")
    return f"{module}.{name}"


def _a_global(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("module", "name"))
    a.need(_name(a, node), VALUE)


def _a_instance(a: Audit, node: dict[str, Any]) -> None:
    a.keys(node, ("module", "name"), ("args", "kwargs", "state", "items", "kv", "id"))
    a.need(_name(a, node), NEW if node["$"] == "obj" else CALL)
    if "args" in node:
        a.visit_all(node["args"])
    if "kwargs" in node:
        a.visit_members(node["kwargs"])
    a.define_early(node)  # exists once constructed, before its state is set
    if "state" in node:
        a.visit(node["state"])
    if "items" in node:
        a.visit_all(node["items"])
    if "kv" in node:
        a.visit_pairs(node["kv"])


def _a_objs(a: Audit, node: dict[str, Any]) -> None:
    """A run of ``n`` instances of one class, their states stored column by column."""
    a.keys(node, ("module", "name", "n", "keys", "same", "each"), ("ids",))
    a.need(_name(a, node), NEW)
    n, keys, same, each = node["n"], node["keys"], node["same"], node["each"]
    if type(n) is not int or n < 1:
        a.fail("'n' must be a positive integer")
    if type(keys) is not list or not _all_str(keys) or len(set(keys)) != len(keys):
        a.fail("'keys' must be a list of distinct strings")
    if "$" in keys:
        a.fail("'keys' cannot hold '$'")
    for member, d in (("same", same), ("each", each)):
        if type(d) is not dict or "$" in d:
            a.fail(f"'{member}' must be a plain object")
    if not each:
        a.fail("'each' must hold at least one column")
    if (
        same.keys() & each.keys()
        or len(same) + len(each) != len(keys)
        or not all(k in same or k in each for k in keys)
    ):
        a.fail("'same' and 'each' must share out 'keys' between them")
    for k, column in each.items():
        if type(column) is dict:  # a column node, checked when visited
            continue
        if type(column) is not list or len(column) != n:
            a.fail(f"column {k!r} must be a list of {n} nodes or a column node")
    if "ids" in node:
        ids = node["ids"]
        if type(ids) is not list or len(ids) != n:
            a.fail(f"'ids' must be a list of {n} ids or nulls")
        for mid in ids:
            a.define_id(mid)  # each instance exists before any state is built
    for k in keys:
        try:
            if k in same:
                a.visit(same[k])
                check_number(a, same[k])
            elif type(each[k]) is dict:
                _column_node(a, k, each[k], n)
            else:
                a.visit_all(each[k])
        except _Fail as exc:
            exc.segments.append(f".{k}")
            raise


def _column_node(a: Audit, k: str, node: dict[str, Any], n: int) -> None:
    """A column stored as one node: a kind whose audit claims the column's length."""
    if "$" not in node:
        a.fail(f"column {k!r} must be a list of {n} nodes or a column node")
    a._column = (id(node), n)
    a.visit(node)
    if a._column is not None:
        a._column = None
        a.fail(f"column {k!r}: a {node['$']!r} node cannot stand as a column")


def _a_scalars(a: Audit, node: dict[str, Any]) -> None:
    """A packed list of scalars: one kind (``kind``) or mixed (``codes`` buffer)."""
    a.keys(node, ("n",), ("kind", "codes", "ints", "floats", "strs", "id"))
    n = node["n"]
    if type(n) is not int or n < 0:
        a.fail("'n' must be a non-negative integer")
    if "strs" in node:
        _strs_column(a, node["strs"], "strs")
    columns = {k for k in ("ints", "floats", "strs") if k in node}
    if ("kind" in node) == ("codes" in node):
        a.fail("packed scalars need exactly one of 'kind' and 'codes'")
    if "kind" in node:
        kind = node["kind"]
        want = _COLUMN.get(kind) if type(kind) is str else None
        if want is None:
            a.fail("'kind' must be 'int', 'float' or 'str'")
        if columns != {want}:
            a.fail(f"a list of kind {node['kind']!r} needs exactly the '{want}' column")
        if want == "strs":
            if type(node["strs"]) is list and len(node["strs"]) != n:
                a.fail(f"'strs' has {len(node['strs'])} items, 'n' says {n}")
        else:
            a.use_buffer(node[str(want)], 8 * n)
    else:
        a.use_buffer(node["codes"], n)
        # Column sizes depend on the codes, checked against them when the data is read.
        for col in ("ints", "floats"):
            if col in node:
                a.use_buffer(node[col], None)
    a.define_late(node)


def _a_sdict(a: Audit, node: dict[str, Any]) -> None:
    """A packed dict: ``keys`` (a strs column) and ``v`` (a ``scalars`` node) of one length."""
    a.keys(node, ("keys", "v"), ("id",))
    v = node["v"]
    if type(v) is not dict or v.get("$") != "scalars" or "id" in v:
        a.fail("'v' of a packed dict must be a 'scalars' node without an id")
    a.visit(v)
    keys = node["keys"]
    _strs_column(a, keys, "keys")
    if type(keys) is list and len(keys) != v["n"]:
        a.fail(f"'keys' has {len(keys)} items but 'v' has {v['n']}")
    a.define_late(node)


def _strs_column(a: Audit, column: Any, name: str) -> None:
    """A strs column: a JSON list of strings, or a buffer of UTF-8 text (its item count
    is checked when it is read)."""
    if type(column) is int:
        a.use_buffer(column, None)
    elif type(column) is not list or not _all_str(column):
        a.fail(f"'{name}' must be a list of strings or a buffer index")


_COLUMN = {"int": "ints", "float": "floats", "str": "strs"}


def _all_str(items: list[Any]) -> bool:
    """Whether every item is a str; ``str.join`` checks that in C, a slice at a time."""
    step = 1 << 16
    try:
        for i in range(0, len(items), step):
            "".join(items[i : i + step])
    except TypeError:
        return False
    return True


_CORE: dict[str, Callable[[Audit, dict[str, Any]], None]] = {
    "ref": _a_ref,
    "list": _a_list,
    "dict": _a_dict,
    "tuple": _a_tuple,
    "set": _a_set,
    "frozenset": _a_set,
    "int": _a_int,
    "float": _a_float,
    "complex": _a_complex,
    "bytes": _a_bytes,
    "bytearray": _a_bytes,
    "slice": _a_slice,
    "range": _a_range,
    "global": _a_global,
    "obj": _a_instance,
    "call": _a_instance,
    "objs": _a_objs,
    "scalars": _a_scalars,
    "sdict": _a_sdict,
}
