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

from ._checks import (
    Batch,
    array,
    audit_arrays,
    binary_tree,
    check_in_batches,
    depths,
    first,
    flags,
    forest_links,
    integer,
    keys,
    records,
    whole_batches,
)

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
    _check_values(values, len(nodes), n_outputs, max_n_classes)

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
    """Encode a Tree as an ``sk.tree`` node (the generic path when its layout is unknown).

    Its arrays are encoded once the whole object is (``Encoder.later``): a forest's
    trees, found as a column of a run of estimators, are then stored together as one
    ``sk.trees`` node instead (``merge_trees``).
    """
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
    values = np.ascontiguousarray(state["values"], dtype="<f8")
    e.types.add(TREE)
    node = {
        "$": TAG,
        "nf": int(n_features),
        "nc": [int(c) for c in n_classes],
        "md": int(state["max_depth"]),
    }
    # The tree rides along with its records: a forest's depths are scikit-learn's own.
    e.later(node, "nodes", (np.ascontiguousarray(nodes), tree), _records)
    e.later(node, "values", values)
    e.column_kinds.setdefault(TAG, merge_trees)
    e.remember(tree, node)
    return node


def _records(held: tuple[np.ndarray[Any, Any], Any]) -> np.ndarray[Any, Any]:
    """A tree's ``LAYOUT`` records as uint8 rows, padding zeroed (a copy)."""
    nodes = held[0]
    raw = nodes.view(np.uint8).reshape(len(nodes), LAYOUT.itemsize).copy()
    raw[:, _PADDING] = 0  # scikit-learn leaves the 7 padding bytes of a record uninitialised
    return raw


TREES = "sk.trees"


def merge_trees(e: Any, column: list[Any]) -> dict[str, Any] | None:
    """The ``sk.trees`` node for a run's column of ``sk.tree`` nodes, or None when they
    cannot share one (a tree referred to from elsewhere, other feature or class counts).

    The records of all trees go into one array and their values into another, so the
    reader checks and slices two arrays instead of auditing and building two per tree.
    """
    first = column[0]
    nf, nc = first["nf"], first["nc"]
    for node in column:
        if (
            type(node) is not dict
            or node.get("$") != TAG
            or "id" in node
            or node["nf"] != nf
            or node["nc"] != nc
            or node["nodes"] is not None  # its arrays are already encoded
            or node["md"] > _DEPTH_MAX  # its depths would not fit their two bytes
        ):
            return None
    parts = [e.take_later(node) for node in column]
    sizes = [len(part["nodes"][0]) for part in parts]
    raw = _forest_records([part["nodes"] for part in parts], np.array(sizes, dtype=np.intp))
    values = np.concatenate([part["values"] for part in parts])
    node = {
        "$": TREES,
        "nf": nf,
        "nc": nc,
        "md": [node["md"] for node in column],
        "sizes": sizes,
    }
    # At the depth of the trees it replaces, which the encoder checked.
    e.later(node, "nodes", raw)
    e.later(node, "values", values)
    return node


# In ``sk.trees`` records, bytes 57-58 (padding in scikit-learn's layout) hold the node's
# depth: the reader verifies it with one comparison a link instead of computing it level
# by level, the costliest of its checks (docs/handlers/sklearn.md §1).
_DEPTH = slice(57, 59)
_DEPTH_MAX = 0xFFFF


# Records a batch when saving (512 KiB): copied, zeroed, checked and given their depths
# while they are in the core's cache, rather than in four passes over the whole forest
# (rf300's 53 MB of records: the whole encode in 44-45 ms instead of 47-48).
_SAVE_BATCH = 1 << 13


