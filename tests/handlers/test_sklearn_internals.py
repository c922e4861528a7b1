"""scikit-learn's compiled internals: the conformance suite on fitted estimators that hold
them, real models of every shape passing the validators, and crafted files that must
fail to load with a ``FormatError`` naming the class and the broken invariant.

Crafted files are real ``modelsafe.dumps`` output edited as an attacker would
(``Surgery``): change an array or a header value, re-lay the buffers, re-seal the
digests. They are loaded in a child process (``_crafted_results``) that also calls the
model's prediction methods when a file loads after all, so a crash at load *or* at
predict time is reported as the signal that killed the child, never lost.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import modelsafe

from .. import _user_subclasses
from .._crafting import frame, lay_out, split, used_types
from .._user_subclasses import SUBCLASSES
from ..compare import assert_same
from .conformance import REPO, HandlerConformance

# -- data and models ---------------------------------------------------------------------------


def _data() -> dict[str, np.ndarray[Any, Any]]:
    """Fixed inputs: scikit-learn's iris (with missing values punched in), and generated
    regression and categorical data."""
    from sklearn.datasets import load_iris, make_regression

    x_iris, y_iris = load_iris(return_X_y=True)
    x_nan = x_iris.copy()
    x_nan[::7, 1] = np.nan
    x_reg, y_reg = make_regression(120, 5, n_targets=2, random_state=0)
    rng = np.random.default_rng(0)
    x_cat = np.c_[rng.integers(0, 6, 300), rng.normal(size=(300, 3))]
    y_cat = ((x_cat[:, 0] % 2 == 0) ^ (x_cat[:, 2] > 0)).astype(int)
    docs = [" ".join(f"w{j}" for j in rng.integers(0, 30, 8)) for _ in range(60)]
    return {
        "iris": x_iris,
        "y_iris": y_iris,
        "y_iris2": np.c_[y_iris, y_iris % 2],  # two outputs
        "iris_nan": x_nan,
        "reg": x_reg,
        "y_reg": y_reg,
        "cat": x_cat,
        "y_cat": y_cat,
        "iris_gram": x_iris @ x_iris.T,  # a precomputed linear kernel
        "docs": np.array(docs),
        "tokens": np.array([d.split() for d in docs]),  # a FeatureHasher's strings
        "codes": np.c_[x_cat[:, 0], x_cat[:, 0] % 3],  # categories 0-5 and 0-2
        "records": np.array([{f"f{j}": float(j)} for j in rng.integers(0, 9, 60)]),
    }


DATA = _data()


def _fit(make: Callable[[], Any], x: str, y: str | None = None, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and the like: not what is tested
        model = make()
        return model.fit(DATA[x], None if y is None else DATA[y], **kw)


def _y_reg0() -> Any:
    return DATA["y_reg"][:, 0]


def _sparse_iris() -> Any:
    import scipy.sparse

    return scipy.sparse.csr_matrix(DATA["iris"])


def _sparse_reg() -> Any:
    import scipy.sparse

    return scipy.sparse.csr_matrix(DATA["reg"])


def _models() -> dict[str, tuple[Callable[[], Any], str]]:
    """Name -> (factory of a fitted model, name of the input its methods are called on)."""
    from sklearn import ensemble as en
    from sklearn import neighbors as nb
    from sklearn import svm, tree
    from sklearn.cluster import Birch, BisectingKMeans, FeatureAgglomeration, KMeans
    from sklearn.decomposition import NMF, LatentDirichletAllocation, MiniBatchNMF
    from sklearn.feature_extraction import DictVectorizer, FeatureHasher, text
    from sklearn.kernel_approximation import PolynomialCountSketch
    from sklearn.linear_model import LogisticRegression
    from sklearn.manifold import LocallyLinearEmbedding
    from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, SplineTransformer

    maha = {"VI": np.linalg.inv(np.cov(DATA["iris"].T))}
    return {
        "decision_tree_classifier": (
            lambda: _fit(lambda: tree.DecisionTreeClassifier(random_state=0), "iris_nan", "y_iris"),
            "iris_nan",
        ),
        "decision_tree_regressor_multioutput": (
            lambda: _fit(lambda: tree.DecisionTreeRegressor(random_state=0), "reg", "y_reg"),
            "reg",
        ),
        "random_forest": (
            lambda: _fit(
                lambda: en.RandomForestClassifier(5, max_depth=4, random_state=0),
                "iris_nan",
                "y_iris",
            ),
            "iris_nan",
        ),
        "random_forest_multioutput": (
            lambda: _fit(lambda: en.ExtraTreesClassifier(3, random_state=0), "iris", "y_iris2"),
            "iris",
        ),
        "extra_trees": (
            lambda: _fit(lambda: en.ExtraTreesRegressor(4, random_state=0), "reg", "y_reg"),
            "reg",
        ),
        "isolation_forest": (
            lambda: _fit(
                lambda: en.IsolationForest(n_estimators=4, max_features=3, random_state=0), "reg"
            ),
            "reg",
        ),
        "gradient_boosting": (
            lambda: _fit(
                lambda: en.GradientBoostingClassifier(n_estimators=5, random_state=0),
                "iris",
                "y_iris",
            ),
            "iris",
        ),
        # 10 stages x 3 classes: the 30 trees are a run, stored column by column ("objs")
        "random_forest_run": (
            lambda: _fit(
                lambda: en.RandomForestClassifier(12, max_depth=4, random_state=0),
                "iris_nan",
                "y_iris",
            ),
            "iris_nan",
        ),
        "gradient_boosting_run": (
            lambda: _fit(
                lambda: en.GradientBoostingClassifier(n_estimators=10, random_state=0),
                "iris",
                "y_iris",
            ),
            "iris",
        ),
        "gradient_boosting_huber": (
            lambda: en.GradientBoostingRegressor(n_estimators=5, loss="huber", random_state=0).fit(
                DATA["reg"], _y_reg0()
            ),
            "reg",
        ),
        "hist_gradient_boosting": (
            lambda: _fit(
                lambda: en.HistGradientBoostingClassifier(max_iter=5, random_state=0),
                "iris_nan",
                "y_iris",
            ),
            "iris_nan",
        ),
        "hist_gradient_boosting_categorical": (
            lambda: _fit(
                lambda: en.HistGradientBoostingClassifier(
                    max_iter=5, categorical_features=[0], random_state=0
                ),
                "cat",
                "y_cat",
            ),
            "cat",
        ),
        "kneighbors_kd_tree": (
            lambda: _fit(lambda: nb.KNeighborsClassifier(algorithm="kd_tree"), "iris", "y_iris"),
            "iris",
        ),
        "kneighbors_ball_tree": (
            lambda: _fit(
                lambda: nb.KNeighborsClassifier(algorithm="ball_tree", metric="manhattan"),
                "iris",
                "y_iris",
            ),
            "iris",
        ),
        "kernel_density": (
            lambda: nb.KernelDensity(algorithm="ball_tree").fit(
                DATA["iris"], sample_weight=np.arange(1.0, 151.0)
            ),
            "iris",
        ),
        "nearest_neighbors_mahalanobis": (
            lambda: _fit(
                lambda: nb.NearestNeighbors(
                    algorithm="ball_tree", metric="mahalanobis", metric_params=maha
                ),
                "iris",
            ),
            "iris",
        ),
        "kmeans": (
            lambda: _fit(lambda: KMeans(3, n_init=2, random_state=0), "iris"),
            "iris",
        ),
        "bisecting_kmeans": (
            lambda: _fit(lambda: BisectingKMeans(3, random_state=0), "iris"),
            "iris",
        ),
        "bisecting_kmeans_sparse": (
            lambda: BisectingKMeans(3, random_state=0).fit(_sparse_iris()),
            "iris",
        ),
        "birch": (lambda: _fit(lambda: Birch(n_clusters=3), "iris"), "iris"),
        "feature_agglomeration": (lambda: _fit(lambda: FeatureAgglomeration(2), "iris"), "iris"),
        "radius_neighbors": (
            lambda: _fit(lambda: nb.RadiusNeighborsClassifier(radius=1.5), "iris", "y_iris"),
            "iris",
        ),
        "kneighbors_multioutput": (
            lambda: _fit(lambda: nb.KNeighborsClassifier(algorithm="brute"), "iris", "y_iris2"),
            "iris",
        ),
        "voting_hard": (
            lambda: _fit(
                lambda: en.VotingClassifier(
                    [
                        ("lr", LogisticRegression(max_iter=500)),
                        ("tree", tree.DecisionTreeClassifier(random_state=0)),
                    ]
                ),
                "iris",
                "y_iris",
            ),
            "iris",
        ),
        "nmf": (lambda: _fit(lambda: NMF(2, max_iter=50, random_state=0), "iris"), "iris"),
        "minibatch_nmf": (
            lambda: _fit(lambda: MiniBatchNMF(2, max_iter=5, random_state=0), "iris"),
            "iris",
        ),
        "lda": (
            lambda: _fit(lambda: LatentDirichletAllocation(2, max_iter=5, random_state=0), "iris"),
            "iris",
        ),
        "one_hot": (  # categories 1-3 of the first feature are grouped as infrequent
            lambda: _fit(lambda: OneHotEncoder(max_categories=4, drop="first"), "codes"),
            "codes",
        ),
        "polynomial_interactions": (
            lambda: _fit(lambda: PolynomialFeatures(3, interaction_only=True), "iris"),
            "iris",
        ),
        "spline": (lambda: _fit(SplineTransformer, "iris"), "iris"),
        "locally_linear": (
            lambda: _fit(lambda: LocallyLinearEmbedding(n_neighbors=10, random_state=0), "iris"),
            "iris",
        ),
        "count_sketch": (
            lambda: _fit(lambda: PolynomialCountSketch(n_components=8, random_state=0), "iris"),
            "iris",
        ),
        "bagging": (
            lambda: _fit(
                lambda: en.BaggingClassifier(n_estimators=3, random_state=0), "iris", "y_iris"
            ),
            "iris",
        ),
        "svc": (lambda: _fit(svm.SVC, "iris", "y_iris"), "iris"),
        "svc_sparse": (lambda: svm.SVC().fit(_sparse_iris(), DATA["y_iris"]), "iris"),
        "svc_precomputed": (
            lambda: _fit(lambda: svm.SVC(kernel="precomputed"), "iris_gram", "y_iris"),
            "iris_gram",
        ),
        "svr": (lambda: svm.SVR().fit(DATA["reg"], _y_reg0()), "reg"),
        "svr_sparse": (lambda: svm.SVR().fit(_sparse_reg(), _y_reg0()), "reg"),
        # probability=True is deprecated in scikit-learn 1.9 but still fits Platt pairs.
        "svc_probability": (
            lambda: _fit(lambda: svm.SVC(probability=True, random_state=0), "iris", "y_iris"),
            "iris",
        ),
        "count_vectorizer": (lambda: text.CountVectorizer().fit(DATA["docs"]), "docs"),
        "tfidf_vectorizer": (lambda: text.TfidfVectorizer().fit(DATA["docs"]), "docs"),
        "dict_vectorizer": (lambda: DictVectorizer().fit(DATA["records"]), "records"),
        "hashing_vectorizer": (
            lambda: text.HashingVectorizer(n_features=64).fit(DATA["docs"]),
            "docs",
        ),
        "feature_hasher": (
            lambda: FeatureHasher(32, input_type="string").fit(DATA["tokens"]),
            "tokens",
        ),
        "nearest_neighbors_seuclidean": (
            lambda: _fit(
                lambda: nb.NearestNeighbors(
                    algorithm="ball_tree",
                    metric="seuclidean",
                    metric_params={"V": DATA["iris"].var(0)},
                ),
                "iris",
            ),
            "iris",
        ),
    }


MODELS = _models()
# The same models saved with their trees as ``sk.tree`` nodes and their histogram boosting
# predictors as ``sk.hgbp`` nodes (the default writer's form);
# the other entries are edited in the generic ``call`` form (see ``full_form``).
COMPACT = {
    "decision_tree_compact": "decision_tree_classifier",
    "random_forest_compact": "random_forest",
    "hgb_compact": "hist_gradient_boosting",
    "hgb_categorical_compact": "hist_gradient_boosting_categorical",
    "gradient_boosting_run_compact": "gradient_boosting_run",
}
# Runs of estimators saved with their trees as one ``sk.trees`` column (the default
# writer's form for 8 or more), and histogram boosting models with their predictors as one
# ``sk.hgbps`` node (the default); the ``_compact`` entries above keep one node a tree.
TREE_RUNS = {
    "random_forest_trees": "random_forest_run",
    "gradient_boosting_trees": "gradient_boosting_run",
    "hgb_predictors": "hist_gradient_boosting",
    "hgb_categorical_predictors": "hist_gradient_boosting_categorical",
}
MODELS.update({name: MODELS[base] for name, base in {**COMPACT, **TREE_RUNS}.items()})
_METHODS = (
    "predict",
    "predict_proba",
    "decision_function",
    "score_samples",
    "apply",
    "decision_path",
    "transform",
    "kneighbors",
)


def outputs(model: Any, x: np.ndarray[Any, Any]) -> dict[str, str]:
    """A digest of everything the model's prediction methods return for ``x``."""
    out = {}
    for method in _METHODS:
        fn = getattr(model, method, None)
        if fn is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fn(x[:40])
        except (AttributeError, NotImplementedError):  # e.g. predict on unsupervised models
            continue
        out[method] = _digest(result)
    return out


