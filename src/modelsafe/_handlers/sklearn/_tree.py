"""``sklearn.tree._tree.Tree``: the array-of-nodes tree behind every decision tree.

``Tree.__setstate__`` checks the dtype and shape of its arrays but not their
content, and ``predict``/``apply``/``decision_path`` walk the nodes in C
without bounds checks: a child index out of range reads (and ``decision_path``
writes) outside the node array, a cycle loops forever, a feature index out of
range reads outside the input. This is why skops stopped trusting trees; these
checks make a crafted tree a load error instead.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ._checks import array, binary_tree, depths, first, flags, integer, keys, records

_INTP = (4, 8)  # indexing fields are intp: 4 bytes on 32-bit platforms, which sklearn accepts
NODE_FIELDS = {
    "left_child": ("i", _INTP),
    "right_child": ("i", _INTP),
    "feature": ("i", _INTP),
    "threshold": ("f", (8,)),
    "impurity": ("f", (8,)),
    "n_node_samples": ("i", _INTP),
    "weighted_n_node_samples": ("f", (8,)),
    "missing_go_to_left": ("u", (1,)),
}
# value_stride = n_outputs * max(n_classes) sizes C arrays; no real tree comes near.
_MAX_STRIDE = 2**31 - 1
_INTP_MAX = 2**63 - 1


def tree_args(args: list[Any], kwargs: dict[str, Any]) -> None:
    """``Tree(n_features, n_classes, n_outputs)``: ``__cinit__`` copies ``n_outputs``
    entries of ``n_classes`` without looking at its length."""
    if kwargs:
        raise ValueError(f"Tree takes no keyword arguments, got {sorted(kwargs)}")
    if len(args) != 3:
        raise ValueError(f"Tree takes (n_features, n_classes, n_outputs), got {len(args)} values")
    integer("n_features", args[0], 1, _INTP_MAX)
    n_classes = array("n_classes", args[1], kind="i", ndim=1, itemsizes=_INTP)
    n_outputs = integer("n_outputs", args[2], 1, _INTP_MAX)
    if len(n_classes) != n_outputs:
        raise ValueError(f"n_classes has {len(n_classes)} entries but n_outputs = {n_outputs}")
    bad = n_classes < 1
    if bad.any():
        i = first(bad)
        raise ValueError(f"n_classes[{i}] = {int(n_classes[i])} is not a positive count")
    if n_outputs * int(n_classes.max()) > _MAX_STRIDE:
        raise ValueError(
            f"n_outputs * max(n_classes) = {n_outputs * int(n_classes.max())} exceeds {_MAX_STRIDE}"
        )


def tree_state(tree: Any, state: Any) -> None:
    """The nodes must form a tree rooted at node 0 that every traversal can walk."""
    if state is None:
        raise ValueError("a Tree needs its state (nodes and values); the file gives none")
    keys("the state", state, ("max_depth", "node_count", "nodes", "values"))
    nodes = records("nodes", state["nodes"], NODE_FIELDS)
    n = len(nodes)
    if n < 1:
        raise ValueError("nodes is empty; a tree has at least its root")
    if not nodes.flags.c_contiguous:
        raise ValueError("nodes must be C-contiguous")
    node_count = integer("node_count", state["node_count"])
    if node_count != n:
        raise ValueError(f"node_count = {node_count} but nodes holds {n} nodes")
    max_depth = integer("max_depth", state["max_depth"])
    check_nodes(nodes, state["values"], int(tree.n_features), int(tree.n_outputs),
                int(tree.max_n_classes), max_depth)  # fmt: skip


def check_nodes(
    nodes: np.ndarray[Any, Any],
    values: Any,
    n_features: int,
    n_outputs: int,
    max_n_classes: int,
    max_depth: int,
) -> None:
    """The checks on a tree's node records (any layout with ``NODE_FIELDS``) and values."""
    n = len(nodes)
    values = array("values", values, kind="f", ndim=3, itemsizes=(8,), contiguous=True)
    want = (n, n_outputs, max_n_classes)
    if values.shape != want:
        raise ValueError(
            f"values has shape {values.shape}, expected (node_count, n_outputs, "
            f"max(n_classes)) = {want}"
        )

    left, right = _intp(nodes["left_child"]), _intp(nodes["right_child"])
    leaf = left == -1
    odd = (right == -1) != leaf
    if np.count_nonzero(odd):
        i = first(odd)
        raise ValueError(
            f"children_left[{i}] = {int(left[i])} but children_right[{i}] = {int(right[i])} "
            f"(a leaf has both children -1, an internal node neither)"
        )
    parent = binary_tree(("children_left", "children_right"), left, right, leaf)
    feature = _intp(nodes["feature"])
    wrong = (feature.view(np.uintp) >= n_features) & ~leaf  # negative ones too
    if np.count_nonzero(wrong):
        i = first(wrong)
        raise ValueError(f"feature[{i}] = {int(feature[i])} is outside [0, {n_features})")
    # Leaves hold -2 (TREE_UNDEFINED); a NaN split would send every value right.
    nan = np.isnan(nodes["threshold"])
    if np.count_nonzero(nan):
        raise ValueError(f"threshold[{first(nan)}] is NaN")
    flags("missing_go_to_left", nodes["missing_go_to_left"])
    deepest = int(depths(parent).max())
    # decision_path sizes its output by max_depth and writes one entry per level.
    if max_depth != deepest:
        raise ValueError(f"max_depth = {max_depth}, but the deepest leaf is at depth {deepest}")


