"""Histogram gradient boosting: ``TreePredictor``, ``_BinMapper`` and the estimators.

``TreePredictor`` is a plain Python class, but its ``nodes`` go straight to
``_predictor.pyx``, which walks them without bounds checks: ``nodes[left]``,
``X[row, feature_idx]``, ``raw_left_cat_bitsets[bitset_idx]`` and
``known_cat_bitsets[f_idx_map[feature_idx]]``. The bin mapper's arrays are read
the same way by ``_binning.pyx`` (``transform``, continued training).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import array, binary_tree, first, flags, in_range, integer, keys, records

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


def feature_indices(predictor: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The features the internal nodes of a validated predictor split on, and which of
    those splits are categorical."""
    nodes = predictor.nodes
    internal = nodes["is_leaf"] == 0
    return nodes["feature_idx"][internal], nodes["is_categorical"][internal] == 1


# -- the bin mapper -------------------------------------------------------------------------


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
    for i, row in enumerate(predictors):
        if type(row) is not list or len(row) != k:
            raise ValueError(f"_predictors[{i}] must be a list of {k} predictors")
        for j, p in enumerate(row):
            if type(p) is not TreePredictor:
                raise TypeError(f"_predictors[{i}][{j}] is not a TreePredictor")
            feature, categorical = feature_indices(p)
            in_range(f"_predictors[{i}][{j}] feature_idx", feature, 0, n_features)
            wrong = categorical & (is_cat[feature] == 0)
            if wrong.any():
                raise ValueError(
                    f"_predictors[{i}][{j}] has a categorical split on feature "
                    f"{int(feature[first(wrong)])}, which the bin mapper holds as numerical"
                )
