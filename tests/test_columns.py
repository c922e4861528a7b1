"""Runs of same-class instances stored column by column: the ``objs`` node
(docs/format.md §6.4, ``modelsafe._graph.columns``).

The writer rewrites a run only when the column order keeps every reference after its
definition; the reader audits the node like any other and builds instances whose
states are exactly those of the row form: a value common to all is one object only
where sharing changes nothing (equal scalars, references to one object).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

import modelsafe
from modelsafe import FormatError, UntrustedTypesError

from . import sample_types as S
from ._crafting import craft, deep_equal, split, used_types

PLAIN = "tests.sample_types.Plain"
TRUST = [PLAIN]


def _root(blob: bytes) -> Any:
    return split(blob).header["root"]


def _runs(node: Any) -> list[dict[str, Any]]:
    found, stack = [], [node]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if x.get("$") == "objs":
                found.append(x)
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return found


def _plains(n: int, shared: Any) -> list[S.Plain]:
    return [
        S.Plain(kind="stump", rate=0.1 * i, seen=[i, i + 1], shared=shared, table={"i": i})
        for i in range(n)
    ]


def test_a_run_is_stored_in_columns_and_loads_as_the_rows_would() -> None:
    shared = {"common": np.arange(3)}
    objs = _plains(10, shared)
    blob = modelsafe.dumps({"objs": objs, "shared": shared})
    run = _root(blob)["objs"]
    assert run["$"] == "objs" and run["n"] == 10
    assert run["keys"] == ["kind", "rate", "seen", "shared", "table"]
    assert run["same"] == {"kind": "stump"}  # the shared dict is defined in instance 0
    got = modelsafe.loads(blob, trusted=TRUST)
    assert deep_equal(got["objs"], objs)
    out = got["objs"]
    assert all(o.shared is got["shared"] for o in out)  # one object, as in the rows
    assert len({id(o.seen) for o in out}) == 10  # each its own list: not shared by the run
    out[0].seen.append(99)
    assert out[1].seen == [1, 2]


def test_a_reference_common_to_the_run_is_stored_once() -> None:
    shared = {"common": 1}
    objs = _plains(9, shared)
    blob = modelsafe.dumps({"shared": shared, "objs": objs})  # defined before the run
    run = _root(blob)["objs"]
    assert run["same"]["shared"]["$"] == "ref"
    got = modelsafe.loads(blob, trusted=TRUST)
    assert all(o.shared is got["shared"] for o in got["objs"])
    assert deep_equal(got["objs"], objs)


def test_instances_referenced_elsewhere_keep_their_identity() -> None:
    objs = _plains(12, None)
    blob = modelsafe.dumps({"objs": objs, "third": objs[3], "last": objs[-1]})
    run = _root(blob)["objs"]
    assert run["$"] == "objs" and run["ids"][:3] == [None] * 3 and run["ids"][3] is not None
    got = modelsafe.loads(blob, trusted=TRUST)
    assert got["third"] is got["objs"][3] and got["last"] is got["objs"][-1]
    # A shared list is a tagged ``list`` (it needs an id): it keeps the row form.
    blob = modelsafe.dumps({"objs": objs, "again": objs})
    assert _root(blob)["objs"]["$"] == "list"
    got = modelsafe.loads(blob, trusted=TRUST)
    assert got["again"] is got["objs"] and deep_equal(got["objs"], objs)


def test_a_reference_into_the_run_keeps_the_row_form() -> None:
    """An instance's state holding another instance of the run: the rows are kept (in
    columns its state would be applied only after the other's value was used)."""
    objs = _plains(10, None)
    objs[5].peer = objs[2]
    for o in objs:
        o.__dict__.setdefault("peer", None)
    blob = modelsafe.dumps(objs)
    assert not _runs(_root(blob))
    got = modelsafe.loads(blob, trusted=TRUST)
    assert got[5].peer is got[2]
    assert deep_equal(got, objs)


