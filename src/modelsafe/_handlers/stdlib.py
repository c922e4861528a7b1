"""Standard-library value types with a node of their own (docs/format.md, "Standard library").

They get explicit nodes rather than the generic reduce path so that a reader
in another language can understand them, and so that loading them never
calls a constructor with arbitrary arguments.
"""

from __future__ import annotations

import collections
import datetime as _dt
import decimal
import pathlib
import re
from typing import Any

from . import Tag

_PATHS = ("PurePosixPath", "PureWindowsPath", "PosixPath", "WindowsPath")


def _pairs_node(e: Any, tag: str, d: Any, extra: dict[str, Any] | None = None) -> Any:
    entry = e.memo.get(id(d))
    if entry is not None:
        return e.ref(entry)
    node: dict[str, Any] = {"$": tag}
    if extra:
        node.update(extra)
    pairs: list[Any] = []
    node["v"] = pairs
    e.remember(d, node)

    from .._graph.encode import _enc_pairs

    _enc_pairs(e, d.items(), pairs)

    return node


def _enc_odict(e: Any, d: collections.OrderedDict[Any, Any]) -> Any:
    e.types.add("collections.OrderedDict")
    return _pairs_node(e, "odict", d)


def _enc_ddict(e: Any, d: collections.defaultdict[Any, Any]) -> Any:
    e.types.add("collections.defaultdict")
    if id(d) in e.memo:
        return e.ref(e.memo[id(d)])
    factory = None if d.default_factory is None else e.enc(d.default_factory)
    return _pairs_node(e, "ddict", d, {"factory": factory})


def _audit_pairs(a: Any, node: dict[str, Any], name: str) -> None:
    a.need(name, "node")
    a.define_early(node)
    a.visit_pairs(node["v"])


def _audit_odict(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("v",), optional=("id",))
    _audit_pairs(a, node, "collections.OrderedDict")


def _audit_ddict(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("factory", "v"), optional=("id",))
    if node["factory"] is not None:
        a.visit(node["factory"])  # checked callable when built
    _audit_pairs(a, node, "collections.defaultdict")


def _build_odict(b: Any, node: dict[str, Any]) -> Any:
    d: collections.OrderedDict[Any, Any] = collections.OrderedDict()
    b.register(node, d)
    for k, v in node["v"]:
        key = b.build(k)  # first: the value may refer to the key
        d[key] = b.build(v)
    return d


def _build_ddict(b: Any, node: dict[str, Any]) -> Any:
    factory = None if node["factory"] is None else b.build(node["factory"])
    if factory is not None and not callable(factory):
        raise TypeError("defaultdict factory is not callable")
    d: collections.defaultdict[Any, Any] = collections.defaultdict(factory)
    b.register(node, d)
    for k, v in node["v"]:
        key = b.build(k)  # first: the value may refer to the key
        d[key] = b.build(v)
    return d


# -- dates and times ----------------------------------------------------------------


def _td(td: _dt.timedelta) -> list[int]:
    return [td.days, td.seconds, td.microseconds]


def _enc_timezone(e: Any, tz: _dt.timezone) -> Any:
    e.types.add("datetime.timezone")
    args = tz.__getinitargs__()  # type: ignore[attr-defined]
    return {"$": "timezone", "offset": _td(args[0]), "name": args[1] if len(args) > 1 else None}


def _enc_clock(e: Any, x: _dt.datetime | _dt.time) -> Any:
    """datetime and time: naive ISO text, then the tzinfo and fold apart."""
    tag = "datetime" if type(x) is _dt.datetime else "time"
    e.types.add(f"datetime.{tag}")
    node: dict[str, Any] = {
        "$": tag,
        "v": x.replace(tzinfo=None).isoformat(timespec="microseconds"),
    }
    if x.tzinfo is not None:
        node["tz"] = e.enc(x.tzinfo)
    if x.fold:
        node["fold"] = 1
    return node


def _enc_date(e: Any, x: _dt.date) -> Any:
    e.types.add("datetime.date")
    return {"$": "date", "v": x.isoformat()}


def _enc_timedelta(e: Any, x: _dt.timedelta) -> Any:
    e.types.add("datetime.timedelta")
    return {"$": "timedelta", "v": _td(x)}


_WHEN = {
    "datetime": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}"),
    "time": re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}"),
    "date": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
}


def _audit_when(a: Any, node: dict[str, Any]) -> None:
    tag = node["$"]
    if tag in ("datetime", "time"):
        a.keys(node, required=("v",), optional=("tz", "fold"))
        fold = node.get("fold", 0)
        if type(fold) is not int or fold not in (0, 1):
            a.fail("fold must be 0 or 1")
        if "tz" in node:
            a.visit(node["tz"])
    else:
        a.keys(node, required=("v",))
    v = node["v"]
    if type(v) is not str or not _WHEN[tag].fullmatch(v):
        a.fail(f"{tag} value must be ISO 8601 text of the form the format specifies")
    a.need(f"datetime.{tag}", "node")


