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


# -- object arrays of plain scalars: packed columns -------------------------------------------


def _root_of(blob: bytes) -> Any:
    from .._crafting import split

    return split(blob).header["root"]


@pytest.mark.parametrize("order", ["C", "F"])
def test_object_arrays_of_many_scalars_are_packed(order: str) -> None:
    """Category and feature names: 64 or more plain scalars are stored as a ``scalars``
    node (strings in one buffer) instead of a JSON array, and come back the same."""
    names = np.array([f"c3_{i}" for i in range(120)], dtype=object).reshape(12, 10)
    names = np.asfortranarray(names) if order == "F" else names
    mixed = np.array([None, 1, 2.5, "x", True, -(2**40)] * 12, dtype=object)
    for arr in (names, mixed):
        blob = modelsafe.dumps(arr)
        v = _root_of(blob)["v"]
        assert v["$"] == "scalars" and v["n"] == arr.size and "id" not in v
        got = modelsafe.loads(blob)
        assert got.shape == arr.shape and got.dtype == object
        assert [(type(x), x) for x in got.ravel(order="K")] == [
            (type(x), x) for x in arr.ravel(order="K")
        ]
        assert got.flags.f_contiguous == arr.flags.f_contiguous


def test_short_or_mixed_object_arrays_keep_their_list() -> None:
    short = np.array([f"c{i}" for i in range(63)], dtype=object)
    holding = np.array([*range(70), np.float64(1.5)], dtype=object)  # a numpy scalar inside
    text = np.array(["a\x00b", *map(str, range(70))], dtype=object)  # NUL: strs as JSON
    for arr, packed in ((short, False), (holding, False), (text, True)):
        blob = modelsafe.dumps(arr)
        v = _root_of(blob)["v"]
        assert (type(v) is dict) == packed, v if packed else None
        got = modelsafe.loads(blob)
        assert [(type(x), x) for x in got.ravel()] == [(type(x), x) for x in arr.ravel()]


def test_a_packed_object_array_must_agree_with_its_shape() -> None:
    from .._crafting import craft

    def arr(shape: list[int], **extra: Any) -> dict[str, Any]:
        v = {"$": "scalars", "n": 3, "kind": "str", "strs": ["a", "b", "c"], **extra}
        return {"$": "nd", "dtype": "|O", "shape": shape, "v": v}

    assert list(modelsafe.loads(craft(arr([3])))) == ["a", "b", "c"]
    with pytest.raises(modelsafe.FormatError, match=r"needs 4 elements, has 3"):
        modelsafe.loads(craft(arr([4])))
    with pytest.raises(modelsafe.FormatError, match="lists its elements in 'v'"):
        modelsafe.loads(craft(arr([3], id=0)))  # the elements are no list of their own
