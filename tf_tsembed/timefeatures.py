"""Calendar features of timestamps: on the host with NumPy, or as TensorFlow ops.

``time_features`` gives the continuous features in [-0.5, 0.5] that TimeFeatureEmbedding
consumes; ``time_marks`` gives the integer calendar marks that TemporalEmbedding looks up.
``time_features_tf`` and ``time_marks_tf`` compute the same from int64 seconds since 1970
inside a graph (XLA, TFLite); they import TensorFlow when called, so that importing this
module needs NumPy only.
Frequency strings are mapped here rather than by pandas because pandas 3 rejects the old
letters ('t', 'm', 'a', 'H', 'T', 'S') that the reference code and its data configs use,
and because this module must not need pandas at all.

>>> time_marks(["2021-01-03 12:45:00"], freq="15min")
array([[ 1,  3,  6, 12,  3]], dtype=int32)
"""

import collections.abc
import re

import numpy as np

__all__ = [
    "MARK_FIELDS",
    "TF_TIMESTAMP_RANGE",
    "mark_fields",
    "num_time_features",
    "num_time_marks",
    "parse_freq",
    "parse_freq_multiple",
    "step_seconds",
    "time_features",
    "time_features_tf",
    "time_marks",
    "time_marks_tf",
]

_MONTH_ANCHORS = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
_WEEKDAY_ANCHORS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")

# Case-insensitive, except "MS" (month start), which pandas tells from "ms" (millisecond) by case.
_ALIASES_BY_UNIT = {
    "s": ("s", "sec"),
    "t": ("t", "min"),
    "h": ("h",),
    "d": ("d",),
    "b": ("b",),
    "w": ("w",),
    "m": ("m", "me"),
    "q": ("q", "qe", "qs"),
    "y": ("y", "ye", "ys", "a", "as"),
}
_UNIT_BY_ALIAS = {alias: unit for unit, aliases in _ALIASES_BY_UNIT.items() for alias in aliases}
_SUB_SECOND_ALIASES = ("ms", "l", "us", "u", "ns", "n")
_ANCHORS_BY_UNIT = {"w": _WEEKDAY_ANCHORS, "q": _MONTH_ANCHORS, "y": _MONTH_ANCHORS}
_ACCEPTED_DATES = "datetime64 values, date strings or datetime objects"
_FREQ_PATTERN = re.compile(r"([0-9]*)([A-Za-z]+)(?:-([A-Za-z]+))?")

_ACCEPTED_FREQS = (
    "an optional positive integer multiple followed by one of "
    "s/S/sec, t/T/min, h/H, d/D, b/B, w/W (anchored: W-MON..W-SUN), m/M/ME/MS, "
    "q/Q/QE/QS, y/Y/YE/YS/a/A/AS (quarterly and yearly anchored by month: Q-DEC, A-JUN, ...); "
    "sub-second frequencies (ms, us, ns, L, U, N) are not supported"
)

# Features per unit, fine to coarse, as TimeFeatureEmbedding expects them.
_FEATURES_BY_UNIT = {
    "s": ("second", "minute", "hour", "weekday", "day", "dayofyear"),
    "t": ("minute", "hour", "weekday", "day", "dayofyear"),
    "h": ("hour", "weekday", "day", "dayofyear"),
    "d": ("weekday", "day", "dayofyear"),
    "b": ("weekday", "day", "dayofyear"),
    "w": ("day", "isoweek"),
    "m": ("month",),
    "q": ("month",),
    "y": (),
}
# Calendar field -> (its first value, its span); the feature is (field - first) / span - 0.5.
_FEATURE_SCALES = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "weekday": (0, 6),
    "day": (1, 30),
    "dayofyear": (1, 365),
    "month": (1, 11),
    "isoweek": (1, 52),
}
# Integer marks, coarse to fine, as (reference's table name, calendar field, table rows).
MARK_FIELDS = (
    ("month", "month", 13),
    ("day", "day", 32),
    ("weekday", "weekday", 7),
    ("hour", "hour", 24),
    ("minute", "quarter_hour", 4),
)
# As in the reference, only minutely data have a minute table: secondly data stop at the hour.
_NUM_MARKS_BY_UNIT = {"s": 4, "t": 5, "h": 4, "d": 3, "b": 3, "w": 3, "m": 1, "q": 1, "y": 1}


