"""Data handling shared by the examples: sampling frequency, windows, the benchmark as a dict.

The long-horizon benchmark CSVs (ETT, Weather, Electricity, ...) have a `date` column and numeric
columns. Reading them, TSLib's splits and its scaler are the package's
(`tf_tsembed.tslib_data`: `read_csv`, `split_borders`, `standardize`, `scaler_statistics`); here
they become windows as `tf.data` (`make_dataset`, `load_benchmark`).
"""

import numpy as np
import tensorflow as tf

from examples.recipes import protocol_for, script_freq
from tf_tsembed.models.forecast_model import decoder_input
from tf_tsembed.timefeatures import parse_freq_multiple, step_seconds, time_features
from tf_tsembed.tslib_data import (
    check_target,
    model_columns,
    read_csv,
    scaler_statistics,
    split_borders,
    standardize,
)

_DAY = 24 * 3600
# Calendar units whose step varies: the range of a median step that fits them, in days.
_CALENDAR_DAYS = {"m": (28, 31), "q": (89, 92), "y": (365, 366)}


def median_step_seconds(dates):
    """The median spacing of `dates` in whole seconds; sub-second spacing is refused."""
    if len(dates) < 2:
        raise ValueError(f"Need at least 2 dates to tell their spacing; got {len(dates)}.")
    nanoseconds = np.median(np.diff(dates).astype("timedelta64[ns]").astype(np.int64))
    if nanoseconds % 1_000_000_000:
        raise ValueError(
            f"The dates are {nanoseconds / 1e9:g} s apart (median), not a whole number of "
            f"seconds: the time features (tf_tsembed.timefeatures) start at whole seconds, so "
            f"resample the data to whole seconds first."
        )
    return int(nanoseconds // 1_000_000_000)


def infer_freq(dates):
    """The frequency string of the dates' median spacing: 'h', '15min', 'd', 'w', 'm', ..."""
    step = median_step_seconds(dates)
    for unit, (low, high) in _CALENDAR_DAYS.items():
        if low * _DAY <= step <= high * _DAY:
            return unit
    if step == 7 * _DAY:
        return "w"
    for unit, seconds in (("d", _DAY), ("h", 3600), ("min", 60), ("s", 1)):
        if step % seconds == 0:
            multiple = step // seconds
            return unit if multiple == 1 else f"{multiple}{unit}"
    raise AssertionError("unreachable: every whole number of seconds is a multiple of 1 s")


def check_freq(freq, dates, flag="--freq"):
    """Raises ValueError if `freq` (e.g. 'h', '2h', '15min', '3M') contradicts the median spacing
    of `dates`, its multiple included: a step of `multiple` units (calendar units: `multiple`
    times their range of days)."""
    multiple, unit = parse_freq_multiple(freq)
    step = median_step_seconds(dates)
    if unit in _CALENDAR_DAYS:
        low, high = _CALENDAR_DAYS[unit]
        fits = multiple * low * _DAY <= step <= multiple * high * _DAY
    else:  # business days: a median step of one day
        fits = step == (multiple * _DAY if unit == "b" else step_seconds(freq))
    if not fits:
        raise ValueError(
            f"{flag}={freq!r} contradicts the dates, spaced {step} s apart (median), i.e. "
            f"{infer_freq(dates)!r}: leave {flag} out to use the dates' frequency."
        )


def window_starts(border, seq_len, pred_len):
    """Start rows of every stride-1 window `(seq_len inputs, pred_len targets)` inside `border`."""
    start, stop = border
    return np.arange(start, stop - seq_len - pred_len + 1)


def make_dataset(
    inputs,
    targets,
    starts,
    seq_len,
    pred_len,
    batch_size,
    *,
    marks=None,
    label_len=None,
    shuffle_seed=None,
    drop_remainder=False,
):
    """Batches of `inputs, target window` from series: `inputs` the input window, with `marks`
    `(window, its marks)`, and with `label_len` too TSLib's four `[x_enc, x_mark_enc, x_dec,
    x_mark_dec]`.

    `inputs (rows, C)`, `targets (rows,)` or `(rows, C')`, `marks (rows, F)` or None. A window
    starting at row s reads inputs and marks at rows `[s, s + seq_len)` and targets at
    `[s + seq_len, s + seq_len + pred_len)`. With `label_len`, the decoder input is TSLib's
    `dec_inp`, the window's last `label_len` rows then `pred_len` rows of zeros, and its marks
    are those of rows `[s + seq_len - label_len, s + seq_len + pred_len)`. With
    `shuffle_seed`, windows are reshuffled every epoch.
    """
    inputs = tf.constant(inputs, tf.float32)
    targets = tf.constant(targets, tf.float32)
    marks = None if marks is None else tf.constant(marks)
    input_steps = tf.range(seq_len)
    output_steps = tf.range(seq_len, seq_len + pred_len)
    decoder_steps = None if label_len is None else tf.range(seq_len - label_len, seq_len + pred_len)

    def gather(start):  # start: (batch,) -> index matrices (batch, steps)
        rows = start[:, None] + input_steps[None, :]
        future = tf.gather(targets, start[:, None] + output_steps[None, :])
        if marks is None:
            return tf.gather(inputs, rows), future
        if decoder_steps is None:
            return (tf.gather(inputs, rows), tf.gather(marks, rows)), future
        window = tf.gather(inputs, rows)
        decoder_values = decoder_input(window, label_len, pred_len)
        decoder_marks = tf.gather(marks, start[:, None] + decoder_steps[None, :])
        return (window, tf.gather(marks, rows), decoder_values, decoder_marks), future

    dataset = tf.data.Dataset.from_tensor_slices(np.asarray(starts, np.int32))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(starts), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder).map(gather)
    options = tf.data.Options()
    # Multi-worker: each worker gets its share of every global batch from identical pipelines.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def load_benchmark(path, protocol, features, target, freq, seq_len, pred_len):
    """A CSV prepared as TSLib's data loaders do, as a dict.

    `series (rows, C)` standardised on the training rows, `marks (rows, F)` time features
    (`timeenc=1`), `starts` the window starts of train, validation and test, `borders`, the
    `protocol` (from the file name unless given), `freq` (unless given: the scripts' 'h' for the
    files they name, else the dates' own; a given freq the dates contradict is refused), `names`
    and `constant`, the mask of columns `standardize` left unscaled; `mean` and `scale`, the
    training rows' scaler statistics (`scaler_statistics`, for a served model).
    The target is moved to the last column, as TSLib's Dataset_Custom does (MS forecasts it);
    `features="S"` keeps only the target.
    """
    dates, names, values = read_csv(path)
    # The target last for every file (MS forecasts the last column), as Dataset_Custom orders.
    names, values = model_columns(path, names, values, features, target, target_last=True)
    protocol = protocol or protocol_for(path)
    if freq is None:
        freq = script_freq(path) or infer_freq(dates)
    else:
        check_freq(freq, dates)
    borders = split_borders(protocol, len(values), seq_len, pred_len)
    series, constant = standardize(values, borders[0][1])
    mean, scale = scaler_statistics(values, borders[0][1])
    return dict(
        mean=mean,
        scale=scale,
        series=series,
        constant=constant,
        marks=time_features(dates, freq),
        starts=[window_starts(border, seq_len, pred_len) for border in borders],
        borders=borders,
        protocol=protocol,
        freq=freq,
        names=names,
    )


