"""The XGBoost handler: the conformance suite on real models, and crafted boosters.

Every sample is a real XGBoost model fitted on scikit-learn's data. A loaded model
must predict bit for bit what the saved one predicts (labels, probabilities, raw
margins) and hold the same model bytes and attributes.

Crafted files start from a real file: the booster's UBJSON buffer is edited at
one place (found by its key in the bytes, independently of the handler's reader),
the file is re-framed with correct digests, and loaded in a child process that
must survive: each must end in a FormatError naming the class and the invariant.
"""

from __future__ import annotations

import functools
import json
import struct
import weakref
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris, make_classification

import modelsafe

from .._crafting import assert_refused_small, frame, lay_out, rewrite, run_crafted, split
from ..compare import assert_same
from .conformance import HandlerConformance

xgb = pytest.importorskip("xgboost")
pd = pytest.importorskip("pandas")

BOOSTER = "xgboost.core.Booster"
# The data each sample predicts on in assert_equal (kept out of the model's state).
PROBES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _fitted(model: Any, X: Any, y: Any, **fit: Any) -> Any:
    model.fit(X, y, **fit)
    PROBES[model] = X
    return model


@functools.cache
def _binary() -> tuple[Any, Any]:
    return make_classification(n_samples=240, n_features=6, n_informative=4, random_state=0)


def _booster() -> Any:
    X, y = _binary()
    names = [f"f{i}" for i in range(X.shape[1])]
    dtrain = xgb.DMatrix(X, label=y, feature_names=names)
    params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 0}
    booster = xgb.train(params, dtrain, num_boost_round=6)
    booster.set_attr(note="trained for the tests")
    PROBES[booster] = X
    return booster


def _early_stopped() -> Any:
    X, y = _binary()
    model = xgb.XGBClassifier(
        n_estimators=40,
        max_depth=3,
        learning_rate=0.3,
        early_stopping_rounds=3,
        eval_metric="logloss",
        n_jobs=1,
        random_state=0,
    )
    return _fitted(model, X[:180], y[:180], eval_set=[(X[180:], y[180:])], verbose=False)


def _categorical_frame() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    n = 300
    frame_ = pd.DataFrame(
        {
            "colour": pd.Categorical(rng.choice(["red", "green", "blue", "grey"], n)),
            "size": rng.standard_normal(n),
            "grade": pd.Categorical(rng.choice(np.array([3, 1, 7, 9], dtype=np.int8), n)),
        }
    )
    y = (frame_["colour"].isin(["red", "blue"]) ^ (frame_["size"] > 0.3)).astype(int)
    return frame_, y.to_numpy()


SAMPLES = {
    "booster": _booster,
    "unfitted": lambda: xgb.XGBClassifier(n_estimators=3),
    "classifier": _early_stopped,
    "multiclass": lambda: _fitted(
        xgb.XGBClassifier(n_estimators=5, max_depth=3, n_jobs=1, random_state=0),
        *load_iris(return_X_y=True),
    ),
    "regressor": lambda: _fitted(
        xgb.XGBRegressor(n_estimators=8, max_depth=4, n_jobs=1, random_state=0),
        *load_diabetes(return_X_y=True),
    ),
    "ranker": lambda: _fitted(
        xgb.XGBRanker(n_estimators=5, max_depth=3, n_jobs=1, random_state=0),
        *_binary(),
        qid=np.repeat(np.arange(24), 10),
    ),
    "rf_classifier": lambda: _fitted(
        xgb.XGBRFClassifier(n_estimators=4, max_depth=3, n_jobs=1, random_state=0), *_binary()
    ),
    "rf_regressor": lambda: _fitted(
        xgb.XGBRFRegressor(n_estimators=4, max_depth=3, n_jobs=1, random_state=0),
        *load_diabetes(return_X_y=True),
    ),
    "dart": lambda: _fitted(
        xgb.XGBRegressor(booster="dart", n_estimators=4, max_depth=3, n_jobs=1, random_state=0),
        *load_diabetes(return_X_y=True),
    ),
    "linear": lambda: _fitted(
        xgb.XGBClassifier(booster="gblinear", n_estimators=4, n_jobs=1, random_state=0),
        *load_iris(return_X_y=True),
    ),
    "pruned": lambda: _fitted(  # the exact method prunes: its trees hold deleted nodes
        xgb.XGBClassifier(
            n_estimators=4, max_depth=6, tree_method="exact", gamma=2.0, n_jobs=1, random_state=0
        ),
        *_binary(),
    ),
    "categorical": lambda: _fitted(
        xgb.XGBClassifier(
            n_estimators=4,
            max_depth=3,
            enable_categorical=True,
            max_cat_to_onehot=1,
            n_jobs=1,
            random_state=0,
        ),
        *_categorical_frame(),
    ),
}


