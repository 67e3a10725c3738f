"""tf_tsembed.timefeatures against docs/formulas.md and a per-element `datetime` reference; its
TensorFlow versions against the NumPy functions, pandas' calendar and the TFLite interpreter."""

import datetime as dt
import doctest
import importlib.util
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

_MODULE_PATH = pathlib.Path(__file__).resolve().parents[1] / "tf_tsembed" / "timefeatures.py"


def _load_module():
    # Loaded by path so that these tests never run the package __init__, which may pull in
    # TensorFlow: the NumPy functions' tests must stay fast. TensorFlow comes in only with the
    # `tf` fixture of the TensorFlow versions' tests (and with their docstring examples).
    spec = importlib.util.spec_from_file_location("timefeatures_under_test", _MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


timefeatures = _load_module()

PANDAS_SKIP_REASON = "pandas is not installed: `pip install .[test]` installs it"
UNITS = ("s", "t", "h", "d", "b", "w", "m", "q", "y")

# --- docs/formulas.md test vectors----------------------------------------------------------------

SPEC_TIMESTAMPS = [
    "2016-07-01 00:00:00",
    "2016-07-01 01:15:30",
    "2020-12-31 23:59:59",
    "2021-01-03 12:45:00",
    "2024-02-29 06:30:15",
]
SPEC_HOURLY_FEATURES = [
    [-0.5, 0.16666667, -0.5, -0.00136986],
    [-0.45652174, 0.16666667, -0.5, -0.00136986],
    [0.5, 0.0, 0.5, 0.5],
    [0.02173913, 0.5, -0.43333333, -0.49452055],
    [-0.23913043, 0.0, 0.43333333, -0.33835616],
]
SPEC_SECONDLY_LEADING_FEATURES = [
    [-0.5, -0.5],
    [0.00847458, -0.24576271],
    [0.5, 0.5],
    [-0.5, 0.26271186],
    [-0.24576271, 0.00847458],
]
SPEC_MARKS = [
    [7, 1, 4, 0, 0],
    [7, 1, 4, 1, 1],
    [12, 31, 3, 23, 3],
    [1, 3, 6, 12, 3],
    [2, 29, 3, 6, 2],
]


def test_spec_hourly_features():
    features = timefeatures.time_features(SPEC_TIMESTAMPS, freq="h")
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, SPEC_HOURLY_FEATURES, rtol=0, atol=1e-7)


def test_spec_secondly_features_prepend_second_and_minute_to_hourly():
    features = timefeatures.time_features(SPEC_TIMESTAMPS, freq="s")
    np.testing.assert_allclose(features[:, :2], SPEC_SECONDLY_LEADING_FEATURES, rtol=0, atol=1e-7)
    np.testing.assert_allclose(features[:, 2:], SPEC_HOURLY_FEATURES, rtol=0, atol=1e-7)


@pytest.mark.parametrize("unit", UNITS)
def test_spec_marks_truncated_to_resolution(unit):
    marks = timefeatures.time_marks(SPEC_TIMESTAMPS, freq=unit)
    assert marks.dtype == np.int32
    expected = np.array(SPEC_MARKS)[:, : timefeatures.num_time_marks(unit)]
    np.testing.assert_array_equal(marks, expected)


# --- Independent reference: Python's datetime, one element at a time ---------------------------

