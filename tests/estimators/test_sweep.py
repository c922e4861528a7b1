"""Every scikit-learn estimator, fitted, saved, and loaded in a fresh process with default trust.

For each case (``cases.py``: every class of ``all_estimators()`` with scikit-learn's test
parameters, sparse and multi-output variants, and hand-built composites) the parent fits
the model, records every available method's output, and saves it; one fresh child process
loads all the files without ``trusted=`` and calls the same methods on the same data. The
results must be identical (bit for bit, NaN equal to NaN) and ``untrusted_types`` empty.
A few models (label propagation, PCA on sparse input) give results that move in the last
bits when their arrays sit elsewhere in memory (BLAS kernels depend on alignment): a
pickle round trip changes them as much. For those, and only those, the comparison allows
a relative difference of 1e-7.

`make test` runs the representative ``CORE`` cases and the composites; `make test-all`
runs every case. There are no exclusions.
"""

from __future__ import annotations

import os
import pickle  # test data transport between our own processes, never model files
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelsafe

from .cases import Case, all_cases, outputs, quiet

REPO = Path(__file__).resolve().parents[2]
CASES = {c.id: c for c in all_cases()}
PARAMS = [
    pytest.param(c.id, marks=() if c.core else pytest.mark.slow, id=c.id) for c in CASES.values()
]


def _same(a: Any, b: Any) -> bool:
    """Bit-identical results: arrays by dtype, shape and values (NaN == NaN), sparse alike."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if hasattr(a, "tocsr") and hasattr(a, "nnz"):  # scipy sparse
        return a.shape == b.shape and a.dtype == b.dtype and (a != b).nnz == 0
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.fixture(scope="session")
def sweep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Fit, save, and load in one fresh child every case this session selected."""
    wanted = [
        item.callspec.params["case"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_same_results_in_a_fresh_process"
    ]
    directory = tmp_path_factory.mktemp("sweep")
    expected: dict[str, Any] = {}
    exact: dict[str, bool] = {}  # does a pickle round trip keep every result bit for bit?
    manifest: dict[str, dict[str, str]] = {}
    for i, case_id in enumerate(wanted):
        case: Case = CASES[case_id]
        try:
            model, X = case.build()
        except Exception as exc:
            expected[case_id] = f"could not fit: {type(exc).__name__}: {exc}"
            continue
        expected[case_id] = outputs(model, X)
        with quiet():  # deprecated classes warn when created, by pickle as by anyone
            via_pickle = outputs(pickle.loads(pickle.dumps(model)), X)
        exact[case_id] = all(_same(v, via_pickle[k]) for k, v in expected[case_id].items())
        modelsafe.save(model, directory / f"{i}.msafe", fsync=False)
        (directory / f"{i}.X").write_bytes(pickle.dumps(X))
        manifest[case_id] = {"model": f"{i}.msafe", "X": f"{i}.X"}
    (directory / "manifest.pkl").write_bytes(pickle.dumps(manifest))
    # Same BLAS threading as this process: a different thread count changes summation order.
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("child.py")), str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got: dict[str, Any] = pickle.loads((directory / "results.pkl").read_bytes())
    return expected, got, exact


@pytest.mark.parametrize("case", PARAMS)
def test_same_results_in_a_fresh_process(case: str, sweep: Any) -> None:
    expected, got, exact = sweep
    want = expected[case]
    assert not isinstance(want, str), want
    result = got[case]
    assert result["untrusted"] == [], f"needs trust: {result['untrusted']}"
    assert result["error"] is None, result["error"]
    assert want, "the model offers none of the compared methods"
    assert set(result["outputs"]) == set(want)
    for method, value in want.items():
        other = result["outputs"][method]
        if exact[case] or not isinstance(value, np.ndarray):
            assert _same(value, other), f"{method} differs after loading"
        else:
            assert type(other) is np.ndarray and other.dtype == value.dtype, method
            np.testing.assert_allclose(other, value, rtol=1e-7, atol=0, err_msg=method)


def test_the_sweep_covers_every_estimator() -> None:
    """No estimator of all_estimators() is missing (FrozenEstimator, which wraps an already
    fitted model, is among the hand-built composites)."""
    from sklearn.utils import all_estimators

    names = {c.id.split("-")[0].removeprefix("composite:") for c in CASES.values()}
    assert {n for n, _ in all_estimators()} - names == set()