def _bits(a: Any) -> tuple[str, tuple[int, ...], bytes]:
    a = np.asarray(a)
    return a.dtype.str, a.shape, a.tobytes()


def _same_booster(expected: Any, got: Any, X: Any) -> None:
    assert type(got) is xgb.Booster
    assert bytes(got.save_raw("ubj")) == bytes(expected.save_raw("ubj"))
    assert got.attributes() == expected.attributes()
    assert got.feature_names == expected.feature_names
    if X is not None:
        data = xgb.DMatrix(X, feature_names=expected.feature_names, enable_categorical=True)
        for margin in (False, True):
            assert _bits(got.predict(data, output_margin=margin)) == _bits(
                expected.predict(data, output_margin=margin)
            )


class TestXGBoost(HandlerConformance):
    library = ("xgboost",)
    samples: ClassVar[dict[str, Any]] = {k: functools.cache(v) for k, v in SAMPLES.items()}

    def assert_equal(self, expected: Any, got: Any) -> None:
        """Same type, same model bytes, same attributes, bit-identical predictions."""
        assert type(got) is type(expected)
        X = PROBES.get(expected)
        if isinstance(expected, xgb.Booster):
            _same_booster(expected, got, X)
            return
        state, loaded = dict(vars(expected)), dict(vars(got))
        if state.get("_Booster") is None:  # not fitted: parameters only
            assert_same(state, loaded)
            return
        _same_booster(state.pop("_Booster"), loaded.pop("_Booster"), X)
        assert_same(state, loaded)
        assert _bits(got.predict(X)) == _bits(expected.predict(X))
        assert _bits(got.predict(X, output_margin=True)) == _bits(
            expected.predict(X, output_margin=True)
        )
        if hasattr(expected, "predict_proba"):
            assert _bits(got.predict_proba(X)) == _bits(expected.predict_proba(X))


def test_the_samples_cover_every_wrapper_and_booster_kind() -> None:
    """The suite above runs on each wrapper class and on gbtree, dart and gblinear."""
    models = [TestXGBoost.samples[name]() for name in SAMPLES if name != "unfitted"]
    names = {type(m).__name__ for m in models}
    assert names == {
        "Booster",
        "XGBClassifier",
        "XGBRegressor",
        "XGBRanker",
        "XGBRFClassifier",
        "XGBRFRegressor",
    }
    kinds = {
        json.loads(m.get_booster().save_config())["learner"]["gradient_booster"]["name"]
        for m in models
        if not isinstance(m, xgb.Booster)
    }
    assert kinds == {"gbtree", "dart", "gblinear"}
    pruned = json.loads(TestXGBoost.samples["pruned"]().get_booster().save_raw("json"))
    trees = pruned["learner"]["gradient_booster"]["model"]["trees"]
    assert any(int(tree["tree_param"]["num_deleted"]) for tree in trees)


def test_the_file_holds_xgboosts_model_not_a_pickle() -> None:
    model = TestXGBoost.samples["classifier"]()
    blob = modelsafe.dumps(model)
    raw = _booster_bytes(blob)
    assert raw == bytes(model.get_booster().save_raw("ubj"))
    assert b"pickle" not in blob and b"\x80\x05" not in raw[:2]
    assert modelsafe.loads(blob).best_iteration == model.best_iteration


def test_multi_output_trees_are_refused_at_save() -> None:
    X, y = load_diabetes(return_X_y=True)
    model = xgb.XGBRegressor(
        n_estimators=2,
        max_depth=2,
        tree_method="hist",
        multi_strategy="multi_output_tree",
        n_jobs=1,
    )
    model.fit(X, np.column_stack([y, -y]))
    with pytest.raises(modelsafe.UnsupportedTypeError, match="multi-output trees"):
        modelsafe.dumps(model)