# Restated from docs/formulas.md rather than taken from the module, so a wrong table fails here.
REFERENCE_FEATURE_COLUMNS = {
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
REFERENCE_MARK_COUNTS = {"s": 4, "t": 5, "h": 4, "d": 3, "b": 3, "w": 3, "m": 1, "q": 1, "y": 1}
REFERENCE_FEATURES = {
    "second": lambda stamp: stamp.second / 59 - 0.5,
    "minute": lambda stamp: stamp.minute / 59 - 0.5,
    "hour": lambda stamp: stamp.hour / 23 - 0.5,
    "weekday": lambda stamp: stamp.weekday() / 6 - 0.5,
    "day": lambda stamp: (stamp.day - 1) / 30 - 0.5,
    "dayofyear": lambda stamp: (stamp.timetuple().tm_yday - 1) / 365 - 0.5,
    "month": lambda stamp: (stamp.month - 1) / 11 - 0.5,
    "isoweek": lambda stamp: (stamp.isocalendar()[1] - 1) / 52 - 0.5,
}


def reference_features(stamps, unit):
    columns = REFERENCE_FEATURE_COLUMNS[unit]
    rows = [[REFERENCE_FEATURES[name](stamp) for name in columns] for stamp in stamps]
    return np.array(rows, np.float64).reshape(len(stamps), len(columns))


def reference_marks(stamps, unit):
    rows = [
        [stamp.month, stamp.day, stamp.weekday(), stamp.hour, stamp.minute // 15]
        for stamp in stamps
    ]
    return np.array(rows, np.int64).reshape(len(stamps), 5)[:, : REFERENCE_MARK_COUNTS[unit]]


EPOCH = dt.datetime(1970, 1, 1)
# Year, month and leap-day edges, and seconds just before the epoch (negative offsets).
EDGE_TIMESTAMPS = [
    dt.datetime(1900, 1, 1),
    dt.datetime(1900, 3, 1),
    dt.datetime(1969, 12, 31, 23, 59, 59),
    dt.datetime(1970, 1, 1),
    dt.datetime(2000, 2, 29, 12),
    dt.datetime(2015, 12, 31, 23, 59, 59),
    dt.datetime(2016, 1, 3),
    dt.datetime(2016, 1, 4),
    dt.datetime(2020, 12, 31, 23, 59, 59),
    dt.datetime(2021, 1, 3, 12, 45),
    dt.datetime(2021, 1, 4),
    dt.datetime(2024, 12, 31, 23, 59, 59),
    dt.datetime(2100, 2, 28, 23, 59, 59),
    dt.datetime(2100, 3, 1),
    dt.datetime(2100, 12, 31, 23, 59, 59),
]


def _random_timestamps(count, seed):
    rng = np.random.default_rng(seed)
    first = int((dt.datetime(1900, 1, 1) - EPOCH).total_seconds())
    last = int((dt.datetime(2100, 12, 31, 23, 59, 59) - EPOCH).total_seconds())
    offsets = rng.integers(first, last, size=count, endpoint=True)
    return [EPOCH + dt.timedelta(seconds=int(offset)) for offset in offsets] + EDGE_TIMESTAMPS


STAMPS = _random_timestamps(3000, seed=20240229)
STAMPS_DATETIME64 = np.array(STAMPS, dtype="datetime64[s]")


@pytest.mark.parametrize("unit", UNITS)
def test_features_match_datetime_reference(unit):
    features = timefeatures.time_features(STAMPS_DATETIME64, freq=unit)
    assert features.dtype == np.float32
    assert features.shape == (len(STAMPS), len(REFERENCE_FEATURE_COLUMNS[unit]))
    np.testing.assert_allclose(features, reference_features(STAMPS, unit), rtol=0, atol=1e-7)


@pytest.mark.parametrize("unit", UNITS)
def test_marks_match_datetime_reference(unit):
    marks = timefeatures.time_marks(STAMPS_DATETIME64, freq=unit)
    assert marks.dtype == np.int32
    np.testing.assert_array_equal(marks, reference_marks(STAMPS, unit))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime.max),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from(UNITS),
)
def test_any_year_matches_datetime_reference_and_stays_in_range(stamps, unit):
    whole_seconds = [stamp.replace(microsecond=0) for stamp in stamps]
    features = timefeatures.time_features(stamps, freq=unit)
    np.testing.assert_allclose(features, reference_features(whole_seconds, unit), rtol=0, atol=1e-7)
    assert np.all((features >= -0.5) & (features <= 0.5))
    np.testing.assert_array_equal(
        timefeatures.time_marks(stamps, freq=unit), reference_marks(whole_seconds, unit)
    )


@pytest.mark.parametrize(
    "date, iso_week",
    [
        ("2020-12-31", 53),
        ("2021-01-03", 53),
        ("2021-01-04", 1),
        ("2015-12-31", 53),
        ("2016-01-03", 53),
        ("2016-01-04", 1),
        ("2018-12-31", 1),
        ("2019-12-29", 52),
        ("2008-12-29", 1),
        ("2010-01-03", 53),
        ("1969-12-31", 1),
        ("1900-01-01", 1),
        ("2099-12-31", 53),
        ("2100-12-31", 52),
    ],
)
def test_iso_week_at_year_boundaries(date, iso_week):
    assert dt.date.fromisoformat(date).isocalendar()[1] == iso_week
    week_feature = timefeatures.time_features([date], freq="w")[0, 1]
    assert week_feature == pytest.approx((iso_week - 1) / 52 - 0.5, abs=1e-7)


