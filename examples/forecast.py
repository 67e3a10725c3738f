r"""Long-horizon forecasting with an Informer-style encoder built on `tf_tsembed.DataEmbedding`.

Trains on a built-in hourly series (or any CSV in the long-horizon benchmark format), reports
test MSE and MAE next to two baselines computed on the same windows, exports the trained model
as a SavedModel that takes raw values and timestamps (`tf_tsembed.serving.export_forecaster`)
and checks that the reloaded model forecasts what the trained one does.

    .venv/bin/python -m examples.forecast                     # built-in data
    .venv/bin/python -m examples.forecast --csv ETTh1.csv --target OT       # a benchmark CSV
    .venv/bin/python -m examples.forecast --strategy mirrored --virtual_cpus 2
    .venv/bin/python -m examples.forecast --strategy tpu --tpu my-tpu  # on a Cloud TPU VM: local

Model (`examples/forecaster.py`): value (circular conv), calendar and position embeddings
summed by `DataEmbedding`, then `--e_layers` of Time-Series-Library's post-norm encoder layers
(full attention, then a position-wise feed-forward, each with residual, dropout and LayerNorm),
and a linear head from the flattened encoding to `--pred_len` future steps of every column.
`ReversibleInstanceNorm` (RevIN) standardises each input window on its own statistics and undoes
that on the forecast, so a trend that leaves the training range does not shift the inputs.
The columns are ordered with the target last, as TSLib's Dataset_Custom does; the loss and the
metrics see the target only (TSLib's features 'MS').

Export (`--export_dir`, or a temporary directory checked and removed): the SavedModel's
`serving_default` takes `values` float32 `(B, seq_len, columns)` in the file's own units (the
columns in the order of `assets/forecaster.json`'s `names_in`, the target last) and `timestamps`
int64 `(B, seq_len)`, seconds since 1970; it returns `forecast` float32 `(B, pred_len, 1)`, the
target in the file's units, and the future `timestamps`. The scaler (the training rows'
statistics) and the calendar marks run inside the graph; `python -m examples.predict` serves it
on a CSV.

Metrics are on the standardised target (train-set mean and std), as the benchmark papers report
them. Baselines: repeat-last-value, and seasonal-naive, which repeats the last observed
`--season` steps (one day by default for sub-daily data).

Shapes are static (`drop_remainder=True`), so the same script compiles on TPU. Only whole
global batches of windows are used, the evaluation included: the printed count says how many.
With the built-in data the script exits with status 1 if the model does not beat every baseline.

Multi-worker: run the same command on every worker with `TF_CONFIG` set (see
`tf.distribute.MultiWorkerMirroredStrategy`); only the chief (worker 0) keeps its export.
"""

import os
import sys
import tempfile
import time

from absl import flags

from examples import cli, outputs


def _strategies():
    from examples.distribute import STRATEGIES

    return STRATEGIES


def _embed_types():
    from tf_tsembed.data_embedding import EMBED_TYPES

    return EMBED_TYPES


