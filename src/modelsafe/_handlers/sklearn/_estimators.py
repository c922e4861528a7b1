"""Estimators that hand their compiled internals input they did not check themselves.

A validated ``Tree`` only splits on features below its ``n_features``; the input
it walks is checked by the estimator, against the estimator's own
``n_features_in_``. Forests, gradient boosting and isolation forests check the
input once and then call every tree with ``check_input=False`` (and gradient
boosting walks the raw nodes in ``_gradient_boosting.pyx``), and the brute-force
neighbor search reads ``_fit_X`` with the width of the query. So each of these
estimators must agree with what it holds, which these validators check on the
built state, before it is applied.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._checks import array, boolean, integer, private_members
from ._patterns import check_pattern

_TREE_MODULE = "sklearn.tree._classes"
TREE_ESTIMATORS = tuple(
    f"{_TREE_MODULE}.{n}"
    for n in (
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "ExtraTreeClassifier",
        "ExtraTreeRegressor",
    )
)
FORESTS = tuple(
    f"sklearn.ensemble._forest.{n}"
    for n in (
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
        "RandomTreesEmbedding",
    )
)
ISOLATION_FOREST = "sklearn.ensemble._iforest.IsolationForest"
BAGGING_CLASSIFIER = "sklearn.ensemble._bagging.BaggingClassifier"
DUMMY_REGRESSOR = "sklearn.dummy.DummyRegressor"
GRADIENT_BOOSTING = tuple(
    f"sklearn.ensemble._gb.{n}" for n in ("GradientBoostingClassifier", "GradientBoostingRegressor")
)
KMEANS = ("sklearn.cluster._kmeans.KMeans", "sklearn.cluster._kmeans.MiniBatchKMeans")
BISECTING_KMEANS = "sklearn.cluster._bisect_k_means.BisectingKMeans"
BIRCH = "sklearn.cluster._birch.Birch"
NEIGHBORS = (
    "sklearn.neighbors._unsupervised.NearestNeighbors",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neighbors._classification.RadiusNeighborsClassifier",
    "sklearn.neighbors._regression.KNeighborsRegressor",
    "sklearn.neighbors._regression.RadiusNeighborsRegressor",
    "sklearn.neighbors._graph.KNeighborsTransformer",
    "sklearn.neighbors._graph.RadiusNeighborsTransformer",
    "sklearn.neighbors._lof.LocalOutlierFactor",
)

SVMS = tuple(f"sklearn.svm._classes.{n}" for n in ("SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM"))
VECTORIZERS = (
    "sklearn.feature_extraction.text.CountVectorizer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction._dict_vectorizer.DictVectorizer",
)
# Vectorizers that hand their token_pattern to ``re`` on every transform and keep a
# vocabulary (HASHING_VECTORIZER hands it too, and hashes into n_features columns).
TEXT_VECTORIZERS = tuple(
    f"sklearn.feature_extraction.text.{n}" for n in ("CountVectorizer", "TfidfVectorizer")
)
FEATURE_HASHER = "sklearn.feature_extraction._hash.FeatureHasher"
HASHING_VECTORIZER = "sklearn.feature_extraction.text.HashingVectorizer"
POLYNOMIAL_FEATURES = "sklearn.preprocessing._polynomial.PolynomialFeatures"
ONE_HOT_ENCODER = "sklearn.preprocessing._encoders.OneHotEncoder"
# Estimators whose transform iterates a solver up to a count from the file.
ITERATIVE = (
    "sklearn.decomposition._nmf.NMF",
    "sklearn.decomposition._nmf.MiniBatchNMF",
    "sklearn.decomposition._dict_learning.DictionaryLearning",
    "sklearn.decomposition._dict_learning.MiniBatchDictionaryLearning",
    "sklearn.decomposition._dict_learning.SparseCoder",
    "sklearn.decomposition._lda.LatentDirichletAllocation",
)
_SVM_CLASSIFIERS = ("c_svc", "nu_svc")  # sklearn.svm._base.LIBSVM_IMPL, in its order
_SVM_OTHERS = ("one_class", "epsilon_svr", "nu_svr")


def _fitted(state: Any, attribute: str) -> bool:
    return type(state) is dict and attribute in state


def _n_features(state: dict[str, Any]) -> int:
    # Without it, predict would not compare the input's width with anything.
    if "n_features_in_" not in state:
        raise ValueError("a fitted estimator needs n_features_in_")
    return integer("n_features_in_", state["n_features_in_"], 1)


def _tree_of(where: str, estimator: Any) -> Any:
    from sklearn.tree._tree import Tree

    tree = getattr(estimator, "tree_", None)
    if type(tree) is not Tree:
        raise TypeError(f"{where} has no fitted tree_")
    return tree


def _same_width(where: str, tree: Any, n_features: int) -> None:
    if tree.n_features != n_features:
        raise ValueError(
            f"{where} splits on {tree.n_features} features but the model takes {n_features}"
        )


def _same_outputs(where: str, tree: Any, n_outputs: int | None) -> None:
    if n_outputs is not None and tree.n_outputs != n_outputs:
        raise ValueError(f"n_outputs_ = {n_outputs} but {where} has {tree.n_outputs}")


def tree_estimator_state(obj: Any, state: Any) -> None:
    """``tree_`` walks inputs of ``n_features_in_`` columns."""
    if not _fitted(state, "tree_"):
        return
    from sklearn.tree._tree import Tree

    tree = state["tree_"]
    if type(tree) is not Tree:
        raise TypeError("tree_ is not a sklearn.tree._tree.Tree")
    _same_width("tree_", tree, _n_features(state))
    if "n_outputs_" in state:
        _same_outputs("tree_", tree, integer("n_outputs_", state["n_outputs_"]))


def forest_state(obj: Any, state: Any) -> None:
    """The forest checks the input, then every tree walks it unchecked; a classifier's
    ``predict_proba`` allocates ``n_classes_`` columns a sample, and ``predict`` of several
    outputs ``n_outputs_`` (``2**40``: a ``MemoryError``), which fit takes from the trees'."""
    if not _fitted(state, "estimators_"):
        return
    n_features = _n_features(state)
    n_outputs = integer("n_outputs_", state["n_outputs_"], 1) if "n_outputs_" in state else None
    for i, est in enumerate(_sequence("estimators_", state["estimators_"])):
        tree = _tree_of(f"estimators_[{i}]", est)
        _same_width(f"estimators_[{i}].tree_", tree, n_features)
        _same_outputs(f"estimators_[{i}].tree_", tree, n_outputs)
    _class_counts(state)


