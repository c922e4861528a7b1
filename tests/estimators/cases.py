"""Fitted scikit-learn estimators for the sweep: every class of ``all_estimators()``.

Each case builds its estimator with scikit-learn's own test parameters
(``_construct_instances``: small ``max_iter``, the sub-estimators a meta-estimator
needs), fits it on data its tags ask for (positive, pairwise, 1-D, categorical,
NaN-tolerant, multi-output, sparse), and names the data its methods are compared on.
Composite models (pipelines, searches, stacks, ...) are built by hand below.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)

# Representative estimators, run by `make test`; `make test-all` runs every case.
CORE = frozenset(
    {
        "DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeRegressor",
        "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
        "GradientBoostingClassifier", "GradientBoostingRegressor",
        "HistGradientBoostingClassifier", "HistGradientBoostingRegressor", "IsolationForest",
        "AdaBoostClassifier", "LogisticRegression", "Ridge", "SGDClassifier", "LinearSVC",
        "SVC", "SVR", "KNeighborsClassifier", "KNeighborsRegressor", "KernelDensity",
        "LocalOutlierFactor", "KMeans", "GaussianMixture", "PCA", "TruncatedSVD",
        "StandardScaler", "OneHotEncoder", "MLPClassifier", "GaussianNB",
        "LinearDiscriminantAnalysis", "GaussianProcessRegressor", "IsotonicRegression",
        "Birch", "NMF", "QuantileTransformer", "KBinsDiscretizer", "TargetEncoder",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One fitted model: ``build()`` returns ``(fitted, X)``, X the data to call methods on."""

    id: str
    build: Callable[[], tuple[Any, Any]]
    core: bool


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Fitting tiny data warns (convergence, few samples); the suite turns warnings into errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


_WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()  # noqa: SIM905


def _special_data(estimator: Any) -> tuple[Any, Any] | None:
    """Data for estimators that take text, dicts, labels or images instead of a 2-D array."""
    from sklearn.utils import get_tags

    name = type(estimator).__name__
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=60)
    if name in ("LabelEncoder", "LabelBinarizer"):
        return labels, None
    if name == "MultiLabelBinarizer":
        return [tuple(sorted({int(a), int(b)})) for a, b in rng.integers(0, 4, (60, 2))], None
    tags = get_tags(estimator).input_tags
    if tags.string and not tags.two_d_array:
        docs = [" ".join(rng.choice(_WORDS, size=8)) for _ in range(60)]
        return docs, labels
    if tags.dict:
        rows = [
            dict(zip(rng.choice(_WORDS, 3).tolist(), rng.normal(size=3).tolist(), strict=True))
            for _ in range(60)
        ]
        return rows, labels
    if tags.three_d_array:
        return rng.normal(size=(6, 8, 8)), None
    return None


def _data(estimator: Any, *, sparse: bool, multi_output: bool) -> tuple[Any, Any]:
    from sklearn.datasets import make_blobs
    from sklearn.metrics.pairwise import rbf_kernel
    from sklearn.utils import get_tags
    from sklearn.utils.estimator_checks import (
        _enforce_estimator_tags_X,
        _enforce_estimator_tags_y,
    )

    special = _special_data(estimator)
    if special is not None:
        return special
    tags = get_tags(estimator)
    multiclass = tags.classifier_tags is not None and tags.classifier_tags.multi_class
    # Three features, as scikit-learn's own pickling check (some test parameters assume it).
    X, y = make_blobs(
        n_samples=90,
        centers=3 if multiclass else 2,
        n_features=3,
        cluster_std=1.0,
        random_state=0,
    )
    if tags.regressor_tags is not None:
        y = X @ np.array([1.5, -2.0, 3.0]) + np.random.default_rng(0).normal(size=len(X))
    X = _enforce_estimator_tags_X(estimator, X, kernel=rbf_kernel)
    y = _enforce_estimator_tags_y(estimator, y)
    if multi_output:
        y = np.column_stack([y, y * 0.5 + 1])
    if sparse:  # non-negative (some estimators need it) and really sparse
        import scipy.sparse as sp

        X = np.abs(X)
        X[X < 1.0] = 0.0
        X = sp.csr_matrix(X)
    return X, y