def define_flags():
    """The script's flags, defined when it runs (importing the module defines none)."""
    cli.define_choice(
        "strategy",
        "default",
        _strategies,
        "tf.distribute strategy: default, mirrored, multiworker or tpu.",
    )
    flags.DEFINE_string(
        "tpu", "", "TPU name or address for TPUClusterResolver ('local' on a TPU VM)."
    )
    flags.DEFINE_integer(
        "virtual_cpus",
        0,
        "If > 1, split the CPU into this many logical devices (--strategy mirrored without GPUs).",
        lower_bound=0,
    )
    flags.DEFINE_string(
        "csv", None, "CSV with a `date` column and numeric columns; default: built-in data."
    )
    flags.DEFINE_string("target", "OT", "Column to forecast.")
    flags.DEFINE_string(
        "freq",
        None,
        "Sampling frequency ('h', '15min', 'd', ...); default: the dates' own. "
        "A value the dates contradict is refused.",
    )
    flags.DEFINE_integer(
        "season", 0, "Seasonal-naive period in steps; 0: from the date spacing.", lower_bound=0
    )
    flags.DEFINE_integer("days", 180, "Length of the built-in series in days.", lower_bound=1)
    flags.DEFINE_integer("seq_len", 96, "Input window length.", lower_bound=1)
    flags.DEFINE_integer("pred_len", 24, "Forecast horizon.", lower_bound=1)
    flags.DEFINE_integer("d_model", 32, "Embedding and attention width.", lower_bound=1)
    flags.DEFINE_integer("n_heads", 4, "Attention heads.", lower_bound=1)
    flags.DEFINE_integer("e_layers", 2, "Encoder layers.", lower_bound=1)
    flags.DEFINE_integer("d_ff", 64, "Feed-forward width.", lower_bound=1)
    flags.DEFINE_float("dropout", 0.1, "Dropout rate.")
    cli.require_dropout()
    cli.define_choice(
        "embed_type",
        "fixed",
        _embed_types,
        "Calendar embedding of DataEmbedding: fixed, learned or timeF.",
    )
    flags.DEFINE_integer("epochs", 3, "Training epochs.", lower_bound=1)
    flags.DEFINE_integer("batch_size", 32, "Batch size per replica.", lower_bound=1)
    flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
    cli.require_learning_rate()
    cli.define_seed("Seed for data, initialisation, dropout and shuffling.")
    flags.DEFINE_string(
        "export_dir",
        None,
        "Where to write the SavedModel; default: a temporary directory, removed after the check.",
    )
    cli.define_overwrite()


