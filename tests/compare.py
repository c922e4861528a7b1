"""``assert_same``: a loaded value is the saved one, down to types and shared references.

Checked recursively, with the path of the first difference in the message:

- equal values: floats bit-for-bit in sign (-0.0) and NaN-aware, Decimals by their text
  (sign, exponent, NaN kind), arrays byte-for-byte (field by field for structured dtypes,
  so padding bytes do not count);
- identical types at every level (``type(a) is type(b)``);
- the same sharing: an object met twice in the input is one object in the output at
  both places, and distinct objects stay distinct. This is checked for everything with
  an identity a user can observe (mutable containers, arrays, instances, random
  generators, non-empty tuples and frozensets), not for atoms like ints or strings;
- arrays: same dtype and shape; the same C/F contiguity when the input was contiguous,
  C-contiguous otherwise; writable or read-only as the load mode promises.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import math
import pathlib
import types
from typing import Any

import numpy as np

_MISSING = object()
_ATOMS = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    range,
    slice,
    decimal.Decimal,
    dt.date,  # and datetime
    dt.time,
    dt.timedelta,
    dt.tzinfo,
    pathlib.PurePath,
    np.generic,
    np.dtype,
)
_GLOBALS = (type, types.FunctionType, types.BuiltinFunctionType, np.ufunc)
_RNGS = (np.random.RandomState, np.random.Generator, np.random.BitGenerator)


class Memo:
    """Pairs of (input, output) objects met so far, in both directions."""

    def __init__(self) -> None:
        self.fwd: dict[int, tuple[Any, Any]] = {}
        self.rev: dict[int, tuple[Any, Any]] = {}

    def copy(self) -> Memo:
        m = Memo()
        m.fwd, m.rev = dict(self.fwd), dict(self.rev)
        return m


def has_identity(x: Any) -> bool:
    """Whether sharing of ``x`` is observable and must survive a round trip."""
    if isinstance(x, (*_ATOMS, *_GLOBALS, enum.Enum)):
        return False
    # The empty tuple and frozenset are singletons in CPython.
    return not (isinstance(x, tuple | frozenset) and not x)


def assert_same(
    a: Any,
    b: Any,
    memo: Memo | None = None,
    *,
    writeable: bool | None = None,
    path: str = "root",
) -> None:
    """Assert that ``b`` (loaded) is the same value as ``a`` (saved); see the module docstring.

    ``writeable``: what the arrays' ``flags.writeable`` must be (None: do not check).
    """
    if memo is None:
        memo = Memo()
    assert type(a) is type(b), f"{path}: type {type(a).__qualname__} became {type(b).__qualname__}"
    if has_identity(a):
        seen = memo.fwd.get(id(a))
        if seen is not None:
            assert seen[1] is b, f"{path}: one object in the input became two in the output"
            return
        back = memo.rev.get(id(b))
        if back is not None:
            raise AssertionError(f"{path}: two distinct input objects became one output object")
        memo.fwd[id(a)] = (a, b)  # holding both keeps their ids from being reused
        memo.rev[id(b)] = (b, a)
    _compare(a, b, memo, writeable, path)


def _compare(a: Any, b: Any, memo: Memo, writeable: bool | None, path: str) -> None:
    def sub(x: Any, y: Any, where: str) -> None:
        assert_same(x, y, memo, writeable=writeable, path=where)

    if isinstance(a, np.generic):  # before float: np.float64 is a float
        _scalar(a, b, path)
    elif isinstance(a, float):
        _float(a, b, path)
    elif isinstance(a, complex):
        _float(a.real, b.real, f"{path}.real")
        _float(a.imag, b.imag, f"{path}.imag")
    elif isinstance(a, decimal.Decimal):
        assert str(a) == str(b), f"{path}: Decimal {a} became {b}"
    elif isinstance(a, range):
        assert (a.start, a.stop, a.step) == (b.start, b.stop, b.step), f"{path}: {a} != {b}"
    elif isinstance(a, slice):
        sub(a.start, b.start, f"{path}.start")
        sub(a.stop, b.stop, f"{path}.stop")
        sub(a.step, b.step, f"{path}.step")
    elif isinstance(a, dt.datetime | dt.time):
        assert a.replace(tzinfo=None) == b.replace(tzinfo=None), f"{path}: {a!r} != {b!r}"
        assert a.fold == b.fold, f"{path}: fold {a.fold} became {b.fold}"
        sub(a.tzinfo, b.tzinfo, f"{path}.tzinfo")
    elif isinstance(a, dt.timezone):
        assert a == b and a.tzname(None) == b.tzname(None), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, pathlib.PurePath):
        assert str(a) == str(b), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, np.ndarray):
        _array(a, b, memo, writeable, path)
    elif isinstance(a, np.dtype):
        assert a == b and a.str == b.str and a.descr == b.descr, f"{path}: dtype {a} != {b}"
    elif isinstance(a, _ATOMS):
        assert a == b, f"{path}: {a!r} != {b!r}"
    elif isinstance(a, (*_GLOBALS, enum.Enum)):
        assert a is b, f"{path}: {a!r} is not the same object as {b!r}"
    elif isinstance(a, _RNGS):
        _rng(a, b, memo, path)
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), f"{path}: length {len(a)} became {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            sub(x, y, f"{path}[{i}]")
        if type(a) not in (tuple, list):
            _instance(a, b, memo, writeable, path)
    elif isinstance(a, dict):
        _dict(a, b, memo, writeable, path)
        if type(a) not in (dict, collections.OrderedDict, collections.defaultdict) and not (
            _drops_its_state(a)
        ):
            _instance(a, b, memo, writeable, path)
    elif isinstance(a, set | frozenset):
        _set(a, b, memo, writeable, path)
    elif isinstance(a, bytearray):
        assert a == b, f"{path}: {a!r} != {b!r}"
    else:
        _instance(a, b, memo, writeable, path)


def _drops_its_state(x: Any) -> bool:
    """scikit-learn's ``Bunch`` (a dict) ignores its instance state in ``__setstate__``,
    as it does when unpickled: the one attribute it sets in ``__init__``, a map of
    deprecated keys, is gone after any round trip, and its lookups do without it."""
    t = type(x)
    return t.__module__ == "sklearn.utils._bunch" and t.__qualname__ == "Bunch"


def _float(a: float, b: float, path: str) -> None:
    if math.isnan(a):
        assert math.isnan(b), f"{path}: nan became {b!r}"
    else:
        assert a == b and math.copysign(1, a) == math.copysign(1, b), f"{path}: {a!r} != {b!r}"


def _dict(a: Any, b: Any, memo: Memo, writeable: bool | None, path: str) -> None:
    assert len(a) == len(b), f"{path}: {len(a)} keys became {len(b)}: {list(a)} vs {list(b)}"
    for i, ((ka, va), (kb, vb)) in enumerate(zip(a.items(), b.items(), strict=True)):
        where = f"{path}[{ka!r}]" if isinstance(ka, str | int) else f"{path}[key #{i}]"
        assert_same(ka, kb, memo, writeable=writeable, path=f"{where} (key)")
        assert_same(va, vb, memo, writeable=writeable, path=where)
    if isinstance(a, collections.defaultdict):
        assert a.default_factory is b.default_factory, f"{path}: default_factory differs"


def _matches(x: Any, y: Any, memo: Memo, writeable: bool | None) -> bool:
    try:
        assert_same(x, y, memo.copy(), writeable=writeable)
    except AssertionError:
        return False
    return True


def _set(a: Any, b: Any, memo: Memo, writeable: bool | None, path: str) -> None:
    assert len(a) == len(b), f"{path}: {len(a)} items became {len(b)}"
    # Pair equal items through hashing first; a trial match only for the rest (NaN, ...),
    # since trying every pair recursively is exponential in the nesting of sets.
    by_value = {y: y for y in b}
    rest = []
    used: set[int] = set()
    for x in a:
        y = by_value.get(x, _MISSING)
        if y is _MISSING or id(y) in used:
            rest.append(x)
        else:
            used.add(id(y))
            assert_same(x, y, memo, writeable=writeable, path=f"{path}{{{x!r}}}")
    left = [y for y in b if id(y) not in used]
    for x in rest:
        for j, y in enumerate(left):
            if _matches(x, y, memo, writeable):
                assert_same(x, y, memo, writeable=writeable, path=f"{path}{{{x!r}}}")
                del left[j]
                break
        else:
            raise AssertionError(f"{path}: item {x!r} has no match in {b!r}")


def _array(a: Any, b: Any, memo: Memo, writeable: bool | None, path: str) -> None:
    assert a.dtype == b.dtype and a.dtype.str == b.dtype.str, (
        f"{path}: dtype {a.dtype} != {b.dtype}"
    )
    assert a.shape == b.shape, f"{path}: shape {a.shape} became {b.shape}"
    if a.flags.c_contiguous or a.flags.f_contiguous:
        flags = (a.flags.c_contiguous, a.flags.f_contiguous)
        got = (b.flags.c_contiguous, b.flags.f_contiguous)
        assert flags == got, f"{path}: (C, F) contiguity {flags} became {got}"
    else:
        assert b.flags.c_contiguous, f"{path}: a strided input must load C-contiguous"
    if writeable is not None and a.dtype != object and a.nbytes:
        assert b.flags.writeable == writeable, f"{path}: writeable is {b.flags.writeable}"
    if a.dtype == object:
        for idx in np.ndindex(a.shape):
            assert_same(a[idx], b[idx], memo, writeable=writeable, path=f"{path}[{idx}]")
    else:
        assert array_values_equal(a, b), f"{path}: values differ:\n{a!r}\n{b!r}"


def array_values_equal(a: Any, b: Any) -> bool:
    """Bit-exact equality of the values (structured dtypes field by field, padding ignored)."""
    if a.dtype.names is not None:
        return all(array_values_equal(a[n], b[n]) for n in a.dtype.names)
    if a.dtype.type in (np.longdouble, np.clongdouble):
        # 80-bit values in 16-byte slots: the 6 padding bytes are not part of the value.
        if a.dtype.kind == "c":
            return array_values_equal(a.real, b.real) and array_values_equal(a.imag, b.imag)
        same = np.array_equal(a, b, equal_nan=True)
        return bool(same and np.array_equal(np.signbit(a), np.signbit(b)))
    return bool(a.tobytes() == b.tobytes())


def _scalar(a: Any, b: Any, path: str) -> None:
    assert a.dtype == b.dtype and a.dtype.str == b.dtype.str, (
        f"{path}: dtype {a.dtype} != {b.dtype}"
    )
    assert array_values_equal(np.array(a), np.array(b)), f"{path}: {a!r} != {b!r}"


def rng_state(x: Any) -> Any:
    if isinstance(x, np.random.RandomState):
        return x.get_state(legacy=False)
    if isinstance(x, np.random.Generator):
        return x.bit_generator.state
    return x.state


def _rng(a: Any, b: Any, memo: Memo, path: str) -> None:
    bga = (
        a._bit_generator if isinstance(a, np.random.RandomState) else getattr(a, "bit_generator", a)
    )
    bgb = (
        b._bit_generator if isinstance(b, np.random.RandomState) else getattr(b, "bit_generator", b)
    )
    assert type(bga) is type(bgb), f"{path}: bit generator {type(bga)} became {type(bgb)}"
    assert_same(rng_state(a), rng_state(b), Memo(), path=f"{path}.state")


def instance_state(x: Any) -> tuple[str, Any]:
    """What defines an instance, tagged by kind.

    ``("reduce", (func, args, state))`` for a custom ``__reduce__``, ``("getstate", state)``
    for a custom ``__getstate__``, else ``("attrs", (__dict__ or None, {slot: value}))``.
    """
    t = type(x)
    if t.__reduce__ is not object.__reduce__ or t.__reduce_ex__ is not object.__reduce_ex__:
        func, args, *rest = x.__reduce_ex__(4)
        return "reduce", (func, args, rest[0] if rest else None)
    if t.__getstate__ is not object.__getstate__:  # type: ignore[comparison-overlap]
        return "getstate", x.__getstate__()
    slots = {}
    for cls in t.__mro__:
        names = cls.__dict__.get("__slots__", ())
        for name in (names,) if isinstance(names, str) else names:
            if name not in ("__dict__", "__weakref__"):
                slots[name] = getattr(x, name, _MISSING)
    return "attrs", (getattr(x, "__dict__", None), slots)


def _instance(a: Any, b: Any, memo: Memo, writeable: bool | None, path: str) -> None:
    (kind, sa), (kind_b, sb) = instance_state(a), instance_state(b)
    assert kind == kind_b, f"{path}: {kind} state became {kind_b} state"
    if kind != "attrs":
        assert_same(sa, sb, memo, writeable=writeable, path=f"{path}.__{kind}__")
        return
    for name, x in sa[1].items():
        y = sb[1][name]
        if x is _MISSING or y is _MISSING:
            assert x is y, f"{path}.{name}: slot set on one side only"
        else:
            assert_same(x, y, memo, writeable=writeable, path=f"{path}.{name}")
    da, db = sa[0], sb[0]
    assert (da is None) == (db is None), f"{path}: __dict__ on one side only"
    if da is not None:
        assert list(da) == list(db), f"{path}: attributes {list(da)} became {list(db)}"
        for k in da:
            assert_same(da[k], db[k], memo, writeable=writeable, path=f"{path}.{k}")
