"""Forecasts the rows after a CSV's end with a SavedModel written by tf_tsembed.serving.

    python -m examples.predict --model_dir served/ --csv ETTh1.csv --out forecast.csv

Reads the file with `tf_tsembed.tslib_data.read_csv`, takes its last `seq_len` rows (the columns
the model reads, by name), calls the SavedModel's `serving_default` and writes the next
`pred_len` rows as `date,<output names>` in the file's units, dates continuing the file's step
(written with the csv module: a column name holding a comma or a quote is quoted).

Dates are written naive, as `2018-06-26 20:00:00`: a file's naive dates are continued as they
are; a file whose dates carry UTC offsets is read as instants converted to UTC (read_csv's note
says so, printed), so its forecast dates are UTC, written without an offset, and the summary
line says "dates in UTC".

Refused (one `error:` line, exit 2), before the model is served: a `--model_dir` that is not a
directory or whose `assets/forecaster.json` is missing, not JSON or lacks what predict reads
(names_in, names_out, seq_len, pred_len, freq); a file missing one of the model's columns, one
shorter than seq_len, a window whose step varies (the SavedModel would continue its last step)
or contradicts the model's freq, dates that are not whole seconds (the served timestamps are
whole seconds), a value beyond float32 (the served input type); an existing --out without
--overwrite, --out equal to --csv or to --model_dir or inside it. The output is written to a
temporary sibling and renamed into place.
"""

import csv

import numpy as np
from absl import flags

from examples import cli, outputs

FLAGS = flags.FLAGS
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def define_flags():
    """The script's flags, defined when it runs (importing the module defines none)."""
    flags.DEFINE_string(
        "model_dir", None, "SavedModel written by tf_tsembed.serving.export_forecaster."
    )
    flags.DEFINE_string("csv", None, "CSV with a `date` column and the model's input columns.")
    flags.DEFINE_string("out", None, "Where to write the forecast CSV (date,<output names>).")
    cli.define_overwrite()
    for name in ("model_dir", "csv", "out"):
        flags.mark_flag_as_required(name)


def read_metadata(model_dir):
    """`tf_tsembed.serving.read_metadata(model_dir)`, its refusals (not a directory, no or bad
    metadata) a ValueError naming --model_dir."""
    from tf_tsembed import serving

    try:
        return serving.read_metadata(model_dir)
    except ValueError as error:
        text = str(error)  # about the directory ('PATH is not ...') or a file in it
        if text.startswith(repr(model_dir)):
            raise ValueError(f"--model_dir={text}") from None
        raise ValueError(f"--model_dir={model_dir!r}: {text}") from None


def window(path, dates, names, values, metadata):
    """`(values (1, seq_len, enc_in) float32, timestamps (1, seq_len) int64)` of the file's last
    seq_len rows of the model's input columns; ValueError naming what is missing or irregular:
    dates not whole seconds, an uneven step or one contradicting the model's freq, a value
    beyond float32."""
    names_in, seq_len = metadata["names_in"], metadata["seq_len"]
    missing = [name for name in names_in if name not in names]
    if missing:
        raise ValueError(
            f"{path} lacks the model's input columns {missing}; the model reads {names_in}, "
            f"the file has {names}."
        )
    if len(dates) < seq_len:
        raise ValueError(
            f"{path} has {len(dates)} rows; the model reads the last seq_len={seq_len} rows."
        )
    columns = [names.index(name) for name in names_in]
    first_row = len(dates) - seq_len + 1  # 1-based, among the file's data rows
    exact = np.asarray(dates[-seq_len:], "datetime64[ns]")
    fractional = exact.astype(np.int64) % 1_000_000_000 != 0
    if np.any(fractional):
        first = int(np.argmax(fractional))
        raise ValueError(
            f"{path}: row {first_row + first} of the data ({exact[first]}) is not a whole "
            f"second; the SavedModel's timestamps are whole seconds (the fraction would be "
            f"dropped): round the dates to seconds."
        )
    stamps = exact.astype("datetime64[s]")
    steps = np.diff(stamps)
    if np.any(steps != steps[-1]):
        first = int(np.argmax(steps != steps[-1]))
        raise ValueError(
            f"{path}: the last {seq_len} rows are not evenly spaced: {stamps[first]} -> "
            f"{stamps[first + 1]} ({steps[first]}) differs from the window's last step "
            f"({steps[-1]}); the forecast continues a regular step."
        )
    _check_freq(path, exact, metadata["freq"])
    window_values = values[-seq_len:, columns]
    too_large = np.abs(window_values) > np.finfo(np.float32).max
    if np.any(too_large):
        row, column = np.argwhere(too_large)[0]
        raise ValueError(
            f"{path}: row {first_row + row} of the data ({exact[row]}), column "
            f"{names_in[column]!r}: {window_values[row, column]:g} is beyond float32 "
            f"(max {np.finfo(np.float32).max:.4g}), the SavedModel's input type; rescale it."
        )
    return window_values.astype(np.float32)[None], stamps.astype(np.int64)[None]


