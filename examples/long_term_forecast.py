r"""Long-term forecasting under Time-Series-Library's protocol, with models built on tf_tsembed.

Reproduces a row of the long-term forecasting tables (ETT, lookback 96, horizons 96-720):

    python examples/long_term_forecast.py --csv ETTh1.csv --model itransformer --pred_len 96
    python examples/long_term_forecast.py --csv ETTh1.csv --model patchtst --epochs 1
    python examples/long_term_forecast.py --csv ETTh1.csv --model transformer --epochs 1

Models (in `examples/models/`, on tf_tsembed's public layers and tf.keras only): iTransformer
(`DataEmbeddingInverted`), TSLib's PatchTST (`PatchEmbedding`) and TSLib's vanilla Transformer
(`DataEmbedding`, decoder started from the last `--label_len` 48 input steps).

Data as TSLib's `data_provider/data_loader.py`: the split is chosen from the file name
(`ETTh*`: 12/4/4 months of hourly rows, `ETTm*`: the same in 15-minute rows, anything else:
70/10/20 %), or by `--protocol`; validation and test windows start `seq_len` rows before their
split; the scaler is fit on the training rows only and the metrics are on the standardised data;
every stride-1 window is used, none dropped. `--features`: M (all series -> all series), S
(target -> target), MS (all series -> target, the target being put last as TSLib does). Time
features are TSLib's `timeenc=1` (`--embed timeF`), with freq 'h' for ETT files as TSLib's
scripts use (also for ETTm), else the dates' frequency.

Training as TSLib's `exp/exp_long_term_forecasting.py`: Adam, batch 32, MSE loss, up to
`--epochs` 10, the learning rate halved after every epoch (`lradj=type1`), early stopping after
3 epochs without a lower validation loss and the best epoch's weights restored; dropout is off
for validation and test. Model sizes come from the authors' scripts (table `SIZES` below).
"""

import json
import os
import sys
import time

# Level 3: level 2 still prints cuInit's error on every CPU-only machine; exceptions still surface.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _data
from models import itransformer, patchtst, transformer

from tf_tsembed.timefeatures import num_time_features

keras = tf.keras

MODELS = ("itransformer", "patchtst", "transformer")
# Model sizes of the authors' scripts, per (model, data set, pred_len); unlisted cells use the
# defaults of the scripts' run.py: d_model 512, n_heads 8, e_layers 2, d_layers 1, d_ff 2048,
# dropout 0.1.
#   iTransformer: thuml/iTransformer scripts/multivariate_forecasting/ETT/iTransformer_ETTh1.sh
#     (the script sets no learning rate: run.py's default 1e-4 applies).
#   PatchTST, Transformer: thuml/Time-Series-Library scripts/long_term_forecast/ETT_script/
#     PatchTST_ETTh1.sh, Transformer_ETTh1.sh (e_layers 2, d_layers 1: the defaults).
DEFAULT_SIZE = dict(
    d_model=512, n_heads=8, e_layers=2, d_layers=1, d_ff=2048, dropout=0.1, learning_rate=1e-4
)
SIZES = {
    ("itransformer", "ETTh1", 96): dict(d_model=256, d_ff=256),
    ("itransformer", "ETTh1", 192): dict(d_model=256, d_ff=256),
    ("itransformer", "ETTh1", 336): dict(d_model=512, d_ff=512),
    ("itransformer", "ETTh1", 720): dict(d_model=512, d_ff=512),
    ("patchtst", "ETTh1", 96): dict(e_layers=1, n_heads=2),
    ("patchtst", "ETTh1", 192): dict(e_layers=1, n_heads=8),
    ("patchtst", "ETTh1", 336): dict(e_layers=1, n_heads=8),
    ("patchtst", "ETTh1", 720): dict(e_layers=1, n_heads=16),
}
# Published test MSE / MAE (standardised data, features M, seq_len 96).
PUBLISHED_SOURCE = "iTransformer paper (Liu et al., ICLR 2024), full results, lookback 96"
PUBLISHED = {
    ("itransformer", "ETTh1", 96): (0.386, 0.405),
    ("itransformer", "ETTh1", 192): (0.441, 0.436),
    ("itransformer", "ETTh1", 336): (0.487, 0.458),
    ("itransformer", "ETTh1", 720): (0.503, 0.491),
}