def isolation_forest_state(obj: Any, state: Any) -> None:
    """Each tree walks the columns ``estimators_features_[i]`` of the input, or the whole
    input when ``_max_features`` equals its width."""
    if not _fitted(state, "estimators_"):
        return
    n_features = _n_features(state)
    width = integer("_max_features", state.get("_max_features"), 1, n_features)
    estimators = _sequence("estimators_", state["estimators_"])
    features = _sequence("estimators_features_", state.get("estimators_features_"))
    if len(features) != len(estimators):
        raise ValueError(f"{len(estimators)} estimators_ but {len(features)} estimators_features_")
    for i, (est, cols) in enumerate(zip(estimators, features, strict=True)):
        if len(cols) != width:
            raise ValueError(f"estimators_features_[{i}] has {len(cols)} columns, not {width}")
        _same_width(f"estimators_[{i}].tree_", _tree_of(f"estimators_[{i}]", est), width)


def bagging_state(obj: Any, state: Any) -> None:
    """``predict_proba`` allocates ``n_classes_`` columns a sample: a count its own
    ``classes_`` do not make (10**6 for three classes: an array of 1.2 GB and 14 s for 150 rows)."""
    if _fitted(state, "classes_"):
        _class_counts(state, outputs=False)


def _class_counts(state: dict[str, Any], outputs: bool = True) -> None:
    """``n_classes_`` is the length of ``classes_``: ``predict_proba`` allocates that many
    columns a sample (a forest: an array an output, ``classes_`` and ``n_classes_`` then
    lists, where ``outputs``)."""
    if "classes_" not in state or "n_classes_" not in state:
        return
    classes, counts = state["classes_"], state["n_classes_"]
    if outputs and type(classes) is list:
        if type(counts) is not list or len(counts) != len(classes):
            raise ValueError(
                f"classes_ holds the labels of {len(classes)} outputs, so n_classes_ must be "
                "a list of as many counts"
            )
        pairs = [
            (f"[{k}]", n, labels) for k, (n, labels) in enumerate(zip(counts, classes, strict=True))
        ]
    else:
        pairs = [("", counts, classes)]
    for at, count, labels in pairs:
        if type(labels) is not np.ndarray or labels.ndim != 1:
            raise TypeError(f"classes_{at} must be a 1-D array")
        if integer(f"n_classes_{at}", count, 0) != len(labels):
            raise ValueError(f"n_classes_{at} = {count} but classes_{at} holds {len(labels)}")


