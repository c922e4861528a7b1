"""The LightGBM handler: the conformance suite on real models, and crafted model texts.

Every sample is a real LightGBM model fitted on scikit-learn's data. A loaded model
must predict bit for bit what the saved one predicts (labels, probabilities, raw
scores) and hold the same model text, best iteration, scores and parameters.

Crafted files start from a real file: the model text in the booster's buffer is
edited at one line of one tree (``tree_sizes`` recomputed, so the check reached is
the one aimed at, unless the case is about ``tree_sizes``), the file is re-framed
with correct digests, and loaded in a child process that must survive: each must
end in a FormatError naming the class and the invariant.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes, load_iris, make_classification

import modelsafe

from .._crafting import assert_refused_small, frame, lay_out, rewrite, run_crafted, split
from ..compare import assert_same
from .conformance import HandlerConformance

lgb = pytest.importorskip("lightgbm")
pd = pytest.importorskip("pandas")

BOOSTER = "lightgbm.basic.Booster"
QUIET = {"n_jobs": 1, "deterministic": True, "verbose": -1, "random_state": 0}
PROBES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _fitted(model: Any, X: Any, y: Any, **fit: Any) -> Any:
    model.fit(X, y, **fit)
    PROBES[model] = X
    return model


@functools.cache
def _binary() -> tuple[Any, Any]:
    return make_classification(n_samples=300, n_features=6, n_informative=4, random_state=0)


def _booster() -> Any:
    X, y = _binary()
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.5,
        "num_threads": 1,
        "verbose": -1,
        "deterministic": True,
        "seed": 0,
    }
    names = [f"f{i}" for i in range(X.shape[1])]
    train = lgb.Dataset(X[:150], y[:150], feature_name=names)
    valid = lgb.Dataset(X[150:], y[150:], reference=train)
    booster = lgb.train(
        params,
        train,
        num_boost_round=60,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(2, verbose=False)],
    )
    PROBES[booster] = X
    return booster


def _labelled() -> Any:
    """Binary with string labels: a LabelEncoder inside, classes_ of strings."""
    X, y = _binary()
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=7, **QUIET)
    return _fitted(model, X, np.array(["no", "yes"])[y])


def _early_stopped() -> Any:
    """Three classes, scored on a validation set (best_score holds OrderedDicts)."""
    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=5, **QUIET)
    return _fitted(
        model,
        X[:110],
        y[:110],
        eval_X=(X[110:],),
        eval_y=(y[110:],),
        callbacks=[lgb.early_stopping(3, verbose=False)],
    )


# Small trees that split on a pandas categorical column.
CATEGORY_SPLITS = {
    "num_leaves": 6,
    "min_child_samples": 5,
    "cat_smooth": 1,
    "min_data_per_group": 5,
}


def _colours(n: int = 400) -> Any:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "colour": pd.Categorical(rng.choice(["red", "green", "blue", "grey", "pink"], n)),
            "size": rng.standard_normal(n),
            "weight": rng.standard_normal(n),
        }
    )


def _categorical() -> Any:
    X = _colours()
    y = (X["colour"].isin(["red", "blue", "pink"]) ^ (X["size"] > 0.3)).astype(int).to_numpy()
    model = lgb.LGBMClassifier(n_estimators=4, **CATEGORY_SPLITS, **QUIET)
    return _fitted(model, X, y)


SAMPLES = {
    "booster": _booster,
    "unfitted": lambda: lgb.LGBMClassifier(n_estimators=3),
    "classifier": _labelled,
    "multiclass": _early_stopped,
    "regressor": lambda: _fitted(
        lgb.LGBMRegressor(n_estimators=6, num_leaves=8, **QUIET), *load_diabetes(return_X_y=True)
    ),
    "ranker": lambda: _fitted(
        lgb.LGBMRanker(n_estimators=4, num_leaves=5, min_child_samples=5, **QUIET),
        *_binary(),
        group=[30] * 10,
    ),
    "categorical": _categorical,
    "linear": lambda: _fitted(
        lgb.LGBMRegressor(n_estimators=3, num_leaves=4, linear_tree=True, **QUIET),
        *load_diabetes(return_X_y=True),
    ),
    "random_forest": lambda: _fitted(
        lgb.LGBMRegressor(
            boosting_type="rf",
            n_estimators=3,
            num_leaves=6,
            subsample=0.7,
            subsample_freq=1,
            **QUIET,
        ),
        *load_diabetes(return_X_y=True),
    ),
}


def _bits(a: Any) -> tuple[str, tuple[int, ...], bytes]:
    a = np.asarray(a)
    return a.dtype.str, a.shape, a.tobytes()


def _same_booster(expected: Any, got: Any, X: Any) -> None:
    assert type(got) is lgb.Booster
    assert got.model_to_string(num_iteration=-1) == expected.model_to_string(num_iteration=-1)
    assert got.best_iteration == expected.best_iteration
    assert_same(expected.best_score, got.best_score)
    assert_same(expected.params, got.params)
    assert got.pandas_categorical == expected.pandas_categorical
    if X is not None:
        for raw in (False, True):
            assert _bits(got.predict(X, raw_score=raw)) == _bits(expected.predict(X, raw_score=raw))


class TestLightGBM(HandlerConformance):
    library = ("lightgbm",)
    samples: ClassVar[dict[str, Any]] = {k: functools.cache(v) for k, v in SAMPLES.items()}

    def assert_equal(self, expected: Any, got: Any) -> None:
        """Same type, same model text and attributes, bit-identical predictions."""
        assert type(got) is type(expected)
        X = PROBES.get(expected)
        if isinstance(expected, lgb.Booster):
            _same_booster(expected, got, X)
            return
        state, loaded = dict(vars(expected)), dict(vars(got))
        if state.get("_Booster") is None:  # not fitted: parameters only
            assert_same(state, loaded)
            return
        _same_booster(state.pop("_Booster"), loaded.pop("_Booster"), X)
        assert_same(state, loaded)
        assert _bits(got.predict(X)) == _bits(expected.predict(X))
        assert _bits(got.predict(X, raw_score=True)) == _bits(expected.predict(X, raw_score=True))
        if hasattr(expected, "predict_proba"):
            assert _bits(got.predict_proba(X)) == _bits(expected.predict_proba(X))


def test_the_samples_cover_every_wrapper_and_the_model_text_variants() -> None:
    models = {name: TestLightGBM.samples[name]() for name in SAMPLES if name != "unfitted"}
    assert {type(m).__name__ for m in models.values()} == {
        "Booster",
        "LGBMClassifier",
        "LGBMRegressor",
        "LGBMRanker",
    }
    text = {name: _text_of(m) for name, m in models.items()}
    assert "cat_boundaries=" in text["categorical"]
    assert "is_linear=1" in text["linear"]
    assert "\naverage_output\n" in text["random_forest"]
    assert "objective=multiclass num_class:3" in text["multiclass"]
    assert models["booster"].best_iteration > 0


def _text_of(model: Any) -> str:
    booster = model if isinstance(model, lgb.Booster) else model.booster_
    text: str = booster.model_to_string(num_iteration=-1)
    return text


def test_the_file_holds_lightgbms_model_text_with_every_iteration() -> None:
    """best_iteration stays an attribute: the text keeps the trees after it too, and
    prediction (which stops at best_iteration by default) is unchanged."""
    X, y = _binary()
    params = {"objective": "binary", "num_leaves": 5, "num_threads": 1, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=6)
    booster.best_iteration = 3
    blob = modelsafe.dumps(booster)
    text = _model_bytes(blob).decode()
    assert text == booster.model_to_string(num_iteration=-1)
    assert text.count("\nTree=") == booster.num_trees() == 6
    loaded = modelsafe.loads(blob)
    assert loaded.best_iteration == 3 and loaded.num_trees() == 6
    assert _bits(loaded.predict(X)) == _bits(booster.predict(X))
    assert not np.array_equal(loaded.predict(X), loaded.predict(X, num_iteration=-1))


# -- crafted model texts ---------------------------------------------------------------------


def _booster_node(blob: bytes) -> dict[str, Any]:
    stack: list[Any] = [split(blob).header["root"]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("$") == "lgb.booster":
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError("no lgb.booster node")


def _buffers(blob: bytes) -> list[bytes]:
    p = split(blob)
    return [p.data[e[0] : e[0] + e[1]] for e in p.header["buffers"]]


def _model_bytes(blob: bytes) -> bytes:
    return _buffers(blob)[_booster_node(blob)["model"]]


def _with_model(blob: bytes, text: str | bytes) -> bytes:
    """``blob`` with the model text replaced: re-laid out, digests and hash right."""
    p = split(blob)
    buffers = _buffers(blob)
    buffers[_booster_node(blob)["model"]] = text.encode() if isinstance(text, str) else text
    entries, data = lay_out(buffers)
    header = p.header
    header["buffers"] = entries
    header["data_size"] = len(data)
    return frame(header, data)


def _blocks(text: str) -> tuple[str, list[str], str]:
    first = text.index("\nTree=0\n") + 1
    end = text.index("end of trees\n")
    return text[:first], re.split(r"(?=^Tree=\d+\n)", text[first:end], flags=re.M)[1:], text[end:]


def _join(head: str, blocks: list[str], tail: str) -> str:
    """The text with ``tree_sizes`` saying the blocks' true sizes."""
    sizes = " ".join(str(len(b.encode())) for b in blocks)
    head = re.sub(r"^tree_sizes=.*$", f"tree_sizes={sizes}", head, flags=re.M)
    return head + "".join(blocks) + tail