def _digest(result: Any) -> str:
    h = hashlib.sha256()
    # A tuple (kneighbors) or a list (multi-output predict_proba) is digested part by part.
    for part in result if isinstance(result, tuple | list) else (result,):
        if hasattr(part, "toarray"):
            part = part.toarray()
        arr = np.asarray(part)
        h.update(str((arr.dtype.str, arr.shape)).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread() -> Iterator[None]:
    """Histogram boosting fits tiny data 5-100x faster on one thread than on two busy cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="openmp"):
        yield


# -- the conformance suite ------------------------------------------------------------------------


def _sample(name: str) -> Callable[[], Any]:
    return MODELS[name][0]


class TestSklearnInternals(HandlerConformance):
    library = ("sklearn", "scipy")
    samples: ClassVar[dict[str, Callable[[], Any]]] = {name: _sample(name) for name in MODELS}

    def assert_equal(self, expected: Any, got: Any) -> None:
        """The same state, the same parameters, the same predictions on fixed data."""
        assert_same(expected, got)
        assert_same(expected.get_params(), got.get_params())
        want = outputs(expected, _input_for(expected))
        assert want, f"{type(expected).__name__} has no prediction method to compare"
        assert outputs(got, _input_for(got)) == want

    @pytest.mark.parametrize("mmap", [None, "r", False], ids=["cow", "r", "read"])
    def test_round_trip_file(self, sample: str, mmap: Any, tmp_path: Path) -> None:
        if mmap == "r" and sample in _NEEDS_WRITABLE:
            # scikit-learn's libsvm predict_proba takes _dual_coef_, _intercept_, _probA
            # and _probB as writable memoryviews: it refuses read-only arrays, joblib's
            # mmap_mode="r" ones too (docs/handlers/sklearn.md). Fails once fixed upstream.
            with pytest.raises(ValueError, match="buffer source array is read-only"):
                super().test_round_trip_file(sample, mmap, tmp_path)
            return
        super().test_round_trip_file(sample, mmap, tmp_path)


_NEEDS_WRITABLE = frozenset({"svc_probability"})


def test_an_svm_fitted_with_a_numpy_bool_flag_loads() -> None:
    """scikit-learn takes ``probability=np.True_`` and keeps it as the flag libsvm is
    handed: the flag check must accept numpy bools as it accepts bools."""
    from sklearn.svm import SVC

    model = _fit(lambda: SVC(probability=np.True_, random_state=0), "iris", "y_iris")
    assert type(model._effective_probability) is np.bool_
    loaded = modelsafe.loads(modelsafe.dumps(model))
    assert outputs(loaded, DATA["iris"]) == outputs(model, DATA["iris"])


def test_a_loaded_bunch_saves_to_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Bunch.__setstate__`` drops the instance state, so it is not written: a loaded
    ``named_estimators_`` would otherwise save to other bytes than its file."""
    from sklearn.utils import Bunch

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # the metadata timestamp
    data = modelsafe.dumps({"named": Bunch(a=np.arange(3), b="x")})
    loaded = modelsafe.loads(data)
    assert type(loaded["named"]) is Bunch and loaded["named"].b == "x"
    assert modelsafe.dumps(loaded) == data


def test_loads_gives_padded_structured_arrays_back_byte_for_byte() -> None:
    """Tree node records have 7 padding bytes: ``loads`` must copy them, not leave them
    uninitialised (re-saving would otherwise write heap memory into the new file)."""
    dt = np.dtype(
        {"names": ["a", "b"], "formats": ["<i8", "u1"], "offsets": [0, 8], "itemsize": 16}
    )
    arr = np.zeros(64, dtype=dt)
    data = modelsafe.dumps(arr)
    for _ in range(20):
        dirty = np.full(arr.nbytes, 255, dtype=np.uint8)  # freed, then reusable by the copy
        del dirty
        assert modelsafe.loads(data).tobytes() == arr.tobytes()


def _input_for(model: Any) -> np.ndarray[Any, Any]:
    """The fixed input a sample's methods are called on, chosen by what it was fit on."""
    if getattr(model, "_preprocessor", None) is not None:
        return DATA["cat"]
    if hasattr(model, "categories_"):  # a OneHotEncoder
        return DATA["codes"]
    if getattr(model, "input_type", None) == "string":  # a FeatureHasher
        return DATA["tokens"]
    if hasattr(model, "vocabulary_") or hasattr(model, "token_pattern"):
        return DATA["records" if hasattr(model, "feature_names_") else "docs"]
    if model.n_features_in_ == 5:
        return DATA["reg"]
    if model.n_features_in_ == len(DATA["iris_gram"]):  # a precomputed kernel
        return DATA["iris_gram"]
    return DATA["iris_nan" if model.__sklearn_tags__().input_tags.allow_nan else "iris"]


# -- real models pass -----------------------------------------------------------------------------


def _variety() -> dict[str, Callable[[], Any]]:
    from sklearn import ensemble as en
    from sklearn import tree

    return {
        "best_first": lambda: _fit(
            lambda: tree.DecisionTreeClassifier(max_leaf_nodes=9, random_state=0), "iris", "y_iris"
        ),
        "pruned": lambda: _fit(
            lambda: tree.DecisionTreeClassifier(ccp_alpha=0.02, random_state=0), "iris", "y_iris"
        ),
        "stump": lambda: _fit(lambda: tree.DecisionTreeRegressor(max_depth=1), "reg", "y_reg"),
        "single_leaf": lambda: tree.DecisionTreeRegressor().fit(DATA["reg"], np.ones(120)),
        "extra_tree_nan": lambda: _fit(
            lambda: tree.ExtraTreeClassifier(random_state=0), "iris_nan", "y_iris"
        ),
        "deep_chain": lambda: tree.DecisionTreeRegressor(random_state=0).fit(
            np.arange(200.0).reshape(-1, 1), np.arange(200.0) ** 3
        ),
        # Missing values alone decide the split: sklearn stores an infinite threshold.
        "split_on_missingness": lambda: tree.DecisionTreeClassifier(random_state=0).fit(
            np.where(np.arange(150)[:, None] % 3 == 0, np.nan, DATA["iris"]),
            np.arange(150) % 3 == 0,
        ),
        "random_trees_embedding": lambda: _fit(
            lambda: en.RandomTreesEmbedding(n_estimators=3, random_state=0), "iris"
        ),
        "isolation_forest_all_features": lambda: _fit(
            lambda: en.IsolationForest(n_estimators=3, random_state=0), "reg"
        ),
        "gradient_boosting_binary": lambda: en.GradientBoostingClassifier(
            n_estimators=3, random_state=0
        ).fit(DATA["iris"], DATA["y_iris"] > 0),
        "gradient_boosting_zero_init": lambda: en.GradientBoostingRegressor(
            n_estimators=3, init="zero", random_state=0
        ).fit(DATA["reg"], _y_reg0()),
        "hgb_regressor_poisson": lambda: en.HistGradientBoostingRegressor(
            max_iter=4, loss="poisson"
        ).fit(DATA["reg"], np.abs(_y_reg0())),
    }


VARIETY = _variety()


@pytest.mark.parametrize("name", VARIETY)
def test_real_models_pass_validation(name: str) -> None:
    model = VARIETY[name]()
    got = modelsafe.loads(modelsafe.dumps(model))
    x = DATA["iris"] if model.n_features_in_ == 4 else DATA["reg"]
    if model.n_features_in_ == 1:
        x = np.linspace(-5, 205, 50).reshape(-1, 1)
    assert outputs(got, x) == outputs(model, x)


def test_tree_depths_match_sklearn() -> None:
    """The depth the validator computes (and demands of max_depth) is sklearn's own."""
    from modelsafe._handlers.sklearn._checks import binary_tree, depths

    for make in (*VARIETY.values(), MODELS["decision_tree_classifier"][0]):
        model = make()
        holders = getattr(model, "estimators_", [model])
        for est in np.ravel(np.asarray(holders, dtype=object)):
            t = getattr(est, "tree_", None)
            if t is None:
                continue
            left, right = t.children_left.astype(np.intp), t.children_right.astype(np.intp)
            mine = depths(binary_tree(("l", "r"), left, right, left == -1))
            assert np.array_equal(mine + 1, t.compute_node_depths())
            assert int(mine.max()) == t.max_depth


def test_nodes_from_other_platforms_load() -> None:
    """sklearn accepts tree nodes written big-endian or with 32-bit indices; so must the
    validator, and predictions stay the same."""
    model = MODELS["decision_tree_classifier"][0]()
    x = DATA["iris_nan"]
    intp = ("left_child", "right_child", "feature", "n_node_samples")
    for fields in ({}, dict.fromkeys(intp, "<i4")):
        with full_form():
            s = Surgery(modelsafe.dumps(model))
        path = (*s.find("call", "sklearn.tree._tree", "Tree"), "state", "nodes")
        nodes = s.array(path)
        descr = [(n, fields.get(n, nodes.dtype[n].str)) for n in nodes.dtype.names]
        if not fields:
            descr = [(n, nodes.dtype[n].newbyteorder(">").str) for n in nodes.dtype.names]
        s.put(path, nodes.astype(descr))
        assert outputs(modelsafe.loads(s.blob()), x) == outputs(model, x)


# -- crafting -------------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


@contextlib.contextmanager
def full_form(*, compact_trees: bool = False, tree_runs: bool = False) -> Iterator[None]:
    """Save every array with a buffer of its own rather than in the small-array table (a
    layout readers accept), so that a test can give any array another size; and decision
    trees in the generic ``call`` form (what older writers, and the reduce path, give)
    unless ``compact_trees``, which keeps their ``sk.tree`` nodes, one a tree unless
    ``tree_runs`` (the trees of a run of estimators as one ``sk.trees`` node, and a
    model's histogram boosting predictors as one ``sk.hgbps`` node)."""
    import modelsafe._handlers.numpy as handler
    import modelsafe._handlers.sklearn as sk_handler
    import modelsafe._handlers.sklearn._hgb as hgb_handler
    import modelsafe._handlers.sklearn._tree as tree_handler

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(handler, "SMALL_ARRAY", 0)
        if not compact_trees:
            mp.setattr(sk_handler, "encoder_for", lambda t: None)
        elif not tree_runs:
            mp.setattr(tree_handler, "merge_trees", lambda e, column: None)
            mp.setattr(hgb_handler, "merge_predictors", lambda e, root: root)
        yield


class Surgery:
    """A real file taken apart: its header tree and buffers, edited, then put back
    together with the layout, digests and ``types`` an honest writer would give."""

    def __init__(self, blob: bytes) -> None:
        p = split(blob)
        self.header = p.header
        assert "arrays" not in self.header, "save under full_form() to edit arrays"
        assert all(len(e) == 3 for e in self.header["buffers"]), "no compression here"
        self.buffers = [p.data[e[0] : e[0] + e[1]] for e in self.header["buffers"]]
        assert used_types(self.header["root"]) == self.header["types"]

    def node(self, path: Path_) -> Any:
        """The node at ``path``; a ``ref`` is followed to the node that defines its id."""
        node = self.header["root"]
        for key in path:
            node = self._definition(node[key])
        return node

    def _definition(self, node: Any) -> Any:
        if not (isinstance(node, dict) and node.get("$") == "ref"):
            return node
        stack = [self.header["root"]]
        while stack:
            x = stack.pop()
            if isinstance(x, dict):
                if x.get("id") == node["id"] and x.get("$") != "ref":
                    return x
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)
        raise AssertionError(f"id {node['id']} is not defined")

    def find(self, kind: str, module: str, name: str, nth: int = 0) -> Path_:
        """The path of the ``nth`` ``kind`` node naming ``module.name`` (depth first)."""
        found = []
        stack: list[tuple[Path_, Any]] = [((), self.header["root"])]
        while stack:
            path, node = stack.pop()
            if isinstance(node, dict):
                if (node.get("$"), node.get("module"), node.get("name")) == (kind, module, name):
                    found.append(path)
                stack.extend(((*path, k), v) for k, v in reversed(list(node.items())))
            elif isinstance(node, list):
                stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(node))))
        return found[nth]

    def array(self, path: Path_) -> np.ndarray[Any, Any]:
        from modelsafe._handlers.numpy import dtype_from_json

        node = self.node(path)
        dt = dtype_from_json(node["dtype"], allow_object=False)
        arr = np.frombuffer(self.buffers[node["buf"]], dtype=dt)
        order = node.get("order", "C")
        shape = node["shape"][::-1] if order == "F" else node["shape"]
        arr = arr.reshape(shape)
        return (arr.T if order == "F" else arr).copy()

    def put(self, path: Path_, arr: np.ndarray[Any, Any]) -> None:
        """Replace the array at ``path`` (its bytes, dtype and shape)."""
        from modelsafe._handlers.numpy import dtype_to_json

        node = self.node(path)
        assert "buf" in node and arr.nbytes, "replace arrays that have bytes"
        node["dtype"] = dtype_to_json(arr.dtype)
        node["shape"] = list(arr.shape)
        node.pop("order", None)
        self.buffers[node["buf"]] = np.ascontiguousarray(arr).tobytes()

    def new_array(self, arr: np.ndarray[Any, Any]) -> dict[str, Any]:
        """A node for a new array, with a buffer of its own at the end of the file."""
        from modelsafe._handlers.numpy import dtype_to_json

        self.buffers.append(np.ascontiguousarray(arr).tobytes())
        return {
            "$": "nd",
            "dtype": dtype_to_json(arr.dtype),
            "shape": list(arr.shape),
            "buf": len(self.buffers) - 1,
        }

    def edit(self, path: Path_, fn: Callable[[np.ndarray[Any, Any]], Any]) -> None:
        arr = self.array(path)
        fn(arr)
        self.put(path, arr)

    def set(self, path: Path_, value: Any) -> None:
        self.node(path[:-1])[path[-1]] = value  # the reference itself, if there is one

    def drop(self, path: Path_) -> None:
        """Remove the member or item at ``path``, and the buffers only it referenced."""
        gone = sorted(_buffers_in(self.node(path[:-1])[path[-1]]), reverse=True)
        del self.node(path[:-1])[path[-1]]
        for index in gone:
            del self.buffers[index]
        for holder, key in _buffer_members(self.header["root"]):
            holder[key] -= sum(1 for index in gone if index < holder[key])

    def blob(self) -> bytes:
        entries, data = lay_out(self.buffers)
        self.header["buffers"] = entries
        self.header["data_size"] = len(data)
        self.header["types"] = used_types(self.header["root"])
        return frame(self.header, data)