def gradient_boosting_state(obj: Any, state: Any) -> None:
    """``predict_stages`` adds ``tree k`` of each stage to column ``k`` of the raw
    predictions, whose width is ``n_trees_per_iteration_``, reading ``value`` with a
    stride of one."""
    if not _fitted(state, "estimators_"):
        return
    n_features = _n_features(state)
    k = integer("n_trees_per_iteration_", state.get("n_trees_per_iteration_"), 1)
    stages = state["estimators_"]
    if type(stages) is not np.ndarray or stages.dtype != object or stages.ndim != 2:
        raise TypeError("estimators_ must be a 2-D object array of trees")
    if stages.shape[1] != k:
        raise ValueError(
            f"estimators_ has {stages.shape[1]} trees per stage, n_trees_per_iteration_ = {k}"
        )
    for (i, j), est in np.ndenumerate(stages):
        tree = _tree_of(f"estimators_[{i}, {j}]", est)
        _same_width(f"estimators_[{i}, {j}].tree_", tree, n_features)
        if tree.n_outputs != 1 or tree.max_n_classes != 1:
            raise ValueError(f"estimators_[{i}, {j}].tree_ is not a single-output regression tree")
    # predict checks the input's width with estimators_[0, 0], then walks every tree.
    if stages.size:
        first = integer(
            "estimators_[0, 0].n_features_in_", getattr(stages[0, 0], "n_features_in_", None)
        )
        if first != n_features:
            raise ValueError(
                f"estimators_[0, 0].n_features_in_ = {first} but n_features_in_ = {n_features}"
            )
    init = state.get("init_")
    if isinstance(init, str):
        if init != "zero":
            raise ValueError(f"init_ = {init!r} is not 'zero' or an estimator")
    elif init is not None:
        _init_width(init, k, state.get("_loss"))


def dummy_regressor_state(obj: Any, state: Any) -> None:
    """``predict`` fills ``n_outputs_`` columns a sample with ``constant_``, which numpy
    broadcasts from one column to any count: the count must be that of ``constant_``'s
    columns (gradient boosting's default ``init_``; ``n_outputs_ = 10**6`` wrote 8 MB a row)."""
    if not _fitted(state, "constant_"):
        return
    n_outputs = integer("n_outputs_", state.get("n_outputs_"), 1)
    constant = state["constant_"]
    if type(constant) is not np.ndarray or constant.shape != (1, n_outputs):
        shape = getattr(constant, "shape", type(constant).__name__)
        raise ValueError(
            f"constant_ must be an array of shape (1, n_outputs_) = (1, {n_outputs}), not {shape}"
        )