def _edit(text: str, key: str, change: Callable[[list[str]], list[str]], tree: int = 0) -> str:
    """Tree ``tree``'s line ``key=...`` with its values changed; tree_sizes made true."""
    head, blocks, tail = _blocks(text)
    pattern = re.compile(rf"^{key}=(.*)$", re.M)
    match = pattern.search(blocks[tree])
    assert match is not None, key
    values = change(match.group(1).split(" ") if match.group(1) else [])
    blocks[tree] = pattern.sub(f"{key}={' '.join(values)}", blocks[tree], count=1)
    return _join(head, blocks, tail)


def _values(text: str, key: str, tree: int = 0) -> list[int]:
    _, blocks, _ = _blocks(text)
    match = re.search(rf"^{key}=(.*)$", blocks[tree], re.M)
    assert match is not None
    return [int(v) for v in match.group(1).split(" ")]


def _at(index: int, value: Any) -> Callable[[list[str]], list[str]]:
    def change(values: list[str]) -> list[str]:
        return [*values[:index], str(value), *values[index + 1 :]]

    return change


def _crafted_cases() -> dict[str, tuple[bytes, str]]:
    """name -> (file, text the error must contain).

    The files hold no scikit-learn object: the child process of ``run_limited`` has
    ``tests/`` first on its path, where a ``sklearn`` test package shadows the real one.
    """
    base = modelsafe.dumps(TestLightGBM.samples["regressor"]())
    text = _model_bytes(base).decode()
    left = _values(text, "left_child")
    leaves = len(left) + 1
    j = next(i for i, c in enumerate(left) if c > 0)  # an internal node other than the root
    k = next(i for i in range(len(left)) if i != j and left[i] < 0)  # another node's leaf
    multi = modelsafe.dumps(TestLightGBM.samples["booster"]())  # a booster, no wrapper
    booster_text = _model_bytes(multi).decode()
    cat = modelsafe.dumps(TestLightGBM.samples["categorical"]().booster_)
    cat_text = _model_bytes(cat).decode()
    cat_node = _values(cat_text, "decision_type").index(1)
    linear = modelsafe.dumps(TestLightGBM.samples["linear"]())
    linear_text = _model_bytes(linear).decode()
    linear_tree = next(  # a linear tree whose first leaf uses features
        t
        for t, block in enumerate(_blocks(linear_text)[1])
        if re.search(r"^num_features=[1-9]", block, re.M)
    )
    head, blocks, tail = _blocks(text)
    sizes = [len(b.encode()) for b in blocks]
    sizes[0], sizes[1] = sizes[0] + 7, sizes[1] - 7  # same total: the trees still end right
    size_lie = (
        re.sub(r"^tree_sizes=.*$", "tree_sizes=" + " ".join(map(str, sizes)), head, flags=re.M)
        + "".join(blocks)
        + tail
    )
    top = _values(text, "split_feature")  # only for its length: the regressor has 10 features
    edits: dict[str, tuple[bytes, str, str]] = {
        "child index out of range": (
            base,
            _edit(text, "left_child", _at(0, 900)),
            "left_child[0] = 900 is outside",
        ),
        "leaf index out of range": (
            base,
            _edit(text, "right_child", _at(0, -leaves - 4)),
            f"right_child[0] = {-leaves - 4} is outside",
        ),
        "split feature beyond max_feature_idx": (
            base,
            _edit(text, "split_feature", _at(0, 99)),
            "split_feature[0] = 99 is outside [0, 9] (max_feature_idx)",
        ),
        "a cycle back to the root": (
            base,
            _edit(text, "left_child", _at(j, 0)),
            f"left_child[{j}] = 0 is outside",
        ),
        "a leaf with two parents": (
            base,
            _edit(text, "left_child", _at(j, left[k])),
            "is the child of 2 nodes",
        ),
        "truncated array": (
            base,
            _edit(text, "left_child", lambda v: v[:-1]),
            f"left_child has {leaves - 2} values for num_leaves - 1 = {leaves - 1}",
        ),
        "num_leaves mismatch": (
            base,
            _edit(text, "num_leaves", lambda v: [str(leaves + 3)]),
            f"split_feature has {len(top)} values for num_leaves - 1 = {leaves + 2}",
        ),
        "decision type out of range": (
            base,
            _edit(text, "decision_type", _at(0, 14)),
            "decision_type[0] = 14 is not",
        ),
        "tree_sizes pointing past a tree": (
            base,
            size_lie,
            "tree 0 (from 'Tree=0') does not have the lines of a LightGBM tree",
        ),
        "tree_sizes past the end": (
            base,
            text.replace("tree_sizes=", "tree_sizes=900000 ", 1),
            "tree_sizes gives a tree more bytes than the whole text has",
        ),
        # Two sizes whose int64 sum wraps around to a small positive number.
        "tree_sizes overflowing": (
            base,
            text.replace("tree_sizes=", f"tree_sizes={2**62} {2**62} {2**62} {2**62} ", 1),
            "tree_sizes gives a tree more bytes than the whole text has",
        ),
        "unknown header line": (
            base,
            text.replace("\nlabel_index=", "\nevil=1\nlabel_index=", 1),
            "unknown or repeated line 'evil=1'",
        ),
        "duplicated header line": (
            base,
            text.replace("\nnum_class=1\n", "\nnum_class=1\nnum_class=1\n", 1),
            "unknown or repeated line 'num_class=1'",
        ),
        "malformed parameters line": (
            base,
            text.replace("\n[boosting: gbdt]\n", "\n[boosting gbdt]\n", 1),
            "parameters line '[boosting gbdt]'",
        ),
        "a NUL byte in a feature name": (
            base,
            text.replace("Column_1", "Col\x00mn_1", 1),
            "is a control character (0x00)",
        ),
        "a non-ASCII character in a tree": (
            base,
            text.replace("\nshrinkage=", "\nshrinka\u00e9=", 1),  # same length in UTF-8
            "the trees hold a non-ASCII character",
        ),
        "num_tree_per_iteration beyond num_class": (
            base,
            text.replace("num_tree_per_iteration=1", "num_tree_per_iteration=2", 1),
            "num_tree_per_iteration = 2 differs from num_class = 1",
        ),
        "objective with more outputs than num_class": (
            multi,
            booster_text.replace(
                "objective=binary sigmoid:1", "objective=multiclass num_class:4", 1
            ),
            "does not match num_class = 1",
        ),
        "category set index beyond num_cat": (
            cat,
            _edit(cat_text, "threshold", _at(cat_node, 7)),
            f"threshold[{cat_node}] = '7' of a categorical split",
        ),
        "category bitset past cat_threshold": (
            cat,
            _edit(cat_text, "cat_boundaries", lambda v: [*v[:-1], str(int(v[-1]) + 40)]),
            "cat_boundaries must be num_cat + 1",
        ),
        "linear leaf feature beyond the features": (
            linear,
            _edit(linear_text, "leaf_features", lambda v: ["99", *v[1:]], linear_tree),
            "leaf_features holds a feature outside [0, 9]",
        ),
        # Allocation bombs (BOMBS): refused before any list of their size is made.
        "bomb: pandas_categorical of 4.2 million empty lists": (
            base,
            text[: text.rindex("pandas_categorical:")]
            + "pandas_categorical:["
            + ",".join(["[]"] * ((1 << 22) + 8))
            + "]\n",
            "pandas_categorical has 8388624 JSON values, over the limit of 8388608",
        ),
        "bomb: 8 million feature names": (
            base,
            re.sub(
                r"^feature_names=.*$",
                "feature_names=" + " ".join(["ab"] * 8_000_000),
                text,
                count=1,
                flags=re.M,
            ),
            "feature_names must be 10 names separated by single spaces",
        ),
        "bomb: 8 million lines after the trees": (
            base,
            text.replace(
                "\nfeature_importances:\n", "\nfeature_importances:\n" + "a=1\n" * 8_000_000
            ),
            "the trees are followed by more lines than features and parameters",
        ),
        "a header of a million empty lines": (
            base,
            text.replace("\ntree_sizes=", "\n" * 1_000_000 + "\ntree_sizes=", 1),
            "the header has more lines than the 12 LightGBM writes and an empty one",
        ),
    }
    cases = {"untampered": (base, "")}
    for name, (blob, new_text, message) in edits.items():
        cases[name] = (_with_model(blob, new_text), message)
    cases["best_iteration not an integer"] = (
        rewrite(base, lambda h: _booster_node_of(h).__setitem__("best_iteration", "7")),
        "best_iteration must be an integer",
    )
    cases["best_iteration after the last iteration"] = (
        rewrite(base, lambda h: _booster_node_of(h).__setitem__("best_iteration", 10**6)),
        "best_iteration = 1000000 is after the last",
    )
    wrapper = "invalid lightgbm.sklearn.LGBMRegressor:"
    cases["wrapper: feature count against the booster"] = (
        rewrite(base, lambda h: h["root"]["state"].__setitem__("_n_features", 99)),
        f"{wrapper} _n_features = 99 but the booster has 10 features",
    )
    cases["wrapper: attribute hiding a method"] = (
        rewrite(base, lambda h: h["root"]["state"].__setitem__("predict", 1)),
        f"{wrapper} attribute 'predict' would hide LGBMRegressor.predict",
    )
    cases["wrapper: a dunder attribute"] = (
        rewrite(base, lambda h: h["root"]["state"].__setitem__("__class__", 1)),
        f"{wrapper} '__class__' is not an attribute name the estimator may have",
    )
    return cases