def main(argv):
    del argv
    # TensorFlow is imported here, not at the top: `--help` does not wait for it.
    import numpy as np
    import tensorflow as tf  # cli.run has imported it quietly already

    from examples import data, distribute, forecaster, training
    from examples.evaluation import baselines, errors, finite_errors
    from tf_tsembed import serving, tslib_data
    from tf_tsembed.models import ForecastConfig
    from tf_tsembed.timefeatures import time_features, time_marks

    keras = tf.keras
    started = time.time()
    f = flags.FLAGS
    if f["tpu"].present and f.strategy != "tpu":
        raise ValueError(f"--tpu applies to --strategy tpu only; got --strategy {f.strategy}.")
    if f.virtual_cpus > 1 and f.strategy != "mirrored":
        raise ValueError(
            f"--virtual_cpus applies to --strategy mirrored only; got --strategy {f.strategy}."
        )
    outputs.check(
        directories={"export_dir": f.export_dir}, inputs={"csv": f.csv}, overwrite=f.overwrite
    )
    if f.virtual_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * f.virtual_cpus
        )
    keras.utils.set_random_seed(f.seed)
    dates, names, values, freq, description = data.load_data(
        f.csv, f.target, f.freq, f.days, f.seed
    )
    # The target last, as TSLib's Dataset_Custom orders the columns (features 'MS').
    order = [i for i, name in enumerate(names) if name != f.target] + [names.index(f.target)]
    names, values = [names[i] for i in order], values[:, order]
    if f.season > f.seq_len:
        raise ValueError(
            f"--season must be at most --seq_len={f.seq_len} (seasonal-naive repeats the last "
            f"season of the input window); got {f.season}."
        )
    season = f.season or data.infer_season(dates)
    if season > f.seq_len:
        print(
            f"note: seasonal-naive left out: the dates' season ({season} steps) is longer than "
            f"the input window (--seq_len {f.seq_len}); give --season or a longer --seq_len to "
            f"include it"
        )
        season = None

    borders = tslib_data.split_borders("custom", len(values), f.seq_len, f.pred_len)
    series, constant = tslib_data.standardize(values, borders[0][1])
    mean, scale = tslib_data.scaler_statistics(values, borders[0][1])
    if np.any(constant):
        print(f"note: {tslib_data.constant_note(names, constant)}")
    # The marks the served model computes in its graph: timeF features, or integer marks.
    marks = (time_features if f.embed_type == "timeF" else time_marks)(dates, freq)

    strategy = distribute.make_strategy(f.strategy, f.tpu)
    global_batch = f.batch_size * strategy.num_replicas_in_sync
    train, val, test = (
        data.whole_batches(data.window_starts(b, f.seq_len, f.pred_len), global_batch, split)
        for b, split in zip(borders, ("training", "validation", "test"))
    )
    window = dict(
        inputs=series,
        targets=series[:, -1],
        marks=marks,
        label_len=0,  # TSLib's four inputs; the decoder's are unused
        seq_len=f.seq_len,
        pred_len=f.pred_len,
        batch_size=global_batch,
        drop_remainder=True,
    )
    train_data = data.make_dataset(starts=train, shuffle_seed=f.seed, **window)
    val_data, test_data = (
        data.make_dataset(starts=val, **window),
        data.make_dataset(starts=test, **window),
    )
    print(
        f"data: {description}; target {f.target!r}; windows train/val/test = "
        f"{len(train)}/{len(val)}/{len(test)} (whole global batches of {global_batch}); "
        f"seq_len {f.seq_len} -> pred_len {f.pred_len}"
    )
    print(f"strategy: {f.strategy} ({strategy.num_replicas_in_sync} replica(s))")

    with strategy.scope():
        config = ForecastConfig(
            seq_len=f.seq_len,
            label_len=0,
            pred_len=f.pred_len,
            enc_in=len(names),
            dec_in=len(names),
            c_out=len(names),
            freq=freq,
            embed=f.embed_type,
            d_model=f.d_model,
            n_heads=f.n_heads,
            e_layers=f.e_layers,
            d_ff=f.d_ff,
            dropout=f.dropout,
        )
        model = forecaster.MainJobForecaster(config)  # every column, (B, pred_len, columns)
        target_model = forecaster.target_only(model)  # the target, (B, pred_len): trained on
        target_model.compile(
            optimizer=keras.optimizers.Adam(f.learning_rate), loss="mse", metrics=["mae"]
        )
    training.train_model(target_model, strategy, train_data, val_data, f.epochs, global_batch)

    truth = np.concatenate([future.numpy() for _, future in test_data])
    results = {"model": finite_errors(training.predict(target_model, strategy, test_data), truth)}
    for name, forecast in baselines(series[:, -1], test, f.seq_len, f.pred_len, season).items():
        results[name] = errors(forecast, truth)
    print(f"\ntest: {len(test)} windows, standardised target {f.target!r}")
    print(f"{'':24s}{'MSE':>10s}{'MAE':>10s}")
    for name, (mse, mae) in results.items():
        print(f"{name:24s}{mse:10.4f}{mae:10.4f}")
    model_mse, model_mae = results["model"]
    beats = all(
        model_mse < mse and model_mae < mae
        for name, (mse, mae) in results.items()
        if name != "model"
    )
    print(f"model beats every baseline on MSE and MAE: {'yes' if beats else 'NO'}")

    def export(path):
        """The served model (raw values and timestamps in), written whole and checked."""
        exported = serving.export_forecaster(
            model, path, mean=mean, scale=scale, names=names, features="MS",
            overwrite=f.overwrite,
        )  # fmt: skip
        return exported["check_max_abs_difference"]

    with tempfile.TemporaryDirectory(prefix="tf_tsembed_forecast_") as scratch:
        export_dir = f.export_dir or os.path.join(scratch, "saved_model")
        difference = distribute.export_from_chief(strategy, export, export_dir)
    if difference is not None:
        where = (
            f"written to {export_dir}"
            if f.export_dir
            else "checked in a temporary directory, then removed"
        )
        print(
            f"SavedModel (raw values and timestamps in) {where}; reloaded with "
            f"tf.saved_model.load, its forecasts match (max abs difference {difference:.1e})"
        )
    print(f"done in {time.time() - started:.0f} s")
    if not beats and not f.csv:
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main, define_flags)
