r"""Long-horizon forecasting with an Informer-style encoder built on `tf_tsembed.DataEmbedding`.

Trains on a built-in hourly series (or any CSV in the long-horizon benchmark format), reports
test MSE and MAE next to two baselines computed on the same windows, exports the trained model
as a SavedModel and checks that the reloaded model forecasts what the trained one does.

    python examples/forecast.py                          # built-in data, ~1 min on 2 CPU cores
    python examples/forecast.py --csv ETTh1.csv --target OT       # a benchmark CSV
    python examples/forecast.py --strategy mirrored --virtual_cpus 2
    python examples/forecast.py --strategy tpu --tpu my-tpu-name  # on a Cloud TPU VM: --tpu local

Model: value (circular conv), calendar and position embeddings summed by `DataEmbedding`, then
`--e_layers` post-norm Transformer encoder layers as in Informer's encoder (attention, then a
position-wise feed-forward, each with residual, dropout and LayerNormalization), and a linear
head from the flattened encoding to `--pred_len` future steps. `ReversibleInstanceNorm` (RevIN)
standardises each input window on its own statistics and undoes that on the forecast, so a trend
that leaves the training range does not shift the inputs.

Metrics are on the standardised target (train-set mean and std), as the benchmark papers report
them. Baselines: repeat-last-value, and seasonal-naive, which repeats the last observed
`--season` steps (one day by default for sub-daily data).

Shapes are static (`drop_remainder=True`), so the same script compiles on TPU. Only whole
global batches of windows are used, the evaluation included: the printed count says how many.
With the built-in data the script exits with status 1 if the model does not beat both baselines.

Multi-worker: run the same command on every worker with `TF_CONFIG` set (see
`tf.distribute.MultiWorkerMirroredStrategy`); only the chief (worker 0) keeps its export.
"""

import os
import shutil
import sys
import tempfile
import time

# Level 3: level 2 still prints cuInit's error on every CPU-only machine; exceptions still surface.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _data
from _tpu import TPU_CONNECT_ERRORS, connect_tpu

from tf_tsembed import DataEmbedding, ReversibleInstanceNorm
from tf_tsembed.timefeatures import (
    num_time_features,
    num_time_marks,
    time_features,
    time_marks,
)

keras = tf.keras

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
EMBED_TYPES = ("fixed", "learned", "timeF")