# --- Input forms --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda stamps: list(stamps), id="datetime-list"),
        pytest.param(
            lambda stamps: [stamp.isoformat(sep=" ") for stamp in stamps], id="string-list"
        ),
        pytest.param(lambda stamps: np.array(stamps, dtype=object), id="object-array"),
        pytest.param(lambda stamps: np.array(stamps, dtype="datetime64[ns]"), id="datetime64-ns"),
        pytest.param(
            lambda stamps: np.array(stamps, dtype="datetime64[ms]") + np.timedelta64(999, "ms"),
            id="datetime64-ms-floored",
        ),
    ],
)
@pytest.mark.parametrize("unit", ["s", "h", "w"])
def test_input_forms_agree_with_datetime64_seconds(convert, unit):
    dates = convert(STAMPS[:500])
    np.testing.assert_array_equal(
        timefeatures.time_features(dates, unit),
        timefeatures.time_features(STAMPS_DATETIME64[:500], unit),
    )
    np.testing.assert_array_equal(
        timefeatures.time_marks(dates, unit), timefeatures.time_marks(STAMPS_DATETIME64[:500], unit)
    )


def test_coarse_datetime64_units_are_read_at_their_start():
    days = np.array(["2021-01-03", "2024-02-29"], dtype="datetime64[D]")
    np.testing.assert_array_equal(
        timefeatures.time_marks(days, "t"), [[1, 3, 6, 0, 0], [2, 29, 3, 0, 0]]
    )
    months = np.array(["2021-05"], dtype="datetime64[M]")
    np.testing.assert_array_equal(timefeatures.time_marks(months, "d"), [[5, 1, 5]])


def test_aware_datetimes_use_wall_clock_time():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    aware = [dt.datetime(2021, 1, 3, 1, 45, tzinfo=plus_two)]
    np.testing.assert_array_equal(timefeatures.time_marks(aware, "t"), [[1, 3, 6, 1, 3]])


@pytest.mark.parametrize("unit", UNITS)
def test_empty_dates_give_zero_rows(unit):
    assert timefeatures.time_features([], unit).shape == (0, timefeatures.num_time_features(unit))
    assert timefeatures.time_marks([], unit).shape == (0, timefeatures.num_time_marks(unit))


def test_yearly_has_no_features():
    features = timefeatures.time_features(SPEC_TIMESTAMPS, freq="A-DEC")
    assert features.shape == (5, 0) and features.dtype == np.float32


@pytest.mark.parametrize(
    "bad_dates, expected_in_message",
    [
        pytest.param(np.array([SPEC_TIMESTAMPS[:2]], dtype="datetime64[s]"), "(1, 2)", id="2-D"),
        pytest.param("2021-01-03", "received a str", id="scalar-string"),
        pytest.param(
            np.array(["2021-01-03", "2021-01-04", "NaT", "NaT"], dtype="datetime64[s]"),
            "position 2",
            id="NaT",
        ),
        pytest.param(["2021-01-03", None], "position 1", id="None-in-list"),
        pytest.param([1, 2, 3], "int64", id="integers"),
        pytest.param(np.array([1, 2], dtype="timedelta64[s]"), "timedelta64", id="timedeltas"),
        pytest.param(["2021-13-45"], "2021-13-45", id="unparsable-string"),
    ],
)
@pytest.mark.parametrize("function", [timefeatures.time_features, timefeatures.time_marks])
def test_bad_dates_raise_value_error_naming_dates(function, bad_dates, expected_in_message):
    with pytest.raises(ValueError, match="dates") as raised:
        function(bad_dates, "h")
    assert expected_in_message in str(raised.value)


# --- Frequency strings --------------------------------------------------------------------------