# -- crafted boosters ------------------------------------------------------------------------


def _booster_node(blob: bytes) -> dict[str, Any]:
    """The first xgb.booster node of a file's tree (found by walking the header JSON)."""
    stack: list[Any] = [split(blob).header["root"]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("$") == "xgb.booster":
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError("no xgb.booster node")


def _buffers(blob: bytes) -> list[bytes]:
    p = split(blob)
    return [p.data[e[0] : e[0] + e[1]] for e in p.header["buffers"]]


def _booster_bytes(blob: bytes) -> bytes:
    return _buffers(blob)[_booster_node(blob)["ubj"]]


def _with_booster_bytes(blob: bytes, raw: bytes) -> bytes:
    """``blob`` with the booster's buffer replaced: re-laid out, digests and hash right."""
    p = split(blob)
    buffers = _buffers(blob)
    buffers[_booster_node(blob)["ubj"]] = raw
    entries, data = lay_out(buffers)
    header = p.header
    header["buffers"] = entries
    header["data_size"] = len(data)
    return frame(header, data)


def _array(raw: bytes, key: str, tree: int = 0) -> tuple[int, int]:
    """(offset of the data, item count) of typed array ``key`` in the ``tree``-th tree."""
    pattern = len(key).to_bytes(8, "big") + key.encode() + b"[$"
    at = -1
    for _ in range(tree + 1):
        at = raw.index(pattern, at + 1)
    start = at + len(pattern) + 2  # marker, '#'
    assert raw[start : start + 1] == b"L"
    (count,) = struct.unpack_from(">q", raw, start + 1)
    return start + 9, count


def _set_int32(raw: bytes, key: str, index: int, value: int, tree: int = 0) -> bytes:
    data, count = _array(raw, key, tree)
    assert index < count
    out = bytearray(raw)
    struct.pack_into(">i", out, data + 4 * index, value)
    return bytes(out)


def _set_byte(raw: bytes, key: str, index: int, value: int, tree: int = 0) -> bytes:
    data, count = _array(raw, key, tree)
    assert index < count
    return raw[: data + index] + bytes([value]) + raw[data + index + 1 :]


def _int32s(raw: bytes, key: str, tree: int = 0) -> np.ndarray[Any, Any]:
    data, count = _array(raw, key, tree)
    return np.frombuffer(raw, ">i4", count, data)


def _first_internal_child(raw: bytes) -> int:
    """An internal node of tree 0 other than the root."""
    left = _int32s(raw, "left_children")
    return int(np.flatnonzero(left[1:] != -1)[0]) + 1


def _truncate_left_children(raw: bytes) -> bytes:
    """Tree 0's left_children one item short, its count saying so (the rest intact)."""
    data, count = _array(raw, "left_children")
    out = bytearray(raw)
    struct.pack_into(">q", out, data - 8, count - 1)
    del out[data + 4 * (count - 1) : data + 4 * count]
    return bytes(out)


def _set_num_nodes(raw: bytes, value: str) -> bytes:
    key = b"\x00\tnum_nodesSL" + bytes(7)
    at = raw.index(key) + len(key)
    length = raw[at]
    assert len(value) == length
    return raw[: at + 1] + value.encode() + raw[at + 1 + length :]


def _set_tree_info(raw: bytes, value: int) -> bytes:
    key = b"\ttree_info[#L"
    at = raw.index(key) + len(key) + 8
    assert raw[at : at + 1] == b"i"
    return raw[: at + 1] + struct.pack(">b", value) + raw[at + 2 :]


def _set_objective_classes(raw: bytes, value: str) -> bytes:
    key = b"\tnum_classSL" + bytes(7)
    at = raw.rindex(key) + len(key)  # the objective's, after the learner's parameters
    assert raw[at] == len(value)
    return raw[: at + 1] + value.encode() + raw[at + 1 + len(value) :]


CRAFTED = [
    "child index out of range",
    "negative child",
    "split feature beyond the features",
    "a cycle back to the root",
    "a child shared by two parents",
    "parents disagree with children",
    "truncated array",
    "num_nodes mismatch",
    "length past the end",
    "model cut short",
    "bytes after the model",
    "tree_info names a missing output",
    "objective classes differ from the model's",
    "category beyond the bitfield limit",
    "iterations of the wrong size",
    "a reachable node marked deleted",
    "wrapper: n_classes_ against the booster",
    "wrapper: attribute hiding a method",
]
BOMBS = ["bomb: 8.4 million empty objects in the learner's attributes"]


def _crafted_cases() -> dict[str, tuple[bytes, str]]:
    """name -> (file, text the error must contain)."""
    binary = modelsafe.dumps(TestXGBoost.samples["classifier"]())
    raw = _booster_bytes(binary)
    j = _first_internal_child(raw)
    parents = _int32s(raw, "parents")
    deep = int(np.flatnonzero(parents[1:] > 0)[0]) + 1  # a node whose parent is not the root
    parent_of_deep = int(parents[deep])
    left_of_j = int(_int32s(raw, "left_children")[j])
    multi = modelsafe.dumps(TestXGBoost.samples["multiclass"]())
    multi_raw = _booster_bytes(multi)
    cat = modelsafe.dumps(TestXGBoost.samples["categorical"]())
    cat_raw = _booster_bytes(cat)
    pruned = modelsafe.dumps(TestXGBoost.samples["pruned"]())
    pruned_raw = _booster_bytes(pruned)
    reachable_leaf = int(np.flatnonzero(_int32s(pruned_raw, "left_children") == -1)[0])
    nodes = _array(raw, "left_children")[1]
    wrong = next(k for k in (nodes + 1, nodes - 1) if len(str(k)) == len(str(nodes)))
    edits: dict[str, tuple[bytes, bytes, str]] = {
        "child index out of range": (
            binary,
            _set_int32(raw, "left_children", 0, 900),
            "left_children[0] = 900 is outside",
        ),
        "negative child": (
            binary,
            _set_int32(raw, "right_children", 0, -7),
            "right_children[0] = -7 is outside",
        ),
        "split feature beyond the features": (
            binary,
            _set_int32(raw, "split_indices", 0, 6),
            "split_indices[0] = 6 is outside [0, 6)",
        ),
        "a cycle back to the root": (
            binary,
            _set_int32(raw, "left_children", j, 0),
            f"left_children[{j}] = 0 is outside ({j}, {nodes})",
        ),
        "a child shared by two parents": (
            binary,
            _set_int32(raw, "left_children", 0, left_of_j),
            "is the child of 2 nodes",
        ),
        "parents disagree with children": (
            binary,
            _set_int32(raw, "parents", deep, parent_of_deep - 1),
            f"parents[{deep}] = {parent_of_deep - 1}, but node {parent_of_deep} has it as a child",
        ),
        "truncated array": (
            binary,
            _truncate_left_children(raw),
            f"left_children has {nodes - 1} items",
        ),
        "num_nodes mismatch": (
            binary,
            _set_num_nodes(raw, str(wrong)),
            f"has {nodes} items, num_nodes is {wrong}",
        ),
        "length past the end": (
            binary,
            _set_count(raw, "base_weights", 1 << 40),
            "reaches past the end",
        ),
        "model cut short": (binary, raw[: len(raw) // 2], "the model ends in the middle of"),
        "bytes after the model": (binary, raw + b"Z", "follow the end of the model"),
        "tree_info names a missing output": (
            binary,
            _set_tree_info(raw, 5),
            "tree_info[0] = 5 names an output",
        ),
        "objective classes differ from the model's": (
            multi,
            _set_objective_classes(multi_raw, "9"),
            "has num_class 9, the model has 3",
        ),
        "category beyond the bitfield limit": (
            cat,
            _set_int32(cat_raw, "categories", 0, 1 << 30),
            "is outside [0, 16777216)",
        ),
        "iterations of the wrong size": (
            binary,
            raw.replace(
                b"num_parallel_treeSL" + bytes(7) + b"\x011",
                b"num_parallel_treeSL" + bytes(7) + b"\x012",
                1,
            ),
            "iteration 0 has 1 trees, not outputs (1) * num_parallel_tree (2)",
        ),
        "a reachable node marked deleted": (
            pruned,
            _set_byte(
                _set_int32(pruned_raw, "split_indices", reachable_leaf, 2**31 - 1),
                "default_left",
                reachable_leaf,
                1,
            ),
            "nodes are marked deleted",
        ),
        # An allocation bomb (BOMBS): 17 MB of '{}' read as 8.4 million dicts (~0.6 GB).
        "bomb: 8.4 million empty objects in the learner's attributes": (
            binary,
            _with_member(raw, b"attributes", b"junk", b"[#L" + _int64(N_BOMB) + b"{}" * N_BOMB),
            "the model holds more than 8388608 values outside typed arrays",
        ),
    }
    cases = {"untampered": (binary, "")}
    for name, (blob, new_raw, message) in edits.items():
        cases[name] = (_with_booster_bytes(blob, new_raw), message)
    cases["wrapper: n_classes_ against the booster"] = (
        _edit_state(binary, lambda s: s.__setitem__("n_classes_", 5)),
        "invalid xgboost.sklearn.XGBClassifier: n_classes_ = 5 but the booster's num_class is 0",
    )
    cases["wrapper: attribute hiding a method"] = (
        _edit_state(binary, lambda s: s.__setitem__("predict", 1)),
        "invalid xgboost.sklearn.XGBClassifier: attribute 'predict' would hide",
    )
    return cases


N_BOMB = (1 << 23) + 1


def _int64(n: int) -> bytes:
    return struct.pack(">q", n)


def _with_member(raw: bytes, holder: bytes, key: bytes, value: bytes) -> bytes:
    """``raw`` with member ``key: value`` first in the object of member ``holder``."""
    at = raw.index(b"L" + _int64(len(holder)) + holder + b"{") + 9 + len(holder) + 1
    return raw[:at] + b"L" + _int64(len(key)) + key + value + raw[at:]


def _set_count(raw: bytes, key: str, count: int) -> bytes:
    data, _ = _array(raw, key)
    out = bytearray(raw)
    struct.pack_into(">q", out, data - 8, count)
    return bytes(out)


def _edit_state(blob: bytes, edit: Any) -> bytes:
    """``blob`` with ``edit`` applied to the wrapper's state (its plain attribute object)."""

    def change(header: dict[str, Any]) -> None:
        edit(header["root"]["state"])

    return rewrite(blob, change)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return run_crafted(_crafted_cases(), BOMBS, tmp_path_factory.mktemp("xgb"))


def test_crafted_control_loads_and_predicts_the_same(crafted: dict[str, Any]) -> None:
    assert crafted["untampered"]["error"] is None, crafted["untampered"]
    model = TestXGBoost.samples["classifier"]()
    X = PROBES[model]
    loaded = modelsafe.loads(modelsafe.dumps(model))
    assert _bits(loaded.predict_proba(X)) == _bits(model.predict_proba(X))


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_booster_is_a_format_error(case: str, crafted: dict[str, Any]) -> None:
    r = crafted[case]
    assert r["error"] == "FormatError" and r["modelsafe"], r
    if not case.startswith("wrapper"):
        assert f"invalid {BOOSTER}:" in r["message"], r["message"]
    assert r["expect"] in r["message"], r["message"]


def test_crafted_file_on_disk_is_refused_by_every_loader(tmp_path: Path) -> None:
    blob = _crafted_cases()["split feature beyond the features"][0]
    path = tmp_path / "x.msafe"
    path.write_bytes(blob)
    for load in (modelsafe.loads, lambda b: modelsafe.load(path, mmap="r")):
        with pytest.raises(modelsafe.FormatError, match=r"split_indices\[0\] = 6"):
            load(blob)


@pytest.mark.parametrize("case", BOMBS)
def test_allocation_bombs_are_refused_before_they_grow_the_process(
    case: str, crafted: dict[str, Any]
) -> None:
    assert_refused_small(crafted[case])


def test_every_crafted_case_is_tested(crafted: dict[str, Any]) -> None:
    assert set(CRAFTED) | set(BOMBS) == set(crafted) - {"untampered"}


def test_the_thread_count_is_kept() -> None:
    """XGBoost's model holds no run-time settings; nthread (which n_jobs sets) is kept
    beside it, as a loaded model on all cores can be many times slower."""
    model = TestXGBoost.samples["regressor"]()
    loaded = modelsafe.loads(modelsafe.dumps(model))
    config = json.loads(loaded.get_booster().save_config())["learner"]["generic_param"]
    assert config["nthread"] == "1"


def _tree_param_first(raw: bytes) -> bytes:
    """The first tree with its tree_param member moved to the front (XGBoost reads the
    members of an object in any order; its writer sorts them)."""
    key = b"L" + (10).to_bytes(8, "big") + b"tree_param{"
    start = raw.index(key)
    end = raw.index(b"}", start) + 1  # tree_param's digits hold no brace
    tree = raw.rindex(b"{L" + (12).to_bytes(8, "big") + b"base_weights", 0, start)
    assert raw[end : end + 1] == b"}"  # the tree's own end follows
    return raw[: tree + 1] + raw[start:end] + raw[tree + 1 : start] + raw[end:]


def test_a_tree_laid_out_otherwise_is_read_the_same() -> None:
    """Members in another order miss the fast path; the general reader accepts the same
    model, and XGBoost loads it to the same predictions."""
    model = TestXGBoost.samples["classifier"]()
    blob = modelsafe.dumps(model)
    moved = _tree_param_first(_booster_bytes(blob))
    assert moved != _booster_bytes(blob)
    loaded = modelsafe.loads(_with_booster_bytes(blob, moved))
    X = PROBES[model]
    assert _bits(loaded.predict_proba(X)) == _bits(model.predict_proba(X))


def test_a_tree_laid_out_otherwise_is_checked_the_same() -> None:
    model = TestXGBoost.samples["classifier"]()
    raw = _tree_param_first(_booster_bytes(modelsafe.dumps(model)))
    bad = _set_int32(raw, "split_indices", 0, 77)
    blob = _with_booster_bytes(modelsafe.dumps(model), bad)
    with pytest.raises(modelsafe.FormatError, match=r"split_indices\[0\] = 77 is outside"):
        modelsafe.loads(blob)


def test_inside_a_scikit_learn_pipeline() -> None:
    """The wrapper is an ordinary estimator to scikit-learn: a Pipeline holding one loads
    with the default trust and predicts the same."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _binary()
    model = make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=3, n_jobs=1))
    model.fit(X, y)
    blob = modelsafe.dumps(model)
    assert modelsafe.untrusted_types(blob) == []
    assert _bits(modelsafe.loads(blob).predict_proba(X)) == _bits(model.predict_proba(X))


# -- the fast path reads what the general reader reads ------------------------------------

_TREE_SAMPLES = ("booster", "classifier", "multiclass", "ranker", "dart", "pruned", "categorical")


def _parse_both(raw: bytes | bytearray, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The document as read with the fast paths (the trees, long integer arrays) and
    without them: each the parsed value, or the UBJError's class when it is refused."""
    from modelsafe._handlers.xgboost import _ubj

    def read() -> Any:
        try:
            return _ubj.parse(raw)
        except _ubj.UBJError:
            return _ubj.UBJError

    fast = read()
    with monkeypatch.context() as m:
        m.setattr(_ubj._Reader, "_fast_trees", lambda self, pos, n: None)
        m.setattr(_ubj._Reader, "_uniform_integers", lambda self, pos, n: None)
        slow = read()
    return fast, slow


def _tree_columns(doc: Any) -> list[Any]:
    """Every TreeColumns in a parsed document (a dart booster nests its gbtree)."""
    from modelsafe._handlers.xgboost._ubj import TreeColumns

    if isinstance(doc, TreeColumns):
        return [doc]
    children = doc.values() if isinstance(doc, dict) else doc if isinstance(doc, list) else []
    return [t for child in children for t in _tree_columns(child)]


def _same_document(fast: Any, slow: Any) -> None:
    """Equal documents; TreeColumns are compared field by field (their arrays differ in
    type between the two paths, not in value)."""
    from modelsafe._handlers.xgboost._ubj import TreeColumns

    if isinstance(slow, TreeColumns):
        assert isinstance(fast, TreeColumns)
        assert fast.n == slow.n
        for name in slow.offsets:
            assert np.array_equal(fast.offsets[name], slow.offsets[name]), name
            assert np.array_equal(fast.counts[name], slow.counts[name]), name
        assert np.array_equal(fast.ids, slow.ids)
        assert np.array_equal(fast.params, slow.params)
    elif isinstance(slow, dict):
        assert isinstance(fast, dict) and list(fast) == list(slow)
        for key in slow:
            _same_document(fast[key], slow[key])
    elif isinstance(slow, list):
        assert isinstance(fast, list) and len(fast) == len(slow)
        for a, b in zip(fast, slow, strict=True):
            _same_document(a, b)
    else:
        assert type(fast) is type(slow) and fast == slow


@pytest.mark.parametrize("sample", _TREE_SAMPLES)
def test_the_trees_fast_path_reads_every_sample_as_the_general_reader(
    sample: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelsafe._handlers.xgboost import _ubj

    raw = _booster_bytes(modelsafe.dumps(TestXGBoost.samples[sample]()))
    taken = []
    fast_trees = _ubj._Reader._fast_trees

    def spy(self: Any, pos: int, n: int) -> Any:
        taken.append(fast_trees(self, pos, n))
        return taken[-1]

    monkeypatch.setattr(_ubj._Reader, "_fast_trees", spy)
    fast, slow = _parse_both(raw, monkeypatch)
    assert taken and all(t is not None for t in taken)  # the fast path read these trees
    _same_document(fast, slow)
    assert [t.n > 1 for t in _tree_columns(slow)] == [True]


@functools.cache
def _many_trees() -> bytes:
    """A booster of 150 small trees: its tree_info (150 items) and iteration_indptr (51)
    are long integer arrays, the latter in runs of two integer widths."""
    model = xgb.XGBClassifier(n_estimators=50, max_depth=2, n_jobs=1, random_state=0)
    model.fit(*load_iris(return_X_y=True))
    return _booster_bytes(modelsafe.dumps(model))


@pytest.mark.parametrize("sample", ["categorical", "many trees"])
def test_edited_boosters_are_read_alike_or_refused_by_both_paths(
    sample: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """400 seeded edits of a booster's bytes from its first integer array on (a byte set
    to a value that matters to the layout, or a byte inserted or removed), and a null
    slipped in before each tree but the first: the fast paths never read a value the
    general reader reads otherwise or refuses."""
    from modelsafe._handlers.xgboost._ubj import UBJError

    if sample == "many trees":
        raw = _many_trees()
        assert raw.count(b"iteration_indptr[#L" + (51).to_bytes(8, "big") + b"i") == 1
        assert raw.count(b"I\x00\x96L") == 1  # the last item, 150, is an int16
    else:
        raw = _booster_bytes(modelsafe.dumps(TestXGBoost.samples[sample]()))
    head = b"{L" + (12).to_bytes(8, "big") + b"base_weights"
    first = min(raw.index(b"iteration_indptr"), raw.index(head))
    rng = np.random.default_rng(7)
    values = [0, 1, 2, 9, 10, 11, 0x30, 0x39, 0x49, 0x4C, 0x55, 0x69, 0x6C, 0x7B, 0x7D, 0xFF]

    def edits() -> Any:
        for _ in range(400):
            at = int(rng.integers(first, len(raw)))
            kind = rng.random()
            if kind < 0.8:
                yield raw[:at] + bytes([int(rng.choice(values))]) + raw[at + 1 :]
            elif kind < 0.9:
                yield raw[:at] + bytes([int(rng.integers(256))]) + raw[at:]
            else:
                yield raw[:at] + raw[at + 1 :]
        at = raw.find(head, raw.index(head) + 1)
        while at > 0:
            yield raw[:at] + b"Z" + raw[at:]
            at = raw.find(head, at + 1)

    outcomes = {"same": 0, "refused": 0}
    for edited in edits():
        fast, slow = _parse_both(edited, monkeypatch)
        _same_document(fast, slow)
        outcomes["refused" if slow is UBJError else "same"] += 1
    assert outcomes["same"] and outcomes["refused"]
