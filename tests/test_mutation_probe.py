"""Structured mutations of real files, loaded and then used, each in a forked child.

Where ``test_fuzz`` mutates bytes (most mutations then fail the header hash or the
JSON), this probe changes *values* an attacker controls and re-seals the file: every
integer of the object tree (shapes, counts, hyperparameters, buffer numbers) set to
boundary values, every float to NaN, infinities, 0, -1 and extremes, every dtype
string swapped for another, and words of every buffer (index arrays, tree nodes,
codes) overwritten with extreme values, digests fixed. Each file is loaded with the
defaults in a child under an address-space cap and an alarm, and the object is then
used the way a user would (``predict``, conversions, ``repr``, queries, pickling). The
child must end normally: refused with a ``ModelSafeError``, loaded and used, or loaded
with a use raising an ordinary Python exception (scipy or pandas refusing a value).
Never a signal, a hang or a ``MemoryError``.

The objects are those whose state reaches compiled code or large allocations from
values in the file: scipy.sparse in every format, pandas frames, series and indexes
with extension dtypes, histogram-GBM predictors, KD and ball trees; and 55 fitted
scikit-learn estimators (trees and forests, boosting, SVMs on dense and sparse
input, linear models, neighbors, naive Bayes, clustering, mixtures, scalers on
sparse input, encoders, decompositions, text vectorizers, ...), two composites (a
column transformer pipeline on a DataFrame, a stacking classifier) and XGBoost's and
LightGBM's classifiers (the model bytes and the parameters beside them), each then
asked for every method it has among predict, predict_proba, predict_log_proba,
decision_function, transform, inverse_transform, score_samples, apply,
decision_path, kneighbors and staged_predict, on data that suits it. A conversion
whose output is as large as a dimension (``tocsc`` allocates one entry per column)
is skipped for dimensions of 10 million or more: a matrix that large is valid, and
allocating for it is scipy's behaviour for an honest file too.

The probe is slow (27,890 files, about 3 minutes on 2 cores, a child per core):
``make test-all``. The test that the probe reports each failure it looks for runs
with ``make test``.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import select
import signal
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import modelsafe

from ._crafting import rewrite, split
from .estimators.cases import METHODS as SWEEP_METHODS
from .estimators.cases import quiet

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a child per file (POSIX)")

AS_LIMIT = 3 << 30
ALARM_S = 30
HUGE = 10**7  # conversions that allocate one entry per row or column are skipped above this

INTS = (0, 1, -1, 2, 7, 255, 2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62, -(2**31))
DTYPES = ("<i4", "<i8", "<u8", "|O", "<f8", "<f2", "|b1", "<M8[ns]", "<m8[ns]", ">i8", "|V8", "<U3")
# Floats: a number in the header, or a tagged node for the values JSON has no number for.
FLOATS = (
    {"$": "float", "v": "nan"}, {"$": "float", "v": "inf"}, {"$": "float", "v": "-inf"},
    0.0, -1.0, 1e300, 5e-324,
)  # fmt: skip
WORDS = [(4, v) for v in (0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1000)] + [
    (8, v) for v in (2**63 - 1, 2**63, 2**64 - 1, 2**32)
]


def _diabetes() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """3 diabetes features and a fourth, categorical one (0, 1 or 2), and the target."""
    from sklearn.datasets import load_diabetes

    xd, yd = load_diabetes(return_X_y=True)
    return np.c_[xd[:, :3], (xd[:, 3] > 0).astype(float) + (xd[:, 4] > 0)], yd


def _objects() -> dict[str, Any]:
    import pandas as pd
    import scipy.sparse as sp
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.neighbors import BallTree, KDTree

    rng = np.random.default_rng(0)
    dense = rng.standard_normal((6, 5))
    dense[dense < 0.3] = 0
    out: dict[str, Any] = {}
    for fmt in ("csr", "csc", "coo", "bsr", "dia", "lil", "dok"):
        out[f"{fmt}_matrix"] = getattr(sp, f"{fmt}_matrix")(dense)
        out[f"{fmt}_array"] = getattr(sp, f"{fmt}_array")(dense)
    out["csr_1d"] = sp.csr_array(np.array([0, 1.5, 0, 2.0]))
    out["coo_3d"] = sp.coo_array(np.arange(24.0).reshape(2, 3, 4) % 5)
    out["bsr_blocks"] = sp.bsr_matrix(np.kron(np.eye(3), np.ones((2, 2))), blocksize=(2, 2))
    out["frame"] = pd.DataFrame(
        {
            "i": np.arange(6),
            "f": np.linspace(0, 1, 6),
            "s": pd.Series(list("abcdef"), dtype="str"),
            "o": np.array(["x", 1, None, 2.5, "y", "z"], dtype=object),
            "c": pd.Categorical(list("abcabc")),
            "n": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
            "t": pd.date_range("2024-01-01", periods=6, tz="UTC"),
            "d": pd.timedelta_range(0, periods=6, freq="h"),
            "p": pd.period_range("2024-01", periods=6, freq="M"),
            "iv": pd.interval_range(0, 6),
            "bo": pd.array([True, None, False, True, True, None], dtype="boolean"),
        }
    )
    out["frame_multiindex"] = pd.DataFrame(
        rng.standard_normal((4, 3)),
        index=pd.MultiIndex.from_product([["a", "b"], [1, 2]]),
        columns=["x", "y", "z"],
    )
    out["series_categorical"] = pd.Series(
        pd.Categorical(["a", "b", "a", None], categories=["b", "a"], ordered=True)
    )
    out["series_range_index"] = pd.Series([1.0, 2.0, 3.0], index=pd.RangeIndex(10, 16, 2))
    out["series_sparse"] = pd.Series(pd.arrays.SparseArray([0, 0, 1, 0, 2]))
    out["datetime_index"] = pd.date_range("2024-01-01", periods=5, freq="D")
    out["categorical_index"] = pd.CategoricalIndex(["a", "b", "a"])
    out["interval_index"] = pd.IntervalIndex.from_breaks([0, 1, 3, 7])
    out["multiindex"] = pd.MultiIndex.from_arrays([["a", "a", "b"], [1, 2, 1]], names=["k", "v"])
    x, y = load_iris(return_X_y=True)
    out["hgb_classifier"] = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(x, y)
    xc, yd = _diabetes()
    out["hgb_regressor_categorical"] = HistGradientBoostingRegressor(
        max_iter=3, categorical_features=[3], random_state=0
    ).fit(xc, yd)
    out["kdtree"] = KDTree(x[:40], leaf_size=5)
    out["balltree"] = BallTree(x[:40], leaf_size=5)
    return out


def _column_pipeline() -> Any:
    """A column transformer on a DataFrame (one-hot and scaled columns) and a classifier."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer(
        [("k", OneHotEncoder(), ["k"]), ("ab", StandardScaler(), ["a", "b"])]
    )
    return make_pipeline(columns, LogisticRegression())


