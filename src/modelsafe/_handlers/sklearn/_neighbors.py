"""KD and ball trees, and the ``DistanceMetric`` classes they hold.

Both are pickled as ``newObj(cls)`` plus a state tuple that ``__setstate__``
stores without looking: queries then read ``data[idx_array[i]]`` for ``i`` in
each node's ``[idx_start, idx_end)``, descend to nodes ``2i+1``/``2i+2`` of
every non-leaf, read ``node_bounds[., i, j]`` for every feature ``j``, and the
metrics read ``vec[j]``/``mat[i, j]`` for every feature. Every query checks its
input against ``data.shape[1]``, so the state must agree with that width.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ._checks import array, first, flags, in_range, integer, real, records

_NODE_FIELDS = {
    "idx_start": ("i", (8,)),
    "idx_end": ("i", (8,)),
    "is_leaf": ("i", (8,)),
    "radius": ("f", (8,)),
}
_STATS = ("n_trims", "n_leaves", "n_splits", "n_calls")  # C ints
KD_TREES = ("KDTree", "KDTree64", "KDTree32")
BALL_TREES = ("BallTree", "BallTree64", "BallTree32")


@functools.cache
def _trees() -> dict[type, tuple[str, int, list[str]]]:
    """Tree class -> (kind, bytes per float, names of the metric classes it accepts)."""
    from sklearn.neighbors import _ball_tree, _kd_tree

    out: dict[type, tuple[str, int, list[str]]] = {}
    for kind, module, names in (("kd", _kd_tree, KD_TREES), ("ball", _ball_tree, BALL_TREES)):
        for name in names:
            bits = "32" if name.endswith("32") else "64"
            out[getattr(module, name)] = (
                kind,
                int(bits) // 8,
                getattr(module, f"VALID_METRICS{bits}"),
            )
    return out


@functools.cache
def _metrics() -> dict[type, int]:
    """Concrete metric class -> bytes per float of the data it measures."""
    from sklearn.metrics import _dist_metrics as dm

    return {
        **{cls: 8 for cls in dm.METRIC_MAPPING64.values()},
        **{cls: 4 for cls in dm.METRIC_MAPPING32.values()},
    }


def _known(cls: Any, table: dict[type, Any]) -> Any:
    """The nearest class of ``cls``'s MRO that ``table`` knows, or None: a subclass someone
    trusted is checked as the tree or metric class it extends (its compiled methods are
    that class's)."""
    if not isinstance(cls, type):
        return None
    return next((c for c in cls.__mro__ if c in table), None)


def _metric_name(metric: Any) -> str:
    """The name of the metric class ``metric`` is (or extends): its checks go by it."""
    base = _known(type(metric), _metrics())
    return str((base or type(metric)).__name__)


# -- metrics -----------------------------------------------------------------------------


def metric_state(metric: Any, state: Any) -> None:
    """``(p, vec, mat)`` (plus ``func, kwargs`` for a Python function): the sizes the
    metric's own ``_validate_data`` compares with the data."""
    name = _metric_name(metric)
    pyfunc = name.startswith("PyFuncDistance")
    want = 5 if pyfunc else 3
    if type(state) is not tuple or len(state) != want:
        raise ValueError(f"the state of {name} must be a tuple of {want} values")
    p = real("p", state[0])
    if not p > 0:  # NaN fails too
        raise ValueError(f"p = {p} must be positive")
    vec = array("vec", state[1], kind="f", ndim=1, itemsizes=(8,), contiguous=True)
    mat = array("mat", state[2], kind="f", ndim=2, itemsizes=(8,), contiguous=True)
    if name.startswith("MahalanobisDistance") and (mat.shape[0] != mat.shape[1] or not len(mat)):
        raise ValueError(f"mat (the inverse covariance) must be square, has shape {mat.shape}")
    if name.startswith("SEuclideanDistance") and not len(vec):
        raise ValueError("vec (the variances) is empty")
    if pyfunc:
        if not callable(state[3]):
            raise TypeError("func must be callable")
        if type(state[4]) is not dict or not all(type(k) is str for k in state[4]):
            raise TypeError("kwargs must be a dict with string keys")


def metric_size(metric: Any) -> int | None:
    """The number of features a validated metric requires, or None for any."""
    name = _metric_name(metric)
    _, vec, mat = metric.__getstate__()[:3]  # vec and mat are not Python attributes
    if name.startswith("MahalanobisDistance"):
        return int(mat.shape[0])
    if name.startswith("SEuclideanDistance") or (name.startswith("MinkowskiDistance") and len(vec)):
        return int(vec.shape[0])
    if name.startswith("HaversineDistance"):
        return 2
    return None


# -- trees ---------------------------------------------------------------------------------


def private_tree(state: Any, own: Callable[[Any], Any]) -> Any:
    """A KD/ball tree's state (``Validator.private``) with idx_array and node_data in the
    process's own memory: queries index the data and idx_array with their values."""
    if type(state) is tuple and len(state) == 13:
        return (state[0], own(state[1]), own(state[2]), *state[3:])
    return state


def tree_state(tree: Any, state: Any) -> None:
    """The 13-item state of ``BinaryTree.__getstate__``, checked as queries use it."""
    base = _known(type(tree), _trees())
    cls = type(tree).__name__
    if base is None:
        raise TypeError(f"{cls} is not a KD or ball tree class")
    kind, width, valid = _trees()[base]
    if type(state) is not tuple or len(state) != 13:
        raise ValueError(f"the state of a {cls} must be a tuple of 13 values")
    (data, idx, nodes, bounds, leaf_size, n_levels, n_nodes, *stats) = state[:11]
    metric, weight = state[11], state[12]
    data = array("data", data, kind="f", ndim=2, itemsizes=(width,), contiguous=True)
    n, d = data.shape
    if n < 1 or d < 1:
        raise ValueError(f"data has shape {data.shape}; a tree needs at least one point")
    idx = array("idx_array", idx, kind="i", ndim=1, itemsizes=(np.intp().itemsize,))
    if len(idx) != n:
        raise ValueError(f"idx_array has {len(idx)} entries for {n} points")
    in_range("idx_array", idx, 0, n)
    counts = np.bincount(idx, minlength=n)
    if (counts != 1).any():
        i = first(counts != 1)
        raise ValueError(
            f"idx_array is not a permutation of range({n}): {i} appears {counts[i]} times"
        )

    nodes = records("node_data", nodes, _NODE_FIELDS)
    m = len(nodes)
    integer("leaf_size", leaf_size, 1)  # queries divide by it
    levels = integer("n_levels", n_levels, 1, 62)
    if integer("n_nodes", n_nodes) != m or m != 2**levels - 1:
        raise ValueError(
            f"n_nodes = {n_nodes} and n_levels = {n_levels}, but node_data holds {m} nodes "
            f"(a complete tree of n_levels levels has 2**n_levels - 1)"
        )
    for stat, value in zip(_STATS, stats, strict=True):
        integer(stat, value, 0, 2**31 - 1)
    start, end = nodes["idx_start"], nodes["idx_end"]
    in_range("idx_start", start, 0, n + 1)
    in_range("idx_end", end, 0, n + 1)
    bad = start > end
    if bad.any():
        i = first(bad)
        raise ValueError(f"node {i} has idx_start = {int(start[i])} > idx_end = {int(end[i])}")
    if int(start[0]) != 0 or int(end[0]) != n:
        raise ValueError(f"the root holds points [{int(start[0])}, {int(end[0])}), not [0, {n})")
    flags("is_leaf", nodes["is_leaf"])
    inner = np.flatnonzero(nodes["is_leaf"] == 0)
    deep = 2 * inner + 2 >= m
    if deep.any():
        raise ValueError(f"node {int(inner[first(deep)])} of the last level is not a leaf")
    want = (2 if kind == "kd" else 1, m, d)
    bounds = array("node_bounds", bounds, kind="f", ndim=3, itemsizes=(width,), contiguous=True)
    if bounds.shape != want:
        raise ValueError(f"node_bounds has shape {bounds.shape}, expected {want}")

    mbase = _known(type(metric), _metrics())
    mname = str((mbase or type(metric)).__name__)  # _metric_name, from the base just found
    if mbase is None or mname not in valid or _metrics()[mbase] != width:
        raise TypeError(f"a {cls} cannot use the metric {type(metric).__qualname__}")
    size = metric_size(metric)
    if size is not None and size != d:
        raise ValueError(f"the metric {mname} is sized for {size} features, the data has {d}")
    if weight is not None:
        weight = array("sample_weight", weight, kind="f", ndim=1, itemsizes=(width,))
        if len(weight) != n:
            raise ValueError(f"sample_weight has {len(weight)} entries for {n} points")


# -- newObj(cls) ---------------------------------------------------------------------------


def new_tree_args(args: list[Any], kwargs: dict[str, Any]) -> None:
    """``newObj(cls)`` calls ``cls.__new__(cls)`` for any class: only a tree class here."""
    if kwargs or len(args) != 1 or _known(args[0], _trees()) is None:
        raise TypeError("newObj here only makes a KDTree or BallTree")


def new_metric_args(args: list[Any], kwargs: dict[str, Any]) -> None:
    """``newObj(cls)`` of the metrics module: only a concrete DistanceMetric class."""
    if kwargs or len(args) != 1 or _known(args[0], _metrics()) is None:
        raise TypeError("newObj here only makes a concrete DistanceMetric class")


def new_state(obj: Any, state: Any) -> None:
    """The state of what ``newObj`` made, by its class (a tree or a metric)."""
    if _known(type(obj), _trees()) is not None:
        tree_state(obj, state)
    else:
        metric_state(obj, state)
