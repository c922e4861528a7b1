"""DataFrame and Series: an index, column labels and one node per column (docs/handlers/pandas.md).

A frame is stored column by column through public API (``df.iloc[:, i].array``), never
as pandas' blocks, so files do not depend on pandas' internal layout; numeric columns are
plain ``nd`` arrays, each a zero-copy buffer, and pandas takes them without copying.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._graph.audit import _Fail
from ..._graph.encode import Unsupported
from .. import Tag
from ._arrays import enc_values
from ._common import (
    COLUMN_TAGS,
    INDEX_TAGS,
    NODE,
    column,
    constructing,
    index_child,
    invalid,
    sub,
    visit_child,
    visit_items,
    visit_value,
)

_ATTRS = frozenset({"dict", "ref"})


def _enc_extras(e: Any, obj: Any, node: dict[str, Any]) -> None:
    """What follows the id: ``attrs`` (may refer back to the object) and the flags."""
    e.remember(obj, node)
    if obj.attrs:
        node["attrs"] = sub(e, obj.attrs, ".attrs")
    if not obj.flags.allows_duplicate_labels:
        node["dups"] = False


def enc_frame(e: Any, df: Any) -> Any:
    seen = e.seen(df)
    if seen is not None:
        return seen
    e.types.add("pandas.DataFrame")
    node: dict[str, Any] = {
        "$": "pd.frame",
        "index": sub(e, df.index, ".index"),
        "columns": sub(e, df.columns, ".columns"),
    }
    data: list[Any] = []
    for i in range(df.shape[1]):
        try:
            data.append(enc_values(e, df.iloc[:, i].array))
        except Unsupported as exc:
            exc.segments.append(f".iloc[:, {i}]")
            raise
    node["data"] = data
    _enc_extras(e, df, node)
    return node


def enc_series(e: Any, s: Any) -> Any:
    seen = e.seen(s)
    if seen is not None:
        return seen
    e.types.add("pandas.Series")
    node: dict[str, Any] = {"$": "pd.series", "index": sub(e, s.index, ".index")}
    try:
        node["v"] = enc_values(e, s.array)
    except Unsupported as exc:
        exc.segments.append(".array")
        raise
    node["name"] = sub(e, s.name, ".name")
    _enc_extras(e, s, node)
    return node


# -- audit ---------------------------------------------------------------------------------------


def _audit_extras(a: Any, node: dict[str, Any]) -> None:
    a.define_early(node)  # after the data, before attrs, which may refer to the object
    if "attrs" in node:
        attrs = node["attrs"]
        if type(attrs) is not dict or attrs.get("$", "dict") not in _ATTRS:
            a.fail("'attrs' must be a dict")
        try:
            a.visit(attrs)
        except _Fail as exc:
            exc.segments.append(".attrs")
            raise
    if "dups" in node and node["dups"] is not False:
        a.fail("'dups' is only ever false (duplicate labels are allowed by default)")


def _audit_frame(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("index", "columns", "data"), ("attrs", "dups", "id"))
    visit_child(a, node, "index", INDEX_TAGS, "an index node")
    visit_child(a, node, "columns", INDEX_TAGS, "an index node")
    visit_items(a, node, "data", COLUMN_TAGS, "an array node")
    a.need("pandas.DataFrame", NODE)
    _audit_extras(a, node)


def _audit_series(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("index", "v", "name"), ("attrs", "dups", "id"))
    visit_child(a, node, "index", INDEX_TAGS, "an index node")
    visit_child(a, node, "v", COLUMN_TAGS, "an array node")
    visit_value(a, node, "name")
    a.need("pandas.Series", NODE)
    _audit_extras(a, node)


# -- build ---------------------------------------------------------------------------------------


def _is_objects(values: Any) -> bool:
    return isinstance(values, np.ndarray) and values.dtype.kind == "O"


def _build_extras(b: Any, node: dict[str, Any], obj: Any, name: str) -> Any:
    b.register(node, obj)
    if "attrs" in node:
        attrs = b.build(node["attrs"])
        if type(attrs) is not dict:
            invalid(b, name, f"attrs must be a dict, not {type(attrs).__name__}")
        obj.attrs = attrs
    if "dups" in node:
        with constructing(b, name):  # refused when a label is duplicated
            obj.flags.allows_duplicate_labels = False
    return obj


def _build_frame(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    name = "pandas.DataFrame"
    index = index_child(b, node["index"], name, "index")
    columns = index_child(b, node["columns"], name, "columns")
    arrays = [column(b, x, name, f"column {i}") for i, x in enumerate(node["data"])]
    if len(arrays) != len(columns):
        invalid(b, name, f"{len(columns)} column labels for {len(arrays)} columns")
    with constructing(b, name):
        rows = len(index)
    for i, values in enumerate(arrays):
        if len(values) != rows:
            invalid(b, name, f"column {i} has {len(values)} values, the index has {rows}")
    with constructing(b, name):
        data = {
            # Object columns go in as Series of dtype object: pandas would infer str.
            i: pd.Series(x, index=index, dtype=object, copy=False) if _is_objects(x) else x
            for i, x in enumerate(arrays)
        }
        df = pd.DataFrame(data, index=index, copy=False)
        df.columns = columns
    return _build_extras(b, node, df, name)


def _build_series(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    name = "pandas.Series"
    index = index_child(b, node["index"], name, "index")
    values = column(b, node["v"], name, "values")
    label = b.build(node["name"])
    with constructing(b, name):
        rows = len(index)
    if len(values) != rows:
        invalid(b, name, f"{len(values)} values, the index has {rows}")
    with constructing(b, name):
        dtype = object if _is_objects(values) else None
        s = pd.Series(values, index=index, name=label, dtype=dtype, copy=False)
    return _build_extras(b, node, s, name)


TAGS = {
    "pd.frame": Tag(_audit_frame, _build_frame),
    "pd.series": Tag(_audit_series, _build_series),
}