def _estimators() -> dict[str, tuple[Any, Any]]:
    """Fitted estimators whose state reaches compiled code at predict time, each with the
    data its methods are called on: name -> (estimator, X)."""
    import lightgbm
    import pandas as pd
    import scipy.sparse as sp
    import xgboost
    from sklearn import (
        cluster,
        covariance,
        cross_decomposition,
        decomposition,
        discriminant_analysis,
        ensemble,
        feature_extraction,
        feature_selection,
        gaussian_process,
        impute,
        isotonic,
        kernel_approximation,
        kernel_ridge,
        linear_model,
        mixture,
        naive_bayes,
        neighbors,
        neural_network,
        preprocessing,
        svm,
        tree,
    )  # fmt: skip
    from sklearn.datasets import load_diabetes, load_iris

    x, y = load_iris(return_X_y=True)
    xd, yd = load_diabetes(return_X_y=True)
    xd = xd[:, :4]
    xs = sp.csr_matrix(np.where(x > 3, x, 0))  # sparse input: the compiled sparse paths
    xi = x.astype(int) % 3  # categories
    docs = ["the cat sat", "a dog ran far", "the dog sat down", "cats and dogs", "far cat"] * 4
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "k": np.array(["u", "v", "w"])[xi[:, 2]]})

    def clf(e: Any, xx: Any = x) -> tuple[Any, Any]:
        return e.fit(xx, y), xx

    def reg(e: Any) -> tuple[Any, Any]:
        return e.fit(xd, yd), xd

    def unsup(e: Any, xx: Any = x) -> tuple[Any, Any]:
        return e.fit(xx), xx

    with quiet():  # capped iterations on small data
        return {
            "tree_clf": clf(tree.DecisionTreeClassifier(max_depth=4, random_state=0)),
            "extra_tree_clf": clf(tree.ExtraTreeClassifier(max_depth=4, random_state=0)),
            "forest_clf": clf(
                ensemble.RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0)
            ),
            "extra_trees_reg": reg(
                ensemble.ExtraTreesRegressor(n_estimators=3, max_depth=3, random_state=0)
            ),
            "gb_clf": clf(
                ensemble.GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0)
            ),
            "gb_reg": reg(
                ensemble.GradientBoostingRegressor(n_estimators=3, max_depth=2, random_state=0)
            ),
            "ada_clf": clf(ensemble.AdaBoostClassifier(n_estimators=3, random_state=0)),
            "iforest": unsup(ensemble.IsolationForest(n_estimators=3, random_state=0)),
            "svc": clf(svm.SVC(probability=True, random_state=0)),
            "nusvc": clf(svm.NuSVC(random_state=0)),
            "svr": reg(svm.SVR()),
            "svc_sparse": clf(svm.SVC(kernel="linear"), xs),
            "ocsvm": unsup(svm.OneClassSVM()),
            "linear_svc": clf(svm.LinearSVC(random_state=0)),
            "logreg": clf(linear_model.LogisticRegression(max_iter=200)),
            "sgd": clf(linear_model.SGDClassifier(random_state=0)),
            "ridge_clf": clf(linear_model.RidgeClassifier()),
            "lasso": reg(linear_model.Lasso(alpha=0.1)),
            "huber": reg(linear_model.HuberRegressor()),
            "knn_kd": clf(neighbors.KNeighborsClassifier(algorithm="kd_tree", leaf_size=5)),
            "knn_ball_reg": reg(neighbors.KNeighborsRegressor(algorithm="ball_tree", leaf_size=5)),
            "knn_brute": clf(neighbors.KNeighborsClassifier(algorithm="brute")),
            "radius_clf": clf(neighbors.RadiusNeighborsClassifier(radius=3.0, leaf_size=5)),
            "nearest_centroid": clf(neighbors.NearestCentroid()),
            "lof": unsup(neighbors.LocalOutlierFactor(novelty=True, n_neighbors=5)),
            "gnb": clf(naive_bayes.GaussianNB()),
            "mnb": clf(naive_bayes.MultinomialNB()),
            "cnb": clf(naive_bayes.CategoricalNB(), xi),
            "lda": clf(discriminant_analysis.LinearDiscriminantAnalysis()),
            "qda": clf(discriminant_analysis.QuadraticDiscriminantAnalysis()),
            "mlp": clf(
                neural_network.MLPClassifier(hidden_layer_sizes=(5,), max_iter=30, random_state=0)
            ),
            "kmeans": unsup(cluster.KMeans(n_clusters=3, n_init=1, random_state=0)),
            "birch": unsup(cluster.Birch(n_clusters=3)),
            "gmm": unsup(mixture.GaussianMixture(n_components=2, random_state=0)),
            "envelope": unsup(covariance.EllipticEnvelope(random_state=0)),
            "scaler_sparse": unsup(preprocessing.StandardScaler(with_mean=False), xs),
            "maxabs_sparse": unsup(preprocessing.MaxAbsScaler(), xs),
            "onehot": unsup(preprocessing.OneHotEncoder(handle_unknown="ignore"), xi),
            "ordinal": unsup(preprocessing.OrdinalEncoder(), xi),
            "kbins": unsup(
                preprocessing.KBinsDiscretizer(n_bins=3, quantile_method="averaged_inverted_cdf")
            ),
            "poly_sparse": unsup(preprocessing.PolynomialFeatures(2), xs),
            "spline": unsup(preprocessing.SplineTransformer(n_knots=4)),
            "quantile": unsup(preprocessing.QuantileTransformer(n_quantiles=20)),
            "pca": unsup(decomposition.PCA(2)),
            "nmf": unsup(decomposition.NMF(2, max_iter=50, random_state=0)),
            "nystroem": unsup(kernel_approximation.Nystroem(n_components=10, random_state=0)),
            "knn_imputer": unsup(impute.KNNImputer()),
            "select_kbest": clf(feature_selection.SelectKBest(k=2)),
            "isotonic": (isotonic.IsotonicRegression().fit(xd[:, 0], yd), xd[:, 0]),
            "kernel_ridge": reg(kernel_ridge.KernelRidge(kernel="rbf")),
            "pls": reg(cross_decomposition.PLSRegression(2)),
            "gpr": reg(gaussian_process.GaussianProcessRegressor()),
            "tfidf": (feature_extraction.text.TfidfVectorizer().fit(docs), docs),
            "hashing": (feature_extraction.text.HashingVectorizer(n_features=32).fit(docs), docs),
            "label_encoder": (preprocessing.LabelEncoder().fit(y), y),
            "column_pipeline": clf(_column_pipeline(), frame),
            "stacking": clf(
                ensemble.StackingClassifier(
                    [
                        ("tree", tree.DecisionTreeClassifier(max_depth=2, random_state=0)),
                        ("nb", naive_bayes.GaussianNB()),
                    ],
                    final_estimator=linear_model.LogisticRegression(),
                )
            ),
            "xgb_clf": clf(xgboost.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1)),
            "lgbm_clf": clf(
                lightgbm.LGBMClassifier(n_estimators=3, num_leaves=4, n_jobs=1, verbose=-1)
            ),
        }


