"""Labels that predict counts with ``np.bincount``.

``np.bincount(x)`` makes ``x.max() + 1`` bins. For a label of ``2**63 - 1`` that sum
overflows inside numpy (2.4) and the count writes outside its array: the heap is
corrupted and the process aborts (``double free or corruption``) or dies later. A
large label short of that allocates one bin per value up to it: ``2**31`` takes
16 GB and seconds a row, ``2**40`` is a ``MemoryError``. So every label a file can
send there must lie in ``[0, n)`` for the ``n`` bins fit would have made:

- ``FeatureAgglomeration.transform`` counts ``labels_``, one per input feature;
- the radius and k-neighbors classifiers count (or index with) ``_y``, each sample's
  code in ``classes_``;
- ``VotingClassifier(voting="hard")`` counts what its fitted estimators predict,
  which is each one's ``classes_``: the codes of ``le_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import array
from ._estimators import neighbors_state

FEATURE_AGGLOMERATION = "sklearn.cluster._agglomerative.FeatureAgglomeration"
NEIGHBOR_CLASSIFIERS = (
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neighbors._classification.RadiusNeighborsClassifier",
)
VOTING_CLASSIFIER = "sklearn.ensemble._voting.VotingClassifier"


def codes(name: str, values: Any, bound: int, column: int | None = None) -> None:
    """``values`` (column ``column`` of the array ``name``, when given) lies in ``[0, bound)``."""
    if values.size and (int(values.min()) < 0 or int(values.max()) >= bound):
        i = int(np.flatnonzero((values < 0) | (values >= bound))[0])
        at = f"{i}" if column is None else f"{i}, {column}"
        raise ValueError(f"{name}[{at}] = {int(values[i])} is outside [0, {bound})")


def feature_agglomeration_state(obj: Any, state: Any) -> None:
    """``labels_`` holds a cluster per input feature, and a feature agglomeration has no
    more clusters than features."""
    if type(state) is not dict or "labels_" not in state:
        return
    labels = array("labels_", state["labels_"], kind="iu", ndim=1)
    codes("labels_", labels, len(labels))


def neighbor_classifier_state(obj: Any, state: Any) -> None:
    """``_y`` holds each fitted sample's code in ``classes_`` (one column per output,
    ``classes_`` then a list with one array per output); and ``_fit_X`` is checked as
    for every neighbors estimator."""
    neighbors_state(obj, state)
    if type(state) is not dict or "_y" not in state:
        return
    y = array("_y", state["_y"], kind="iu", ndim=2 if state.get("outputs_2d_") else 1)
    classes = state.get("classes_")
    per_output = classes if y.ndim == 2 else [classes]
    outputs = y.shape[1] if y.ndim == 2 else 1
    if not isinstance(per_output, list | tuple) or len(per_output) != outputs:
        raise ValueError(f"classes_ must be a list of {outputs} arrays, one per column of _y")
    for k, classes_k in enumerate(per_output):
        where = "classes_" if y.ndim == 1 else f"classes_[{k}]"
        c = array(where, classes_k, kind="biufOUS", ndim=1)
        if y.ndim == 1:
            codes("_y", y, len(c))
        else:
            codes("_y", y[:, k], len(c), k)


def voting_classifier_state(obj: Any, state: Any) -> None:
    """Each fitted estimator was fitted on ``le_``'s codes, so its integer ``classes_``
    (what its ``predict`` returns) must be codes of ``le_.classes_``."""
    if type(state) is not dict or "estimators_" not in state:
        return
    encoder = state.get("le_")
    known = getattr(encoder, "classes_", None)
    if not isinstance(known, np.ndarray) or known.ndim != 1:
        raise ValueError("a fitted VotingClassifier needs le_ with its classes_")
    estimators = state["estimators_"]
    if not isinstance(estimators, list):
        raise TypeError(f"estimators_ must be a list, not {type(estimators).__name__}")
    for i, est in enumerate(estimators):
        classes = getattr(est, "classes_", None)
        if isinstance(classes, np.ndarray) and classes.dtype.kind in "iu":
            codes(f"estimators_[{i}].classes_", classes, len(known))
