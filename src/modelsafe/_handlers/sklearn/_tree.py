"""``sklearn.tree._tree.Tree``: the array-of-nodes tree behind every decision tree.

``Tree.__setstate__`` checks the dtype and shape of its arrays but not their
content, and ``predict``/``apply``/``decision_path`` walk the nodes in C
without bounds checks: a child index out of range reads (and ``decision_path``
writes) outside the node array, a cycle loops forever, a feature index out of
range reads outside the input. This is why skops stopped trusting trees; these
checks make a crafted tree a load error instead.
"""

from __future__ import annotations

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
    values = array("values", state["values"], kind="f", ndim=3, itemsizes=(8,), contiguous=True)
    want = (n, int(tree.n_outputs), int(tree.max_n_classes))
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
    wrong = (feature.view(np.uintp) >= int(tree.n_features)) & ~leaf  # negative ones too
    if np.count_nonzero(wrong):
        i = first(wrong)
        raise ValueError(f"feature[{i}] = {int(feature[i])} is outside [0, {tree.n_features})")
    # Leaves hold -2 (TREE_UNDEFINED); a NaN split would send every value right.
    nan = np.isnan(nodes["threshold"])
    if np.count_nonzero(nan):
        raise ValueError(f"threshold[{first(nan)}] is NaN")
    flags("missing_go_to_left", nodes["missing_go_to_left"])
    deepest = int(depths(parent).max())
    # decision_path sizes its output by max_depth and writes one entry per level.
    max_depth = integer("max_depth", state["max_depth"])
    if max_depth != deepest:
        raise ValueError(f"max_depth = {max_depth}, but the deepest leaf is at depth {deepest}")


def _intp(field: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """An index field as native intp (files from 32-bit or big-endian machines differ)."""
    return field if field.dtype == np.intp else field.astype(np.intp)
