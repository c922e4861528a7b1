"""pandas: DataFrame, Series, every kind of Index, the extension arrays a model or its
probe data may hold, and pandas scalars (docs/handlers/pandas.md).

Every object gets a node kind of its own (tags ``pd.*``) made from public pandas API:
a file holds values, labels, codes and masks, never pandas' internal layout (blocks,
managers, pickle state), so it reads back under later pandas versions, and nothing in
it names a class to instantiate. Loading rebuilds each object through public
constructors after checking what compiled code would index with (categorical and
MultiIndex codes, sparse indices, lengths, masks).

pandas is imported only inside functions: this package is imported during the audit,
when nothing of the library may be loaded yet.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import _arrays, _frames, _index, _scalars


@functools.cache
def _encoders() -> dict[type, Callable[[Any, Any], Any]]:
    import pandas as pd

    arrays = pd.arrays
    table: dict[type, Callable[[Any, Any], Any]] = {
        pd.DataFrame: _frames.enc_frame,
        pd.Series: _frames.enc_series,
        pd.Categorical: _arrays.enc_categorical,
        arrays.IntegerArray: _arrays.enc_masked,
        arrays.FloatingArray: _arrays.enc_masked,
        arrays.BooleanArray: _arrays.enc_masked,
        arrays.StringArray: _arrays.enc_strings,
        arrays.DatetimeArray: _arrays.enc_datetimes,
        arrays.TimedeltaArray: _arrays.enc_timedeltas,
        arrays.PeriodArray: _arrays.enc_periods,
        arrays.IntervalArray: _arrays.enc_intervals,
        arrays.SparseArray: _arrays.enc_sparse,
        pd.Timestamp: _scalars.enc_timestamp,
        pd.Timedelta: _scalars.enc_timedelta,
        pd.Period: _scalars.enc_period,
        pd.Interval: _scalars.enc_interval,
        type(pd.NA): _scalars.enc_na,
        type(pd.NaT): _scalars.enc_nat,
    }
    arrow_strings = getattr(arrays, "ArrowStringArray", None)
    if arrow_strings is not None:  # only ever met when pyarrow is installed
        table[arrow_strings] = _arrays.enc_strings
    for cls in (
        pd.Index,
        pd.RangeIndex,
        pd.MultiIndex,
        pd.DatetimeIndex,
        pd.TimedeltaIndex,
        pd.PeriodIndex,
        pd.CategoricalIndex,
        pd.IntervalIndex,
    ):
        table[cls] = _index.enc_index
    return table


def encoder_for(t: type) -> Callable[[Any, Any], Any] | None:
    """The encoder of a pandas type (pandas is loaded: an instance of ``t`` exists)."""
    return _encoders().get(t)


TAGS = {**_frames.TAGS, **_index.TAGS, **_arrays.TAGS, **_scalars.TAGS}