def _with_nan(X: Any) -> Any:
    X = X.astype(np.float64)
    X[np.random.default_rng(1).choice(X.shape[0], 8, replace=False), 1] = np.nan
    return X


def _fit(estimator: Any, X: Any, y: Any) -> tuple[Any, Any]:
    """Fit (with some NaN in X where the estimator says it copes), return it and its X."""
    from sklearn.base import clone
    from sklearn.utils import get_tags
    from sklearn.utils.estimator_checks import set_random_state

    tags = get_tags(estimator).input_tags
    dense_2d = isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "fi"
    tries = [X]
    if tags.allow_nan and dense_2d and not tags.pairwise:
        tries.insert(0, _with_nan(X))  # meta-estimators may claim it for sub-estimators that don't
    for i, data in enumerate(tries):
        try:
            with quiet():  # deprecated classes warn when cloned
                model = clone(estimator)
                set_random_state(model, 0)
                if y is None:
                    model.fit(data)
                else:
                    model.fit(data, y)  # unsupervised estimators take and ignore y
        except Exception:
            if i == len(tries) - 1:
                raise
            continue
        return model, data
    raise AssertionError("unreachable")


def _estimator_case(name: str, index: int, variant: str) -> Callable[[], tuple[Any, Any]]:
    def build() -> tuple[Any, Any]:
        from sklearn.base import clone
        from sklearn.utils import all_estimators
        from sklearn.utils._test_common.instance_generator import _construct_instances

        cls = dict(all_estimators())[name]
        with quiet():
            estimator = clone(list(_construct_instances(cls))[index])
        X, y = _data(estimator, sparse=variant == "sparse", multi_output=variant == "multi")
        return _fit(estimator, X, y)

    return build


def estimator_cases() -> list[Case]:
    """A case per estimator class and test instance, plus sparse and multi-output variants."""
    from sklearn.utils import all_estimators, get_tags
    from sklearn.utils._test_common.instance_generator import _construct_instances

    cases = []
    with quiet():
        for name, cls in all_estimators():
            try:
                instances = list(_construct_instances(cls))
            except Exception:  # scikit-learn's own generator skips it (FrozenEstimator)
                continue
            for i, est in enumerate(instances):
                base = name if len(instances) == 1 else f"{name}-{i}"
                tags = get_tags(est)
                core = name in CORE and i == 0
                cases.append(Case(base, _estimator_case(name, i, "dense"), core))
                if (
                    tags.input_tags.sparse
                    and tags.input_tags.two_d_array
                    and not (tags.input_tags.pairwise or tags.input_tags.positive_only)
                    and i == 0
                ):
                    cases.append(Case(f"{base}-sparse", _estimator_case(name, i, "sparse"), False))
                if (
                    tags.regressor_tags is not None
                    and tags.target_tags.multi_output
                    and tags.target_tags.single_output
                    and i == 0
                ):
                    cases.append(Case(f"{base}-multi", _estimator_case(name, i, "multi"), core))
    return cases


# -- composites, built by hand ------------------------------------------------------------------


def _clf_data() -> tuple[Any, Any]:
    from sklearn.datasets import make_classification

    return make_classification(n_samples=120, n_features=6, n_informative=4, random_state=0)


def _pipeline() -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _clf_data()
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), X


def _column_transformer() -> tuple[Any, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = _clf_data()
    X = X.copy()
    X[:, 0] = np.round(np.abs(X[:, 0]))
    ct = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), [0]), ("num", StandardScaler(), [1, 2])],
        remainder="passthrough",
    )
    return Pipeline([("ct", ct), ("lr", LogisticRegression())]).fit(X, y), X


