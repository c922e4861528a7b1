"""What the pandas node kinds share: errors, checks on child nodes, time zones, frequencies.

Nothing here imports pandas at module level: the audit may import this package,
and no part of pandas may be imported before the audit has passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import numpy as np

from ..._graph.audit import _Fail, check_number
from ..._graph.encode import Unsupported
from ...errors import FormatError, ModelSafeError

NODE = "node"
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
NAT = INT64_MIN  # pandas' missing-value sentinel in int64 time data

# Nodes a column (a 1-D array of values) may be: plain numpy arrays or one of ours.
COLUMN_TAGS = frozenset(
    {
        "nd",
        "ref",
        "pd.categorical",
        "pd.masked",
        "pd.strings",
        "pd.datetimes",
        "pd.timedeltas",
        "pd.periods",
        "pd.intervals",
        "pd.sparse",
    }
)
INDEX_TAGS = frozenset({"pd.index", "pd.range", "pd.multi", "ref"})
TIME_UNITS = ("s", "ms", "us", "ns")
CLOSED = ("left", "right", "both", "neither")

# IANA zone keys ("Europe/Paris", "Etc/GMT+5"): no dots, so no path can climb out of the
# zone database; zoneinfo checks the key again itself.
_TZ_KEY = re.compile(r"[A-Za-z0-9_+\-]{1,40}(/[A-Za-z0-9_+\-]{1,40}){0,3}")
# Offset aliases as pandas writes them ("D", "2h", "ME", "W-SUN", "QE-DEC", "15min").
_FREQ = re.compile(r"[A-Za-z0-9+\-]{1,40}")


# -- errors ------------------------------------------------------------------------------------


def invalid(b: Any, name: str, message: str) -> NoReturn:
    """A broken invariant in the data of a ``name`` node, found while building it."""
    raise FormatError(f"{b.source}: invalid {name}: {message}")


@contextmanager
def constructing(b: Any, name: str) -> Iterator[None]:
    """Report what a pandas constructor refuses as a broken invariant of ``name``."""
    try:
        yield
    except ModelSafeError:
        raise
    except Exception as exc:
        raise FormatError(f"{b.source}: invalid {name}: {type(exc).__name__}: {exc}") from exc


def unsupported(reason: str) -> NoReturn:
    raise Unsupported(reason, advice=None)


def sub(e: Any, value: Any, segment: str) -> Any:
    """Encode a child; a failure inside it gets ``segment`` in its path."""
    try:
        return e.enc(value)
    except Unsupported as exc:
        exc.segments.append(segment)
        raise


# -- audit -------------------------------------------------------------------------------------


def need_int(a: Any, node: dict[str, Any], key: str, lo: int = INT64_MIN) -> int:
    x = node[key]
    if type(x) is not int or not lo <= x <= INT64_MAX:
        a.fail(f"'{node['$']}' member '{key}' must be an integer in [{lo}, 2**63)")
    return int(x)


def need_choice(a: Any, node: dict[str, Any], key: str, choices: Sequence[str]) -> str:
    x = node[key]
    if type(x) is not str or x not in choices:
        a.fail(f"'{node['$']}' member '{key}' must be one of {list(choices)}, not {x!r}")
    return str(x)


def need_freq(a: Any, node: dict[str, Any], key: str = "freq") -> None:
    x = node[key]
    if type(x) is not str or not _FREQ.fullmatch(x):
        a.fail(f"'{node['$']}' member '{key}' must be a frequency alias such as 'D' or '2h'")


def visit_child(a: Any, node: dict[str, Any], key: str, tags: frozenset[str], what: str) -> None:
    """A member that must be a node of one of ``tags``."""
    visit_item(a, node[key], tags, what, f".{key}")


def visit_item(a: Any, x: Any, tags: frozenset[str], what: str, segment: str) -> None:
    if type(x) is not dict or x.get("$") not in tags:
        a.fail(f"{segment.lstrip('.')} must be {what}")
    try:
        a.visit(x)
    except _Fail as exc:
        exc.segments.append(segment)
        raise


def visit_items(a: Any, node: dict[str, Any], key: str, tags: frozenset[str], what: str) -> int:
    """A member listing nodes of ``tags``; the list itself is no level (as ``v`` of a tuple)."""
    items = node[key]
    if type(items) is not list:
        a.fail(f"'{node['$']}' member '{key}' must be a list of nodes")
    for i, x in enumerate(items):
        if type(x) is not dict or x.get("$") not in tags:
            a.fail(f"{key}[{i}] must be {what}")
    try:
        a.visit_all(items)
    except _Fail as exc:
        exc.segments.append(f".{key}")
        raise
    return len(items)


def visit_value(a: Any, node: dict[str, Any], key: str) -> None:
    """A member holding any node (a name, a fill value, an interval bound)."""
    x = node[key]
    try:
        a.visit(x)
        check_number(a, x)
    except _Fail as exc:
        exc.segments.append(f".{key}")
        raise


# -- build -------------------------------------------------------------------------------------


def native(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``arr`` in this machine's byte order (a file from a big-endian writer), else itself."""
    if arr.dtype.isnative or arr.dtype.kind == "O":
        return arr
    return arr.astype(arr.dtype.newbyteorder("="))