def _buffer_members(tree: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """(node, member) for every member holding a buffer index (no table: full form)."""
    stack = [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            tag = x.get("$")
            for key in ("buf", "codes", "ints", "floats", "strs"):
                if tag in ("nd", "bytes", "bytearray", "scalars") and type(x.get(key)) is int:
                    yield x, key
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)


def _buffers_in(tree: Any) -> set[int]:
    return {holder[key] for holder, key in _buffer_members(tree)}


_BLOBS: dict[str, bytes] = {}


def _surgery(model: str) -> Surgery:
    """A fresh Surgery on the full-form file of a sample model (saved once)."""
    if model not in _BLOBS:
        runs = model in TREE_RUNS
        with full_form(compact_trees=runs or model in COMPACT, tree_runs=runs):
            _BLOBS[model] = modelsafe.dumps(MODELS[model][0]())
    return Surgery(_BLOBS[model])


TREE = ("call", "sklearn.tree._tree", "Tree")
PREDICTOR = ("obj", "sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor")
BIN_MAPPER = ("obj", "sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper")
KD_NEW = ("call", "sklearn.neighbors._kd_tree", "newObj")
BALL_NEW = ("call", "sklearn.neighbors._ball_tree", "newObj")
METRIC_NEW = ("call", "sklearn.metrics._dist_metrics", "newObj")
HUBER = ("call", "sklearn._loss._loss", "CyHuberLoss")
MULTINOMIAL = ("call", "sklearn._loss._loss", "__pyx_unpickle_CyHalfMultinomialLoss")


def _at(s: Surgery, where: tuple[str, str, str], *rest: Any, nth: int = 0) -> Path_:
    return (*s.find(*where, nth=nth), *rest)


def _set_field(field: str, index: int, value: Any) -> Callable[[np.ndarray[Any, Any]], None]:
    def fn(arr: np.ndarray[Any, Any]) -> None:
        arr[field][index] = value

    return fn


def _internal(s: Surgery, nodes: Path_, leaf: Callable[[Any], Any], nth: int = 0) -> int:
    arr = s.array(nodes)
    return int(np.flatnonzero(~leaf(arr))[nth])


def _tree_leaf(a: Any) -> Any:
    return a["left_child"] == -1


def _hgb_leaf(a: Any) -> Any:
    return a["is_leaf"] == 1


# Each case: (model, edit of its Surgery, class the error names, text of the invariant).
Case = tuple[str, Callable[[Surgery], None], str, str]


def _tree_cases() -> dict[str, Case]:
    tree = "sklearn.tree._tree.Tree"
    dtc = "decision_tree_classifier"

    def nodes(s: Surgery) -> Path_:
        return _at(s, TREE, "state", "nodes")

    def second_parent(s: Surgery) -> None:
        # The root's right child becomes node 1's left child, which then has two parents.
        root, first_left = (_internal(s, nodes(s), _tree_leaf, k) for k in (0, 1))
        child = int(s.array(nodes(s))["left_child"][first_left])
        s.edit(nodes(s), _set_field("right_child", root, child))

    def shorter_values(s: Surgery) -> None:
        path = _at(s, TREE, "state", "values")
        s.put(path, s.array(path)[:, :, :2].copy())

    def float_features(s: Surgery) -> None:
        a = s.array(nodes(s))
        s.put(
            nodes(s),
            a.astype([(n, "<f8" if n == "feature" else a.dtype[n]) for n in a.dtype.names]),
        )

    return {
        "tree child out of range": (
            dtc,
            lambda s: s.edit(nodes(s), _set_field("left_child", 0, 900)),
            tree,
            "children_left[0] = 900 is outside [1, ",
        ),
        "tree cycle": (
            dtc,
            lambda s: s.edit(
                nodes(s), _set_field("right_child", _internal(s, nodes(s), _tree_leaf, 2), 0)
            ),
            tree,
            "does not come after node",
        ),
        "tree node with two parents": (
            dtc,
            second_parent,
            tree,
            "(every node but the root must have exactly one parent)",
        ),
        "tree half leaf": (
            dtc,
            lambda s: s.edit(
                nodes(s),
                _set_field("right_child", int(np.flatnonzero(_tree_leaf(s.array(nodes(s))))[0]), 1),
            ),
            tree,
            "a leaf has both children -1",
        ),
        "tree feature out of range": (
            dtc,
            lambda s: s.edit(nodes(s), _set_field("feature", 0, 10**9)),
            tree,
            "feature[0] = 1000000000 is outside [0, 4)",
        ),
        "tree negative feature": (
            dtc,
            lambda s: s.edit(nodes(s), _set_field("feature", 0, -(10**9))),
            tree,
            "feature[0] = -1000000000 is outside [0, 4)",
        ),
        "tree missing_go_to_left not a flag": (
            dtc,
            lambda s: s.edit(nodes(s), _set_field("missing_go_to_left", 3, 7)),
            tree,
            "missing_go_to_left[3] = 7 is not 0 or 1",
        ),
        "tree node_count larger than nodes": (
            dtc,
            lambda s: s.set(_at(s, TREE, "state", "node_count"), 100_000),
            tree,
            "node_count = 100000 but nodes holds",
        ),
        "tree max_depth below the real depth": (
            dtc,
            lambda s: s.set(_at(s, TREE, "state", "max_depth"), 1),
            tree,
            "max_depth = 1, but the deepest leaf is at depth",
        ),
        "tree values of the wrong shape": (dtc, shorter_values, tree, "values has shape"),
        "tree nodes of the wrong dtype": (dtc, float_features, tree, "field 'feature'"),
        "tree without state": (
            dtc,
            lambda s: s.drop(_at(s, TREE, "state")),
            tree,
            "a Tree needs its state",
        ),
        "tree n_outputs beyond n_classes": (
            dtc,
            lambda s: s.set(_at(s, TREE, "args", 2), 50),
            tree,
            "n_classes has 1 entries but n_outputs = 50",
        ),
        "tree zero classes": (
            dtc,
            lambda s: s.edit(_at(s, TREE, "args", 1), lambda a: a.__setitem__(0, 0)),
            tree,
            "n_classes[0] = 0 is not a positive count",
        ),
        "tree fewer features than it splits on": (
            dtc,
            lambda s: s.set(_at(s, TREE, "args", 0), 2),
            tree,
            "is outside [0, 2)",
        ),
        "decision tree wider than the model": (
            dtc,
            lambda s: s.set(("state", "n_features_in_"), 2),
            "sklearn.tree._classes.DecisionTreeClassifier",
            "tree_ splits on 4 features but the model takes 2",
        ),
        "decision tree with more outputs than its tree": (
            dtc,
            lambda s: s.set(("state", "n_outputs_"), 3),
            "sklearn.tree._classes.DecisionTreeClassifier",
            "n_outputs_ = 3 but tree_ has 1",
        ),
        "decision tree without n_features_in_": (
            dtc,
            lambda s: s.drop(("state", "n_features_in_")),
            "sklearn.tree._classes.DecisionTreeClassifier",
            "needs n_features_in_",
        ),
    }


def _ensemble_cases() -> dict[str, Case]:
    def stages(s: Surgery) -> None:
        s.set(("state", "n_trees_per_iteration_"), 1)

    def narrow_feature_subsets(s: Surgery) -> None:
        path = ("state", "estimators_features_", 0)
        s.put(path, s.array(path)[:2].copy())

    def one_class_init(s: Surgery) -> None:
        # predict_proba of this DummyClassifier has one column; the trees write to three.
        init = ("state", "init_", "state")
        s.set((*init, "n_classes_"), 1)
        for key in ("classes_", "class_prior_"):
            s.put((*init, key), s.array((*init, key))[:1].copy())

    return {
        "forest wider than its trees": (
            "random_forest",
            lambda s: s.set(("state", "n_features_in_"), 3),
            "sklearn.ensemble._forest.RandomForestClassifier",
            "estimators_[0].tree_ splits on 4 features but the model takes 3",
        ),
        "regression forest narrower than its trees": (
            "extra_trees",
            lambda s: s.set(("state", "n_features_in_"), 6),
            "sklearn.ensemble._forest.ExtraTreesRegressor",
            "splits on 5 features but the model takes 6",
        ),
        # predict_proba allocates n_classes_ columns a sample (2**40: a MemoryError; 10**6:
        # 1.2 GB asked for 150 rows), then fails to add the trees' three columns to them.
        "forest class count far over its classes": (
            "random_forest",
            lambda s: s.set(("state", "n_classes_"), 10**6),
            "sklearn.ensemble._forest.RandomForestClassifier",
            "n_classes_ = 1000000 but classes_ holds 3",
        ),
        "forest class count not an integer": (
            "random_forest",
            lambda s: s.set(("state", "n_classes_"), 3.0),
            "sklearn.ensemble._forest.RandomForestClassifier",
            "n_classes_ must be an integer, not float",
        ),
        "multi-output forest class count of one output": (
            "random_forest_multioutput",
            lambda s: s.set(("state", "n_classes_", 1), 2**40),
            "sklearn.ensemble._forest.ExtraTreesClassifier",
            "n_classes_[1] = 1099511627776 but classes_[1] holds 2",
        ),
        "multi-output forest with one class count": (
            "random_forest_multioutput",
            lambda s: s.set(("state", "n_classes_"), 3),
            "sklearn.ensemble._forest.ExtraTreesClassifier",
            "classes_ holds the labels of 2 outputs, so n_classes_ must be a list of as many",
        ),
        "forest without n_features_in_": (
            "random_forest",
            lambda s: s.drop(("state", "n_features_in_")),
            "sklearn.ensemble._forest.RandomForestClassifier",
            "needs n_features_in_",
        ),
        "isolation forest feature subsets per tree": (
            "isolation_forest",
            lambda s: s.drop(("state", "estimators_features_", 3)),
            "sklearn.ensemble._iforest.IsolationForest",
            "4 estimators_ but 3 estimators_features_",
        ),
        "isolation forest feature subset": (
            "isolation_forest",
            narrow_feature_subsets,
            "sklearn.ensemble._iforest.IsolationForest",
            "estimators_features_[0] has 2 columns, not 3",
        ),
        "isolation forest max_features": (
            "isolation_forest",
            lambda s: s.set(("state", "_max_features"), 2),
            "sklearn.ensemble._iforest.IsolationForest",
            "has 3 columns, not 2",
        ),
        "gradient boosting trees per stage": (
            "gradient_boosting",
            stages,
            "sklearn.ensemble._gb.GradientBoostingClassifier",
            "estimators_ has 3 trees per stage, n_trees_per_iteration_ = 1",
        ),
        "gradient boosting wider than its trees": (
            "gradient_boosting",
            lambda s: s.set(("state", "n_features_in_"), 2),
            "sklearn.ensemble._gb.GradientBoostingClassifier",
            "splits on 4 features but the model takes 2",
        ),
        # DummyRegressor.predict fills n_outputs_ columns with constant_, broadcast from one:
        # 10**6 made a 100-row predict return 10**8 values (1.7 GB, 2 s).
        "dummy regressor init of more outputs than its constant": (
            "gradient_boosting_huber",
            lambda s: s.set(("state", "init_", "state", "n_outputs_"), 10**6),
            "sklearn.dummy.DummyRegressor",
            "constant_ must be an array of shape (1, n_outputs_) = (1, 1000000), not (1, 1)",
        ),
        "dummy regressor init constant as a vector": (
            "gradient_boosting_huber",
            lambda s: s.put(("state", "init_", "state", "constant_"), np.zeros(1)),
            "sklearn.dummy.DummyRegressor",
            "constant_ must be an array of shape (1, n_outputs_) = (1, 1), not (1,)",
        ),
        "dummy regressor init of no outputs": (
            "gradient_boosting_huber",
            lambda s: s.set(("state", "init_", "state", "n_outputs_"), 0),
            "sklearn.dummy.DummyRegressor",
            "n_outputs_ = 0 is outside [1, inf]",
        ),
        "gradient boosting init narrower than the stages": (
            "gradient_boosting",
            one_class_init,
            "sklearn.ensemble._gb.GradientBoostingClassifier",
            "init_ predicts 1 column(s) but the model adds 3",
        ),
    }


def _hgb_cases() -> dict[str, Case]:
    pred = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    hgb = (
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier"
    )
    mapper = "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper"
    cat = "hist_gradient_boosting_categorical"

    def nodes(s: Surgery, nth: int = 0) -> Path_:
        return _at(s, PREDICTOR, "state", "nodes", nth=nth)

    def categorical_node(s: Surgery) -> tuple[Path_, int]:
        for k in range(5):
            a = s.array(nodes(s, k))
            hit = np.flatnonzero((a["is_leaf"] == 0) & (a["is_categorical"] == 1))
            if len(hit):
                return nodes(s, k), int(hit[0])
        raise AssertionError("no categorical split in the sample")

    def bitset_out_of_range(s: Surgery) -> None:
        path, i = categorical_node(s)
        s.edit(path, _set_field("bitset_idx", i, 4_000_000_000))  # ~128 GB past the bitsets

    def numerical_in_mapper(s: Surgery) -> None:
        s.edit(_at(s, BIN_MAPPER, "state", "is_categorical_"), lambda a: a.__setitem__(0, 0))

    def bitsets_shape(s: Surgery) -> None:
        path, _ = categorical_node(s)
        bits = (*path[:-1], "raw_left_cat_bitsets")
        s.put(bits, s.array(bits).reshape(-1, 4).copy())

    return {
        "predictor child out of range": (
            "hist_gradient_boosting",
            # Far beyond any mapping (the field is uint32): without validation, a sure crash.
            lambda s: s.edit(nodes(s), _set_field("left", 0, 4_000_000_000)),
            pred,
            "left[0] = 4000000000 is outside [1, ",
        ),
        "predictor cycle": (
            "hist_gradient_boosting",
            lambda s: s.edit(
                nodes(s), _set_field("right", _internal(s, nodes(s), _hgb_leaf, 0), 0)
            ),
            pred,
            "does not come after node",
        ),
        "predictor leaf flag": (
            "hist_gradient_boosting",
            lambda s: s.edit(nodes(s), _set_field("is_leaf", 0, 9)),
            pred,
            "is_leaf[0] = 9 is not 0 or 1",
        ),
        "predictor bitset out of range": (cat, bitset_out_of_range, pred, "bitset_idx["),
        "predictor bitsets of the wrong shape": (cat, bitsets_shape, pred, "expected (n, 8)"),
        "predictor without state": (
            "hist_gradient_boosting",
            lambda s: s.drop(_at(s, PREDICTOR, "state")),
            pred,
            "needs its state",
        ),
        "model narrower than its predictors": (
            "hist_gradient_boosting",
            lambda s: s.edit(nodes(s), _set_field("feature_idx", 0, 9)),
            hgb,
            "_predictors[0][0] node 0: feature_idx = 9 is outside [0, 4)",
        ),
        "model with other predictors per iteration": (
            "hist_gradient_boosting",
            lambda s: s.set(("state", "n_trees_per_iteration_"), 2),
            hgb,
            "_predictors[0] must be a list of 2 predictors",
        ),
        "categorical split on a numerical feature": (
            cat,
            numerical_in_mapper,
            hgb,
            "which the bin mapper holds as numerical",
        ),
        "bin mapper missing-values bin": (
            "hist_gradient_boosting",
            lambda s: s.set(_at(s, BIN_MAPPER, "state", "missing_values_bin_idx_"), 300),
            mapper,
            "missing_values_bin_idx_ = 300 is outside [0, 255]",
        ),
        "bin mapper thresholds per feature": (
            "hist_gradient_boosting",
            lambda s: s.node(_at(s, BIN_MAPPER, "state", "bin_thresholds_")).append(
                s.new_array(np.arange(3.0))
            ),
            mapper,
            "bin_thresholds_ 5",
        ),
        "bin mapper category out of range": (
            cat,
            lambda s: s.edit(
                _at(s, BIN_MAPPER, "state", "bin_thresholds_", 0), lambda a: a.__setitem__(0, 300)
            ),
            mapper,
            "not a category",
        ),
    }


def _neighbors_cases() -> dict[str, Case]:
    kd = "sklearn.neighbors._kd_tree.newObj"
    ball = "sklearn.neighbors._ball_tree.newObj"
    metric = "sklearn.metrics._dist_metrics.newObj"
    knn = "kneighbors_kd_tree"

    def state(s: Surgery, new: tuple[str, str, str], i: int) -> Path_:
        return _at(s, new, "state", "v", i)

    def duplicate_index(s: Surgery) -> None:
        s.edit(state(s, KD_NEW, 1), lambda a: a.__setitem__(0, a[1]))

    def last_level_not_leaf(s: Surgery) -> None:
        s.edit(state(s, KD_NEW, 2), _set_field("is_leaf", -1, 0))

    def bounds_shape(s: Surgery) -> None:
        path = state(s, KD_NEW, 3)
        b = s.array(path)
        s.put(path, b.reshape(b.shape[1], b.shape[0], b.shape[2]).copy())

    def mahalanobis(fn: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]) -> Any:
        def edit(s: Surgery) -> None:
            path = _at(s, METRIC_NEW, "state", "v", 2)
            s.put(path, fn(s.array(path)))

        return edit

    def short_weights(s: Surgery) -> None:
        path = state(s, BALL_NEW, 12)
        s.put(path, s.array(path)[:100].copy())

    def swap_metric(s: Surgery) -> None:
        s.set(_at(s, METRIC_NEW, "args", 0, "name"), "HaversineDistance64")

    def tree_as_metric(s: Surgery) -> None:
        s.set(
            _at(s, METRIC_NEW, "args", 0),
            {"$": "global", "module": "sklearn.neighbors._kd_tree", "name": "KDTree"},
        )

    def metric_as_tree(s: Surgery) -> None:
        s.set(
            _at(s, KD_NEW, "args", 0),
            {
                "$": "global",
                "module": "sklearn.metrics._dist_metrics",
                "name": "EuclideanDistance64",
            },
        )

    def made_with_new(
        new: tuple[str, str, str], module: str, name: str, edit: Callable[[Surgery], None]
    ) -> Callable[[Surgery], None]:
        """The object as an ``obj`` node (``cls.__new__`` and the state), which a caller
        allows by trusting the class: the class's own validator must run."""

        def run(s: Surgery) -> None:
            edit(s)
            node = s.node(_at(s, new))
            node.update({"$": "obj", "module": module, "name": name})
            del node["args"]

        return run

    kd_class = "sklearn.neighbors._kd_tree.KDTree"
    maha_class = "sklearn.metrics._dist_metrics.MahalanobisDistance64"
    new_kd = functools.partial(made_with_new, KD_NEW, "sklearn.neighbors._kd_tree", "KDTree")
    new_maha = functools.partial(
        made_with_new, METRIC_NEW, "sklearn.metrics._dist_metrics", "MahalanobisDistance64"
    )
    return {
        "kd tree by __new__ with an index out of range": (
            knn,
            new_kd(lambda s: s.edit(state(s, KD_NEW, 1), lambda a: a.__setitem__(3, -5))),
            kd_class,
            "idx_array[3] = -5 is outside [0, 150)",
        ),
        "kd tree by __new__ with a node beyond the data": (
            knn,
            new_kd(lambda s: s.edit(state(s, KD_NEW, 2), _set_field("idx_end", 2, 10**6))),
            kd_class,
            "idx_end[2] = 1000000 is outside [0, 151)",
        ),
        "kd tree by __new__ without state": (
            knn,
            new_kd(lambda s: s.drop(_at(s, KD_NEW, "state"))),
            kd_class,
            "must be a tuple of 13 values",
        ),
        "metric by __new__ not square": (
            "nearest_neighbors_mahalanobis",
            new_maha(mahalanobis(lambda m: m.reshape(2, 8).copy())),
            maha_class,
            "must be square",
        ),
        "metric by __new__ with a NaN p": (
            "nearest_neighbors_mahalanobis",
            new_maha(
                lambda s: s.set(_at(s, METRIC_NEW, "state", "v", 0), {"$": "float", "v": "nan"})
            ),
            maha_class,
            "p = nan must be positive",
        ),
        "metric by __new__ without state": (
            "nearest_neighbors_mahalanobis",
            new_maha(lambda s: s.drop(_at(s, METRIC_NEW, "state"))),
            maha_class,
            "must be a tuple of 3 values",
        ),
        "kd tree index not a permutation": (knn, duplicate_index, kd, "is not a permutation"),
        "kd tree index out of range": (
            knn,
            lambda s: s.edit(state(s, KD_NEW, 1), lambda a: a.__setitem__(0, 10**9)),
            kd,
            "idx_array[0] = 1000000000 is outside [0, 150)",
        ),
        "kd tree node range beyond the data": (
            knn,
            lambda s: s.edit(state(s, KD_NEW, 2), _set_field("idx_end", 1, 10**6)),
            kd,
            "idx_end[1] = 1000000 is outside [0, 151)",
        ),
        "kd tree node range reversed": (
            knn,
            lambda s: s.edit(state(s, KD_NEW, 2), _set_field("idx_start", 1, 140)),
            kd,
            "idx_start = 140 > idx_end",
        ),
        "kd tree last level not a leaf": (knn, last_level_not_leaf, kd, "is not a leaf"),
        "kd tree n_nodes": (
            knn,
            lambda s: s.set(state(s, KD_NEW, 6), 99),
            kd,
            "n_nodes = 99",
        ),
        "kd tree leaf_size zero": (
            knn,
            lambda s: s.set(state(s, KD_NEW, 4), 0),
            kd,
            "leaf_size = 0 is outside",
        ),
        "kd tree node_bounds shape": (knn, bounds_shape, kd, "node_bounds has shape"),
        "kd tree without state": (
            knn,
            lambda s: s.drop(_at(s, KD_NEW, "state")),
            kd,
            "must be a tuple of 13 values",
        ),
        "kd tree made of a metric class": (knn, metric_as_tree, kd, "only makes a KDTree"),
        "kd tree with a ball-tree metric": (
            knn,
            swap_metric,
            kd,
            "cannot use the metric",
        ),
        "ball tree short sample_weight": (
            "kernel_density",
            short_weights,
            ball,
            "sample_weight has 100 entries for 150 points",
        ),
        "ball tree data wider than its bounds": (
            "kneighbors_ball_tree",
            lambda s: s.put(
                ("state", "_fit_X"),
                np.c_[s.array(("state", "_fit_X")), s.array(("state", "_fit_X"))],
            ),
            ball,
            "node_bounds has shape",
        ),
        "metric not square": (
            "nearest_neighbors_mahalanobis",
            mahalanobis(lambda m: m.reshape(2, 8).copy()),
            metric,
            "must be square",
        ),
        "metric sized for other data": (
            "nearest_neighbors_mahalanobis",
            mahalanobis(lambda m: np.eye(6)),
            ball,
            "sized for 6 features, the data has 4",
        ),
        "metric negative p": (
            "nearest_neighbors_mahalanobis",
            lambda s: s.set(_at(s, METRIC_NEW, "state", "v", 0), -1.0),
            metric,
            "p = -1.0 must be positive",
        ),
        "seuclidean variances sized for other data": (
            "nearest_neighbors_seuclidean",
            lambda s: s.put(_at(s, METRIC_NEW, "state", "v", 1), np.ones(3)),
            ball,
            "sized for 3 features, the data has 4",
        ),
        "metric made of a tree class": (knn, tree_as_metric, metric, "only makes a concrete"),
        "neighbors fit data narrower than the model": (
            "nearest_neighbors_seuclidean",
            lambda s: s.set(("state", "n_features_in_"), 5),
            "sklearn.neighbors._unsupervised.NearestNeighbors",
            "_fit_X has 4 columns but n_features_in_ = 5",
        ),
        "neighbors without n_features_in_": (
            "nearest_neighbors_mahalanobis",
            lambda s: s.drop(("state", "n_features_in_")),
            "sklearn.neighbors._unsupervised.NearestNeighbors",
            "needs n_features_in_",
        ),
        "neighbors fit data wider than the model": (
            "nearest_neighbors_mahalanobis",
            lambda s: s.set(("state", "n_features_in_"), 2),
            "sklearn.neighbors._unsupervised.NearestNeighbors",
            "_fit_X has 4 columns but n_features_in_ = 2",
        ),
        # kneighbors_graph and Isomap.transform size their output by n_samples_fit_ (a
        # 150 x 10**9 graph of iris; 2**40: a MemoryError).
        "neighbors fit sample count over its fit data": (
            "nearest_neighbors_mahalanobis",
            lambda s: s.set(("state", "n_samples_fit_"), 2**40),
            "sklearn.neighbors._unsupervised.NearestNeighbors",
            "n_samples_fit_ = 1099511627776 but _fit_X has 150 rows",
        ),
        "neighbors classifier fit sample count under its fit data": (
            "kneighbors_ball_tree",
            lambda s: s.set(("state", "n_samples_fit_"), 3),
            "sklearn.neighbors._classification.KNeighborsClassifier",
            "n_samples_fit_ = 3 but _fit_X has 150 rows",
        ),
        "neighbors fit sample count not an integer": (
            "nearest_neighbors_mahalanobis",
            lambda s: s.set(("state", "n_samples_fit_"), "150"),
            "sklearn.neighbors._unsupervised.NearestNeighbors",
            "n_samples_fit_ must be an integer, not str",
        ),
        "neighbors classifier fit data wider than the model": (
            "kneighbors_ball_tree",
            lambda s: s.set(("state", "n_features_in_"), 2),
            "sklearn.neighbors._classification.KNeighborsClassifier",
            "_fit_X has 4 columns but n_features_in_ = 2",
        ),
        # predict queries the tree for n_neighbors unchecked: for 0, the heap's compiled
        # push writes entry 0 of empty rows (found by tests/test_mutation_probe.py).
        "neighbors classifier looking for no neighbors": (
            "kneighbors_ball_tree",
            lambda s: s.set(("state", "n_neighbors"), 0),
            "sklearn.neighbors._classification.KNeighborsClassifier",
            "n_neighbors = 0 is outside [1, inf]",
        ),
        "neighbors classifier looking for a fraction of a neighbor": (
            "kneighbors_ball_tree",
            lambda s: s.set(("state", "n_neighbors"), 2.5),
            "sklearn.neighbors._classification.KNeighborsClassifier",
            "n_neighbors must be an integer, not float",
        ),
    }


def _kmeans_cases() -> dict[str, Case]:
    kmeans = "sklearn.cluster._kmeans.KMeans"
    centers = ("state", "cluster_centers_")
    return {
        "kmeans centers narrower than the input": (
            "kmeans",
            lambda s: s.put(centers, s.array(centers)[:, :1].copy()),
            kmeans,
            "cluster_centers_ has 1 columns but n_features_in_ = 4",
        ),
        "kmeans centers wider than the input": (
            "kmeans",
            lambda s: s.put(centers, np.hstack([s.array(centers)] * 2)),
            kmeans,
            "cluster_centers_ has 8 columns but n_features_in_ = 4",
        ),
        "kmeans without n_features_in_": (
            "kmeans",
            lambda s: s.drop(("state", "n_features_in_")),
            kmeans,
            "needs n_features_in_",
        ),
        # libgomp reads -1 threads as 2**64 - 1 and ends the process ("Out of memory").
        "kmeans negative thread count": (
            "kmeans",
            lambda s: s.set(("state", "_n_threads"), -1),
            kmeans,
            "_n_threads = -1 is outside [1, 2147483647]",
        ),
    }


def _bisecting_cases() -> dict[str, Case]:
    bisecting = "sklearn.cluster._bisect_k_means.BisectingKMeans"
    root = ("state", "_bisecting_tree", "state")
    left, right = (*root, "left", "state"), (*root, "right", "state")
    return {
        "bisecting kmeans node center narrower than the input": (
            "bisecting_kmeans_sparse",
            lambda s: s.put((*left, "center"), np.zeros(1)),
            bisecting,
            "_bisecting_tree.left.center has shape (1,), not a point of n_features_in_ = 4",
        ),
        "bisecting kmeans leaf center wider than the input": (
            "bisecting_kmeans",
            lambda s: s.put((*right, "right", "state", "center"), np.zeros(40)),
            bisecting,
            "_bisecting_tree.right.right.center has shape (40,)",
        ),
        "bisecting kmeans node with one child": (
            "bisecting_kmeans",
            lambda s: (s.drop((*root, "right")), s.set((*root, "right"), None)),
            bisecting,
            "_bisecting_tree.right must be a _BisectingTree beside its sibling, not NoneType",
        ),
        "bisecting kmeans node reached twice": (
            "bisecting_kmeans",
            lambda s: _share_node(s, (*root, "right", "state", "left"), (*root, "left")),
            bisecting,
            "is a node the tree already holds",
        ),
        "bisecting kmeans data mean of another width": (
            "bisecting_kmeans",
            lambda s: s.put(("state", "_X_mean"), np.zeros(3)),
            bisecting,
            "_X_mean has shape (3,)",
        ),
        "bisecting kmeans center of integers": (
            "bisecting_kmeans",
            lambda s: s.put((*left, "center"), np.zeros(4, dtype=np.int64)),
            bisecting,
            "_bisecting_tree.left.center must be an array of floats",
        ),
    }