def _init_width(init: Any, k: int, loss: Any) -> None:
    """The initial raw predictions come from ``init_``; for the dummy estimators
    scikit-learn uses by default their width is known, and must cover the ``k``
    columns the trees add to."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if type(init) is DummyRegressor:
        width = integer("init_.n_outputs_", getattr(init, "n_outputs_", None), 1)
    elif type(init) is DummyClassifier:
        if getattr(loss, "is_multiclass", False):
            # predict_proba has one column per class; take the smallest claim.
            width = min(
                len(getattr(init, "classes_", ())),
                len(getattr(init, "class_prior_", ())),
                integer("init_.n_classes_", getattr(init, "n_classes_", None)),
            )
        else:
            width = 1  # the probability of the positive class
    else:
        return  # a user's estimator: its output width is only known at predict
    if width < k:
        raise ValueError(f"init_ predicts {width} column(s) but the model adds {k}")


def neighbors_state(obj: Any, state: Any) -> None:
    """The brute-force search reads ``_fit_X`` rows with the width of the query; graphs
    and ``Isomap.transform`` allocate ``n_samples_fit_`` columns a query, which ``fit``
    sets to the rows of ``_fit_X``. ``predict`` and ``kneighbors()`` pass
    ``n_neighbors`` to the tree's query unchecked (only an argument is checked), and a
    query for 0 neighbors has compiled code read and write entry 0 of rows that have no
    entries."""
    if state.get("n_neighbors") is not None:
        integer("n_neighbors", state["n_neighbors"], 1)
    if not _fitted(state, "_fit_X") or state["_fit_X"] is None:
        return
    shape = getattr(state["_fit_X"], "shape", None)
    if shape is None or len(shape) != 2:
        raise TypeError("_fit_X must be a 2-D array")
    n_features = _n_features(state)
    if shape[1] != n_features:
        raise ValueError(f"_fit_X has {shape[1]} columns but n_features_in_ = {n_features}")
    if "n_samples_fit_" in state:
        n_samples = integer("n_samples_fit_", state["n_samples_fit_"])
        if n_samples != shape[0]:
            raise ValueError(f"n_samples_fit_ = {n_samples} but _fit_X has {shape[0]} rows")


def kmeans_state(obj: Any, state: Any) -> None:
    """``predict`` checks the input against ``n_features_in_``, then the compiled Lloyd
    step reads ``n_features_in_`` values from every row of ``cluster_centers_``, in
    ``_n_threads`` OpenMP threads (a negative count ends the process in libgomp)."""
    if not _fitted(state, "cluster_centers_"):
        return
    if "_n_threads" in state:
        integer("_n_threads", state["_n_threads"], 1, 2**31 - 1)
    centers = state["cluster_centers_"]
    if type(centers) is not np.ndarray or centers.ndim != 2 or not len(centers):
        raise TypeError("cluster_centers_ must be a 2-D array with a row per cluster")
    n_features = _n_features(state)
    if centers.shape[1] != n_features:
        raise ValueError(
            f"cluster_centers_ has {centers.shape[1]} columns but n_features_in_ = {n_features}"
        )


def bisecting_kmeans_state(obj: Any, state: Any) -> None:
    """``predict`` walks ``_bisecting_tree`` and hands the compiled Lloyd step the
    centers of each node's two children, read with the width of the input: a center of
    fewer values makes it read past the array (sparse input: a segmentation fault). A
    node reached twice would be walked once per path (a hang)."""
    kmeans_state(obj, state)
    if not _fitted(state, "_bisecting_tree"):
        return
    n_features = _n_features(state)
    if "_X_mean" in state:
        _center("_X_mean", state["_X_mean"], n_features)
    root = state["_bisecting_tree"]
    kind = type(root)
    if kind.__name__ != "_BisectingTree":
        raise TypeError(f"_bisecting_tree must be a _BisectingTree, not {kind.__name__}")
    seen: set[int] = set()
    todo = [("_bisecting_tree", root)]
    while todo:
        where, node = todo.pop()
        if id(node) in seen:
            raise ValueError(f"{where} is a node the tree already holds")
        seen.add(id(node))
        members = getattr(node, "__dict__", {})
        _center(f"{where}.center", members.get("center"), n_features)
        left, right = members.get("left"), members.get("right")
        if left is None and right is None:
            continue
        for side, child in (("left", left), ("right", right)):
            if type(child) is not kind:
                raise TypeError(
                    f"{where}.{side} must be a _BisectingTree beside its sibling, "
                    f"not {type(child).__name__}"
                )
            todo.append((f"{where}.{side}", child))


def birch_state(obj: Any, state: Any) -> None:
    """``predict`` hands the compiled nearest-center search ``_subcluster_norms`` as the
    squared norms of ``subcluster_centers_``, read one a center: a shorter array is read
    past its end (measured: 1 norm for 1,131 centers changed the predictions, no error)."""
    if not _fitted(state, "subcluster_centers_"):
        return
    centers = state["subcluster_centers_"]
    if type(centers) is not np.ndarray or centers.ndim != 2:
        raise TypeError("subcluster_centers_ must be a 2-D array")
    n_features = _n_features(state)
    if centers.shape[1] != n_features:
        raise ValueError(
            f"subcluster_centers_ has {centers.shape[1]} columns but n_features_in_ = {n_features}"
        )
    if "_subcluster_norms" in state:
        norms = array("_subcluster_norms", state["_subcluster_norms"], kind="iuf", ndim=1)
        if len(norms) != len(centers):
            raise ValueError(
                f"_subcluster_norms has {len(norms)} values for {len(centers)} subcluster_centers_"
            )


def _center(where: str, x: Any, n_features: int) -> None:
    """A point: ``n_features`` floats, as a row (``X.mean(axis=0)`` of sparse X is a
    1 x n matrix)."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"{where} must be an array of floats, not {type(x).__name__}")
    if not (x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1)) or x.size != n_features:
        raise ValueError(
            f"{where} has shape {x.shape}, not a point of n_features_in_ = {n_features} values"
        )


# -- one-hot encoding ---------------------------------------------------------------------------