def column(b: Any, node: Any, name: str, what: str) -> Any:
    """Build a child that must denote a 1-D array: a numpy array or a pandas extension array."""
    import pandas as pd

    x = b.build(node)
    if isinstance(x, np.ndarray):
        if x.ndim != 1:
            invalid(b, name, f"{what} must be 1-dimensional, not of shape {x.shape}")
        if x.dtype.fields is not None or x.dtype.subdtype is not None:
            invalid(b, name, f"{what} has the structured dtype {x.dtype}, which pandas cannot hold")
        return native(x)
    if isinstance(x, pd.api.extensions.ExtensionArray):
        return x
    invalid(b, name, f"{what} is a {type(x).__name__}, not an array")


def int_array(b: Any, node: Any, name: str, what: str) -> np.ndarray[Any, Any]:
    """Build a child that must be a 1-D numpy array of signed integers (codes, indices:
    pandas' compiled code reads with their values, so they are checked and kept in this
    process's own memory, ``Builder.private``)."""
    x = column(b, node, name, what)
    if not isinstance(x, np.ndarray) or x.dtype.kind != "i":
        invalid(b, name, f"{what} must be a signed integer array, not {x.dtype}")
    own: np.ndarray[Any, Any] = b.private(x)
    return own


def index_child(b: Any, node: Any, name: str, what: str) -> Any:
    import pandas as pd

    x = b.build(node)
    if not isinstance(x, pd.Index):
        invalid(b, name, f"{what} is a {type(x).__name__}, not a pandas Index")
    return x


def check_codes(b: Any, name: str, what: str, codes: np.ndarray[Any, Any], size: int) -> None:
    """Codes index into something of ``size`` items, -1 standing for a missing value."""
    if not codes.size:
        return
    lo, hi = int(codes.min()), int(codes.max())
    if lo >= -1 and hi < size:
        return
    bad = int(np.flatnonzero((codes < -1) | (codes >= size))[0])
    invalid(b, name, f"{what}[{bad}] = {int(codes[bad])} is outside [-1, {size})")


# -- time zones and frequencies -------------------------------------------------------------------


def enc_tz(e: Any, tz: Any) -> Any:
    """A zoneinfo zone by its key; a fixed offset (or UTC) as the standard-library node."""
    import datetime as dt
    import zoneinfo

    if isinstance(tz, zoneinfo.ZoneInfo) and tz.key is not None and _TZ_KEY.fullmatch(tz.key):
        e.types.add("zoneinfo.ZoneInfo")
        return tz.key
    if type(tz) is dt.timezone:
        return e.enc(tz)
    unsupported(
        f"the time zone {tz!r} ({type(tz).__module__}.{type(tz).__qualname__}) is neither a "
        f"zoneinfo.ZoneInfo with a key nor a datetime.timezone; convert the data with "
        f"tz_convert(zoneinfo.ZoneInfo(...)) before saving"
    )


def audit_tz(a: Any, node: dict[str, Any]) -> None:
    tz = node["tz"]
    if type(tz) is str:
        if not _TZ_KEY.fullmatch(tz):
            a.fail(f"time zone key {tz!r} is not an IANA zone name")
        a.need("zoneinfo.ZoneInfo", NODE)
        return
    if type(tz) is not dict or tz.get("$") != "timezone":
        a.fail("'tz' must be a zone name or a 'timezone' node")
    try:
        a.visit(tz)
    except _Fail as exc:
        exc.segments.append(".tz")
        raise


def build_tz(b: Any, node: dict[str, Any], name: str) -> Any:
    import zoneinfo

    tz = node["tz"]
    if type(tz) is str:
        with constructing(b, name):
            return zoneinfo.ZoneInfo(tz)
    return b.build(tz)  # a datetime.timezone node


def freq_text(offset: Any) -> str:
    """The alias of a DatetimeIndex/TimedeltaIndex frequency, refused unless it reads back."""
    from pandas.tseries.frequencies import to_offset

    text = getattr(offset, "freqstr", None)
    try:
        same = type(text) is str and _FREQ.fullmatch(text) and to_offset(text) == offset
    except ValueError:
        same = False
    if not same:
        unsupported(f"the frequency {offset!r} has no alias that reads back as the same offset")
    return str(text)