def _birch_cases() -> dict[str, Case]:
    birch = "sklearn.cluster._birch.Birch"
    norms, centers = ("state", "_subcluster_norms"), ("state", "subcluster_centers_")
    return {
        # The compiled nearest-center search reads one norm a center, past a shorter array.
        "birch fewer norms than centers": (
            "birch",
            lambda s: s.put(norms, s.array(norms)[:1].copy()),
            birch,
            "_subcluster_norms has 1 values for",
        ),
        "birch norms as a column": (
            "birch",
            lambda s: s.put(norms, s.array(norms)[:, None].copy()),
            birch,
            "_subcluster_norms must have 1 dimension(s)",
        ),
        "birch centers narrower than the input": (
            "birch",
            lambda s: s.put(centers, s.array(centers)[:, :2].copy()),
            birch,
            "subcluster_centers_ has 2 columns but n_features_in_ = 4",
        ),
        "birch centers as a vector": (
            "birch",
            lambda s: s.put(centers, s.array(centers)[:, 0].copy()),
            birch,
            "subcluster_centers_ must be a 2-D array",
        ),
    }


def _one_hot_cases() -> dict[str, Case]:
    encoder = "sklearn.preprocessing._encoders.OneHotEncoder"
    state = ("state",)
    mapping = (*state, "_default_to_infrequent_mappings", 0)
    return {
        # Fewer columns than codes: the sparse output's indices pass its width (SIGSEGV
        # when densified).
        "one-hot widths under its categories": (
            "one_hot",
            lambda s: s.set((*state, "_n_features_outs"), [1, 1]),
            encoder,
            "_n_features_outs[0] = 1 but its categories give 3 columns",
        ),
        "one-hot infrequent group past the columns": (
            "one_hot",
            lambda s: s.edit(mapping, _set_item(1, 40)),
            encoder,
            "_default_to_infrequent_mappings[0] holds codes outside [0, 4)",
        ),
        "one-hot infrequent category past the categories": (
            "one_hot",
            lambda s: s.edit((*state, "_infrequent_indices", 0), _set_item(0, 9)),
            encoder,
            "_infrequent_indices[0] holds codes outside [0, 6)",
        ),
        "one-hot categories not sorted": (
            "one_hot",
            lambda s: s.edit(
                (*state, "categories_", 1), lambda a: a.__setitem__(slice(None), a[::-1].copy())
            ),
            encoder,
            "categories_[1] is not sorted",
        ),
        "one-hot categories of another count": (
            "one_hot",
            lambda s: s.put((*state, "categories_", 1), np.arange(5.0)),
            encoder,
            "_n_features_outs[1] = 2 but its categories give 4 columns",
        ),
        "one-hot widths of another input": (
            "one_hot",
            lambda s: s.set((*state, "_n_features_outs"), [3, 2, 7]),
            encoder,
            "_n_features_outs has 3 entries but n_features_in_ = 2",
        ),
    }


def _set_item(index: int | tuple[int, ...], value: Any) -> Callable[[np.ndarray[Any, Any]], None]:
    return lambda a: a.__setitem__(index, value)


_INTP_MAX = 2**63 - 1  # np.bincount makes max + 1 bins: this one overflows and corrupts the heap


def _filled(arr: np.ndarray[Any, Any], value: Any) -> np.ndarray[Any, Any]:
    """Every label ``value``: whichever a prediction uses, it is that one."""
    return np.full_like(arr, value)


def _label_cases() -> dict[str, Case]:
    agglomeration = "sklearn.cluster._agglomerative.FeatureAgglomeration"
    radius = "sklearn.neighbors._classification.RadiusNeighborsClassifier"
    kneighbors = "sklearn.neighbors._classification.KNeighborsClassifier"
    voting = "sklearn.ensemble._voting.VotingClassifier"
    labels = ("state", "labels_")
    member_classes = ("state", "estimators_", 1, "state", "classes_")
    encoded = ("state", "le_", "state", "classes_")
    return {
        "feature agglomeration label at the intp limit": (
            "feature_agglomeration",
            lambda s: s.edit(labels, _set_item(0, _INTP_MAX)),
            agglomeration,
            "labels_[0] = 9223372036854775807 is outside [0, 4)",
        ),
        "feature agglomeration negative label": (
            "feature_agglomeration",
            lambda s: s.edit(labels, _set_item(2, -1)),
            agglomeration,
            "labels_[2] = -1 is outside [0, 4)",
        ),
        "feature agglomeration labels as floats": (
            "feature_agglomeration",
            lambda s: s.put(labels, s.array(labels).astype(np.float64)),
            agglomeration,
            "labels_ has dtype float64",
        ),
        "radius neighbors label at the intp limit": (
            "radius_neighbors",
            lambda s: s.put(("state", "_y"), _filled(s.array(("state", "_y")), _INTP_MAX)),
            radius,
            "_y[0] = 9223372036854775807 is outside [0, 3)",
        ),
        "radius neighbors labels of two outputs for one": (
            "radius_neighbors",
            lambda s: s.put(("state", "_y"), np.stack([s.array(("state", "_y"))] * 2, axis=1)),
            radius,
            "_y must have 1 dimension",
        ),
        "kneighbors second output label past its classes": (
            "kneighbors_multioutput",
            lambda s: s.edit(("state", "_y"), _set_item((7, 1), 2)),
            kneighbors,
            "_y[7, 1] = 2 is outside [0, 2)",
        ),
        "kneighbors classes of one output for two": (
            "kneighbors_multioutput",
            lambda s: s.drop(("state", "classes_", 1)),
            kneighbors,
            "classes_ must be a list of 2 arrays, one per column of _y",
        ),
        "voting member class at the intp limit": (
            "voting_hard",
            lambda s: s.put(member_classes, _filled(s.array(member_classes), _INTP_MAX)),
            voting,
            "estimators_[1].classes_[0] = 9223372036854775807 is outside [0, 3)",
        ),
        "voting member class past the encoder's": (
            "voting_hard",
            lambda s: s.edit(member_classes, _set_item(2, 3)),
            voting,
            "estimators_[1].classes_[2] = 3 is outside [0, 3)",
        ),
        "voting encoder of fewer classes than its members": (
            "voting_hard",
            lambda s: s.put(encoded, s.array(encoded)[:2].copy()),
            voting,
            "estimators_[0].classes_[2] = 2 is outside [0, 2)",
        ),
    }


def _iteration_cases() -> dict[str, Case]:
    nmf = "sklearn.decomposition._nmf.NMF"
    lda = "sklearn.decomposition._lda.LatentDirichletAllocation"
    return {
        # A tolerance of 0 is never undercut: transform updates each document 2**40 times.
        "lda document updates past the bound": (
            "lda",
            lambda s: (
                s.set(("state", "max_doc_update_iter"), 2**40),
                s.set(("state", "mean_change_tol"), 0.0),
            ),
            lda,
            "max_doc_update_iter = 1099511627776 is outside [0, 1000000]",
        ),
        "nmf iteration count past the bound": (
            "nmf",
            lambda s: (s.set(("state", "max_iter"), 2**62), s.set(("state", "tol"), 0.0)),
            nmf,
            "max_iter = 4611686018427387904 is outside [0, 1000000]",
        ),
        "minibatch nmf transform iterations past the bound": (
            "minibatch_nmf",
            lambda s: s.set(("state", "_transform_max_iter"), 10**7),
            "sklearn.decomposition._nmf.MiniBatchNMF",
            "_transform_max_iter = 10000000 is outside [0, 1000000]",
        ),
        "nmf iteration count not an integer": (
            "nmf",
            lambda s: s.set(("state", "max_iter"), 1.5),
            nmf,
            "max_iter must be an integer, not float",
        ),
        # transform allocates _n_components columns a sample (2**40: a MemoryError) before
        # it multiplies them with components_.
        "minibatch nmf components far over its components_": (
            "minibatch_nmf",
            lambda s: s.set(("state", "_n_components"), 2**40),
            "sklearn.decomposition._nmf.MiniBatchNMF",
            "_n_components = 1099511627776 but components_ has 2 rows",
        ),
        "nmf components off by one": (
            "nmf",
            lambda s: s.set(("state", "_n_components"), 3),
            nmf,
            "_n_components = 3 but components_ has 2 rows",
        ),
    }


def _output_count_cases() -> dict[str, Case]:
    """Counts that size an output, which fit takes from the model's own arrays: each set to
    2**40 made transform or predict raise MemoryError under a 6 GB cap."""
    spline = "sklearn.preprocessing._polynomial.SplineTransformer"
    lle = "sklearn.manifold._locally_linear.LocallyLinearEmbedding"
    sketch = "sklearn.kernel_approximation.PolynomialCountSketch"

    def short_bits(s: Surgery) -> None:
        s.put(("state", "bitHash_"), s.array(("state", "bitHash_"))[:1].copy())

    def narrow_bits(s: Surgery) -> None:
        s.put(("state", "bitHash_"), s.array(("state", "bitHash_"))[:, :2].copy())

    return {
        "forest output count far over its trees'": (
            "extra_trees",
            lambda s: s.set(("state", "n_outputs_"), 2**40),
            "sklearn.ensemble._forest.ExtraTreesRegressor",
            "n_outputs_ = 1099511627776 but estimators_[0].tree_ has 2",
        ),
        "classification forest output count off by one": (
            "random_forest",
            lambda s: s.set(("state", "n_outputs_"), 2),
            "sklearn.ensemble._forest.RandomForestClassifier",
            "n_outputs_ = 2 but estimators_[0].tree_ has 1",
        ),
        "spline output width far over its splines'": (
            "spline",
            lambda s: s.set(("state", "n_features_out_"), 2**40),
            spline,
            "n_features_out_ = 1099511627776 but 4 features of 7 splines with the bias give 28",
        ),
        "spline bias flag against its width": (
            "spline",
            lambda s: s.set(("state", "include_bias"), False),
            spline,
            "n_features_out_ = 28 but 4 features of 7 splines without the bias give 24 columns",
        ),
        "spline missing for a feature": (
            "spline",
            lambda s: s.drop(("state", "bsplines_", 3)),
            spline,
            "bsplines_ holds 3 splines but n_features_in_ = 4",
        ),
        "locally linear components far over its embedding's": (
            "locally_linear",
            lambda s: s.set(("state", "n_components"), 2**40),
            lle,
            "n_components = 1099511627776 but embedding_ has 2 columns",
        ),
        "locally linear components off by one": (
            "locally_linear",
            lambda s: s.set(("state", "n_components"), 1),
            lle,
            "n_components = 1 but embedding_ has 2 columns",
        ),
        "locally linear embedding as a vector": (
            "locally_linear",
            lambda s: s.put(("state", "embedding_"), np.zeros(150)),
            lle,
            "embedding_ must have 2 dimension(s), has shape (150,)",
        ),
        "count sketch degree far over its hashes'": (
            "count_sketch",
            lambda s: s.set(("state", "degree"), 2**40),
            sketch,
            "degree = 1099511627776 but indexHash_ has 2 rows",
        ),
        "count sketch signs of fewer rows": (
            "count_sketch",
            short_bits,
            sketch,
            "degree = 2 but bitHash_ has 1 rows",
        ),
        "count sketch signs of fewer columns": (
            "count_sketch",
            narrow_bits,
            sketch,
            "indexHash_ has shape (2, 4) but bitHash_ (2, 2)",
        ),
        "count sketch degree not an integer": (
            "count_sketch",
            lambda s: s.set(("state", "degree"), 2.0),
            sketch,
            "degree must be an integer, not float",
        ),
    }


def _share_node(s: Surgery, at: Path_, source: Path_) -> None:
    """The node at ``source`` is also the node at ``at`` (a reference to it by id)."""
    s.drop(at)
    s.node(source)["id"] = 999_999
    s.set(at, {"$": "ref", "id": 999_999})


def _bagging_cases() -> dict[str, Case]:
    bagging = "sklearn.ensemble._bagging.BaggingClassifier"
    return {
        "bagging class count far over its classes": (
            "bagging",
            lambda s: s.set(("state", "n_classes_"), 10**6),
            bagging,
            "n_classes_ = 1000000 but classes_ holds 3",
        ),
        "bagging class count under its classes": (
            "bagging",
            lambda s: s.set(("state", "n_classes_"), 2),
            bagging,
            "n_classes_ = 2 but classes_ holds 3",
        ),
        "bagging classes as a matrix": (
            "bagging",
            lambda s: s.put(("state", "classes_"), np.zeros((3, 2), dtype=np.int64)),
            bagging,
            "classes_ must be a 1-D array",
        ),
        "bagging class count not an integer": (
            "bagging",
            lambda s: s.set(("state", "n_classes_"), "3"),
            bagging,
            "n_classes_ must be an integer, not str",
        ),
    }


def _hasher_cases() -> dict[str, Case]:
    hasher = "sklearn.feature_extraction._hash.FeatureHasher"
    hashing = "sklearn.feature_extraction.text.HashingVectorizer"
    return {
        # The compiled hasher takes each hash modulo n_features: SIGFPE.
        "feature hasher of no columns": (
            "feature_hasher",
            lambda s: s.set(("state", "n_features"), 0),
            hasher,
            "n_features = 0 is outside [1, 2147483647]",
        ),
        "feature hasher of a negative width": (
            "feature_hasher",
            lambda s: s.set(("state", "n_features"), -8),
            hasher,
            "n_features = -8 is outside [1, 2147483647]",
        ),
        "feature hasher wider than int32": (
            "feature_hasher",
            lambda s: s.set(("state", "n_features"), 2**31),
            hasher,
            "n_features = 2147483648 is outside [1, 2147483647]",
        ),
        "feature hasher width not an integer": (
            "feature_hasher",
            lambda s: s.set(("state", "n_features"), 32.0),
            hasher,
            "n_features must be an integer, not float",
        ),
        "hashing vectorizer of no columns": (
            "hashing_vectorizer",
            lambda s: s.set(("state", "n_features"), 0),
            hashing,
            "n_features = 0 is outside [1, 2147483647]",
        ),
    }


def _polynomial_cases() -> dict[str, Case]:
    poly = "sklearn.preprocessing._polynomial.PolynomialFeatures"
    return {
        # transform loops over every degree, though none past the 4th adds a column.
        "polynomial degree far past its features": (
            "polynomial_interactions",
            lambda s: (
                s.set(("state", "degree"), 10**9),
                s.set(("state", "_max_degree"), 10**9),
            ),
            poly,
            "_max_degree = 1000000000 is outside [0, 1000]",
        ),
        "polynomial output width off by one": (
            "polynomial_interactions",
            lambda s: s.set(("state", "n_output_features_"), 14),
            poly,
            "n_output_features_ = 14 but degrees 0 to 3 of 4 features give over 14 columns",
        ),
        "polynomial full width not what the degrees give": (
            "polynomial_interactions",
            lambda s: s.set(("state", "_n_out_full"), 10**12),
            poly,
            "_n_out_full = 1000000000000 but degrees 0 to 3 of 4 features give 15 columns",
        ),
        "polynomial width of another input": (
            "polynomial_interactions",
            lambda s: s.set(("state", "n_features_in_"), 40),
            poly,
            "n_output_features_ = 15 but degrees 0 to 3 of 40 features give over 15 columns",
        ),
        "polynomial flag not a bool": (
            "polynomial_interactions",
            lambda s: s.set(("state", "interaction_only"), 1),
            poly,
            "interaction_only must be a bool, not int",
        ),
        "polynomial lowest degree over the highest": (
            "polynomial_interactions",
            lambda s: s.set(("state", "_min_degree"), 4),
            poly,
            "_max_degree = 3 is outside [4, 1000]",
        ),
    }


def _svm_cases() -> dict[str, Case]:
    svc, svr = "sklearn.svm._classes.SVC", "sklearn.svm._classes.SVR"
    counts, dual = ("state", "_n_support"), ("state", "_dual_coef_")
    return {
        "svm counts that do not add up": (
            "svc",
            lambda s: s.edit(counts, lambda a: a.__setitem__(2, a[2] + 1)),
            svc,
            "_n_support sums to 61 (or holds a negative count) but there are 60 support vectors",
        ),
        # scikit-learn checks the sum of the counts for dense models only (CVE-2020-28975).
        "sparse svm counts that do not add up": (
            "svc_sparse",
            lambda s: s.edit(counts, lambda a: a.__setitem__(0, 10**6)),
            svc,
            "_n_support sums to 1000053",
        ),
        "svm dual coefficients for fewer classes": (
            "svc",
            lambda s: s.put(dual, s.array(dual)[:1].copy()),
            svc,
            "_dual_coef_ has shape (1, 60); expected (2, 60)",
        ),
        "svm intercepts for fewer classes": (
            "svc",
            lambda s: s.put(("state", "_intercept_"), s.array(("state", "_intercept_"))[:1].copy()),
            svc,
            "_intercept_ has 1 values; 3 classes need 3",
        ),
        "svm fewer support vectors than indices": (
            "svc",
            lambda s: s.put(
                ("state", "support_vectors_"), s.array(("state", "support_vectors_"))[:-1].copy()
            ),
            svc,
            "support_vectors_ has 59 rows but support_ 60",
        ),
        "precomputed svm support index out of range": (
            "svc_precomputed",
            lambda s: s.edit(("state", "support_"), lambda a: a.__setitem__(0, 10**6)),
            svc,
            "support_ holds an index outside the 150 training rows",
        ),
        # libsvm copies m (m - 1) / 2 Platt pairs when told there are some: past an empty
        # array (the sparse model's predict ends in SIGSEGV).
        "sparse svm probability without its pairs": (
            "svc_sparse",
            lambda s: s.set(("state", "_effective_probability"), True),
            svc,
            "_probA has 0 values; 3 classes with probability set need 3",
        ),
        "sparse svr probability without its pair": (
            "svr_sparse",
            lambda s: s.set(("state", "_effective_probability"), True),
            svr,
            "_probA has 0 values; 2 classes with probability set need 1",
        ),
        "svm probability pairs for fewer classes": (
            "svc_probability",
            lambda s: s.put(("state", "_probB"), s.array(("state", "_probB"))[:1].copy()),
            svc,
            "_probB has 1 values; 3 classes with probability set need 3",
        ),
        "svm probability flag not a bool": (
            "svc",
            lambda s: s.set(("state", "_effective_probability"), 2),
            svc,
            "_effective_probability must be a bool, not int",
        ),
        "svr with three counts": (
            "svr",
            lambda s: s.put(counts, np.array([5, 5, 5], dtype=np.int32)),
            svr,
            "_n_support has 3 entries; libsvm's epsilon_svr model has 2",
        ),
    }


