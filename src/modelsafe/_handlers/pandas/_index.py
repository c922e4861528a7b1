"""Indexes: ``pd.index`` (any values, with a name and an optional frequency), ``pd.range``
(a RangeIndex: three integers, no data) and ``pd.multi`` (a MultiIndex: levels, codes and
names). See docs/handlers/pandas.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import Tag
from ._arrays import enc_values
from ._common import (
    COLUMN_TAGS,
    INDEX_TAGS,
    NODE,
    check_codes,
    column,
    constructing,
    freq_text,
    index_child,
    int_array,
    invalid,
    need_freq,
    need_int,
    sub,
    visit_child,
    visit_items,
    visit_value,
)

_CODES = frozenset({"nd", "ref"})


def enc_index(e: Any, idx: Any) -> Any:
    import pandas as pd

    seen = e.seen(idx)
    if seen is not None:
        return seen
    t = type(idx)
    node: dict[str, Any]
    if t is pd.RangeIndex:
        e.types.add("pandas.RangeIndex")
        node = {"$": "pd.range", "start": idx.start, "stop": idx.stop, "step": idx.step}
        node["name"] = sub(e, idx.name, ".name")
    elif t is pd.MultiIndex:
        e.types.add("pandas.MultiIndex")
        node = {
            "$": "pd.multi",
            "levels": [sub(e, lev, f".levels[{i}]") for i, lev in enumerate(idx.levels)],
            "codes": [e.enc(np.asarray(c)) for c in idx.codes],
            "names": [sub(e, n, f".names[{i}]") for i, n in enumerate(idx.names)],
        }
    else:
        e.types.add("pandas.Index")
        node = {"$": "pd.index", "v": enc_values(e, idx.array), "name": sub(e, idx.name, ".name")}
        # DatetimeIndex and TimedeltaIndex keep a frequency; a PeriodIndex's is its dtype's.
        freq = getattr(idx, "freq", None) if t is not pd.PeriodIndex else None
        if freq is not None:
            node["freq"] = freq_text(freq)
    e.remember(idx, node)
    return node


# -- pd.index ----------------------------------------------------------------------------------


def _audit_index(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("v", "name"), ("freq", "id"))
    visit_child(a, node, "v", COLUMN_TAGS, "an array node")
    visit_value(a, node, "name")
    if "freq" in node:
        need_freq(a, node)
    a.need("pandas.Index", NODE)
    a.define_late(node)


def _build_index(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    name = "pandas.Index"
    values = column(b, node["v"], name, "values")
    label = b.build(node["name"])
    freq = node.get("freq")
    kind = getattr(values.dtype, "kind", "")
    if freq is not None and kind not in ("M", "m"):
        invalid(b, name, f"only datetime and timedelta values have a frequency, not {values.dtype}")
    with constructing(b, name):
        if freq is not None:
            cls = pd.DatetimeIndex if kind == "M" else pd.TimedeltaIndex
            idx = cls(values, freq=freq, name=label, copy=False)  # pandas checks the values fit
        elif isinstance(values, np.ndarray):
            # The dtype as saved: pandas would otherwise infer str from objects, and a
            # MultiIndex from tuples.
            idx = pd.Index(values, dtype=values.dtype, name=label, copy=False, tupleize_cols=False)
        else:
            idx = pd.Index(values, name=label, copy=False)
    b.register(node, idx)
    return idx


# -- pd.range ----------------------------------------------------------------------------------


def _audit_range(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("start", "stop", "step", "name"), ("id",))
    need_int(a, node, "start")
    need_int(a, node, "stop")
    if need_int(a, node, "step") == 0:
        a.fail("RangeIndex step must not be 0")
    visit_value(a, node, "name")
    a.need("pandas.RangeIndex", NODE)
    a.define_late(node)


def _build_range(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    label = b.build(node["name"])
    with constructing(b, "pandas.RangeIndex"):
        idx = pd.RangeIndex(node["start"], node["stop"], node["step"], name=label)
        len(idx)  # a length past the index range is refused here, not on first use
    b.register(node, idx)
    return idx


# -- pd.multi ----------------------------------------------------------------------------------


def _audit_multi(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("levels", "codes", "names"), ("id",))
    n = visit_items(a, node, "levels", INDEX_TAGS - {"pd.multi"}, "an index node")
    if n == 0:
        a.fail("a MultiIndex has at least one level")
    if visit_items(a, node, "codes", _CODES, "an array node") != n:
        a.fail(f"a MultiIndex with {n} levels needs {n} code arrays")
    names = node["names"]
    if type(names) is not list or len(names) != n:
        a.fail(f"a MultiIndex with {n} levels needs {n} names")
    a.visit_all(names)
    a.need("pandas.MultiIndex", NODE)
    a.define_late(node)


def _build_multi(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    name = "pandas.MultiIndex"
    levels = [index_child(b, x, name, f"levels[{i}]") for i, x in enumerate(node["levels"])]
    codes = [int_array(b, x, name, f"codes[{i}]") for i, x in enumerate(node["codes"])]
    names = b.build(node["names"])
    for i, level in enumerate(levels):
        if isinstance(level, pd.MultiIndex):
            invalid(b, name, f"levels[{i}] is itself a MultiIndex")
        if len(codes[i]) != len(codes[0]):
            invalid(
                b, name, f"codes[{i}] has {len(codes[i])} entries, codes[0] has {len(codes[0])}"
            )
        check_codes(b, name, f"codes[{i}]", codes[i], len(level))
        if not level.is_unique:
            invalid(b, name, f"levels[{i}] holds duplicate values")
    with constructing(b, name):
        idx = pd.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=True)
    b.register(node, idx)
    return idx


TAGS = {
    "pd.index": Tag(_audit_index, _build_index),
    "pd.range": Tag(_audit_range, _build_range),
    "pd.multi": Tag(_audit_multi, _build_multi),
}
