r"""Long-term forecasting under Time-Series-Library's protocol, with models built on tf_tsembed.

Reproduces a row of the long-term forecasting tables (lookback 96, horizons 96-720):

    .venv/bin/python -m examples.long_term_forecast --csv ETTh1.csv --model timesnet
    .venv/bin/python -m examples.long_term_forecast --csv ETTh1.csv --model itransformer
    .venv/bin/python -m examples.long_term_forecast --csv ETTh1.csv --model patchtst --epochs 1
    .venv/bin/python -m examples.long_term_forecast --csv ETTh1.csv --model transformer --epochs 1

Models (`tf_tsembed.models`, on tf_tsembed's public layers and tf.keras only): TimesNet
(`DataEmbedding`), iTransformer (`DataEmbeddingInverted`), TSLib's PatchTST (`PatchEmbedding`)
and TSLib's vanilla Transformer (`DataEmbedding`, decoder started from the last `--label_len`
48 input steps).

Data as TSLib's `data_provider/data_loader.py`: the split is chosen from the file name
(`ETTh*`: 12/4/4 months of hourly rows, `ETTm*`: the same in 15-minute rows, anything else:
70/10/20 %), or by `--protocol`; validation and test windows start `seq_len` rows before their
split; the scaler is fit on the training rows only and the metrics are on the standardised data.
`--features`: M (all series -> all series), S (target -> target), MS (all series -> target, the
target being put last as TSLib does). Time features are TSLib's `timeenc=1` (`embed=timeF`)
with the scripts' freq 'h' for every file they name, else the dates' frequency.

Training as TSLib's `exp/exp_long_term_forecasting.py`: Adam, MSE loss, up to 10 epochs, the
learning rate halved after every epoch from the second on (`lradj=type1`), early stopping after
3 epochs without a lower validation loss and the best epoch's weights restored; dropout is off
for validation and test. Sizes, batch size, learning rate and epochs come from the authors'
scripts (`examples/recipes.py`; `--help` prints the ones the given model, file and horizon
get); a file or horizon the scripts do not name runs with run.py's defaults, and the first line
says so.

How windows are batched (`--tslib_version`): TimesNet picks its periods per batch, so its
forecasts depend on it. '2023', TSLib as first published (the code behind the published
figures): training and validation drop their last incomplete batch, validation is shuffled, test
windows are forecast one at a time, and TimesNet pads with the series' last rows. '2025', TSLib
today: nothing is dropped, test batches are of `--batch_size`, TimesNet pads with zeros.
"""

import time

from absl import flags

from examples import cli, outputs, recipes

MODELS = tuple(recipes.TSLIB_MODEL_NAMES)
# The ForecastConfig sizes the settings (recipes.settings) choose.
MODEL_SIZES = ("d_model", "n_heads", "e_layers", "d_layers", "d_ff", "dropout", "top_k")
# Flags that only some models read: given for another model, they are refused, not ignored.
MODEL_FLAGS = {
    "top_k": ("timesnet",),
    "static_shapes": ("timesnet",),
    "n_heads": ("itransformer", "patchtst", "transformer"),
    "d_layers": ("transformer",),
    "label_len": ("transformer",),
}


