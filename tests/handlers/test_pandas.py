"""The pandas handler: DataFrame, Series, every Index kind, extension arrays and scalars.

Round trips go through the conformance suite with pandas' own exact comparisons;
a hypothesis property covers generated frames of mixed dtypes; crafted files, each
made from a real saved file with one invariant broken, must end in a FormatError that
names the class and the invariant, loaded in a child process that must not crash.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pandas.testing as tm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import modelsafe
from modelsafe import FormatError, UntrustedTypesError

from .._crafting import rewrite, run_limited, split
from ..compare import assert_same
from .conformance import HandlerConformance

# -- comparing pandas objects exactly ------------------------------------------------------------


def _same_scalar(a: Any, b: Any, path: str) -> None:
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if a is pd.NA or a is pd.NaT:
        assert a is b, path
    elif isinstance(a, pd.Timestamp):
        assert (a, a.unit, str(a.tz)) == (b, b.unit, str(b.tz)), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, pd.Timedelta):
        assert (a, a.unit) == (b, b.unit), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, pd.Period | pd.Interval):
        assert a == b and str(a) == str(b), f"{path}: {a!r} != {b!r}"
    else:
        assert_same(a, b, path=path)


def _same_objects(a: Any, b: Any, path: str) -> None:
    """Object values element by element, types included (pandas' check treats None, nan
    and NA alike)."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    assert a.shape == b.shape, path
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        _same_scalar(x, y, f"{path}[{i}]")


def _same_index(a: Any, b: Any, path: str) -> None:
    tm.assert_index_equal(a, b, exact=True, check_names=True, check_exact=True, obj=path)
    assert getattr(a, "freq", None) == getattr(b, "freq", None), f"{path}: freq differs"
    if isinstance(a, pd.MultiIndex):
        for i, (x, y) in enumerate(zip(a.levels, b.levels, strict=True)):
            _same_index(x, y, f"{path}.levels[{i}]")
    elif a.dtype == object:
        _same_objects(a, b, path)


def assert_pandas_equal(
    a: Any, b: Any, path: str = "root", memo: dict[int, Any] | None = None
) -> None:
    """Exactly the same pandas objects (dtypes, names, freq, flags, attrs), in the same
    containers, with the same sharing."""
    memo = {} if memo is None else memo
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if isinstance(a, pd.DataFrame | pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        if id(a) in memo:
            assert memo[id(a)] is b, f"{path}: one object in the input became two"
            return
        memo[id(a)] = b
    if isinstance(a, pd.DataFrame):
        tm.assert_frame_equal(a, b, check_exact=True, check_freq=True, check_flags=True, obj=path)
        _same_index(a.index, b.index, f"{path}.index")
        _same_index(a.columns, b.columns, f"{path}.columns")
        for i in range(a.shape[1]):
            if a.dtypes.iloc[i] == np.dtype(object):
                _same_objects(a.iloc[:, i], b.iloc[:, i], f"{path}.iloc[:, {i}]")
        assert_pandas_equal(a.attrs, b.attrs, f"{path}.attrs", memo)
    elif isinstance(a, pd.Series):
        tm.assert_series_equal(a, b, check_exact=True, check_freq=True, check_flags=True, obj=path)
        _same_index(a.index, b.index, f"{path}.index")
        if a.dtype == object:
            _same_objects(a, b, path)
        assert_pandas_equal(a.attrs, b.attrs, f"{path}.attrs", memo)
    elif isinstance(a, pd.Index):
        _same_index(a, b, path)
    elif isinstance(a, pd.api.extensions.ExtensionArray):
        tm.assert_extension_array_equal(a, b, check_dtype=True, check_exact=True)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_pandas_equal(x, y, f"{path}[{i}]", memo)
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} became {list(b)}"
        for k in a:
            assert_pandas_equal(a[k], b[k], f"{path}[{k!r}]", memo)
    else:
        _same_scalar(a, b, path)


