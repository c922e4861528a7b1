"""Regressions for places where the reader once accepted what docs/format.md forbids,
or the writer produced what the reader refused (found while writing the spec)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import modelsafe
from modelsafe import FormatError

from . import sample_types as S
from ._crafting import craft, frame, rewrite, split


@pytest.mark.parametrize(
    ("raw", "types"),
    [
        ('{"$":"dict","v":[[1e400,1]]}', []),
        ('{"$":"dict","v":[[1,123456789012345678901234]]}', []),
        ("1e400", []),
        ("123456789012345678901234", []),
        ('{"$":"complex","v":[1e400,0.0]}', ["builtins.complex"]),
        ('{"$":"range","v":[0,123456789012345678901234,1]}', ["builtins.range"]),
    ],
    ids=["float key in pair", "big int in pair", "root inf", "root big int", "complex", "range"],
)
def test_numbers_outside_int64_or_finite_floats_are_refused(
    raw: str, types: list[str], reject: Callable[..., Any]
) -> None:
    """Big integers and infinities have tagged nodes; a bare JSON number may not be one."""
    reject(craft(None, types=types, root_raw=raw), FormatError, match="must be")


def test_an_object_reached_through_its_own_arguments_saves_and_loads_at_depth() -> None:
    """The writer's depth count for a ref's ``pre`` matches the reader's: an object whose
    reduce arguments lead back to it, nested as deep as save allows, loads."""
    for depth in range(60, 100):
        x: Any = 0
        for _ in range(depth):
            r = S.Reduced([], x)
            r.a.append(r)  # reached again through its own arguments
            x = r
        try:
            data = modelsafe.dumps(x)
        except modelsafe.UnsupportedTypeError:
            break  # the save limit: everything shallower was checked below
        out = modelsafe.loads(data, trusted=S.TRUSTED)
        assert out.a[0] is out
    else:
        pytest.fail("never reached the depth limit; the test checks nothing near it")


@pytest.mark.parametrize("char", ["S", "U", "V"])
def test_unsized_dtype_values_round_trip(char: str) -> None:
    dt = np.dtype(char)
    assert modelsafe.loads(modelsafe.dumps({"dtype": dt}))["dtype"] == dt


def test_unsized_dtypes_are_still_refused_for_arrays(reject: Callable[..., Any]) -> None:
    reject(craft({"$": "nd", "dtype": "|S0", "shape": [2**33]}), FormatError)


def test_random_state_arrays_of_the_other_byte_order_load() -> None:
    """A state saved on a big-endian machine holds '>u4' words; numpy gets native ones."""
    rs = np.random.RandomState(7)
    blob = modelsafe.dumps(rs)

    def swap(h: dict[str, Any]) -> None:
        key = h["root"]["state"]["state"]["key"]
        assert h["arrays"]["dtypes"] == ["<u4"] or "dtype" in key
        h["arrays"]["dtypes"] = [">u4" if d == "<u4" else d for d in h["arrays"]["dtypes"]]

    swapped = rewrite(blob, swap)
    # The words now read byte-swapped: a different but valid state, accepted and usable.
    out = modelsafe.loads(swapped)
    assert isinstance(out, np.random.RandomState)
    expect = np.random.RandomState(7).get_state()[1].byteswap()
    assert (out.get_state()[1] == expect).all()
    assert out.random_sample(3).shape == (3,)


@pytest.mark.parametrize("verify", [True, False])
def test_the_header_hash_member_is_required(verify: bool) -> None:
    import json

    blob = modelsafe.dumps([1, 2, 3])
    header = {k: v for k, v in split(blob).header.items() if k != "hash"}
    body = json.dumps(header, separators=(",", ":")).encode()
    with pytest.raises(FormatError, match="hash"):
        modelsafe.loads(frame(body, split(blob).data), verify=verify)
