"""A file rewritten in place after it was loaded must not crash the process.

The default load and ``mmap="r"`` map the file: arrays are views of its pages, and
on Linux a rewrite of the same file (``cp other.msafe model.msafe``, a sync tool,
someone with write access) changes those pages under a live object. The arrays that
compiled code indexes with their values (histogram-boosting nodes, KD-tree index
arrays, scipy sparse indices, pandas codes) are checked at load; they are kept in
the process's own memory so that the checks still hold at predict time.

Each case runs in a child: it loads the file, predicts, overwrites the bytes of the
index array in the file with out-of-range indices, predicts again, and reports
whether the outputs are the same. Before the arrays were copied, the hgb, kdtree and
csr children died of SIGSEGV at the second prediction; pandas checked the codes
itself and raised IndexError.
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
    at = raw.find(target.tobytes())
    assert at > 0 and raw.find(target.tobytes(), at + 1) < 0, "the array's bytes are not unique"
    loaded = modelsafe.load(path, mmap=mode)
    before = use(loaded)
    with open(path, "r+b") as f:  # in place: the same file, the same pages
        f.seek(at)
        f.write(bad.tobytes())
    after = use(loaded)
    print(case, mode, "same" if np.array_equal(before, after) else "changed", flush=True)
"""


@pytest.mark.parametrize("case", ["hgb", "kdtree", "csr", "categorical"])
def test_index_arrays_survive_an_in_place_rewrite(case: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, case, str(tmp_path / "m.msafe")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"the child died (exit {proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    )
    assert proc.stdout.split("\n")[:2] == [f"{case} None same", f"{case} r same"]