def one_hot_state(obj: Any, state: Any) -> None:
    """``transform`` builds a sparse matrix of ``sum(_n_features_outs)`` columns whose
    column indices are each feature's category code (its place in ``categories_``),
    grouped by ``_default_to_infrequent_mappings`` and shifted past the dropped category,
    plus the feature's offset; scipy does not look at them, and densifying the matrix
    writes past its end. So every code a feature can give must be below its
    ``_n_features_outs`` entry, which must be what fit computes."""
    if not _fitted(state, "_n_features_outs"):
        return
    n = _n_features(state)
    categories = _sequence("categories_", state.get("categories_"))
    outs = _sequence("_n_features_outs", state["_n_features_outs"])
    enabled = boolean("_infrequent_enabled", state.get("_infrequent_enabled", False))
    none = [None] * n
    infrequent = (
        _sequence("_infrequent_indices", state.get("_infrequent_indices")) if enabled else none
    )
    mappings = (
        _sequence("_default_to_infrequent_mappings", state.get("_default_to_infrequent_mappings"))
        if enabled
        else none
    )
    drops = state.get("_drop_idx_after_grouping")
    drops = (
        none
        if drops is None
        else list(array("_drop_idx_after_grouping", drops, kind="iuO", ndim=1))
    )
    for name, seq in (
        ("categories_", categories),
        ("_n_features_outs", outs),
        ("_infrequent_indices", infrequent),
        ("_default_to_infrequent_mappings", mappings),
        ("_drop_idx_after_grouping", drops),
    ):
        if len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries but n_features_in_ = {n}")
    for i in range(n):
        codes = _category_count(f"categories_[{i}]", categories[i])
        if (infrequent[i] is None) != (mappings[i] is None):
            raise ValueError(
                f"_infrequent_indices[{i}] and _default_to_infrequent_mappings[{i}] "
                "must both be None or neither"
            )
        if infrequent[i] is not None:  # the infrequent categories become one code
            rare = array(f"_infrequent_indices[{i}]", infrequent[i], kind="iu", ndim=1)
            _codes_below(f"_infrequent_indices[{i}]", rare, codes)
            if not 1 <= len(rare) <= codes:
                raise ValueError(f"_infrequent_indices[{i}] has {len(rare)} of {codes} categories")
            codes -= len(rare) - 1
            mapping = array(f"_default_to_infrequent_mappings[{i}]", mappings[i], kind="iu", ndim=1)
            _codes_below(f"_default_to_infrequent_mappings[{i}]", mapping, codes)
        if drops[i] is not None:  # the dropped code is masked, the ones after it shift down
            integer(f"_drop_idx_after_grouping[{i}]", drops[i], 0, codes - 1)
            codes -= 1
        width = integer(f"_n_features_outs[{i}]", outs[i], 0)
        if width != codes:
            raise ValueError(
                f"_n_features_outs[{i}] = {width} but its categories give {codes} columns"
            )


def _category_count(where: str, categories: Any) -> int:
    """How many codes ``categories`` gives. Numbers, dates and bools are coded by a sorted
    search (which gives codes past an unsorted array's end), so they must be sorted, a NaN
    or NaT last; strings and objects are coded by a dict."""
    c = array(where, categories, kind="biufmMOUS", ndim=1)
    if c.dtype.kind not in "OUS" and len(c) > 1:
        kind = c.dtype.kind
        missing_last = (kind == "f" and np.isnan(c[-1])) or (kind in "mM" and np.isnat(c[-1]))
        body = c[:-1] if missing_last else c
        if not np.all(body[:-1] < body[1:]):
            raise ValueError(f"{where} is not sorted (a NaN or NaT last), as fit leaves it")
    return len(c)


def _codes_below(where: str, codes: Any, bound: int) -> None:
    if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= bound):
        raise ValueError(f"{where} holds codes outside [0, {bound})")


# -- iterative transforms ------------------------------------------------------------------------

# The iteration counts a transform runs its solver to (and fit-only ones of the same classes):
# with a tolerance of 0 the loop runs to the count. Defaults are 100 to 1,000.
MAX_ITERATIONS = 1_000_000
_ITERATION_COUNTS = ("max_iter", "_transform_max_iter", "transform_max_iter", "max_doc_update_iter")


def iteration_state(obj: Any, state: Any) -> None:
    """``NMF`` (``max_iter``), ``MiniBatchNMF`` (``_transform_max_iter``), the dictionary
    learners (``transform_max_iter``) and ``LatentDirichletAllocation``
    (``max_doc_update_iter``) iterate their solver in ``transform`` up to a count: at most
    :data:`MAX_ITERATIONS` (a file's ``2**62`` with ``tol = 0`` never returns). The NMFs'
    ``_n_components`` is the rows of ``components_``."""
    if type(state) is not dict:
        return
    for name in _ITERATION_COUNTS:
        if state.get(name) is not None:
            integer(name, state[name], 0, MAX_ITERATIONS)
    # NMF and MiniBatchNMF: transform allocates _n_components columns a sample before it
    # multiplies them with components_, whose rows fit made that many (2**40: MemoryError).
    if "_n_components" in state and "components_" in state:
        count = integer("_n_components", state["_n_components"], 1)
        rows = len(array("components_", state["components_"], kind="f", ndim=2))
        if count != rows:
            raise ValueError(f"_n_components = {count} but components_ has {rows} rows")


