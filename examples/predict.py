"""Forecasts the rows after a CSV's end with a SavedModel written by tf_tsembed.serving.

    python -m examples.predict --model_dir served/ --csv ETTh1.csv --out forecast.csv

Reads the file with `tf_tsembed.tslib_data.read_csv`, takes its last `seq_len` rows (the columns
the model reads, by name), calls the SavedModel's `serving_default` and writes the next
`pred_len` rows as `date,<output names>` in the file's units, dates continuing the file's step.
Refused (one `error:` line, exit 2): a file missing one of the model's columns, one shorter than
seq_len, a window whose step varies (the SavedModel would continue its last step), an existing
--out without --overwrite, --out equal to --csv. The output is written to a temporary sibling
and renamed into place.
"""

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


def window(path, dates, names, values, metadata):
    """`(values (1, seq_len, enc_in) float32, timestamps (1, seq_len) int64)` of the file's last
    seq_len rows of the model's input columns; ValueError naming what is missing or irregular."""
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
    stamps = np.asarray(dates[-seq_len:], "datetime64[s]")
    steps = np.diff(stamps)
    if np.any(steps != steps[-1]):
        first = int(np.argmax(steps != steps[-1]))
        raise ValueError(
            f"{path}: the last {seq_len} rows are not evenly spaced: {stamps[first]} -> "
            f"{stamps[first + 1]} ({steps[first]}) differs from the window's last step "
            f"({steps[-1]}); the forecast continues a regular step."
        )
    window_values = values[-seq_len:, columns].astype(np.float32)[None]
    return window_values, stamps.astype(np.int64)[None]


def write_forecast(path, timestamps, forecast, names_out, overwrite):
    """Writes `date,<names_out>` rows atomically; dates formatted like '2018-06-26 20:00:00'."""
    dates = timestamps.astype("datetime64[s]").astype(object)
    with outputs.replacing_file(path, overwrite=overwrite, newline="") as file:
        file.write(",".join(["date", *names_out]) + "\n")
        for date, row in zip(dates, forecast):
            file.write(",".join([date.strftime(DATE_FORMAT), *(repr(float(v)) for v in row)]))
            file.write("\n")


def main(argv):
    del argv
    from tf_tsembed import serving, tslib_data

    outputs.check(
        files={"out": FLAGS.out},
        inputs={"model_dir": FLAGS.model_dir, "csv": FLAGS.csv},
        overwrite=FLAGS.overwrite,
    )
    try:
        metadata = serving.read_metadata(FLAGS.model_dir)
    except FileNotFoundError as error:
        raise ValueError(f"--model_dir: {error}") from None
    dates, names, values = tslib_data.read_csv(FLAGS.csv)
    window_values, timestamps = window(FLAGS.csv, dates, names, values, metadata)
    import tensorflow as tf

    signature = tf.saved_model.load(FLAGS.model_dir).signatures[serving.SIGNATURE_KEY]
    served = signature(values=tf.constant(window_values), timestamps=tf.constant(timestamps))
    forecast = served["forecast"].numpy()[0]
    if not np.all(np.isfinite(forecast)):
        raise RuntimeError("the SavedModel returned non-finite forecasts; nothing written.")
    write_forecast(
        FLAGS.out, served["timestamps"].numpy()[0], forecast, metadata["names_out"],
        FLAGS.overwrite,
    )  # fmt: skip
    print(
        f"{len(forecast)} rows forecast after {np.datetime_as_string(dates[-1], 's')} written to "
        f"{FLAGS.out}"
    )


if __name__ == "__main__":
    cli.run(main, define_flags)