def _tzinfo(b: Any, node: dict[str, Any]) -> Any:
    if "tz" not in node:
        return None
    tz = b.build(node["tz"])
    if not isinstance(tz, _dt.tzinfo):
        raise TypeError("tz is not a tzinfo")
    return tz


def _build_datetime(b: Any, node: dict[str, Any]) -> Any:
    x = _dt.datetime.fromisoformat(node["v"])
    return x.replace(tzinfo=_tzinfo(b, node), fold=node.get("fold", 0))


def _build_time(b: Any, node: dict[str, Any]) -> Any:
    x = _dt.time.fromisoformat(node["v"])
    return x.replace(tzinfo=_tzinfo(b, node), fold=node.get("fold", 0))


def _build_date(b: Any, node: dict[str, Any]) -> Any:
    return _dt.date.fromisoformat(node["v"])


def _audit_td(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("v",))
    v = node["v"]
    if type(v) is not list or len(v) != 3 or not all(type(x) is int for x in v):
        a.fail("timedelta must be [days, seconds, microseconds]")
    a.need("datetime.timedelta", "node")


def _build_td(b: Any, node: dict[str, Any]) -> Any:
    d, s, us = node["v"]
    return _dt.timedelta(days=d, seconds=s, microseconds=us)


def _audit_tz(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("offset", "name"))
    off = node["offset"]
    if type(off) is not list or len(off) != 3 or not all(type(x) is int for x in off):
        a.fail("timezone offset must be [days, seconds, microseconds]")
    if node["name"] is not None and type(node["name"]) is not str:
        a.fail("timezone name must be a string or null")
    a.need("datetime.timezone", "node")


def _build_tz(b: Any, node: dict[str, Any]) -> Any:
    d, s, us = node["offset"]
    off = _dt.timedelta(days=d, seconds=s, microseconds=us)
    return _dt.timezone(off) if node["name"] is None else _dt.timezone(off, node["name"])


# -- decimal and paths -------------------------------------------------------------------


def _enc_decimal(e: Any, x: decimal.Decimal) -> Any:
    e.types.add("decimal.Decimal")
    return {"$": "decimal", "v": str(x)}


def _audit_str_value(a: Any, node: dict[str, Any], name: str) -> None:
    if type(node["v"]) is not str:
        a.fail(f"{node['$']} value must be a string")
    a.need(name, "node")


def _audit_decimal(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("v",))
    _audit_str_value(a, node, "decimal.Decimal")


def _build_decimal(b: Any, node: dict[str, Any]) -> Any:
    return decimal.Decimal(node["v"])


def _enc_path(e: Any, p: pathlib.PurePath) -> Any:
    kind = type(p).__name__
    e.types.add(f"pathlib.{kind}")
    return {"$": "path", "kind": kind, "v": list(p.parts)}  # as pickle: str() is lossy


def _audit_path(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, required=("kind", "v"))
    if node["kind"] not in _PATHS:
        a.fail(f"unknown path kind {node['kind']!r}")
    parts = node["v"]
    if type(parts) is not list or set(map(type, parts)) - {str}:
        a.fail("path parts must be a list of strings")
    a.need(f"pathlib.{node['kind']}", "node")


def _build_path(b: Any, node: dict[str, Any]) -> Any:
    return getattr(pathlib, node["kind"])(*node["v"])


_ENCODERS: dict[type, Any] = {
    collections.OrderedDict: _enc_odict,
    collections.defaultdict: _enc_ddict,
    _dt.datetime: _enc_clock,
    _dt.date: _enc_date,
    _dt.time: _enc_clock,
    _dt.timedelta: _enc_timedelta,
    _dt.timezone: _enc_timezone,
    decimal.Decimal: _enc_decimal,
    **{getattr(pathlib, k): _enc_path for k in _PATHS},
}


def encoder_for(t: type) -> Any:
    return _ENCODERS.get(t)


TAGS = {
    "odict": Tag(_audit_odict, _build_odict),
    "ddict": Tag(_audit_ddict, _build_ddict),
    "datetime": Tag(_audit_when, _build_datetime),
    "time": Tag(_audit_when, _build_time),
    "date": Tag(_audit_when, _build_date),
    "timedelta": Tag(_audit_td, _build_td),
    "timezone": Tag(_audit_tz, _build_tz),
    "decimal": Tag(_audit_decimal, _build_decimal),
    "path": Tag(_audit_path, _build_path),
}