def _freq_error(freq, reason=""):
    return ValueError(f"freq must be {_ACCEPTED_FREQS}; got {freq!r}{reason}")


def parse_freq(freq: str) -> str:
    """Map a frequency string to its canonical unit, one of "s t h d b w m q y".

    Old single letters and pandas aliases are both accepted, with an optional integer
    multiple ("15min", "3h") and, for weekly, quarterly and yearly data, an anchor
    ("W-SUN", "Q-DEC", "A-JUN"). Letters are case-insensitive except "MS" (month start),
    because "ms" is the millisecond; sub-second frequencies are rejected.

    >>> [parse_freq(f) for f in ("15min", "3H", "W-MON", "MS", "QE-DEC", "A")]
    ['t', 'h', 'w', 'm', 'q', 'y']
    """
    return parse_freq_multiple(freq)[1]


def parse_freq_multiple(freq: str) -> tuple:
    """``(multiple, unit)`` of a frequency string: its integer multiple (1 when it has none)
    and its canonical unit as ``parse_freq`` gives it. An anchor is not a multiple.

    Accepts and refuses exactly what ``parse_freq`` does, with the same ValueError.

    >>> [parse_freq_multiple(f) for f in ("2h", "15min", "12M", "W-MON", "s")]
    [(2, 'h'), (15, 't'), (12, 'm'), (1, 'w'), (1, 's')]
    """
    if not isinstance(freq, str):
        raise _freq_error(freq, f" of type {type(freq).__name__}, expected a str")
    match = _FREQ_PATTERN.fullmatch(freq)
    if match is None:
        raise _freq_error(freq)
    multiple, alias, anchor = match.groups()
    if multiple and int(multiple) == 0:
        raise _freq_error(freq, ": the multiple must be a positive integer")
    if alias == "MS":
        unit = "m"
    elif alias.lower() in _SUB_SECOND_ALIASES:
        raise _freq_error(freq, ": sub-second data is not supported")
    else:
        unit = _UNIT_BY_ALIAS.get(alias.lower())
    if unit is None:
        raise _freq_error(freq, f": unknown unit {alias!r}")
    if anchor is not None and anchor.upper() not in _ANCHORS_BY_UNIT.get(unit, ()):
        raise _freq_error(freq, f": anchor {anchor!r} does not fit unit {alias!r}")
    return (int(multiple) if multiple else 1), unit