# -- counts that size an output, which fit takes from the model's own arrays -------------------

SPLINE_TRANSFORMER = "sklearn.preprocessing._polynomial.SplineTransformer"
LOCALLY_LINEAR_EMBEDDING = "sklearn.manifold._locally_linear.LocallyLinearEmbedding"
COUNT_SKETCH = "sklearn.kernel_approximation.PolynomialCountSketch"


def spline_state(obj: Any, state: Any) -> None:
    """``transform`` allocates ``n_features_out_`` columns a sample (and one a feature more
    without the bias), then writes ``n_splines`` of them a feature, ``n_splines`` the
    columns of ``bsplines_[0].c``: fit sets the count from those (``2**40``: MemoryError)."""
    if not _fitted(state, "bsplines_"):
        return
    n = _n_features(state)
    splines = _sequence("bsplines_", state["bsplines_"])
    if len(splines) != n:
        raise ValueError(f"bsplines_ holds {len(splines)} splines but n_features_in_ = {n}")
    coef = array("bsplines_[0].c", getattr(splines[0], "c", None), kind="f", ndim=2)
    bias = boolean("include_bias", state.get("include_bias"))
    columns = n * (coef.shape[1] - 1 + bias)
    declared = integer("n_features_out_", state.get("n_features_out_"), 0)
    if declared != columns:
        raise ValueError(
            f"n_features_out_ = {declared} but {n} features of {coef.shape[1]} splines "
            f"{'with' if bias else 'without'} the bias give {columns} columns"
        )


def locally_linear_state(obj: Any, state: Any) -> None:
    """``transform`` allocates ``n_components`` columns a sample, then fills each row from
    rows of ``embedding_``, whose columns fit made that many (``2**40``: MemoryError)."""
    if not _fitted(state, "embedding_"):
        return
    embedding = array("embedding_", state["embedding_"], kind="f", ndim=2)
    count = integer("n_components", state.get("n_components"), 1)
    if count != embedding.shape[1]:
        raise ValueError(f"n_components = {count} but embedding_ has {embedding.shape[1]} columns")


def count_sketch_state(obj: Any, state: Any) -> None:
    """``transform`` allocates ``degree`` sketches a sample, then fills sketch ``d`` from
    row ``d`` of ``indexHash_`` and ``bitHash_``, which fit draws ``degree`` rows of
    (``degree = 2**40``: MemoryError). ``n_components``, the sketches' width, is a
    hyperparameter the arrays only bound (docs/handlers/sklearn.md §5)."""
    if not _fitted(state, "indexHash_"):
        return
    degree = integer("degree", state.get("degree"), 1)
    shapes = []
    for name, kind in (("indexHash_", "iu"), ("bitHash_", "iuf")):  # bitHash_: +-1
        x = array(name, state.get(name), kind=kind, ndim=2)
        if x.shape[0] != degree:
            raise ValueError(f"degree = {degree} but {name} has {x.shape[0]} rows")
        shapes.append(x.shape)
    if shapes[0] != shapes[1]:
        raise ValueError(f"indexHash_ has shape {shapes[0]} but bitHash_ {shapes[1]}")


# -- polynomial features ----------------------------------------------------------------------

# PolynomialFeatures' transform loops over every degree up to _max_degree, even past the
# last that adds a column (interaction_only: none past n_features_in_): a 700-byte file
# fitted with degree=10**9 made transform of five rows run for hours. Degrees in use are
# single figures; this bound costs a loop of a thousand steps.
MAX_DEGREE = 1000


def polynomial_state(obj: Any, state: Any) -> None:
    """``transform`` writes ``_n_out_full`` columns, which fit computes from the degrees,
    the width and the flags, and loops over every degree up to ``_max_degree``: both must
    be what fit computes, and the degree at most :data:`MAX_DEGREE`."""
    if not _fitted(state, "n_output_features_"):
        return
    n = _n_features(state)
    low = integer("_min_degree", state.get("_min_degree"), 0, MAX_DEGREE)
    high = integer("_max_degree", state.get("_max_degree"), low, MAX_DEGREE)
    interaction = boolean("interaction_only", state.get("interaction_only"))
    bias = boolean("include_bias", state.get("include_bias"))
    for name, start in (("n_output_features_", low), ("_n_out_full", 0)):
        declared = integer(name, state.get(name), 0)
        terms = _polynomial_terms(n, start, high, interaction=interaction, bias=bias, stop=declared)
        if terms != declared:
            shown = f"over {declared}" if terms > declared else str(terms)
            raise ValueError(
                f"{name} = {declared} but degrees {start} to {high} of {n} features "
                f"give {shown} columns"
            )