def _forest_records(held: list[tuple[np.ndarray[Any, Any], Any]], sizes: Any) -> Any:
    """The records of trees ``held`` (``(LAYOUT records, Tree)`` pairs, of ``sizes``
    nodes), one tree after the other as uint8 rows, padding zeroed and each node's depth
    stored. The depths are ``Tree.compute_node_depths`` (a loop in C, 4x faster than
    ``_depths``), called once the records, the trees' own nodes, are shown to link as
    trees, so that its unchecked indexing stays in bounds."""
    raw = np.empty((int(sizes.sum()), LAYOUT.itemsize), dtype=np.uint8)
    for i, j, start, end in whole_batches(sizes, _SAVE_BATCH):
        part = raw[start:end]
        rows = [nodes.view(np.uint8).reshape(-1, LAYOUT.itemsize) for nodes, _ in held[i:j]]
        np.concatenate(rows, out=part)
        part[:, _PADDING] = 0  # scikit-learn leaves them uninitialised
        if _forest_shape(part, sizes[i:j]) is None:  # pragma: no cover - scikit-learn's trees
            raise ValueError("a tree to save does not form a tree")
        depth = np.concatenate([tree.compute_node_depths() for _, tree in held[i:j]])
        # Its root is at depth 1; the records' two depth bytes are an unaligned uint16.
        np.subtract(depth, 1, out=part[:, _DEPTH].view("<u2")[:, 0], casting="unsafe")
    return raw


def _stored_depths_hold(
    raw: np.ndarray[Any, Any],
    starts: np.ndarray[Any, Any],
    inner: np.ndarray[Any, Any],
    to_left: np.ndarray[Any, Any],
    to_right: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any] | None:
    """The depths stored in the records of checked trees, or None unless every root says
    0 and every child one more than its parent (which, each node but a root having one
    parent that comes before it, makes them the true depths)."""
    depth = np.ascontiguousarray(raw[:, _DEPTH]).view("<u2").reshape(len(raw)).astype(np.intp)
    if np.count_nonzero(depth[starts]):
        return None
    below = depth[inner] + 1
    if np.count_nonzero(depth[to_left] != below) or np.count_nonzero(depth[to_right] != below):
        return None
    return depth


def _count(a: Any, name: str, x: Any, lo: int) -> None:
    if type(x) is not int or not lo <= x <= _INTP_MAX:
        a.fail(f"'{name}' must be an integer in [{lo}, {_INTP_MAX}]")


def _shape_counts(a: Any, node: dict[str, Any]) -> None:
    """``nf`` and ``nc``: what ``Tree(n_features, n_classes, n_outputs)`` is given."""
    _count(a, "nf", node["nf"], 1)
    nc = node["nc"]
    if type(nc) is not list or not nc:
        a.fail("'nc' must be a non-empty list of class counts")
    for c in nc:
        _count(a, "nc", c, 1)


def audit_tree(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("nf", "nc", "md", "nodes", "values"), ("id",))
    _shape_counts(a, node)
    _count(a, "md", node["md"], 0)
    audit_arrays(a, node, ("nodes", "values"))
    a.need(TREE, "node")
    a.define_late(node)
    a.group(TAG, node)


def _counts(a: Any, name: str, x: Any, n: int, lo: int) -> None:
    if type(x) is not list or len(x) != n:
        a.fail(f"'{name}' must be a list of {n} integers, one per tree")
    if not all(type(v) is int for v in x) or min(x) < lo or max(x) > _INTP_MAX:
        a.fail(f"'{name}' must hold integers in [{lo}, {_INTP_MAX}]")


def audit_trees(a: Any, node: dict[str, Any]) -> None:
    """A run's column of trees (``sk.trees``): their counts, one array of all their
    records and one of all their values."""
    n = a.column_length(node)
    a.keys(node, ("nf", "nc", "md", "sizes", "nodes", "values"))
    _shape_counts(a, node)
    _counts(a, "md", node["md"], n, 0)
    _counts(a, "sizes", node["sizes"], n, 1)
    audit_arrays(a, node, ("nodes", "values"))
    a.need(TREE, "node")