# The sweep's methods, and those that walk the trees or neighbors in other ways.
METHODS = (*SWEEP_METHODS, "apply", "decision_path", "kneighbors", "staged_predict")


def _estimator_uses(o: Any, x: Any) -> list[Callable[[], Any]]:
    """Every method of ``METHODS`` the estimator has, on ``x``; ``inverse_transform`` of
    its transform; staged predictions drawn to the end."""
    uses: list[Callable[[], Any]] = []
    for name in METHODS:
        method = getattr(o, name, None)
        if method is None:
            continue
        if name == "staged_predict":
            uses.append(lambda method=method: list(method(x)))
        else:
            uses.append(lambda method=method: method(x))
    inverse, forward = getattr(o, "inverse_transform", None), getattr(o, "transform", None)
    if inverse is not None and forward is not None:
        uses.append(lambda: inverse(forward(x)))
    return uses


def _uses(o: Any, x: Any = None) -> list[Callable[[], Any]]:
    """What a user does with a loaded object of each kind (an estimator: with ``x``)."""
    import pickle

    import pandas as pd
    import scipy.sparse as sp
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.neighbors import BallTree, KDTree

    uses: list[Callable[[], Any]] = [lambda: repr(o), lambda: pickle.loads(pickle.dumps(o))]
    if x is not None:
        uses += _estimator_uses(o, x)
    elif isinstance(o, pd.DataFrame | pd.Series):
        uses += [
            o.to_numpy, lambda: o.copy(deep=True), lambda: o.memory_usage(deep=True),
            o.sort_index, lambda: o.isna().sum(), lambda: o.iloc[::-1].to_numpy(),
            lambda: o.astype(object), lambda: o.head(3).to_string(),
        ]  # fmt: skip
        if isinstance(o, pd.DataFrame):
            uses += [lambda c=c: o[c].to_numpy() for c in o.columns]
            uses += [lambda: o.describe(include="all"), lambda: o.T]
        else:
            uses += [lambda: o.value_counts(dropna=False), o.unique, o.sort_values]
    elif isinstance(o, pd.Index):
        uses += [
            o.to_numpy, lambda: o.is_unique, o.sort_values, lambda: o.get_loc(o[0]),
            lambda: list(o), o.unique, lambda: o.take([0, len(o) - 1]), lambda: o.append(o),
        ]  # fmt: skip
    elif sp.issparse(o):
        uses += [lambda: o.nnz, o.copy, o.count_nonzero]
        if max(o.shape, default=0) < HUGE:  # bsr and lil transpose through a new indptr
            uses += [o.sum, o.transpose, o.tocoo, o.toarray]
        if o.ndim == 2 and max(o.shape) < HUGE:
            csr = o.tocsr
            uses += [
                o.tocsr, o.tocsc, o.todok, o.tolil, o.tobsr, o.todia, o.diagonal,
                lambda: o @ np.ones(o.shape[1]), lambda: np.ones(o.shape[0]) @ o,
                lambda: o.sum(axis=1), lambda: csr().max(), lambda: csr()[0, 0],
                lambda: csr()[[0]], lambda: o.tocsc()[:, [0]], lambda: (o @ o.T).toarray(),
                lambda: (o + o).toarray(), lambda: csr().sorted_indices(),
            ]  # fmt: skip
    elif isinstance(o, HistGradientBoostingClassifier):
        x, _ = load_iris(return_X_y=True)
        uses += [lambda: o.predict_proba(x), lambda: list(o.staged_predict(x))]
    elif isinstance(o, HistGradientBoostingRegressor):
        xc, _ = _diabetes()
        uses += [lambda: o.predict(xc), lambda: list(o.staged_predict(xc))]
    elif isinstance(o, KDTree | BallTree):
        x, _ = load_iris(return_X_y=True)
        uses += [
            lambda: o.query(x[:10], k=3), lambda: o.query_radius(x[:5], r=0.5),
            lambda: o.kernel_density(x[:5], h=0.3), o.get_arrays,
            lambda: o.two_point_correlation(x[:5], r=[0.1, 0.5]),
            lambda: o.query(x[:10], k=1, dualtree=True),
        ]  # fmt: skip
    return uses