# -- samples ---------------------------------------------------------------------------------------

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def numeric_frame(rows: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.standard_normal(rows),
            "n": rng.integers(-5, 5, rows),
            "small": rng.integers(0, 9, rows).astype(np.int8),
            "f4": rng.standard_normal(rows).astype(np.float32),
            "flag": rng.random(rows) > 0.5,
        }
    )


def mixed_frame() -> pd.DataFrame:
    n = 6
    df = pd.DataFrame(
        {
            "float": [0.5, np.nan, -0.0, 1e300, 2.0, 3.0],
            "str": ["a", None, "é", "", "long text", "z"],
            "string": pd.array(["x", None, "y", "z", "w", "v"], dtype="string"),
            "objects": np.array([1, "x", None, 2.5, pd.NA, (1, 2)], dtype=object),
            "cat": pd.Categorical(["b", "a", None, "b", "c", "a"], categories=["c", "b", "a"]),
            "ordered": pd.Categorical([3, 1, 2, 3, 1, 2], ordered=True),
            "Int8": pd.array([1, None, -128, 127, 0, 5], dtype="Int8"),
            "UInt64": pd.array([2**64 - 1, None, 0, 1, 2, 3], dtype="UInt64"),
            "Float32": pd.array([1.5, None, -2.0, 0.0, 3.25, 1.0], dtype="Float32"),
            "boolean": pd.array([True, None, False, True, None, False], dtype="boolean"),
            "naive": pd.date_range("2024-03-30", periods=n, freq="7h", unit="s"),
            "paris": pd.date_range("2024-03-30 22:00", periods=n, freq="h", tz=PARIS),
            "utc": pd.date_range("2024-01-01", periods=n, tz="UTC", unit="ns"),
            "offset": pd.date_range("2024", periods=n, tz=dt.timezone(dt.timedelta(hours=-3))),
            "td": pd.to_timedelta([1, None, 3, 4, 5, 6], unit="ms"),
            "period": pd.period_range("2023-11", periods=n, freq="M"),
            "interval": pd.arrays.IntervalArray.from_breaks(
                np.linspace(0, 1, n + 1), closed="left"
            ),
            "sparse": pd.arrays.SparseArray([0, 0, 3, 0, 1, 0]),
            "sparse_nan": pd.arrays.SparseArray([np.nan, 1.5, np.nan, np.nan, 2.0, np.nan]),
        },
        index=pd.date_range("2020-01-01", periods=n, freq="D", name="day"),
    )
    df.attrs = {"source": "sensor", "version": 2, "weights": [1.0, 2.0]}
    return df


def labelled_frames() -> list[pd.DataFrame]:
    dup = pd.DataFrame(np.arange(12.0).reshape(3, 4), columns=["a", "a", 1, None])
    multi = pd.DataFrame(
        np.arange(24).reshape(4, 6),
        columns=pd.MultiIndex.from_product([["x", "y"], [1, 2, 3]], names=["letter", None]),
        index=pd.Index(["r1", "r2", "r3", "r4"], name="row"),
    )
    strict = pd.DataFrame({"a": [1, 2]}, index=["p", "q"]).set_flags(allows_duplicate_labels=False)
    empty = pd.DataFrame({"i": pd.Series([], dtype="int64"), "s": pd.Series([], dtype="str")})
    return [dup, multi, strict, empty, pd.DataFrame(), pd.DataFrame(index=pd.RangeIndex(3, 9, 2))]


def series() -> list[pd.Series]:
    return [
        pd.Series(np.arange(5000, dtype=np.float64), name="big"),
        pd.Series(
            ["a", "b"], index=pd.Index([("t", 1), ("u", 2)], tupleize_cols=False), name=("x", 1)
        ),
        pd.Series(pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True)),
        pd.Series([1, None], dtype="Float64", index=pd.CategoricalIndex(["p", "q"]), name=7),
        pd.Series(
            np.arange(6),
            index=pd.MultiIndex.from_arrays(
                [["a", "a", "b", None, "b", "a"], pd.date_range("2024", periods=6)],
                names=["k", "t"],
            ),
        ),
    ]


