"""Everything an XGBoost model must satisfy before XGBoost's loader sees it.

The model is read by :mod:`._ubj` (structure, lengths), then every member is
checked against the schema XGBoost writes, and every tree against the
invariants prediction relies on (docs/handlers/boosting.md lists them). XGBoost
indexes its node arrays, feature vectors, category bitfields and category
tables with these numbers without bounds checks, so each is checked here.

Tree checks are vectorised over all trees at once: the fields of every tree are
gathered into one array per field, with each node's tree and position alongside,
so a 500-tree model takes a few milliseconds and no Python loop runs per node.
A failed check raises ``ValueError`` naming the tree, the array, the position
and the broken invariant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from ._ubj import ITEM_SIZE, MARKER_DTYPE, TREE_ARRAYS, TreeColumns, Typed, parse

# Prediction allocates a feature vector of num_feature floats per thread (whatever the
# input's width) and G outputs per row: bounded, so a small file cannot ask for gigabytes.
MAX_FEATURES = 1 << 24
MAX_CLASSES = 1 << 16
MAX_CATEGORY = 1 << 24  # XGBoost's own bound (categories are exact in a float32)
BITFIELD_FLOOR = 16 << 20  # bytes of category bitfields any model may need
DELETED = 0x7FFFFFFF  # split index of a node the pruner deleted (with default_left = 1)
ROOT_PARENT = 0x7FFFFFFF
_INT32_MAX = 0x7FFFFFFF
OBJECTIVES = frozenset(
    {
        "reg:squarederror",
        "reg:squaredlogerror",
        "reg:logistic",
        "reg:pseudohubererror",
        "reg:absoluteerror",
        "reg:quantileerror",
        "reg:gamma",
        "reg:tweedie",
        "reg:linear",
        "binary:logistic",
        "binary:logitraw",
        "binary:hinge",
        "count:poisson",
        "survival:cox",
        "survival:aft",
        "multi:softmax",
        "multi:softprob",
        "rank:ndcg",
        "rank:map",
        "rank:pairwise",
    }
)
FEATURE_TYPES = frozenset({"q", "c", "int", "float", "i"})
# Numeric category tables: XGBoost's value-kind code -> the typed array it must be.
CATEGORY_KINDS = {9: 0x69, 10: 0x55, 13: 0x6C, 15: 0x4C}
_PER_NODE = [name for name, _ in TREE_ARRAYS if not name.startswith("categories")]
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,9}")
_FLOAT = r"[-+]?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_BASE_SCORE = re.compile(rf"{_FLOAT}|\[{_FLOAT}(?:,{_FLOAT})*\]")


@dataclass(frozen=True)
class Summary:
    """What the rest of the handler needs to know about a checked model."""

    booster: str  # "gbtree", "dart" or "gblinear"
    num_feature: int
    num_class: int  # 0 unless multi-class
    n_groups: int  # outputs per row: classes, targets, or 1
    n_trees: int
    n_iterations: int


def check(buf: bytes | bytearray) -> Summary:
    """Check a model written by ``Booster.save_raw("ubj")``; ValueError says what is wrong."""
    return _Model(buf, parse(buf)).summary


def _fail(message: str) -> NoReturn:
    raise ValueError(message)


def _obj(x: Any, where: str, required: Sequence[str], optional: Sequence[str] = ()) -> Any:
    if type(x) is not dict:
        _fail(f"{where} must be an object")
    missing = [k for k in required if k not in x]
    if missing:
        _fail(f"{where} lacks {missing}")
    extra = sorted(k for k in x if k not in required and k not in optional)
    if extra:
        _fail(f"{where} has unknown member(s) {extra}")
    return x


def _decimal(x: Any, where: str, low: int = 0, high: int = 2**31 - 1) -> int:
    """A parameter XGBoost stores as decimal text."""
    if type(x) is not str or not _DECIMAL.fullmatch(x):
        _fail(f"{where} must be a decimal string, not {x!r}")
    value = int(x)
    if not low <= value <= high:
        _fail(f"{where} = {value} is outside [{low}, {high}]")
    return value


def _int_list(x: Any, where: str) -> np.ndarray[Any, Any]:
    if type(x) is not list or not set(map(type, x)) <= {int}:
        _fail(f"{where} must be an array of integers")
    return np.array(x, dtype=np.int64)


def _typed(x: Any, where: str, marker: int) -> Typed:
    if type(x) is not Typed or x.marker != marker:
        _fail(f"{where} must be a typed array of {MARKER_DTYPE[marker]}")
    return x


def _strings(x: Any, where: str) -> list[str]:
    if type(x) is not list or not set(map(type, x)) <= {str}:
        _fail(f"{where} must be an array of strings")
    return x


class _Model:
    def __init__(self, buf: bytes | bytearray, doc: Any) -> None:
        self.buf = buf
        self.u8 = np.frombuffer(buf, dtype=np.uint8)
        root = _obj(doc, "the model", ("learner", "version"))
        version = root["version"]
        if type(version) is not list or len(version) != 3 or set(map(type, version)) != {int}:
            _fail("version must be [major, minor, patch]")
        learner = _obj(
            root["learner"],
            "learner",
            ("attributes", "gradient_booster", "learner_model_param", "objective"),
            ("feature_names", "feature_types"),
        )
        self._params(learner["learner_model_param"])
        self._objective(learner["objective"])
        self._features(learner)
        booster, n_trees, n_iter = self._booster(learner["gradient_booster"])
        self._attributes(learner["attributes"], n_iter)
        self.summary = Summary(
            booster, self.num_feature, self.num_class, self.n_groups, n_trees, n_iter
        )

    def values(self, t: Typed, native: str = "<i8") -> np.ndarray[Any, Any]:
        return np.frombuffer(self.u8, MARKER_DTYPE[t.marker], t.items, t.offset).astype(native)

    # -- the learner ------------------------------------------------------------------------
    def _params(self, p: Any) -> None:
        where = "learner_model_param"
        p = _obj(
            p,
            where,
            ("base_score", "num_class", "num_feature"),
            ("boost_from_average", "num_target"),
        )
        self.num_feature = _decimal(p["num_feature"], f"{where}.num_feature", 0, MAX_FEATURES)
        self.num_class = _decimal(p["num_class"], f"{where}.num_class", 0, MAX_CLASSES)
        num_target = _decimal(p.get("num_target", "1"), f"{where}.num_target", 1, MAX_CLASSES)
        if self.num_class == 1:
            _fail(f"{where}.num_class must be 0 (not multi-class) or at least 2")
        if self.num_class and num_target != 1:
            _fail(f"{where}: a multi-class model has one target, not {num_target}")
        self.n_groups = self.num_class or num_target
        if p.get("boost_from_average", "1") not in ("0", "1"):
            _fail(f"{where}.boost_from_average must be '0' or '1'")
        score = p["base_score"]
        if type(score) is not str or not _BASE_SCORE.fullmatch(score):
            _fail(f"{where}.base_score {score!r} is not a number or a list of numbers")
        if score.startswith("[") and score.count(",") + 1 != self.n_groups:
            _fail(
                f"{where}.base_score has {score.count(',') + 1} values for {self.n_groups} outputs"
            )

    def _objective(self, obj: Any) -> None:
        if type(obj) is not dict or "name" not in obj:
            _fail("objective must be an object with a name")
        name = obj["name"]
        if name not in OBJECTIVES:
            _fail(f"objective {name!r} is not an XGBoost objective this version knows")
        for key, params in obj.items():
            if key == "name":
                continue
            if type(params) is not dict or not set(map(type, params.values())) <= {str}:
                _fail(f"objective.{key} must be an object of strings")
        if name.startswith("multi:"):
            param = _obj(
                obj.get("softmax_multiclass_param"),
                "objective.softmax_multiclass_param",
                ("num_class",),
            )
            n = _decimal(param["num_class"], "objective num_class", 0, MAX_CLASSES)
            if n != self.num_class or n < 2:
                _fail(f"objective {name} has num_class {n}, the model has {self.num_class}")

    def _features(self, learner: dict[str, Any]) -> None:
        for key in ("feature_names", "feature_types"):
            values = _strings(learner.get(key, []), key)
            if len(values) not in (0, self.num_feature):
                _fail(f"{key} has {len(values)} items for {self.num_feature} features")
        unknown = set(learner.get("feature_types", [])) - FEATURE_TYPES
        if unknown:
            _fail(f"feature_types holds unknown type(s) {sorted(unknown)}")

    def _attributes(self, attrs: Any, n_iter: int) -> None:
        if type(attrs) is not dict or not set(map(type, attrs.values())) <= {str}:
            _fail("attributes must be an object of strings")
        if "best_iteration" in attrs:
            best = _decimal(attrs["best_iteration"], "attributes.best_iteration")
            if best >= max(n_iter, 1):
                _fail(f"attributes.best_iteration = {best} is not below the {n_iter} iterations")

    # -- the gradient booster ----------------------------------------------------------------
    def _booster(self, gb: Any) -> tuple[str, int, int]:
        if type(gb) is not dict or gb.get("name") not in ("gbtree", "dart", "gblinear"):
            _fail("gradient_booster.name must be 'gbtree', 'dart' or 'gblinear'")
        name = gb["name"]
        if name == "gblinear":
            _obj(gb, "gradient_booster", ("name", "model"))
            model = _obj(gb["model"], "gblinear model", ("weights",), ("boosted_rounds",))
            weights = _typed(model["weights"], "gblinear weights", 0x64)
            want = (self.num_feature + 1) * self.n_groups
            if weights.items != want:
                _fail(f"gblinear has {weights.items} weights, (num_feature + 1) * outputs = {want}")
            rounds = model.get("boosted_rounds", 0)
            if type(rounds) is not int or rounds < 0:
                _fail("gblinear boosted_rounds must be a non-negative integer")
            return name, 0, rounds
        if name == "dart":
            _obj(gb, "gradient_booster", ("name", "gbtree", "weight_drop"))
            inner = gb["gbtree"]
            if type(inner) is not dict or inner.get("name") != "gbtree":
                _fail("a dart booster must hold a gbtree")
            n_trees, n_iter = self._gbtree(inner)
            drops = gb["weight_drop"]
            if type(drops) is not list or not set(map(type, drops)) <= {float}:
                _fail("dart weight_drop must be an array of numbers")
            if len(drops) != n_trees:
                _fail(f"dart weight_drop has {len(drops)} weights for {n_trees} trees")
            return name, n_trees, n_iter
        n_trees, n_iter = self._gbtree(gb)
        return name, n_trees, n_iter

    def _gbtree(self, gb: Any) -> tuple[int, int]:
        _obj(gb, "gradient_booster", ("name", "model"))
        model = _obj(
            gb["model"],
            "gbtree model",
            ("gbtree_model_param", "iteration_indptr", "tree_info", "trees"),
            ("cats",),
        )
        param = _obj(
            model["gbtree_model_param"], "gbtree_model_param", ("num_parallel_tree", "num_trees")
        )
        n_trees = _decimal(param["num_trees"], "gbtree_model_param.num_trees")
        parallel = _decimal(param["num_parallel_tree"], "gbtree_model_param.num_parallel_tree", 1)
        trees = model["trees"]
        if type(trees) is not TreeColumns:
            _fail("trees must be an array of trees")
        if trees.n != n_trees:
            _fail(f"the model holds {trees.n} trees, num_trees says {n_trees}")
        info = _int_list(model["tree_info"], "tree_info")
        if len(info) != n_trees:
            _fail(f"tree_info has {len(info)} items for {n_trees} trees")
        _first(info < 0, lambda i: f"tree_info[{i}] = {info[i]} is negative")
        _first(
            info >= self.n_groups,
            lambda i: f"tree_info[{i}] = {info[i]} names an output, but there are {self.n_groups}",
        )
        # Predicting a range of iterations maps them to trees through this index.
        indptr = _int_list(model["iteration_indptr"], "iteration_indptr")
        if len(indptr) == 0 or indptr[0] != 0 or indptr[-1] != n_trees:
            _fail(f"iteration_indptr must run from 0 to the {n_trees} trees")
        _first(
            np.diff(indptr) <= 0,
            lambda i: f"iteration_indptr[{i + 1}] = {indptr[i + 1]} does not increase",
        )
        n_iter = len(indptr) - 1
        per_iteration = self.n_groups * parallel
        _first(
            np.diff(indptr) != per_iteration,
            lambda i: (
                f"iteration {i} has {indptr[i + 1] - indptr[i]} trees, not outputs "
                f"({self.n_groups}) * num_parallel_tree ({parallel})"
            ),
        )
        if "cats" in model:
            self._cats(model["cats"])
        _Trees(self.buf, trees, self.num_feature).check()
        return n_trees, n_iter

    def _cats(self, cats: Any) -> None:
        """The category tables XGBoost uses to re-code categorical data at prediction."""
        cats = _obj(cats, "cats", ("enc", "feature_segments", "sorted_idx"))
        enc = cats["enc"]
        if type(enc) is not list:
            _fail("cats.enc must be an array")
        segments = self.values(_typed(cats["feature_segments"], "cats.feature_segments", 0x6C))
        order = self.values(_typed(cats["sorted_idx"], "cats.sorted_idx", 0x6C))
        if not enc:
            if len(segments) or len(order):
                _fail("cats has segments or a sort order but no categories")
            return
        if len(enc) != self.num_feature or len(segments) != len(enc) + 1 or segments[0] != 0:
            _fail("cats must have one table per feature, and feature_segments one more, from 0")
        sizes = np.diff(segments)
        for f, column in enumerate(enc):
            where = f"cats.enc[{f}]"
            if type(column) is dict and "offsets" in column:
                _obj(column, where, ("offsets", "values"))
                offsets = self.values(_typed(column["offsets"], f"{where}.offsets", 0x6C))
                names = _typed(column["values"], f"{where}.values", 0x69)
                n = max(len(offsets) - 1, 0)
                if len(offsets) == 0 and names.items:
                    _fail(f"{where} has category names but no offsets")
                if len(offsets) and (
                    offsets[0] != 0 or offsets[-1] != names.items or (np.diff(offsets) < 0).any()
                ):
                    _fail(f"{where}.offsets must rise from 0 to the {names.items} name bytes")
            else:
                _obj(column, where, ("type", "values"))
                kind = column["type"]
                marker = CATEGORY_KINDS.get(kind) if type(kind) is int else None
                if marker is None:
                    _fail(f"{where}.type {kind!r} is not an integer category kind")
                n = _typed(column["values"], f"{where}.values", marker).items
            if n != sizes[f]:
                _fail(f"{where} has {n} categories, feature_segments says {sizes[f]}")
        if (sizes < 0).any() or len(order) != segments[-1]:
            _fail(f"cats.sorted_idx has {len(order)} items for {segments[-1]} categories")
        seg = np.repeat(np.arange(len(sizes)), sizes)
        ok = (order >= 0) & (order < sizes[seg])
        _first(~ok, lambda i: f"cats.sorted_idx[{i}] = {order[i]} is outside its feature")
        where_sorted = segments[:-1][seg] + order
        if (np.bincount(where_sorted, minlength=len(order)) != 1).any():
            _fail("cats.sorted_idx is not a permutation of each feature's categories")


def _first(bad: np.ndarray[Any, Any], message: Callable[[int], str]) -> None:
    """Fail with the message for the first index where ``bad`` holds."""
    hits = np.flatnonzero(bad)
    if hits.size:
        _fail(message(int(hits[0])))


def _gather(
    buf: bytes | bytearray,
    offsets: np.ndarray[Any, Any],
    counts: np.ndarray[Any, Any],
    marker: int,
) -> np.ndarray[Any, Any]:
    """One field of every tree, concatenated, at the width the file gives it, in this
    machine's byte order.

    One slice per tree and one join (C copies of contiguous runs): faster than any
    fancy indexing, as the runs sit at arbitrary, unaligned offsets. Not widened: the
    checks' arrays are new memory at every load, whose pages the kernel must fault in
    and zero, so int64 copies of the int32 fields cost more than their arithmetic.
    """
    size = ITEM_SIZE[marker]
    runs = [buf[o : o + size * c] for o, c in zip(offsets.tolist(), counts.tolist(), strict=True)]
    return np.frombuffer(b"".join(runs), MARKER_DTYPE[marker]).astype(_NATIVE[marker])


_NATIVE = {marker: np.dtype(code).newbyteorder("=") for marker, code in MARKER_DTYPE.items()}


class _Trees:
    """The invariants of every tree, checked on all trees' nodes at once."""

    def __init__(self, buf: bytes | bytearray, cols: TreeColumns, num_feature: int) -> None:
        self.buf = buf
        self.cols = cols
        self.num_feature = num_feature

    def field(self, name: str) -> np.ndarray[Any, Any]:
        marker = dict(TREE_ARRAYS)[name]
        return _gather(self.buf, self.cols.offsets[name], self.cols.counts[name], marker)

    def fail_at(self, bad: np.ndarray[Any, Any], message: Callable[[int, int], str]) -> None:
        """Fail for the first node where ``bad`` holds: "tree t: <message(node, i)>"."""
        hits = np.flatnonzero(bad)
        if hits.size:
            i = int(hits[0])
            _fail(f"tree {self.tree_of[i]}: {message(int(self.local[i]), i)}")

    def check(self) -> None:
        cols = self.cols
        if cols.n == 0:
            return
        trees = np.arange(cols.n)
        ids = np.asarray(cols.ids, dtype=np.int64)
        _first(ids != trees, lambda t: f"tree {t}: its id is {ids[t]}, not its position {t}")
        params = np.asarray(cols.params, dtype=np.int64)
        n = params[:, 2]
        _first(
            params[:, 3] != 1,
            lambda t: (
                f"tree {t}: size_leaf_vector is {params[t, 3]}; "
                "multi-output trees are not supported"
            ),
        )
        _first(
            params[:, 1] != self.num_feature,
            lambda t: f"tree {t}: num_feature is {params[t, 1]}, the model has {self.num_feature}",
        )
        _first(n < 1, lambda t: f"tree {t}: num_nodes is {n[t]}, a tree has at least one node")
        for name in _PER_NODE:
            self._length(name, np.asarray(cols.counts[name], dtype=np.int64), n, "num_nodes")
        self.base = np.cumsum(n) - n
        # Per node: int32 where every node number fits (less new memory; see _gather).
        nodes = int(n.sum())
        small = np.dtype(np.int32 if nodes <= _INT32_MAX else np.int64)
        self.tree_of: np.ndarray[Any, Any] = np.repeat(trees.astype(small), n)
        local: np.ndarray[Any, Any] = np.arange(nodes, dtype=small)
        local -= self.base.astype(small)[self.tree_of]
        self.local = local
        self.size: np.ndarray[Any, Any] = n.astype(small)[self.tree_of]
        self._nodes(params[:, 0])
        self._categorical(n)

    def _length(
        self, name: str, have: np.ndarray[Any, Any], want: np.ndarray[Any, Any], what: str
    ) -> None:
        """Every tree's ``name`` has as many items as ``what`` says (``want``)."""
        _first(have != want, lambda t: f"tree {t}: {name} has {have[t]} items, {what} is {want[t]}")

    def _children(
        self, name: str, child: np.ndarray[Any, Any], inner: np.ndarray[Any, Any]
    ) -> None:
        """An internal node's child comes after it in the same tree: no cycles."""
        local, size = self.local, self.size
        self.fail_at(
            inner & ((child <= local) | (child >= size)),
            lambda j, i: (
                f"{name}[{j}] = {child[i]} is outside ({j}, {size[i]}): a child comes after its "
                "parent in the same tree (no cycles)"
            ),
        )

    def _nodes(self, num_deleted: np.ndarray[Any, Any]) -> None:
        left, right = self.field("left_children"), self.field("right_children")
        parents, split = self.field("parents"), self.field("split_indices")
        dleft, stype = self.field("default_left"), self.field("split_type")
        local, fail_at = self.local, self.fail_at
        fail_at(
            (dleft != 0) & (dleft != 1),
            lambda j, i: f"default_left[{j}] = {dleft[i]} is not 0 or 1",
        )
        fail_at(
            (stype != 0) & (stype != 1),
            lambda j, i: f"split_type[{j}] = {stype[i]} is not 0 (numerical) or 1 (categorical)",
        )
        leaf = left == -1
        fail_at(
            leaf != (right == -1),
            lambda j, i: (
                f"node {j} has left child {left[i]} and "
                f"right child {right[i]}: a leaf has -1 for both"
            ),
        )
        inner = ~leaf
        self._children("left_children", left, inner)
        self._children("right_children", right, inner)
        fail_at(
            inner & (left == right),
            lambda j, i: f"node {j} has the same node {left[i]} as both children",
        )
        fail_at(
            inner & ((split < 0) | (split >= self.num_feature)),
            lambda j, i: (
                f"split_indices[{j}] = {split[i]} is outside [0, {self.num_feature}), "
                "the model's features"
            ),
        )
        deleted = (split == DELETED) & (dleft == 1) & (local > 0)
        fail_at(deleted & inner, lambda j, i: f"node {j} is marked deleted but has children")
        counted = np.bincount(self.tree_of[deleted], minlength=self.cols.n)
        _first(
            counted != num_deleted,
            lambda t: (
                f"tree {t}: num_deleted is {num_deleted[t]} "
                f"but {counted[t]} nodes are marked deleted"
            ),
        )
        fail_at((stype == 1) & leaf, lambda j, i: f"split_type[{j}] = 1 on a leaf")
        # Parents: the root's is the marker XGBoost writes; every other points backwards.
        root = local == 0
        fail_at(
            root & (parents != ROOT_PARENT),
            lambda j, i: f"parents[0] = {parents[i]}, the root's parent must be {ROOT_PARENT}",
        )
        fail_at(
            ~root & ((parents < 0) | (parents >= local)),
            lambda j, i: f"parents[{j}] = {parents[i]} is outside [0, {j})",
        )
        inner_at = np.flatnonzero(inner)
        children = np.concatenate((left[inner_at], right[inner_at])) + np.tile(
            self.base[self.tree_of[inner_at]], 2
        )
        refs = np.bincount(children, minlength=len(local))
        want = (~root & ~deleted).astype(np.int64)
        fail_at(
            refs > want,
            lambda j, i: (
                f"node {j} is the child of {refs[i]} nodes; "
                + ("a deleted node has none" if deleted[i] else "a node has one parent")
            ),
        )
        fail_at(
            refs < want,
            lambda j, i: (
                f"node {j} is the child of no node: every node but "
                "the root and deleted nodes has one parent"
            ),
        )
        owner = np.tile(local[inner_at], 2)
        wrong = parents[children] != owner
        if wrong.any():
            k = int(np.flatnonzero(wrong)[0])
            c = int(children[k])
            _fail(
                f"tree {self.tree_of[c]}: parents[{local[c]}] = {parents[c]}, but node "
                f"{owner[k]} has it as a child"
            )
        self.categorical = np.flatnonzero(stype == 1)

    def _categorical(self, n: np.ndarray[Any, Any]) -> None:
        cols = self.cols
        n_cat = np.asarray(cols.counts["categories_nodes"], dtype=np.int64)
        for name in ("categories_segments", "categories_sizes"):
            counts = np.asarray(cols.counts[name], dtype=np.int64)
            self._length(name, counts, n_cat, "categories_nodes")
        nodes = self.field("categories_nodes")
        tree = np.repeat(np.arange(cols.n), n_cat)
        _first(
            (nodes < 0) | (nodes >= n[tree]),
            lambda k: (
                f"tree {tree[k]}: categories_nodes "
                f"holds {nodes[k]}, outside the tree's {n[tree[k]]} nodes"
            ),
        )
        at = nodes + self.base[tree]
        _first(
            np.diff(at) <= 0,
            lambda k: f"tree {tree[k + 1]}: categories_nodes is not strictly increasing",
        )
        if len(at) != len(self.categorical) or (at != self.categorical).any():
            mismatch = np.setxor1d(at, self.categorical)
            i = int(mismatch[0])
            _fail(
                f"tree {self.tree_of[i]}: node {self.local[i]} is a categorical split in "
                "split_type or categories_nodes but not in both"
            )
        if not len(at):
            if sum(cols.counts["categories"]):
                _fail("categories are listed but no split is categorical")
            return
        sizes = self.field("categories_sizes")
        starts = self.field("categories_segments")
        _first(
            sizes < 1,
            lambda k: (
                f"tree {tree[k]}: categories_sizes holds {sizes[k]}; "
                "a categorical split has at least one category"
            ),
        )
        total = np.concatenate(([0], np.cumsum(sizes)))
        first = np.cumsum(n_cat) - n_cat  # each tree's first categorical split
        expected = total[:-1] - np.repeat(total[first], n_cat)
        _first(
            starts != expected,
            lambda k: (
                f"tree {tree[k]}: categories_segments holds "
                f"{starts[k]}, the splits' categories must follow each other from 0 "
                f"(expected {expected[k]})"
            ),
        )
        per_tree = total[first + n_cat] - total[first]
        have = np.asarray(cols.counts["categories"], dtype=np.int64)
        _first(
            per_tree != have,
            lambda t: (
                f"tree {t}: categories has {have[t]} items, "
                f"categories_sizes add up to {per_tree[t]}"
            ),
        )
        cats = self.field("categories")
        split_of = np.repeat(np.arange(len(sizes)), sizes)
        _first(
            (cats < 0) | (cats >= MAX_CATEGORY),
            lambda k: (
                f"tree {tree[split_of[k]]}: category {cats[k]} is outside [0, {MAX_CATEGORY})"
            ),
        )
        same = split_of[1:] == split_of[:-1]
        _first(
            same & (np.diff(cats) <= 0),
            lambda k: (
                f"tree {tree[split_of[k]]}: the categories of a split must be strictly increasing"
            ),
        )
        words = np.maximum.reduceat(cats, total[:-1]) // 32 + 1
        need = int(words.sum()) * 4
        budget = max(BITFIELD_FLOOR, 16 * len(self.buf))
        if need > budget:
            _fail(
                f"the categorical splits would need {need} bytes of bitfields, "
                f"more than {budget} for a model of this size"
            )