FREQ_ALIASES = {
    "s": ["s", "S", "10s", "10S", "sec", "1s"],
    "t": ["t", "T", "min", "MIN", "15min", "15T", "5t"],
    "h": ["h", "H", "3h", "24H"],
    "d": ["d", "D", "2d"],
    "b": ["b", "B", "5B"],
    "w": ["w", "W", "2W", "W-SUN", "W-MON", "w-fri"],
    "m": ["m", "M", "ME", "me", "MS", "3M", "2MS"],
    "q": ["q", "Q", "QE", "QS", "Q-DEC", "QS-JAN", "QE-NOV", "2Q"],
    "y": ["a", "A", "y", "Y", "YE", "YS", "AS", "A-DEC", "AS-JAN", "Y-JUN", "YE-DEC", "YS-JAN"],
}
EXPECTED_FEATURE_COUNTS = {"s": 6, "t": 5, "h": 4, "d": 3, "b": 3, "w": 2, "m": 1, "q": 1, "y": 0}


@pytest.mark.parametrize(
    "freq, unit", [(freq, unit) for unit, freqs in FREQ_ALIASES.items() for freq in freqs]
)
def test_freq_alias_maps_to_unit(freq, unit):
    assert timefeatures.parse_freq(freq) == unit
    assert timefeatures.num_time_features(freq) == EXPECTED_FEATURE_COUNTS[unit]
    assert timefeatures.num_time_marks(freq) == REFERENCE_MARK_COUNTS[unit]
    features = timefeatures.time_features(SPEC_TIMESTAMPS, freq)
    assert features.shape == (5, EXPECTED_FEATURE_COUNTS[unit])


@pytest.mark.parametrize(
    "bad_freq",
    [
        "",
        "ms",
        "10ms",
        "Ms",
        "mS",
        "L",
        "l",
        "us",
        "U",
        "ns",
        "N",  # sub-second
        "0h",
        "00min",
        "-1h",
        "1.5h",
        "+3h",  # multiples
        " h",
        "h ",
        "hour",
        "hourly",
        "x",
        "15",
        "h-",
        "\uff13h",  # unknown spellings
        "W-DEC",
        "Q-SUN",
        "H-MON",
        "M-JAN",
        "D-SUN",  # anchors that do not fit
        None,
        1,
        1.0,
        b"h",  # not strings
    ],
)
def test_bad_freq_raises_value_error_naming_received_value(bad_freq):
    with pytest.raises(ValueError, match="freq") as raised:
        timefeatures.parse_freq(bad_freq)
    assert repr(bad_freq) in str(raised.value)


@pytest.mark.parametrize(
    "freq, expected",
    [
        ("2h", (2, "h")),
        ("15min", (15, "t")),
        ("15T", (15, "t")),
        ("12M", (12, "m")),
        ("2MS", (2, "m")),
        ("W-MON", (1, "w")),
        ("2W-SUN", (2, "w")),
        ("QS-JAN", (1, "q")),
        ("10s", (10, "s")),
        ("007D", (7, "d")),
        ("h", (1, "h")),
        ("A", (1, "y")),
    ],
)
def test_parse_freq_multiple_splits_multiple_and_unit(freq, expected):
    assert timefeatures.parse_freq_multiple(freq) == expected


def test_parse_freq_multiple_agrees_with_parse_freq_on_every_alias():
    for unit, freqs in FREQ_ALIASES.items():
        for freq in freqs:
            multiple, parsed_unit = timefeatures.parse_freq_multiple(freq)
            assert parsed_unit == unit == timefeatures.parse_freq(freq)
            digits = re.match(r"[0-9]*", freq).group()
            assert type(multiple) is int and multiple == (int(digits) if digits else 1)


@pytest.mark.parametrize("bad_freq", ["", "ms", "0h", "-1h", "1.5h", "W-DEC", "hour", None, 2])
def test_parse_freq_multiple_refuses_what_parse_freq_refuses(bad_freq):
    with pytest.raises(ValueError) as expected:
        timefeatures.parse_freq(bad_freq)
    with pytest.raises(ValueError) as raised:
        timefeatures.parse_freq_multiple(bad_freq)
    assert str(raised.value) == str(expected.value)


@pytest.mark.parametrize("function", [timefeatures.time_features, timefeatures.time_marks])
def test_feature_functions_validate_freq(function):
    with pytest.raises(ValueError, match="'ms'"):
        function(SPEC_TIMESTAMPS, "ms")


# --- Pandas, docstrings, purity -----------------------------------------------------------------