def indexes() -> list[pd.Index]:
    return [
        pd.RangeIndex(10, -5, -3, name="r"),
        pd.Index(np.array([3, 1, 2], dtype=np.int32)),
        pd.Index([1.5, np.nan, -0.0], name="f"),
        pd.Index([True, False]),
        pd.Index(["a", None, "c"]),
        pd.Index([1, "a", None, 2.5], dtype=object),
        pd.Index(np.array(["a", "b"], dtype=object), dtype=object),
        pd.date_range("2024-10-26", periods=4, freq="D", tz=PARIS, name="when"),
        pd.date_range("2024", periods=3, freq="ME"),
        pd.DatetimeIndex(["2024-01-01", None]).as_unit("ms"),
        pd.timedelta_range("1h", periods=3, freq="30min"),
        pd.period_range("2024Q1", periods=3, freq="Q"),
        pd.CategoricalIndex(["b", "a", "b"], categories=["b", "a"], ordered=True, name="c"),
        pd.IntervalIndex.from_breaks([0, 1, 5], closed="both"),
        pd.Index(pd.array([1, None], dtype="Int16")),
        pd.MultiIndex.from_tuples([("a", 1), ("b", 2), (None, 2)], names=["s", "n"]),
    ]


def extension_arrays() -> list[Any]:
    return [
        pd.Categorical(["x", None, "y"]),
        pd.Categorical.from_codes(np.arange(300) % 200, categories=[f"c{i}" for i in range(200)]),
        pd.array([1, None], dtype="Int64"),
        pd.array([7, None], dtype="UInt8"),
        pd.array([0.5, None], dtype="Float64"),
        pd.array([True, None], dtype="boolean"),
        pd.array(["a", None], dtype=pd.StringDtype("python", na_value=np.nan)),
        pd.array(["a", None, "\x00", "\ud800"], dtype=pd.StringDtype("python")),
        pd.array([f"s{i}" if i % 3 else None for i in range(200)], dtype="string"),
        pd.array(pd.date_range("2024", periods=3, tz="Asia/Tokyo")),
        pd.array(pd.to_timedelta([1, 2], unit="s")),
        pd.array(pd.period_range("2024-01-01", periods=2, freq="h")),
        pd.arrays.IntervalArray([pd.Interval(0, 1), np.nan, pd.Interval(2, 3)]),
        pd.arrays.IntervalArray.from_breaks(pd.date_range("2024", periods=3, tz="UTC")),
        pd.arrays.SparseArray([0, 0, 2, 0], kind="block"),
        pd.arrays.SparseArray([True, False, False], fill_value=False),
    ]


def scalars() -> list[Any]:
    return [
        pd.Timestamp("2024-03-31 02:30:00.123456789"),
        pd.Timestamp("2024-10-27 03:30", tz=PARIS).as_unit("s"),
        pd.Timestamp("1677-09-21", tz="UTC").as_unit("ms"),
        pd.Timedelta("-1 days 00:00:00.000001"),
        pd.Timedelta(5, unit="s").as_unit("s"),
        pd.Period("2024-02", freq="M"),
        pd.Period("2024-02-29 13:00", freq="h"),
        pd.Interval(0.5, 2.0, closed="neither"),
        pd.Interval(pd.Timestamp("2024"), pd.Timestamp("2025")),
        pd.NA,
        pd.NaT,
    ]


def shared() -> dict[str, Any]:
    idx = pd.Index(["a", "b", "c"], name="k")
    s = pd.Series([1.0, 2.0, 3.0], index=idx)
    cat = pd.Categorical(["u", "v", "u"])
    df = pd.DataFrame({"s": s, "c": cat}, index=idx)
    return {"index": idx, "series": s, "again": s, "frame": df, "frames": [df, df], "cat": cat}


