"""What is recorded about a save (a first version; see DESIGN.md §3)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from typing import Any

from .. import __version__
from .._container.layout import FORMAT_VERSION
from .._handlers.numpy import longdouble_mantissa


def _created() -> str:
    # SOURCE_DATE_EPOCH (reproducible-builds.org) pins the time for byte-identical files.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip().isdigit():
        when = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.UTC)
    else:
        when = _dt.datetime.now(tz=_dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # fixed width


def _check_json(x: Any, where: str) -> None:
    """Refuse what JSON would store as something else (tuples, non-string keys, NaN)."""
    t = type(x)
    if x is None or t is bool or t is str or t is int:
        return
    if t is float:
        if x - x != 0.0:
            raise TypeError(f"{where} is {x}, which JSON cannot hold")
        return
    if t is list:
        for i, v in enumerate(x):
            _check_json(v, f"{where}[{i}]")
        return
    if t is dict:
        for k, v in x.items():
            if type(k) is not str:
                raise TypeError(f"{where} has the key {k!r}; JSON object keys must be strings")
            _check_json(v, f"{where}[{k!r}]")
        return
    raise TypeError(
        f"{where} is a {t.__name__}; metadata must be plain JSON (str, int, float, bool, "
        f"None, list, dict with string keys)"
    )


def capture(metadata: Any = None) -> dict[str, Any]:
    """The ``meta`` member of the header."""
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError("metadata must be a dict of JSON values")
        _check_json(metadata, "metadata")
    return {
        "producer": f"modelsafe {__version__}",
        "format_version": FORMAT_VERSION,
        "created": _created(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "byteorder": sys.byteorder,
        "longdouble_mantissa": longdouble_mantissa(),
        "user": metadata if metadata is not None else {},
    }
