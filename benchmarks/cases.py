"""The objects being saved and loaded, built deterministically from a seed.

A case is rebuilt inside every child process from the same seed, so the large
objects never travel between processes and every tool sees identical data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

SEED = 20240607


@dataclass(frozen=True)
class Case:
    """One benchmark input: how to build it, touch it, read it fully and compare it."""

    name: str
    description: str
    build: Callable[[bool], Any]
    touch: Callable[[Any], float]
    read_all: Callable[[Any], float]
    equal: Callable[[Any, Any], bool]


def _arrays_1gb(quick: bool) -> dict[str, np.ndarray]:
    """16 float64 arrays totalling 1 GiB (64 MiB when quick)."""
    rng = np.random.default_rng(SEED)
    per_array = 2**23 if not quick else 2**19
    return {f"w{i:02d}": rng.standard_normal(per_array) for i in range(16)}


def _small_arrays(quick: bool) -> dict[str, np.ndarray]:
    """100,000 arrays of 1-64 elements, cycling float64, int64, float32 (10,000 when quick)."""
    rng = np.random.default_rng(SEED)
    count = 100_000 if not quick else 10_000
    sizes = rng.integers(1, 65, size=count)
    out: dict[str, np.ndarray] = {}
    for i, size in enumerate(sizes.tolist()):
        kind = i % 3
        if kind == 0:
            out[f"a{i}"] = rng.standard_normal(size)
        elif kind == 1:
            out[f"a{i}"] = rng.integers(-(2**40), 2**40, size=size, dtype=np.int64)
        else:
            out[f"a{i}"] = rng.standard_normal(size, dtype=np.float32)
    return out


def _scalars(quick: bool) -> list[Any]:
    """1,000,000 Python scalars in a fixed 8-step pattern (100,000 when quick)."""
    rng = np.random.default_rng(SEED)
    count = 1_000_000 if not quick else 100_000
    ints = rng.integers(-(2**31), 2**31, size=count).tolist()
    floats = rng.standard_normal(count).tolist()
    out: list[Any] = []
    for i in range(count):
        step = i % 8
        if step in (0, 1):
            out.append(ints[i])  # about half of these are negative
        elif step in (2, 3):
            out.append(floats[i])
        elif step == 4:
            out.append(f"s{ints[i] % 10_000}")
        elif step == 5:
            out.append(i % 16 == 5)
        elif step == 6:
            out.append(None)
        else:
            out.append(i)
    return out


def _touch_arrays(obj: dict[str, np.ndarray]) -> float:
    """Read one element of every array, as a user who then uses the model lazily."""
    return float(sum(float(a.flat[0]) for a in obj.values()))


def _read_all_arrays(obj: dict[str, np.ndarray]) -> float:
    """Read every byte of every array."""
    return float(sum(float(a.sum()) for a in obj.values()))


def _equal_arrays(a: dict[str, np.ndarray], b: Any) -> bool:
    """Same keys in the same order, same dtypes and shapes, same values."""
    if not isinstance(b, dict) or list(a) != list(b):
        return False
    return all(
        isinstance(b[k], np.ndarray) and a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k])
        for k in a
    )


def _touch_scalars(obj: list[Any]) -> float:
    """A loaded list is fully materialised already; touching it is reading its length."""
    return float(len(obj))


def _read_all_scalars(obj: list[Any]) -> float:
    """Visit every element."""
    return float(sum(1 for x in obj if x is not None))


def _equal_scalars(a: list[Any], b: Any) -> bool:
    """Equal values and identical types (so ``True`` does not pass for ``1``)."""
    return (
        isinstance(b, list)
        and a == b
        and all(type(x) is type(y) for x, y in zip(a, b, strict=True))
    )


CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case(
            "arrays_1gb",
            "dict of 16 float64 arrays, 1 GiB in total (64 MiB with --quick)",
            _arrays_1gb,
            _touch_arrays,
            _read_all_arrays,
            _equal_arrays,
        ),
        Case(
            "small_arrays_100k",
            "dict of 100,000 arrays of 1-64 float64/int64/float32 elements (10,000 with --quick)",
            _small_arrays,
            _touch_arrays,
            _read_all_arrays,
            _equal_arrays,
        ),
        Case(
            "scalars_1m",
            "list of 1,000,000 ints, floats, short strings, bools and None (100,000 with --quick)",
            _scalars,
            _touch_scalars,
            _read_all_scalars,
            _equal_scalars,
        ),
    )
}