def _vocabulary_cases() -> dict[str, Case]:
    vocabulary = ("state", "vocabulary_")

    def remap(to: int) -> Callable[[Surgery], None]:
        def edit(s: Surgery) -> None:
            node = s.node(vocabulary)  # a plain JSON object: term -> column
            node[next(iter(node))] = to

        return edit

    count = "sklearn.feature_extraction.text.CountVectorizer"
    return {
        "vocabulary column past the matrix": (
            "count_vectorizer",
            remap(10**8),
            count,
            "vocabulary_ maps a term to column 100000000, outside its 30 columns",
        ),
        "vocabulary column negative": (
            "tfidf_vectorizer",
            remap(-1),
            "sklearn.feature_extraction.text.TfidfVectorizer",
            "vocabulary_ maps a term to column -1",
        ),
        "dict vectorizer column past the matrix": (
            "dict_vectorizer",
            remap(9),
            "sklearn.feature_extraction._dict_vectorizer.DictVectorizer",
            "vocabulary_ maps a term to column 9, outside its 9 columns",
        ),
        "dict vectorizer column negative": (
            "dict_vectorizer",
            remap(-1),
            "sklearn.feature_extraction._dict_vectorizer.DictVectorizer",
            "vocabulary_ maps a term to column -1",
        ),
        "dict vectorizer vocabulary of text": (
            "dict_vectorizer",
            lambda s: s.set(vocabulary, {"$": "dict", "v": [["f1", "zero"]]}),
            "sklearn.feature_extraction._dict_vectorizer.DictVectorizer",
            "vocabulary_ maps a term to something that is not a column index",
        ),
        "vocabulary of text": (
            "count_vectorizer",
            lambda s: s.set(vocabulary, {"$": "dict", "v": [["w1", "zero"]]}),
            count,
            "vocabulary_ maps a term to something that is not a column index",
        ),
    }


# Matching this on one of DATA's documents (8 words, ~25 characters, no '.') takes ~0.3 s
# at 20 characters and twice as long for each one more: the child would never finish its
# transform (test_the_exponential_pattern_is_a_real_attack shows it on its own).
EXPONENTIAL = r"(?:.|\w|\s)*\."


def _token_pattern_cases() -> dict[str, Case]:
    pattern = ("state", "token_pattern")
    text = "sklearn.feature_extraction.text"
    exponential = "can take time exponential in the length of the text it reads"
    return {
        "count vectorizer exponential token_pattern": (
            "count_vectorizer",
            lambda s: s.set(pattern, EXPONENTIAL),
            f"{text}.CountVectorizer",
            exponential,
        ),
        "tfidf vectorizer nested repeat token_pattern": (
            "tfidf_vectorizer",
            lambda s: s.set(pattern, r"(?:\w+\s?)+\."),
            f"{text}.TfidfVectorizer",
            exponential,
        ),
        "hashing vectorizer exponential token_pattern": (
            "hashing_vectorizer",
            lambda s: s.set(pattern, EXPONENTIAL),
            f"{text}.HashingVectorizer",
            exponential,
        ),
        "hashing vectorizer exponential lookahead in token_pattern": (
            "hashing_vectorizer",
            lambda s: s.set(pattern, r"(?=(?:\w+\s?)+\.)\w+"),
            f"{text}.HashingVectorizer",
            exponential,
        ),
        "token_pattern with a backreference": (
            "count_vectorizer",
            lambda s: s.set(pattern, r"(\w)\1+"),
            f"{text}.CountVectorizer",
            "refers back to a group",
        ),
        "token_pattern not a regular expression": (
            "hashing_vectorizer",
            lambda s: s.set(pattern, r"(\w+"),
            f"{text}.HashingVectorizer",
            "is not a regular expression re compiles",
        ),
        "token_pattern of bytes": (
            "tfidf_vectorizer",
            lambda s: s.set(pattern, {"$": "bytes", "b64": "KD91KVxiXHdcdytcYg=="}),
            f"{text}.TfidfVectorizer",
            "token_pattern must be a str, not bytes",
        ),
    }


def _loss_cases() -> dict[str, Case]:
    huber = "sklearn._loss._loss.CyHuberLoss"
    unpickle = "sklearn._loss._loss.__pyx_unpickle_CyHalfMultinomialLoss"
    return {
        "loss with two parameters": (
            "gradient_boosting_huber",
            lambda s: s.node(_at(s, HUBER, "args")).append(1.0),
            huber,
            "CyHuberLoss takes one argument (delta)",
        ),
        "loss parameter not a number": (
            "gradient_boosting_huber",
            lambda s: s.set(_at(s, HUBER, "args", 0), "wide"),
            huber,
            "delta must be a number",
        ),
        "loss parameter infinite": (
            "gradient_boosting_huber",
            lambda s: s.set(_at(s, HUBER, "args", 0), {"$": "float", "v": "inf"}),
            huber,
            "is not finite",
        ),
        "loss given a state": (
            "gradient_boosting_huber",
            lambda s: s.set(_at(s, HUBER, "state"), {"delta": 1.0}),
            huber,
            "takes no state",
        ),
        "multinomial unpickled with a state": (
            "gradient_boosting",
            lambda s: s.set(_at(s, MULTINOMIAL, "args", 2), {"$": "tuple", "v": [1, 2]}),
            unpickle,
            "the state must be ()",
        ),
        "multinomial unpickled as another class": (
            "gradient_boosting",
            lambda s: s.set(
                _at(s, MULTINOMIAL, "args", 0),
                {"$": "global", "module": "sklearn.neighbors._kd_tree", "name": "KDTree"},
            ),
            unpickle,
            "only rebuilds CyHalfMultinomialLoss",
        ),
        "multinomial unpickled with a text checksum": (
            "gradient_boosting",
            lambda s: s.set(_at(s, MULTINOMIAL, "args", 1), "238750788"),
            unpickle,
            "checksum must be an integer",
        ),
    }


def _compact_tree_cases() -> dict[str, Case]:
    """The ``sk.tree`` node: its node records are raw 64-byte rows, validated as above."""
    from modelsafe._handlers.sklearn._tree import LAYOUT

    tree = "sklearn.tree._tree.Tree"
    dtc = "decision_tree_compact"

    def at(s: Surgery, *rest: Any, nth: int = 0) -> Path_:
        found = [p for p, n in _tagged(s.header["root"], "sk.tree")]
        return (*found[nth], *rest)

    def records(field: str, index: int, value: Any) -> Callable[[Surgery], None]:
        def fn(s: Surgery) -> None:
            s.edit(at(s, "nodes"), lambda raw: raw.view(LAYOUT)[field].__setitem__(index, value))

        return fn

    def records_in(nth: int, field: str, index: int, value: Any) -> Callable[[Surgery], None]:
        def fn(s: Surgery) -> None:
            s.edit(
                at(s, "nodes", nth=nth),
                lambda raw: raw.view(LAYOUT)[field].__setitem__(index, value),
            )

        return fn

    def narrow(s: Surgery) -> None:
        s.put(at(s, "nodes"), s.array(at(s, "nodes"))[:, :32].copy())

    def shorter_values(s: Surgery) -> None:
        s.put(at(s, "values"), s.array(at(s, "values"))[:, :, :2].copy())

    return {
        "compact tree child out of range": (
            dtc,
            records("left_child", 0, 900),
            tree,
            "children_left[0] = 900 is outside [1, ",
        ),
        "compact tree cycle": (dtc, records("right_child", 0, 0), tree, "does not come after node"),
        "compact tree feature out of range": (
            dtc,
            records("feature", 0, 10**9),
            tree,
            "feature[0] = 1000000000 is outside [0, 4)",
        ),
        "compact tree NaN threshold": (
            dtc,
            records("threshold", 0, float("nan")),
            tree,
            "threshold[0] is NaN",
        ),
        "compact tree records not 64 bytes": (
            dtc,
            narrow,
            tree,
            "nodes must be uint8 records of 64 bytes",
        ),
        "compact tree max_depth below the real depth": (
            dtc,
            lambda s: s.set(at(s, "md"), 1),
            tree,
            "max_depth = 1, but the deepest leaf is at depth",
        ),
        "compact tree values of the wrong shape": (dtc, shorter_values, tree, "values has shape"),
        "compact tree more outputs than its values": (
            dtc,
            lambda s: s.set(at(s, "nc"), [3, 3]),
            tree,
            "values has shape",
        ),
        "compact tree fewer features than it splits on": (
            dtc,
            lambda s: s.set(at(s, "nf"), 2),
            tree,
            "is outside [0, 2)",
        ),
        # Trees are checked together, their records concatenated: an index that is valid
        # in the concatenation but not in its own tree must still fail.
        "compact forest child in the next tree": (
            "random_forest_compact",
            lambda s: s.edit(
                at(s, "nodes", nth=1),
                lambda raw: raw.view(LAYOUT)["left_child"].__setitem__(0, len(raw) + 1),
            ),
            tree,
            "children_left[0] = ",
        ),
        "compact forest missing_go_to_left not a flag": (
            "random_forest_compact",
            records_in(2, "missing_go_to_left", 0, 7),
            tree,
            "missing_go_to_left[0] = 7 is not 0 or 1",
        ),
        "compact forest max_depth of the last tree too small": (
            "random_forest_compact",
            lambda s: s.set(at(s, "md", nth=4), 0),
            tree,
            "max_depth = 0, but the deepest leaf is at depth",
        ),
        "compact forest tree child out of range": (
            "random_forest_compact",
            lambda s: s.edit(
                at(s, "nodes", nth=3),
                lambda raw: raw.view(LAYOUT)["right_child"].__setitem__(0, -5),
            ),
            tree,
            "children_right[0] = -5",
        ),
    }


def _run_cases() -> dict[str, Case]:
    """Estimators stored as a run (``objs``): the trees in its columns are checked as any
    other, and each estimator's state still passes its class's validator."""
    from modelsafe._handlers.sklearn._tree import LAYOUT

    run = "gradient_boosting_run_compact"

    def run_path(s: Surgery) -> Path_:
        return next(p for p, _n in _tagged(s.header["root"], "objs"))

    def tree_nodes(s: Surgery, nth: int) -> Path_:
        return (*[p for p, _n in _tagged(s.header["root"], "sk.tree")][nth], "nodes")

    return {
        "tree in a run of estimators: child out of range": (
            run,
            lambda s: s.edit(
                tree_nodes(s, 17),
                lambda raw: raw.view(LAYOUT)["left_child"].__setitem__(0, 10**6),
            ),
            "sklearn.tree._tree.Tree",
            "children_left[0] = 1000000 is outside [1, ",
        ),
        "run of estimators narrower than their trees": (
            run,
            lambda s: s.set((*run_path(s), "same", "n_features_in_"), 2),
            "sklearn.tree._classes.DecisionTreeRegressor",
            "tree_ splits on 4 features but the model takes 2",
        ),
        "run of estimators with one tree of more outputs": (
            run,
            lambda s: s.set(
                (*[p for p, _n in _tagged(s.header["root"], "sk.tree")][29], "nc"), [1, 1]
            ),
            "sklearn.tree._tree.Tree",
            "values has shape",
        ),
    }


def _first_tagged(s: Surgery, tag: str) -> Path_:
    return next(p for p, _n in _tagged(s.header["root"], tag))


def _set_in_part(
    tag: str, layout: np.dtype[Any], t: int, field: str, index: int, value: Any
) -> Callable[[Surgery], None]:
    """An edit setting ``field`` of record ``index`` of part ``t`` (a tree, a predictor)
    of the first ``tag`` node, whose ``nodes`` hold the records of all its parts, one
    after the other, ``sizes`` of them."""

    def fn(s: Surgery) -> None:
        path = _first_tagged(s, tag)
        at = sum(s.node(path)["sizes"][:t]) + index
        s.edit((*path, "nodes"), lambda raw: raw.view(layout)[field].__setitem__(at, value))

    return fn


def _into_next_part(
    tag: str, layout: np.dtype[Any], t: int, field: str
) -> Callable[[Surgery], None]:
    """An edit pointing ``field`` of part ``t``'s first record just past the part's own
    records: into part ``t + 1``, an index valid in the whole array."""

    def fn(s: Surgery) -> None:
        size = s.node(_first_tagged(s, tag))["sizes"][t]
        _set_in_part(tag, layout, t, field, 0, size + 1)(s)

    return fn


def _edit_sizes(tag: str, edit: Callable[[list[int]], None]) -> Callable[[Surgery], None]:
    """An edit of the first ``tag`` node's per-part ``sizes`` list, in place."""
    return lambda s: edit(s.node(_first_tagged(s, tag))["sizes"])


def _tree_run_cases() -> dict[str, Case]:
    """The ``sk.trees`` column: every tree of a run of estimators in one array of records
    and one of values, checked together, then tree by tree when that fails (naming the
    tree); each estimator's state still passes its class's validator."""
    from modelsafe._handlers.sklearn._tree import LAYOUT

    tree = "sklearn.tree._tree.Tree"
    rf = "random_forest_trees"

    def trees(s: Surgery) -> Path_:
        return _first_tagged(s, "sk.trees")

    def in_tree(t: int, field: str, index: int, value: Any) -> Callable[[Surgery], None]:
        return _set_in_part("sk.trees", LAYOUT, t, field, index, value)

    def sizes(edit: Callable[[list[int]], None]) -> Callable[[Surgery], None]:
        return _edit_sizes("sk.trees", edit)

    def move_boundary(n: list[int]) -> None:
        n[0] -= 1
        n[1] += 1

    def narrower_values(s: Surgery) -> None:
        s.put((*trees(s), "values"), s.array((*trees(s), "values"))[:, :, :2].copy())

    def stored_depth(t: int, index: int, change: Callable[[int], int]) -> Callable[[Surgery], None]:
        """Rewrite the depth that node ``index`` of tree ``t`` holds in bytes 57-58."""

        def fn(s: Surgery) -> None:
            at = sum(s.node(trees(s))["sizes"][:t]) + index

            def edit(raw: np.ndarray[Any, Any]) -> None:
                depth = raw[at, 57:59].view("<u2")
                depth[0] = change(int(depth[0]))

            s.edit((*trees(s), "nodes"), edit)

        return fn

    def run(s: Surgery) -> Path_:
        return next(p for p, _n in _tagged(s.header["root"], "objs"))

    return {
        "tree run: child out of range in a middle tree": (
            rf,
            in_tree(5, "left_child", 0, 10**6),
            tree,
            "tree 5 of 12: children_left[0] = 1000000 is outside [1, ",
        ),
        "tree run: child in the next tree": (
            rf,
            _into_next_part("sk.trees", LAYOUT, 1, "left_child"),
            tree,
            "tree 1 of 12: children_left[0] = ",
        ),
        "tree run: cycle": (rf, in_tree(3, "right_child", 0, 0), tree, "tree 3 of 12: "),
        "tree run: feature out of range": (
            rf,
            in_tree(7, "feature", 0, 10**9),
            tree,
            "tree 7 of 12: feature[0] = 1000000000 is outside [0, 4)",
        ),
        "tree run: NaN threshold": (
            rf,
            in_tree(2, "threshold", 0, float("nan")),
            tree,
            "tree 2 of 12: threshold[0] is NaN",
        ),
        "tree run: missing_go_to_left not a flag": (
            rf,
            in_tree(11, "missing_go_to_left", 0, 7),
            tree,
            "tree 11 of 12: missing_go_to_left[0] = 7 is not 0 or 1",
        ),
        "tree run: sizes beyond the records": (
            rf,
            sizes(lambda n: n.__setitem__(-1, n[-1] + 1)),
            tree,
            "as many as the",
        ),
        "tree run: a boundary between trees moved": (
            rf,
            sizes(move_boundary),
            tree,
            "tree 0 of 12: ",
        ),
        "tree run: max_depth of one tree too small": (
            rf,
            lambda s: s.node(trees(s))["md"].__setitem__(9, 0),
            tree,
            "tree 9 of 12: max_depth = 0, but the deepest leaf is at depth",
        ),
        "tree run: values of the wrong shape": (rf, narrower_values, tree, "values has shape"),
        "tree run: a node's stored depth one too deep": (
            rf,
            stored_depth(6, 3, lambda d: d + 1),
            tree,
            "tree 6 of 12: the depths its records hold (bytes 57-58) are not the depths",
        ),
        "tree run: a root's stored depth not 0": (
            rf,
            stored_depth(10, 0, lambda d: 5),
            tree,
            "tree 10 of 12: the depths its records hold (bytes 57-58) are not the depths",
        ),
        "tree run: more outputs than its values": (
            rf,
            lambda s: s.set((*trees(s), "nc"), [3, 3]),
            tree,
            "values has shape",
        ),
        "tree run: fewer features than it splits on": (
            rf,
            lambda s: s.set((*trees(s), "nf"), 2),
            tree,
            "is outside [0, 2)",
        ),
        "tree run: estimators narrower than their trees": (
            rf,
            lambda s: s.set((*run(s), "same", "n_features_in_"), 2),
            "sklearn.tree._classes.DecisionTreeClassifier",
            "tree_ splits on 4 features but the model takes 2",
        ),
        "tree run of gradient boosting: child out of range": (
            "gradient_boosting_trees",
            in_tree(17, "left_child", 0, 10**6),
            tree,
            "tree 17 of 30: children_left[0] = 1000000 is outside [1, ",
        ),
    }


def _compact_predictor_cases() -> dict[str, Case]:
    """The ``sk.hgbp`` node: packed 56-byte records, the predictors of a file checked
    together, then one by one when that fails (which names the broken invariant)."""
    from modelsafe._handlers.sklearn._hgb import LAYOUT

    pred = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"

    def at(s: Surgery, *rest: Any, nth: int = 0) -> Path_:
        found = [p for p, n in _tagged(s.header["root"], "sk.hgbp")]
        return (*found[nth], *rest)

    def records(nth: int, field: str, index: int, value: Any) -> Callable[[Surgery], None]:
        def fn(s: Surgery) -> None:
            s.edit(
                at(s, "nodes", nth=nth),
                lambda raw: raw.view(LAYOUT)[field].__setitem__(index, value),
            )

        return fn

    def categorical_split(s: Surgery) -> tuple[int, int]:
        """(predictor, node) of the first categorical split."""
        for k, (_p, node) in enumerate(_tagged(s.header["root"], "sk.hgbp")):
            if "binned" in node:
                nodes = s.array(at(s, "nodes", nth=k)).view(LAYOUT)[:, 0]
                hit = np.flatnonzero((nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 1))
                return k, int(hit[0])
        raise AssertionError("no categorical split in the sample")

    def bitset_out_of_range(s: Surgery) -> None:
        k, i = categorical_split(s)
        records(k, "bitset_idx", i, 4_000_000_000)(s)  # ~128 GB past the bitsets

    def narrow(s: Surgery) -> None:
        s.put(at(s, "nodes"), s.array(at(s, "nodes"))[:, :48].copy())

    def longer_raw_bitsets(s: Surgery) -> None:
        k, _i = categorical_split(s)
        bits = s.array(at(s, "raw", nth=k))
        s.put(at(s, "raw", nth=k), np.concatenate([bits, bits[:1]]))

    return {
        "compact predictor child out of range": (
            "hgb_compact",
            records(0, "left", 0, 4_000_000_000),
            pred,
            "left[0] = 4000000000 is outside [1, ",
        ),
        # Checked together, their records concatenated: an index valid in the concatenation
        # but not in its own predictor must still fail.
        "compact predictor child in the next predictor": (
            "hgb_compact",
            lambda s: s.edit(
                at(s, "nodes", nth=1),
                lambda raw: raw.view(LAYOUT)["right"].__setitem__(0, len(raw) + 1),
            ),
            pred,
            "right[0] = ",
        ),
        "compact predictor cycle": (
            "hgb_compact",
            records(2, "left", 0, 0),
            pred,
            "does not come after node",
        ),
        "compact predictor leaf flag": (
            "hgb_compact",
            records(3, "is_leaf", 0, 9),
            pred,
            "is_leaf[0] = 9 is not 0 or 1",
        ),
        "compact predictor bitset out of range": (
            "hgb_categorical_compact",
            bitset_out_of_range,
            pred,
            "bitset_idx[",
        ),
        "compact predictor bitsets of two lengths": (
            "hgb_categorical_compact",
            longer_raw_bitsets,
            pred,
            "binned_left_cat_bitsets has ",
        ),
        "compact predictor records not 56 bytes": (
            "hgb_compact",
            narrow,
            pred,
            "nodes must be uint8 records of 56 bytes",
        ),
    }


