"""LightGBM: boosters as LightGBM's own model text, checked before LightGBM parses it.

A ``Booster`` becomes an ``lgb.booster`` node: its buffer holds
``model_to_string(num_iteration=-1)`` (every iteration, whatever
``best_iteration`` says), and the Python attributes LightGBM keeps beside the
model (``best_iteration``, ``best_score``, ``params``) are members of the node,
as ordinary nodes. LightGBM's text loader trusts offsets and counts from the
file, so the text is checked line by line (:mod:`._text`) before
``Booster(model_str=...)`` sees it, at load and also at save, so a file this
handler writes is one it can read.

The scikit-learn wrappers (``LGBMClassifier``, ...) take the generic path: an
``obj`` node with their parameters and fitted attributes as ordinary nodes and
their booster as an ``lgb.booster`` node; their validator checks that state.

Nothing here imports LightGBM until a booster is saved or built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._graph.names import qualname
from .. import Tag, Validator, plain_attributes
from ._text import check

BOOSTER = "lightgbm.basic.Booster"
_WRAPPERS = ("LGBMModel", "LGBMClassifier", "LGBMRegressor", "LGBMRanker")
_MEMBERS = ("model", "best_iteration", "best_score", "params")


# -- save -------------------------------------------------------------------------------


def _enc_booster(e: Any, booster: Any) -> Any:
    ref = e.seen(booster)
    if ref is not None:
        return ref
    raw = booster.model_to_string(num_iteration=-1).encode("utf-8")
    try:
        check(raw)
    except ValueError as exc:
        from ..._graph.encode import Unsupported

        raise Unsupported(
            f"this LightGBM model cannot be stored: {exc}",
            advice="modelsafe stores the models LightGBM writes with model_to_string().",
        ) from None
    best = booster.best_iteration
    if type(best) is not int:
        from ..._graph.encode import Unsupported

        raise Unsupported(f"best_iteration is {type(best).__name__}, not int", advice=None)
    node: dict[str, Any] = {"$": "lgb.booster", "model": e.add_buffer(memoryview(raw))}
    node["best_iteration"] = best
    node["best_score"] = e.enc(booster.best_score)
    node["params"] = e.enc(booster.params)
    e.types.add(BOOSTER)
    e.remember(booster, node)
    return node


def encoder_for(t: type) -> Any:
    return _enc_booster if qualname(t) == BOOSTER else None


# -- load -------------------------------------------------------------------------------


def _audit_booster(a: Any, node: dict[str, Any]) -> None:
    from ..._graph.audit import check_number

    a.keys(node, required=_MEMBERS, optional=("id",))
    a.use_buffer(node["model"], None)  # its content is checked once the data is read
    best = node["best_iteration"]
    if type(best) is not int or not -1 <= best < 2**31:
        a.fail("best_iteration must be an integer from -1 (none) to 2**31 - 1")
    for member in ("best_score", "params"):
        a.visit(node[member])
        check_number(a, node[member])
    a.need(BOOSTER, "node")
    a.define_late(node)


def _build_booster(b: Any, node: dict[str, Any]) -> Any:
    from ...errors import FormatError

    raw = b.copy_of(node["model"])  # one copy that both the check and LightGBM read
    try:
        summary = check(raw)  # before the text is decoded: its scratch and the text never meet
        text = _Encoded(raw)
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"{b.source}: invalid {BOOSTER}: the model text is not UTF-8 ({exc.reason})"
        ) from None
    except ValueError as exc:
        raise FormatError(f"{b.source}: invalid {BOOSTER}: {exc}") from None
    del raw  # the text holds it until LightGBM has it
    best = node["best_iteration"]
    if best > summary.n_iterations:
        raise FormatError(
            f"{b.source}: invalid {BOOSTER}: best_iteration = {best} is after the last of "
            f"the {summary.n_iterations} iterations"
        )
    best_score = b.build(node["best_score"])
    params = b.build(node["params"])
    if not isinstance(best_score, dict):
        raise FormatError(f"{b.source}: invalid {BOOSTER}: best_score must be a dict")
    if type(params) is not dict or not all(type(k) is str for k in params):
        raise FormatError(f"{b.source}: invalid {BOOSTER}: params must be a dict of names")
    import lightgbm

    booster = lightgbm.Booster(model_str=text)
    booster.best_iteration = best
    booster.best_score = best_score
    booster.params = params
    b.register(node, booster)
    return booster


class _Encoded(str):
    """The model text decoded from ``raw``, which LightGBM's Python package, encoding the
    str it is given to UTF-8 (``_c_str``), gets back as is: the very bytes the check read,
    without a third 1.7 MB copy. They are handed over once, so that they are freed as soon
    as LightGBM has parsed them; a later ``encode``, or any other encoding, is str's own.
    A package that stopped calling ``encode`` would encode the same text to the same
    bytes."""

    _raw: bytes | None

    def __new__(cls, raw: bytes | bytearray | memoryview) -> _Encoded:
        self = super().__new__(cls, raw, "utf-8")
        self._raw = raw if type(raw) is bytes else None  # ctypes takes bytes only
        return self

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        raw = self._raw
        if raw is not None and encoding.replace("-", "").lower() == "utf8":
            self._raw = None
            return raw  # valid UTF-8 (it was decoded), so no error could arise
        return str.encode(self, encoding, errors)


# -- the scikit-learn wrappers ------------------------------------------------------------


def _wrapper_state(obj: Any, state: Any) -> None:
    """Attributes for an LGBMModel: plain names that hide nothing of the class, a real
    Booster, and feature and class counts that agree with it."""
    state = plain_attributes(obj, state)
    if state is None:
        return
    cls = type(obj)
    classes = state.get("_classes")
    n_classes = state.get("_n_classes")
    if n_classes is not None and (
        type(n_classes) is not int or not (n_classes == -1 or n_classes >= 1)
    ):
        raise ValueError(f"_n_classes = {n_classes!r} is not -1 (not fitted) or a positive integer")
    if n_classes == -1 or "Classifier" not in cls.__name__:
        n_classes = None  # nothing to compare with
    if classes is not None and n_classes is not None:
        if not isinstance(classes, np.ndarray) or classes.shape != (n_classes,):
            raise ValueError(f"_classes must be an array of the _n_classes = {n_classes} labels")
        encoder = state.get("_le")
        labels: Any = getattr(encoder, "classes_", None)
        if encoder is not None and (labels is None or not np.array_equal(labels, classes)):
            raise ValueError("_le does not encode the labels in _classes")
    booster = state.get("_Booster")
    if booster is None:
        return
    import lightgbm

    if type(booster) is not lightgbm.Booster:
        raise TypeError(f"_Booster must be a {BOOSTER}, not {qualname(type(booster))}")
    n_features = state.get("_n_features")
    if n_features is not None and n_features != booster.num_feature():
        raise ValueError(
            f"_n_features = {n_features!r} but the booster has {booster.num_feature()} features"
        )
    if n_classes is not None:
        per_iteration = booster.num_model_per_iteration()
        if per_iteration != (n_classes if n_classes > 2 else 1):
            raise ValueError(
                f"_n_classes = {n_classes} but the booster grows {per_iteration} trees per "
                "iteration"
            )


TAGS = {"lgb.booster": Tag(_audit_booster, _build_booster)}
VALIDATORS = {f"lightgbm.sklearn.{name}": Validator(state=_wrapper_state) for name in _WRAPPERS}