def _booster_node_of(header: dict[str, Any]) -> dict[str, Any]:
    """The lgb.booster node of a wrapper's file (its state's _Booster)."""
    node: dict[str, Any] = header["root"]["state"]["_Booster"]
    assert node["$"] == "lgb.booster"
    return node


CRAFTED = [
    "child index out of range",
    "leaf index out of range",
    "split feature beyond max_feature_idx",
    "a cycle back to the root",
    "a leaf with two parents",
    "truncated array",
    "num_leaves mismatch",
    "decision type out of range",
    "tree_sizes pointing past a tree",
    "tree_sizes past the end",
    "tree_sizes overflowing",
    "unknown header line",
    "duplicated header line",
    "malformed parameters line",
    "a NUL byte in a feature name",
    "a non-ASCII character in a tree",
    "num_tree_per_iteration beyond num_class",
    "objective with more outputs than num_class",
    "category set index beyond num_cat",
    "category bitset past cat_threshold",
    "linear leaf feature beyond the features",
    "best_iteration not an integer",
    "best_iteration after the last iteration",
    "wrapper: feature count against the booster",
    "wrapper: attribute hiding a method",
    "wrapper: a dunder attribute",
    "a header of a million empty lines",
]
# Texts of 12 to 32 MB that, split or parsed before their counts were checked, made
# 0.3 to 0.5 GB of Python objects (and LightGBM parses pandas_categorical again).
BOMBS = [
    "bomb: pandas_categorical of 4.2 million empty lists",
    "bomb: 8 million feature names",
    "bomb: 8 million lines after the trees",
]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return run_crafted(_crafted_cases(), BOMBS, tmp_path_factory.mktemp("lgb"))