def _predictor_rows_cases() -> dict[str, Case]:
    """The ``sk.hgbps`` node: a model's predictors, all records in one array and all
    bitsets in two, checked together, then one by one (naming ``_predictors[i][j]``)."""
    from modelsafe._handlers.sklearn._hgb import LAYOUT

    pred = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    model = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting."
    model += "HistGradientBoostingClassifier"

    def rows(s: Surgery) -> Path_:
        return _first_tagged(s, "sk.hgbps")

    def in_predictor(t: int, field: str, index: int, value: Any) -> Callable[[Surgery], None]:
        return _set_in_part("sk.hgbps", LAYOUT, t, field, index, value)

    def bitset_out_of_range(s: Surgery) -> None:
        node = s.node(rows(s))
        nodes = s.array((*rows(s), "nodes")).view(LAYOUT)[:, 0]
        hit = int(np.flatnonzero((nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 1))[0])
        t = int(np.searchsorted(np.cumsum(node["sizes"]), hit, side="right"))
        in_predictor(t, "bitset_idx", hit - sum(node["sizes"][:t]), 4_000_000_000)(s)

    def sizes(edit: Callable[[list[int]], None]) -> Callable[[Surgery], None]:
        return _edit_sizes("sk.hgbps", edit)

    def move_bits(s: Surgery) -> None:
        """The first predictor with categorical splits loses its bitsets to the last."""
        bits = s.node(rows(s))["bits"]
        t = next(i for i, n in enumerate(bits) if n)
        assert t != len(bits) - 1
        bits[-1] += bits[t]
        bits[t] = 0

    return {
        "predictor rows: child out of range": (
            "hgb_predictors",
            in_predictor(7, "left", 0, 4_000_000_000),
            pred,
            "_predictors[2][1]: left[0] = 4000000000 is outside [1, ",
        ),
        "predictor rows: child in the next predictor": (
            "hgb_predictors",
            _into_next_part("sk.hgbps", LAYOUT, 4, "right"),
            pred,
            "_predictors[1][1]: right[0] = ",
        ),
        "predictor rows: cycle": (
            "hgb_predictors",
            in_predictor(2, "left", 0, 0),
            pred,
            "_predictors[0][2]: ",
        ),
        "predictor rows: leaf flag": (
            "hgb_predictors",
            in_predictor(12, "is_leaf", 0, 9),
            pred,
            "_predictors[4][0]: is_leaf[0] = 9 is not 0 or 1",
        ),
        "predictor rows: feature beyond the input": (
            "hgb_predictors",
            in_predictor(5, "feature_idx", 0, 7),
            model,
            "_predictors[1][2] node 0: feature_idx = 7 is outside [0, 4)",
        ),
        "predictor rows: sizes beyond the records": (
            "hgb_predictors",
            sizes(lambda n: n.__setitem__(0, n[0] + 1)),
            pred,
            "as many as the",
        ),
        "predictor rows: a boundary between predictors moved": (
            "hgb_predictors",
            sizes(lambda n: (n.__setitem__(0, n[0] - 1), n.__setitem__(1, n[1] + 1))),
            pred,
            "_predictors[0][0]: ",
        ),
        "predictor rows: bitset out of range": (
            "hgb_categorical_predictors",
            bitset_out_of_range,
            pred,
            "bitset_idx[",
        ),
        "predictor rows: bitset counts that do not add up": (
            "hgb_categorical_predictors",
            lambda s: s.node(rows(s))["bits"].__setitem__(0, s.node(rows(s))["bits"][0] + 1),
            pred,
            "bitset counts add up to",
        ),
        "predictor rows: bitsets moved to another predictor": (
            "hgb_categorical_predictors",
            move_bits,
            pred,
            "bitset_idx[",
        ),
    }


def _tagged(tree: Any, tag: str) -> Iterator[tuple[Path_, Any]]:
    """(path, node) of every node with this tag, depth first in document order."""
    stack: list[tuple[Path_, Any]] = [((), tree)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            if node.get("$") == tag:
                yield path, node
            stack.extend(((*path, k), v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(node))))


CASES: dict[str, Case] = {
    **_tree_cases(),
    **_compact_tree_cases(),
    **_ensemble_cases(),
    **_hgb_cases(),
    **_compact_predictor_cases(),
    **_run_cases(),
    **_tree_run_cases(),
    **_predictor_rows_cases(),
    **_neighbors_cases(),
    **_kmeans_cases(),
    **_bisecting_cases(),
    **_bagging_cases(),
    **_birch_cases(),
    **_one_hot_cases(),
    **_iteration_cases(),
    **_output_count_cases(),
    **_label_cases(),
    **_hasher_cases(),
    **_polynomial_cases(),
    **_svm_cases(),
    **_vocabulary_cases(),
    **_token_pattern_cases(),
    **_loss_cases(),
}


# -- the child process -------------------------------------------------------------------------


def _child_main() -> None:
    """Load each case, and when it loads, call its prediction methods; one JSON line per
    case, and a marker before each so the parent knows which case killed the child."""
    directory = Path(sys.argv[1])
    start = int(sys.argv[2])
    cases = json.loads((directory / "cases.json").read_text())
    with (
        open(directory / "progress", "a") as progress,
        open(directory / "results.jsonl", "a") as results,
    ):
        for i in range(start, len(cases)):
            case = cases[i]
            progress.write(f"{i}\n")
            progress.flush()
            os.fsync(progress.fileno())
            blob = (directory / f"case{i}.msafe").read_bytes()
            out: dict[str, Any] = {"index": i, "error": None, "modelsafe": False, "message": ""}
            try:
                model = modelsafe.loads(blob, trusted=case["trusted"])
            except Exception as exc:
                out["error"] = type(exc).__name__
                out["modelsafe"] = isinstance(exc, modelsafe.ModelSafeError)
                out["message"] = str(exc)[:500]
            else:
                x = np.load(directory / f"{case['x']}.npy")
                try:
                    out["outputs"] = outputs(model, x)
                except Exception as exc:  # predict refused: reported, not a crash
                    out["predict_error"] = f"{type(exc).__name__}: {exc}"[:300]
            results.write(json.dumps(out) + "\n")
            results.flush()


def run_cases(
    cases: dict[str, tuple[bytes, list[str], str]],
    directory: Path,
    *,
    timeout: float = 120,
    prelude: str = "",
) -> dict[str, Any]:
    """Run ``name -> (file, trusted names, input)`` in child processes under an address
    space cap. A child killed by a signal marks its case ``crashed``, one that runs out of
    time marks it ``hung`` (an endless walk); the remaining cases go on in a new child."""
    names = list(cases)
    meta = []
    for i, (blob, trusted, x) in enumerate(cases.values()):
        (directory / f"case{i}.msafe").write_bytes(blob)
        meta.append({"trusted": trusted, "x": x})
    for key in {m["x"] for m in meta}:
        np.save(directory / f"{key}.npy", DATA[key])
    (directory / "cases.json").write_text(json.dumps(meta))
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    script = (
        prelude + "from tests.handlers.test_sklearn_internals import _child_main; _child_main()"
    )
    cap = 4 << 30
    results: dict[str, Any] = {}
    start = 0
    while start < len(names):
        child = subprocess.Popen(
            [sys.executable, "-c", script, str(directory), str(start)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)),
        )
        try:
            _, stderr = child.communicate(timeout=timeout)
            verdict: dict[str, Any] = {"crashed": child.returncode, "stderr": stderr[-1500:]}
        except subprocess.TimeoutExpired:
            child.kill()
            _, stderr = child.communicate()
            verdict = {"crashed": "hung", "stderr": stderr[-1500:]}
        for line in (directory / "results.jsonl").read_text().splitlines():
            out = json.loads(line)
            results[names[out["index"]]] = out
        if child.returncode == 0:
            break
        dead = int((directory / "progress").read_text().split()[-1])
        results[names[dead]] = verdict
        start = dead + 1
    return results


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every crafted case and the untampered file of every model, run in one child."""
    runs: dict[str, tuple[bytes, list[str], str]] = {}
    for name, (model, edit, _cls, _text) in CASES.items():
        s = _surgery(model)
        edit(s)
        runs[name] = (s.blob(), _trusted(model, name), MODELS[model][1])
    for model in CONTROLS:
        runs[f"control {model}"] = (_surgery(model).blob(), _trusted(model), MODELS[model][1])
    return run_cases(runs, tmp_path_factory.mktemp("crafted"))


# The child reads its inputs with np.load(allow_pickle=False): a DictVectorizer's input (a
# list of dicts) cannot reach it, so its untampered file is checked in-process only (the
# conformance suite); its crafted file is refused before any input is read.
CONTROLS = [model for model in MODELS if model != "dict_vectorizer"]


def _trusted(model: str, case: str = "") -> list[str]:
    """What a caller passes in ``trusted=``: the names the default set lacks."""
    names: list[str] = []
    if "by __new__" in case:
        names.append(CASES[case][2])  # the class, for the ``new`` use
    return names


@pytest.mark.parametrize("case", CASES)
def test_crafted_state_is_a_format_error(crafted: dict[str, Any], case: str) -> None:
    got = crafted[case]
    assert "crashed" not in got, f"the child died (exit {got['crashed']}):\n{got['stderr']}"
    _model, _edit, cls, text = CASES[case]
    assert got["error"] == "FormatError", f"not refused: {got}"
    assert f"invalid {cls}: " in got["message"], got["message"]
    assert text in got["message"], got["message"]


@pytest.mark.parametrize("model", CONTROLS)
def test_untampered_files_load_and_predict_the_same_in_the_child(
    crafted: dict[str, Any], model: str
) -> None:
    """The positive control of the crafted cases: the same surgery without an edit."""
    got = crafted[f"control {model}"]
    assert got.get("error") is None and "crashed" not in got, got
    make, x = MODELS[model]
    assert got["outputs"] == outputs(make(), DATA[x])


def test_every_validator_has_three_crafted_cases() -> None:
    """At least three crafted files reach each validator (by its pair of checks)."""
    from modelsafe._handlers.sklearn import VALIDATORS

    def family(v: Any) -> tuple[str, str]:
        return (getattr(v.args, "__qualname__", ""), getattr(v.state, "__qualname__", ""))

    count = dict.fromkeys({family(v) for v in VALIDATORS.values()}, 0)
    for _m, _e, cls, _t in CASES.values():
        count[family(VALIDATORS[cls])] += 1
    assert min(count.values()) >= 3, count


# Without validation, these files kill the process (SIGSEGV, SIGABRT) or never return. A read
# past an array's end crashes only when it leaves mapped memory, so one of them may survive a
# given run by luck (reading garbage instead); the test allows that much.
UNSAFE = (
    "tree without state",
    "tree child out of range",
    "predictor child out of range",
    "predictor bitset out of range",
    "kd tree index out of range",
    "precomputed svm support index out of range",
    "sparse svm probability without its pairs",
    "vocabulary column past the matrix",
    "feature hasher of no columns",  # SIGFPE
    "kmeans negative thread count",  # libgomp ends the process
    "polynomial degree far past its features",  # transform never returns
    "lda document updates past the bound",  # transform never returns
    "feature agglomeration label at the intp limit",  # np.bincount corrupts the heap
    "radius neighbors label at the intp limit",
    "voting member class at the intp limit",
)


@pytest.mark.slow
def test_without_validation_these_files_crash(tmp_path: Path) -> None:
    """The threat is real: the same files, loaded in a child whose loader skips the
    validators, crash or hang it, at load or at predict."""
    runs = {}
    for name in UNSAFE:
        model, edit, _cls, _text = CASES[name]
        s = _surgery(model)
        edit(s)
        runs[name] = (s.blob(), _trusted(model), MODELS[model][1])
    off = (
        "import modelsafe._graph.decode as d\n"
        "d.validator_for = lambda name: None\n"
        "d.validator_of = lambda cls: None\n"
    )
    results = run_cases(runs, tmp_path, timeout=30, prelude=off)
    survived = {name: got for name, got in results.items() if "crashed" not in got}
    assert len(survived) <= 1, survived


def _attack(path: Path, body: str) -> tuple[Any, Any]:
    """Run ``body`` (which loads ``sys.argv[1]`` as ``model``, or prints "refused: ..."
    and exits 0) in two children: with validation, and with the validators switched off."""
    script = (
        "import sys\nimport numpy as np\nimport modelsafe\n"
        "try:\n"
        "    model = modelsafe.load(sys.argv[1])\n"
        "except modelsafe.FormatError as exc:\n"
        "    print('refused:', exc)\n"
        "    sys.exit(0)\n" + body
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    off = (
        "import modelsafe._graph.decode as d\n"
        "d.validator_for = lambda name: None\n"
        "d.validator_of = lambda cls: None\n"
    )
    checked, unchecked = (
        subprocess.run(
            [sys.executable, "-c", prelude + script, str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        for prelude in ("", off)
    )
    return checked, unchecked


@pytest.mark.slow
def test_without_validation_a_bisecting_tree_reads_past_its_centers(tmp_path: Path) -> None:
    """A BisectingKMeans whose node centers hold one value, predicting sparse input of
    2**27 columns: the compiled Lloyd step reads each center at the input's column
    indices, a gigabyte past its end. Refused with validation; a crash without."""
    import scipy.sparse
    from sklearn.cluster import BisectingKMeans

    model = BisectingKMeans(3, random_state=0).fit(scipy.sparse.csr_matrix(DATA["iris"]))
    model.n_features_in_ = 2**27
    nodes = [model._bisecting_tree]
    while nodes:
        node = nodes.pop()
        node.center = np.zeros(1)
        nodes.extend(n for n in (node.left, node.right) if n is not None)
    path = tmp_path / "bisect.msafe"
    modelsafe.save(model, path)
    checked, unchecked = _attack(
        path,
        "import scipy.sparse as sp\n"
        "n = 2**27\n"
        "rows, cols = np.repeat(np.arange(20), 2), np.tile([n - 2, n - 1], 20)\n"
        "x = sp.csr_matrix((np.ones(40), (rows, cols)), shape=(20, n))\n"
        "model.predict(x)\n",
    )
    assert checked.returncode == 0 and "refused: " in checked.stdout, checked
    assert "invalid sklearn.cluster._bisect_k_means.BisectingKMeans" in checked.stdout
    assert unchecked.returncode < 0, unchecked  # killed by a signal


@pytest.mark.slow
def test_without_validation_one_hot_columns_pass_the_output(tmp_path: Path) -> None:
    """A OneHotEncoder of two features with ~4,900 categories each whose
    ``_n_features_outs`` says one column each: ``transform`` builds a 2-column sparse
    matrix with column indices up to ~9,800, and densifying it writes past the array.
    Refused with validation; a crash without."""
    from sklearn.preprocessing import OneHotEncoder

    x = np.random.default_rng(0).integers(0, 5000, size=(20000, 2))
    model = OneHotEncoder().fit(x)
    model._n_features_outs = [1, 1]
    path = tmp_path / "one_hot.msafe"
    modelsafe.save(model, path)
    np.save(tmp_path / "x.npy", x)
    checked, unchecked = _attack(
        path, f"model.transform(np.load({str(tmp_path / 'x.npy')!r})).toarray()\n"
    )
    assert checked.returncode == 0 and "refused: " in checked.stdout, checked
    assert "_n_features_outs[0] = 1 but its categories give 4925 columns" in checked.stdout
    assert unchecked.returncode < 0, unchecked  # killed by a signal


# -- the same files, the validated class a user's subclass of it ---------------------------------
# A user who subclasses a validated class (``MyVectorizer(CountVectorizer)`` with its own
# preprocessing) and trusts it hands the base class's compiled code the same state: a
# crafted file must be refused all the same (tests/_user_subclasses.py makes the subclasses).


def _as_subclass(s: Surgery, cls: str) -> str | None:
    """Every node that makes an instance of ``cls`` makes one of its subclass instead: the
    subclass's name, or None where no node makes one."""
    sub = SUBCLASSES[cls]
    module, _, name = cls.rpartition(".")
    sub_module, _, sub_name = sub.rpartition(".")
    renamed = 0
    stack = [s.header["root"]]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if x.get("$") in ("obj", "objs", "call") and (x.get("module"), x.get("name")) == (
                module,
                name,
            ):
                x["module"], x["name"] = sub_module, sub_name
                renamed += 1
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return sub if renamed else None


# Compact trees and tree runs are nodes of their own kinds (``sk.tree``, ``sk.trees``),
# which make a Tree whatever the file says: no subclass of it to name.
SUBCLASSED = [
    name
    for name, (model, _edit, cls, _text) in CASES.items()
    if cls in SUBCLASSES and model not in COMPACT and model not in TREE_RUNS
]


def _subclass_runs() -> dict[str, tuple[bytes, list[str], str]]:
    runs: dict[str, tuple[bytes, list[str], str]] = {}
    for name in SUBCLASSED:
        model, edit, cls, _text = CASES[name]
        s = _surgery(model)
        edit(s)
        sub = _as_subclass(s, cls)
        assert sub is not None, f"{name}: no node makes a {cls}"
        runs[name] = (s.blob(), [*_trusted(model, name), sub], MODELS[model][1])
    for model in CONTROLS:
        s = _surgery(model)
        root = s.header["root"]
        cls = f"{root.get('module')}.{root.get('name')}"
        if cls in SUBCLASSES:
            sub = _as_subclass(s, cls)
            assert sub is not None
            runs[f"control {model}"] = (s.blob(), [sub], MODELS[model][1])
    return runs


@pytest.fixture(scope="module")
def subclassed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_cases(_subclass_runs(), tmp_path_factory.mktemp("subclassed"))


@pytest.mark.parametrize("case", SUBCLASSED)
def test_crafted_state_under_a_trusted_subclass_is_a_format_error(
    subclassed: dict[str, Any], case: str
) -> None:
    got = subclassed[case]
    assert "crashed" not in got, f"the child died (exit {got['crashed']}):\n{got['stderr']}"
    _model, _edit, cls, text = CASES[case]
    assert got["error"] == "FormatError", f"not refused: {got}"
    assert text in got["message"], got["message"]
    # Its own check, or one of the objects it holds (whose classes are not renamed).
    named = (f"invalid {SUBCLASSES[cls]} (checked as its base class {cls}): ", "invalid ")
    assert got["message"].split(": ", 1)[1].startswith(named), got["message"]


def test_a_trusted_subclass_of_every_sample_loads_and_predicts_the_same(
    subclassed: dict[str, Any],
) -> None:
    controls = {k: v for k, v in subclassed.items() if k.startswith("control ")}
    assert len(controls) >= 30, sorted(controls)
    for key, got in controls.items():
        assert got.get("error") is None and "crashed" not in got, (key, got)
        make, x = MODELS[key.removeprefix("control ")]
        assert got["outputs"] == outputs(make(), DATA[x]), key