flags.DEFINE_string("csv", None, "Benchmark CSV with a `date` column (e.g. ETTh1.csv).")
flags.DEFINE_enum("model", "itransformer", MODELS, "Forecasting model.")
flags.DEFINE_enum("protocol", None, _data.PROTOCOLS, "Split protocol; default: from the file name.")
flags.DEFINE_enum(
    "features", "M", ("M", "S", "MS"), "M: all -> all, S: target -> target, MS: all -> target."
)
flags.DEFINE_string("target", "OT", "Target column for S and MS.")
flags.DEFINE_string(
    "freq", None, "Time-feature frequency; default: 'h' for ETT files, else the dates'."
)
flags.DEFINE_integer("seq_len", 96, "Input window length.", lower_bound=1)
flags.DEFINE_integer("pred_len", 96, "Forecast horizon.", lower_bound=1)
flags.DEFINE_integer("epochs", 10, "Maximum training epochs.", lower_bound=1)
flags.DEFINE_integer(
    "patience", 3, "Epochs without a lower validation loss before stopping.", lower_bound=1
)
flags.DEFINE_integer("batch_size", 32, "Batch size.", lower_bound=1)
flags.DEFINE_integer(
    "log_every",
    0,
    "If > 0, also print the epoch's running training loss every this many steps.",
    lower_bound=0,
)
flags.DEFINE_integer(
    "steps_per_epoch",
    0,
    "If > 0, train only this many batches per epoch (a short run).",
    lower_bound=0,
)
flags.DEFINE_float(
    "learning_rate", None, "Adam's initial learning rate; default: the scripts' value."
)
flags.DEFINE_integer("d_model", None, "Model width; default: the authors' script (SIZES).")
flags.DEFINE_integer("n_heads", None, "Attention heads; default: the authors' script.")
flags.DEFINE_integer("e_layers", None, "Encoder layers; default: the authors' script.")
flags.DEFINE_integer(
    "d_layers", None, "Decoder layers (transformer); default: the authors' script."
)
flags.DEFINE_integer(
    "label_len",
    transformer.LABEL_LEN,
    "Known steps the transformer's decoder starts from.",
    lower_bound=0,
)
flags.DEFINE_integer("d_ff", None, "Feed-forward width; default: the authors' script.")
flags.DEFINE_float("dropout", None, "Dropout rate; default: the authors' script.")
flags.DEFINE_integer(
    "seed", 2021, "Seed of initialisation, dropout and shuffling (TSLib's fix_seed)."
)
flags.DEFINE_string("json", None, "Write the results as JSON to this path.")
flags.DEFINE_string(
    "export_dir", None, "Write a SavedModel here and check it forecasts as the trained model."
)
flags.mark_flag_as_required("csv")


def data_name(path):
    """The data set's name as the scripts' `--data` gives it: the file name without extension."""
    return os.path.splitext(os.path.basename(path))[0]


def model_size(model, data, pred_len, overrides):
    """The authors' size for (model, data, pred_len), then any flag given explicitly."""
    size = dict(DEFAULT_SIZE, **SIZES.get((model, data, pred_len), {}))
    size.update({key: value for key, value in overrides.items() if value is not None})
    return size