def _polynomial_terms(
    n: int, low: int, high: int, *, interaction: bool, bias: bool, stop: int
) -> int:
    """The columns PolynomialFeatures makes of ``n`` features with degrees ``low`` to
    ``high`` (scikit-learn's ``_num_combinations``), counted degree by degree and given up
    once over ``stop`` (the count can be a number of millions of digits)."""
    total = 1 if bias else 0
    for degree in range(max(1, low), (min(high, n) if interaction else high) + 1):
        total += math.comb(n, degree) if interaction else math.comb(n + degree - 1, degree)
        if total > stop:
            break
    return total


def _sequence(name: str, x: Any) -> list[Any]:
    if type(x) is list:
        return x
    if type(x) is np.ndarray and x.ndim == 1:
        return list(x)
    raise TypeError(f"{name} must be a list")


# -- support vector machines (libsvm) -------------------------------------------------------


# libsvm takes offsets from the counts and, with a precomputed kernel, indices from support_.
private_svm = private_members("_n_support", "support_")


def svm_state(obj: Any, state: Any) -> None:
    """libsvm's ``set_model`` sizes the model from these arrays without checking them
    against each other: ``m = len(_n_support)`` classes, ``m (m - 1) / 2`` intercepts
    (and probability pairs) copied, ``m - 1`` rows of dual coefficients, and the support
    vectors of class ``i`` found at the sum of the counts before it. A file whose arrays
    disagree makes ``predict`` read past them (scikit-learn checks only the sum of the
    counts, and only for dense models); a precomputed kernel reads the input at the
    indices ``support_`` holds."""
    if not _fitted(state, "support_"):
        return
    impl = state.get("_impl", getattr(type(obj), "_impl", None))  # a class attribute
    known = _SVM_CLASSIFIERS + _SVM_OTHERS
    if impl not in known:
        raise ValueError(f"_impl = {impl!r} is not one of libsvm's {known}")
    support = array("support_", state["support_"], kind="i", ndim=1, itemsizes=(4,))
    n_support = array("_n_support", state.get("_n_support"), kind="i", ndim=1, itemsizes=(4,))
    n = len(support)
    m = len(n_support)
    if impl in _SVM_CLASSIFIERS:
        if m < 2:
            raise ValueError(f"_n_support has {m} entries; a classifier has 2 classes or more")
        if (n_support < 0).any() or int(n_support.sum(dtype=np.int64)) != n:
            raise ValueError(
                f"_n_support sums to {int(n_support.sum(dtype=np.int64))} (or holds a negative "
                f"count) but there are {n} support vectors"
            )
    elif m != 2:
        raise ValueError(f"_n_support has {m} entries; libsvm's {impl} model has 2")
    pairs = m * (m - 1) // 2
    intercept = array("_intercept_", state.get("_intercept_"), kind="f", ndim=1, itemsizes=(8,))
    if len(intercept) != pairs:
        raise ValueError(f"_intercept_ has {len(intercept)} values; {m} classes need {pairs}")
    probability = _svm_probability(state)
    for key in ("_probA", "_probB"):
        prob = array(key, state.get(key), kind="f", ndim=1, itemsizes=(8,))
        if len(prob) not in ((pairs,) if probability else (0, pairs)):
            need = f"with probability set need {pairs}" if probability else f"need 0 or {pairs}"
            raise ValueError(f"{key} has {len(prob)} values; {m} classes {need}")
    shape_fit = state.get("shape_fit_")
    if type(shape_fit) is not tuple or not shape_fit:
        raise TypeError("shape_fit_ must be the tuple of the training data's shape")
    rows = integer("shape_fit_[0]", shape_fit[0], 1)
    if n and (int(support.min()) < 0 or int(support.max()) >= rows):
        raise ValueError(f"support_ holds an index outside the {rows} training rows")
    sparse = state.get("_sparse")
    if type(sparse) is not bool:
        raise TypeError("_sparse must be True or False")
    vectors, dual = state.get("support_vectors_"), state.get("_dual_coef_")
    if sparse:
        _svm_sparse(vectors, dual, m, n)
        return
    dual = array("_dual_coef_", dual, kind="f", ndim=2, itemsizes=(8,))
    if dual.shape != (m - 1, n):
        raise ValueError(f"_dual_coef_ has shape {dual.shape}; expected {(m - 1, n)}")
    vectors = array("support_vectors_", vectors, kind="f", ndim=2, itemsizes=(8,))
    kernel = state.get("kernel")
    # A precomputed or callable kernel keeps no support vectors (libsvm reads the kernel).
    if type(kernel) is str and kernel != "precomputed" and len(vectors) != n:
        raise ValueError(f"support_vectors_ has {len(vectors)} rows but support_ {n}")