def test_every_validated_class_lends_its_checks_to_a_subclass() -> None:
    from modelsafe._handlers import validator_for, validator_of

    assert len(SUBCLASSES) > 100
    for base, sub in SUBCLASSES.items():
        cls = _user_subclasses.__dict__[sub.rpartition(".")[2]]
        assert validator_of(cls) == (base, validator_for(base)), sub


@pytest.mark.slow
def test_without_the_base_class_checks_a_subclass_lets_crafted_files_through(
    tmp_path: Path,
) -> None:
    """The threat is real: with validators found by exact class name only (as before),
    the crafted files under a trusted subclass load, or crash the child."""
    runs = {k: v for k, v in _subclass_runs().items() if not k.startswith("control ")}
    exact_only = (
        "import modelsafe._graph.decode as d\n"
        "from modelsafe._graph.names import qualname\n"
        "_of = d.validator_of\n"
        "d.validator_of = lambda cls: (lambda f: f if f and f[0] == qualname(cls) else None)"
        "(_of(cls))\n"
    )
    results = run_cases(runs, tmp_path, timeout=30, prelude=exact_only)
    through = {name for name, got in results.items() if "crashed" in got or got["error"] is None}
    assert len(through) >= len(runs) // 4, sorted(set(runs) - through)
    assert any("crashed" in results[name] for name in through), "none crashed"


def _random_edit(s: Surgery, tag: str, rng: np.random.Generator) -> None:
    """One random edit of the first ``tag`` node: bytes of its records, one of its
    per-part counts, or one of its scalars."""
    path = _first_tagged(s, tag)
    node = s.node(path)
    kind = int(rng.integers(4))
    if kind == 0:

        def flip(raw: np.ndarray[Any, Any]) -> None:
            flat = raw.reshape(-1)
            for _ in range(int(rng.integers(1, 4))):
                flat[int(rng.integers(len(flat)))] = int(rng.integers(256))

        s.edit((*path, "nodes"), flip)
        return
    lists = [k for k in ("sizes", "md", "bits") if k in node]
    if kind < 3:
        values = node[lists[int(rng.integers(len(lists)))]]
        i = int(rng.integers(len(values)))
        values[i] = int(rng.choice([0, 1, values[i] - 1, values[i] + 1, 2**31, -1]))
        return
    scalars = [k for k in ("nf", "k") if k in node]
    if scalars:
        node[scalars[0]] = int(rng.choice([1, 2, 3, 5, 100, 2**40]))
    if "nc" in node:
        node["nc"] = [int(rng.choice([1, 2, 3, 7]))] * int(rng.integers(1, 3))


@pytest.mark.slow
def test_randomly_edited_tree_and_predictor_columns_never_crash(tmp_path: Path) -> None:
    """400 random edits of ``sk.trees`` and ``sk.hgbps`` nodes (record bytes, sizes,
    depths, bitset counts, feature and class counts), each loaded and, when it loads,
    predicted in a child process: a modelsafe error or a working model, never a crash, a
    hang or another exception. (Edits of thresholds and values keep a valid model.)"""
    rng = np.random.default_rng(2026)
    runs = {}
    for model, tag in (
        ("random_forest_trees", "sk.trees"),
        ("gradient_boosting_trees", "sk.trees"),
        ("hgb_predictors", "sk.hgbps"),
        ("hgb_categorical_predictors", "sk.hgbps"),
    ):
        for i in range(100):
            s = _surgery(model)
            _random_edit(s, tag, rng)
            runs[f"{model} {i}"] = (s.blob(), _trusted(model), MODELS[model][1])
    results = run_cases(runs, tmp_path, timeout=120)
    crashed = {name: got for name, got in results.items() if "crashed" in got}
    assert not crashed, crashed
    other = {
        name: got
        for name, got in results.items()
        if (got["error"] and not got["modelsafe"]) or "predict_error" in got
    }
    assert not other, other
    refused = sum(1 for got in results.values() if got["error"])
    assert 0 < refused < len(results)  # both outcomes occur: the edits are not all fatal


def _binary_trees() -> dict[str, Callable[[], Any]]:
    from sklearn.neighbors import _ball_tree, _kd_tree

    x = DATA["iris"]
    return {
        "KDTree": lambda: _kd_tree.KDTree(x, leaf_size=5),
        "KDTree64 chebyshev": lambda: _kd_tree.KDTree64(x, metric="chebyshev"),
        "KDTree32 minkowski": lambda: _kd_tree.KDTree32(
            x.astype(np.float32), metric="minkowski", p=3
        ),
        "BallTree weighted minkowski": lambda: _ball_tree.BallTree(
            x, leaf_size=3, metric="minkowski", p=1.5, w=np.arange(1.0, 5.0)
        ),
        "BallTree64 canberra": lambda: _ball_tree.BallTree64(x, metric="canberra"),
        "BallTree32 euclidean": lambda: _ball_tree.BallTree32(x.astype(np.float32)),
        "BallTree python metric": lambda: _ball_tree.BallTree(
            x[:40], metric=_scipy_euclidean(), leaf_size=8
        ),
    }


def _scipy_euclidean() -> Any:
    from scipy.spatial.distance import euclidean

    return euclidean


BINARY_TREES = _binary_trees()


@pytest.mark.parametrize("name", BINARY_TREES)
def test_binary_trees_of_every_kind_load(name: str) -> None:
    """KD and ball trees in both precisions and with sized metrics pass the validators and
    answer queries as before."""
    tree = BINARY_TREES[name]()
    data = modelsafe.dumps(tree)
    got = modelsafe.loads(data, trusted=modelsafe.untrusted_types(data))
    assert modelsafe.untrusted_types(data) in ([], ["scipy.spatial.distance.euclidean"])
    x = np.asarray(tree.data)[:10]
    for a, b in zip(tree.query(x, k=3), got.query(x, k=3), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(tree.kernel_density(x, h=0.5), got.kernel_density(x, h=0.5))


@pytest.mark.parametrize(
    ("metric", "params"),
    [
        ("mahalanobis", {"VI": np.eye(4) * 2}),
        ("seuclidean", {"V": np.arange(1.0, 5.0)}),
        ("minkowski", {"p": 3, "w": np.arange(1.0, 5.0)}),
        ("haversine", {}),
        ("jaccard", {}),
    ],
)
def test_distance_metrics_load(metric: str, params: dict[str, Any]) -> None:
    from sklearn.metrics import DistanceMetric

    m = DistanceMetric.get_metric(metric, **params)
    got = modelsafe.loads(modelsafe.dumps(m))
    x = DATA["iris"][:8, :2] if metric == "haversine" else DATA["iris"][:8]
    if metric == "jaccard":
        x = x > 3
    assert np.array_equal(m.pairwise(x), got.pairwise(x))


def _trust_list() -> dict[str, set[str]]:
    from importlib import resources

    text = (resources.files("modelsafe") / "_trustlists" / "sklearn_internals.txt").read_text()
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            out[words[0]] = set(words[1:])
    return out


def test_trust_list_names_resolve_and_compiled_ones_are_validated() -> None:
    """Every name resolves to an object that names itself so; every compiled class or
    function trusted to be called or created has a validator (values are only passed
    to one that has, like newObj)."""
    import importlib

    from modelsafe._graph.names import resolve
    from modelsafe._handlers.sklearn import VALIDATORS

    for name, uses in _trust_list().items():
        module, _, attr = name.rpartition(".")
        obj = resolve(module, attr)
        compiled = str(getattr(importlib.import_module(module), "__file__", "")).endswith(".so")
        if compiled and uses & {"call", "new"}:
            assert name in VALIDATORS, name
        assert not modelsafe._trust.never_trustable(name), name
        assert obj is not None


def _sk_tree_node(s: Surgery) -> dict[str, Any]:
    return next(node for _p, node in _tagged(s.header["root"], "sk.tree"))


# Broken ``sk.tree`` nodes the audit refuses, before anything is imported or built.
SK_TREE_AUDIT: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "no class counts": (lambda n: n.update(nc=[]), "'nc' must be a non-empty list"),
    "a zero class count": (lambda n: n.update(nc=[0]), "'nc' must be an integer in [1,"),
    "a float feature count": (lambda n: n.update(nf=4.0), "'nf' must be an integer"),
    "a negative max_depth": (lambda n: n.update(md=-1), "'md' must be an integer in [0,"),
    "nodes given as a list": (lambda n: n.update(nodes=[1, 2]), "'nodes' must be an 'nd' node"),
    "values with an id": (lambda n: n["values"].update(id=99), "'values' must be an 'nd' node"),
    "no values": (lambda n: n.pop("values"), "lacks 'values'"),
    "an extra member": (lambda n: n.update(extra=1), "unexpected member(s) ['extra']"),
}


@pytest.mark.parametrize("case", SK_TREE_AUDIT)
def test_broken_sk_tree_nodes_fail_the_audit(case: str) -> None:
    edit, text = SK_TREE_AUDIT[case]
    s = _surgery("decision_tree_compact")
    edit(_sk_tree_node(s))
    with pytest.raises(modelsafe.FormatError, match=re.escape(text)):
        modelsafe.loads(s.blob())


def test_trees_are_saved_as_compact_nodes_and_load_the_same() -> None:
    """The default writer gives every Tree an ``sk.tree`` node: no structured dtype in the
    header, the same predictions, and the generic form of the same model still loads."""
    model, x = MODELS["random_forest"][0](), DATA["iris_nan"]
    blob = modelsafe.dumps(model)
    header = split(blob).header
    assert len(list(_tagged(header["root"], "sk.tree"))) == len(model.estimators_)
    assert not list(_tagged(header["root"], "call"))  # no Tree left in the generic form
    assert outputs(modelsafe.loads(blob), x) == outputs(model, x)
    with full_form():
        generic = modelsafe.dumps(model)
    assert len(generic) > len(blob)
    assert outputs(modelsafe.loads(generic), x) == outputs(model, x)


def _sk_trees(s: Surgery) -> dict[str, Any]:
    return next(node for _p, node in _tagged(s.header["root"], "sk.trees"))


def _objs(s: Surgery) -> dict[str, Any]:
    return next(node for _p, node in _tagged(s.header["root"], "objs"))


def _trees_outside_a_column(s: Surgery) -> None:
    """A copy of the column node as a hyperparameter every estimator shares."""
    _objs(s)["same"]["criterion"] = copy.deepcopy(_sk_trees(s))


def _other_kind_as_column(s: Surgery) -> None:
    run = _objs(s)
    run["each"]["tree_"] = run["each"]["tree_"]["nodes"]


def _column_in_a_tuple(s: Surgery) -> None:
    run = _objs(s)
    run["each"]["tree_"] = {"$": "tuple", "v": [run["each"]["tree_"]]}


# Broken ``sk.trees`` columns the audit refuses, before anything is imported or built.
SK_TREES_AUDIT: dict[str, tuple[Callable[[Surgery], None], str]] = {
    "md shorter than the run": (
        lambda s: _sk_trees(s)["md"].pop(),
        "'md' must be a list of 12 integers, one per tree",
    ),
    "sizes given as an array node": (
        lambda s: _sk_trees(s).update(sizes={"$": "nd"}),
        "'sizes' must be a list of 12 integers",
    ),
    "a tree of no nodes": (
        lambda s: _sk_trees(s)["sizes"].__setitem__(0, 0),
        "'sizes' must hold integers in [1,",
    ),
    "a float depth": (
        lambda s: _sk_trees(s)["md"].__setitem__(3, 1.0),
        "'md' must hold integers in [0,",
    ),
    "a huge size": (
        lambda s: _sk_trees(s)["sizes"].__setitem__(0, 2**63),
        "'sizes' must hold integers in [1,",
    ),
    "nodes with an id": (
        lambda s: _sk_trees(s)["nodes"].update(id=99),
        "'nodes' must be an 'nd' node without an id",
    ),
    "the column with an id": (
        lambda s: _sk_trees(s).update(id=99),
        "unexpected member(s) ['id']",
    ),
    "no class counts": (lambda s: _sk_trees(s).update(nc=[]), "'nc' must be a non-empty list"),
    "outside a column": (
        _trees_outside_a_column,
        "may only stand as a column of an 'objs' run",
    ),
    "an array as a column": (_other_kind_as_column, "a 'nd' node cannot stand as a column"),
    "the column inside a tuple standing as the column": (
        _column_in_a_tuple,
        "may only stand as a column of an 'objs' run",
    ),
}


@pytest.mark.parametrize("case", SK_TREES_AUDIT)
def test_broken_sk_trees_columns_fail_the_audit(case: str) -> None:
    edit, text = SK_TREES_AUDIT[case]
    s = _surgery("random_forest_trees")
    edit(s)
    with pytest.raises(modelsafe.FormatError, match=re.escape(text)):
        modelsafe.loads(s.blob())


def _saved_both_ways(base: str) -> tuple[Any, Any, bytes, bytes]:
    """A fresh ``MODELS[base]`` model, its probe data, and the model saved with a run's
    trees (or a model's predictors) as one node, and with one node a tree (predictor)."""
    model, x = MODELS[base][0](), DATA[MODELS[base][1]]
    with full_form(compact_trees=True, tree_runs=True):
        blob = modelsafe.dumps(model)
    with full_form(compact_trees=True):
        rows = modelsafe.dumps(model)
    return model, x, blob, rows


@pytest.mark.parametrize("base", ["random_forest_run", "gradient_boosting_run"])
def test_the_trees_of_a_run_are_saved_as_one_column_and_load_the_same(base: str) -> None:
    """A run of estimators stores its trees as one ``sk.trees`` node (two buffers for all
    of them): a smaller file than one ``sk.tree`` node a tree, the same predictions, and
    the one-node-a-tree form of the same model still loads."""
    model, x, blob, rows = _saved_both_ways(base)
    header = split(blob).header
    (column,) = [node for _p, node in _tagged(header["root"], "sk.trees")]
    assert not list(_tagged(header["root"], "sk.tree"))
    trees = [est.tree_ for est in np.ravel(model.estimators_)]
    assert column["sizes"] == [t.node_count for t in trees]
    assert column["md"] == [t.max_depth for t in trees]
    assert len(header["buffers"]) < len(split(rows).header["buffers"])
    assert len(blob) < len(rows)
    assert outputs(modelsafe.loads(blob), x) == outputs(model, x)
    assert outputs(modelsafe.loads(rows), x) == outputs(model, x)
    # The default writer (small arrays in the table) gives the same form.
    assert len(list(_tagged(split(modelsafe.dumps(model)).header["root"], "sk.trees"))) == 1


def test_an_sk_trees_record_holds_its_nodes_depth() -> None:
    """Bytes 57-58 of each record are the node's depth (walked here from each root, in
    Python), bytes 59-63 zero; scikit-learn's own records are otherwise unchanged."""
    model = MODELS["random_forest_run"][0]()
    with full_form(compact_trees=True, tree_runs=True):
        s = Surgery(modelsafe.dumps(model))
    path = next(p for p, _n in _tagged(s.header["root"], "sk.trees"))
    raw = s.array((*path, "nodes"))
    at = 0
    for est in model.estimators_:
        tree = est.tree_
        depth = [0] * tree.node_count
        for i in range(tree.node_count):
            for child in (tree.children_left[i], tree.children_right[i]):
                if child != -1:
                    depth[child] = depth[i] + 1
        mine = raw[at : at + tree.node_count]
        assert mine[:, 57:59].copy().view("<u2").ravel().tolist() == depth
        assert not mine[:, 59:].any()
        theirs = tree.__getstate__()["nodes"].view(np.uint8).reshape(-1, 64)
        assert np.array_equal(mine[:, :57], theirs[:, :57])
        at += tree.node_count
    assert at == len(raw)


def test_a_tree_shared_by_two_estimators_keeps_the_row_form() -> None:
    """A column node holds values nothing else refers to: a tree that two estimators of a
    run share is stored once, by reference, and loads as one object again."""
    model = MODELS["random_forest_run"][0]()
    model.estimators_[3].tree_ = model.estimators_[2].tree_
    blob = modelsafe.dumps(model)
    assert not list(_tagged(split(blob).header["root"], "sk.trees"))
    loaded = modelsafe.loads(blob)
    assert loaded.estimators_[3].tree_ is loaded.estimators_[2].tree_
    x = DATA["iris_nan"]
    assert outputs(loaded, x) == outputs(model, x)


def test_the_trees_of_a_run_are_checked_in_bounded_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """With batches of a tree or two, every batch of the column is checked: the untouched
    run loads the same, and a tree broken in a middle batch is refused by its number."""
    import modelsafe._handlers.sklearn._tree as tr

    s = _surgery("random_forest_trees")
    good = s.blob()
    column = _sk_trees(s)
    sizes = column["sizes"]
    monkeypatch.setattr(tr, "_BATCH", max(sizes) + 1)
    path = next(p for p, _n in _tagged(s.header["root"], "sk.trees"))
    at = sum(sizes[:8])

    def break_tree_8(raw: np.ndarray[Any, Any]) -> None:
        raw.view(tr.LAYOUT)["left_child"][at] = 4_000_000_000

    s.edit((*path, "nodes"), break_tree_8)
    make, x = MODELS["random_forest_trees"]
    assert outputs(modelsafe.loads(good), DATA[x]) == outputs(make(), DATA[x])
    with pytest.raises(
        modelsafe.FormatError, match=re.escape("tree 8 of 12: children_left[0] = 4000000000")
    ):
        modelsafe.loads(s.blob())


def _sk_hgbps(s: Surgery) -> dict[str, Any]:
    return next(node for _p, node in _tagged(s.header["root"], "sk.hgbps"))


# Broken ``sk.hgbps`` nodes the audit refuses, before anything is imported or built.
SK_HGBPS_AUDIT: dict[str, tuple[str, Callable[[dict[str, Any]], Any], str]] = {
    "no predictors an iteration": ("hgb_predictors", lambda n: n.update(k=0), "'k' must be"),
    "rows of another length": (
        "hgb_predictors",
        lambda n: n.update(k=2),
        "'sizes' must be a non-empty list of node counts in [1, 2**32], rows of 2",
    ),
    "no predictors": ("hgb_predictors", lambda n: n.update(sizes=[]), "'sizes' must be"),
    "a predictor of no nodes": (
        "hgb_predictors",
        lambda n: n["sizes"].__setitem__(3, 0),
        "'sizes' must be",
    ),
    "bitsets without their counts": (
        "hgb_categorical_predictors",
        lambda n: n.pop("bits"),
        "'bits', 'binned' and 'raw' come together",
    ),
    "bitset counts of another length": (
        "hgb_categorical_predictors",
        lambda n: n["bits"].pop(),
        "'bits' must be a list of 5 bitset counts",
    ),
    "records with an id": (
        "hgb_predictors",
        lambda n: n["nodes"].update(id=77),
        "'nodes' must be an 'nd' node without an id",
    ),
    "an id": ("hgb_predictors", lambda n: n.update(id=77), "unexpected member(s) ['id']"),
}