class TestPandas(HandlerConformance):
    library = ("pandas",)
    samples: ClassVar[dict[str, Callable[[], Any]]] = {
        "numeric_frame": numeric_frame,
        "mixed_frame": mixed_frame,
        "labelled_frames": labelled_frames,
        "series": series,
        "indexes": indexes,
        "extension_arrays": extension_arrays,
        "scalars": scalars,
        "shared": shared,
    }

    def assert_equal(self, expected: Any, got: Any) -> None:
        assert_pandas_equal(expected, got)


# -- behaviour -------------------------------------------------------------------------------------


def test_the_file_holds_no_pandas_internals() -> None:
    header = split(modelsafe.dumps([mixed_frame(), *indexes(), *extension_arrays()])).header
    text = json.dumps(header["root"])
    for internal in ("pandas.core", "pandas._libs", "_mgr", "Block", "__pyx", '"obj"', '"call"'):
        assert internal not in text
    assert all(
        t.startswith(("pandas.", "numpy.", "builtins.", "datetime.", "zoneinfo."))
        for t in header["types"]
    )


def test_numeric_columns_are_views_on_the_file(tmp_path: Path) -> None:
    path = tmp_path / "df.msafe"
    modelsafe.save(numeric_frame(5000), path, fsync=False)
    df = modelsafe.load(path, mmap="r")
    for name in ("x", "n", "flag"):
        values = df[name].to_numpy()
        assert not values.flags.writeable and not values.flags.owndata, name
    writable = modelsafe.load(path)  # the default copy-on-write map
    writable.iloc[0, 0] = 99.0
    assert modelsafe.load(path, mmap="r").iloc[0, 0] != 99.0


def test_the_generic_reduce_path_stays_untrusted() -> None:
    """A DataFrame spelled with pickle's names (what skops or pickle would store) is refused."""
    blob = modelsafe.dumps(numeric_frame(3))

    def as_reduce(header: dict[str, Any]) -> None:
        header["root"] = {"$": "obj", "module": "pandas.core.frame", "name": "DataFrame"}
        header["types"] = ["pandas.core.frame.DataFrame"]
        header["buffers"], header["data_size"] = [], 0
        header.pop("arrays", None)

    with pytest.raises(UntrustedTypesError) as info:
        modelsafe.loads(rewrite(blob, as_reduce, data=b""))
    assert info.value.types == ["pandas.core.frame.DataFrame"]


def test_a_big_endian_column_loads_in_native_order() -> None:
    """A file from a big-endian writer: same bytes, other byte order, native once loaded."""
    df = numeric_frame(5000)
    blob = modelsafe.dumps(df)
    big = _edit(blob, lambda r: r["data"][0].update(dtype=">f8"))
    got = modelsafe.loads(big)
    assert got["x"].dtype == np.dtype("float64")
    np.testing.assert_array_equal(got["x"].to_numpy(), df["x"].to_numpy().byteswap())


def test_pyarrow_strings_round_trip() -> None:
    """pandas' default str dtype is pyarrow-backed wherever pyarrow is installed."""
    pytest.importorskip("pyarrow")
    df = pd.DataFrame(
        {
            "s": pd.array(["a", None, "b"] * 40, dtype=pd.StringDtype("pyarrow", na_value=np.nan)),
            "t": pd.array(["x", None, "y"] * 40, dtype="string[pyarrow]"),
        }
    )
    blob = modelsafe.dumps(df)
    assert modelsafe.untrusted_types(blob) == []
    assert_pandas_equal(df, modelsafe.loads(blob))


def test_unsupported_time_zone_is_refused_at_save() -> None:
    class Zone(dt.tzinfo):
        def utcoffset(self, when: Any) -> dt.timedelta:
            return dt.timedelta(hours=1)

        def dst(self, when: Any) -> dt.timedelta:
            return dt.timedelta(0)

    with pytest.raises(modelsafe.UnsupportedTypeError, match="time zone"):
        modelsafe.dumps(pd.Series(pd.date_range("2024", periods=2, tz=Zone())))