def _leaves(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    else:
        yield path, node


def _set(header: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    d: Any = header
    for p in path[:-1]:
        d = d[p]
    d[path[-1]] = value


def _mutations(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """(what was changed, the re-sealed file) for every mutation of ``blob``."""
    p = split(blob)
    for part in ("root", "arrays"):
        for path, v in _leaves(p.header.get(part), (part,)):
            if type(v) is int:
                values: list[Any] = sorted({*INTS, v + 1, v - 1, 2 * v} - {v})
            elif type(v) is float:
                values = list(FLOATS)
            elif type(v) is str and v[:1] in "<>|=" and len(v) <= 10:
                values = [d for d in DTYPES if d != v]
            elif v in ("nan", "inf", "-inf") and path[-1] == "v":  # a tagged float
                path, values = path[:-1], [0.0, -1.0, 1e300]
            else:
                continue
            for new in values:

                def edit(h: dict[str, Any], path: tuple[Any, ...] = path, new: Any = new) -> None:
                    _set(h, path, new)

                yield f"{'/'.join(map(str, path))} = {new!r} (was {v!r})", rewrite(blob, edit)
    for i, (off, size, *_) in enumerate(p.header["buffers"]):
        for spot in sorted({0, 8, (size // 2) & ~7, max(0, (size - 8) & ~7)}):
            for width, v in WORDS:
                if spot + width > size:
                    continue
                data = bytearray(p.data)
                data[off + spot : off + spot + width] = v.to_bytes(width, "little")
                yield (
                    f"buffer {i} bytes {spot}..{spot + width} = {v:#x}",
                    rewrite(blob, data=bytes(data), fix_digests=True),
                )


def _child(path: str, out: int, x: Any) -> None:
    """Load and use one file; write the outcome to ``out``; never return."""
    code = "NOOUTPUT"
    faulthandler.disable()  # pytest's, inherited: a crash is reported by the parent
    try:
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # pytest-timeout's handler is inherited
        signal.alarm(ALARM_S)
        warnings.simplefilter("ignore")
        try:
            obj = modelsafe.load(path)
        except modelsafe.ModelSafeError:
            code = "refused"
        else:
            code = "used"
            for use in _uses(obj, x):
                try:
                    use()
                except MemoryError:
                    raise
                except Exception:  # scipy or pandas refusing a value: a clean end
                    code = "raised"
    except MemoryError:
        code = "MemoryError"
    except BaseException as exc:  # at load, any other error is a bug of the loader
        code = f"ended by {type(exc).__name__}: {exc}"[:300]
    finally:
        os.write(out, code.encode())
        os._exit(0)


def _start(path: str, x: Any = None) -> tuple[int, int]:
    """Fork a child loading and using ``path``: its pid and the pipe it reports on."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        _child(path, w, x)
    os.close(w)
    return pid, r


def _outcome(r: int, pid: int) -> str:
    """The outcome of child ``pid``, from its pipe ``r``: what it wrote (a few hundred bytes
    at most) once the pipe ends, which it does when the child does; then its status."""
    chunks = []
    while chunk := os.read(r, 4096):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return "hang (alarm)" if sig == signal.SIGALRM else f"killed by {signal.Signals(sig).name}"
    return b"".join(chunks).decode() or f"no outcome (exit {os.WEXITSTATUS(status)})"


def _run(path: str, x: Any = None) -> str:
    pid, r = _start(path, x)
    return _outcome(r, pid)


def _run_all(jobs: list[tuple[str, Any]], at_once: int) -> list[str]:
    """The outcome of each ``(path, x)``, with up to ``at_once`` children at a time. The
    next to report is the first whose pipe has something to read: only these children
    are waited for, never another child of the process (pytest's, a library's)."""
    results = [""] * len(jobs)
    running: dict[int, tuple[int, int]] = {}  # pipe -> (job, pid)

    def reap() -> None:
        r = select.select(list(running), [], [])[0][0]
        job, pid = running.pop(r)
        results[job] = _outcome(r, pid)

    for k, (path, x) in enumerate(jobs):
        if len(running) >= at_once:
            reap()
        pid, r = _start(path, x)
        running[r] = (k, pid)
    while running:
        reap()
    return results


def _all_work(obj: Any, x: Any) -> bool:
    """Whether every use works on the object itself (before saving)."""
    try:
        for use in _uses(obj, x):
            use()
    except Exception:
        return False
    return True


def _drive(directory: str) -> None:
    """The driver process: the reference outcome of each original (its in-memory
    object, unpickled), then a forked child per file. It is a fresh interpreter with one
    OpenMP thread: a child forked from a process whose OpenMP threads have run (the test
    process fitted the models) would hang in its first parallel region."""
    import pickle

    import pandas  # noqa: F401  - imported once here, not in every child
    import scipy.sparse  # noqa: F401
    import sklearn.ensemble
    import sklearn.neighbors  # noqa: F401

    warnings.simplefilter("ignore")
    root = os.path.abspath(directory)
    with open(os.path.join(root, "originals.pkl"), "rb") as fh:
        originals = pickle.load(fh)  # (object, x): unpickling imports their modules once
    expected = {
        name: "used" if _all_work(obj, x) else "raised" for name, (obj, x) in originals.items()
    }
    for name in originals:  # modelsafe's handler modules, imported once here too
        modelsafe.load(os.path.join(root, f"{name}.msafe"))
    with open(os.path.join(root, "manifest.json")) as fh:
        manifest = json.load(fh)
    jobs = [(os.path.join(root, entry[1]), originals[entry[0]][1]) for entry in manifest]
    outcomes = _run_all(jobs, os.cpu_count() or 1)
    results = [[*entry, outcome] for entry, outcome in zip(manifest, outcomes, strict=True)]
    with open(os.path.join(root, "results.json"), "w") as fh:
        json.dump({"expected": expected, "results": results}, fh)


@pytest.mark.parametrize(
    ("load", "outcome"),
    [
        (lambda path: os.kill(os.getpid(), signal.SIGSEGV), "killed by SIGSEGV"),
        (lambda path: __import__("time").sleep(30), "hang (alarm)"),
        (lambda path: bytearray(AS_LIMIT), "MemoryError"),
        (lambda path: {}.popitem(), "ended by KeyError: 'popitem(): dictionary is empty'"),
    ],
    ids=["signal", "hang", "memory", "other error"],
)
def test_the_probe_reports_what_it_must_catch(
    monkeypatch: pytest.MonkeyPatch, load: Callable[[str], Any], outcome: str
) -> None:
    """The child's outcomes the probe fails on are really reported (a loader that
    crashes, hangs, exhausts memory or raises a non-modelsafe error)."""
    monkeypatch.setattr(modelsafe, "load", load)
    monkeypatch.setattr(sys.modules[__name__], "ALARM_S", 1)
    assert _run("unused.msafe") == outcome


def test_the_probe_keeps_each_outcome_with_its_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Children run side by side and end in any order; each outcome is its own file's."""
    ends = {
        "hang.msafe": lambda: __import__("time").sleep(30),
        "signal.msafe": lambda: os.kill(os.getpid(), signal.SIGSEGV),
        "memory.msafe": lambda: bytearray(AS_LIMIT),
        "refused.msafe": lambda: modelsafe.loads(b"not a container"),
    }
    monkeypatch.setattr(modelsafe, "load", lambda path: ends[path]())
    monkeypatch.setattr(sys.modules[__name__], "ALARM_S", 1)
    jobs = [(path, None) for path in ends]
    assert _run_all(jobs, 2) == ["hang (alarm)", "killed by SIGSEGV", "MemoryError", "refused"]


@pytest.mark.slow
def test_mutated_values_never_crash_hang_or_exhaust_memory(tmp_path: Any) -> None:
    import pickle
    import subprocess

    objects: dict[str, tuple[Any, Any]] = {name: (o, None) for name, o in _objects().items()}
    objects.update(_estimators())
    manifest: list[tuple[str, str, str]] = []  # (object, file, what was changed)
    for name, (obj, _) in objects.items():
        blob = modelsafe.dumps(obj)
        (tmp_path / f"{name}.msafe").write_bytes(blob)
        manifest.append((name, f"{name}.msafe", "nothing"))
        for k, (what, crafted) in enumerate(_mutations(blob)):
            (tmp_path / f"{name}-{k}.msafe").write_bytes(crafted)
            manifest.append((name, f"{name}-{k}.msafe", what))
    (tmp_path / "originals.pkl").write_bytes(pickle.dumps(objects))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.test_mutation_probe", str(tmp_path)],
        env=env, cwd=root, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "results.json").read_text())
    outcomes: Counter[str] = Counter()
    bad: list[str] = []
    for name, _, what, outcome in report["results"]:
        if what == "nothing":
            want = report["expected"][name]
            assert outcome == want, f"{name}: the unmodified file gave {outcome!r}, not {want!r}"
            continue
        outcomes[outcome] += 1
        if outcome not in ("refused", "used", "raised"):
            bad.append(f"{name}: {what}: {outcome}")
    print(f"\nmutation probe outcomes: {json.dumps(outcomes, sort_keys=True)}", file=sys.stderr)
    assert not bad, f"{len(bad)} of {sum(outcomes.values())} files:\n" + "\n".join(bad[:40])
    # The probe reaches both sides: files refused at load, and files loaded and used.
    assert outcomes["refused"] > 1000 and outcomes["used"] > 1000, outcomes


if __name__ == "__main__":
    _drive(sys.argv[1])