def test_crafted_control_loads_and_predicts_the_same(crafted: dict[str, Any]) -> None:
    assert crafted["untampered"]["error"] is None, crafted["untampered"]
    model = TestLightGBM.samples["regressor"]()
    X = PROBES[model]
    loaded = modelsafe.loads(modelsafe.dumps(model))
    assert _bits(loaded.predict(X)) == _bits(model.predict(X))


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_model_text_is_a_format_error(case: str, crafted: dict[str, Any]) -> None:
    r = crafted[case]
    assert r["error"] == "FormatError" and r["modelsafe"], r
    if not case.startswith(("wrapper", "best_iteration not")):  # the latter: found at audit
        assert f"invalid {BOOSTER}:" in r["message"], r["message"]
    assert r["expect"] in r["message"], r["message"]


@pytest.mark.parametrize("case", BOMBS)
def test_allocation_bombs_are_refused_before_they_grow_the_process(
    case: str, crafted: dict[str, Any]
) -> None:
    assert_refused_small(crafted[case])


def test_every_crafted_case_is_tested(crafted: dict[str, Any]) -> None:
    assert set(CRAFTED) | set(BOMBS) == set(crafted) - {"untampered"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (3, "_classes must be an array of the _n_classes = 3 labels"),
        (0, "_n_classes = 0 is not -1 (not fitted) or a positive integer"),
        (True, "_n_classes = True is not -1 (not fitted) or a positive integer"),
    ],
)
def test_classifier_state_is_checked(value: Any, message: str) -> None:
    """LGBMClassifier's class count, checked here: the child process of the crafted tests
    cannot import scikit-learn, which the classifier's label encoder needs. The check is
    pure Python and runs before any state is applied."""
    blob = modelsafe.dumps(TestLightGBM.samples["classifier"]())
    edited = rewrite(blob, lambda h: h["root"]["state"].__setitem__("_n_classes", value))
    with pytest.raises(modelsafe.FormatError, match=re.escape(message)):
        modelsafe.loads(edited)


