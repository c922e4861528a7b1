"""Building blocks of the scikit-learn validators: typed values, arrays, binary trees.

Every function raises ``ValueError`` or ``TypeError`` whose message names the
broken invariant (``children_left[5] = 900 is outside [6, 31)``); the loader
adds the class. Checks on arrays are vectorised: a forest holds millions of
nodes, and validation must cost a fraction of the load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


def integer(name: str, x: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``x`` as a Python int in ``[lo, hi]`` (numpy integers accepted, bools not)."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer):
        raise TypeError(f"{name} must be an integer, not {type(x).__name__}")
    value = int(x)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        low = "-inf" if lo is None else lo
        high = "inf" if hi is None else hi
        raise ValueError(f"{name} = {value} is outside [{low}, {high}]")
    return value


def boolean(name: str, x: Any) -> bool:
    """``x`` as a Python bool (a numpy bool accepted: scikit-learn's flags take either)."""
    if not isinstance(x, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, not {type(x).__name__}")
    return bool(x)


def real(name: str, x: Any) -> float:
    """``x`` as a float (Python or numpy int/float, not bool)."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, not {type(x).__name__}")
    return float(x)


def keys(name: str, d: Any, required: Iterable[str], optional: Iterable[str] = ()) -> None:
    """``d`` is a dict with exactly the ``required`` keys and perhaps some ``optional`` ones."""
    if type(d) is not dict:
        raise TypeError(f"{name} must be a dict, not {type(d).__name__}")
    req = set(required)
    missing = sorted(req - d.keys())
    if missing:
        raise ValueError(f"{name} lacks {missing}")
    extra = sorted(map(str, d.keys() - req - set(optional)))
    if extra:
        raise ValueError(f"{name} has unexpected key(s) {extra}")


def array(
    name: str,
    x: Any,
    *,
    kind: str,
    ndim: int,
    itemsizes: Iterable[int] = (),
    contiguous: bool = False,
) -> Array:
    """``x`` is an ndarray of one of the dtype kinds in ``kind`` (``"iu"``, ``"f"``, ...)
    and ``ndim`` dimensions; ``itemsizes`` restricts the item size when given."""
    if type(x) is not np.ndarray:
        raise TypeError(f"{name} must be a numpy array, not {type(x).__name__}")
    sizes = tuple(itemsizes)
    if (
        x.dtype.kind not in kind
        or x.dtype.fields is not None
        or (sizes and x.itemsize not in sizes)
    ):
        raise TypeError(f"{name} has dtype {x.dtype}, which is not allowed here")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), has shape {x.shape}")
    if contiguous and not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return x


def records(name: str, x: Any, fields: Mapping[str, tuple[str, tuple[int, ...]]]) -> Array:
    """``x`` is a 1-D structured array with exactly ``fields`` in this order.

    ``fields`` maps a name to (dtype kind, allowed item sizes). Byte order is free
    and so are offsets (scikit-learn converts both), which makes files written on
    other platforms load; the values are then checked through the field views.
    """
    if type(x) is not np.ndarray:
        raise TypeError(f"{name} must be a numpy array, not {type(x).__name__}")
    if x.ndim != 1:
        raise ValueError(f"{name} must have 1 dimension, has shape {x.shape}")
    dt = x.dtype
    if dt.names is None or list(dt.names) != list(fields):
        raise TypeError(f"{name} must have the fields {list(fields)}, has dtype {dt}")
    for field, (kinds, sizes) in fields.items():
        f = dt.fields[field][0]
        if f.kind not in kinds or f.itemsize not in sizes or f.subdtype is not None:
            raise TypeError(f"{name} field {field!r} has dtype {f}, which is not allowed")
    return x


def private_members(*names: str) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """A ``Validator.private`` hook: the state with the arrays ``names`` in the process's
    own memory (compiled code indexes or counts with their values)."""

    def private(state: Any, own: Callable[[Any], Any]) -> Any:
        if type(state) is not dict:
            return state
        return {k: own(v) if k in names else v for k, v in state.items()}

    return private


# Prediction follows a tree's child (and bitset) indices.
private_nodes = private_members("nodes")


def first(mask: Array) -> int:
    """Index of the first True in ``mask``."""
    return int(np.flatnonzero(mask)[0])


def in_range(name: str, values: Array, lo: int, hi: int, where: Array | None = None) -> None:
    """Every value lies in ``[lo, hi)``; ``where`` gives the node index of each value."""
    bad = (values < lo) | (values >= hi)
    if np.count_nonzero(bad):
        i = first(bad)
        at = i if where is None else int(where[i])
        raise ValueError(f"{name}[{at}] = {int(values[i])} is outside [{lo}, {hi})")


def flags(name: str, values: Array) -> None:
    """A 0/1 field (a C ``bint``/``uint8``/``intp`` flag)."""
    bad = values > 1 if values.dtype.kind == "u" else (values != 0) & (values != 1)
    if np.count_nonzero(bad):
        i = first(bad)
        raise ValueError(f"{name}[{i}] = {int(values[i])} is not 0 or 1")


def binary_tree(names: tuple[str, str], left: Array, right: Array, leaf: Array) -> Array:
    """Check that ``left``/``right`` make a binary tree rooted at node 0; return the parents.

    ``left`` and ``right`` are intp arrays holding -1 at the leaves (``leaf``) and both
    children elsewhere. Compiled traversals follow child indices without bounds checks,
    loop until they reach a leaf and size their stacks by the node count. So: every
    child lies in the array and has a larger index than its parent (every path ends at
    a leaf, after at most ``n`` steps), and every node but the root is the child of
    exactly one node (a stack of ``n`` entries suffices). Returns the parent of each
    node, 0 for the root.

    Arrays of a few hundred nodes are the common case (a forest holds thousands of
    them), where each numpy call costs more than its work: hence few, mask-free calls.
    """
    n = len(left)
    index = np.arange(n)
    out = ((left + 1).view(np.uintp) > n) | ((right + 1).view(np.uintp) > n)
    parent = np.full(n + 1, -1, dtype=np.intp)
    if not np.count_nonzero(out):
        # A leaf's -1 lands in the spare last slot.
        parent[left] = index
        parent[right] = index
        below = parent[1:n].view(np.uintp) >= index[1:].view(np.uintp)
        if 2 * (n - np.count_nonzero(leaf)) == n - 1 and not np.count_nonzero(below):
            parent[0] = 0
            return parent[:n]
    _explain(names, left, right, leaf)
    raise ValueError("the nodes do not form a tree")  # _explain always raises first


def _explain(names: tuple[str, str], left: Array, right: Array, leaf: Array) -> None:
    """Raise the first way in which ``binary_tree``'s invariants fail."""
    n = len(left)
    nodes = np.flatnonzero(~leaf)
    lo, ro = left[nodes], right[nodes]
    for name, child in zip(names, (lo, ro), strict=True):
        bad = (child <= nodes) | (child >= n)
        if bad.any():
            i = first(bad)
            node, value = int(nodes[i]), int(child[i])
            if 0 <= value < n:
                raise ValueError(
                    f"{name}[{node}] = {value} does not come after node {node} "
                    f"(a child must have a larger index, so that every path ends at a leaf)"
                )
            raise ValueError(f"{name}[{node}] = {value} is outside [{node + 1}, {n})")
    counts = np.bincount(np.concatenate((lo, ro)), minlength=n)
    counts[0] = 1
    if (counts != 1).any():
        node = first(counts != 1)
        raise ValueError(
            f"node {node} is the child of {int(counts[node])} nodes (every node but the "
            f"root must have exactly one parent)"
        )


def depths(parent: Array) -> Array:
    """Depth of every node of a tree given by ``parent`` (root 0, its own parent).

    Pointer jumping: each pass doubles the distance an ancestor link spans, so the
    work is ``n * log2(depth)`` vectorised steps however unbalanced the tree is.
    The root has depth 0 and is its own ancestor, so no node needs masking.
    """
    depth = np.ones(len(parent), dtype=np.intp)
    depth[0] = 0
    up = parent
    while np.count_nonzero(up):
        depth += depth[up]
        up = up[up]
    return depth


Links = tuple[Array, Array, Array, Array]  # starts, tree of each inner node, to_left, to_right


def forest_links(inner: Array, left: Array, right: Array, sizes: Array, total: int) -> Links | None:
    """The child links of many trees laid one after the other, or None if they do not
    make each tree a binary tree rooted at its first node.

    ``sizes`` are the trees' node counts (``total`` in all); ``inner`` the indices of the
    internal nodes; ``left``/``right`` their children as intp indices within their own
    tree. Every child must come after its parent and lie in its tree, a tree of ``n``
    nodes has ``n - 1`` links (the links of one tree cannot make up for another's), and
    every node but a root is reached (so, with as many links as non-roots, exactly once).
    Returns the trees' first indices, each inner node's tree, and the children as indices
    into the whole.
    """
    if 2 * len(inner) != total - len(sizes):
        return None
    starts = np.cumsum(sizes) - sizes
    tree = np.repeat(np.arange(len(sizes)), sizes)[inner]
    base, end = starts[tree], (starts + sizes)[tree]
    to_left, to_right = left + base, right + base
    # After its parent and inside its tree: no link reaches a root or another tree.
    if np.count_nonzero(
        (to_left <= inner) | (to_left >= end) | (to_right <= inner) | (to_right >= end)
    ):
        return None
    hit = np.zeros(total, dtype=np.bool_)
    hit[to_left] = True
    hit[to_right] = True
    if np.count_nonzero(hit) != total - len(sizes):
        return None
    return starts, tree, to_left, to_right


Batch = list[tuple[dict[str, Any], Any]]  # (node, what ``prepare`` made of it)


def check_in_batches(
    nodes: Iterable[dict[str, Any]],
    prepare: Callable[[dict[str, Any]], Sequence[Any]],
    check: Callable[[Batch, Array], bool],
    batch_records: int,
) -> dict[int, tuple[Any, bool]]:
    """Check many handler nodes together: ``id(node) -> (prepared, passed)``.

    ``prepare(node)`` gives the node's arrays, its records (uint8 rows, one width for all)
    second, or raises ``ValueError``/``TypeError`` (the node is then left out, and
    explained when it is built). Records are concatenated, at most ``batch_records`` of
    them a batch (a larger node is a batch of its own), and ``check(batch, records)`` says
    whether the whole batch passes; ``passed`` is False for the nodes of a failed batch,
    each of which is then checked alone when built, which names its first broken invariant.

    Batches are copied into one scratch array, reused: small enough to stay in the CPU's
    cache for the passes over it, and no fresh memory (page faults) after the first batch.
    """
    out: dict[int, tuple[Any, bool]] = {}
    batch: Batch = []
    size = 0
    scratch: list[Array] = []

    def run() -> None:
        raws = [ready[1] for _, ready in batch]
        if len(raws) == 1:
            joined = raws[0]
        else:
            if not scratch or len(scratch[0]) < size:  # as large as the batches need
                scratch[:] = [np.empty((size, raws[0].shape[1]), dtype=np.uint8)]
            joined = np.concatenate(raws, out=scratch[0][:size])
        if check(batch, joined):
            for node, ready in batch:
                out[id(node)] = (ready, True)

    for node in nodes:
        try:
            ready = prepare(node)
        except (ValueError, TypeError):
            continue
        out[id(node)] = (ready, False)
        n = len(ready[1])
        if batch and size + n > batch_records:
            run()
            batch, size = [], 0
        batch.append((node, ready))
        size += n
    if batch:
        run()
    return out


def whole_batches(sizes: Array, limit: int) -> Iterator[tuple[int, int, int, int]]:
    """Batches of whole trees laid one after the other, about ``limit`` records each:
    ``(i, j, start, end)`` for trees ``i`` to ``j - 1``, records ``start`` to ``end`` (a
    tree larger than ``limit`` is a batch of its own)."""
    ends = np.cumsum(sizes)
    i, n = 0, len(sizes)
    while i < n:
        start = int(ends[i] - sizes[i])
        j = max(i + 1, int(np.searchsorted(ends, start + limit, side="right")))
        yield i, j, start, int(ends[j - 1])
        i = j


def audit_arrays(a: Any, node: dict[str, Any], members: Iterable[str]) -> None:
    """Each of ``members`` present in ``node`` is an ``nd`` node without an id (nothing
    else may alias the arrays a handler hands to compiled code); each is visited."""
    for member in members:
        if member in node:
            x = node[member]
            if type(x) is not dict or x.get("$") != "nd" or "id" in x:
                a.fail(f"'{member}' must be an 'nd' node without an id")
            a.visit(x)