def _intp(field: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """An index field as native intp (files from 32-bit or big-endian machines differ)."""
    return field if field.dtype == np.intp else field.astype(np.intp)


# -- the "sk.tree" node: a Tree in a compact form ---------------------------------------------
#
# The generic path stores a Tree as a ``call`` node with its reduce arguments and a state
# dict whose node array carries a structured dtype spelled out in JSON: ~600 bytes of
# header per tree, parsed and walked for each of a forest's thousands of trees. The node
# below stores the same content compactly: the counts inline, the node records as raw
# bytes in one fixed little-endian layout (``LAYOUT``), the values as a plain array.

TAG = "sk.tree"
TREE = "sklearn.tree._tree.Tree"
LAYOUT = np.dtype(
    {
        "names": list(NODE_FIELDS),
        "formats": ["<i8", "<i8", "<i8", "<f8", "<f8", "<i8", "<f8", "u1"],
        "offsets": [0, 8, 16, 24, 32, 40, 48, 56],
        "itemsize": 64,
    }
)

_PADDING = slice(57, 64)  # the bytes after missing_go_to_left


def enc_tree(e: Any, tree: Any) -> Any:
    """Encode a Tree as an ``sk.tree`` node (the generic path when its layout is unknown)."""
    entry = e.memo.get(id(tree))
    if entry is not None:
        return e.ref(entry)
    n_features, n_classes, _n_outputs = tree.__reduce__()[1]
    state = tree.__getstate__()
    nodes = state["nodes"]
    if nodes.dtype.names is None or list(nodes.dtype.names) != list(NODE_FIELDS):
        from ..._graph.encode import _enc_reduce

        return _enc_reduce(e, tree)  # a scikit-learn with another node layout
    if nodes.dtype != LAYOUT:
        nodes = nodes.astype(LAYOUT)
    raw = np.ascontiguousarray(nodes).view(np.uint8).reshape(len(nodes), LAYOUT.itemsize).copy()
    raw[:, _PADDING] = 0  # scikit-learn leaves the 7 padding bytes of a record uninitialised
    values = np.ascontiguousarray(state["values"], dtype="<f8")
    e.types.add(TREE)
    node = {
        "$": TAG,
        "nf": int(n_features),
        "nc": [int(c) for c in n_classes],
        "md": int(state["max_depth"]),
        "nodes": e.enc(raw),
        "values": e.enc(values),
    }
    e.remember(tree, node)
    return node


def _count(a: Any, name: str, x: Any, lo: int) -> None:
    if type(x) is not int or not lo <= x <= _INTP_MAX:
        a.fail(f"'{name}' must be an integer in [{lo}, {_INTP_MAX}]")


def audit_tree(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("nf", "nc", "md", "nodes", "values"), ("id",))
    _count(a, "nf", node["nf"], 1)
    _count(a, "md", node["md"], 0)
    nc = node["nc"]
    if type(nc) is not list or not nc:
        a.fail("'nc' must be a non-empty list of class counts")
    for c in nc:
        _count(a, "nc", c, 1)
    for member in ("nodes", "values"):
        x = node[member]
        if type(x) is not dict or x.get("$") != "nd" or "id" in x:
            a.fail(f"'{member}' must be an 'nd' node without an id")
    a.need(TREE, "node")
    a.visit(node["nodes"])
    a.visit(node["values"])
    a.define_late(node)


@functools.cache
def _sklearn_tree() -> Any:
    """scikit-learn's ``Tree`` class, or why its node records cannot take ``LAYOUT``."""
    from sklearn.tree._tree import NODE_DTYPE, Tree

    if NODE_DTYPE.names != LAYOUT.names:
        return (
            f"this scikit-learn lays out tree nodes as {NODE_DTYPE}, which the file's "
            f"layout cannot fill"
        )
    return Tree


def build_tree(b: Any, node: dict[str, Any]) -> Any:
    raw = b.build(node["nodes"])
    values = b.build(node["values"])
    nc = node["nc"]
    n_outputs = len(nc)
    try:
        tree_class = _sklearn_tree()
        if isinstance(tree_class, str):
            raise ValueError(tree_class)
        if raw.dtype != np.uint8 or raw.ndim != 2 or raw.shape[1] != LAYOUT.itemsize:
            raise ValueError(
                f"nodes must be uint8 records of {LAYOUT.itemsize} bytes, "
                f"not {raw.dtype} of shape {raw.shape}"
            )
        nodes = np.ascontiguousarray(raw).view(LAYOUT).reshape(len(raw))
        n_classes = np.array(nc, dtype=np.intp)
        max_n_classes = max(nc)
        if n_outputs * max_n_classes > _MAX_STRIDE:  # the audit checked the rest of the args
            raise ValueError(
                f"n_outputs * max(n_classes) = {n_outputs * max_n_classes} exceeds {_MAX_STRIDE}"
            )
        if not len(nodes):
            raise ValueError("nodes is empty; a tree has at least its root")
        check_nodes(nodes, values, node["nf"], n_outputs, max_n_classes, node["md"])
    except (ValueError, TypeError) as exc:
        from ...errors import FormatError

        raise FormatError(f"{b.source}: invalid {TREE}: {exc}") from None
    tree = tree_class(node["nf"], n_classes, n_outputs)
    tree.__setstate__(
        {"max_depth": node["md"], "node_count": len(nodes), "nodes": nodes, "values": values}
    )
    b.register(node, tree)
    return tree