@pytest.mark.parametrize("case", SK_HGBPS_AUDIT)
def test_broken_sk_hgbps_nodes_fail_the_audit(case: str) -> None:
    model, edit, text = SK_HGBPS_AUDIT[case]
    s = _surgery(model)
    edit(_sk_hgbps(s))
    with pytest.raises(modelsafe.FormatError, match=re.escape(text)):
        modelsafe.loads(s.blob())


@pytest.mark.parametrize("base", ["hist_gradient_boosting", "hist_gradient_boosting_categorical"])
def test_a_models_predictors_are_saved_as_one_node_and_load_the_same(base: str) -> None:
    """``_predictors`` becomes one ``sk.hgbps`` node (its bitsets included): fewer buffers,
    a smaller file, the same predictions; the one-node-a-predictor form still loads."""
    model, x, blob, rows = _saved_both_ways(base)
    header = split(blob).header
    (node,) = [n for _p, n in _tagged(header["root"], "sk.hgbps")]
    assert not list(_tagged(header["root"], "sk.hgbp"))
    flat = [p for row in model._predictors for p in row]
    assert node["k"] == len(model._predictors[0])
    assert node["sizes"] == [len(p.nodes) for p in flat]
    assert ("bits" in node) == any(len(p.raw_left_cat_bitsets) for p in flat)
    assert len(header["buffers"]) < len(split(rows).header["buffers"])
    assert len(blob) < len(rows)
    for b in (blob, rows, modelsafe.dumps(model)):
        loaded = modelsafe.loads(b)
        assert outputs(loaded, x) == outputs(model, x)
        assert [len(r) for r in loaded._predictors] == [len(r) for r in model._predictors]


def test_a_predictor_list_referred_to_twice_keeps_its_rows() -> None:
    """``_predictors`` shared with another attribute stays a list of ``sk.hgbp`` nodes,
    so the second reference loads as the same list."""
    model = MODELS["hist_gradient_boosting"][0]()
    model.kept_ = model._predictors
    blob = modelsafe.dumps(model)
    assert not list(_tagged(split(blob).header["root"], "sk.hgbps"))
    loaded = modelsafe.loads(blob, trusted=[])
    assert loaded.kept_ is loaded._predictors
    x = DATA["iris_nan"]
    assert outputs(loaded, x) == outputs(model, x)


def _forest_records() -> tuple[list[np.ndarray[Any, Any]], list[Any]]:
    """The ``LAYOUT`` records (uint8 rows) and the trees of real forests of varied shapes."""
    from sklearn import ensemble as en

    from modelsafe._handlers.sklearn._tree import LAYOUT

    trees = [
        *(e.tree_ for e in MODELS["random_forest"][0]().estimators_),
        *(e.tree_ for e in MODELS["extra_trees"][0]().estimators_),
        *(e.tree_ for e in en.ExtraTreesClassifier(3, max_depth=1, random_state=0).fit(
            DATA["iris"], DATA["y_iris"]).estimators_),
    ]  # fmt: skip
    raws = [
        np.ascontiguousarray(t.__getstate__()["nodes"])
        .astype(LAYOUT)
        .view(np.uint8)
        .reshape(-1, 64)
        for t in trees
    ]
    return raws, trees


def _alone(raws: list[Any], trees: list[Any], depths: list[int]) -> bool:
    """Whether every tree passes check_nodes, the one-tree check."""
    from modelsafe._handlers.sklearn._tree import LAYOUT, check_nodes

    try:
        for raw, t, md in zip(raws, trees, depths, strict=True):
            check_nodes(raw.view(LAYOUT).reshape(len(raw)), t.__getstate__()["values"],
                        t.n_features, t.n_outputs, t.max_n_classes, md)  # fmt: skip
    except ValueError:
        return False
    return True


def _together(raws: list[Any], trees: list[Any], depths: list[int]) -> bool:
    from modelsafe._handlers.sklearn._tree import check_forest

    return check_forest(
        np.concatenate(raws),
        np.array([len(r) for r in raws]),
        np.array([t.n_features for t in trees]),
        np.array(depths),
    )


def test_checking_trees_together_agrees_with_checking_them_alone() -> None:
    """check_forest (all trees at once) accepts exactly the forests that check_nodes accepts
    tree by tree: the real ones, and 400 with one random field of one record broken."""
    raws, trees = _forest_records()
    depths = [t.max_depth for t in trees]
    assert _together(raws, trees, depths) and _alone(raws, trees, depths)
    rng = np.random.default_rng(0)
    verdicts = {True: 0, False: 0}
    for _ in range(400):
        broken = [r.copy() for r in raws]
        depth = list(depths)
        k = int(rng.integers(len(broken)))
        row = int(rng.integers(len(broken[k])))
        # left, right, feature, threshold, missing_go_to_left (byte 56), or max_depth
        column = int(rng.choice([0, 1, 2, 3, 7, 8]))
        words = broken[k].view("<i8")
        if column == 3:
            broken[k].view("<f8")[row, 3] = rng.choice([np.nan, -2.0, 1e300])
        elif column == 7:
            broken[k][row, 56] = rng.choice([0, 1, 2, 255])
        elif column == 8:
            depth[k] += int(rng.choice([-2, -1, 1]))
        else:
            words[row, column] = rng.choice(
                [-2, -1, 0, row, row + 1, len(broken[k]) - 1, len(broken[k]), 10**6, -(2**62)]
            )
        together, alone = _together(broken, trees, depth), _alone(broken, trees, depth)
        assert together == alone, (k, row, column)
        verdicts[alone] += 1
    assert verdicts[True] and verdicts[False] > 200  # both outcomes were exercised


def _chain(levels: int) -> np.ndarray[Any, Any]:
    """Records of a tree whose internal nodes form one path, ``levels`` deep."""
    from modelsafe._handlers.sklearn._tree import LAYOUT

    n = 2 * levels + 1
    nodes = np.zeros(n, dtype=LAYOUT)
    inner = np.arange(0, n - 1, 2)
    nodes["left_child"], nodes["right_child"], nodes["feature"] = -1, -1, -2
    nodes["left_child"][inner] = inner + 1  # a leaf
    nodes["right_child"][inner] = inner + 2  # the next internal node, or the last leaf
    nodes["feature"][inner] = 0
    return nodes.view(np.uint8).reshape(n, 64)


@pytest.mark.parametrize("levels", [1, 63, 64, 65, 300])
def test_deep_trees_are_checked_past_the_level_by_level_walk(levels: int) -> None:
    """Depths come level by level up to 64 levels, then by pointer jumping: both give the
    exact depth, so a max_depth one off either way fails."""
    from modelsafe._handlers.sklearn._tree import check_forest

    small = _chain(3)
    raw = np.concatenate([small, _chain(levels), small])
    sizes = np.array([len(small), 2 * levels + 1, len(small)])
    for depth, ok in ((levels, True), (levels - 1, False), (levels + 1, False)):
        assert check_forest(raw, sizes, np.array([1, 1, 1]), np.array([3, depth, 3])) is ok


def _forests() -> dict[str, tuple[Callable[[], Any], np.ndarray[Any, Any]]]:
    from sklearn import ensemble as en

    chain = np.arange(150.0).reshape(-1, 1)
    wide = np.random.default_rng(0).normal(size=(12_000, 3))
    return {
        # Each split cuts off the largest 3**x: chains 149 levels deep, past the
        # level-by-level walk of _depths.
        "deep": (
            lambda: en.RandomForestRegressor(n_estimators=8, bootstrap=False, random_state=0).fit(
                chain, 3.0 ** chain[:, 0]
            ),
            chain,
        ),
        # Best-first trees number their nodes in another order than depth-first ones.
        "best_first": (
            lambda: en.RandomForestClassifier(
                n_estimators=8, max_leaf_nodes=12, random_state=0
            ).fit(DATA["iris"], DATA["y_iris"]),
            DATA["iris"],
        ),
        # More records than one batch of _forest_records (and of the reader's checks).
        "batches": (
            lambda: en.ExtraTreesRegressor(n_estimators=8, random_state=0).fit(
                wide, np.arange(12_000.0)
            ),
            wide[:500],
        ),
    }


@pytest.mark.parametrize("forest", ["deep", "best_first", "batches"])
def test_a_saved_forest_holds_the_depths_its_trees_have(forest: str) -> None:
    """The depths a writer stores in a run's records (from scikit-learn's
    ``compute_node_depths``) are those the reader's own walk finds, and the file loads."""
    from modelsafe._handlers.sklearn._tree import _depths, _forest_shape

    make, x = _forests()[forest]
    model = make()
    blob = modelsafe.dumps(model)
    with full_form(compact_trees=True, tree_runs=True):
        s = Surgery(modelsafe.dumps(model))
    path = _first_tagged(s, "sk.trees")
    raw = s.array((*path, "nodes")).copy()
    sizes = np.array(s.node(path)["sizes"])
    assert len(sizes) == len(model.estimators_)
    shape = _forest_shape(raw, sizes)
    assert shape is not None
    leaf, inner, (starts, _tree, to_left, to_right) = shape
    walked = _depths(len(raw), starts, leaf, inner, to_left, to_right)
    stored = raw[:, 57:59].copy().view("<u2")[:, 0]
    assert np.array_equal(stored, walked)
    assert int(walked.max()) == max(e.tree_.max_depth for e in model.estimators_)
    if forest == "deep":
        assert int(walked.max()) > 64
    if forest == "batches":
        assert len(raw) > 1 << 16
    assert outputs(modelsafe.loads(blob), x) == outputs(model, x)


# -- the sk.hgbp node --------------------------------------------------------------------------

HGBP = "sk.hgbp"
# Broken ``sk.hgbp`` nodes the audit refuses, before anything is imported or built.
SK_HGBP_AUDIT: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "bitsets without their raw twin": (lambda n: n.pop("raw"), "'binned' and 'raw' come together"),
    "nodes given as a list": (lambda n: n.update(nodes=[1, 2]), "'nodes' must be an 'nd' node"),
    "nodes with an id": (lambda n: n["nodes"].update(id=99), "'nodes' must be an 'nd' node"),
    "no nodes": (lambda n: n.pop("nodes"), "lacks 'nodes'"),
    "an extra member": (lambda n: n.update(extra=1), "unexpected member(s) ['extra']"),
}


@pytest.mark.parametrize("case", SK_HGBP_AUDIT)
def test_broken_sk_hgbp_nodes_fail_the_audit(case: str) -> None:
    edit, text = SK_HGBP_AUDIT[case]
    s = _surgery("hgb_categorical_compact")
    edit(next(node for _p, node in _tagged(s.header["root"], HGBP) if "raw" in node))
    with pytest.raises(modelsafe.FormatError, match=re.escape(text)):
        modelsafe.loads(s.blob())


@pytest.mark.parametrize("model", ["hist_gradient_boosting", "hist_gradient_boosting_categorical"])
def test_predictors_are_saved_as_compact_nodes_and_load_the_same(model: str) -> None:
    """Outside a model's list, every TreePredictor gets an ``sk.hgbp`` node (bitsets only
    where a split is categorical); in both that form and the default one (``sk.hgbps``)
    the loaded predictors have scikit-learn's own record dtype and the same records and
    bitsets, and the generic form of the same model still loads."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    make, x = MODELS[model]
    fitted = make()
    with full_form(compact_trees=True):
        blob = modelsafe.dumps(fitted)
    nodes = [node for _p, node in _tagged(split(blob).header["root"], HGBP)]
    predictors = [p for row in fitted._predictors for p in row]
    assert len(nodes) == len(predictors)
    assert [("raw" in n) for n in nodes] == [len(p.raw_left_cat_bitsets) > 0 for p in predictors]
    for loaded in (modelsafe.loads(blob), modelsafe.loads(modelsafe.dumps(fitted))):
        mine = [p for row in loaded._predictors for p in row]
        assert all(p.nodes.dtype == PREDICTOR_RECORD_DTYPE for p in mine)
        for a, b in zip(mine, predictors, strict=True):
            assert a.nodes.tobytes() == b.nodes.tobytes()
            assert np.array_equal(a.raw_left_cat_bitsets, b.raw_left_cat_bitsets)
            assert np.array_equal(a.binned_left_cat_bitsets, b.binned_left_cat_bitsets)
        assert outputs(loaded, DATA[x]) == outputs(fitted, DATA[x])
    with full_form():
        generic = modelsafe.dumps(fitted)
    assert not list(_tagged(split(generic).header["root"], HGBP))
    assert outputs(modelsafe.loads(generic), DATA[x]) == outputs(fitted, DATA[x])


def test_checking_predictors_together_agrees_with_checking_them_alone() -> None:
    """check_predictors (all predictors at once) accepts exactly the predictors that
    predictor_state accepts one by one: the real ones, and 400 with one random field of
    one record broken."""
    from modelsafe._handlers.sklearn._hgb import LAYOUT, check_predictors, predictor_state

    fitted = [
        MODELS[m][0]() for m in ("hist_gradient_boosting", "hist_gradient_boosting_categorical")
    ]
    predictors = [p for model in fitted for row in model._predictors for p in row]
    records = [p.nodes.astype(LAYOUT) for p in predictors]
    bits = [len(p.raw_left_cat_bitsets) for p in predictors]

    def together(recs: list[np.ndarray[Any, Any]]) -> bool:
        return check_predictors(
            np.concatenate(recs), np.array([len(r) for r in recs]), np.array(bits)
        )

    def alone(recs: list[np.ndarray[Any, Any]]) -> bool:
        try:
            for r, p in zip(recs, predictors, strict=True):
                predictor_state(None, {
                    "nodes": r,
                    "binned_left_cat_bitsets": p.binned_left_cat_bitsets,
                    "raw_left_cat_bitsets": p.raw_left_cat_bitsets,
                })  # fmt: skip
        except ValueError:
            return False
        return True

    assert any(bits) and together(records) and alone(records)
    rng = np.random.default_rng(0)
    verdicts = {True: 0, False: 0}
    fields = ["left", "right", "is_leaf", "missing_go_to_left", "is_categorical",
              "feature_idx", "bitset_idx"]  # fmt: skip
    for _ in range(400):
        broken = [r.copy() for r in records]
        k = int(rng.integers(len(broken)))
        row = int(rng.integers(len(broken[k])))
        field = str(rng.choice(fields))
        n = len(broken[k])
        choices = {
            "left": [0, row, row + 1, n - 1, n, 2**32 - 1],
            "right": [0, row, row + 1, n - 1, n, 2**32 - 1],
            "feature_idx": [-1, 0, 3, 2**31 - 1, 2**31],
            "bitset_idx": [0, 1, bits[k], bits[k] + 1, 2**32 - 1],
        }.get(field, [0, 1, 2, 255])
        broken[k][field][row] = rng.choice(choices)
        verdict = alone(broken)
        assert together(broken) == verdict, (k, row, field)
        verdicts[verdict] += 1
    assert verdicts[True] and verdicts[False] > 150  # both outcomes were exercised


def test_predictors_are_checked_in_bounded_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """With batches of a few predictors, every batch is checked: the untouched model loads
    the same, and a predictor broken in a middle batch is still refused, by name."""
    import modelsafe._handlers.sklearn._hgb as hgb

    s = _surgery("hgb_compact")
    good = s.blob()
    n = len(list(_tagged(s.header["root"], HGBP)))
    middle = n // 2
    path = (*[p for p, _n in _tagged(s.header["root"], HGBP)][middle], "nodes")
    s.edit(path, lambda raw: raw.view(hgb.LAYOUT)["left"].__setitem__(0, 4_000_000_000))
    monkeypatch.setattr(hgb, "_BATCH", 40)
    make, x = MODELS["hgb_compact"]
    assert outputs(modelsafe.loads(good), DATA[x]) == outputs(make(), DATA[x])
    with pytest.raises(modelsafe.FormatError, match=re.escape("left[0] = 4000000000")):
        modelsafe.loads(s.blob())


def test_trees_are_checked_in_bounded_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """With batches of a few trees, every batch is checked (the records of each copied over
    the previous batch's): the untouched forest loads the same, and a tree broken in a
    middle batch is still refused, by name."""
    import modelsafe._handlers.sklearn._tree as tr

    s = _surgery("random_forest_compact")
    good = s.blob()
    trees = list(_tagged(s.header["root"], "sk.tree"))
    found = [p for p, _n in trees]
    sizes = [n["nodes"]["shape"][0] for _p, n in trees]
    batch = max(sizes) + 1  # a tree or two a batch: several batches of different lengths
    assert sum(sizes) > 2 * batch
    middle = len(found) // 2
    s.edit((*found[middle], "nodes"),
           lambda raw: raw.view(tr.LAYOUT)["left_child"].__setitem__(0, 4_000_000_000))  # fmt: skip
    monkeypatch.setattr(tr, "_BATCH", batch)
    make, x = MODELS["random_forest_compact"]
    assert outputs(modelsafe.loads(good), DATA[x]) == outputs(make(), DATA[x])
    with pytest.raises(modelsafe.FormatError, match=re.escape("children_left[0] = 4000000000")):
        modelsafe.loads(s.blob())


def test_each_batch_is_checked_on_exactly_its_own_records() -> None:
    """check_in_batches hands ``check`` each batch's records, concatenated into a reused
    scratch array: never a record of an earlier, longer batch."""
    from modelsafe._handlers.sklearn._checks import check_in_batches

    rng = np.random.default_rng(1)
    nodes = [{"n": int(k)} for k in rng.integers(1, 40, size=60)]
    raws = {id(n): rng.integers(0, 255, size=(n["n"], 8), dtype=np.uint8) for n in nodes}
    seen: list[tuple[list[int], np.ndarray[Any, Any]]] = []

    def check(batch: Any, joined: np.ndarray[Any, Any]) -> bool:
        seen.append(([id(node) for node, _ in batch], joined.copy()))
        return len(batch) % 2 == 0  # some batches fail, so both verdicts are returned

    out = check_in_batches(nodes, lambda n: ("arrays", raws[id(n)]), check, 64)
    assert [i for ids, _ in seen for i in ids] == [id(n) for n in nodes]  # each node once
    assert len({len(j) for _, j in seen}) > 1  # batches of several lengths
    for ids, joined in seen:
        assert len(joined) <= 64 or len(ids) == 1
        assert np.array_equal(joined, np.concatenate([raws[i] for i in ids]))
        for i in ids:
            assert out[i] == (("arrays", raws[i]), len(ids) % 2 == 0)


def _linear_kernel(a: Any, b: Any) -> Any:
    return a @ b.T


def test_svm_with_a_callable_kernel_round_trips() -> None:
    """A callable kernel keeps no support vectors (libsvm reads the kernel matrix): the
    SVM validator accepts the empty ``support_vectors_`` and the model predicts the same."""
    from sklearn.svm import SVC

    model = SVC(kernel=_linear_kernel).fit(DATA["iris"], DATA["y_iris"])
    assert model.support_vectors_.shape[0] == 0 < len(model.support_)
    got = modelsafe.loads(modelsafe.dumps(model), trusted=[f"{__name__}._linear_kernel"])
    assert outputs(got, DATA["iris"]) == outputs(model, DATA["iris"])
