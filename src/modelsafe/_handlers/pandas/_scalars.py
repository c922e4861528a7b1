"""pandas scalars, as they appear in object columns and model attributes: Timestamp,
Timedelta, Period, Interval, NA and NaT (docs/handlers/pandas.md)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import Tag
from ._common import (
    CLOSED,
    NAT,
    NODE,
    TIME_UNITS,
    audit_tz,
    build_tz,
    constructing,
    enc_tz,
    need_choice,
    need_freq,
    need_int,
    sub,
    unsupported,
    visit_value,
)


def _ticks(x: Any) -> tuple[int, str]:
    """An instant or duration as (integer count, unit), in pandas' own resolution."""
    raw = x.asm8  # numpy datetime64/timedelta64 in the value's unit (UTC for a Timestamp)
    unit, _ = np.datetime_data(raw.dtype)
    return int(raw.view("i8")), str(unit)


def enc_timestamp(e: Any, ts: Any) -> Any:
    v, unit = _ticks(ts)
    e.types.add("pandas.Timestamp")
    node: dict[str, Any] = {"$": "pd.timestamp", "v": v, "unit": unit}
    if ts.tz is not None:
        node["tz"] = enc_tz(e, ts.tz)
    return node


def enc_timedelta(e: Any, td: Any) -> Any:
    v, unit = _ticks(td)
    e.types.add("pandas.Timedelta")
    return {"$": "pd.timedelta", "v": v, "unit": unit}


def enc_period(e: Any, p: Any) -> Any:
    import pandas as pd

    seen = e.seen(p)
    if seen is not None:
        return seen
    if pd.Period(ordinal=p.ordinal, freq=p.freqstr) != p:
        unsupported(f"the period frequency {p.freq!r} has no alias that reads back")
    e.types.add("pandas.Period")
    node = {"$": "pd.period", "ordinal": p.ordinal, "freq": p.freqstr}
    e.remember(p, node)
    return node


def enc_interval(e: Any, iv: Any) -> Any:
    seen = e.seen(iv)
    if seen is not None:
        return seen
    e.types.add("pandas.Interval")
    node = {
        "$": "pd.interval",
        "closed": iv.closed,
        "left": sub(e, iv.left, ".left"),
        "right": sub(e, iv.right, ".right"),
    }
    e.remember(iv, node)
    return node


def enc_na(e: Any, x: Any) -> Any:
    e.types.add("pandas.NA")
    return {"$": "pd.na"}


def enc_nat(e: Any, x: Any) -> Any:
    e.types.add("pandas.NaT")
    return {"$": "pd.nat"}


# -- audit and build -----------------------------------------------------------------------------


def _audit_ticks(a: Any, node: dict[str, Any]) -> None:
    if need_int(a, node, "v") == NAT:
        a.fail("the missing value is written 'pd.nat', not as a count")
    need_choice(a, node, "unit", TIME_UNITS)


def _audit_timestamp(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("v", "unit"), ("tz",))
    _audit_ticks(a, node)
    if "tz" in node:
        audit_tz(a, node)
    a.need("pandas.Timestamp", NODE)


def _build_timestamp(b: Any, node: dict[str, Any]) -> Any:
    import datetime as dt

    import pandas as pd

    name = "pandas.Timestamp"
    with constructing(b, name):
        ts = pd.Timestamp(np.datetime64(node["v"], node["unit"]))
    if "tz" in node:
        tz = build_tz(b, node, name)
        with constructing(b, name):
            ts = ts.tz_localize(dt.UTC).tz_convert(tz)
    return ts


def _audit_timedelta(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("v", "unit"))
    _audit_ticks(a, node)
    a.need("pandas.Timedelta", NODE)


def _build_timedelta(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    with constructing(b, "pandas.Timedelta"):
        return pd.Timedelta(np.timedelta64(node["v"], node["unit"]))


def _audit_period(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("ordinal", "freq"), ("id",))
    if need_int(a, node, "ordinal") == NAT:
        a.fail("the missing period is written 'pd.nat', not as an ordinal")
    need_freq(a, node)
    a.need("pandas.Period", NODE)
    a.define_late(node)


def _build_period(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    with constructing(b, "pandas.Period"):
        p = pd.Period(ordinal=node["ordinal"], freq=node["freq"])
    b.register(node, p)
    return p


def _audit_interval(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ("closed", "left", "right"), ("id",))
    need_choice(a, node, "closed", CLOSED)
    visit_value(a, node, "left")
    visit_value(a, node, "right")
    a.need("pandas.Interval", NODE)
    a.define_late(node)


def _build_interval(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    left, right = b.build(node["left"]), b.build(node["right"])
    with constructing(b, "pandas.Interval"):  # pandas checks the bounds' types and order
        iv = pd.Interval(left, right, closed=node["closed"])
    b.register(node, iv)
    return iv


def _audit_missing(a: Any, node: dict[str, Any]) -> None:
    a.keys(node, ())
    a.need("pandas.NA" if node["$"] == "pd.na" else "pandas.NaT", NODE)


def _build_missing(b: Any, node: dict[str, Any]) -> Any:
    import pandas as pd

    return pd.NA if node["$"] == "pd.na" else pd.NaT


TAGS = {
    "pd.timestamp": Tag(_audit_timestamp, _build_timestamp),
    "pd.timedelta": Tag(_audit_timedelta, _build_timedelta),
    "pd.period": Tag(_audit_period, _build_period),
    "pd.interval": Tag(_audit_interval, _build_interval),
    "pd.na": Tag(_audit_missing, _build_missing),
    "pd.nat": Tag(_audit_missing, _build_missing),
}