def test_a_column_order_that_would_break_a_reference_keeps_the_row_form() -> None:
    """Instance 0 defines x in its second member, instance 1 refers to it in its first:
    in column order the reference would come first."""
    x = [1, 2, 3]
    objs = [S.Plain(a=[i], b=None) for i in range(10)]
    objs[0].b = x
    objs[1].a = x
    blob = modelsafe.dumps(objs)
    assert not _runs(_root(blob))
    got = modelsafe.loads(blob, trusted=TRUST)
    assert got[0].b is got[1].a
    # Defined in the first member instead, the same sharing is a valid run.
    objs = [S.Plain(a=[i], b=None) for i in range(10)]
    objs[0].a = x
    objs[1].b = x
    blob = modelsafe.dumps(objs)
    assert _runs(_root(blob))
    got = modelsafe.loads(blob, trusted=TRUST)
    assert got[0].a is got[1].b


@pytest.mark.parametrize(
    "objs",
    [
        _plains(7, None),  # too short to pay
        [*_plains(9, None), S.Node(1)],  # another class
        [*_plains(9, None), S.Plain(kind="stump", rate=0.0)],  # other members
        [S.Plain(kind="k") for _ in range(10)],  # every member common: no column gives n
    ],
    ids=["short", "mixed classes", "other members", "no column"],
)
def test_what_is_not_a_run_keeps_the_row_form(objs: list[Any]) -> None:
    blob = modelsafe.dumps(objs)
    assert not _runs(_root(blob))
    trusted = [PLAIN, "tests.sample_types.Node"]
    assert deep_equal(modelsafe.loads(blob, trusted=trusted), objs)


def test_the_elements_of_an_object_array_form_a_run() -> None:
    arr = np.empty((4, 3), dtype=object)
    arr[...] = np.array(_plains(12, None), dtype=object).reshape(4, 3)
    blob = modelsafe.dumps(arr)
    root = _root(blob)
    assert root["v"]["$"] == "objs" and root["v"]["n"] == 12
    got = modelsafe.loads(blob, trusted=TRUST)
    assert got.shape == (4, 3) and deep_equal(got, arr)


def test_nested_runs() -> None:
    """Runs inside the columns of a run are rewritten too."""
    outer = [S.Plain(inner=_plains(8, None), i=i) for i in range(8)]
    blob = modelsafe.dumps(outer)
    assert len(_runs(_root(blob))) == 9
    assert deep_equal(modelsafe.loads(blob, trusted=TRUST), outer)


def test_inspect_names_the_instances_of_a_run(tmp_path: Any) -> None:
    objs = [S.Plain(w=np.full(100, float(i)), i=i) for i in range(10)]
    path = tmp_path / "run.msafe"
    modelsafe.save(objs, path)
    info = modelsafe.inspect(path)
    text = json.dumps(info.to_dict())
    assert "(columns)" in text and "root[7].w" in text
    # A corrupted buffer is named by the instance that holds it.
    p = split(path.read_bytes())
    data = bytearray(path.read_bytes())
    entry = p.header["buffers"][0]
    data[p.data_offset + entry[0]] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(modelsafe.IntegrityError, match=r"root\[\d\]\.w"):
        modelsafe.load(path, trusted=TRUST)


# -- crafted runs -------------------------------------------------------------------------------


def _run(**change: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "$": "objs",
        "module": "tests.sample_types",
        "name": "Plain",
        "n": 3,
        "keys": ["a", "b"],
        "same": {"a": "x"},
        "each": {"b": [1, [2], {"k": 3}]},
    }
    node.update(change)
    return {k: v for k, v in node.items() if v is not None}


def test_the_crafted_run_loads() -> None:
    """The positive control: the run below is valid, and means three instances."""
    got = modelsafe.loads(craft(_run()), trusted=TRUST)
    assert [type(o) for o in got] == [S.Plain] * 3
    assert [o.__dict__ for o in got] == [{"a": "x", "b": 1}, {"a": "x", "b": [2]},
                                         {"a": "x", "b": {"k": 3}}]  # fmt: skip
    got = modelsafe.loads(craft([_run(ids=[0, None, 1]), {"$": "ref", "id": 1}]), trusted=TRUST)
    assert got[1] is got[0][2]


