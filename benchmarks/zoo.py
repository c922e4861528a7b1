"""The model zoo: fitted estimators built deterministically from generated data.

Nothing is downloaded: every input comes from a seeded generator, so two runs on two
machines fit the same models. Fitting takes minutes, so a model is built once per
benchmark run by a builder child (``benchmarks.zoo_measure build``) and cached as a
pickle in the run's temporary directory; the measuring children load that cache.

Each model also gets a fixed held-out batch (rows the model was not fitted on, from
the same generator with another seed) whose ``predict_proba`` output is the
reference every loaded copy must reproduce exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.cases import SEED

BATCH_ROWS = 1_000


@dataclass(frozen=True)
class Sizes:
    """The knobs ``--quick`` turns down: rows, estimators, vocabulary, epochs."""

    rows: int  # make_classification rows (rf300, gbc200, hgb, mlp, xgb500, lgbm500)
    trees: dict[str, int]  # estimators per tree ensemble
    knn_rows: int
    docs: int
    vocab: int
    frame_rows: int
    mlp_epochs: int


FULL = Sizes(
    rows=20_000,
    trees={"rf300": 300, "gbc200": 200, "hgb": 200, "xgb500": 500, "lgbm500": 500},
    knn_rows=500_000,
    docs=20_000,
    vocab=200_000,
    frame_rows=50_000,
    mlp_epochs=5,
)
QUICK = Sizes(
    rows=5_000,
    trees={"rf300": 100, "gbc200": 50, "hgb": 50, "xgb500": 100, "lgbm500": 100},
    knn_rows=50_000,
    docs=2_000,
    vocab=20_000,
    frame_rows=5_000,
    mlp_epochs=2,
)


@dataclass(frozen=True)
class Built:
    """A fitted model with its held-out batch (the reference output is computed later)."""

    model: Any
    batch: Any


@dataclass(frozen=True)
class ZooModel:
    """One model of the zoo.

    ``imports`` are the modules a user of this model has imported anyway; the memory
    child imports them before its baseline, so peak RSS measures the model, not the
    library.
    """

    name: str
    description: str
    quick_description: str
    imports: tuple[str, ...]
    build: Callable[[Sizes], Built]


def predict(model: Any, batch: Any) -> np.ndarray:
    """``predict_proba`` where the model has it, else ``predict``: the compared output."""
    method = getattr(model, "predict_proba", None) or model.predict
    return np.asarray(method(batch))


def same_output(expected: np.ndarray, got: np.ndarray) -> bool:
    """Bit-for-bit: same dtype, shape and values (a NaN equals a NaN)."""
    return (
        expected.dtype == got.dtype
        and expected.shape == got.shape
        and bool(np.array_equal(expected, got, equal_nan=expected.dtype.kind in "fc"))
    )


def _classification(sizes: Sizes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``make_classification(rows, 20, random_state=0)`` plus 1,000 rows from seed 1."""
    from sklearn.datasets import make_classification

    x, y = make_classification(sizes.rows, 20, random_state=0)
    batch, _ = make_classification(BATCH_ROWS, 20, random_state=1)
    return x, y, batch


