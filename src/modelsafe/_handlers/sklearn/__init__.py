"""scikit-learn: validators for the compiled internals fitted estimators hold.

Fitted estimators travel through the generic reduce path (``obj``/``call``
nodes); only decision trees (``sk.tree``) and histogram boosting predictors
(``sk.hgbp``) get compact nodes of their own.
What they need is validation:
several internals are Cython objects whose ``__setstate__`` stores arrays that
compiled loops later index without bounds checks (decision ``Tree`` nodes,
histogram-GBM ``TreePredictor`` nodes, KD/ball tree index arrays, distance
metric parameters). Trusting them by default (``_trustlists/sklearn_internals.txt``)
is safe only because every one is checked here before it is constructed or
given its state; ``docs/handlers/sklearn.md`` lists the invariants, and argues
for the compiled types that need none.

Nothing here imports scikit-learn when the module is imported: the audit may
import this module, and a file must not make scikit-learn load before it has
passed. The checks import it when they run, at construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import Tag, Validator
from . import _checks, _estimators, _hgb, _labels, _losses, _neighbors, _tree

_HGB = "sklearn.ensemble._hist_gradient_boosting"
_METRICS = "sklearn.metrics._dist_metrics"
# Every concrete metric class, in its float64 and float32 variants.
METRIC_CLASSES = tuple(
    f"{name}{bits}"
    for name in (
        "EuclideanDistance", "SEuclideanDistance", "ManhattanDistance", "ChebyshevDistance",
        "MinkowskiDistance", "MahalanobisDistance", "HammingDistance", "CanberraDistance",
        "BrayCurtisDistance", "JaccardDistance", "MatchingDistance", "DiceDistance",
        "KulsinskiDistance", "RogersTanimotoDistance", "RussellRaoDistance",
        "SokalMichenerDistance", "SokalSneathDistance", "HaversineDistance", "PyFuncDistance",
    )
    for bits in ("64", "32")
)  # fmt: skip


def encoder_for(t: type) -> Callable[[Any, Any], Any] | None:
    """Decision trees and histogram boosting predictors get compact nodes of their own, and
    a ``Bunch`` is written without its instance state; the rest take the generic path."""
    if t.__module__ == "sklearn.tree._tree" and t.__name__ == "Tree":
        return _tree.enc_tree
    if t.__module__ == f"{_HGB}.predictor" and t.__name__ == "TreePredictor":
        return _hgb.enc_predictor
    if t.__module__ == "sklearn.utils._bunch" and t.__name__ == "Bunch":
        return _enc_bunch
    return None


def _enc_bunch(e: Any, bunch: Any) -> Any:
    """A ``Bunch`` (a voting or stacking model's ``named_estimators_``) is its items.
    ``Bunch.__setstate__`` ignores the instance state (a map of deprecated keys that
    ``__init__`` sets), as unpickling does, so a loaded ``Bunch`` has none: writing it
    would make a loaded model save to other bytes than the file it came from."""
    from ..._graph.encode import _enc_reduce

    return _enc_reduce(e, bunch, with_state=False)


TAGS: dict[str, Tag] = {
    _tree.TAG: Tag(_tree.audit_tree, _tree.build_tree),
    _tree.TREES: Tag(_tree.audit_trees, _tree.build_trees),
    _hgb.TAG: Tag(_hgb.audit_predictor, _hgb.build_predictor),
    _hgb.TAGS: Tag(_hgb.audit_predictors, _hgb.build_predictors),
}


def _validators() -> dict[str, Validator]:
    out: dict[str, Validator] = {
        "sklearn.tree._tree.Tree": Validator(
            args=_tree.tree_args, state=_tree.tree_state, private=_checks.private_nodes
        ),
        f"{_HGB}.predictor.TreePredictor": Validator(
            state=_hgb.predictor_state, private=_checks.private_nodes
        ),
        f"{_HGB}.binning._BinMapper": Validator(
            state=_hgb.bin_mapper_state, private=_hgb.private_bin_mapper
        ),
        f"{_HGB}.gradient_boosting.HistGradientBoostingClassifier": Validator(state=_hgb.hgb_state),
        f"{_HGB}.gradient_boosting.HistGradientBoostingRegressor": Validator(state=_hgb.hgb_state),
        "sklearn.neighbors._kd_tree.newObj": Validator(
            args=_neighbors.new_tree_args,
            state=_neighbors.new_state,
            private=_neighbors.private_tree,
        ),
        "sklearn.neighbors._ball_tree.newObj": Validator(
            args=_neighbors.new_tree_args,
            state=_neighbors.new_state,
            private=_neighbors.private_tree,
        ),
        f"{_METRICS}.newObj": Validator(
            args=_neighbors.new_metric_args, state=_neighbors.new_state
        ),
        _estimators.ISOLATION_FOREST: Validator(state=_estimators.isolation_forest_state),
        _estimators.BAGGING_CLASSIFIER: Validator(state=_estimators.bagging_state),
        _estimators.DUMMY_REGRESSOR: Validator(state=_estimators.dummy_regressor_state),
    }
    # The classes themselves, for a file that makes them with ``obj`` (``__new__``), which
    # a caller can allow by trusting the name.
    for name in _neighbors.KD_TREES:
        out[f"sklearn.neighbors._kd_tree.{name}"] = Validator(
            state=_neighbors.tree_state, private=_neighbors.private_tree
        )
    for name in _neighbors.BALL_TREES:
        out[f"sklearn.neighbors._ball_tree.{name}"] = Validator(
            state=_neighbors.tree_state, private=_neighbors.private_tree
        )
    for name in METRIC_CLASSES:
        out[f"{_METRICS}.{name}"] = Validator(state=_neighbors.metric_state)
    for name in _estimators.TREE_ESTIMATORS:
        out[name] = Validator(state=_estimators.tree_estimator_state)
    for name in _estimators.FORESTS:
        out[name] = Validator(state=_estimators.forest_state)
    for name in _estimators.GRADIENT_BOOSTING:
        out[name] = Validator(state=_estimators.gradient_boosting_state)
    for name in _estimators.KMEANS:
        out[name] = Validator(state=_estimators.kmeans_state)
    out[_estimators.BISECTING_KMEANS] = Validator(state=_estimators.bisecting_kmeans_state)
    out[_estimators.BIRCH] = Validator(state=_estimators.birch_state)
    for name in _estimators.NEIGHBORS:
        out[name] = Validator(state=_estimators.neighbors_state)
    for name in _labels.NEIGHBOR_CLASSIFIERS:  # replaces their entry above, and runs it
        out[name] = Validator(
            state=_labels.neighbor_classifier_state, private=_checks.private_members("_y")
        )
    out[_labels.FEATURE_AGGLOMERATION] = Validator(
        state=_labels.feature_agglomeration_state, private=_checks.private_members("labels_")
    )
    out[_labels.VOTING_CLASSIFIER] = Validator(state=_labels.voting_classifier_state)
    for name in _estimators.VECTORIZERS:
        out[name] = Validator(state=_estimators.vocabulary_state)
    for name in _estimators.TEXT_VECTORIZERS:
        out[name] = Validator(state=_estimators.text_vectorizer_state)
    out[_estimators.HASHING_VECTORIZER] = Validator(state=_estimators.hashing_vectorizer_state)
    out[_estimators.FEATURE_HASHER] = Validator(state=_estimators.hasher_state)
    out[_estimators.POLYNOMIAL_FEATURES] = Validator(state=_estimators.polynomial_state)
    out[_estimators.ONE_HOT_ENCODER] = Validator(state=_estimators.one_hot_state)
    out[_estimators.SPLINE_TRANSFORMER] = Validator(state=_estimators.spline_state)
    out[_estimators.LOCALLY_LINEAR_EMBEDDING] = Validator(state=_estimators.locally_linear_state)
    out[_estimators.COUNT_SKETCH] = Validator(state=_estimators.count_sketch_state)
    for name in _estimators.ITERATIVE:
        out[name] = Validator(state=_estimators.iteration_state)
    for name in _estimators.SVMS:
        out[name] = Validator(state=_estimators.svm_state, private=_estimators.private_svm)
    out.update(_losses.validators())
    return out


VALIDATORS: dict[str, Validator] = _validators()