def build_model(name, seq_len, pred_len, num_series, freq, size, label_len):
    layers = {key: size[key] for key in ("d_model", "n_heads", "e_layers", "d_ff", "dropout")}
    if name == "itransformer":
        return itransformer.build(seq_len, pred_len, num_series, num_time_features(freq), **layers)
    if name == "patchtst":
        return patchtst.build(seq_len, pred_len, num_series, **layers)
    if name == "transformer":
        return transformer.build(
            seq_len,
            pred_len,
            num_series,
            num_time_features(freq),
            freq,
            d_layers=size["d_layers"],
            label_len=label_len,
            **layers,
        )
    raise ValueError(f"--model must be one of {list(MODELS)}; got {name!r}.")


class EpochReport(keras.callbacks.Callback):
    """One line per epoch, TSLib's early stopping and the best epoch's weights restored at the end.

    A validation loss counts as better when strictly lower (TSLib's EarlyStopping, delta 0, also
    counts an equal one).
    """

    def __init__(self, patience, log_every=0):
        super().__init__()
        self.patience, self.log_every = patience, log_every
        self.best_loss, self.best_weights, self.wait, self.epochs_run = np.inf, None, 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.log_every and (batch + 1) % self.log_every == 0:
            seconds = time.time() - self.started
            print(
                f"  step {batch + 1}: {seconds / (batch + 1):.2f} s per step, running train loss "
                f"{float(logs['loss']):.4f}",
                flush=True,
            )

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run = epoch + 1
        val_loss = logs["val_loss"]
        improved = val_loss < self.best_loss
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        print(
            f"epoch {epoch + 1}: {time.time() - self.started:.1f} s, lr {lr:.3g}, train loss "
            f"{logs['loss']:.4f}, val loss {val_loss:.4f}{' (best)' if improved else ''}",
            flush=True,
        )
        if improved:
            self.best_loss, self.best_weights, self.wait = val_loss, self.model.get_weights(), 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                print(
                    f"early stopping: no lower validation loss for {self.patience} epochs",
                    flush=True,
                )
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def train(
    model, train_data, val_data, *, epochs, learning_rate, patience, steps_per_epoch=0, log_every=0
):
    """TSLib's schedule: Adam (PyTorch's epsilon), lr halved after each epoch, early stopping."""
    # PyTorch's Adam epsilon; Keras' default is 1e-7.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, epsilon=1e-8), loss="mse")
    report = EpochReport(patience, log_every)
    halving = keras.callbacks.LearningRateScheduler(lambda epoch: learning_rate * 0.5**epoch)
    if steps_per_epoch:
        train_data = train_data.repeat()  # so that every epoch gets its steps_per_epoch batches
    model.fit(
        train_data,
        validation_data=val_data,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch or None,
        callbacks=[halving, report],
        shuffle=False,
        verbose=0,
    )  # the dataset shuffles
    return report.epochs_run


def errors(forecast, truth):
    """(MSE, MAE) over all windows, steps and series, in float64."""
    difference = np.asarray(forecast, np.float64) - truth
    return float(np.mean(difference**2)), float(np.mean(np.abs(difference)))


def export_and_check(model, export_dir, sample_inputs):
    """Writes a SavedModel, reloads it, checks its forecasts; returns the max abs difference."""
    model.export(export_dir, verbose=False)
    reloaded = tf.saved_model.load(export_dir)
    # The models take a list of inputs: [values] or [values, time features].
    sample_inputs = list(sample_inputs) if isinstance(sample_inputs, tuple) else [sample_inputs]
    expected = model(sample_inputs, training=False).numpy()
    actual = reloaded.serve(sample_inputs).numpy()
    # The reloaded graph is optimised on its own, so float32 rounding may differ in the last bits.
    np.testing.assert_allclose(
        actual, expected, rtol=1e-5, atol=1e-5, err_msg="reloaded vs trained model"
    )
    return float(np.max(np.abs(actual - expected)))


