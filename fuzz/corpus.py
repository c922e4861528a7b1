"""The seed corpus: small valid files of every kind the reader meets, made
deterministically (``python -m fuzz.corpus DIR`` writes them; the tests use
:func:`seeds` directly)."""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import modelsafe


def fuzz_key() -> Any:
    """A fixed Ed25519 key for the signed seeds (a test key: its secret is this code)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"modelsafe fuzz key").digest())


def _plain() -> Any:
    rng = np.random.default_rng(0)
    rec = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))])
    return {
        "w": np.arange(6.0).reshape(2, 3),
        "f32": rng.standard_normal(5).astype(np.float32),
        "rec": rec,
        "mask": np.array([True, False]),
        "scalars": (np.float64(1.5), np.int8(-3), 2**70, float("nan"), 1 + 2j),
        "misc": [b"bytes", {1, 2}, frozenset({"a"}), range(3), None, {"nested": {(1, 2): "x"}}],
        "dtype": np.dtype("<u2"),
        "shared": (lambda a: [a, a])(np.ones(2)),
    }


def _sparse() -> Any:
    import scipy.sparse as sp

    m = sp.random(8, 6, density=0.3, format="csr", random_state=0)
    return {"csr": m, "csc": m.tocsc(), "coo": m.tocoo(), "arr": sp.csr_array(m)}


def _pandas() -> Any:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0],
            "c": pd.Categorical(["a", "b", "a"]),
            "t": pd.date_range("2020-01-01", periods=3),
            "s": ["u", "v", None],
        }
    )
    index = pd.MultiIndex.from_arrays([[1, 2], ["a", "b"]])
    return {"frame": frame, "series": frame["x"], "index": index}


def _sklearn() -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    docs = ["a cat sat", "a dog ran", "the cat ran", "dogs and cats"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(x, y),
            "tree": DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y),
            "forest": RandomForestClassifier(3, max_depth=3, random_state=0).fit(x, y),
            "hgb": HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(x, y),
            "kdtree": KNeighborsClassifier(algorithm="kd_tree").fit(x[::5], y[::5]),
            "svc": SVC(probability=False).fit(x[::3], y[::3]),
            "vectorizer": CountVectorizer().fit(docs),
            "columns": ColumnTransformer(
                [("oh", OneHotEncoder(), [0]), ("sc", StandardScaler(), [1])]
            ).fit(np.c_[y, x[:, 0]]),
        }


def _boosters() -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lightgbm
        import xgboost

        out["xgb"] = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(x, y)
        out["lgbm"] = lightgbm.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1).fit(x, y)
    return out


def seeds() -> dict[str, bytes]:
    """Name -> file bytes, each a valid .msafe file (metadata and signing times pinned)."""
    before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "0"
    try:
        return _seeds()
    finally:  # the caller's environment as it was
        if before is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = before


def _seeds() -> dict[str, bytes]:
    objects: dict[str, Any] = {"plain": _plain(), "sparse": _sparse(), "pandas": _pandas()}
    objects.update(_sklearn())
    objects.update(_boosters())
    out = {name: modelsafe.dumps(obj) for name, obj in objects.items()}
    plain = objects["plain"]
    out["plain_zstd"] = modelsafe.dumps(plain, compress="zstd")
    out["plain_lz4"] = modelsafe.dumps(plain, compress="lz4")
    out["plain_signed"] = modelsafe.dumps(plain, sign_with=fuzz_key())
    out["empty"] = modelsafe.dumps(None)
    return out


def write(directory: str, made: Callable[[], dict[str, bytes]] = seeds) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, data in made().items():
        path = os.path.join(directory, f"{name}.msafe")
        with open(path, "wb") as fh:
            fh.write(data)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write(sys.argv[1]):
        print(p, os.path.getsize(p))