def test_inside_a_scikit_learn_pipeline() -> None:
    """The wrapper is an ordinary estimator to scikit-learn: a Pipeline holding one loads
    with the default trust and predicts the same."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _binary()
    model = make_pipeline(StandardScaler(), lgb.LGBMClassifier(n_estimators=3, **QUIET))
    model.fit(X, y)
    blob = modelsafe.dumps(model)
    assert modelsafe.untrusted_types(blob) == []
    assert _bits(modelsafe.loads(blob).predict_proba(X)) == _bits(model.predict_proba(X))


def test_control_bytes_are_found_in_every_slice_of_the_scan() -> None:
    """The control-byte scan goes a slice at a time: a byte in a later slice is found, at
    its offset in the whole text."""
    from modelsafe._handlers.lightgbm import _text

    for at in (0, _text._SCAN - 1, _text._SCAN, 3 * _text._SCAN + 5):
        text = "x" * at + "\x01" + "y" * 100
        with pytest.raises(ValueError, match=f"byte {at} is a control character \\(0x01\\)"):
            _text.check(text.encode())


def test_non_ascii_feature_names_are_allowed_outside_the_trees() -> None:
    """The trees must be ASCII; the header's feature names need not be."""
    model = TestLightGBM.samples["regressor"]()
    blob = modelsafe.dumps(model)
    text = _model_bytes(blob).decode()
    assert text.isascii()
    renamed = text.replace("Column_1", "Colonne_\u00e9", 1)
    assert not renamed.isascii() and "\u00e9" not in renamed[renamed.find("\nTree=") :]
    from modelsafe._handlers.lightgbm import _text

    summary = _text.check(renamed.encode())
    assert summary.num_features == model.n_features_in_


# -- the two tree readers ---------------------------------------------------------------------


def _stump() -> str:
    """A model whose only tree is a single leaf: every per-split line is empty."""
    X, y = _binary()
    params = {"objective": "regression", "min_data_in_leaf": 200, "num_threads": 1, "verbose": -1}
    text: str = lgb.train(params, lgb.Dataset(X, y.astype(float)), 4).model_to_string()
    assert "\nnum_leaves=1\n" in text
    return text


def _categorical_linear() -> str:
    """Trees with both optional line groups: categorical splits and linear leaves."""
    X = _colours()
    y = X["colour"].isin(["red", "blue"]) * 2.0 + X["size"]
    model = lgb.LGBMRegressor(n_estimators=3, linear_tree=True, **CATEGORY_SPLITS, **QUIET)
    text = _text_of(model.fit(X, y))
    assert "cat_boundaries=" in text and "is_linear=1" in text
    return text


@functools.cache
def _reader_texts() -> dict[str, str]:
    texts = {name: _text_of(TestLightGBM.samples[name]()) for name in SAMPLES if name != "unfitted"}
    texts["single leaf"] = _stump()
    texts["categorical and linear"] = _categorical_linear()
    return texts


def _outcome(text: str) -> Any:
    """What check() says of ``text``: its summary, or the message it refuses it with."""
    from modelsafe._handlers.lightgbm import _text

    try:
        return _text.check(text.encode())
    except ValueError as exc:
        return f"ValueError: {exc}"


def _checked_both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """check()'s outcome with the numpy tree reader, and with the grammar's alone."""
    from modelsafe._handlers.lightgbm import _text

    fast = _outcome(text)
    with monkeypatch.context() as m:
        m.setattr(_text._Scanned, "read", classmethod(lambda cls, seg, sizes: None))
        slow = _outcome(text)
    return fast, slow


def _scan_input(text: str) -> tuple[Any, Any]:
    """The trees' bytes and their sizes, as check() gives them to ``_Scanned.read``."""
    first = text.index("\nTree=") + 1
    end = text.index("end of trees\n")
    sizes = np.array(
        [int(s) for s in re.search(r"^tree_sizes=(.*)$", text, re.M)[1].split(" ")]  # type: ignore[index]
    )
    return np.frombuffer(text.encode(), dtype=np.uint8)[first:end], sizes


def _readers(text: str) -> tuple[Any, Any]:
    """The trees as ``_Scanned`` reads them (None: refused) and as ``_Matched`` does."""
    from modelsafe._handlers.lightgbm import _text

    seg, sizes = _scan_input(text)
    return _text._Scanned.read(seg, sizes), _text._Matched(text, text.index("\nTree=") + 1, sizes)


def _same_reading(scanned: Any, matched: Any) -> None:
    from modelsafe._handlers.lightgbm import _text

    assert scanned.n == matched.n
    for field in ("index", "num_leaves", "num_cat", "is_linear"):
        assert scanned.numbers(field).tolist() == matched.numbers(field).tolist(), field
    for field in _text._FIELDS:
        assert scanned.present(field).tolist() == matched.present(field).tolist(), field
        for t in range(matched.n):
            assert scanned.line(field, t) == matched.line(field, t), (field, t)
    counted = _text._PER_SPLIT + _text._PER_LEAF
    assert scanned.counts(counted).tolist() == matched.counts(counted).tolist()
    for field in _text._PARSED:
        assert scanned.ints(field).tolist() == matched.ints(field).tolist(), field