def whole_batches(starts, global_batch, split="a"):
    """The first windows of `starts` that make whole global batches (static shapes); `split`
    names the split in the error."""
    usable = len(starts) // global_batch * global_batch
    if usable == 0:
        raise ValueError(
            f"The {split} split has {len(starts)} windows, fewer than one global batch of "
            f"{global_batch} (--batch_size per replica x replicas): give a smaller --batch_size, "
            f"or more data (a longer --csv, or more --days)."
        )
    return starts[:usable]


def synthetic_series(days, seed):
    """A deterministic hourly series: 4 covariates and a target `OT`, with real timestamps.

    Every column has a daily profile, a weekly one (weekends differ from weekdays, Mondays ramp
    up), a slow trend and AR(1) noise, so the calendar carries signal that the baselines miss.
    """
    dates = np.datetime64("2021-01-04T00", "h") + np.arange(days * 24)
    hour = (dates - dates.astype("datetime64[D]")).astype(np.int64)
    weekday = (dates.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday.
    weekend = (weekday >= 5).astype(np.float64)
    monday_morning = ((weekday == 0) & (hour < 12)).astype(np.float64)
    years = np.arange(len(dates)) / (365.0 * 24)
    rng = np.random.default_rng(seed)

    def ar1(phi, scale):
        shocks = rng.normal(scale=scale, size=len(dates))
        noise = np.empty_like(shocks)
        noise[0] = shocks[0]
        for t in range(1, len(shocks)):
            noise[t] = phi * noise[t - 1] + shocks[t]
        return noise

    def daily(peak_hour, amplitude):
        return amplitude * np.cos(2 * np.pi * (hour - peak_hour) / 24)

    columns = {}
    for i in range(4):
        columns[f"load_{i}"] = (
            5
            + i
            + 2 * years
            + daily(9 + 2 * i, 2 + i / 2) * (1 - 0.5 * weekend)
            - (1.5 + i / 2) * weekend
            + ar1(0.9, 0.3)
        )
    columns["OT"] = (
        20
        + 3 * years
        + daily(15, 3) * (1 - 0.6 * weekend)
        + 0.8 * daily(3, 1)
        - 2.5 * weekend
        - 1.5 * monday_morning
        + ar1(0.8, 0.5)
        + rng.normal(scale=0.2, size=len(dates))
    )
    return dates, list(columns), np.stack(list(columns.values()), axis=1)


def infer_season(dates):
    """Steps per day for sub-daily data, 7 for daily, 52 for weekly, 12 for monthly data."""
    step = median_step_seconds(dates)
    day = 24 * 3600
    if step < day and day % step == 0:
        return int(day // step)
    for period, steps_per_season in ((day, 7), (7 * day, 52)):
        if step == period:
            return steps_per_season
    if 28 * day <= step <= 31 * day:
        return 12
    raise ValueError(f"Cannot infer a season from a median step of {step} s; pass --season.")


def load_data(csv_path, target, freq, days, seed):
    """Dates, names, values, frequency and a one-line description of the CSV or the built-in series.

    The frequency is the dates' own unless `freq` is given; a `freq` they contradict is refused.
    """
    if csv_path:
        dates, names, values = read_csv(csv_path)
        check_target(csv_path, names, target)
        description = f"{csv_path}: {len(dates)} rows x {len(names)} columns"
    else:
        if target != "OT":
            raise ValueError(f"--target must be 'OT' for the built-in data; got {target!r}.")
        dates, names, values = synthetic_series(days, seed)
        description = f"built-in hourly series: {len(dates)} rows x {len(names)} columns"
    if freq is None:
        freq = infer_freq(dates)
    else:
        check_freq(freq, dates)
    return dates, names, values, freq, f"{description}, freq {freq!r}"