@pytest.mark.parametrize("unit", UNITS)
def test_pandas_inputs_match_datetime64(unit):
    pd = pytest.importorskip("pandas", reason=PANDAS_SKIP_REASON)
    naive = pd.DatetimeIndex(STAMPS_DATETIME64)
    aware = naive.tz_localize(dt.timezone(dt.timedelta(hours=5, minutes=30)))
    expected_features = timefeatures.time_features(STAMPS_DATETIME64, unit)
    expected_marks = timefeatures.time_marks(STAMPS_DATETIME64, unit)
    # Aware input keeps its wall-clock time, which is the naive time it was localised from.
    for dates in (naive, pd.Series(naive), aware, pd.Series(aware)):
        np.testing.assert_array_equal(timefeatures.time_features(dates, unit), expected_features)
        np.testing.assert_array_equal(timefeatures.time_marks(dates, unit), expected_marks)


@pytest.mark.parametrize("unit", ["h", "d", "m"])
def test_pandas_periods_are_taken_at_their_start(unit):
    pd = pytest.importorskip("pandas", reason=PANDAS_SKIP_REASON)
    freq = {"h": "h", "d": "D", "m": "M"}[unit]
    periods = pd.period_range("2023-12-30 22:00", periods=30, freq=freq)
    starts = np.array([p.start_time for p in periods], "datetime64[s]")
    for function in (timefeatures.time_features, timefeatures.time_marks):
        for dates in (periods, pd.Series(periods)):
            np.testing.assert_array_equal(function(dates, unit), function(starts, unit))


@pytest.mark.parametrize(
    "dates, kind",
    [
        ((d for d in ["2016-07-01"]), "generator"),
        ({"2016-07-01"}, "set"),
        ({"date": "2016-07-01"}, "dict"),
        ("2016-07-01", "str"),
        (dt.datetime(2016, 7, 1), "datetime"),
        (np.datetime64("2016-07-01"), "datetime64"),
        (None, "NoneType"),
    ],
)
def test_dates_that_are_not_a_sequence_raise_naming_what_they_are(dates, kind):
    for function in (timefeatures.time_features, timefeatures.time_marks):
        message = rf"dates must be a 1-D sequence .*; received a {kind}\."
        with pytest.raises(ValueError, match=message):
            function(dates, "h")


def test_docstring_examples_run():
    results = doctest.testmod(timefeatures)
    assert results.attempted >= 6
    assert results.failed == 0


def test_module_imports_neither_tensorflow_nor_pandas():
    check = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('timefeatures', {str(_MODULE_PATH)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted({'tensorflow', 'pandas', 'keras'} & set(sys.modules)))\n"
    )
    imported = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    )
    assert imported.stdout.strip() == "[]"


# --- The TensorFlow versions, against the NumPy functions and pandas ----------------------------

TF_FREQS = [
    *("s", "10s", "t", "T", "15min", "h", "2h", "d", "D", "b", "5B"),
    *("w", "W-MON", "W-SUN", "2W", "m", "ME", "MS", "3M"),
    *("q", "QE", "QS", "Q-DEC", "QS-JAN", "QE-NOV", "2Q", "y", "A", "YS", "A-JUN", "YE-DEC"),
]
assert {timefeatures.parse_freq(freq) for freq in TF_FREQS} == set(UNITS)
# Leap days of leap and non-leap centuries, ISO week 53 years (2015, 2020, 2026) and their
# neighbours, the first and last days of NumPy's four-digit years.
TF_EDGE_TIMESTAMPS = [
    dt.datetime(1900, 2, 28, 23, 59, 59),
    dt.datetime(1904, 2, 29, 23, 59, 59),
    dt.datetime(1904, 12, 31),
    dt.datetime(2000, 3, 1),
    dt.datetime(2000, 12, 31, 12),
    dt.datetime(2026, 12, 31),
    dt.datetime(2027, 1, 3, 23, 59, 59),
    dt.datetime(2027, 1, 4),
    dt.datetime(1, 1, 1),
    dt.datetime(9999, 12, 31, 23, 59, 59),
]
_TF_LOW, _TF_HIGH = timefeatures.TF_TIMESTAMP_RANGE
TF_SECONDS = np.concatenate(
    [
        np.array(STAMPS + TF_EDGE_TIMESTAMPS, "datetime64[s]").astype(np.int64),
        # The ends of the supported range, and a few years inside it that datetime lacks.
        [_TF_LOW, _TF_LOW + 1, _TF_HIGH - 1, -(2**40), 2**40, -62135596801],
        np.random.default_rng(7).integers(_TF_LOW, _TF_HIGH, 50),
    ]
)
TF_DATES = TF_SECONDS.astype("datetime64[s]")


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")  # only these tests need TensorFlow