@pytest.mark.parametrize(
    "sample", sorted(set(SAMPLES) - {"unfitted"} | {"single leaf", "categorical and linear"})
)
def test_the_numpy_tree_reader_reads_every_sample_as_the_grammar(sample: str) -> None:
    scanned, matched = _readers(_reader_texts()[sample])
    assert scanned is not None, "the numpy reader refused a model LightGBM wrote"
    _same_reading(scanned, matched)


def _edited(text: str, rng: np.random.Generator) -> str:
    """One byte of one tree changed to a byte that matters to the layout, or such a byte
    inserted, or one removed; tree_sizes made true so the edit reaches the tree readers."""
    head, blocks, tail = _blocks(text)
    t = int(rng.integers(len(blocks)))
    block = blocks[t]
    at = int(rng.integers(len(block)))
    byte = str(rng.choice(list("\n -=0159a.T")))
    kind = rng.integers(3)
    if kind == 0:
        block = block[:at] + byte + block[at + 1 :]
    elif kind == 1:
        block = block[:at] + byte + block[at:]
    else:
        block = block[:at] + block[at + 1 :]
    blocks[t] = block
    return _join(head, blocks, tail)


@pytest.mark.parametrize(
    "sample", ["regressor", "categorical", "single leaf", "categorical and linear"]
)
def test_edited_models_get_the_same_verdict_from_both_readers(
    sample: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the numpy reader accepts, the grammar accepts with the same values; what it
    refuses, the grammar reads (and names the broken rule): check() says the same with and
    without it, on seeded edits."""
    text = _reader_texts()[sample]
    rng = np.random.default_rng(7)
    scanned_edits = refused_edits = 0
    for _ in range(300):
        edited = _edited(text, rng)
        fast, slow = _checked_both(edited, monkeypatch)
        assert fast == slow, edited
        refused_edits += type(fast) is str
        try:
            scanned, matched = _readers(edited)
        except ValueError:  # the grammar refuses the trees (the same verdict, as above)
            assert type(fast) is str
            continue
        if scanned is not None:
            _same_reading(scanned, matched)
            scanned_edits += 1
    # Both occur: the comparison covers texts the numpy reader reads and texts refused.
    assert scanned_edits >= 10 and refused_edits >= 10, (scanned_edits, refused_edits)


def test_the_integer_parser_reads_what_the_grammar_allows() -> None:
    """``_parse`` against Python's int() on random strings of the characters that matter:
    the same integers, or None exactly when a token is not '-'? and 1 to 18 digits."""
    from modelsafe._handlers.lightgbm import _text

    rng = np.random.default_rng(3)
    alphabet = list("-0123456789 \n") + ["00", "-1", " ", "7"] * 3
    accepted = 0
    for _ in range(3000):
        body = "".join(rng.choice(alphabet, int(rng.integers(1, 12))))
        buf = body if body.endswith(("\n", " ")) else body + "\n"
        tokens = re.split(r"[ \n]", buf[:-1])
        for signed in (True, False):
            pattern = r"-?[0-9]{1,18}" if signed else r"[0-9]{1,18}"
            want = (
                [int(x) for x in tokens] if all(re.fullmatch(pattern, x) for x in tokens) else None
            )
            got = _text._parse(np.frombuffer(buf.encode(), dtype=np.uint8), signed=signed)
            assert (None if got is None else got.tolist()) == want, (buf, signed)
            accepted += want is not None
    assert accepted > 300
    long = np.frombuffer(b"1234567890123456789\n", dtype=np.uint8)  # 19 digits
    assert _text._parse(long, signed=True) is None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Tree=0\n", "Tree=00000000000\n"),  # 11 digits, though worth 0
        ("\nnum_cat=0\n", "\nnum_cat=-0\n"),
        ("\nis_linear=0\n", "\nis_linear=00\n"),
        ("\nsplit_feature=", "\nsplit_featur="),
        ("\nshrinkage=", "\nshrinkage ="),
    ],
)
def test_near_miss_lines_are_refused_by_both_readers(
    old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines one character from the grammar, in the first tree: the same refusal either way."""
    head, blocks, tail = _blocks(_reader_texts()["regressor"])
    assert old in blocks[0]
    blocks[0] = blocks[0].replace(old, new, 1)
    fast, slow = _checked_both(_join(head, blocks, tail), monkeypatch)
    assert fast == slow
    assert fast == "ValueError: " + (
        f"tree 0 (from {blocks[0].split(chr(10))[0][:40]!r}) does not have the lines of a "
        f"LightGBM tree in the {len(blocks[0].encode())} characters tree_sizes gives it"
    )


@pytest.mark.parametrize("token", ["1.5", "2.", ".5", "1e3", "3E+1", "inf", "-nan", "1.0e-2"])
@pytest.mark.parametrize(
    ("sample", "field"),
    [
        ("regressor", "leaf_count"),
        ("regressor", "internal_count"),
        ("categorical", "cat_boundaries"),
        ("categorical", "cat_threshold"),
    ],
)
def test_numbers_on_integer_lines_are_refused_in_every_slice_of_the_scan(
    sample: str, field: str, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A number that is no integer (a dot, an exponent, inf or nan) as the last value of an
    integer line, in the first tree, a middle one and the last, with the trees read a few
    at a time: the numpy reader refuses it (so the grammar names the rule), whichever slice
    holds it."""
    from modelsafe._handlers.lightgbm import _text

    monkeypatch.setattr(_text, "_SCAN", 1 << 10)  # a slice of trees every KiB or so
    monkeypatch.setattr(_text, "_RUN", 1 << 10)  # (the number lines' check has its own)
    head, blocks, tail = _blocks(_reader_texts()[sample])
    having = [t for t, block in enumerate(blocks) if f"\n{field}=" in block]
    assert len(having) >= 3
    for t in (having[0], having[len(having) // 2], having[-1]):
        edited = list(blocks)
        edited[t] = re.sub(
            rf"(\n{field}=[-0-9 ]*?)(-?[0-9]+)\n", rf"\g<1>{token}\n", blocks[t], count=1
        )
        assert edited[t] != blocks[t]
        text = _join(head, edited, tail)
        with pytest.raises(ValueError, match=f"^tree {t} "):  # the grammar's verdict
            _readers(text)
        assert _text._Scanned.read(*_scan_input(text)) is None, (t, field, token)
        fast, slow = _checked_both(text, monkeypatch)
        assert fast == slow and fast.startswith(f"ValueError: tree {t} "), (fast, slow)
    scanned, matched = _readers(_join(head, blocks, tail))  # unedited: read in slices alike
    assert scanned is not None
    _same_reading(scanned, matched)


def test_numbers_that_trade_places_between_lines_are_refused_by_both_readers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An empty ``Tree=`` and two numbers on ``num_leaves``: as many numbers as lines, but
    not one a line. Both readers refuse it alike."""
    head, blocks, tail = _blocks(_reader_texts()["regressor"])
    leaves = re.search(r"^num_leaves=(\d+)$", blocks[0], re.M)[1]  # type: ignore[index]
    blocks[0] = blocks[0].replace("Tree=0\n", "Tree=\n", 1)
    blocks[0] = blocks[0].replace(f"\nnum_leaves={leaves}\n", f"\nnum_leaves=0 {leaves}\n", 1)
    fast, slow = _checked_both(_join(head, blocks, tail), monkeypatch)
    assert fast == slow and fast.startswith("ValueError: tree 0 (from 'Tree=') does not have")


def test_lines_with_more_than_65535_values_are_counted_right() -> None:
    """Spaces are summed in 16 bits only where no line is that long: a line of 70,000
    values (which check() then finds too long for the tree) is counted exactly."""
    head, blocks, tail = _blocks(_reader_texts()["regressor"])
    blocks[0] = re.sub(
        r"^split_gain=.*$", "split_gain=" + " ".join(["1"] * 70_000), blocks[0], count=1, flags=re.M
    )
    scanned, matched = _readers(_join(head, blocks, tail))
    assert scanned is not None
    _same_reading(scanned, matched)
    assert scanned.counts(("split_gain",))[0, 0] == 70_000


def test_spaces_are_counted_per_line_across_the_scan_slices() -> None:
    """``_spaces`` sums a run of lines at a time: lines that straddle a run's edge, empty
    lines and lines longer than a run are counted as Python counts them."""
    from modelsafe._handlers.lightgbm import _text

    rng = np.random.default_rng(5)
    lines = []
    for _ in range(4000):
        n = int(rng.choice([0, 3, 40, 400, 150_000], p=[0.1, 0.4, 0.3, 0.197, 0.003]))
        lines.append("".join(rng.choice(list("ab  "), n)))
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) > 3 * _text._SCAN and max(map(len, lines)) >= 1 << 16
    seg = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(seg == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    counted = _text._spaces(seg, starts, ends)
    assert counted.tolist() == [line.count(" ") for line in lines]


# -- the values of the number lines ----------------------------------------------------------

_TOKEN_CHARS = "0123456789.eE+-infa*x"


def _reference(text: str, floats: bool, loose: bool = False) -> bool:
    """The rule _tokens_ok applies, written plainly: lines of single-space-separated
    tokens, each matching the grammar (``loose``: separated by any spaces)."""
    import re

    from modelsafe._handlers.lightgbm._text import _FLOAT_TOKEN

    grammar = _FLOAT_TOKEN if floats else re.compile(r"-?[0-9]+")
    if not text.endswith("\n"):
        return False
    return all(
        all(grammar.fullmatch(token) for token in line.split(" ") if token or not loose)
        for line in text[:-1].split("\n")
    )


@settings(max_examples=3000, deadline=None)
@given(
    lines=st.lists(
        st.lists(st.text(alphabet=_TOKEN_CHARS, min_size=0, max_size=7), min_size=1, max_size=4),
        min_size=1,
        max_size=3,
    ),
    floats=st.booleans(),
    loose=st.booleans(),
)
def test_number_tokens_are_checked_by_their_grammar(
    lines: list[list[str]], floats: bool, loose: bool
) -> None:
    from modelsafe._handlers.lightgbm._text import _tokens_ok

    text = "".join(" ".join(tokens) + "\n" for tokens in lines)
    buf = np.frombuffer(text.encode(), dtype=np.uint8)
    want = _reference(text, floats, loose)
    assert _tokens_ok(buf, floats=floats, loose=loose) == want, repr(text)


@settings(max_examples=3000, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.text(alphabet="infae_lvu", min_size=1, max_size=6),
            st.lists(st.text(alphabet=_TOKEN_CHARS, min_size=0, max_size=7), max_size=4),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_runs_of_tree_lines_are_checked_by_the_same_grammar(
    lines: list[tuple[str, list[str]]],
) -> None:
    """``_run_ok``, the check of whole trees' lines with their keys marked apart, says of
    the values what ``_reference`` says: keys made of the letters of inf, nan and exponents
    stand aside, and an empty line is allowed as between trees."""
    from modelsafe._handlers.lightgbm import _text

    text, keys = "", []
    for key, tokens in lines:
        keys += range(len(text), len(text) + len(key) + 1)  # the key and its '='
        text += f"{key}=" + " ".join(tokens) + "\n"
    text += "\n"
    raw = np.frombuffer(text.encode(), dtype=np.uint8)
    marked = bytearray(text.encode()).translate(_text._RUN_CLASS)
    cls = np.frombuffer(marked, dtype=np.uint8)
    cls[keys] = _text._R_KEY
    # An empty line has no value to refuse (a single-leaf tree's split lines).
    values = "".join(line + "\n" for _, tokens in lines if (line := " ".join(tokens)))
    want = not values or _reference(values, floats=True)
    assert _text._run_ok(cls, marked, raw) == want, repr(text)


# Tokens the grammar accepts, each put into a real model's internal_value line: LightGBM
# must parse every one (its reader ends the process on a token it does not know).
_ACCEPTED = ["0", "-0", "1.", ".5", "-.5", "1.5e-07", "2E+300", "1e999", "inf", "-inf", "nan"]
_ACCEPTED += ["-nan", "123456789012345678901234567890"]


def test_every_token_shape_the_grammar_accepts_is_one_lightgbm_reads(tmp_path: Path) -> None:
    import subprocess
    import sys

    import lightgbm

    from modelsafe._handlers.lightgbm._text import _FLOAT_TOKEN

    assert all(_FLOAT_TOKEN.fullmatch(t) for t in _ACCEPTED)
    model = lightgbm.LGBMRegressor(n_estimators=2, num_leaves=4, verbose=-1)
    x, y = load_diabetes(return_X_y=True)
    text = model.fit(x, y).booster_.model_to_string()
    source = tmp_path / "model.txt"
    source.write_text(text)
    code = f"""
import lightgbm, sys
text = open({str(source)!r}).read()
for token in sys.argv[1:]:
    i = text.index("internal_value=") + len("internal_value=")
    j = text.index(" ", i)
    edited = text[:i] + token + text[j:]
    head, rest = edited.split("tree_sizes=", 1)
    sizes, tail = rest.split("\\n", 1)
    numbers = [int(v) for v in sizes.split()]
    numbers[0] += len(token) - (j - i)
    edited = head + "tree_sizes=" + " ".join(map(str, numbers)) + "\\n" + tail
    lightgbm.Booster(model_str=edited)
print("all read")
"""
    run = subprocess.run([sys.executable, "-c", code, *_ACCEPTED], capture_output=True, text=True)
    assert run.returncode == 0 and "all read" in run.stdout, run.stderr[-500:]


def _categorical_model() -> tuple[Any, Any]:
    """The "categorical" sample (fitted on a DataFrame with a category column, so its text
    ends with the pandas categories LightGBM reads from the str it is given) and its data."""
    model = _categorical()
    return model, PROBES[model]


def test_lightgbm_parses_the_very_bytes_that_were_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Loading a file, the handler gives LightGBM 4 a str whose UTF-8 encoding is the
    checked bytes object itself, handed over once (no decoded copy of the text: the str
    holds only the last line, the pandas categories LightGBM's package reads from it)."""
    from modelsafe._handlers.lightgbm import _Handed

    raw = 'tree\nversion=v4\n\npandas_categorical:[["a", "\u00e9"]]\n'.encode()
    text = _Handed(raw)
    assert text == '\npandas_categorical:[["a", "\u00e9"]]\n'
    assert text.encode("utf8") is raw
    with pytest.raises(RuntimeError, match="handed over already"):
        text.encode()  # once only: never the last line as if it were the text
    assert _Handed(raw).encode("latin-1") == raw.decode().encode("latin-1")  # the whole text
    handed: list[bool] = []
    original = _Handed.encode

    def spy(self: Any, *args: Any) -> bytes:
        held = self._raw
        out = original(self, *args)
        handed.append(held is not None and out is held and self._raw is None)
        return out

    monkeypatch.setattr(_Handed, "encode", spy)
    model, X = _categorical_model()
    loaded = modelsafe.load(modelsafe.save(model, tmp_path / "m.msafe", fsync=False))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.booster_.pandas_categorical == model.booster_.pandas_categorical
    assert loaded.booster_.pandas_categorical == [["blue", "green", "grey", "pink", "red"]]
    assert handed == [True], handed


def test_another_lightgbm_version_is_given_the_whole_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A LightGBM other than 4, whose package may read the str otherwise, gets the text
    decoded, whole."""
    from modelsafe._handlers import lightgbm as handler

    given: list[Any] = []
    original = lgb.Booster.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        given.append(kwargs.get("model_str"))
        original(self, *args, **kwargs)

    model, X = _categorical_model()
    path = modelsafe.save(model, tmp_path / "m.msafe", fsync=False)
    monkeypatch.setattr(lgb, "__version__", "5.0.0")
    monkeypatch.setattr(lgb.Booster, "__init__", spy)
    loaded = modelsafe.load(path)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert [type(s) for s in given] == [str]
    assert given[0] == model.booster_.model_to_string(num_iteration=-1)
    assert handler._model_str(b"x", "4.7.0").__class__ is handler._Handed


def test_a_booster_other_than_the_checked_model_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Were a LightGBM package to build a booster from something other than the text the
    check read (here: a package that encodes the str it is given itself, which for the
    handed str is only its last line, and is given a valid model of its own instead), the
    load fails naming the difference rather than give another model."""
    import ctypes

    other = lgb.LGBMRegressor(n_estimators=2, num_leaves=3, **QUIET).fit(
        *load_diabetes(return_X_y=True)
    )
    other_text = other.booster_.model_to_string(num_iteration=-1)
    model, _ = _categorical_model()
    path = modelsafe.save(model, tmp_path / "m.msafe", fsync=False)
    monkeypatch.setattr(
        lgb.basic, "_c_str", lambda string: ctypes.c_char_p(other_text.encode("utf-8"))
    )
    with pytest.raises(modelsafe.FormatError, match="did not build the model its text describes"):
        modelsafe.load(path)
