"""LightGBM: boosters as LightGBM's own model text, checked before LightGBM parses it.

A ``Booster`` becomes an ``lgb.booster`` node: its buffer holds
``model_to_string(num_iteration=-1)`` (every iteration, whatever
``best_iteration`` says), and the Python attributes LightGBM keeps beside the
model (``best_iteration``, ``best_score``, ``params``) are members of the node,
as ordinary nodes. LightGBM's text loader trusts offsets and counts from the
file, so the text is checked line by line (:mod:`._text`) before
``Booster(model_str=...)`` sees it, at load and also at save, so a file this
handler writes is one it can read. At load LightGBM parses the very bytes the
check read, without a decoded copy of them (``_Handed``).

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
from ._text import Summary, check

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
        summary = check(raw)
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"{b.source}: invalid {BOOSTER}: the model text is not UTF-8 ({exc.reason})"
        ) from None
    except ValueError as exc:
        raise FormatError(f"{b.source}: invalid {BOOSTER}: {exc}") from None
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

    text = _model_str(raw, lightgbm.__version__)
    del raw  # the text holds it until LightGBM has parsed it, and no longer
    booster = lightgbm.Booster(model_str=text)
    del text
    _read_as_checked(booster, summary)
    booster.best_iteration = best
    booster.best_score = best_score
    booster.params = params
    b.register(node, booster)
    return booster


def _model_str(raw: bytes, version: str) -> str:
    """What ``Booster(model_str=...)`` is given for ``raw``, the checked model text: for
    LightGBM 4, a ``_Handed`` str; for another version, whose package may read the str
    otherwise, the text decoded."""
    if version.split(".")[0] == "4":
        return _Handed(raw)
    return raw.decode("utf-8")


def _read_as_checked(booster: Any, summary: Summary) -> None:
    """Whether LightGBM built the model the check read: its trees, features and the
    pandas categories (a package that read a ``_Handed`` str otherwise than LightGBM 4
    does would fail here, or on parsing, rather than give another model)."""
    got = (booster.num_trees(), booster.num_feature(), booster.pandas_categorical)
    want = (summary.n_trees, summary.num_features, summary.pandas_categorical)
    if got != want:
        raise RuntimeError(
            "LightGBM did not build the model its text describes: (trees, features, pandas "
            f"categories) are {got!r:.200}, not {want!r:.200}"
        )


class _Handed(str):
    """The checked model text as LightGBM 4's ``Booster(model_str=...)`` takes it, without
    a decoded copy of the whole text (1.7 MB for a 500-tree model, as much again while a
    str subclass is made, which would raise the load's peak memory over pickle's).

    LightGBM's package reads two things of the str it is given: its UTF-8 encoding
    (``_c_str``), the text its C++ loader parses, and its last line
    (``_load_pandas_categorical``). So this str holds only that last line, the
    ``pandas_categorical`` one the check has read, and its UTF-8 encoding is ``raw``,
    the very bytes object the check read. It is handed over once, so that the bytes are
    freed as soon as LightGBM has parsed them (before ``Booster`` asks for the loaded
    parameters, into a 1 MiB buffer of its own); encoding it again is an error, not the
    last line. It is made only to be handed to ``Booster``, and ``_read_as_checked``
    confirms the booster is the model the check read."""

    _raw: bytes | None

    def __new__(cls, raw: bytes) -> _Handed:
        last = raw.rfind(b"\npandas_categorical:")  # the check saw to it: the last line
        self = super().__new__(cls, raw[last:], "utf-8")
        self._raw = raw
        return self

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        raw, self._raw = self._raw, None
        if raw is None:
            raise RuntimeError("the LightGBM model text was handed over already")
        if encoding.replace("-", "").replace("_", "").lower() == "utf8":
            return raw  # valid UTF-8 (the check decoded it), so no error could arise
        return raw.decode("utf-8").encode(encoding, errors)


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