@pytest.fixture(scope="module")
def tf_results(tf):
    """``{path: {freq: (features, marks)}}`` for every freq of TF_FREQS, eagerly on TF_SECONDS
    and from one XLA compilation on (2, L): TF_SECONDS and TF_SECONDS reversed."""

    def every_freq(seconds):
        return {
            freq: (
                timefeatures.time_features_tf(seconds, freq),
                timefeatures.time_marks_tf(seconds, freq),
            )
            for freq in TF_FREQS
        }

    seconds = tf.constant(TF_SECONDS)
    compiled = tf.function(every_freq, jit_compile=True)(tf.stack([seconds, seconds[::-1]]))
    return {"eager": every_freq(seconds), "xla": compiled}


@pytest.mark.parametrize("freq", TF_FREQS)
def test_tf_functions_match_numpy_eagerly_and_under_xla(tf_results, freq):
    expected_features = timefeatures.time_features(TF_DATES, freq)
    expected_marks = timefeatures.time_marks(TF_DATES, freq)
    for path, results in tf_results.items():
        features, marks = results[freq]
        assert features.dtype == "float32" and marks.dtype == "int32", path
        if path == "xla":  # static shapes, and the batch axis leaves each row alone
            assert features.shape == (2, *expected_features.shape), path
            assert marks.shape == (2, *expected_marks.shape), path
            features, marks = features[1, ::-1], marks[1, ::-1]
        np.testing.assert_allclose(features, expected_features, rtol=0, atol=1e-7, err_msg=path)
        np.testing.assert_array_equal(marks, expected_marks, err_msg=path)


# Restated from docs/formulas.md: field -> (pandas attribute of a DatetimeIndex, first, span).
PANDAS_FEATURES = {
    "second": (lambda index: index.second, 0, 59),
    "minute": (lambda index: index.minute, 0, 59),
    "hour": (lambda index: index.hour, 0, 23),
    "weekday": (lambda index: index.day_of_week, 0, 6),
    "day": (lambda index: index.day, 1, 30),
    "dayofyear": (lambda index: index.day_of_year, 1, 365),
    "month": (lambda index: index.month, 1, 11),
    "isoweek": (lambda index: index.isocalendar().week.to_numpy(np.int64), 1, 52),
}


@pytest.mark.parametrize(
    "freq, feature_names",
    [
        ("s", ("second", "minute", "hour", "weekday", "day", "dayofyear")),
        ("W-SUN", ("day", "isoweek")),
        ("MS", ("month",)),
    ],
)
def test_tf_functions_match_pandas_attributes(tf, freq, feature_names):
    """pandas' own calendar, independent of the NumPy functions, on 1900..2100 and the edges."""
    pd = pytest.importorskip("pandas", reason=PANDAS_SKIP_REASON)
    dates = np.array(STAMPS + TF_EDGE_TIMESTAMPS[:-2], "datetime64[s]")  # pandas: 1677..2262
    index = pd.DatetimeIndex(dates)
    seconds = tf.constant(dates.astype(np.int64))
    expected = [
        (np.asarray(attribute(index), np.float64) - first) / span - 0.5
        for attribute, first, span in (PANDAS_FEATURES[name] for name in feature_names)
    ]
    features = timefeatures.time_features_tf(seconds, freq)
    np.testing.assert_allclose(features, np.stack(expected, -1), rtol=0, atol=1e-7)
    expected_marks = np.stack(
        [index.month, index.day, index.day_of_week, index.hour, index.minute // 15], -1
    )
    np.testing.assert_array_equal(timefeatures.time_marks_tf(seconds, "15min"), expected_marks)


def test_tflite_builtin_ops_give_the_numpy_values(tf):
    """Converted with builtin ops only (the converter's default: Select TF ops would fail it)."""
    module = tf.Module()
    module.calendar = tf.function(
        lambda seconds: {
            "features_s": timefeatures.time_features_tf(seconds, "s"),
            "features_w": timefeatures.time_features_tf(seconds, "W-MON"),
            "features_m": timefeatures.time_features_tf(seconds, "MS"),
            "marks": timefeatures.time_marks_tf(seconds, "15min"),
        },
        input_signature=[tf.TensorSpec(TF_SECONDS.shape, tf.int64, name="seconds")],
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.calendar.get_concrete_function()], module
    )
    with warnings.catch_warnings():
        # tf.lite.Interpreter announces its move to ai_edge_litert; TF 2.21 still has it.
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_content=converter.convert())
    got = interpreter.get_signature_runner()(seconds=TF_SECONDS)
    for freq, key in (("s", "features_s"), ("W-MON", "features_w"), ("MS", "features_m")):
        expected = timefeatures.time_features(TF_DATES, freq)
        np.testing.assert_allclose(got[key], expected, rtol=0, atol=1e-7, err_msg=key)
    np.testing.assert_array_equal(got["marks"], timefeatures.time_marks(TF_DATES, "15min"))


