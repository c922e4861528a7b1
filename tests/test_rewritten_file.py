"""A file rewritten in place after it was loaded must not crash the process.

The default load and ``mmap="r"`` map the file: arrays are views of its pages, and
on Linux a rewrite of the same file (``cp other.msafe model.msafe``, a sync tool,
someone with write access) changes those pages under a live object. The arrays that
compiled code indexes with their values (histogram-boosting nodes and the bin
mapper's categorical flags, KD-tree index arrays, scipy sparse indices, pandas codes)
are checked at load; they are kept in the process's own memory so that the checks
still hold at predict time.

Some of these files are small enough that a load would read them whole into memory,
where no rewrite can reach them; the children map every file, so that the mapped
path, the one a rewrite can reach, is the one tested (``SMALL_FILE = 0``).

Each case runs in a child: it loads the file, predicts, overwrites the bytes of the
index array in the file with out-of-range indices, predicts again, and reports
whether the outputs are the same. Before the arrays were copied, the hgb, kdtree and
csr children died of SIGSEGV at the second prediction; pandas checked the codes
itself and raised IndexError; the binmapper child predicted with rows of known
categories read from outside an empty array (its output changed).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")
pytest.importorskip("pandas")

_CHILD = r"""
import sys
import numpy as np
import modelsafe
import modelsafe._container.reader
modelsafe._container.reader.SMALL_FILE = 0  # map every file: a small one is read whole

case, path = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)

if case == "hgb":
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = load_breast_cancer(return_X_y=True)
    obj = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)
    target = obj._predictors[0][0].nodes
    bad = target.copy()
    bad["left"] = bad["right"] = 2**31 - 1
    bad["is_leaf"] = 0
    use = lambda m: m.predict_proba(X)
elif case == "binmapper":
    from sklearn.ensemble import HistGradientBoostingClassifier

    X = rng.normal(size=(3000, 40))
    cat = rng.random(40) < 0.5  # a pattern of 40 flags: unique in the file
    X[:, cat] = rng.integers(0, 9, size=(3000, int(cat.sum())))
    y = (X[:, ~cat].sum(axis=1) + X[:, cat].sum(axis=1) / 8 > 0).astype(int)
    obj = HistGradientBoostingClassifier(max_iter=5, categorical_features=cat, random_state=0)
    obj.fit(X, y)
    target = obj._bin_mapper.is_categorical_
    bad = np.zeros_like(target)  # no categorical feature: no rows of known categories
    use = lambda m: m.predict_proba(X)
elif case == "kdtree":
    from sklearn.neighbors import KDTree

    X = rng.normal(size=(500, 3))
    obj = KDTree(X, leaf_size=5)
    target = obj.get_arrays()[1]  # idx_array
    bad = np.full_like(target, 2**40)
    use = lambda m: m.query(X[:50], k=3)[1]
elif case == "csr":
    import scipy.sparse

    obj = scipy.sparse.random(300, 400, density=0.05, format="csr", random_state=0)
    target = obj.indices
    bad = np.full_like(target, 2**30)
    v = rng.normal(size=400)
    use = lambda m: m @ v
elif case == "categorical":
    import pandas as pd

    codes = rng.integers(0, 7, size=5000).astype(np.int8)
    obj = pd.Categorical.from_codes(codes, categories=list("abcdefg"))
    target = np.asarray(obj.codes)
    bad = np.full_like(target, 100)
    use = lambda m: np.asarray(m)
else:
    raise SystemExit(f"unknown case {case}")

for mode in (None, "r"):
    modelsafe.save(obj, path)
    raw = open(path, "rb").read()
    key = target.tobytes()
    ats = [raw.find(key)]
    while ats[-1] >= 0:
        ats.append(raw.find(key, ats[-1] + 1))
    ats.pop()
    # The estimator keeps its own is_categorical_ beside the bin mapper's: both go.
    assert len(ats) == (2 if case == "binmapper" else 1), f"the array is at {ats}"
    loaded = modelsafe.load(path, mmap=mode)
    before = use(loaded)
    with open(path, "r+b") as f:  # in place: the same file, the same pages
        for at in ats:
            f.seek(at)
            f.write(bad.tobytes())
    after = use(loaded)
    print(case, mode, "same" if np.array_equal(before, after) else "changed", flush=True)