def _check_freq(path, dates, freq):
    """Refuses an evenly spaced window whose step contradicts the model's freq
    (`examples.data.check_freq`: an hourly model would forecast a 15-minute file)."""
    from examples import data  # TensorFlow: not at import, so that --help answers at once

    try:
        data.check_freq(freq, dates, flag="freq")
    except ValueError:
        step = np.timedelta64(int(data.median_step_seconds(dates)), "s")
        raise ValueError(
            f"{path}: the window's rows are {step} apart ({data.infer_freq(dates)!r}), but the "
            f"model in --model_dir was trained at freq {freq!r}: its time features and "
            f"future dates would not fit; give a file of the model's step."
        ) from None


def write_forecast(path, timestamps, forecast, names_out, overwrite):
    """Writes `date,<names_out>` rows atomically; dates formatted like '2018-06-26 20:00:00'."""
    dates = timestamps.astype("datetime64[s]").astype(object)
    with outputs.replacing_file(path, overwrite=overwrite, newline="") as file:
        writer = csv.writer(file, lineterminator="\n")  # quotes a name with a comma or quote
        writer.writerow(["date", *names_out])
        for date, row in zip(dates, forecast):
            writer.writerow([date.strftime(DATE_FORMAT), *(repr(float(v)) for v in row)])


def main(argv):
    del argv
    from tf_tsembed import serving, tslib_data

    outputs.check(
        files={"out": FLAGS.out},
        inputs={"model_dir": FLAGS.model_dir, "csv": FLAGS.csv},
        overwrite=FLAGS.overwrite,
    )
    metadata = read_metadata(FLAGS.model_dir)
    notes = []
    dates, names, values = tslib_data.read_csv(FLAGS.csv, notes=notes)
    for note in notes:
        print(f"note: {note}", flush=True)
    utc = any("UTC offsets" in note for note in notes)
    window_values, timestamps = window(FLAGS.csv, dates, names, values, metadata)
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(FLAGS.model_dir)
        signature = loaded.signatures[serving.SIGNATURE_KEY]
    except (OSError, KeyError) as error:
        raise ValueError(
            f"--model_dir={FLAGS.model_dir!r} does not serve {serving.SIGNATURE_KEY!r}: {error}"
        ) from None
    served = signature(values=tf.constant(window_values), timestamps=tf.constant(timestamps))
    forecast = served["forecast"].numpy()[0]
    if not np.all(np.isfinite(forecast)):
        raise RuntimeError("the SavedModel returned non-finite forecasts; nothing written.")
    if forecast.shape[-1] != len(metadata["names_out"]):
        raise ValueError(
            f"--model_dir={FLAGS.model_dir!r} forecasts {forecast.shape[-1]} series but its "
            f"metadata names {len(metadata['names_out'])} ({metadata['names_out']}); nothing "
            f"written."
        )
    write_forecast(
        FLAGS.out, served["timestamps"].numpy()[0], forecast, metadata["names_out"],
        FLAGS.overwrite,
    )  # fmt: skip
    zone = "; dates in UTC (the file's UTC offsets converted; written without offset)"
    print(
        f"{len(forecast)} rows forecast after {np.datetime_as_string(dates[-1], 's')} written to "
        f"{FLAGS.out}{zone if utc else ''}"
    )


if __name__ == "__main__":
    cli.run(main, define_flags)
