"""Histogram gradient boosting: ``TreePredictor``, ``_BinMapper`` and the estimators.

``TreePredictor`` is a plain Python class, but its ``nodes`` go straight to
``_predictor.pyx``, which walks them without bounds checks: ``nodes[left]``,
``X[row, feature_idx]``, ``raw_left_cat_bitsets[bitset_idx]`` and
``known_cat_bitsets[f_idx_map[feature_idx]]``. The bin mapper's arrays are read
the same way by ``_binning.pyx`` (``transform``, continued training).
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
    first,
    flags,
    forest_links,
    in_range,
    integer,
    keys,
    private_members,
    records,
    whole_batches,
)

PREDICTOR_FIELDS = {
    "value": ("f", (8,)),
    "count": ("u", (4,)),
    "feature_idx": ("i", (4, 8)),  # intp, converted by TreePredictor.__setstate__
    "num_threshold": ("f", (8,)),
    "missing_go_to_left": ("u", (1,)),
    "left": ("u", (4,)),
    "right": ("u", (4,)),
    "gain": ("f", (8,)),
    "depth": ("u", (4,)),
    "is_leaf": ("u", (1,)),
    "bin_threshold": ("u", (1,)),
    "is_categorical": ("u", (1,)),
    "bitset_idx": ("u", (4,)),
}
_BITSET_WORDS = 8  # 8 x 32 bits: one bit per binned category value (uint8)


def _bitsets(name: str, x: Any) -> np.ndarray[Any, Any]:
    bits = array(name, x, kind="u", ndim=2, itemsizes=(4,), contiguous=True)
    if bits.shape[1] != _BITSET_WORDS:
        raise ValueError(f"{name} has shape {bits.shape}, expected (n, {_BITSET_WORDS})")
    return bits


def predictor_state(obj: Any, state: Any) -> None:
    """The nodes form a tree rooted at node 0; categorical splits name existing bitsets."""
    if state is None:
        raise ValueError("a TreePredictor needs its state (nodes and bitsets); the file gives none")
    keys("the state", state, ("nodes", "binned_left_cat_bitsets", "raw_left_cat_bitsets"))
    nodes = records("nodes", state["nodes"], PREDICTOR_FIELDS)
    n = len(nodes)
    if n < 1:
        raise ValueError("nodes is empty; a tree has at least its root")
    binned = _bitsets("binned_left_cat_bitsets", state["binned_left_cat_bitsets"])
    raw = _bitsets("raw_left_cat_bitsets", state["raw_left_cat_bitsets"])
    if len(binned) != len(raw):
        raise ValueError(
            f"binned_left_cat_bitsets has {len(binned)} rows but raw_left_cat_bitsets {len(raw)}"
        )
    for flag in ("is_leaf", "missing_go_to_left", "is_categorical"):
        flags(flag, nodes[flag])
    leaf = nodes["is_leaf"] == 1
    # Leaves keep 0 in left/right, which nothing reads; -1 marks them for the check.
    left = np.where(leaf, -1, nodes["left"].astype(np.intp))
    right = np.where(leaf, -1, nodes["right"].astype(np.intp))
    binary_tree(("left", "right"), left, right, leaf)
    internal = np.flatnonzero(~leaf)
    # The upper bound is the estimator's number of features (checked there).
    in_range("feature_idx", nodes["feature_idx"][internal], 0, 2**31, where=internal)
    split = internal[nodes["is_categorical"][internal] == 1]
    in_range("bitset_idx", nodes["bitset_idx"][split], 0, len(raw), where=split)


# -- the bin mapper -------------------------------------------------------------------------


# Which features are categorical decides the rows of known categories prediction takes,
# and continued training loops over n_bins_non_missing_ bins. The thresholds stay views:
# scikit-learn's bitset code refuses a category outside [0, 256) itself, and the estimator
# may share them.
private_bin_mapper = private_members("is_categorical_", "n_bins_non_missing_")


def bin_mapper_state(obj: Any, state: Any) -> None:
    """Fitted arrays agree on the number of features and stay within ``n_bins``."""
    if state is None or type(state) is not dict:
        raise TypeError("a _BinMapper's state must be a dict")
    if "bin_thresholds_" not in state:  # not fitted: nothing compiled reads it yet
        return
    for key in ("is_categorical_", "n_bins_non_missing_", "missing_values_bin_idx_", "n_bins"):
        if key not in state:
            raise ValueError(f"a fitted _BinMapper needs {key}")
    n_bins = integer("n_bins", state["n_bins"], 3, 256)
    missing = integer("missing_values_bin_idx_", state["missing_values_bin_idx_"], 0, 255)
    if missing != n_bins - 1:
        raise ValueError(f"missing_values_bin_idx_ = {missing} but n_bins - 1 = {n_bins - 1}")
    is_cat = array("is_categorical_", state["is_categorical_"], kind="u", ndim=1, itemsizes=(1,))
    flags("is_categorical_", is_cat)
    counts = array("n_bins_non_missing_", state["n_bins_non_missing_"], kind="iu", ndim=1)
    thresholds = state["bin_thresholds_"]
    if type(thresholds) is not list:
        raise TypeError("bin_thresholds_ must be a list of arrays")
    n = len(is_cat)
    if len(counts) != n or len(thresholds) != n:
        raise ValueError(
            f"is_categorical_ has {n} features, n_bins_non_missing_ {len(counts)} and "
            f"bin_thresholds_ {len(thresholds)}"
        )
    in_range("n_bins_non_missing_", counts, 0, n_bins)
    for f, t in enumerate(thresholds):
        t = array(f"bin_thresholds_[{f}]", t, kind="f", ndim=1, itemsizes=(8,))
        if len(t) >= n_bins:
            raise ValueError(f"bin_thresholds_[{f}] has {len(t)} values for {n_bins} bins")
        if (
            is_cat[f]
            and len(t)
            and not ((t >= 0).all() and (t < n_bins - 1).all() and (t == np.floor(t)).all())
        ):
            raise ValueError(
                f"bin_thresholds_[{f}] of a categorical feature holds a value that is not a "
                f"category in [0, {n_bins - 1})"
            )


# -- the estimators -------------------------------------------------------------------------


def hgb_state(obj: Any, state: Any) -> None:
    """Every predictor splits on a feature the input has, and a categorical split on a
    feature the bin mapper knows as categorical (its row of known categories)."""
    if type(state) is not dict or "_predictors" not in state:
        return  # not fitted
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    mapper: Any = state.get("_bin_mapper")
    if type(mapper) is not _BinMapper:
        raise TypeError("a fitted model needs its _bin_mapper")
    n_features = integer("n_features_in_", state.get("n_features_in_"), 1)
    is_cat = mapper.is_categorical_
    if len(is_cat) != n_features:
        raise ValueError(
            f"the bin mapper knows {len(is_cat)} features but n_features_in_ = {n_features}"
        )
    k = integer("n_trees_per_iteration_", state.get("n_trees_per_iteration_"), 1)
    predictors = state["_predictors"]
    if type(predictors) is not list:
        raise TypeError("_predictors must be a list")
    where: list[tuple[int, int]] = []
    nodes = []
    for i, row in enumerate(predictors):
        if type(row) is not list or len(row) != k:
            raise ValueError(f"_predictors[{i}] must be a list of {k} predictors")
        for j, p in enumerate(row):
            if type(p) is not TreePredictor:
                raise TypeError(f"_predictors[{i}][{j}] is not a TreePredictor")
            where.append((i, j))
            nodes.append(p.nodes)
    if not nodes:
        return
    # All predictors' internal nodes at once (the fields, not the records: concatenating
    # structured arrays costs a dtype promotion per field and array).
    sizes = np.array([len(n) for n in nodes])
    feature = np.concatenate([n["feature_idx"] for n in nodes])
    internal = np.concatenate([n["is_leaf"] for n in nodes]) == 0
    categorical = np.concatenate([n["is_categorical"] for n in nodes]) == 1
    outside = internal & ((feature < 0) | (feature >= n_features))
    if np.count_nonzero(outside):
        at = first(outside)
        raise ValueError(
            f"{_node_name(where, sizes, at)}feature_idx = {int(feature[at])} is outside "
            f"[0, {n_features})"
        )
    wrong = internal & categorical
    wrong[wrong] = is_cat[feature[wrong]] == 0
    if np.count_nonzero(wrong):
        at = first(wrong)
        raise ValueError(
            f"{_node_name(where, sizes, at)}is a categorical split on feature "
            f"{int(feature[at])}, which the bin mapper holds as numerical"
        )


def _node_name(where: list[tuple[int, int]], sizes: np.ndarray[Any, Any], at: int) -> str:
    """``_predictors[i][j] node n: `` for the ``at``-th node of the concatenated predictors."""
    ends = np.cumsum(sizes)
    t = int(np.searchsorted(ends, at, side="right"))
    i, j = where[t]
    return f"_predictors[{i}][{j}] node {at - int(ends[t] - sizes[t])}: "


# -- the "sk.hgbp" node: a TreePredictor in a compact form -------------------------------------
#
# The generic path stores a predictor as an ``obj`` node whose state dict holds three arrays,
# the nodes with their structured dtype spelled out in JSON, and checks each predictor with
# some thirty numpy calls on a few dozen nodes. The node below holds the node records as raw
# bytes in one packed little-endian layout (``LAYOUT``) and the bitsets only when a split is
# categorical; the predictors of a file are checked together before the first is built.

TAG = "sk.hgbp"
PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
LAYOUT = np.dtype(
    {
        "names": list(PREDICTOR_FIELDS),
        "formats": ["<f8", "<u4", "<i8", "<f8", "u1", "<u4", "<u4", "<f8", "<u4", "u1", "u1",
                    "u1", "<u4"],
        "offsets": [0, 8, 12, 20, 28, 29, 33, 37, 45, 49, 50, 51, 52],
        "itemsize": 56,
    }
)  # fmt: skip
_STATE = {"nodes", "binned_left_cat_bitsets", "raw_left_cat_bitsets"}


def enc_predictor(e: Any, p: Any) -> Any:
    """Encode a TreePredictor as an ``sk.hgbp`` node (the generic path for any other form)."""
    entry = e.memo.get(id(p))
    if entry is not None:
        return e.ref(entry)
    state = vars(p)
    nodes = state.get("nodes")
    if (
        state.keys() != _STATE
        or type(nodes) is not np.ndarray
        or nodes.ndim != 1
        or nodes.dtype.names is None
        or list(nodes.dtype.names) != list(PREDICTOR_FIELDS)
        or not all(_plain_bitsets(state[k]) for k in _STATE - {"nodes"})
    ):
        from ..._graph.encode import _enc_reduce

        return _enc_reduce(e, p)  # another scikit-learn's form, or a predictor changed by hand
    raw = nodes.astype(LAYOUT).view(np.uint8).reshape(len(nodes), LAYOUT.itemsize)
    e.types.add(PREDICTOR)
    # The arrays are encoded once the whole object is (Encoder.later): a model's list of
    # predictors then becomes one ``sk.hgbps`` node instead (merge_predictors).
    node: dict[str, Any] = {"$": TAG}
    e.later(node, "nodes", raw)
    binned, raw_bits = state["binned_left_cat_bitsets"], state["raw_left_cat_bitsets"]
    if len(binned) or len(raw_bits):
        e.later(node, "binned", np.array(binned, dtype="<u4"))  # copies: fresh arrays
        e.later(node, "raw", np.array(raw_bits, dtype="<u4"))
    e.after(TAGS, lambda root: merge_predictors(e, root))
    e.remember(p, node)
    return node


TAGS = "sk.hgbps"


def merge_predictors(e: Any, root: Any) -> Any:
    """Rewrite every list of lists of ``sk.hgbp`` nodes (a model's ``_predictors``) that
    nothing else refers to, held by a plain object (an attribute in a state), as one
    ``sk.hgbps`` node: all records in one array, and all bitsets in two. (An array held
    by a tagged node may be its items, ``v``, not a list value.) Returns the root."""
    stack: list[Any] = [root]
    while stack:
        x = stack.pop()
        if type(x) is list:
            stack.extend(v for v in x if type(v) in (list, dict))
        elif type(x) is dict:
            plain = "$" not in x
            for k, v in x.items():
                if type(v) is list:
                    merged = _merged(e, v) if plain else None
                    if merged is not None:
                        x[k] = merged
                    else:
                        stack.append(v)
                elif type(v) is dict:
                    stack.append(v)
    return root


def _merged(e: Any, rows: list[Any]) -> dict[str, Any] | None:
    """The ``sk.hgbps`` node for ``rows`` (plain lists, so unshared, of the same length, of
    ``sk.hgbp`` nodes without id whose arrays are still held by the encoder), or None."""
    if not rows or type(rows[0]) is not list or not rows[0]:
        return None
    k = len(rows[0])
    flat = []
    for row in rows:
        if type(row) is not list or len(row) != k:
            return None
        for p in row:
            if type(p) is not dict or p.get("$") != TAG or "id" in p or p["nodes"] is not None:
                return None
            flat.append(p)
    parts = [e.take_later(p) for p in flat]
    node: dict[str, Any] = {"$": TAGS, "k": k, "sizes": [len(part["nodes"]) for part in parts]}
    e.later(node, "nodes", np.concatenate([part["nodes"] for part in parts]))
    if any("binned" in part for part in parts):
        none = np.zeros((0, _BITSET_WORDS), dtype="<u4")
        node["bits"] = [len(part.get("binned", none)) for part in parts]
        for member in ("binned", "raw"):
            e.later(node, member, np.concatenate([part.get(member, none) for part in parts]))
    return node


def audit_predictors(a: Any, node: dict[str, Any]) -> None:
    """A model's ``_predictors`` (``sk.hgbps``): ``len(sizes) / k`` rows of ``k``."""
    a.keys(node, ("k", "sizes", "nodes"), ("bits", "binned", "raw"))
    k, sizes = node["k"], node["sizes"]
    if type(k) is not int or not 1 <= k <= 2**31:
        a.fail("'k' must be an integer in [1, 2**31] (predictors an iteration)")
    if (
        type(sizes) is not list
        or not sizes
        or len(sizes) % k
        or not all(type(n) is int for n in sizes)
        or min(sizes) < 1
        or max(sizes) > 2**32
    ):
        a.fail(f"'sizes' must be a non-empty list of node counts in [1, 2**32], rows of {k}")
    present = ["bits" in node, "binned" in node, "raw" in node]
    if any(present) and not all(present):
        a.fail("'bits', 'binned' and 'raw' come together (the bitsets of categorical splits)")
    if "bits" in node:
        bits = node["bits"]
        if (
            type(bits) is not list
            or len(bits) != len(sizes)
            or not all(type(n) is int for n in bits)
            or min(bits) < 0
            or max(bits) > 2**32
        ):
            a.fail(f"'bits' must be a list of {len(sizes)} bitset counts in [0, 2**32]")
    audit_arrays(a, node, ("nodes", "binned", "raw"))
    a.need(PREDICTOR, "node")


def build_predictors(b: Any, node: dict[str, Any]) -> list[list[Any]]:
    """The rows of TreePredictors of an ``sk.hgbps`` node, all checked before any is made."""
    k, sizes = node["k"], node["sizes"]
    n = len(sizes)
    try:
        cls, native = _sklearn_predictor()
        if isinstance(cls, str):
            raise ValueError(cls)
        total = sum(sizes)
        raw = b.build(node["nodes"])
        if raw.dtype != np.uint8 or raw.shape != (total, LAYOUT.itemsize):
            raise ValueError(
                f"nodes must be uint8 records of {LAYOUT.itemsize} bytes, as many as the "
                f"{total} nodes of the predictors' sizes, not {raw.dtype} of shape {raw.shape}"
            )
        records = np.ascontiguousarray(b.private(raw)).view(LAYOUT).reshape(total)
        if "bits" in node:
            bits = node["bits"]
            binned = _native(_bitsets("binned", b.build(node["binned"])))
            raw_bits = _native(_bitsets("raw", b.build(node["raw"])))
            if not len(binned) == len(raw_bits) == sum(bits):
                raise ValueError(
                    f"binned has {len(binned)} rows and raw {len(raw_bits)}, but the "
                    f"predictors' bitset counts add up to {sum(bits)}"
                )
        else:
            bits = [0] * n
            binned = raw_bits = np.zeros((0, _BITSET_WORDS), dtype=np.uint32)
        _check_rows(records, np.array(sizes, dtype=np.intp), binned, raw_bits, bits, k)
    except (ValueError, TypeError) as exc:
        from ...errors import FormatError

        raise FormatError(f"{b.source}: invalid {PREDICTOR}: {exc}") from None
    if native is not None:  # the file's layout differs from this platform's
        records = records.astype(native)
    predictors = []
    at = bit = 0
    for size, count in zip(sizes, bits, strict=True):
        predictors.append(
            cls(records[at : at + size], binned[bit : bit + count], raw_bits[bit : bit + count])
        )
        at += size
        bit += count
    return [predictors[i : i + k] for i in range(0, n, k)]


def _check_rows(
    records: np.ndarray[Any, Any],
    sizes: np.ndarray[Any, Any],
    binned: np.ndarray[Any, Any],
    raw_bits: np.ndarray[Any, Any],
    bits: list[int],
    k: int,
) -> None:
    """Every predictor passes ``predictor_state``: checked together a batch of whole
    predictors at a time (slices: no copy), then one by one when a batch fails, which
    names the predictor (``_predictors[i][j]``) and its first broken invariant."""
    counts = np.array(bits, dtype=np.intp)
    ends = np.cumsum(sizes)
    bit_ends = np.cumsum(counts)
    for i, j, start, end in whole_batches(sizes, _BATCH):
        if not check_predictors(records[start:end], sizes[i:j], counts[i:j]):
            for t in range(i, j):
                a, z = int(ends[t] - sizes[t]), int(ends[t])
                ba, bz = int(bit_ends[t] - counts[t]), int(bit_ends[t])
                state = {
                    "nodes": records[a:z],
                    "binned_left_cat_bitsets": binned[ba:bz],
                    "raw_left_cat_bitsets": raw_bits[ba:bz],
                }
                try:
                    predictor_state(None, state)
                except ValueError as exc:
                    raise ValueError(f"_predictors[{t // k}][{t % k}]: {exc}") from None
            raise ValueError(f"predictors {i} to {j - 1} fail together but pass one by one")


def _plain_bitsets(x: Any) -> bool:
    return type(x) is np.ndarray and x.dtype == np.uint32 and x.ndim == 2


def audit_predictor(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("nodes",), ("binned", "raw", "id"))
    if ("binned" in node) != ("raw" in node):
        a.fail("'binned' and 'raw' come together (the bitsets of the categorical splits)")
    audit_arrays(a, node, ("nodes", "binned", "raw"))
    a.need(PREDICTOR, "node")
    a.define_late(node)
    a.group(TAG, node)


def build_predictor(b: Any, node: dict[str, Any]) -> Any:
    checked = b.prepared.get(TAG)
    if checked is None:
        checked = b.prepared[TAG] = _check_predictors(b)
    ready, passed = checked.get(id(node), (None, False))
    try:
        if ready is None:
            ready = _predictor_arrays(b, node)
        cls, records, binned, raw = ready
        nodes = records.view(LAYOUT).reshape(len(records))
        if not passed:  # its batch failed: check it alone, naming what is broken
            predictor_state(
                None,
                {"nodes": nodes, "binned_left_cat_bitsets": binned, "raw_left_cat_bitsets": raw},
            )
    except (ValueError, TypeError) as exc:
        from ...errors import FormatError

        raise FormatError(f"{b.source}: invalid {PREDICTOR}: {exc}") from None
    native = _sklearn_predictor()[1]
    if native is not None:  # the file's layout differs from this platform's
        nodes = nodes.astype(native)
    predictor = cls(nodes, binned, raw)
    b.register(node, predictor)
    return predictor


def _predictor_arrays(b: Any, node: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """The TreePredictor class, the node records (contiguous uint8 rows) and the two bitsets."""
    predictor_class, _native_dtype = _sklearn_predictor()
    if isinstance(predictor_class, str):
        raise ValueError(predictor_class)
    raw = b.build(node["nodes"])
    if raw.dtype != np.uint8 or raw.ndim != 2 or raw.shape[1] != LAYOUT.itemsize:
        raise ValueError(
            f"nodes must be uint8 records of {LAYOUT.itemsize} bytes, "
            f"not {raw.dtype} of shape {raw.shape}"
        )
    if not len(raw):
        raise ValueError("nodes is empty; a tree has at least its root")
    if "binned" in node:
        binned = _native(_bitsets("binned", b.build(node["binned"])))
        raw_bits = _native(_bitsets("raw", b.build(node["raw"])))
    else:
        binned = np.zeros((0, _BITSET_WORDS), dtype=np.uint32)
        raw_bits = np.zeros((0, _BITSET_WORDS), dtype=np.uint32)
    return predictor_class, np.ascontiguousarray(b.private(raw)), binned, raw_bits


@functools.cache
def _sklearn_predictor() -> tuple[Any, Any]:
    """scikit-learn's ``TreePredictor`` (or why its records cannot take ``LAYOUT``), and
    its record dtype when that differs from ``LAYOUT`` (None when they are the same)."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    if PREDICTOR_RECORD_DTYPE.names != LAYOUT.names:
        why = (
            f"this scikit-learn lays out predictor nodes as {PREDICTOR_RECORD_DTYPE}, which "
            f"the file's layout cannot fill"
        )
        return why, None
    return TreePredictor, (None if PREDICTOR_RECORD_DTYPE == LAYOUT else PREDICTOR_RECORD_DTYPE)


def _native(bits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return bits if bits.dtype == np.uint32 else bits.astype(np.uint32)  # another byte order


def _check_predictors(b: Any) -> dict[int, tuple[Any, bool]]:
    """``id(node) -> ((class, records, binned, raw), passed)`` for every predictor whose arrays
    have their form; ``passed`` when its batch passed."""

    def prepare(node: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
        ready = _predictor_arrays(b, node)
        if len(ready[2]) != len(ready[3]):
            raise ValueError("the bitsets differ in length")  # explained when built
        return ready

    def check(batch: Batch, raw: np.ndarray[Any, Any]) -> bool:
        return check_predictors(
            raw.view(LAYOUT).reshape(len(raw)),
            np.array([len(ready[1]) for _, ready in batch], dtype=np.intp),
            np.array([len(ready[3]) for _, ready in batch], dtype=np.intp),
        )

    return check_in_batches(b.groups.get(TAG, ()), prepare, check, _BATCH)


_BATCH = 1 << 16  # records per batch (3.5 MiB), bounding the scratch memory


def check_predictors(
    nodes: np.ndarray[Any, Any], sizes: np.ndarray[Any, Any], n_bitsets: np.ndarray[Any, Any]
) -> bool:
    """Whether every predictor passes :func:`predictor_state`'s checks of its nodes, in one
    pass over the ``LAYOUT`` records of predictors of ``sizes`` nodes, one after the other
    (``n_bitsets``: the rows of each one's bitsets). Each child index is taken within its own
    tree: it comes after its parent and lies in its tree, a tree of ``n`` nodes has ``n - 1``
    child links, and every node but a root is the child of some node (so of exactly one)."""
    total = len(nodes)
    is_leaf = nodes["is_leaf"]
    if np.count_nonzero(
        (is_leaf > 1) | (nodes["missing_go_to_left"] > 1) | (nodes["is_categorical"] > 1)
    ):
        return False
    inner = np.flatnonzero(is_leaf == 0)
    left, right = nodes["left"][inner].astype(np.intp), nodes["right"][inner].astype(np.intp)
    links = forest_links(inner, left, right, sizes, total)
    if links is None:
        return False
    tree = links[1]
    feature = nodes["feature_idx"][inner]
    if np.count_nonzero((feature < 0) | (feature >= 2**31)):
        return False
    split = nodes["is_categorical"][inner] == 1
    return not np.count_nonzero(nodes["bitset_idx"][inner][split] >= n_bitsets[tree][split])