flags.DEFINE_enum("strategy", "default", STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_string("tpu", "", "TPU name or address for TPUClusterResolver ('local' on a TPU VM).")
flags.DEFINE_integer(
    "virtual_cpus",
    0,
    "If > 1, split the CPU into this many logical devices (for --strategy mirrored without GPUs).",
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
flags.DEFINE_integer("e_layers", 2, "Encoder layers.", lower_bound=0)
flags.DEFINE_integer("d_ff", 64, "Feed-forward width.", lower_bound=1)
flags.DEFINE_float("dropout", 0.1, "Dropout rate.")
flags.DEFINE_enum("embed_type", "fixed", EMBED_TYPES, "Calendar embedding of DataEmbedding.")
flags.DEFINE_integer("epochs", 3, "Training epochs.", lower_bound=1)
flags.DEFINE_integer("batch_size", 32, "Batch size per replica.", lower_bound=1)
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("seed", 2021, "Seed for data, initialisation, dropout and shuffling.")
flags.DEFINE_string(
    "export_dir",
    None,
    "Where to write the SavedModel; default: a temporary directory, removed after the check.",
)


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


def read_csv(path, target):
    """Dates, column names and a float64 `(rows, columns)` array from a benchmark-format CSV."""
    dates, names, values = _data.read_csv(path)
    if target not in names:
        raise ValueError(
            f"--target must name a numeric column of {path}, one of {names}; got {target!r}."
        )
    return dates, names, values


def infer_season(dates):
    """Steps per day for sub-daily data, 7 for daily, 52 for weekly, 12 for monthly data."""
    step = _data.median_step_seconds(dates)
    day = 24 * 3600
    if step < day and day % step == 0:
        return int(day // step)
    for period, steps_per_season in ((day, 7), (7 * day, 52)):
        if step == period:
            return steps_per_season
    if 28 * day <= step <= 31 * day:
        return 12
    raise ValueError(f"Cannot infer a season from a median step of {step} s; pass --season.")


def whole_batches(starts, global_batch):
    """The first windows of `starts` that make whole global batches (static shapes)."""
    usable = len(starts) // global_batch * global_batch
    if usable == 0:
        raise ValueError(
            f"A split has {len(starts)} windows, fewer than one global batch of {global_batch}."
        )
    return starts[:usable]


def baselines(target, starts, seq_len, pred_len, season):
    """Repeat-last-value and seasonal-naive forecasts `(windows, pred_len)` from each window."""
    last = target[starts + seq_len - 1]
    repeat_last = np.repeat(last[:, None], pred_len, axis=1)
    # Step h of the horizon repeats the same phase of the last season inside the input window.
    lags = season - np.arange(pred_len) % season
    seasonal_naive = target[starts[:, None] + seq_len - lags[None, :]]
    return {"repeat-last": repeat_last, f"seasonal-naive ({season})": seasonal_naive}


def errors(forecast, truth):
    """(MSE, MAE) over all windows and horizon steps."""
    difference = np.asarray(forecast, np.float64) - truth
    return float(np.mean(difference**2)), float(np.mean(np.abs(difference)))


def encoder_layer(x, d_model, n_heads, d_ff, dropout, index):
    """Informer's EncoderLayer with full attention: post-norm attention and feed-forward blocks."""
    attention = keras.layers.MultiHeadAttention(
        n_heads, d_model // n_heads, dropout=dropout, name=f"encoder_{index}_attention"
    )(x, x)
    attention = keras.layers.Dropout(dropout)(attention)
    x = keras.layers.LayerNormalization(name=f"encoder_{index}_norm_1")(x + attention)
    y = keras.layers.Dense(d_ff, activation="gelu", name=f"encoder_{index}_ff_1")(x)
    y = keras.layers.Dense(d_model, name=f"encoder_{index}_ff_2")(keras.layers.Dropout(dropout)(y))
    return keras.layers.LayerNormalization(name=f"encoder_{index}_norm_2")(
        x + keras.layers.Dropout(dropout)(y)
    )


def build_model(
    seq_len,
    pred_len,
    num_channels,
    num_marks,
    target_index,
    *,
    d_model=32,
    n_heads=4,
    e_layers=2,
    d_ff=64,
    dropout=0.1,
    embed_type="fixed",
    freq="h",
):
    """Encoder forecaster `(values (B, seq_len, C), marks (B, seq_len, M)) -> (B, pred_len)`."""
    if d_model % n_heads:
        raise ValueError(
            f"--d_model must be a multiple of --n_heads={n_heads}; got d_model={d_model}."
        )
    values = keras.Input((seq_len, num_channels), name="values")
    marks = keras.Input(
        (seq_len, num_marks), dtype="float32" if embed_type == "timeF" else "int32", name="marks"
    )
    revin = ReversibleInstanceNorm(num_channels, name="revin")
    normalized, stats = revin.normalize(values)
    embedding = DataEmbedding(
        num_channels, d_model, embed_type=embed_type, freq=freq, dropout=dropout, name="embedding"
    )
    x = embedding(normalized, marks)
    for index in range(e_layers):
        x = encoder_layer(x, d_model, n_heads, d_ff, dropout, index)
    # Every channel is forecast in RevIN's normalised space, as RevIN undoes all of them; only the
    # target is returned and trained on.
    forecast = keras.layers.Dense(pred_len * num_channels, name="head")(keras.layers.Flatten()(x))
    forecast = revin.denormalize(keras.layers.Reshape((pred_len, num_channels))(forecast), stats)
    return keras.Model(
        [values, marks], forecast[:, :, target_index], name="informer_encoder_forecaster"
    )


def make_strategy(name, tpu=""):
    """The tf.distribute strategy called `name`."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            return connect_tpu(tpu)
        except TPU_CONNECT_ERRORS as error:
            raise RuntimeError(
                f"--strategy tpu: no TPU found (--tpu={tpu!r}). Run on a Cloud TPU VM with "
                f"--tpu local, or pass the TPU's name or grpc:// address with --tpu. "
                f"TPUClusterResolver said: {error}"
            ) from error
    raise ValueError(f"--strategy must be one of {list(STRATEGIES)}; got {name!r}.")


def is_chief(strategy):
    """Whether this process reports and exports: the chief, else worker 0, else the only one."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def predict(model, strategy, dataset):
    """Forecasts for every batch of `dataset`, in order, as one NumPy array."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras' predict would give each worker only its shard; the weights are synchronised,
        # so every worker forecasts the whole test set locally instead.
        forward = tf.function(lambda inputs: model(inputs, training=False))
        return np.concatenate([forward(inputs).numpy() for inputs, _ in dataset])
    return model.predict(dataset, verbose=0)


def train_model(model, strategy, train_data, val_data, epochs, global_batch):
    """`model.fit` with a progress bar; under MultiWorkerMirroredStrategy, that loop written out."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # The dataset shuffles itself; fit's own shuffle would only warn for a dataset.
        model.fit(train_data, validation_data=val_data, epochs=epochs, shuffle=False)
        return
    # Keras 3.15's fit and train_on_batch fail under this strategy: they pass a nested batch and
    # scalar metrics to `strategy.reduce`, which it rejects. The step below is fit's, minus metrics.
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)

    @tf.function
    def step(inputs, future):
        def replica_step(inputs, future):
            with tf.GradientTape() as tape:
                per_window = tf.reduce_mean(
                    tf.square(model(inputs, training=True) - future), axis=-1
                )
                loss = tf.nn.compute_average_loss(per_window, global_batch_size=global_batch)
            gradients = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

        return strategy.reduce("SUM", strategy.run(replica_step, args=(inputs, future)), axis=None)

    distributed = strategy.experimental_distribute_dataset(train_data)
    val_truth = np.concatenate([future.numpy() for _, future in val_data])
    for epoch in range(epochs):
        print(f"Epoch {epoch + 1}/{epochs}")
        progress = keras.utils.Progbar(
            int(train_data.cardinality()),
            verbose=1 if is_chief(strategy) else 2,
            stateful_metrics=["loss"],
        )
        losses = []
        for index, (inputs, future) in enumerate(distributed):
            losses.append(float(step(inputs, future)))
            progress.update(index + 1, [("loss", np.mean(losses))])
        val_mse, val_mae = errors(predict(model, strategy, val_data), val_truth)
        print(f"val_loss: {val_mse:.4f} - val_mae: {val_mae:.4f}")


def export_and_check(model, strategy, export_dir, sample_inputs):
    """Exports a SavedModel, reloads it, checks its forecasts; returns the max abs difference."""
    chief = is_chief(strategy)
    # Every worker takes part in saving (it may run collectives); only the chief's copy is kept.
    target_dir = export_dir if chief else tempfile.mkdtemp(prefix="forecast_worker_export_")
    model.export(target_dir, verbose=False)
    if not chief:
        shutil.rmtree(target_dir, ignore_errors=True)
        return None
    reloaded = tf.saved_model.load(export_dir)
    expected = model(list(sample_inputs), training=False).numpy()
    actual = reloaded.serve(list(sample_inputs)).numpy()
    # The reloaded graph is optimised on its own, so float32 rounding may differ in the last bits.
    np.testing.assert_allclose(
        actual, expected, rtol=1e-5, atol=1e-6, err_msg="reloaded vs trained model"
    )
    return float(np.max(np.abs(actual - expected)))


def load_data(csv_path, target, freq, days, seed):
    """Dates, names, values, frequency and a one-line description of the CSV or the built-in series.

    The frequency is the dates' own unless `freq` is given; a `freq` they contradict is refused.
    """
    if csv_path:
        dates, names, values = read_csv(csv_path, target)
        description = f"{csv_path}: {len(dates)} rows x {len(names)} columns"
    else:
        if target != "OT":
            raise ValueError(f"--target must be 'OT' for the built-in data; got {target!r}.")
        dates, names, values = synthetic_series(days, seed)
        description = f"built-in hourly series: {len(dates)} rows x {len(names)} columns"
    if freq is None:
        freq = _data.infer_freq(dates)
    else:
        _data.check_freq(freq, dates)
    return dates, names, values, freq, f"{description}, freq {freq!r}"


def main(argv):
    del argv
    started = time.time()
    f = flags.FLAGS
    if f.virtual_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * f.virtual_cpus
        )
    keras.utils.set_random_seed(f.seed)
    dates, names, values, freq, description = load_data(f.csv, f.target, f.freq, f.days, f.seed)
    target_index = names.index(f.target)
    season = f.season or infer_season(dates)
    if not 1 <= season <= f.seq_len:
        raise ValueError(
            f"--season must be in [1, seq_len={f.seq_len}] (seasonal-naive reads the input "
            f"window); got {season}."
        )

    borders = _data.split_borders("custom", len(values), f.seq_len, f.pred_len)
    series = _data.standardize(values, borders[0][1])
    if f.embed_type == "timeF":
        marks, num_marks = time_features(dates, freq), num_time_features(freq)
    else:
        marks, num_marks = time_marks(dates, freq), num_time_marks(freq)

    strategy = make_strategy(f.strategy, f.tpu)
    global_batch = f.batch_size * strategy.num_replicas_in_sync
    train, val, test = (
        whole_batches(_data.window_starts(b, f.seq_len, f.pred_len), global_batch) for b in borders
    )
    window = dict(
        inputs=series,
        targets=series[:, target_index],
        marks=marks,
        seq_len=f.seq_len,
        pred_len=f.pred_len,
        batch_size=global_batch,
        drop_remainder=True,
    )
    train_data = _data.make_dataset(starts=train, shuffle_seed=f.seed, **window)
    val_data, test_data = (
        _data.make_dataset(starts=val, **window),
        _data.make_dataset(starts=test, **window),
    )
    print(
        f"data: {description}; target {f.target!r}; windows train/val/test = "
        f"{len(train)}/{len(val)}/{len(test)} (whole global batches of {global_batch}); "
        f"seq_len {f.seq_len} -> pred_len {f.pred_len}"
    )
    print(f"strategy: {f.strategy} ({strategy.num_replicas_in_sync} replica(s))")

    with strategy.scope():
        model = build_model(
            f.seq_len,
            f.pred_len,
            len(names),
            num_marks,
            target_index,
            d_model=f.d_model,
            n_heads=f.n_heads,
            e_layers=f.e_layers,
            d_ff=f.d_ff,
            dropout=f.dropout,
            embed_type=f.embed_type,
            freq=freq,
        )
        model.compile(optimizer=keras.optimizers.Adam(f.learning_rate), loss="mse", metrics=["mae"])
    train_model(model, strategy, train_data, val_data, f.epochs, global_batch)

    truth = np.concatenate([future.numpy() for _, future in test_data])
    results = {"model": errors(predict(model, strategy, test_data), truth)}
    for name, forecast in baselines(
        series[:, target_index], test, f.seq_len, f.pred_len, season
    ).items():
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
    print(f"model beats both baselines on MSE and MAE: {'yes' if beats else 'NO'}")

    sample_inputs, _ = next(iter(test_data))
    with tempfile.TemporaryDirectory(prefix="tf_tsembed_forecast_") as scratch:
        export_dir = f.export_dir or os.path.join(scratch, "saved_model")
        difference = export_and_check(model, strategy, export_dir, sample_inputs)
    if difference is not None:
        where = (
            f"written to {export_dir}"
            if f.export_dir
            else "checked in a temporary directory, then removed"
        )
        print(
            f"SavedModel {where}; reloaded with tf.saved_model.load, its forecasts match "
            f"(max abs difference {difference:.1e})"
        )
    print(f"done in {time.time() - started:.0f} s")
    if not beats and not f.csv:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