# The units whose step has one length, in seconds; b, m, q and y vary (weekends, months, leap).
UNIT_SECONDS = {"s": 1, "t": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def step_seconds(freq: str):
    """The length of one step of `freq` in seconds, or None for units whose steps differ in
    length (business days, months, quarters, years).

    >>> [step_seconds(f) for f in ("15min", "2h", "W-MON", "B", "MS")]
    [900, 7200, 604800, None, None]
    """
    multiple, unit = parse_freq_multiple(freq)
    return multiple * UNIT_SECONDS[unit] if unit in UNIT_SECONDS else None


def num_time_features(freq: str) -> int:
    """Number of columns ``time_features`` returns for ``freq``.

    >>> num_time_features("h"), num_time_features("10s"), num_time_features("A")
    (4, 6, 0)
    """
    return len(_FEATURES_BY_UNIT[parse_freq(freq)])


def num_time_marks(freq: str) -> int:
    """Number of columns ``time_marks`` returns for ``freq``.

    >>> num_time_marks("15min"), num_time_marks("h"), num_time_marks("B"), num_time_marks("MS")
    (5, 4, 3, 1)
    """
    return _NUM_MARKS_BY_UNIT[parse_freq(freq)]


def mark_fields(freq: str) -> tuple:
    """The ``(table name, calendar field, table rows)`` of each ``time_marks`` column for ``freq``.

    >>> [(name, rows) for name, _, rows in mark_fields("h")]
    [('month', 13), ('day', 32), ('weekday', 7), ('hour', 24)]
    """
    return MARK_FIELDS[: num_time_marks(freq)]


def _drop_pandas_timezone(dates):
    # Vectorised wall-clock conversion for tz-aware pandas input, found by duck typing so
    # that pandas is never imported. A non-datetime Series raises AttributeError on .dt,
    # which getattr turns into None.
    if getattr(dates, "tz", None) is not None:
        return dates.tz_localize(None)
    accessor = getattr(dates, "dt", None)
    if getattr(accessor, "tz", None) is not None:
        return accessor.tz_localize(None)
    return dates


def _period_starts(dates):
    # pandas periods (PeriodIndex, or a Series of them), found by duck typing as above: NumPy
    # cannot convert Period objects, so each period is taken at its start time.
    if not str(getattr(dates, "dtype", "")).startswith("period"):
        return dates
    return (dates.dt if hasattr(dates, "dt") else dates).to_timestamp()


def _check_sequence(dates):
    # np.asarray would make a 0-d object array of these, reported as a confusing shape ().
    is_sequence = hasattr(dates, "__len__") and hasattr(dates, "__getitem__")
    if is_sequence and not isinstance(dates, (str, bytes, collections.abc.Mapping)):
        return
    raise ValueError(
        f"dates must be a 1-D sequence (list, tuple, NumPy array, pandas Index or Series) of "
        f"{_ACCEPTED_DATES}; received a {type(dates).__name__}. Pass list(dates) for an "
        f"iterator or set, [date] for a single date."
    )


def _wall_clock(value):
    if getattr(value, "tzinfo", None) is None:
        return value
    return value.replace(tzinfo=None)


def _unconvertible_dates_error(values, error):
    # Runs only once conversion has failed: find the first element NumPy cannot read, to name it.
    for position, value in enumerate(values):
        try:
            np.datetime64(value)
        except (TypeError, ValueError) as element_error:
            return ValueError(
                f"dates must hold {_ACCEPTED_DATES}; dates[{position}] = {value!r} is not one: "
                f"{element_error}"
            )
    return ValueError(f"dates must hold {_ACCEPTED_DATES}; NumPy could not convert them: {error}")


def _as_datetime64_seconds(dates):
    """1-D datetime64[s] array of ``dates``; aware values are taken at their wall-clock time."""
    _check_sequence(dates)
    values = np.asarray(_drop_pandas_timezone(_period_starts(dates)))
    if values.ndim != 1:
        raise ValueError(f"dates must be 1-D; got an array of shape {values.shape}")
    if values.size == 0:
        return np.empty(0, "datetime64[s]")  # An empty list arrives as float64.
    if values.dtype.kind in "OUS":
        # Python objects need converting one by one anyway; strip tzinfo so that aware
        # datetimes give their wall-clock time, as tz-aware pandas input does.
        wall_clock_values = [_wall_clock(value) for value in values]
        try:
            values = np.asarray(wall_clock_values, dtype="datetime64")
        except (TypeError, ValueError) as error:
            raise _unconvertible_dates_error(wall_clock_values, error) from error
    elif values.dtype.kind != "M":
        raise ValueError(f"dates must hold {_ACCEPTED_DATES}; got dtype {values.dtype}")
    not_a_time = np.isnat(values)
    if not_a_time.any():
        raise ValueError(
            f"dates must not contain NaT; got NaT at position {int(np.argmax(not_a_time))}"
        )
    # Floor to whole seconds (NumPy's unit casts floor, also before 1970); [s] covers any
    # year, unlike [ns] (1677..2262).
    return values.astype("datetime64[s]")


def _day_and_clock_fields(day_number, second_of_day):
    """The fields that follow from days since 1970 and the second of the day alone: weekday,
    its week's Thursday (as a day number) and the clock. Integer operators only, so that NumPy
    arrays and TensorFlow tensors both go through this one definition."""
    weekday = (day_number + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0.
    minute_of_hour = second_of_day // 60 % 60
    return {
        "second": second_of_day % 60,
        "minute": minute_of_hour,
        "hour": second_of_day // 3600,
        "weekday": weekday,
        "quarter_hour": minute_of_hour // 15,
        # ISO 8601: a week belongs to the year of its Thursday and is numbered from that
        # year's first Thursday, so week = (day of year of the Thursday - 1) // 7 + 1.
        "thursday": day_number - weekday + 3,
    }


def _calendar_fields(dates):
    """Integer calendar fields of ``dates`` as int64 arrays, computed without a per-element loop."""
    seconds = _as_datetime64_seconds(dates)
    days = seconds.astype("datetime64[D]")
    months = seconds.astype("datetime64[M]")
    years = seconds.astype("datetime64[Y]")
    fields = _day_and_clock_fields(days.astype(np.int64), (seconds - days).astype(np.int64))
    thursday = fields.pop("thursday").astype("datetime64[D]")
    thursday_year_start = thursday.astype("datetime64[Y]").astype("datetime64[D]")
    return {
        **fields,
        "day": (days - months.astype("datetime64[D]")).astype(np.int64) + 1,
        "dayofyear": (days - years.astype("datetime64[D]")).astype(np.int64) + 1,
        "month": months.astype(np.int64) % 12 + 1,
        "isoweek": (thursday - thursday_year_start).astype(np.int64) // 7 + 1,
    }


def time_features(dates, freq: str = "h") -> np.ndarray:
    """Continuous calendar features in [-0.5, 0.5]: float32 ``[L, num_time_features(freq)]``.

    Columns run fine to coarse: "s" [second, minute, hour, weekday, day, dayofyear],
    "t" drops second, "h" drops minute too, "d"/"b" [weekday, day, dayofyear], "w" [day,
    isoweek], "m"/"q" [month], "y" none. Each is ``(field - first) / span - 0.5`` with
    Monday = 0 and the ISO-8601 week, computed in float64 and then cast.

    ``dates`` is a 1-D sequence: datetime64 values of any unit, date strings, ``datetime``
    objects or a pandas DatetimeIndex/Series (a PeriodIndex or Series of periods is taken at
    each period's start); anything else (a generator, a set, one date) raises ValueError.
    Timezone-aware datetimes and pandas values are read at
    their wall-clock (local) time, not converted to UTC; a UTC offset inside a string is
    applied by NumPy, which converts to UTC and warns. Sub-second parts are floored away.
    NaT raises ValueError.

    >>> time_features(["2021-01-03 12:45:00"], freq="h").round(4)
    array([[ 0.0217,  0.5   , -0.4333, -0.4945]], dtype=float32)
    """
    feature_names = _FEATURES_BY_UNIT[parse_freq(freq)]
    fields = _calendar_fields(dates)
    features = np.empty((len(fields["second"]), len(feature_names)), np.float64)
    for column, name in enumerate(feature_names):
        features[:, column] = _scaled(name, fields[name])
    return features.astype(np.float32)


def _scaled(name, field):
    """The feature of calendar field ``name``: ``(field - first) / span - 0.5``, in the dtype
    of ``field`` (float64 for NumPy, float32 in TensorFlow)."""
    first, span = _FEATURE_SCALES[name]
    return (field - first) / span - 0.5


def time_marks(dates, freq: str = "h") -> np.ndarray:
    """Integer calendar marks, int32 of shape ``[L, num_time_marks(freq)]``, for TemporalEmbedding.

    Columns run coarse to fine: [month 1..12, day 1..31, weekday 0..6 (Monday = 0),
    hour 0..23, minute // 15 in 0..3], truncated to the resolution of ``freq``: 5 columns
    for "t", 4 for "h" and "s" (the reference has no minute table for secondly data), 3 for
    "d", "b" and "w", 1 for "m", "q" and "y".
    ``dates`` is taken as in ``time_features``.

    >>> time_marks(["2016-07-01 01:15:30", "2024-02-29 06:30:15"], freq="h")
    array([[ 7,  1,  4,  1],
           [ 2, 29,  3,  6]], dtype=int32)
    """
    fields = _calendar_fields(dates)
    columns = [fields[field] for _, field, _ in mark_fields(freq)]
    return np.stack(columns, axis=1).astype(np.int32)


# --- The same in TensorFlow, from int64 seconds since 1970 ---------------------------------------

_SECONDS_PER_DAY = 86400
# Timestamps are split as q * _SPLIT + rest with rest in [0, _SPLIT): _SPLIT = 86400 * 2**14 =
# 675 * 2**21 is below 2**31, so the rest and everything after it is int32 arithmetic, which
# TFLite's builtin FloorDiv supports (its int64 FloorDiv needs Select TF ops). q * _SPLIT is
# exact as a float32 while |q * 675| < 2**24, and so is its scaling by 2**-21: q comes from
# casts and exact multiplications, never from an int64 division.
_SPLIT_SHIFT = 21
_SPLIT_FACTOR = 675
_SPLIT = _SPLIT_FACTOR * 2**_SPLIT_SHIFT
_LARGEST_QUOTIENT = 2**24 // _SPLIT_FACTOR  # 24855
# Supported timestamps: [-24855 * _SPLIT, 24856 * _SPLIT), about 1.1 million years either side.
TF_TIMESTAMP_RANGE = (-_LARGEST_QUOTIENT * _SPLIT, (_LARGEST_QUOTIENT + 1) * _SPLIT)
# Howard Hinnant's civil-date algorithms count days from 0000-03-01 in 400-year eras.
_DAYS_0000_03_01_TO_EPOCH = 719468
_DAYS_PER_ERA = 146097


def _tf_days_and_seconds(tf, timestamps):
    """int32 ``(days since 1970, second of the day)`` of int64 timestamps, floored also
    before 1970, with int32 floor divisions only."""
    rest = tf.math.floormod(timestamps, _SPLIT)
    scaled = tf.cast(timestamps - rest, tf.float32) * 2.0**-_SPLIT_SHIFT  # exact: q * 675
    quotient = tf.cast(scaled, tf.int32) // _SPLIT_FACTOR
    rest = tf.cast(rest, tf.int32)
    days = quotient * (_SPLIT // _SECONDS_PER_DAY) + rest // _SECONDS_PER_DAY
    return days, rest % _SECONDS_PER_DAY


def _civil_from_days(days):
    """``(year, month, day)`` of a day number (days since 1970-01-01, proleptic Gregorian):
    Hinnant's civil_from_days, whose years start on March 1st so that leap days come last."""
    shifted = days + _DAYS_0000_03_01_TO_EPOCH
    era = shifted // _DAYS_PER_ERA
    day_of_era = shifted - era * _DAYS_PER_ERA  # [0, 146096]
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365  # [0, 399]
    day_of_march_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    march_month = (5 * day_of_march_year + 2) // 153  # 0 = March .. 11 = February
    day = day_of_march_year - (153 * march_month + 2) // 5 + 1
    month = (march_month + 2) % 12 + 1
    year = year_of_era + era * 400 + march_month // 10  # January and February: the next year
    return year, month, day


def _january_first(year):
    """Day number of January 1st of ``year``: Hinnant's days_from_civil(year, 1, 1)."""
    march_year = year - 1  # January is month 10 of the March year before
    era = march_year // 400
    year_of_era = march_year - era * 400
    day_of_era = 365 * year_of_era + year_of_era // 4 - year_of_era // 100 + 306
    return era * _DAYS_PER_ERA + day_of_era - _DAYS_0000_03_01_TO_EPOCH


def _tf_calendar_fields(tf, timestamps):
    """The calendar fields of ``_calendar_fields`` as int32 tensors of int64 ``timestamps``."""
    days, second_of_day = _tf_days_and_seconds(tf, timestamps)
    fields = _day_and_clock_fields(days, second_of_day)
    year, month, day = _civil_from_days(days)
    thursday = fields.pop("thursday")
    thursday_year, _, _ = _civil_from_days(thursday)
    return {
        **fields,
        "day": day,
        "dayofyear": days - _january_first(year) + 1,
        "month": month,
        "isoweek": (thursday - _january_first(thursday_year)) // 7 + 1,
    }


def _timestamps_tensor(tf, function_name, timestamps):
    """``timestamps`` as a dense int64 tensor of rank >= 1, checked to lie in TF_TIMESTAMP_RANGE
    (when the graph runs; XLA and TFLite drop that check), else a clear error."""
    from tf_tsembed import _checks

    expected = "an int64 tensor of seconds since 1970-01-01 (UTC), shape (..., L)"
    if not tf.is_tensor(timestamps):
        timestamps = np.asarray(timestamps)  # Python ints become int64, as TensorFlow would not
        if timestamps.dtype.kind == "M":
            raise TypeError(
                f"{function_name}: `timestamps` must be {expected}; received datetime64 values. "
                f"Convert them with `np.asarray(dates, 'datetime64[s]').astype(np.int64)`."
            )
    timestamps = _checks.dense(function_name, "`timestamps`", timestamps)
    if timestamps.dtype != tf.int64:
        raise TypeError(
            f"{function_name}: `timestamps` must be {expected}; received dtype "
            f"{timestamps.dtype.name}."
        )
    if timestamps.shape.rank == 0:
        raise ValueError(
            f"{function_name}: `timestamps` must be {expected}; received shape (), a scalar. "
            f"Pass [timestamp] for a single one."
        )
    low, high = TF_TIMESTAMP_RANGE
    inside = (timestamps >= low) & (timestamps < high)
    return _checks.ensure(
        timestamps,
        inside,
        f"{function_name}: `timestamps` must lie in [{low}, {high}) (about 1.1 million years "
        f"either side of 1970)",
    )


def time_features_tf(timestamps, freq: str = "h"):
    """``time_features`` as TensorFlow ops: float32 ``(..., L, num_time_features(freq))``.

    ``timestamps`` is an int64 tensor of shape ``(..., L)`` holding seconds since
    1970-01-01 00:00:00, naive dates read as UTC (NumPy's ``datetime64[s]`` as int64); other
    dtypes raise TypeError. The columns and their scaling are those of ``time_features``; the
    calendar is integer arithmetic (Hinnant's civil_from_days), exact for timestamps in
    ``TF_TIMESTAMP_RANGE`` (about a million years either side of 1970; outside it an eager or
    graph call raises InvalidArgumentError, an XLA or TFLite one returns wrong dates). The
    scaling runs in float32, within 1e-7 of the float64 NumPy values. Static shapes stay
    static; it compiles with XLA and converts to TFLite with builtin ops only. Yearly
    frequencies have no features: ``(..., L, 0)``.

    >>> import tensorflow as tf
    >>> dates = np.array(["2021-01-03 12:45:00", "1969-12-31 23:59:59"], "datetime64[s]")
    >>> stamps = tf.constant(dates.astype(np.int64))  # [1609677900, -1]
    >>> features = time_features_tf(stamps, freq="h")
    >>> bool(np.allclose(features, time_features(dates, freq="h"), rtol=0, atol=1e-7))
    True
    >>> time_features_tf(stamps[None], freq="w").numpy().round(4)
    array([[[-0.4333,  0.5   ],
            [ 0.5   , -0.5   ]]], dtype=float32)
    """
    feature_names = _FEATURES_BY_UNIT[parse_freq(freq)]
    import tensorflow as tf

    timestamps = _timestamps_tensor(tf, "time_features_tf", timestamps)
    if not feature_names:
        return tf.zeros_like(timestamps, tf.float32)[..., tf.newaxis][..., :0]
    fields = _tf_calendar_fields(tf, timestamps)
    columns = [_scaled(name, tf.cast(fields[name], tf.float32)) for name in feature_names]
    return tf.stack(columns, axis=-1)


def time_marks_tf(timestamps, freq: str = "h"):
    """``time_marks`` as TensorFlow ops: int32 ``(..., L, num_time_marks(freq))``.

    ``timestamps`` is taken as in ``time_features_tf``; the marks equal ``time_marks``'s
    exactly.

    >>> import tensorflow as tf
    >>> stamps = tf.constant([1609677900, -1], tf.int64)  # 2021-01-03 12:45, 1969-12-31 23:59:59
    >>> time_marks_tf(stamps, freq="15min").numpy()
    array([[ 1,  3,  6, 12,  3],
           [12, 31,  2, 23,  3]], dtype=int32)
    """
    fields_of_freq = mark_fields(freq)
    import tensorflow as tf

    timestamps = _timestamps_tensor(tf, "time_marks_tf", timestamps)
    fields = _tf_calendar_fields(tf, timestamps)
    return tf.stack([fields[field] for _, field, _ in fields_of_freq], axis=-1)