@pytest.mark.parametrize(
    ("key", "message"),
    [("../../../etc/passwd", "not an IANA zone name"), ("Europe/Nowhere", "ZoneInfoNotFoundError")],
)
def test_time_zone_keys_are_checked(key: str, message: str) -> None:
    blob = modelsafe.dumps(pd.Series(pd.date_range("2024", periods=2, tz=PARIS)))
    bad = rewrite(blob, lambda h: h["root"]["v"].update(tz=key))
    with pytest.raises(FormatError, match=message):
        modelsafe.loads(bad)


# -- hypothesis: frames of mixed dtypes --------------------------------------------------

_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
_texts = st.text(max_size=5)


def _column(kind: str, rows: int) -> st.SearchStrategy[Any]:
    def many(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
        return st.lists(elements, min_size=rows, max_size=rows)

    maybe = st.none
    if kind == "float64":
        return many(_floats).map(lambda v: np.array(v, dtype=np.float64))
    if kind == "int8":
        return many(st.integers(-128, 127)).map(lambda v: np.array(v, dtype=np.int8))
    if kind == "uint64":
        return many(st.integers(0, 2**64 - 1)).map(lambda v: np.array(v, dtype=np.uint64))
    if kind == "bool":
        return many(st.booleans()).map(lambda v: np.array(v, dtype=bool))
    if kind in ("Int32", "Float64", "boolean"):
        inner = {
            "Int32": st.integers(-(2**31), 2**31 - 1),
            "Float64": st.floats(allow_nan=False),
            "boolean": st.booleans(),
        }[kind]
        return many(inner | maybe()).map(lambda v: pd.array(v, dtype=kind))
    if kind in ("str", "string"):
        return many(_texts | maybe()).map(lambda v: pd.array(v, dtype=kind))
    if kind == "category":
        return many(st.sampled_from(["a", "b", "c"]) | maybe()).map(pd.Categorical)
    if kind == "datetime":
        stamps = st.integers(-(2**40), 2**40)
        return st.tuples(many(stamps), st.sampled_from([None, "UTC", "America/New_York"])).map(
            lambda p: _zoned(np.array(p[0], dtype="M8[s]"), p[1])
        )
    if kind == "timedelta":
        return many(st.integers(-(2**40), 2**40)).map(lambda v: np.array(v, dtype="m8[ms]"))
    if kind == "period":
        return many(st.integers(-1000, 1000)).map(
            lambda v: pd.arrays.PeriodArray(np.array(v, dtype=np.int64), dtype=pd.PeriodDtype("D"))
        )
    assert kind == "object"
    atoms = st.one_of(
        st.none(), st.integers(-10, 10), _floats, _texts, st.just(pd.NA), st.just(pd.NaT)
    )
    return many(atoms).map(lambda v: np.array(v, dtype=object))


def _zoned(values: np.ndarray, tz: str | None) -> Any:
    dates = pd.array(values)
    return dates if tz is None else dates.tz_localize("UTC").tz_convert(tz)


_KINDS = (
    "float64", "int8", "uint64", "bool", "Int32", "Float64", "boolean", "str", "string",
    "category", "datetime", "timedelta", "period", "object",
)  # fmt: skip


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(0, 8))
    kinds = draw(st.lists(st.sampled_from(_KINDS), max_size=6))
    names = draw(
        st.lists(
            st.sampled_from(["a", "b", 0, 1.5, None]), min_size=len(kinds), max_size=len(kinds)
        )
    )
    columns = [draw(_column(k, rows)) for k in kinds]
    index_kind = draw(st.sampled_from(["range", "int", "str", "dates", "multi"]))
    if index_kind == "range":
        index: pd.Index = pd.RangeIndex(rows)
    elif index_kind == "int":
        index = pd.Index(
            draw(st.lists(st.integers(-5, 5), min_size=rows, max_size=rows)), dtype="int64"
        )
    elif index_kind == "str":
        index = pd.Index(draw(st.lists(_texts, min_size=rows, max_size=rows)), name="s")
    elif index_kind == "dates":
        index = pd.date_range("2024-01-01", periods=rows, freq="D", tz="UTC")
    else:
        index = pd.MultiIndex.from_arrays([np.arange(rows) % 2, [f"r{i}" for i in range(rows)]])
    df = pd.DataFrame({i: c for i, c in enumerate(columns)}, index=index)
    df.columns = pd.Index(names, dtype=object)
    return df