"""


def _run_child(script: str, *args: str, timeout: float = 300) -> list[str]:
    """The lines a child printed; it must exit 0 (a signal or an error fails the test)."""
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"the child died (exit {proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    )
    return proc.stdout.split("\n")


@pytest.mark.parametrize("case", ["hgb", "binmapper", "kdtree", "csr", "categorical"])
def test_index_arrays_survive_an_in_place_rewrite(case: str, tmp_path: Path) -> None:
    lines = _run_child(_CHILD, case, str(tmp_path / "m.msafe"))
    assert lines[:2] == [f"{case} None same", f"{case} r same"]


# The same attack timed inside the load: the decision-tree nodes are checked, then
# scikit-learn's ``Tree.__setstate__`` copies them into its own memory. A rewrite
# between the two would hand it nodes nobody checked. The window is microseconds wide,
# so the child makes the rewrite happen exactly there: it wraps the check and, once
# the check has passed, overwrites the first tree's root in the file with child
# indices far out of range. (The wrapper only times the attack; the bytes are really
# rewritten in the file.) A forest (``sk.trees``) and a lone tree (``sk.tree``).
_DURING = r"""
import sys
import numpy as np
import modelsafe
import modelsafe._container.reader
modelsafe._container.reader.SMALL_FILE = 0  # map every file: a small one is read whole
from modelsafe._handlers.sklearn import _tree
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

case, path = sys.argv[1], sys.argv[2]
X, y = load_breast_cancer(return_X_y=True)
if case == "forest":
    obj = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    root = obj.estimators_[0].tree_.__getstate__()["nodes"][:1]
else:
    obj = DecisionTreeClassifier(random_state=0).fit(X, y)
    root = obj.tree_.__getstate__()["nodes"][:1]
key = root.tobytes()[:56]  # the fields both layouts share (not the padding)
bad = np.array([2**40, 2**40], dtype="<i8").tobytes()  # left_child, right_child
real_check = _tree.check_forest
fired = []

def check_then_rewrite(*args, **kwargs):
    passed = real_check(*args, **kwargs)
    if passed and not fired:
        fired.append(True)
        with open(path, "r+b") as f:  # in place: the same file, the same pages
            f.seek(at)
            f.write(bad)
    return passed

_tree.check_forest = check_then_rewrite
for mode in (None, "r"):
    modelsafe.save(obj, path)
    raw = open(path, "rb").read()
    at = raw.find(key)
    assert at > 0 and raw.find(key, at + 1) < 0, "the root's bytes are not unique"
    fired.clear()
    loaded = modelsafe.load(path, mmap=mode)
    assert fired, "the check did not run"
    assert open(path, "rb").read()[at : at + 16] == bad, "the file was not rewritten"
    same = np.array_equal(loaded.predict_proba(X), obj.predict_proba(X))
    print(case, mode, "same" if same else "changed", flush=True)
"""


@pytest.mark.parametrize("case", ["forest", "tree"])
def test_tree_nodes_rewritten_during_the_load_are_not_used(case: str, tmp_path: Path) -> None:
    lines = _run_child(_DURING, case, str(tmp_path / "m.msafe"))
    assert lines[:2] == [f"{case} None same", f"{case} r same"]


# LightGBM: the check reads the model's bytes and LightGBM parses the text decoded from
# them. Both must come from one copy. Here the file holds a crafted model (a left_child
# of 99, a node that does not exist: alone it is refused), and a wrapper around the
# check puts the valid model back in place just before the check reads: before the
# fix the check read the valid bytes in the map, LightGBM parsed the crafted text, and
# the child hung. The load must refuse the crafted model, default and mmap="r".
_LIGHTGBM = r"""
import re
import sys
import numpy as np
import lightgbm
import modelsafe
import modelsafe._container.reader
modelsafe._container.reader.SMALL_FILE = 0  # map every file: a small one is read whole
import modelsafe._handlers.lightgbm as handler

path = sys.argv[1]
rng = np.random.default_rng(0)
X = rng.normal(size=(2000, 5))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
params = {"objective": "binary", "num_leaves": 31, "verbose": -1}
booster = lightgbm.train(params, lightgbm.Dataset(X, y), 3)
modelsafe.save(booster, path)
valid = open(path, "rb").read()
m = re.search(rb"left_child=([^\n]*)", valid)
values = m.group(1).split(b" ")
k = next(i for i, v in enumerate(values) if len(v) == 2 and not v.startswith(b"-"))
values[k] = b"99"
crafted = valid[: m.start(1)] + b" ".join(values) + valid[m.end(1) :]
assert len(crafted) == len(valid)
real_check = handler.check

def put_back_then_check(raw):
    with open(path, "r+b") as f:  # in place: the same file, the same pages
        f.write(valid)
    return real_check(raw)

for hook in (False, True):
    handler.check = put_back_then_check if hook else real_check
    for mode in (None, "r"):
        with open(path, "r+b") as f:
            f.write(crafted)
        try:
            loaded = modelsafe.load(path, mmap=mode, verify=False)
        except modelsafe.FormatError:
            print(hook, mode, "refused", flush=True)
            continue
        same = np.array_equal(loaded.predict(X), booster.predict(X))
        print(hook, mode, "same" if same else "changed", flush=True)
"""


def test_lightgbm_text_and_its_check_read_one_copy(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    lines = _run_child(_LIGHTGBM, str(tmp_path / "m.msafe"), timeout=120)
    assert lines[:4] == [
        "False None refused",
        "False r refused",
        "True None refused",
        "True r refused",
    ]