def test_tf_yearly_features_have_zero_columns(tf):
    features = timefeatures.time_features_tf(tf.zeros((2, 3), tf.int64), "A-DEC")
    assert features.shape == (2, 3, 0) and features.dtype == tf.float32


def test_tf_functions_take_python_ints_and_numpy_int64(tf):
    seconds = [1609677900, -1]
    expected = timefeatures.time_marks(np.array(seconds).astype("datetime64[s]"), "t")
    np.testing.assert_array_equal(timefeatures.time_marks_tf(seconds, "t"), expected)
    np.testing.assert_array_equal(timefeatures.time_marks_tf(np.array(seconds), "t"), expected)


def test_tf_functions_refuse_timestamps_out_of_range(tf):
    for seconds in ([_TF_LOW - 1], [0, _TF_HIGH]):
        for function in (timefeatures.time_features_tf, timefeatures.time_marks_tf):
            with pytest.raises(tf.errors.InvalidArgumentError, match="`timestamps` must lie in"):
                function(np.array(seconds, np.int64), "h")


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda tf: tf.constant([1, 2], tf.int32), TypeError, "received dtype int32"),
        (lambda tf: tf.constant([1, 2], tf.uint64), TypeError, "received dtype uint64"),
        (lambda tf: [1.0, 2.5], TypeError, "received dtype float64"),
        (lambda tf: ["2021-01-03"], TypeError, "received dtype string"),
        (
            lambda tf: np.array(["2021-01-03"], "datetime64[s]"),
            TypeError,
            r"received datetime64 values\. Convert them with",
        ),
        (lambda tf: tf.ragged.constant([[1], [2, 3]], tf.int64), TypeError, "tf.RaggedTensor"),
        (lambda tf: tf.constant(1, tf.int64), ValueError, r"received shape \(\), a scalar"),
    ],
)
@pytest.mark.parametrize("name", ["time_features_tf", "time_marks_tf"])
def test_tf_functions_refuse_other_timestamps_naming_the_parameter(tf, name, make, error, message):
    with pytest.raises(error, match=rf"{name}\b.*`timestamps`.*{message}"):
        getattr(timefeatures, name)(make(tf), "h")


@pytest.mark.parametrize("name", ["time_features_tf", "time_marks_tf"])
def test_tf_functions_refuse_bad_freq_as_parse_freq_does(tf, name):
    with pytest.raises(ValueError) as expected:
        timefeatures.parse_freq("10ms")
    with pytest.raises(ValueError) as raised:
        getattr(timefeatures, name)(tf.zeros((3,), tf.int64), "10ms")
    assert str(raised.value) == str(expected.value)


def test_step_seconds_of_fixed_units_as_pandas_and_none_for_calendar_ones():
    pd = pytest.importorskip("pandas")
    for freq, alias in (("10s", "10s"), ("15min", "15min"), ("2h", "2h"), ("3D", "3D"),
                        ("W", "7D"), ("W-MON", "7D")):  # fmt: skip
        assert timefeatures.step_seconds(freq) == pd.to_timedelta(alias).total_seconds()
    for freq in ("B", "MS", "M", "QS", "A", "12M"):
        assert timefeatures.step_seconds(freq) is None
    with pytest.raises(ValueError, match="unknown unit"):
        timefeatures.step_seconds("fortnight")