def main(argv):
    del argv
    started = time.time()
    f = flags.FLAGS
    if not f["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # absl's INFO lines from SavedModel writing
    keras.utils.set_random_seed(f.seed)
    data = _data.load_benchmark(
        f.csv, f.protocol, f.features, f.target, f.freq, f.seq_len, f.pred_len
    )
    name = data_name(f.csv)
    size = model_size(
        f.model,
        name,
        f.pred_len,
        dict(
            d_model=f.d_model,
            n_heads=f.n_heads,
            e_layers=f.e_layers,
            d_layers=f.d_layers,
            d_ff=f.d_ff,
            dropout=f.dropout,
            learning_rate=f.learning_rate,
        ),
    )
    series = data["series"]
    targets = series[:, -1:] if f.features == "MS" else series
    model = build_model(
        f.model, f.seq_len, f.pred_len, series.shape[1], data["freq"], size, f.label_len
    )
    if f.features == "MS":  # TSLib's f_dim = -1: the loss and metrics see the target only.
        model = keras.Model(model.inputs, model.outputs[0][:, :, -1:], name=model.name)
    marks = data["marks"] if len(model.inputs) > 1 else None
    label_len = f.label_len if len(model.inputs) == 3 else None
    window = dict(
        inputs=series,
        targets=targets,
        marks=marks,
        label_len=label_len,
        seq_len=f.seq_len,
        pred_len=f.pred_len,
        batch_size=f.batch_size,
    )
    train_starts, val_starts, test_starts = data["starts"]
    train_data = _data.make_dataset(starts=train_starts, shuffle_seed=f.seed, **window)
    val_data = _data.make_dataset(starts=val_starts, **window)
    test_data = _data.make_dataset(starts=test_starts, **window)
    parameters = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    print(
        f"data: {f.csv}, protocol {data['protocol']}, features {f.features} "
        f"({len(data['names'])} series), "
        f"freq {data['freq']!r}; windows train/val/test = {len(train_starts)}/{len(val_starts)}/"
        f"{len(test_starts)}; seq_len {f.seq_len} -> pred_len {f.pred_len}",
        flush=True,
    )
    print(f"model: {f.model}, {parameters:,} trainable parameters, {size}", flush=True)

    epochs_run = train(
        model,
        train_data,
        val_data,
        epochs=f.epochs,
        learning_rate=size["learning_rate"],
        patience=f.patience,
        steps_per_epoch=f.steps_per_epoch,
        log_every=f.log_every,
    )
    truth = np.concatenate([future.numpy() for _, future in test_data])
    mse, mae = errors(model.predict(test_data, verbose=0), truth)
    published = (
        PUBLISHED.get((f.model, name, f.pred_len))
        if f.features == "M" and f.seq_len == 96
        else None
    )
    line = f"test ({len(test_starts)} windows): MSE {mse:.4f}, MAE {mae:.4f}"
    if published:
        line += f"; published {published[0]:.3f} / {published[1]:.3f} ({PUBLISHED_SOURCE})"
    print(line, flush=True)

    if f.export_dir:
        sample_inputs, _ = next(iter(test_data))
        difference = export_and_check(model, f.export_dir, sample_inputs)
        print(
            f"SavedModel written to {f.export_dir}; its forecasts match "
            f"(max abs difference {difference:.1e})"
        )
    seconds = time.time() - started
    if f.json:
        result = {
            "model": f.model,
            "data": name,
            "protocol": data["protocol"],
            "features": f.features,
            "seq_len": f.seq_len,
            "pred_len": f.pred_len,
            "windows": {
                "train": len(train_starts),
                "val": len(val_starts),
                "test": len(test_starts),
            },
            "parameters": parameters,
            "epochs_run": epochs_run,
            "mse": mse,
            "mae": mae,
            "published": {"mse": published[0], "mae": published[1], "source": PUBLISHED_SOURCE}
            if published
            else None,
            "seconds": round(seconds, 1),
        }
        with open(f.json, "w") as file:
            json.dump(result, file, indent=2)
    print(f"done in {seconds:.0f} s")


if __name__ == "__main__":
    app.run(main)