def build_trees(b: Any, node: dict[str, Any]) -> list[Any]:
    """The list of Trees of an ``sk.trees`` node, a batch of whole trees at a time: each
    batch is checked, then its trees are made from the very bytes that were checked.

    When the file is mapped, a batch is first copied into a scratch array (reused, so a
    forest costs one batch of memory, not a second copy of its nodes) and checked there;
    ``Tree.__setstate__`` copies its nodes from that scratch. The mapped pages of nodes
    and values copied are given back (``b.consumed``). A file rewritten in place
    during the load (``cp other.msafe model.msafe``) cannot change nodes between their
    check and scikit-learn's copy.
    """
    nf, nc, n_outputs = node["nf"], node["nc"], len(node["nc"])
    try:
        tree_class = _sklearn_tree()
        if isinstance(tree_class, str):
            raise ValueError(tree_class)
        if n_outputs * max(nc) > _MAX_STRIDE:
            raise ValueError(
                f"n_outputs * max(n_classes) = {n_outputs * max(nc)} exceeds {_MAX_STRIDE}"
            )
        total = sum(node["sizes"])
        raw = b.build(node["nodes"])
        if raw.dtype != np.uint8 or raw.shape != (total, LAYOUT.itemsize):
            raise ValueError(
                f"nodes must be uint8 records of {LAYOUT.itemsize} bytes, as many as the "
                f"{total} nodes of the trees' sizes, not {raw.dtype} of shape {raw.shape}"
            )
        raw = np.ascontiguousarray(raw)
        values = _check_values(b.build(node["values"]), total, n_outputs, max(nc))
    except (ValueError, TypeError) as exc:
        raise _invalid(b, exc) from None
    sizes = np.array(node["sizes"], dtype=np.intp)
    md = np.array(node["md"], dtype=np.intp)
    classes = np.array(nc, dtype=np.intp)
    batches = list(whole_batches(sizes, _BATCH))
    scratch = None
    if b.mapped and batches:
        scratch = np.empty((max(end - start for _, _, start, end in batches), LAYOUT.itemsize),
                           dtype=np.uint8)  # fmt: skip
    trees = []
    for i, j, start, end in batches:
        part = raw[start:end]
        if scratch is not None:
            part = scratch[: end - start]
            np.copyto(part, raw[start:end])
            b.consumed(raw[start:end])
        try:
            _check_batch(part, values[start:end], sizes, i, j, nf, md, n_outputs, max(nc))
        except (ValueError, TypeError) as exc:
            raise _invalid(b, exc) from None
        nodes = part.view(LAYOUT).reshape(end - start)
        at = 0
        for size, depth in zip(node["sizes"][i:j], node["md"][i:j], strict=True):
            tree = tree_class(nf, classes, n_outputs)
            tree.__setstate__(
                {
                    "max_depth": depth,
                    "node_count": size,
                    "nodes": nodes[at : at + size],
                    "values": values[start + at : start + at + size],
                }
            )
            trees.append(tree)
            at += size
        b.consumed(values[start:end])  # Tree.__setstate__ copied them
    return trees


def _invalid(b: Any, exc: Exception) -> Exception:
    from ...errors import FormatError

    return FormatError(f"{b.source}: invalid {TREE}: {exc}")