def _svm_probability(state: dict[str, Any]) -> bool:
    """Whether libsvm is told the model has probability pairs: then ``set_model`` copies
    ``m (m - 1) / 2`` values from ``_probA`` and ``_probB`` whatever their length, which
    reads past an empty array (a sparse model's ``predict`` ends in SIGSEGV). scikit-learn
    1.9 hands libsvm ``_effective_probability``; earlier versions, ``probability``."""
    effective = boolean("_effective_probability", state.get("_effective_probability", False))
    probability = state.get("probability", False)
    if type(probability) is str and probability == "deprecated":
        return effective
    if not isinstance(probability, bool | np.bool_):
        raise TypeError(
            f"probability must be a bool or 'deprecated', not {type(probability).__name__}"
        )
    return effective or bool(probability)


def _svm_sparse(vectors: Any, dual: Any, m: int, n: int) -> None:
    """A sparse model: libsvm counts its support vectors from the rows of the CSR
    ``support_vectors_`` and reads ``(m - 1) * n`` dual coefficients from ``.data``."""
    import scipy.sparse

    for name, x in (("support_vectors_", vectors), ("_dual_coef_", dual)):
        if not scipy.sparse.issparse(x) or x.format != "csr":
            raise TypeError(f"{name} of a sparse model must be a CSR matrix")
    if vectors.shape[0] != n:
        raise ValueError(f"support_vectors_ has {vectors.shape[0]} rows but support_ {n}")
    if dual.shape != (m - 1, n) or dual.data.size != (m - 1) * n:
        raise ValueError(
            f"_dual_coef_ has shape {dual.shape} and {dual.data.size} stored values; "
            f"expected {(m - 1, n)} and all {(m - 1) * n}"
        )


# -- vectorizers ------------------------------------------------------------------------------


def token_pattern_state(obj: Any, state: Any) -> None:
    """``transform`` runs ``re.findall(token_pattern, document)``: a pattern whose matching
    can take exponential time (:mod:`._patterns`) would never end on an ordinary document."""
    if type(state) is dict and "token_pattern" in state:
        check_pattern("token_pattern", state["token_pattern"])


def hasher_state(obj: Any, state: Any) -> None:
    """``transform`` reduces every hash modulo ``n_features`` in compiled code: 0 divides by
    zero (SIGFPE). scikit-learn allows 1 to 2**31 - 1."""
    if type(state) is dict and "n_features" in state:
        integer("n_features", state["n_features"], 1, 2**31 - 1)


def hashing_vectorizer_state(obj: Any, state: Any) -> None:
    """A HashingVectorizer's pattern and its hasher's width."""
    token_pattern_state(obj, state)
    hasher_state(obj, state)


def text_vectorizer_state(obj: Any, state: Any) -> None:
    """A CountVectorizer's or TfidfVectorizer's pattern and vocabulary."""
    token_pattern_state(obj, state)
    vocabulary_state(obj, state)


def vocabulary_state(obj: Any, state: Any) -> None:
    """``transform`` builds a sparse matrix of ``len(vocabulary_)`` columns whose column
    indices are the vocabulary's values, which scipy's constructor does not look at: a
    value past the columns makes the next product with the matrix (a linear model's
    ``predict``) read past its operand. Values are read as numpy reads them into the
    index array (``np.asarray(..., dtype=int)``), and each must name a column."""
    if not _fitted(state, "vocabulary_"):
        return
    vocabulary = state["vocabulary_"]
    if type(vocabulary) is not dict:
        raise TypeError(f"vocabulary_ must be a dict, not {type(vocabulary).__name__}")
    n = len(vocabulary)
    try:
        columns = np.fromiter(vocabulary.values(), dtype=np.int64, count=n)
    except (TypeError, ValueError, OverflowError):
        raise TypeError("vocabulary_ maps a term to something that is not a column index") from None
    if not n:
        return
    lo, hi = int(columns.min()), int(columns.max())
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        raise ValueError(f"vocabulary_ maps a term to column {bad}, outside its {n} columns")
