"""Round trips: what is loaded is what was saved, in value, type and sharing.

Property tests draw from :mod:`tests.strategies`; the example tests below them
cover each kind by name, so that a failure says which kind broke.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import math
import os
import pathlib
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelsafe

from . import sample_types as S
from . import strategies as ms
from .compare import assert_same

TRUSTED = S.TRUSTED
FILE_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def via_bytes(x: Any) -> Any:
    return modelsafe.loads(modelsafe.dumps(x), trusted=TRUSTED)


def via_file(x: Any, path: pathlib.Path, *, mmap: Any = None, compress: Any = None) -> Any:
    modelsafe.save(x, path, compress=compress, fsync=False)
    return modelsafe.load(path, trusted=TRUSTED, mmap=mmap)


# -- properties ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(ms.values())
def test_dumps_loads_gives_the_same_value(x: Any) -> None:
    assert_same(x, via_bytes(x), writeable=True)


KIND_SETTINGS = settings(max_examples=100, deadline=None)


@pytest.mark.parametrize(
    "strategy",
    [
        pytest.param(ms.ndarrays(), id="arrays"),
        pytest.param(ms.object_arrays(ms.nested(4)), id="object-arrays"),
        pytest.param(ms.numpy_scalars(), id="numpy-scalars"),
        pytest.param(ms.dtype_objects, id="dtypes"),
        pytest.param(ms.random_generators(), id="random-generators"),
        pytest.param(ms.stdlib_atoms, id="stdlib"),
        pytest.param(st.dictionaries(ms.hashables, ms.json_atoms), id="hashable-keys"),
        pytest.param(ms.shared(ms.nested(4)), id="shared"),
        pytest.param(ms.cycles(ms.nested(4)), id="cycles"),
    ],
)
@KIND_SETTINGS
@given(data=st.data())
def test_each_kind_round_trips(data: st.DataObject, strategy: Any) -> None:
    x = data.draw(strategy)
    assert_same(x, via_bytes(x), writeable=True)


# (mmap, compress, whether loaded arrays are writable)
FILE_MODES = [
    pytest.param(None, None, True, id="default"),
    pytest.param("r", None, False, id="mmap=r"),
    pytest.param("c", None, True, id="mmap=c"),
    pytest.param(False, None, True, id="mmap=False"),
    pytest.param(None, "zstd", True, id="zstd"),
    pytest.param(False, ("lz4", 3), True, id="lz4-mmap=False"),
]


@pytest.mark.parametrize(("mmap", "compress", "writeable"), FILE_MODES)
@FILE_SETTINGS
@given(x=ms.values())
def test_save_load_gives_the_same_value(
    tmp_path: pathlib.Path, x: Any, mmap: Any, compress: Any, writeable: bool
) -> None:
    y = via_file(x, tmp_path / "m.msafe", mmap=mmap, compress=compress)
    assert_same(x, y, writeable=writeable)


# Large arrays are filled mostly with one value by hypothesis: they compress.
big_arrays = ms.ndarrays(
    shapes=st.one_of(
        st.integers(300, 3000).map(lambda n: (n,)),
        st.tuples(st.integers(20, 60), st.integers(20, 60)),
    )
)


@pytest.mark.parametrize("compress", ["zstd", "lz4", ("zstd", 19), ("lz4", 12)])
@FILE_SETTINGS
@given(arrays=st.lists(big_arrays, min_size=1, max_size=3))
def test_compressed_arrays(tmp_path: pathlib.Path, arrays: list[Any], compress: Any) -> None:
    x = {"arrays": arrays, "shared": arrays[0], "object": ms.object_array(arrays, (len(arrays),))}
    assert_same(x, via_file(x, tmp_path / "m.msafe", compress=compress), writeable=True)
    assert_same(x, via_file(x, tmp_path / "m.msafe", mmap=False), writeable=True)


@settings(max_examples=50, deadline=None)
@given(ms.values(max_leaves=6))
def test_saving_twice_gives_the_same_bytes(x: Any) -> None:
    with mock.patch.dict(os.environ, {"SOURCE_DATE_EPOCH": "1700000000"}):
        assert modelsafe.dumps(x) == modelsafe.dumps(x)


# -- examples, one kind each ----------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")


def _with_items(factory: Callable[[], Any], items: dict[Any, Any]) -> Callable[[], Any]:
    def make() -> Any:
        d = factory()
        d.update(items)
        return d

    return make


def _same_list_twice() -> Any:
    x = [1, [2]]
    return [x, {"again": x}, (x,)]


def _same_dict_twice() -> Any:
    d = {"a": 1}
    return {"first": d, "second": [d], 3: d}


def _same_array_twice() -> Any:
    a = np.arange(6.0).reshape(2, 3)
    return {"a": a, "b": [a, a.copy()], "c": S.Plain(w=a)}


def _same_object_twice() -> Any:
    p = S.Plain(v=[1])
    return [p, S.Holder(p), {"p": p}]


def _same_inside_object_array() -> Any:
    lst = [1, 2]
    return ms.object_array([lst, lst, [1, 2]], (3,))


def _equal_but_distinct() -> Any:
    return [
        [1],
        [1],
        {"a": 1},
        {"a": 1},
        np.zeros(2),
        np.zeros(2),
        bytearray(b"x"),
        bytearray(b"x"),
    ]


def _rng(kind: str, bitgen: str, draws: int = 5, gauss: bool = False) -> Callable[[], Any]:
    def make() -> Any:
        bg = getattr(np.random, bitgen)(12345)
        obj: Any = {"RandomState": np.random.RandomState, "Generator": np.random.Generator}.get(
            kind, lambda b: b
        )(bg)
        if kind == "bitgen":
            obj.random_raw(draws)
        else:
            obj.random(draws)
            if gauss:
                obj.standard_normal()
        return obj

    return make


def _struct(offsets: bool) -> np.dtype[Any]:
    inner = np.dtype(
        {"names": ["x", "y"], "formats": [">u2", "<f4"], "offsets": [0, 4], "itemsize": 12}
    )
    if not offsets:
        return np.dtype([("a", "<i4"), ("b", ">f8", (2, 3)), ("s", "S3")])
    return np.dtype(
        {
            "names": ["a", "sub", "nested", "u"],
            "formats": ["<i2", ("<f8", (2,)), inner, ">U2"],
            "offsets": [2, 8, 32, 48],
            "itemsize": 64,
        }
    )


def _struct_array(offsets: bool) -> np.ndarray[Any, Any]:
    a = np.zeros(4, dtype=_struct(offsets))
    a["a"] = [1, -2, 3, -4]
    if offsets:
        a["sub"] = np.arange(8.0).reshape(4, 2)
        a["nested"]["x"] = [9, 8, 7, 6]
        a["u"] = ["ab", "", "é", "z"]
    else:
        a["b"] = np.arange(24.0).reshape(4, 2, 3)
        a["s"] = [b"x", b"", b"abc", b"\x00q"]
    return a


NUMERIC_DTYPES = [
    "?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "g", "c8", "c16", "G",
    ">i2", ">i8", ">u4", ">f2", ">f8", ">c8", ">g",
    "M8[ns]", "M8[D]", "M8[Y]", "M8[10s]", ">M8[us]", "m8[s]", "m8[as]", ">m8[ms]",
    "S1", "S7", "U1", "U5", ">U3", "V3",
]  # fmt: skip


def _typed_array(code: str) -> np.ndarray[Any, Any]:
    dtype = np.dtype(code)
    raw = np.arange(1, 25, dtype=np.uint8).reshape(2, 3, 4)
    if dtype.kind == "V":
        return np.frombuffer(raw.tobytes(), dtype=dtype).reshape(2, 4)
    if dtype.kind in "SU":
        return np.array([["a", "bc", ""], ["\x00z", "é", "xyz"]] if dtype.kind == "U" else
                        [[b"a", b"bc", b""], [b"\x00z", b"\xff", b"xyz"]], dtype=dtype)  # fmt: skip
    if dtype.kind in "mM":
        a = np.arange(-3, 3).astype(dtype.newbyteorder("=")).astype(dtype).reshape(2, 3)
        a[0, 0] = np.array("NaT", dtype=dtype)
        return a
    a = np.arange(-3, 3).astype(dtype).reshape(2, 3)
    if dtype.kind in "fc":
        a.flat[:4] = [NAN, INF, -INF, -0.0]
    return a


def _scalar(code: str) -> np.generic:
    return _typed_array(code).reshape(-1)[-1]


EXAMPLES: dict[str, Callable[[], Any]] = {
    # JSON-like and numbers
    "none": lambda: None,
    "bools": lambda: [True, False],
    "int_zero_and_small": lambda: [0, -1, 1, 255],
    "int64_edges": lambda: [(1 << 63) - 1, -(1 << 63)],
    "int_beyond_64_bits": lambda: [1 << 63, -(1 << 63) - 1, (1 << 64) - 1, 1 << 64],
    "int_huge": lambda: [7**500, -(3**700)],
    "floats": lambda: [0.5, 1e308, 5e-324, -1.5],
    "float_nan": lambda: NAN,
    "float_inf": lambda: [INF, -INF],
    "float_negative_zero": lambda: -0.0,
    "complex": lambda: [1 + 2j, complex(NAN, -0.0), complex(-INF, INF), -0j],
    "str_unicode": lambda: ["", "héllo", "日本", "\U0001f600", "\x00", "a\nb", '"\\'],
    "str_lone_surrogates": lambda: ["\ud800", "a\udfffb", "\udc00\ud800"],
    "str_dollar": lambda: ["$", "$ref", {"$": "tuple", "v": [1]}],
    "bytes_short": lambda: [b"", b"\x00\xff", bytes(range(256))],
    "bytes_long": lambda: bytes(range(256)) * 3,
    "bytearray_short": lambda: bytearray(b"abc"),
    "bytearray_long": lambda: bytearray(range(256)) * 2,
    # containers
    "list_nested": lambda: [1, [2, [3, []]], []],
    "tuple_nested": lambda: (1, (2, (3, ())), ()),
    "dict_str_keys": lambda: {"b": 1, "a": 2, "": 3, "é": 4},
    "dict_dollar_key": lambda: {"$": 1, "v": 2, "id": 3},
    "dict_int_keys": lambda: {3: "c", 1: "a", -(1 << 70): "big"},
    "dict_tuple_keys": lambda: {(1, 2): "a", ("x", (None,)): "b"},
    "dict_mixed_keys_in_order": lambda: {"z": 1, 2: 2, None: 3, True: 4, 1.5: 5, (): 6, "a": 7},
    "dict_other_hashable_keys": lambda: {
        b"k": 1,
        frozenset({1}): 2,
        dt.date(2020, 1, 1): 3,
        decimal.Decimal("1.5"): 4,
        S.Color.RED: 5,
    },
    "set": lambda: {1, "a", (2, 3), None, 2.5, frozenset({4})},
    "frozenset": lambda: frozenset({1, "a", (2, 3)}),
    "set_and_frozenset_empty": lambda: [set(), frozenset()],
    "slice": lambda: [slice(1, None, -2), slice(None), slice("a", (1,), 1 << 70)],
    "range": lambda: [range(0), range(-5, 10, 3), range(1 << 70, -(1 << 70), -(1 << 65))],
    "ordered_dict": lambda: collections.OrderedDict([("b", 1), (2, [3]), ("a", None)]),
    "defaultdict_list": _with_items(lambda: collections.defaultdict(list), {"a": [1]}),
    "defaultdict_int": _with_items(lambda: collections.defaultdict(int), {1: 2}),
    "defaultdict_set": _with_items(lambda: collections.defaultdict(set), {"s": {1}}),
    "defaultdict_no_factory": lambda: collections.defaultdict(None, {"a": 1}),
    "namedtuple": lambda: S.Point(1, [2, 3]),
    "typing_namedtuple": lambda: S.Pair("l", S.Point(0, 0)),
    "enum": lambda: [S.Color.RED, S.Color.GREEN, S.Color.BLUE, S.Level.HIGH],
    # dates and times
    "datetime_naive": lambda: dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
    "datetime_utc": lambda: dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
    "datetime_offset_named": lambda: dt.datetime(
        2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
    ),
    "datetime_negative_offset_seconds": lambda: dt.datetime(
        1, 1, 1, tzinfo=dt.timezone(-dt.timedelta(hours=23, seconds=59, microseconds=1))
    ),
    "datetime_fold": lambda: dt.datetime(2021, 11, 7, 1, 30, fold=1),
    "date": lambda: [dt.date(1, 1, 1), dt.date(9999, 12, 31)],
    "time_naive": lambda: dt.time(23, 59, 59, 1),
    "time_aware_fold": lambda: dt.time(1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-3)), fold=1),
    "timedelta": lambda: [dt.timedelta(0), dt.timedelta(days=-1, microseconds=1), dt.timedelta.max],
    "timezone": lambda: [dt.UTC, dt.timezone(dt.timedelta(minutes=-90), "X")],
    "decimal": lambda: [
        decimal.Decimal(s) for s in ("1.10", "-0", "0E-9", "123456789.987654321e99")
    ],
    "decimal_special": lambda: [
        decimal.Decimal(s) for s in ("NaN", "-NaN", "sNaN", "NaN42", "Infinity", "-Infinity")
    ],
    "paths": lambda: [
        pathlib.PurePosixPath("/a/b.txt"),
        pathlib.PureWindowsPath(r"C:\x\y"),
        pathlib.Path("rel/p"),
        pathlib.PurePosixPath(),
    ],
    # functions and classes by name
    "builtin_and_numpy_functions": lambda: [len, max, np.log1p, np.add, np.mean, int, list],
    "module_function_and_class": lambda: [S.module_function, S.Plain, S.Color],
    # packed lists of scalars
    "packed_floats": lambda: [0.5, NAN, -0.0, INF, -INF] * 14,
    "packed_ints": lambda: [*range(-35, 35), (1 << 63) - 1, -(1 << 63)],
    "packed_ints_with_big": lambda: [*range(70), 1 << 64],
    "packed_strs": lambda: ["a", "", "\ud800", "$"] * 20,
    "packed_bools_and_none": lambda: [True, False, None] * 25,
    "packed_mixed": lambda: [1, 2.5, "s", None, True, False, -0.0, NAN] * 10,
    # numpy arrays: layouts and shapes
    "array_0d": lambda: np.array(3.5),
    "array_empty": lambda: [np.zeros((0,)), np.zeros((0, 3)), np.zeros((2, 0), order="F")],
    "array_3d": lambda: np.arange(24).reshape(2, 3, 4),
    "array_fortran": lambda: np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "array_transposed": lambda: np.arange(12).reshape(3, 4).T,
    "array_step_slice": lambda: np.arange(30.0)[::3],
    "array_2d_strided": lambda: np.arange(60).reshape(6, 10)[::2, 1::3],
    "array_negative_stride": lambda: np.arange(10)[::-1],
    "array_structured": lambda: _struct_array(offsets=False),
    "array_structured_offsets_padding_nested": lambda: _struct_array(offsets=True),
    "array_structured_fortran_2d": lambda: np.asfortranarray(_struct_array(True).reshape(2, 2)),
    "array_object_mixed": lambda: np.array([1, "a", None, 2.5, (1, 2), [3]], dtype=object),
    "array_object_fortran": lambda: np.asfortranarray(
        ms.object_array([1, "a", [2], None, (3,), {"k": 4}], (2, 3))
    ),
    "array_object_of_lists": lambda: ms.object_array([[1, 2], [3, 4]], (2,)),
    "array_object_of_arrays": lambda: ms.object_array([np.arange(2), np.arange(2.0)], (2,)),
    "array_object_0d": lambda: ms.object_array([[1, 2]], ()),
    # numpy scalars and dtypes
    "dtype_objects": lambda: (
        [np.dtype(c) for c in NUMERIC_DTYPES]
        + [_struct(False), _struct(True), np.dtype(object), np.dtype(("<i4", (2, 3)))]
    ),
    "scalar_void_structured": lambda: _struct_array(True)[1].copy(),
    # shared references
    "shared_list": _same_list_twice,
    "shared_dict": _same_dict_twice,
    "shared_array": _same_array_twice,
    "shared_object": _same_object_twice,
    "shared_in_object_array": _same_inside_object_array,
    "equal_but_distinct": _equal_but_distinct,
}
for _code in NUMERIC_DTYPES:
    EXAMPLES[f"array_{_code}"] = lambda c=_code: _typed_array(c)
    EXAMPLES[f"scalar_{_code}"] = lambda c=_code: _scalar(c)
for _bg in ms.BITGENS:
    for _kind in ("RandomState", "Generator", "bitgen"):
        EXAMPLES[f"rng_{_kind}_{_bg}"] = _rng(_kind, _bg, draws=700, gauss=True)
EXAMPLES["rng_RandomState_seeded"] = lambda: np.random.RandomState(0)
for _name, _make in ms.CYCLES.items():
    EXAMPLES[f"cycle_{_name}"] = lambda m=_make: m("k")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_dumps_loads(name: str) -> None:
    x = EXAMPLES[name]()
    assert_same(x, via_bytes(x), writeable=True)


@pytest.mark.parametrize("mmap", [None, "r"])
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_save_load(tmp_path: pathlib.Path, name: str, mmap: Any) -> None:
    x = EXAMPLES[name]()
    assert_same(x, via_file(x, tmp_path / "m.msafe", mmap=mmap), writeable=mmap is None)


def test_random_generators_continue_the_same_stream() -> None:
    for bitgen in ms.BITGENS:
        for kind in ("RandomState", "Generator"):
            rng = _rng(kind, bitgen, gauss=True)()
            copy = via_bytes(rng)
            assert np.array_equal(rng.standard_normal(5), copy.standard_normal(5))
            assert np.array_equal(rng.random(700), copy.random(700))


def test_default_load_is_writable_but_leaves_the_file_alone(tmp_path: pathlib.Path) -> None:
    path = modelsafe.save({"w": np.zeros(1000)}, tmp_path / "m.msafe")
    loaded = modelsafe.load(path)
    loaded["w"][:] = 7.0  # estimators update arrays in place
    assert modelsafe.load(path)["w"].sum() == 0.0


def test_mmap_r_arrays_refuse_writes(tmp_path: pathlib.Path) -> None:
    path = modelsafe.save({"w": np.zeros(1000)}, tmp_path / "m.msafe")
    w = modelsafe.load(path, mmap="r")["w"]
    with pytest.raises(ValueError, match="read-only"):
        w[0] = 1.0


def test_compressed_file_says_so_and_refuses_mmap(tmp_path: pathlib.Path) -> None:
    x = {"w": np.zeros(100_000), "small": np.arange(3)}
    path = modelsafe.save(x, tmp_path / "m.msafe", compress="zstd")
    codecs = [b["compression"] for b in modelsafe.inspect(path).buffers]
    assert "zstd" in codecs
    assert_same(x, modelsafe.load(path), writeable=True)
    for mmap in ("r", "c"):
        with pytest.raises(modelsafe.MmapUnavailableError, match="compress"):
            modelsafe.load(path, mmap=mmap)


# -- user-defined classes -------------------------------------------------------------------------

_ST = "tests.sample_types"


def _slots_partly_unset() -> S.Slotted:
    s = S.Slotted(a=[1])
    del s.b
    return s


def _list_subclass() -> S.MyList:
    m = S.MyList([1, [2]])
    m.tag = "listy"
    return m


def _dict_subclass() -> S.MyDict:
    m = S.MyDict({"a": 1, 2: "b"})
    m.tag = ("t",)
    return m


# name -> (factory, the names untrusted_types must list)
USER_TYPES: dict[str, tuple[Callable[[], Any], list[str]]] = {
    "plain_dict": (lambda: S.Plain(a=1, b=[2.0], c=np.arange(3)), [f"{_ST}.Plain"]),
    "plain_empty": (lambda: S.Plain(), [f"{_ST}.Plain"]),
    "slots": (lambda: S.Slotted(a=1, b={"x": 2}), [f"{_ST}.Slotted"]),
    "slots_partly_unset": (_slots_partly_unset, [f"{_ST}.Slotted"]),
    "slots_and_dict": (lambda: S.SlottedChild(1, 2, c=3), [f"{_ST}.SlottedChild"]),
    "getstate_setstate": (lambda: S.WithState([1, 2], cache="dropped"), [f"{_ST}.WithState"]),
    "reduce_callable_args": (lambda: S.Reduced(1, [2]), [f"{_ST}.make_reduced"]),
    "list_subclass": (_list_subclass, [f"{_ST}.MyList"]),
    "dict_subclass": (_dict_subclass, [f"{_ST}.MyDict"]),
    "namedtuple": (lambda: S.Point(1, 2), [f"{_ST}.Point"]),
    "enum": (lambda: S.Color.BLUE, [f"{_ST}.Color"]),
    "function": (lambda: S.module_function, [f"{_ST}.module_function"]),
    "class_object": (lambda: S.Node, [f"{_ST}.Node"]),
    "several": (
        lambda: {"model": S.Plain(inner=S.Slotted(S.Level.LOW)), "steps": [S.Reduced(1, 2)]},
        [f"{_ST}.Level", f"{_ST}.Plain", f"{_ST}.Slotted", f"{_ST}.make_reduced"],
    ),
}


@pytest.mark.parametrize("name", sorted(USER_TYPES))
def test_user_types_are_listed_refused_then_loaded(tmp_path: pathlib.Path, name: str) -> None:
    make, names = USER_TYPES[name]
    x = make()
    data = modelsafe.dumps(x)
    path = modelsafe.save(x, tmp_path / "m.msafe")
    assert modelsafe.untrusted_types(data) == names
    assert modelsafe.untrusted_types(path) == names
    with pytest.raises(modelsafe.UntrustedTypesError) as info:
        modelsafe.loads(data)
    assert info.value.types == names
    with pytest.raises(modelsafe.UntrustedTypesError) as info:
        modelsafe.load(path, trusted=names[1:])
    assert info.value.types == names[:1]
    assert_same(x, modelsafe.loads(data, trusted=names), writeable=True)
    assert_same(x, modelsafe.load(path, trusted=names), writeable=True)


def test_user_types_are_restored_as_pickle_would() -> None:
    w = via_bytes(S.WithState([1], cache="dropped"))
    assert (w.value, w.cache) == ([1], "rebuilt")  # __setstate__ ran
    r = via_bytes(S.Reduced(1, 2))
    assert (r.a, r.b, r.made_by) == (1, 2, "make_reduced")  # the reduce callable ran
    s = via_bytes(_slots_partly_unset())
    assert s.a == [1] and not hasattr(s, "b")
    assert via_bytes(S.Color.BLUE) is S.Color.BLUE
    assert via_bytes(S.Level.HIGH) is S.Level.HIGH


# -- regressions: inputs that once saved but did not load back the same ---------------------


@pytest.mark.parametrize("name", sorted(ms.IMMUTABLE_FIRST_CYCLES))
def test_cycle_entered_through_immutable(name: str) -> None:
    """A cycle through a tuple/frozenset saves; it must load (pickle handles these)."""
    x = ms.IMMUTABLE_FIRST_CYCLES[name]("k")
    data = modelsafe.dumps(x)
    assert_same(x, modelsafe.loads(data, trusted=TRUSTED))


def _nest(depth: int, wrap: Callable[[Any], Any]) -> Any:
    x: Any = 0
    for _ in range(depth):
        x = wrap(x)
    return x


NESTINGS: dict[str, Callable[[Any], Any]] = {
    "list": lambda x: [x],
    "str_key_dict": lambda x: {"a": x},
    "int_key_dict": lambda x: {1: x},
    "tuple": lambda x: (x,),
    "frozenset": lambda x: frozenset([x]),
    "object_chain": lambda x: S.Node(1, x),
}


@pytest.mark.parametrize("depth", [60, 99, 150, 250])
@pytest.mark.parametrize("kind", sorted(NESTINGS))
def test_nesting_that_saves_also_loads(kind: str, depth: int) -> None:
    """Save and load agree on the depth limit (200 node levels; an object and its
    attribute dict are two): a file save() wrote must load, and anything deeper is
    refused at save with UnsupportedTypeError, never later."""
    x = _nest(depth, NESTINGS[kind])
    levels = depth * (2 if kind == "object_chain" else 1)
    if levels >= 200:
        with pytest.raises(modelsafe.UnsupportedTypeError, match="levels deep"):
            modelsafe.dumps(x)
        return
    data = modelsafe.dumps(x)
    assert_same(x, modelsafe.loads(data, trusted=TRUSTED))


def _key_and_value_same_tuple() -> Any:
    return {("a", "b"): ("a", "b")}  # one constant: the key *is* the value


def _enum_in_key_and_value() -> Any:
    return {(S.Color.RED, 1): S.Color.RED}


def _odict_key_in_value() -> Any:
    t = (1, 2)
    return collections.OrderedDict([(t, [t])])


def _dict_subclass_key_in_value() -> Any:
    t = (1, 2)
    return S.MyDict({t: {"again": t}})


@pytest.mark.parametrize(
    "make",
    [_key_and_value_same_tuple, _enum_in_key_and_value, _odict_key_in_value,
     _dict_subclass_key_in_value],
    ids=lambda f: f.__name__.strip("_"),
)  # fmt: skip
def test_dict_value_refers_to_its_key(make: Callable[[], Any]) -> None:
    """A value that refers to an object first met in its own key (saves, must load)."""
    x = make()
    assert_same(x, via_bytes(x))


@pytest.mark.parametrize("x", [np.str_(""), np.bytes_(b""), np.void(b"")], ids=repr)
def test_empty_numpy_strings(x: np.generic) -> None:
    assert_same(x, via_bytes(x))


@pytest.mark.parametrize("kind", ["dict", "set"])
def test_distinct_nan_keys_are_kept(kind: str) -> None:
    """Two NaN objects are two distinct keys in Python (and through pickle)."""
    a, b = float("nan"), float("nan")
    x: Any = {a: 1, b: 2} if kind == "dict" else {a, b}
    y = via_bytes(x)
    assert len(y) == 2 and all(math.isnan(k) for k in y)


def _long_mixed(n: int, seed: int, pattern: str) -> list[Any]:
    rng = np.random.default_rng(seed)
    pool: list[Any] = [None, False, True, -(2**63), 2**63 - 1, 7, -0.0, 1e308, "", "é\x00z"]
    if pattern == "random":
        picks = rng.integers(0, len(pool), size=n)
    elif pattern == "runs":  # long runs of one kind, crossing chunk edges
        picks = np.repeat(rng.integers(0, len(pool), size=n // 5000 + 1), 5000)[:n]
    else:  # "late": only ints until the last chunk, then every kind
        picks = np.full(n, 5)
        picks[-50:] = rng.integers(0, len(pool), size=50)
    return [pool[int(i)] for i in picks]


@pytest.mark.parametrize("pattern", ["random", "runs", "late"])
@pytest.mark.parametrize("n", [64, (1 << 15) - 1, 1 << 15, (1 << 15) + 1, 3 * (1 << 15) + 77])
def test_long_mixed_lists_cross_chunk_edges(n: int, pattern: str) -> None:
    """Mixed packed lists are rebuilt a chunk at a time: every edge keeps order and types."""
    x = _long_mixed(n, n, pattern)
    y = via_bytes(x)
    assert y == x and [type(v) for v in y] == [type(v) for v in x]
    assert [math.copysign(1, v) for v in y if type(v) is float] == [
        math.copysign(1, v) for v in x if type(v) is float
    ]


@pytest.mark.parametrize(
    ("odd", "in_buffer"),
    [("plain é", True), ("", True), ("nul\x00inside", False), ("lone \ud800", False)],
    ids=["plain", "empty", "nul", "surrogate"],
)
@pytest.mark.parametrize("mixed", [False, True], ids=["all-str", "mixed"])
def test_packed_strings_use_a_buffer_when_they_can(odd: str, in_buffer: bool, mixed: bool) -> None:
    """Strings go to one UTF-8 buffer unless one holds U+0000 or cannot be UTF-8."""
    x: list[Any] = [f"s{i}" for i in range(100)] + [odd]
    if mixed:
        x += [None, 1, 2.5]
    data = modelsafe.dumps(x)
    owners = [b["owner"] for b in modelsafe.inspect(data).buffers]
    assert len(owners) == int(in_buffer) + 3 * mixed  # mixed: + codes, ints, floats
    y = modelsafe.loads(data)
    assert y == x and [type(v) for v in y] == [type(v) for v in x]


# -- the comparison itself ------------------------------------------------------------------------


def _shared_pair() -> tuple[Any, Any]:
    inner = [1]
    return [inner, inner], [[1], [1]]


def _merged_pair() -> tuple[Any, Any]:
    inner = [1]
    return [[1], [1]], [inner, inner]


def _cycle_vs_copy() -> tuple[Any, Any]:
    a: list[Any] = [1]
    a.append(a)
    b: list[Any] = [1]
    b.append([1, b])
    return a, b


def _readonly() -> tuple[Any, Any]:
    a = np.zeros(3)
    b = np.zeros(3)
    b.flags.writeable = False
    return a, b


DIFFERENT: dict[str, Callable[[], tuple[Any, Any]]] = {
    "negative_zero": lambda: (-0.0, 0.0),
    "nan_vs_number": lambda: (NAN, 1.0),
    "int_vs_bool": lambda: (1, True),
    "list_vs_tuple": lambda: ([1], (1,)),
    "dict_order": lambda: ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    "set_items": lambda: ({1, 2}, {1, 3}),
    "decimal_exponent": lambda: (decimal.Decimal("1.0"), decimal.Decimal("1.00")),
    "fold": lambda: (dt.time(1, fold=1), dt.time(1)),
    "tz_name": lambda: (dt.UTC, dt.timezone(dt.timedelta(0), "Z")),
    "dtype": lambda: (np.zeros(2, "<f8"), np.zeros(2, ">f8")),
    "shape": lambda: (np.zeros((2, 1)), np.zeros((1, 2))),
    "array_values": lambda: (np.array([NAN, 0.0]), np.array([NAN, -0.0])),
    "order": lambda: (np.zeros((2, 3), order="F"), np.zeros((2, 3))),
    "shared_lost": _shared_pair,
    "distinct_merged": _merged_pair,
    "cycle_unrolled": _cycle_vs_copy,
    "attribute": lambda: (S.Plain(a=1), S.Plain(a=2)),
    "slot_unset": lambda: (_slots_partly_unset(), S.Slotted(a=[1])),
    "default_factory": lambda: (collections.defaultdict(list), collections.defaultdict(set)),
    "structured_field": lambda: (_struct_array(True), _struct_array(False)),
}


@pytest.mark.parametrize("name", sorted(DIFFERENT))
def test_assert_same_sees_differences(name: str) -> None:
    a, b = DIFFERENT[name]()
    with pytest.raises(AssertionError):
        assert_same(a, b)


def test_assert_same_checks_writeable() -> None:
    a, b = _readonly()
    assert_same(a, b)
    with pytest.raises(AssertionError, match="writeable"):
        assert_same(a, b, writeable=True)