def _check_batch(
    raw: np.ndarray[Any, Any],
    values: np.ndarray[Any, Any],
    sizes: np.ndarray[Any, Any],
    i: int,
    j: int,
    n_features: int,
    max_depth: np.ndarray[Any, Any],
    n_outputs: int,
    max_n_classes: int,
) -> None:
    """Trees ``i`` to ``j - 1`` of a run (their records ``raw`` and ``values``) pass
    ``check_nodes``: checked together; a failed batch is then checked tree by tree,
    naming the first broken invariant."""
    features = np.full(j - i, n_features, dtype=np.intp)
    if check_forest(raw, sizes[i:j], features, max_depth[i:j], stored=True):
        return
    nodes = raw.view(LAYOUT).reshape(len(raw))
    n = len(sizes)
    a = 0
    for t in range(i, j):
        z = a + int(sizes[t])
        try:
            check_nodes(nodes[a:z], values[a:z], n_features, n_outputs, max_n_classes,
                        int(max_depth[t]))  # fmt: skip
        except ValueError as exc:
            raise ValueError(f"tree {t} of {n}: {exc}") from None
        if not check_forest(raw[a:z], sizes[t : t + 1], features[:1], max_depth[t : t + 1],
                            stored=True):  # fmt: skip
            raise ValueError(
                f"tree {t} of {n}: the depths its records hold (bytes 57-58) are not "
                f"the depths of its nodes"
            )
        a = z
    raise ValueError(f"trees {i} to {j - 1} of {n} fail together but pass one by one")


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
    checked = b.prepared.get(TAG)
    if checked is None:
        checked = b.prepared[TAG] = _check_group(b)
    nc = node["nc"]
    n_outputs = len(nc)
    ready, passed = checked.get(id(node), (None, False))
    if passed:
        tree_class, raw, values = ready
        nodes = raw.view(LAYOUT).reshape(len(raw))
    else:  # its batch failed: check it alone, naming what is broken
        try:
            tree_class, raw, values = _arrays(b, node) if ready is None else ready
            nodes = raw.view(LAYOUT).reshape(len(raw))
            check_nodes(nodes, values, node["nf"], n_outputs, max(nc), node["md"])
        except (ValueError, TypeError) as exc:
            raise _invalid(b, exc) from None
    tree = tree_class(node["nf"], np.array(nc, dtype=np.intp), n_outputs)
    tree.__setstate__(
        {"max_depth": node["md"], "node_count": len(nodes), "nodes": nodes, "values": values}
    )
    b.register(node, tree)
    return tree