def define_flags():
    """The script's flags, defined when it runs (importing the module defines none)."""
    flags.DEFINE_string("csv", None, "Benchmark CSV with a `date` column (e.g. ETTh1.csv).")
    flags.DEFINE_enum("model", "itransformer", MODELS, "Forecasting model.")
    flags.DEFINE_enum(
        "protocol", None, recipes.PROTOCOLS, "Split protocol; default: from the file name."
    )
    flags.DEFINE_enum(
        "features", "M", ("M", "S", "MS"), "M: all -> all, S: target -> target, MS: all -> target."
    )
    flags.DEFINE_string("target", "OT", "Target column for S and MS.")
    flags.DEFINE_string(
        "freq",
        None,
        "Time-feature frequency; default: the scripts' 'h' for the files they name, else the "
        "dates' own.",
    )
    flags.DEFINE_integer("seq_len", 96, "Input window length.", lower_bound=1)
    flags.DEFINE_integer("pred_len", 96, "Forecast horizon.", lower_bound=1)
    flags.DEFINE_integer(
        "epochs", None, "Maximum training epochs; default: the authors' script.", lower_bound=1
    )
    flags.DEFINE_integer(
        "patience", 3, "Epochs without a lower validation loss before stopping.", lower_bound=1
    )
    flags.DEFINE_integer(
        "batch_size", None, "Batch size; default: the authors' script.", lower_bound=1
    )
    flags.DEFINE_enum(
        "tslib_version",
        "2023",
        list(recipes.TSLIB_VERSIONS),
        "How windows are batched and TimesNet pads: TSLib as first published (2023, behind the "
        "published figures) or today's (2025); see above.",
    )
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
    flags.DEFINE_integer(
        "d_model",
        None,
        "Model width; default: the authors' script (examples/recipes.py).",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "n_heads", None, "Attention heads; default: the authors' script.", lower_bound=1
    )
    flags.DEFINE_integer(
        "e_layers", None, "Encoder layers; default: the authors' script.", lower_bound=1
    )
    flags.DEFINE_integer(
        "d_layers",
        None,
        "Decoder layers (transformer); default: the authors' script.",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "label_len",
        recipes.LABEL_LEN,
        "Known steps the transformer's decoder starts from.",
        lower_bound=0,
    )
    flags.DEFINE_integer(
        "d_ff", None, "Feed-forward width; default: the authors' script.", lower_bound=1
    )
    flags.DEFINE_float("dropout", None, "Dropout rate; default: the authors' script.")
    flags.DEFINE_integer(
        "top_k", None, "TimesNet's number of periods; default: the authors' script.", lower_bound=1
    )
    flags.DEFINE_boolean(
        "static_shapes",
        False,
        "TimesNet's folded convolution with static shapes (XLA, TPU) instead of the reference's "
        "reshape (graph mode); the two are equal to float rounding.",
    )
    cli.define_seed("Seed of initialisation, dropout and shuffling (TSLib's fix_seed).")
    cli.require_learning_rate()
    cli.require_dropout()
    flags.DEFINE_string("json", None, "Write the results as JSON to this path.")
    flags.DEFINE_string(
        "export_dir",
        None,
        "Write a SavedModel here that takes the file's raw values and timestamps and returns "
        "the next pred_len rows (tf_tsembed.serving; python -m examples.predict reads it), and "
        "check it forecasts as the trained model.",
    )
    cli.define_overwrite()
    flags.mark_flag_as_required("csv")


def build_model(name, config, version, static_shapes=False):
    """The model `name` (`MODELS`) for a `ForecastConfig`, TimesNet padded as `version` does."""
    # Imported here, not at the top: `--help` does not wait for TensorFlow.
    from tf_tsembed.models import MODELS as PACKAGE_MODELS

    model_class = PACKAGE_MODELS[recipes.TSLIB_MODEL_NAMES[name]]
    if name == "timesnet":
        return model_class(config, padding=version.timesnet_padding, static_shapes=static_shapes)
    return model_class(config)


def export_served(model, export_dir, data, features, overwrite):
    """`tf_tsembed.serving.export_forecaster` with the training rows' scaler; the max abs
    difference of its reload check. A mismatch or an export that appeared is a ValueError."""
    from tf_tsembed import serving

    try:
        exported = serving.export_forecaster(
            model, export_dir, mean=data["mean"], scale=data["scale"], names=data["names"],
            features=features, overwrite=overwrite,
        )  # fmt: skip
    except AssertionError as error:
        raise ValueError(
            f"--export_dir: the reloaded SavedModel does not forecast as the trained model; "
            f"nothing written. {error}"
        ) from None
    except FileExistsError as error:
        raise ValueError(f"--export_dir: {error} (give --overwrite)") from None
    return exported["check_max_abs_difference"]


