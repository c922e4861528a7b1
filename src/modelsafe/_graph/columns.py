"""Runs of same-class instances stored column by column: the ``objs`` node
(docs/format.md §6.4).

A forest or a boosting model holds hundreds of estimators of one class whose
states have the same members, most of them holding the same hyperparameter
values. Stored row by row, each repeats its class name, every member name and
every shared value (the zoo's gbc200: ~600 header bytes an estimator, and a
file 1.31x pickle's). After the tree is encoded, such a run (a list, or the
elements of an object array) is rewritten as one ``objs`` node: the class once,
the member names once, a value common to all once, and a column of values for
each other member. The tree is walked only when the encoder noted a list that
may be a run (``Encoder.note_run``): a payload without one pays nothing.

Column order changes the walk order of the values, so a run is rewritten only
when every reference inside it still comes after its definition, and none
refers to an instance of the run itself (whose state is applied only once all
columns are built). Anything else keeps the row form.
"""

from __future__ import annotations

from typing import Any

from .encode import RUN_MIN  # shorter runs keep the row form: the saving would not pay

_OBJ_MEMBERS = frozenset({"$", "module", "name", "state", "id"})


_CONTAINERS = frozenset({"obj", "call", "tuple", "list", "set", "frozenset", "dict"})


def _worth(v: Any) -> bool:
    """Whether a value may hold a run: a list, a plain object, a container kind or an
    object array (most of a big tree is arrays and scalars, skipped here)."""
    t = type(v)
    if t is list:
        return True
    if t is not dict:
        return False
    tag = v.get("$")
    return tag is None or tag in _CONTAINERS or (tag == "nd" and v.get("dtype") == "|O")


def to_columns(root: Any, encoder: Any) -> Any:
    """Rewrite the runs of ``root`` (the encoded tree) in column form; returns the root.

    A column of nodes of a kind in ``encoder.column_kinds`` is handed to that kind's
    function, which may store it as one node (a forest's trees: ``sk.trees``).
    """
    kinds = encoder.column_kinds
    holder = [root]
    stack: list[tuple[Any, Any]] = [(holder, 0)] if _worth(root) else []  # places of values

    def push_items(items: list[Any]) -> None:
        stack.extend((items, i) for i, x in enumerate(items) if _worth(x))

    def push_values(d: dict[str, Any]) -> None:
        stack.extend((d, k) for k, x in d.items() if _worth(x))

    while stack:
        place, key = stack.pop()
        node = place[key]
        if type(node) is list:
            run = _as_run(node)
            if run is not None:
                _merge_columns(run, kinds, encoder)
                place[key] = run
                _push_columns(run, stack)
            else:
                push_items(node)
            continue
        tag = node.get("$")  # a dict: _worth let nothing else through
        if tag is None:
            push_values(node)
        elif tag == "obj" or tag == "call":
            for member in ("args", "items"):
                if type(node.get(member)) is list:
                    push_items(node[member])
            if type(node.get("kwargs")) is dict:
                push_values(node["kwargs"])
            if "state" in node and _worth(node["state"]):
                stack.append((node, "state"))
            _push_pairs(node.get("kv"), stack)
        elif tag == "dict":
            _push_pairs(node.get("v"), stack)
        elif tag == "nd":  # an object array
            if type(node.get("v")) is list:
                run = _as_run(node["v"])
                if run is not None:
                    _merge_columns(run, kinds, encoder)
                    node["v"] = run
                    _push_columns(run, stack)
                else:
                    push_items(node["v"])
        elif type(node.get("v")) is list:  # tuple, list, set, frozenset
            push_items(node["v"])
    return holder[0]


def _push_pairs(pairs: Any, stack: list[tuple[Any, Any]]) -> None:
    if type(pairs) is list:
        for p in pairs:
            if type(p) is list and len(p) == 2:
                stack.extend((p, i) for i in (0, 1) if _worth(p[i]))


def _push_columns(run: dict[str, Any], stack: list[tuple[Any, Any]]) -> None:
    stack.extend((run["same"], k) for k, x in run["same"].items() if _worth(x))
    for column in run["each"].values():
        if type(column) is list:  # not a column node, which holds no run
            stack.extend((column, i) for i, x in enumerate(column) if _worth(x))