BAD_RUNS: dict[str, tuple[Any, str]] = {
    "n longer than a column": (_run(n=4), "column 'b' must be a list of 4 nodes"),
    "n zero": (_run(n=0), "'n' must be a positive integer"),
    "n not an integer": (_run(n="3"), "'n' must be a positive integer"),
    "no column": (_run(n=10**12, keys=["a"], each={}), "'each' must hold at least one column"),
    "keys repeated": (_run(keys=["a", "b", "b"]), "'keys' must be a list of distinct strings"),
    "keys not strings": (_run(keys=["a", 1]), "'keys' must be a list of distinct strings"),
    "a key in both": (_run(same={"a": 1, "b": 2}), "must share out 'keys'"),
    "a key in neither": (_run(keys=["a", "b", "c"]), "must share out 'keys'"),
    "a column not listed": (_run(keys=["b"]), "must share out 'keys'"),
    "a '$' key": (_run(keys=["$", "b"], same={"$": 1}), "'keys' cannot hold '$'"),
    "same tagged": (_run(same={"$": "x", "a": 1}), "'same' must be a plain object"),
    "column not a list": (_run(each={"b": {"x": 1}}), "column 'b' must be a list of 3 nodes"),
    "ids too short": (_run(ids=[0, 1]), "'ids' must be a list of 3 ids or nulls"),
    "ids repeated": (_run(ids=[0, 0, None]), "id 0 is defined twice"),
    "ids negative": (_run(ids=[-1, None, None]), "'id' must be a non-negative integer"),
    "missing member": (_run(same=None), "'objs' node lacks 'same'"),
    "unknown member": (_run(args=[]), "unexpected member"),
    "bad module name": (_run(module="tests..x"), "invalid module name"),
    "a reference before its definition in column order": (
        _run(
            keys=["a", "b"],
            same={},
            each={
                "a": ["x", {"$": "ref", "id": 7}, "z"],
                "b": [{"$": "list", "id": 7, "v": []}, 1, 2],
            },
        ),
        "reference to id 7, which is not defined before this point",
    ),
    "a big number in a common value": (_run(same={"a": 2**64}), "outside int64"),
    "a big number in a column": (_run(each={"b": [1, 2**64, 3]}), "outside int64"),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_a_malformed_run_is_a_format_error(case: str) -> None:
    root, text = BAD_RUNS[case]
    blob = craft(root)
    with pytest.raises(FormatError, match=re.escape(text)):
        modelsafe.loads(blob, trusted=TRUST)


def test_a_run_of_an_untrusted_class_is_refused_before_anything_is_built() -> None:
    root = _run(module="tests._victim_module", name="Payload")
    with pytest.raises(UntrustedTypesError, match=re.escape("tests._victim_module.Payload")):
        modelsafe.loads(craft(root))


def test_a_run_of_a_function_is_not_an_instance_run() -> None:
    root = _run(name="module_function")
    with pytest.raises(
        FormatError, match=re.escape("tests.sample_types.module_function is not a class")
    ):
        modelsafe.loads(craft(root), trusted=["tests.sample_types.module_function"])


def test_a_run_where_a_list_of_nodes_is_required_is_refused() -> None:
    root = {"$": "tuple", "v": _run()}
    with pytest.raises(FormatError, match="expected a list of nodes"):
        modelsafe.loads(craft(root), trusted=TRUST)


def test_an_object_array_and_its_run_must_agree_in_length() -> None:
    ok = {"$": "nd", "dtype": "|O", "shape": [3], "v": _run()}
    assert len(modelsafe.loads(craft(ok), trusted=TRUST)) == 3
    bad = {"$": "nd", "dtype": "|O", "shape": [4], "v": _run()}
    with pytest.raises(
        FormatError, match=re.escape("object array of shape [4] needs 4 elements, has 3")
    ):
        modelsafe.loads(craft(bad), trusted=TRUST)


def test_used_types_knows_runs() -> None:
    assert used_types(_run()) == [PLAIN]


def test_the_tree_is_walked_for_runs_only_when_one_may_exist(monkeypatch: Any) -> None:
    """The rewriting pass costs a walk of the whole tree: a payload of arrays and plain
    containers, with no list of instances, skips it (and is stored as before)."""
    from modelsafe._graph import columns

    calls: list[int] = []
    real = columns.to_columns
    monkeypatch.setattr(columns, "to_columns", lambda root, e: calls.append(1) or real(root, e))
    plain = {"w": [np.arange(3) for _ in range(20)], "rows": [{"a": i} for i in range(50)]}
    modelsafe.dumps(plain)
    assert not calls
    blob = modelsafe.dumps({"plain": plain, "objs": _plains(8, None)})
    assert calls and _runs(_root(blob))