def _quiet_fit(model: Any, x: Any, y: Any) -> Any:
    """Fit, hiding the ConvergenceWarning of capped iterations (the cap is deliberate)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def _rf(sizes: Sizes) -> Built:
    from sklearn.ensemble import RandomForestClassifier

    x, y, batch = _classification(sizes)
    # Trees are fitted on both cores (the forest is the same for any n_jobs with a fixed
    # random_state), then n_jobs is put back so the saved estimator is the specified one.
    model = RandomForestClassifier(n_estimators=sizes.trees["rf300"], random_state=0, n_jobs=2)
    model.fit(x, y)
    model.set_params(n_jobs=None)
    return Built(model, batch)


def _gbc(sizes: Sizes) -> Built:
    from sklearn.ensemble import GradientBoostingClassifier

    x, y, batch = _classification(sizes)
    model = GradientBoostingClassifier(n_estimators=sizes.trees["gbc200"], random_state=0)
    return Built(model.fit(x, y), batch)


def _hgb(sizes: Sizes) -> Built:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y, batch = _classification(sizes)
    model = HistGradientBoostingClassifier(max_iter=sizes.trees["hgb"], random_state=0)
    return Built(model.fit(x, y), batch)


def _knn(sizes: Sizes) -> Built:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((sizes.knn_rows, 32))
    # Labels from a fixed linear rule plus noise, so neighbours carry some signal.
    weights = rng.standard_normal(32)
    y = (x @ weights + rng.standard_normal(sizes.knn_rows) > 0).astype(np.int64)
    batch = rng.standard_normal((BATCH_ROWS, 32))
    return Built(KNeighborsClassifier().fit(x, y), batch)


def _vocabulary(size: int) -> list[str]:
    """``size`` distinct five-letter words: i * 7919 mod 26**5 is injective for i < 26**5."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    codes = (np.arange(size, dtype=np.int64) * 7919) % 26**5
    digits = np.stack([(codes // 26**k) % 26 for k in range(5)], axis=1)
    return ["".join(row) for row in letters[digits].tolist()]


def _documents(rng: np.random.Generator, vocab: list[str], count: int) -> tuple[list[str], Any]:
    """``count`` documents of 50 words drawn uniformly; label: mostly first-half words."""
    picks = rng.integers(0, len(vocab), size=(count, 50))
    docs = [" ".join(vocab[i] for i in row) for row in picks.tolist()]
    labels = ((picks < len(vocab) // 2).sum(axis=1) > 25).astype(np.int64)
    return docs, labels


def _tfidf_lr(sizes: Sizes) -> Built:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(SEED)
    vocab = _vocabulary(sizes.vocab)
    docs, labels = _documents(rng, vocab, sizes.docs)
    batch, _ = _documents(rng, vocab, BATCH_ROWS)
    model = make_pipeline(TfidfVectorizer(), LogisticRegression())
    return Built(_quiet_fit(model, docs, labels), batch)


# Cardinalities of the five categorical columns, from a handful to a thousand levels.
_CATEGORIES = (3, 10, 50, 200, 1_000)


def _frame(rng: np.random.Generator, rows: int) -> tuple[Any, Any]:
    """5 string columns and 10 float columns; the label mixes both kinds."""
    import pandas as pd

    columns: dict[str, Any] = {}
    codes = []
    for i, levels in enumerate(_CATEGORIES):
        code = rng.integers(0, levels, size=rows)
        codes.append(code)
        columns[f"cat{i}"] = pd.Series([f"c{i}_{c}" for c in code.tolist()], dtype="str")
    numeric = rng.standard_normal((rows, 10))
    for j in range(10):
        columns[f"num{j}"] = numeric[:, j]
    score = numeric[:, :3].sum(axis=1) + sum((c % 2) - 0.5 for c in codes)
    labels = (score + rng.standard_normal(rows) > 0).astype(np.int64)
    return pd.DataFrame(columns), labels


def _ct_pipe(sizes: Sizes) -> Built:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(SEED)
    frame, labels = _frame(rng, sizes.frame_rows)
    batch, _ = _frame(rng, BATCH_ROWS)
    columns = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), [f"cat{i}" for i in range(5)]),
            ("num", StandardScaler(), [f"num{j}" for j in range(10)]),
        ]
    )
    model = make_pipeline(columns, LogisticRegression())
    return Built(_quiet_fit(model, frame, labels), batch)


def _mlp(sizes: Sizes) -> Built:
    from sklearn.neural_network import MLPClassifier

    x, y, batch = _classification(sizes)
    model = MLPClassifier(hidden_layer_sizes=(512, 512), random_state=0, max_iter=sizes.mlp_epochs)
    return Built(_quiet_fit(model, x, y), batch)


def _xgb(sizes: Sizes) -> Built:
    import xgboost

    x, y, batch = _classification(sizes)
    model = xgboost.XGBClassifier(n_estimators=sizes.trees["xgb500"], random_state=0)
    return Built(model.fit(x, y), batch)


def _lgbm(sizes: Sizes) -> Built:
    import lightgbm

    x, y, batch = _classification(sizes)
    model = lightgbm.LGBMClassifier(n_estimators=sizes.trees["lgbm500"], random_state=0, verbose=-1)
    return Built(model.fit(x, y), batch)


_CLS = "make_classification({rows}, 20, random_state=0)"
_SK_PIPE = ("sklearn.pipeline", "sklearn.linear_model")


def _zoo() -> dict[str, ZooModel]:
    """The zoo, with descriptions generated from the two size presets."""

    def text(template: str, sizes: Sizes) -> str:
        return template.format(
            rows=f"{sizes.rows:,}",
            knn=f"{sizes.knn_rows:,}",
            docs=f"{sizes.docs:,}",
            vocab=f"{sizes.vocab:,}",
            frame=f"{sizes.frame_rows:,}",
            epochs=sizes.mlp_epochs,
            **sizes.trees,
        )

    specs = (
        (
            "rf300",
            "RandomForestClassifier(n_estimators={rf300}, random_state=0) on " + _CLS,
            ("sklearn.ensemble",),
            _rf,
        ),
        (
            "gbc200",
            "GradientBoostingClassifier(n_estimators={gbc200}, random_state=0) on " + _CLS,
            ("sklearn.ensemble",),
            _gbc,
        ),
        (
            "hgb",
            "HistGradientBoostingClassifier(max_iter={hgb}, random_state=0) on " + _CLS,
            ("sklearn.ensemble",),
            _hgb,
        ),
        (
            "knn500k",
            "KNeighborsClassifier() on {knn} x 32 standard-normal float64, labels from a "
            "noisy linear rule",
            ("sklearn.neighbors",),
            _knn,
        ),
        (
            "tfidf_lr",
            "TfidfVectorizer + LogisticRegression on {docs} documents of 50 words drawn "
            "uniformly from a {vocab}-word generated vocabulary",
            ("sklearn.feature_extraction.text", *_SK_PIPE),
            _tfidf_lr,
        ),
        (
            "ct_pipe",
            "ColumnTransformer(OneHotEncoder on 5 string columns of 3-1,000 levels + "
            "StandardScaler on 10 float columns) + LogisticRegression on a {frame}-row "
            "pandas DataFrame",
            ("pandas", "sklearn.compose", "sklearn.preprocessing", *_SK_PIPE),
            _ct_pipe,
        ),
        (
            "mlp",
            "MLPClassifier(hidden_layer_sizes=(512, 512), random_state=0, max_iter={epochs}) "
            "on " + _CLS,
            ("sklearn.neural_network",),
            _mlp,
        ),
        (
            "xgb500",
            "xgboost.XGBClassifier(n_estimators={xgb500}, random_state=0) on " + _CLS,
            ("xgboost",),
            _xgb,
        ),
        (
            "lgbm500",
            "lightgbm.LGBMClassifier(n_estimators={lgbm500}, random_state=0, verbose=-1) on "
            + _CLS,
            ("lightgbm",),
            _lgbm,
        ),
    )
    return {
        name: ZooModel(name, text(template, FULL), text(template, QUICK), imports, build)
        for name, template, imports, build in specs
    }


ZOO: dict[str, ZooModel] = _zoo()