def _merge_columns(run: dict[str, Any], kinds: dict[str, Any], encoder: Any) -> None:
    """Store as one node each column whose nodes are of a kind that has a column form."""
    if not kinds:
        return
    each = run["each"]
    for k, column in each.items():
        first = column[0]
        tag = first.get("$") if type(first) is dict else None
        merge = kinds.get(tag) if type(tag) is str else None
        if merge is not None:
            merged = merge(encoder, column)
            if merged is not None:
                each[k] = merged


def _as_run(items: list[Any]) -> dict[str, Any] | None:
    """The ``objs`` node for ``items``, or None when they are not a rewritable run."""
    if len(items) < RUN_MIN:
        return None
    first = items[0]
    if type(first) is not dict or first.get("$") != "obj":
        return None
    module, name = first.get("module"), first.get("name")
    state = first.get("state")
    if type(state) is not dict or "$" in state:
        return None
    keys = list(state)
    for it in items:
        if (
            type(it) is not dict
            or it.get("$") != "obj"
            or not it.keys() <= _OBJ_MEMBERS
            or it.get("module") != module
            or it.get("name") != name
            or type(it.get("state")) is not dict
            or list(it["state"]) != keys
        ):
            return None
    ids = [it.get("id") for it in items]
    own = {i for i in ids if i is not None}
    if not _order_holds(items, keys, own):
        return None
    same: dict[str, Any] = {}
    each: dict[str, Any] = {}
    for k in keys:
        column = [it["state"][k] for it in items]
        if _one_value(column):
            same[k] = column[0]
        else:
            each[k] = column
    if not each:
        return None  # n must be the length of some column (or the run could claim any size)
    run: dict[str, Any] = {"$": "objs", "module": module, "name": name, "n": len(items)}
    if own:
        run["ids"] = ids
    run.update({"keys": keys, "same": same, "each": each})
    return run


def _one_value(column: list[Any]) -> bool:
    """Whether one node may stand for every item: equal scalars (an immutable value, so
    sharing one object changes nothing) or references to one object."""
    first = column[0]
    t = type(first)
    if first is None or t is str or t is int or t is bool:
        return all(type(x) is t and x == first for x in column)
    if t is float:
        text = repr(first)  # 0.0 and -0.0 differ
        return all(type(x) is float and repr(x) == text for x in column)
    if t is dict and first.keys() == {"$", "id"} and first["$"] == "ref":
        return all(x == first for x in column)
    return False


def _order_holds(items: list[Any], keys: list[str], own: set[int]) -> bool:
    """Whether, walked column by column, every reference in the states comes after its
    definition, and none refers to an instance of the run."""
    inside = set(own)
    for it in items:
        _definitions(it["state"], inside)
    if not inside:
        return True  # no id is defined in the run: any reference is to one defined before it
    defined = set(own)
    for k in keys:
        for it in items:
            if not _refs_ok(it["state"][k], inside, defined, own):
                return False
    return True


def _definitions(node: Any, out: set[int]) -> None:
    t = type(node)
    if t is list:
        for x in node:
            _definitions(x, out)
    elif t is dict:
        if node.get("$") not in (None, "ref") and type(node.get("id")) is int:
            out.add(node["id"])
        if node.get("$") == "objs":
            out.update(i for i in node.get("ids", ()) if type(i) is int)
        for v in node.values():
            if type(v) is list or type(v) is dict:
                _definitions(v, out)


def _refs_ok(node: Any, inside: set[int], defined: set[int], own: set[int]) -> bool:
    """Walk one value in its walk order: references to ids defined in the run must come
    after them. (Inside one value the order is that of the row form, which was valid;
    only references between values can change meaning.)"""
    t = type(node)
    if t is list:
        return all(_refs_ok(x, inside, defined, own) for x in node)
    if t is not dict:
        return True
    tag = node.get("$")
    if tag == "ref":
        if "pre" in node and not _refs_ok(node["pre"], inside, defined, own):
            return False
        mid = node.get("id")
        return mid not in own and (mid not in inside or mid in defined)
    if tag == "objs":
        defined.update(i for i in node.get("ids", ()) if type(i) is int)
        for k in node["keys"]:
            value = node["same"][k] if k in node["same"] else node["each"][k]
            if not _refs_ok(value, inside, defined, own):
                return False
        return True
    if tag is not None and type(node.get("id")) is int:
        defined.add(node["id"])
    return all(
        _refs_ok(v, inside, defined, own)
        for k, v in node.items()
        if k != "$" and (type(v) is list or type(v) is dict)
    )
