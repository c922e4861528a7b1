"""The conformance suite on the handlers of issue 2: numpy and the standard library."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import pathlib
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

import modelsafe

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

    def assert_equal(self, expected: Any, got: Any) -> None:
        if not isinstance(expected, np.ma.MaskedArray):
            super().assert_equal(expected, got)
            return
        # Element access on masked arrays yields the `masked` constant: compare the parts.
        assert type(got) is np.ma.MaskedArray
        super().assert_equal(np.asarray(expected.data), np.asarray(got.data))
        assert np.array_equal(np.ma.getmaskarray(expected), np.ma.getmaskarray(got))
        assert (expected.mask is np.ma.nomask) == (got.mask is np.ma.nomask)
        assert expected.hardmask == got.hardmask
        assert expected.fill_value == got.fill_value

    samples: ClassVar[dict[str, Any]] = {
        "arrays": _arrays,
        "generator": lambda: np.random.default_rng(7),
        "randomstate": lambda: np.random.RandomState(7),
        "masked": lambda: np.ma.MaskedArray([1.0, 2.0, 3.0], mask=[0, 1, 0], fill_value=-9.0),
        "masked-objects": lambda: np.ma.MaskedArray(
            np.array([1, "a", None], dtype=object), mask=[False, True, False]
        ),
        "masked-nomask-hard": lambda: np.ma.MaskedArray(np.arange(4), hard_mask=True),
        "matrix": lambda: np.arange(4.0).reshape(2, 2).view(np.matrix),  # np.matrix() warns
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


# -- hostile masked arrays and matrices ------------------------------------------------------


def _tampered(x: Any, edit: Any) -> bytes:
    from .._crafting import rewrite

    def change(header: dict[str, Any]) -> None:
        edit(header["root"])

    return rewrite(modelsafe.dumps(x), change)


@pytest.mark.parametrize(
    ("name", "x", "edit"),
    [
        (
            "mask of another shape",
            np.ma.MaskedArray(np.arange(6.0), mask=[0, 1, 0, 0, 0, 0]),
            lambda root: root["mask"].update({"t": root["data"]["t"]}),
        ),
        (
            "data is a list",
            np.ma.MaskedArray(np.arange(3.0)),
            lambda root: root.update({"data": [1, 2, 3]}),
        ),
        (
            "hard is a string",
            np.ma.MaskedArray(np.arange(3.0)),
            lambda root: root.update({"hard": "yes"}),
        ),
        (
            "matrix of 3 dimensions",
            np.ones((1, 1)).view(np.matrix),
            lambda root: root.update({"v": {"$": "nd", "dtype": "<f8", "shape": [1, 1, 0]}}),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_hostile_masked_and_matrix(
    name: str, x: Any, edit: Any, reject: Callable[..., Any]
) -> None:
    reject(_tampered(x, edit), modelsafe.FormatError)