@settings(max_examples=150, deadline=None)
@given(frames())
def test_generated_frames_round_trip(df: pd.DataFrame) -> None:
    assert_pandas_equal(df, modelsafe.loads(modelsafe.dumps(df)))


# -- crafted files: broken invariants end in FormatError, in a child that must not crash --


def _find(node: Any, want: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Every tagged node of the tree, depth first, for which ``want`` holds."""
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        x = stack.pop()
        if type(x) is list:
            stack.extend(reversed(x))
        elif type(x) is dict:
            if "$" in x and want(x):
                found.append(x)
            stack.extend(reversed(list(x.values())))
    return found


def _tag(tag: str) -> Callable[[dict[str, Any]], bool]:
    return lambda x: x.get("$") == tag


def _edit(blob: bytes, fn: Callable[[dict[str, Any]], Any]) -> bytes:
    """Edit the tree of ``blob`` in place (what ``fn`` returns is ignored)."""

    def edit(header: dict[str, Any]) -> None:
        fn(header["root"])

    return rewrite(blob, edit)


def _patch(
    blob: bytes, pick: Callable[[dict[str, Any]], dict[str, Any]], put: Callable[[np.ndarray], None]
) -> bytes:
    """Change the values of an array that has a buffer of its own, digests made right again."""
    parts = split(blob)
    node = pick(parts.header["root"])
    start, size = parts.header["buffers"][node["buf"]][:2]
    data = bytearray(parts.data)
    values = np.frombuffer(
        data, dtype=node["dtype"], count=size // np.dtype(node["dtype"]).itemsize, offset=start
    )
    put(values)
    return rewrite(blob, data=bytes(data), fix_digests=True)


ROWS = 5000  # arrays above 4096 bytes get a buffer of their own


def _categorical() -> pd.Series:
    return pd.Series(pd.Categorical(np.array(["a", "b", "c", None] * (ROWS // 4), dtype=object)))


def _multi() -> pd.Series:
    mi = pd.MultiIndex.from_arrays(
        [
            np.array(["a", "b"] * (ROWS // 2), dtype=object),
            np.array(["x", "y", "z", "w", "v"] * (ROWS // 5), dtype=object),
        ]
    )
    return pd.Series(np.zeros(ROWS), index=mi)


def _codes(root: dict[str, Any], level: int) -> dict[str, Any]:
    return _find(root, _tag("pd.multi"))[0]["codes"][level]


def _str_values(node: dict[str, Any]) -> list[Any]:
    return _find(node, _tag("pd.strings"))[0]["v"]


def _cases() -> dict[str, tuple[bytes, str]]:
    """name -> (file, what the error must say)."""
    cat = modelsafe.dumps(_categorical())
    multi = modelsafe.dumps(_multi())
    frame = modelsafe.dumps(pd.DataFrame({"a": np.arange(ROWS), "b": np.arange(ROWS) * 0.5}))
    masked = modelsafe.dumps(pd.Series(pd.array(np.arange(ROWS), dtype="Int64")))
    sparse = modelsafe.dumps(pd.arrays.SparseArray(np.repeat([0, 1], ROWS)))
    series = modelsafe.dumps(pd.Series(np.arange(ROWS, dtype=np.float64)))
    dated = modelsafe.dumps(pd.Series(0, index=pd.date_range("2024", periods=ROWS, freq="D")))
    zoned = modelsafe.dumps(pd.Series(pd.date_range("2024", periods=ROWS, freq="h", tz=PARIS)))

    def set_codes(codes: list[int], value: int) -> Callable[[np.ndarray], None]:
        def put(v: np.ndarray) -> None:
            v[codes] = value

        return put

    def cat_codes(r: dict[str, Any]) -> dict[str, Any]:
        return _find(r, _tag("pd.categorical"))[0]["codes"]

    def narrow(node: dict[str, Any], dtype: str, shape: int) -> None:
        node.update(dtype=dtype, shape=[shape])

    def indices(r: dict[str, Any]) -> dict[str, Any]:
        return _find(r, _tag("pd.sparse"))[0]["indices"]

    def masked_node(r: dict[str, Any]) -> dict[str, Any]:
        return _find(r, _tag("pd.masked"))[0]

    return {
        "categorical codes above the categories": (
            _edit(cat, lambda r: _str_values(r).pop()),
            "invalid pandas.Categorical: codes[2] = 2 is outside [-1, 2)",
        ),
        "categorical codes below -1": (
            _patch(cat, cat_codes, set_codes([7, 9], -5)),
            "invalid pandas.Categorical: codes[7] = -5 is outside [-1, 3)",
        ),
        "categorical codes of an unsigned dtype": (
            _edit(cat, lambda r: cat_codes(r).update(dtype="|u1")),
            "invalid pandas.Categorical: codes must be a signed integer array, not uint8",
        ),
        "categorical with duplicate categories": (
            _edit(cat, lambda r: _str_values(r).__setitem__(1, "a")),
            "invalid pandas.Categorical: ValueError: Categorical categories must be unique",
        ),
        "multiindex codes above the level": (
            _edit(multi, lambda r: _str_values(_find(r, _tag("pd.multi"))[0]["levels"][1]).pop()),
            "invalid pandas.MultiIndex: codes[1][2] = 4 is outside [-1, 4)",
        ),
        "multiindex codes below -1": (
            _patch(multi, lambda r: _codes(r, 0), set_codes([11], -2)),
            "invalid pandas.MultiIndex: codes[0][11] = -2 is outside [-1, 2)",
        ),
        "multiindex codes of different lengths": (
            _edit(multi, lambda r: narrow(_codes(r, 1), "<i2", ROWS // 2)),
            f"invalid pandas.MultiIndex: codes[1] has {ROWS // 2} entries, codes[0] has {ROWS}",
        ),
        "multiindex level with duplicates": (
            _edit(
                multi,
                lambda r: _str_values(_find(r, _tag("pd.multi"))[0]["levels"][0]).__setitem__(
                    1, "a"
                ),
            ),
            "invalid pandas.MultiIndex: levels[0] holds duplicate values",
        ),
        "frame column longer than the index": (
            _edit(frame, lambda r: r["index"].update(stop=ROWS - 1)),
            f"invalid pandas.DataFrame: column 0 has {ROWS} values, the index has {ROWS - 1}",
        ),
        "frame with more labels than columns": (
            _edit(frame, lambda r: _str_values(r["columns"]).append("c")),
            "invalid pandas.DataFrame: 3 column labels for 2 columns",
        ),
        "string labels that are not strings": (
            _edit(frame, lambda r: _str_values(r["columns"]).__setitem__(0, 5)),
            "invalid pandas.arrays.StringArray: values must be strings or null, found int",
        ),
        "frame refusing duplicate labels it has": (
            _edit(
                frame,
                lambda r: (_str_values(r["columns"]).__setitem__(1, "a"), r.update(dups=False)),
            ),
            "invalid pandas.DataFrame: DuplicateLabelError",
        ),
        "series longer than its index": (
            _edit(series, lambda r: r["index"].update(start=1)),
            f"invalid pandas.Series: {ROWS} values, the index has {ROWS - 1}",
        ),
        "mask shorter than the data": (
            _edit(
                masked,
                lambda r: (
                    masked_node(r).update(dtype="Int32"),
                    narrow(masked_node(r)["data"], "<i4", 2 * ROWS),
                ),
            ),
            f"invalid pandas.arrays.IntegerArray: mask has {ROWS} entries for {2 * ROWS} values",
        ),
        "masked data of the wrong dtype": (
            _edit(masked, lambda r: masked_node(r)["data"].update(dtype="<f8")),
            "invalid pandas.arrays.IntegerArray: Int64 data must be a int64 array, not float64",
        ),
        "mask that is not boolean": (
            _edit(masked, lambda r: masked_node(r)["mask"].update(dtype="|i1")),
            "invalid pandas.arrays.IntegerArray: mask must be a bool array, not int8",
        ),
        "sparse index past the length": (
            _edit(sparse, lambda r: r.update(length=ROWS + 10)),
            f"invalid pandas.arrays.SparseArray: indices[10] = {ROWS + 10} "
            f"is outside [0, {ROWS + 10})",
        ),
        "sparse indices out of order": (
            _patch(sparse, indices, lambda v: v.__setitem__(slice(3, 5), [v[4], v[3]])),
            "invalid pandas.arrays.SparseArray: indices are not strictly increasing at indices[4]",
        ),
        "sparse index negative": (
            _patch(sparse, indices, set_codes([0], -3)),
            f"invalid pandas.arrays.SparseArray: indices[0] = -3 is outside [0, {2 * ROWS})",
        ),
        "index frequency the dates do not follow": (
            _edit(dated, lambda r: r["index"].update(freq="2D")),
            "invalid pandas.Index: ValueError: Inferred frequency D from passed values "
            "does not conform",
        ),
        "zoned datetimes in days": (
            _edit(zoned, lambda r: r["v"]["v"].update(dtype="<M8[D]")),
            "invalid pandas.arrays.DatetimeArray: unit datetime64[D] is not one of s, ms, us, ns",
        ),
        "zoned datetimes that are numbers": (
            _edit(zoned, lambda r: r["v"]["v"].update(dtype="<i8")),
            "invalid pandas.arrays.DatetimeArray: values must be a datetime64 array, not int64",
        ),
    }


def test_crafted_states_are_format_errors_in_a_child(tmp_path: Path) -> None:
    cases = _cases()
    controls = {
        "control categorical": modelsafe.dumps(_categorical()),
        "control multiindex": modelsafe.dumps(_multi()),
    }
    results = run_limited({**{k: v[0] for k, v in cases.items()}, **controls}, tmp_path)
    for name in controls:
        assert results[name]["error"] is None, (name, results[name])
    wrong = {}
    for name, (_blob, want) in cases.items():
        got = results[name]
        if got["error"] != "FormatError" or not got["modelsafe"] or want not in got["message"]:
            wrong[name] = got
    assert not wrong, json.dumps(wrong, indent=1)


def test_controls_load_identically() -> None:
    for make in (_categorical, _multi):
        x = make()
        assert_pandas_equal(x, modelsafe.loads(modelsafe.dumps(x)))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["index"].update(step=0), "RangeIndex step must not be 0"),
        (lambda r: r["index"].update(stop=2**63), "must be an integer in"),
        (lambda r: r.update(dups=True), "'dups' is only ever false"),
        (lambda r: r["data"][0].update({"$": "pd.range"}), "data[0] must be an array node"),
        (lambda r: r.update(index={"$": "nd", "t": 0}), "must be an index node"),
        (lambda r: r.update(extra=1), "unexpected member"),
    ],
    ids=["step 0", "stop past int64", "dups true", "range as column", "array as index", "extra"],
)
def test_malformed_nodes_are_refused_by_the_audit(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    blob = modelsafe.dumps(pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(FormatError, match=message.replace("[", r"\[")):
        modelsafe.loads(_edit(blob, edit))