def _feature_union() -> tuple[Any, Any]:
    from sklearn.decomposition import PCA
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.pipeline import FeatureUnion

    X, y = _clf_data()
    return FeatureUnion([("pca", PCA(2)), ("k", SelectKBest(f_classif, k=2))]).fit(X, y), X


def _grid_search() -> tuple[Any, Any]:
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.svm import SVC

    X, y = _clf_data()
    search = GridSearchCV(SVC(), {"C": [0.1, 1.0]}, cv=KFold(3), scoring="accuracy")
    return search.fit(X, y), X


def _randomized_search() -> tuple[Any, Any]:
    from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold
    from sklearn.tree import DecisionTreeClassifier

    X, y = _clf_data()
    search = RandomizedSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": [2, 3, 4, 5]},
        n_iter=3,
        cv=StratifiedKFold(3),
        scoring="roc_auc",
        random_state=0,
    )
    return search.fit(X, y), X


def _stacking_classifier() -> tuple[Any, Any]:
    from sklearn.ensemble import RandomForestClassifier, StackingClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = _clf_data()
    model = StackingClassifier(
        [("rf", RandomForestClassifier(10, random_state=0)), ("lr", LogisticRegression())],
        final_estimator=LogisticRegression(),
    )
    return model.fit(X, y), X


def _stacking_regressor() -> tuple[Any, Any]:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import StackingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_diabetes(return_X_y=True)
    model = StackingRegressor(
        [("tree", DecisionTreeRegressor(max_depth=3, random_state=0)), ("ridge", Ridge())]
    )
    return model.fit(X, y), X


def _voting() -> tuple[Any, Any]:
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    X, y = _clf_data()
    model = VotingClassifier([("lr", LogisticRegression()), ("nb", GaussianNB())], voting="soft")
    return model.fit(X, y), X


def _calibrated() -> tuple[Any, Any]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    X, y = _clf_data()
    return CalibratedClassifierCV(LinearSVC(), cv=3).fit(X, y), X


def _transformed_target() -> tuple[Any, Any]:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    model = TransformedTargetRegressor(LinearRegression(), func=np.log1p, inverse_func=np.expm1)
    return model.fit(X, y), X


def _function_transformer() -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = _clf_data()
    X = np.abs(X)
    return make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(X, y), X


def _frozen() -> tuple[Any, Any]:
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    X, y = _clf_data()
    return FrozenEstimator(LogisticRegression().fit(X, y)), X


COMPOSITES: dict[str, Callable[[], tuple[Any, Any]]] = {
    "FrozenEstimator": _frozen,
    "Pipeline": _pipeline,
    "ColumnTransformer": _column_transformer,
    "FeatureUnion": _feature_union,
    "GridSearchCV": _grid_search,
    "RandomizedSearchCV": _randomized_search,
    "StackingClassifier": _stacking_classifier,
    "StackingRegressor": _stacking_regressor,
    "VotingClassifier": _voting,
    "CalibratedClassifierCV": _calibrated,
    "TransformedTargetRegressor": _transformed_target,
    "FunctionTransformer-log1p": _function_transformer,
}


def all_cases() -> list[Case]:
    composites = [Case(f"composite:{k}", v, True) for k, v in COMPOSITES.items()]
    return composites + estimator_cases()


def outputs(model: Any, X: Any) -> dict[str, Any]:
    """Every available method's result on X (or the exception it raised), and every fitted
    attribute that is an array or a plain value (``attr:<name>``)."""
    out: dict[str, Any] = {
        f"attr:{k}": v
        for k, v in vars(model).items()
        if k.endswith("_")
        and not k.startswith("_")
        and (
            isinstance(v, int | float | str)
            or (isinstance(v, np.ndarray) and not v.dtype.hasobject)
        )
    }
    with quiet():
        for method in METHODS:
            fn = getattr(model, method, None)  # available_if hides unusable methods
            if fn is None:
                continue
            try:
                out[method] = fn(X)
            except Exception as exc:
                out[method] = f"raised {type(exc).__name__}"
    return out