def _arrays(b: Any, node: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The Tree class, the node's records (contiguous uint8 rows) and its values."""
    raw = b.build(node["nodes"])
    values = b.build(node["values"])
    nc = node["nc"]
    tree_class = _sklearn_tree()
    if isinstance(tree_class, str):
        raise ValueError(tree_class)
    if raw.dtype != np.uint8 or raw.ndim != 2 or raw.shape[1] != LAYOUT.itemsize:
        raise ValueError(
            f"nodes must be uint8 records of {LAYOUT.itemsize} bytes, "
            f"not {raw.dtype} of shape {raw.shape}"
        )
    if len(nc) * max(nc) > _MAX_STRIDE:  # the audit checked the rest of the arguments
        raise ValueError(f"n_outputs * max(n_classes) = {len(nc) * max(nc)} exceeds {_MAX_STRIDE}")
    if not len(raw):
        raise ValueError("nodes is empty; a tree has at least its root")
    return tree_class, np.ascontiguousarray(b.private(raw)), values  # checked, then copied


# -- checking many trees at once ---------------------------------------------------------------
#
# A forest or a boosting model holds hundreds of trees, where each of check_nodes' ~20 numpy
# calls costs more than its work (small trees) or runs over memory out of the CPU's cache
# (large ones). So before the first tree is built, the file's trees are checked together, a
# batch of concatenated records at a time, by the same rules and with few passes. A batch
# that fails is not explained: each of its trees is then checked alone when it is built
# (check_nodes), which names the tree's first broken invariant.

_BATCH = 1 << 16  # records per batch (4 MiB): the passes over it stay in cache
_LEVELS = 64  # depth computed level by level up to here, then by pointer jumping


def _check_group(b: Any) -> dict[int, tuple[Any, bool]]:
    """``id(node) -> ((Tree class, records, values), passed)`` for every tree whose arrays
    have their form; ``passed`` when its batch passed."""

    def prepare(node: dict[str, Any]) -> tuple[Any, Any, Any]:
        ready = _arrays(b, node)
        nc = node["nc"]
        _check_values(ready[2], len(ready[1]), len(nc), max(nc))
        return ready

    def check(batch: Batch, raw: np.ndarray[Any, Any]) -> bool:
        return check_forest(
            raw,
            np.array([len(ready[1]) for _, ready in batch], dtype=np.intp),
            np.array([node["nf"] for node, _ in batch], dtype=np.intp),
            np.array([node["md"] for node, _ in batch], dtype=np.intp),
        )

    return check_in_batches(b.groups.get(TAG, ()), prepare, check, _BATCH)


def _check_values(values: Any, n: int, n_outputs: int, max_n_classes: int) -> Any:
    values = array("values", values, kind="f", ndim=3, itemsizes=(8,), contiguous=True)
    want = (n, n_outputs, max_n_classes)
    if values.shape != want:
        raise ValueError(
            f"values has shape {values.shape}, expected (node_count, n_outputs, "
            f"max(n_classes)) = {want}"
        )
    return values


def check_forest(
    raw: np.ndarray[Any, Any],
    sizes: np.ndarray[Any, Any],
    n_features: np.ndarray[Any, Any],
    max_depth: np.ndarray[Any, Any],
    *,
    stored: bool = False,
) -> bool:
    """Whether every tree passes :func:`check_nodes`' checks of its records, in one pass.

    ``stored``: the records hold their nodes' depths (``sk.trees``), verified rather
    than computed.

    ``raw`` holds the ``LAYOUT`` records (uint8 rows of 64 bytes) of trees of ``sizes``
    nodes, one tree after the other; ``n_features`` and ``max_depth`` are per tree. The
    rules are those of ``check_nodes``, with each child index taken within its own tree:
    every child comes after its parent and lies in its tree, a tree of ``n`` nodes has
    ``n - 1`` child links, and every node but a root is the child of some node (so of
    exactly one). A tree's deepest leaf must be at its ``max_depth``.
    """
    total = len(raw)
    shape = _forest_shape(raw, sizes)
    if shape is None:
        return False
    leaf, inner, (starts, tree, to_left, to_right) = shape
    feature = raw.view("<i8")[inner, 2].astype(np.intp).view(np.uintp)
    if np.count_nonzero(feature >= n_features[tree].astype(np.uintp)):
        return False  # negative features too
    if np.count_nonzero(np.isnan(raw.view("<f8")[:, 3])):
        return False
    if np.count_nonzero(raw[:, 56] > 1):  # missing_go_to_left
        return False
    if stored:
        found = _stored_depths_hold(raw, starts, inner, to_left, to_right)
        if found is None:
            return False
        depth = found
    else:
        depth = _depths(total, starts, leaf, inner, to_left, to_right)
    return bool(np.array_equal(np.maximum.reduceat(depth, starts), max_depth))


def _forest_shape(raw: np.ndarray[Any, Any], sizes: np.ndarray[Any, Any]) -> Any:
    """``(leaf, inner, forest_links(...))`` for ``LAYOUT`` records of trees of ``sizes``
    nodes, or None when a node is half a leaf or the child links do not make trees."""
    records = raw.view("<i8")
    left, right = records[:, 0].astype(np.intp), records[:, 1].astype(np.intp)
    leaf = left == -1
    if np.count_nonzero((right == -1) != leaf):
        return None
    inner = np.flatnonzero(~leaf)
    links = forest_links(inner, left[inner], right[inner], sizes, len(raw))
    return None if links is None else (leaf, inner, links)


def _depths(
    total: int,
    starts: np.ndarray[Any, Any],
    leaf: np.ndarray[Any, Any],
    inner: np.ndarray[Any, Any],
    to_left: np.ndarray[Any, Any],
    to_right: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """Depth of every node of a checked forest: level by level (each node touched once),
    then, for the rare trees deeper than ``_LEVELS``, by pointer jumping (``depths``)."""
    left_of = np.zeros(total, dtype=np.intp)
    right_of = np.zeros(total, dtype=np.intp)
    left_of[inner], right_of[inner] = to_left, to_right
    depth = np.zeros(total, dtype=np.intp)
    level = starts
    for d in range(1, _LEVELS + 1):
        level = level[~leaf[level]]
        if not len(level):
            return depth
        level = np.concatenate((left_of[level], right_of[level]))
        depth[level] = d
    parent = np.arange(total)
    parent[to_left] = inner
    parent[to_right] = inner
    up: np.ndarray[Any, Any] = parent
    jumped: np.ndarray[Any, Any] = (parent != np.arange(total)).view(np.uint8).astype(np.intp)
    while True:
        ahead = up[up]
        if np.array_equal(ahead, up):
            return jumped
        jumped += jumped[up]
        up = ahead
