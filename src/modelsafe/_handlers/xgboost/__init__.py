"""XGBoost: boosters as XGBoost's own UBJSON model, checked before XGBoost reads it.

A ``Booster`` becomes an ``xgb.booster`` node whose buffer holds
``Booster.save_raw("ubj")`` (docs/handlers/boosting.md), never a pickle. On
load the bytes are parsed and checked completely (:mod:`._check`) before
``Booster.load_model`` sees them: XGBoost's reader copies lengths from the file
into ``memcpy`` and indexes nodes, features and categories without bounds
checks. The same check runs at save, so a file this handler writes is one it
can read.

The scikit-learn wrappers (``XGBClassifier``, ...) take the generic path: an
``obj`` node whose state holds their parameters and fitted attributes as
ordinary nodes, and their booster as an ``xgb.booster`` node. Their validator
checks that state before it is applied.

Nothing here imports XGBoost until a booster is saved or built.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

from ..._graph.names import qualname
from .. import Tag, Validator, plain_attributes
from ._check import Summary, check

BOOSTER = "xgboost.core.Booster"
MAX_THREADS = 4096
# What the check found in each booster this handler built (for the wrappers' validator).
_CHECKED: weakref.WeakKeyDictionary[Any, Summary] = weakref.WeakKeyDictionary()
_WRAPPERS = (
    "XGBModel",
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
)
_CLASSIFIERS = ("XGBClassifier", "XGBRFClassifier")


# -- save -------------------------------------------------------------------------------


def _enc_booster(e: Any, booster: Any) -> Any:
    ref = e.seen(booster)
    if ref is not None:
        return ref
    from ..._graph.encode import Unsupported

    try:
        raw = booster.save_raw(raw_format="ubj")
    except Exception as exc:  # XGBoost refuses, e.g., a booster that was never trained
        raise Unsupported(f"XGBoost cannot write this booster: {exc}", advice=None) from None
    try:
        check(raw)
    except ValueError as exc:
        raise Unsupported(
            f"this XGBoost model cannot be stored: {exc}",
            advice="modelsafe stores the tree and linear boosters XGBoost writes as UBJSON.",
        ) from None
    # The model holds no run-time configuration; the thread count is the part of it that
    # changes how a loaded model behaves (XGBoost's default, all cores, can be far slower).
    config = json.loads(booster.save_config())["learner"]["generic_param"]
    e.types.add(BOOSTER)
    node = {
        "$": "xgb.booster",
        "ubj": e.add_buffer(memoryview(raw)),
        "nthread": min(int(config["nthread"]), MAX_THREADS),
    }
    e.remember(booster, node)
    return node


def encoder_for(t: type) -> Any:
    return _enc_booster if qualname(t) == BOOSTER else None


# -- load -------------------------------------------------------------------------------


def _audit_booster(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("ubj", "nthread"), optional=("id",))
    a.use_buffer(node["ubj"], None)  # its content is checked once the data is read
    threads = node["nthread"]
    if type(threads) is not int or not 0 <= threads <= MAX_THREADS:
        a.fail(f"nthread must be an integer from 0 (all cores) to {MAX_THREADS}")
    a.need(BOOSTER, "node")
    a.define_late(node)


def _build_booster(b: Any, node: dict[str, Any]) -> Any:
    from ...errors import FormatError

    # One copy: checked here, then handed as is to XGBoost (which wants a bytearray).
    raw = b.copy_of(node["ubj"], bytearray)
    try:
        summary = check(raw)
    except ValueError as exc:
        raise FormatError(f"{b.source}: invalid {BOOSTER}: {exc}") from None
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(raw)
    if node["nthread"]:
        booster.set_param({"nthread": node["nthread"]})
    _CHECKED[booster] = summary
    b.register(node, booster)
    return booster


# -- the scikit-learn wrappers ------------------------------------------------------------


def _wrapper_state(obj: Any, state: Any) -> None:
    """Attributes for an XGBModel: plain names that hide nothing of the class, a real
    Booster, and class counts that agree with it."""
    state = plain_attributes(obj, state)
    if state is None:
        return
    cls = type(obj)
    booster = state.get("_Booster")
    if booster is None:
        return
    import xgboost

    if type(booster) is not xgboost.Booster:
        raise TypeError(f"_Booster must be an {BOOSTER}, not {qualname(type(booster))}")
    if cls.__name__ in _CLASSIFIERS and "n_classes_" in state:
        n_classes = state["n_classes_"]
        if type(n_classes) is not int or n_classes < 1:
            raise ValueError(f"n_classes_ = {n_classes!r} is not a positive integer")
        summary = _CHECKED.get(booster)
        if summary is not None and summary.num_class != (n_classes if n_classes > 2 else 0):
            raise ValueError(
                f"n_classes_ = {n_classes} but the booster's num_class is {summary.num_class}"
            )


TAGS = {"xgb.booster": Tag(_audit_booster, _build_booster)}
VALIDATORS = {f"xgboost.sklearn.{name}": Validator(state=_wrapper_state) for name in _WRAPPERS}