def settings_line(model, csv, pred_len, chosen):
    """Where the settings come from: the authors' script for this file, or run.py's defaults."""
    name = recipes.data_name(csv)
    if recipes.in_scripts(model, name, pred_len):
        return (
            f"settings of the authors' script for {model} on {name}, pred_len {pred_len}: {chosen}"
        )
    return (
        f"note: the authors' scripts have no {model} run on {name!r} at pred_len {pred_len}; "
        f"running with run.py's defaults {recipes.DEFAULTS}, then the flags given: {chosen}"
    )


def describe_settings(values):
    """What `--help` adds: the settings the given model, file and horizon get."""
    model, csv, pred_len = (values[name].value for name in ("model", "csv", "pred_len"))
    if csv is None:
        return "Settings: give --csv (and --model, --pred_len) with --help to see the ones used."
    return settings_line(
        model, csv, pred_len, recipes.settings(model, recipes.data_name(csv), pred_len, {})
    )


def main(argv):
    del argv
    # TensorFlow is imported here, not at the top: `--help` does not wait for it.
    import numpy as np
    import tensorflow as tf  # cli.run has imported it quietly already

    from examples import data as benchmark_data
    from examples import training
    from examples.evaluation import finite_errors
    from tf_tsembed import tslib_data
    from tf_tsembed.models import ForecastConfig

    started = time.time()
    f = flags.FLAGS
    for flag, models in MODEL_FLAGS.items():
        if f[flag].present and f.model not in models:
            raise ValueError(f"--{flag} applies to --model {' or '.join(models)} only.")
    outputs.check(
        files={"json": f.json},
        directories={"export_dir": f.export_dir},
        inputs={"csv": f.csv},
        overwrite=f.overwrite,
    )
    name = recipes.data_name(f.csv)
    flagged = dict(
        d_model=f.d_model,
        n_heads=f.n_heads,
        e_layers=f.e_layers,
        d_layers=f.d_layers,
        d_ff=f.d_ff,
        dropout=f.dropout,
        learning_rate=f.learning_rate,
        batch_size=f.batch_size,
        epochs=f.epochs,
        top_k=f.top_k,
    )
    chosen = recipes.settings(f.model, name, f.pred_len, flagged)
    print(settings_line(f.model, f.csv, f.pred_len, chosen), flush=True)
    tf.keras.utils.set_random_seed(f.seed)
    data = benchmark_data.load_benchmark(
        f.csv, f.protocol, f.features, f.target, f.freq, f.seq_len, f.pred_len
    )
    batch_size = chosen["batch_size"]
    version = recipes.TSLIB_VERSIONS[f.tslib_version]
    train_starts, val_starts, test_starts = data["starts"]
    if version.drop_last:
        for split, starts in (("training", train_starts), ("validation", val_starts)):
            if len(starts) < batch_size:
                source = "--batch_size" if f["batch_size"].present else "the scripts' batch size"
                raise ValueError(
                    f"The {split} split has {len(starts)} windows, fewer than one batch of "
                    f"{batch_size} ({source}), and TSLib 2023 drops incomplete batches: give a "
                    f"smaller --batch_size, more data, or --tslib_version 2025."
                )
    # An epoch longer than the data would cycle it: steps_per_epoch shortens, never lengthens.
    batches = (
        len(train_starts) // batch_size
        if version.drop_last
        else -(-len(train_starts) // batch_size)
    )
    if f.steps_per_epoch > batches:
        raise ValueError(
            f"--steps_per_epoch={f.steps_per_epoch} is more than the {batches} batches of one "
            f"training epoch ({len(train_starts)} windows, batch {batch_size}); give at most "
            f"{batches}, or 0 for whole epochs."
        )
    series = data["series"]
    if np.any(data["constant"]):
        print(f"note: {tslib_data.constant_note(data['names'], data['constant'])}", flush=True)
    num_series = series.shape[1]
    config = ForecastConfig(
        seq_len=f.seq_len,
        # Read by the Transformer only; the other models' unused decoder input stays in the window.
        label_len=f.label_len if f.model == "transformer" else min(f.label_len, f.seq_len),
        pred_len=f.pred_len,
        enc_in=num_series,
        dec_in=num_series,
        c_out=num_series,
        freq=data["freq"],
        **{key: chosen[key] for key in MODEL_SIZES},
    )
    model = package_model = build_model(f.model, config, version, static_shapes=f.static_shapes)
    if f.features == "MS":  # TSLib's f_dim = -1: the loss and metrics see the target only.
        # Trained and evaluated through this wrapper (same weights); exported as the package
        # model with features="MS", which serves the last series (export_forecaster refuses
        # the wrapper, a plain keras.Model).
        model = tf.keras.Model(model.inputs, model.outputs[0][:, :, -1:], name=model.name)
    window = dict(
        inputs=series,
        targets=series[:, -1:] if f.features == "MS" else series,
        marks=data["marks"],
        label_len=config.label_len,
        seq_len=f.seq_len,
        pred_len=f.pred_len,
    )
    train_data = benchmark_data.make_dataset(
        starts=train_starts,
        batch_size=batch_size,
        shuffle_seed=f.seed,
        drop_remainder=version.drop_last,
        **window,
    )
    val_data = benchmark_data.make_dataset(
        starts=val_starts,
        batch_size=batch_size,
        shuffle_seed=f.seed + 1 if version.shuffle_validation else None,
        drop_remainder=version.drop_last,
        **window,
    )
    test_data = benchmark_data.make_dataset(
        starts=test_starts, batch_size=version.test_batch(batch_size), **window
    )
    used = [len(train_starts), len(val_starts), len(test_starts)]
    if version.drop_last:
        used[:2] = [count // batch_size * batch_size for count in used[:2]]
    parameters = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    print(
        f"data: {f.csv}, protocol {data['protocol']}, features {f.features} "
        f"({len(data['names'])} series), freq {data['freq']!r}; windows train/val/test = "
        f"{'/'.join(map(str, used))} (TSLib {f.tslib_version}); seq_len {f.seq_len} -> "
        f"pred_len {f.pred_len}",
        flush=True,
    )
    print(f"model: {f.model}, {parameters:,} trainable parameters", flush=True)

    epochs_run = training.train_tslib(
        model,
        train_data,
        val_data,
        epochs=chosen["epochs"],
        learning_rate=chosen["learning_rate"],
        patience=f.patience,
        steps_per_epoch=f.steps_per_epoch,
        log_every=f.log_every,
    )
    truth = np.concatenate([future.numpy() for _, future in test_data])
    mse, mae = finite_errors(model.predict(test_data, verbose=0), truth)
    published = (
        recipes.PUBLISHED.get((f.model, name, f.pred_len))
        if f.features == "M" and f.seq_len == 96
        else None
    )
    line = f"test ({len(test_starts)} windows): MSE {mse:.4f}, MAE {mae:.4f}"
    if published:
        line += f"; published {published[0]:.3f} / {published[1]:.3f} ({published[2]})"
    print(line, flush=True)

    if f.export_dir:
        difference = export_served(package_model, f.export_dir, data, f.features, f.overwrite)
        print(
            f"SavedModel written to {f.export_dir} (raw values and timestamps in, "
            f"`python -m examples.predict`); its forecasts match (max abs difference "
            f"{difference:.1e})"
        )
    seconds = time.time() - started
    if f.json:
        result = {
            "model": f.model,
            "data": name,
            "protocol": data["protocol"],
            "tslib_version": f.tslib_version,
            "features": f.features,
            "seq_len": f.seq_len,
            "pred_len": f.pred_len,
            "settings": chosen,
            "windows": dict(zip(("train", "val", "test"), used)),
            "parameters": parameters,
            "epochs_run": epochs_run,
            "mse": mse,
            "mae": mae,
            "published": dict(zip(("mse", "mae", "source"), published)) if published else None,
            "seconds": round(seconds, 1),
        }
        outputs.write_json(f.json, result, overwrite=f.overwrite)
    print(f"done in {seconds:.0f} s")


if __name__ == "__main__":
    cli.run(main, define_flags, describe_settings)
