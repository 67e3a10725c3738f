"""A TimesNet trained in PyTorch, converted: its test errors through our model and our served
SavedModel, beside the PyTorch run's own.

    python -m benchmarks.torch_timesnet_train --csv ETTh1.csv --seed 2022 \
        --checkpoint checkpoint.pth --json torch.json
    python -m benchmarks.converted_timesnet --csv ETTh1.csv --checkpoint checkpoint.pth \
        --torch_json torch.json

`tf_tsembed.tslib.load_checkpoint` converts TSLib's `checkpoint.pth` (TSLib 2023's last-row
padding, as the control trains); the test windows of TSLib's ETTh protocol are forecast one at a
time (TimesNet's periods are its batch's, and TSLib tests one at a time) by the Keras model on
TSLib's inputs, then by `serving.export_forecaster`'s SavedModel from the file's raw rows and
int64 timestamps, its forecasts standardised again with the training rows' scaler for the
metrics. Needs torch (to read the checkpoint).
"""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf
from absl import app, flags

FLAGS = flags.FLAGS
SEQ_LEN, LABEL_LEN, PRED_LEN = 96, 48, 96


def test_errors(csv, checkpoint, windows=None):
    """`{"keras": (mse, mae), "served": (mse, mae)}` over the first `windows` test windows
    (all: None) of TSLib's split of `csv` (an ETTh file), for the TimesNet in `checkpoint`."""
    from examples import data, recipes
    from examples.evaluation import errors
    from tf_tsembed import serving, tslib, tslib_data

    size = recipes.settings("timesnet", recipes.data_name(csv), PRED_LEN, {})
    model = tslib.load_checkpoint(
        checkpoint,
        options={"padding": "last_rows"},  # the control trains TSLib 2023's TimesNet
        model="TimesNet",
        seq_len=SEQ_LEN,
        label_len=LABEL_LEN,
        pred_len=PRED_LEN,
        **{key: size[key] for key in ("d_model", "d_ff", "e_layers", "top_k")},
    )
    loaded = data.load_benchmark(csv, None, "M", "OT", None, SEQ_LEN, PRED_LEN)
    starts = loaded["starts"][2][:windows]
    test = data.make_dataset(
        loaded["series"], loaded["series"], starts, SEQ_LEN, PRED_LEN, 1,
        marks=loaded["marks"], label_len=LABEL_LEN,
    )  # fmt: skip
    truth = np.concatenate([future.numpy() for _, future in test])
    result = {"keras": errors(model.predict(test, verbose=0), truth)}

    root, name = os.path.split(os.path.abspath(csv))
    names, mean, scale = tslib_data.train_scaler(root, name, data=recipes.data_name(csv))
    with tempfile.TemporaryDirectory() as directory:
        served_dir = f"{directory}/served"
        serving.export_forecaster(model, served_dir, mean=mean, scale=scale, names=names)
        serve = tf.saved_model.load(served_dir).signatures["serving_default"]
        dates, _, values = tslib_data.read_csv(csv)
        seconds = dates.astype("datetime64[s]").astype(np.int64)
        forecasts = [
            serve(
                values=tf.constant(values[None, start : start + SEQ_LEN], tf.float32),
                timestamps=tf.constant(seconds[None, start : start + SEQ_LEN]),
            )["forecast"].numpy()
            for start in starts
        ]
    result["served"] = errors((np.concatenate(forecasts) - mean) / scale, truth)
    return result


def define_flags():
    flags.DEFINE_string("csv", None, "The ETTh file the checkpoint was trained on.", required=True)
    flags.DEFINE_string("checkpoint", None, "TSLib's checkpoint.pth.", required=True)
    flags.DEFINE_string("torch_json", None, "torch_timesnet_train's --json, printed beside.")
    flags.DEFINE_integer("test_windows", None, "Only the first this many.", lower_bound=1)


def main(argv):
    del argv
    result = test_errors(FLAGS.csv, FLAGS.checkpoint, FLAGS.test_windows)
    rows = [(name, *values) for name, values in result.items()]
    if FLAGS.torch_json:
        with open(FLAGS.torch_json) as file:
            reference = json.load(file)
        rows.insert(0, ("PyTorch", reference["mse"], reference["mae"]))
    for name, mse, mae in rows:
        print(f"{name:8s} test MSE {mse:.8f}  MAE {mae:.8f}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
