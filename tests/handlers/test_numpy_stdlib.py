"""The conformance suite on the handlers of issue 2: numpy and the standard library."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import pathlib
from typing import Any, ClassVar

import numpy as np

from .conformance import HandlerConformance


def _arrays() -> Any:
    rng = np.random.default_rng(0)
    return {
        "f8": rng.standard_normal((30, 4)),
        "fortran": np.asfortranarray(rng.standard_normal((5, 3))),
        "strided": np.arange(40)[::3],
        "record": np.zeros(3, dtype=[("a", "<i4"), ("b", "<U3")]),
        "scalar": np.float32(1.5),
        "dtype": np.dtype(">u2"),
    }


class TestNumpy(HandlerConformance):
    library = ()  # imported with modelsafe itself
    samples: ClassVar[dict[str, Any]] = {
        "arrays": _arrays,
        "generator": lambda: np.random.default_rng(7),
        "randomstate": lambda: np.random.RandomState(7),
    }


class TestStdlib(HandlerConformance):
    library = ()  # the standard library
    samples: ClassVar[dict[str, Any]] = {
        "odict": lambda: collections.OrderedDict([("b", 1), ("a", [2])]),
        "ddict": lambda: collections.defaultdict(list, {"k": [1]}),
        "when": lambda: [
            dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.date(1999, 1, 1),
            dt.timedelta(days=-1, microseconds=5),
        ],
        "decimal": lambda: decimal.Decimal("-1.50E+3"),
        "path": lambda: pathlib.PurePosixPath("/a/b.txt"),
    }
