"""Extension arrays: categorical, nullable numbers and booleans, strings, datetimes with a
time zone, timedeltas, periods, intervals and sparse arrays (docs/handlers/pandas.md).

Each is stored through public pandas API as the numpy arrays that define it (codes,
values and mask, int64 instants or ordinals, ...), never as pandas' own attributes, and
rebuilt through public constructors once its invariants are checked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import Tag
from ._common import (
    CLOSED,
    COLUMN_TAGS,
    INDEX_TAGS,
    NODE,
    TIME_UNITS,
    audit_tz,
    build_tz,
    check_codes,
    column,
    constructing,
    enc_tz,
    index_child,
    int_array,
    invalid,
    need_choice,
    need_freq,
    need_int,
    sub,
    unsupported,
    visit_child,
    visit_value,
)

# Nullable dtypes: pandas name -> (array class in pandas.arrays, numpy data dtype).
MASKED = {
    **{f"Int{8 * n}": ("IntegerArray", np.dtype(f"i{n}")) for n in (1, 2, 4, 8)},
    **{f"UInt{8 * n}": ("IntegerArray", np.dtype(f"u{n}")) for n in (1, 2, 4, 8)},
    "Float32": ("FloatingArray", np.dtype("f4")),
    "Float64": ("FloatingArray", np.dtype("f8")),
    "boolean": ("BooleanArray", np.dtype("?")),
}
_NA = ("nan", "NA")


def enc_values(e: Any, values: Any) -> Any:
    """The node of a column's values: numpy-backed ones as a plain ``nd`` array (a zero-copy
    buffer), extension arrays as their own node."""
    if not isinstance(values, np.ndarray):
        import pandas as pd

        if type(values) is pd.arrays.NumpyExtensionArray or isinstance(values.dtype, np.dtype):
            values = np.asarray(values)  # and naive datetimes and timedeltas: their ndarray
    return e.enc(values)


def _finish(e: Any, obj: Any, node: dict[str, Any], name: str) -> dict[str, Any]:
    e.types.add(name)
    e.remember(obj, node)
    return node


# -- categorical -------------------------------------------------------------------------------


def enc_categorical(e: Any, cat: Any) -> Any:
    seen = e.seen(cat)
    if seen is not None:
        return seen
    node = {
        "$": "pd.categorical",
        "categories": sub(e, cat.categories, ".categories"),
        "codes": e.enc(np.asarray(cat.codes)),
        "ordered": bool(cat.ordered),
    }
    return _finish(e, cat, node, "pandas.Categorical")


def _audit_categorical(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("categories", "codes", "ordered"), ("id",))
    visit_child(a, node, "categories", INDEX_TAGS, "an index node")
    visit_child(a, node, "codes", frozenset({"nd", "ref"}), "an array node")
    if type(node["ordered"]) is not bool:
        a.fail("'ordered' must be true or false")
    a.need("pandas.Categorical", NODE)
    a.define_late(node)


def _build_categorical(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    name = "pandas.Categorical"
    categories = index_child(b, node["categories"], name, "categories")
    codes = int_array(b, node["codes"], name, "codes")
    check_codes(b, name, "codes", codes, len(categories))
    with constructing(b, name):
        dtype = pd.CategoricalDtype(categories, ordered=node["ordered"])  # unique, no NaN
        cat = pd.Categorical.from_codes(codes, dtype=dtype)
    b.register(node, cat)
    return cat


# -- nullable numbers and booleans ------------------------------------------------------------


def enc_masked(e: Any, arr: Any) -> Any:
    seen = e.seen(arr)
    if seen is not None:
        return seen
    kind = arr.dtype.name
    if kind not in MASKED:
        unsupported(f"pandas dtype {kind} is not supported")
    cls, np_dtype = MASKED[kind]
    # Public API only: missing entries read as zero in ``data``, true in ``mask``.
    mask = np.asarray(arr.isna(), dtype=bool)
    data = arr.to_numpy(dtype=np_dtype, na_value=np_dtype.type(0))
    node = {"$": "pd.masked", "dtype": kind, "data": e.enc(data), "mask": e.enc(mask)}
    return _finish(e, arr, node, f"pandas.arrays.{cls}")


def _audit_masked(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("dtype", "data", "mask"), ("id",))
    kind = need_choice(a, node, "dtype", tuple(MASKED))
    visit_child(a, node, "data", frozenset({"nd", "ref"}), "an array node")
    visit_child(a, node, "mask", frozenset({"nd", "ref"}), "an array node")
    a.need(f"pandas.arrays.{MASKED[kind][0]}", NODE)
    a.define_late(node)


def _build_masked(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    cls, want = MASKED[node["dtype"]]
    name = f"pandas.arrays.{cls}"
    data = column(b, node["data"], name, "data")
    mask = column(b, node["mask"], name, "mask")
    if not isinstance(data, np.ndarray) or data.dtype != want:
        invalid(b, name, f"{node['dtype']} data must be a {want} array, not {data.dtype}")
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        invalid(b, name, f"mask must be a bool array, not {mask.dtype}")
    if mask.shape != data.shape:
        invalid(b, name, f"mask has {len(mask)} entries for {len(data)} values")
    with constructing(b, name):
        arr = getattr(pd.arrays, cls)(data, mask, copy=False)
    b.register(node, arr)
    return arr


# -- strings -----------------------------------------------------------------------------------


_STORAGE = {"python": "StringArray", "pyarrow": "ArrowStringArray"}


def enc_strings(e: Any, arr: Any) -> Any:
    seen = e.seen(arr)
    if seen is not None:
        return seen
    dtype = arr.dtype
    if dtype.storage not in _STORAGE:
        unsupported(f"string storage {dtype.storage!r} is not supported")
    na = "NA" if dtype.na_value is _pd_na() else "nan"
    # Missing entries as null: a long list becomes packed UTF-8 text, not JSON strings.
    values = arr.to_numpy(dtype=object, na_value=None).tolist()
    node = {"$": "pd.strings", "na": na, "v": e.enc(values)}
    if dtype.storage != "python":
        node["storage"] = dtype.storage
    return _finish(e, arr, node, f"pandas.arrays.{_STORAGE[dtype.storage]}")


def _pd_na() -> Any:
    import pandas as pd

    return pd.NA


def _audit_strings(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("na", "v"), ("storage", "id"))
    need_choice(a, node, "na", _NA)
    storage = need_choice(a, node, "storage", ("pyarrow",)) if "storage" in node else "python"
    v = node["v"]
    if type(v) is not list and not (type(v) is dict and v.get("$") in ("scalars", "list", "ref")):
        a.fail("'v' must be a list of strings and nulls")
    visit_value(a, node, "v")
    a.need(f"pandas.arrays.{_STORAGE[storage]}", NODE)
    a.define_late(node)


def _only_strings(b: Any, packed: Any, values: list[Any]) -> bool:
    """Whether every value is a str or None; for a packed list, read from its kind codes
    (a million strings: 1 ms instead of 40)."""
    if type(packed) is dict and packed.get("$") == "scalars":
        if "codes" not in packed:
            return bool(packed.get("kind") == "str")
        codes = np.frombuffer(b.buffer(packed["codes"]), dtype=np.uint8)
        return bool(((codes == 0) | (codes == 5)).all())  # None or the next string
    return set(map(type, values)) <= {str, type(None)}


def _build_strings(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    storage = node.get("storage", "python")
    name = f"pandas.arrays.{_STORAGE[storage]}"
    values = b.build(node["v"])
    if type(values) is not list:
        invalid(b, name, f"values must be a list, not {type(values).__name__}")
    if not _only_strings(b, node["v"], values):
        kinds = set(map(type, values)) - {str, type(None)}
        found = ", ".join(sorted(k.__name__ for k in kinds))
        invalid(b, name, f"values must be strings or null, found {found}")
    na = pd.NA if node["na"] == "NA" else np.nan
    with constructing(b, name):  # "pyarrow" storage needs pyarrow installed
        arr = pd.array(values, dtype=pd.StringDtype(storage, na_value=na))
    b.register(node, arr)
    return arr


# -- datetimes and timedeltas -----------------------------------------------------------------


def enc_datetimes(e: Any, arr: Any) -> Any:
    seen = e.seen(arr)
    if seen is not None:
        return seen
    tz = arr.tz
    # UTC instants in the array's own unit; the zone only says how to show them.
    naive = arr if tz is None else arr.tz_convert(None)
    node: dict[str, Any] = {"$": "pd.datetimes", "v": e.enc(np.asarray(naive))}
    if tz is not None:
        node["tz"] = enc_tz(e, tz)
    return _finish(e, arr, node, "pandas.arrays.DatetimeArray")


def enc_timedeltas(e: Any, arr: Any) -> Any:
    seen = e.seen(arr)
    if seen is not None:
        return seen
    node = {"$": "pd.timedeltas", "v": e.enc(np.asarray(arr))}
    return _finish(e, arr, node, "pandas.arrays.TimedeltaArray")


def _audit_times(a: Any, node: dict[str, Any]) -> None:
    tag = node["$"]
    a.keys(node, ("v",), ("tz", "id") if tag == "pd.datetimes" else ("id",))
    visit_child(a, node, "v", frozenset({"nd", "ref"}), "an array node")
    if "tz" in node:
        audit_tz(a, node)
    cls = "DatetimeArray" if tag == "pd.datetimes" else "TimedeltaArray"
    a.need(f"pandas.arrays.{cls}", NODE)
    a.define_late(node)


def time_unit(b: Any, name: str, v: Any, kind: str) -> str:
    """The unit of a datetime64 (``kind`` "M") or timedelta64 ("m") array pandas can hold."""
    if not isinstance(v, np.ndarray) or v.dtype.kind != kind:
        want = "datetime64" if kind == "M" else "timedelta64"
        invalid(b, name, f"values must be a {want} array, not {v.dtype}")
    unit, count = np.datetime_data(v.dtype)
    if unit not in TIME_UNITS or count != 1:
        invalid(b, name, f"unit {v.dtype} is not one of {', '.join(TIME_UNITS)}")
    return str(unit)


def _build_times(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    dates = node["$"] == "pd.datetimes"
    name = "pandas.arrays.DatetimeArray" if dates else "pandas.arrays.TimedeltaArray"
    v = column(b, node["v"], name, "values")
    unit = time_unit(b, name, v, "M" if dates else "m")
    if "tz" in node:
        tz = build_tz(b, node, name)
        with constructing(b, name):
            # int64 instants with a zoned dtype: pandas reads them as UTC, without a copy.
            arr = pd.array(v.view("i8"), dtype=pd.DatetimeTZDtype(unit=unit, tz=tz), copy=False)
    else:
        with constructing(b, name):
            arr = pd.array(v, copy=False)
    b.register(node, arr)
    return arr


# -- periods ------------------------------------------------------------------------------------


def enc_periods(e: Any, arr: Any) -> Any:
    import pandas as pd

    seen = e.seen(arr)
    if seen is not None:
        return seen
    freq = arr.freqstr
    if pd.PeriodDtype(freq) != arr.dtype:
        unsupported(f"the period frequency {arr.dtype} has no alias that reads back")
    node = {"$": "pd.periods", "freq": freq, "v": e.enc(np.asarray(arr.asi8))}
    return _finish(e, arr, node, "pandas.arrays.PeriodArray")


def _audit_periods(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("freq", "v"), ("id",))
    need_freq(a, node)
    visit_child(a, node, "v", frozenset({"nd", "ref"}), "an array node")
    a.need("pandas.arrays.PeriodArray", NODE)
    a.define_late(node)


def _build_periods(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    name = "pandas.arrays.PeriodArray"
    ordinals = column(b, node["v"], name, "ordinals")
    if not isinstance(ordinals, np.ndarray) or ordinals.dtype != np.int64:
        invalid(b, name, f"ordinals must be an int64 array, not {ordinals.dtype}")
    with constructing(b, name):
        arr = pd.arrays.PeriodArray(ordinals, dtype=pd.PeriodDtype(node["freq"]))
    b.register(node, arr)
    return arr


# -- intervals ----------------------------------------------------------------------------------


def enc_intervals(e: Any, arr: Any) -> Any:
    seen = e.seen(arr)
    if seen is not None:
        return seen
    node = {
        "$": "pd.intervals",
        "closed": arr.closed,
        "left": enc_values(e, arr.left.array),
        "right": enc_values(e, arr.right.array),
    }
    return _finish(e, arr, node, "pandas.arrays.IntervalArray")


def _audit_intervals(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("closed", "left", "right"), ("id",))
    need_choice(a, node, "closed", CLOSED)
    visit_child(a, node, "left", COLUMN_TAGS, "an array node")
    visit_child(a, node, "right", COLUMN_TAGS, "an array node")
    a.need("pandas.arrays.IntervalArray", NODE)
    a.define_late(node)


def _build_intervals(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    name = "pandas.arrays.IntervalArray"
    left = column(b, node["left"], name, "left")
    right = column(b, node["right"], name, "right")
    if len(left) != len(right):
        invalid(b, name, f"left has {len(left)} bounds, right has {len(right)}")
    with constructing(b, name):  # pandas checks left <= right and matching dtypes
        arr = pd.arrays.IntervalArray.from_arrays(left, right, closed=node["closed"])
    b.register(node, arr)
    return arr


# -- sparse -------------------------------------------------------------------------------------


def enc_sparse(e: Any, arr: Any) -> Any:
    seen = e.seen(arr)
    if seen is not None:
        return seen
    indices = np.asarray(arr.sp_index.to_int_index().indices)
    node = {
        "$": "pd.sparse",
        "length": len(arr),
        "kind": arr.kind,
        "fill": sub(e, arr.fill_value, ".fill_value"),
        "indices": e.enc(indices),
        "v": enc_values(e, arr.sp_values),
    }
    return _finish(e, arr, node, "pandas.arrays.SparseArray")


def _audit_sparse(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("length", "kind", "fill", "indices", "v"), ("id",))
    if need_int(a, node, "length", 0) >= 2**31:
        a.fail("a sparse array holds fewer than 2**31 values")
    need_choice(a, node, "kind", ("integer", "block"))
    visit_value(a, node, "fill")
    visit_child(a, node, "indices", frozenset({"nd", "ref"}), "an array node")
    visit_child(a, node, "v", frozenset({"nd", "ref"}), "an array node")
    a.need("pandas.arrays.SparseArray", NODE)
    a.define_late(node)


def _build_sparse(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    name = "pandas.arrays.SparseArray"
    length = node["length"]
    fill = b.build(node["fill"])
    indices = int_array(b, node["indices"], name, "indices")
    values = column(b, node["v"], name, "values")
    if len(values) != len(indices):
        invalid(b, name, f"{len(values)} values for {len(indices)} indices")
    if indices.size:
        outside = (indices < 0) | (indices >= length)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            invalid(b, name, f"indices[{i}] = {int(indices[i])} is outside [0, {length})")
        steps = np.diff(indices)
        if (steps <= 0).any():
            i = int(np.flatnonzero(steps <= 0)[0]) + 1
            invalid(b, name, f"indices are not strictly increasing at indices[{i}]")
    with constructing(b, name):
        arr = pd.arrays.SparseArray.from_indices(
            values,
            indices.astype(np.int32, copy=False),
            length,
            fill_value=fill,
            kind=node["kind"],
            dtype=values.dtype,
        )
    b.register(node, arr)
    return arr


TAGS = {
    "pd.categorical": Tag(_audit_categorical, _build_categorical),
    "pd.masked": Tag(_audit_masked, _build_masked),
    "pd.strings": Tag(_audit_strings, _build_strings),
    "pd.datetimes": Tag(_audit_times, _build_times),
    "pd.timedeltas": Tag(_audit_times, _build_times),
    "pd.periods": Tag(_audit_periods, _build_periods),
    "pd.intervals": Tag(_audit_intervals, _build_intervals),
    "pd.sparse": Tag(_audit_sparse, _build_sparse),
}
