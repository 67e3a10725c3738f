"""A forecaster served as one SavedModel: raw values and timestamps in, the future out.

`export_forecaster` wraps a `tf_tsembed.models` model with everything TSLib's experiment does
around it, so that a client sends the last `seq_len` rows of its file and gets the next
`pred_len` rows back, in the file's units:

1. scaling, `(values - mean) / scale` with the training split's StandardScaler statistics;
2. TSLib's timeF features of the window's timestamps (`x_mark_enc`) and of the decoder's
   (the last `label_len` timestamps and the `pred_len` future ones: `x_mark_dec`), computed by
   `tf_tsembed.timefeatures.time_features_tf` inside the graph; for a model whose config has
   embed 'fixed' or 'learned', the integer calendar marks instead (`time_marks_tf`, TSLib's
   `timeenc=0`);
3. TSLib's decoder input: the last `label_len` scaled rows followed by `pred_len` zeros;
4. the model in inference mode, then the inverse transform (`features='MS'`: the last output
   series, TSLib's `f_dim=-1`, with the target's statistics).

The SavedModel's `serving_default` signature:

- inputs `values` float32 `(B, seq_len, enc_in)` and `timestamps` int64 `(B, seq_len)`, seconds
  since 1970-01-01 00:00:00 with naive dates read as UTC (`datetime64[s]` as int64);
- outputs `forecast` float32 `(B, pred_len, c)` (c = enc_in for 'M', 1 for 'S' and 'MS') and
  `timestamps` int64 `(B, pred_len)`: the future steps.

The future continues the window at its own step, **the difference of its last two
timestamps**: a window whose timestamps are not evenly spaced is not refused by the graph, its
future steps and calendar features simply follow that last difference (the earlier timestamps
still give the encoder's features as they are); check the spacing before calling, as
`examples/predict.py` does. Timestamps out of order (a last step not positive) and a batch of
timestamps other than that of `values` are refused (InvalidArgumentError) outside XLA and
TFLite, where asserts are dropped. So that the future is right, a model whose freq has steps of
varying length (business days, months, quarters, years) is refused at export.

The metadata (input and output column names, seq_len, label_len, pred_len, freq, features, the
scaler statistics and the model's config) is saved as the asset file `assets/forecaster.json`,
readable without TensorFlow (`read_metadata`); the reloaded object also has a `metadata()`
function returning the same JSON as a string tensor.

>>> import tempfile
>>> from tf_tsembed.models import ForecastConfig, ITransformer
>>> config = ForecastConfig(seq_len=8, label_len=4, pred_len=3, enc_in=2, dec_in=2, c_out=2,
...                         d_model=8, n_heads=2, d_ff=8, e_layers=1)
>>> export_dir = tempfile.mkdtemp() + "/served"
>>> metadata = export_forecaster(ITransformer(config), export_dir, mean=[10.0, 250.0],
...                              scale=[2.0, 40.0], names=["load", "OT"], features="MS")
>>> read_metadata(export_dir)["names_out"], metadata["check_max_abs_difference"] < 1e-3
(['OT'], True)
>>> served = tf.saved_model.load(export_dir).signatures["serving_default"]
>>> hours = np.arange("2018-06-26T12", "2018-06-26T20", dtype="datetime64[h]")
>>> out = served(values=tf.zeros((1, 8, 2)), timestamps=tf.constant(
...     hours.astype("datetime64[s]").astype(np.int64)[None]))
>>> out["forecast"].shape, out["timestamps"].numpy().astype("datetime64[s]")[0, 0]
(TensorShape([1, 3, 1]), np.datetime64('2018-06-26T20:00:00'))

TFLite: `convert_to_tflite(export_dir)` converts `serving_default` with builtin ops only
(the calendar features are integer builtins, the future timestamps int64 builtins):
iTransformer, PatchTST, Transformer and TimesNet in its static-shape form
(`static_shapes=True`: a DFT as matrix products and static slices) convert and run in
`tf.lite.Interpreter`. A TimesNet exported in its reshape form (the default, the faster on a
CPU server) is refused with a ValueError saying how to export its weights in the static form:
its rfft becomes the builtin RFFT2D, whose kernel needs seq_len + pred_len a power of two
(TSLib's 96 + 96 is not), and its data-dependent period reshape fails the interpreter's
prepare step (TF 2.21). Informer's ProbAttention draws its
key sample with `tf.random` (StatelessRandomUniformIntV2), a Select TF op: its conversion needs
`select_tf_ops=True` (refused without it) and an interpreter with the Flex delegate.
"""

import json
import os

import numpy as np
import tensorflow as tf

from tf_tsembed import _checks, atomic
from tf_tsembed.models.forecast_model import decoder_input
from tf_tsembed.timefeatures import (
    parse_freq_multiple,
    step_seconds,
    time_features_tf,
    time_marks_tf,
)

__all__ = [
    "FEATURES",
    "METADATA_FILE",
    "convert_to_tflite",
    "export_forecaster",
    "read_metadata",
    "served_forecast",
]

FEATURES = ("M", "S", "MS")
EXPORT_TOLERANCE = 1e-5  # absolute + relative, of forecasts divided by their largest magnitude
METADATA_FILE = "forecaster.json"
SIGNATURE_KEY = "serving_default"
# Steps of a sample window for the reload check, per unit of freq.


def _statistic(name, value, enc_in):
    try:
        array = np.asarray(value, np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` must be {enc_in} numbers (one per input column, enc_in={enc_in}); "
            f"received {value!r}: {error}"
        ) from None
    if array.shape != (enc_in,):
        raise ValueError(
            f"`{name}` must have shape ({enc_in},) (one per input column, enc_in={enc_in}); "
            f"received shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        position = int(np.argmin(np.isfinite(array)))
        raise ValueError(f"`{name}` must be finite; received {name}[{position}]={array[position]}.")
    return array


def _validated(model, mean, scale, names, features):
    config = getattr(model, "forecast_config", None)
    if config is None:
        raise TypeError(
            f"`model` must be a tf_tsembed.models model (a ForecastModel with a "
            f"forecast_config); received {type(model).__name__}."
        )
    if features not in FEATURES:
        raise ValueError(f"`features` must be one of {list(FEATURES)}; received {features!r}.")
    if config.seq_len < 2:
        raise ValueError(
            f"`model` must have seq_len >= 2: the served future continues the step of the "
            f"last two timestamps; received seq_len={config.seq_len}."
        )
    if step_seconds(config.freq) is None:
        raise ValueError(
            f"`model` has freq={config.freq!r}, whose steps differ in length (months, quarters, "
            f"years, business days); the served future continues a fixed step (the last two "
            f"timestamps apart), which would put its dates off the calendar. Fixed-length "
            f"steps only (s, min, h, d, W)."
        )
    if config.dec_in != config.enc_in:
        raise ValueError(
            f"`model` must have dec_in equal to enc_in={config.enc_in}: its decoder input "
            f"repeats the scaled input rows; received dec_in={config.dec_in}."
        )
    if features == "S" and config.enc_in != 1:
        raise ValueError(
            f"features='S' needs a model of one series (enc_in=1, c_out=1); received "
            f"enc_in={config.enc_in}, c_out={config.c_out}."
        )
    if features in ("M", "S") and config.c_out != config.enc_in:
        raise ValueError(
            f"features={features!r} needs c_out equal to enc_in={config.enc_in} (each output "
            f"series is unscaled with its input column's statistics); received "
            f"c_out={config.c_out}. Use features='MS' for a model forecasting the target last."
        )
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise TypeError(f"`names` must be a sequence of column names (str); received {names!r}.")
    names = list(names)
    if len(names) != config.enc_in:
        raise ValueError(
            f"`names` must hold {config.enc_in} column names (enc_in={config.enc_in}, in the "
            f"order of the model's input columns, target last); received {len(names)}: {names}."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"`names` must be distinct; received {names}.")
    mean = _statistic("mean", mean, config.enc_in)
    scale = _statistic("scale", scale, config.enc_in)
    if np.any(scale <= 0):
        position = int(np.argmax(scale <= 0))
        raise ValueError(
            f"`scale` must be positive (StandardScaler's scale_, 1 for a constant column); "
            f"received scale[{position}]={scale[position]} for column {names[position]!r}."
        )
    return config, mean, scale, names


def served_forecast(model, values, timestamps, *, mean, scale, features="M"):
    """What `serving_default` computes, as TensorFlow ops: `(forecast, future timestamps)`.

    `values` float32 `(B, seq_len, enc_in)` in the file's units, `timestamps` int64
    `(B, seq_len)` seconds since 1970; `mean` and `scale` the scaler's statistics. See the
    module docstring for the steps; the future step is the last two timestamps' difference.
    """
    config = model.forecast_config
    mean = tf.constant(np.asarray(mean, np.float32))
    scale = tf.constant(np.asarray(scale, np.float32))
    values = tf.convert_to_tensor(values, tf.float32)
    timestamps = tf.convert_to_tensor(timestamps, tf.int64)
    timestamps = _checks.ensure(
        timestamps,
        tf.equal(tf.shape(timestamps)[0], tf.shape(values)[0]),
        "`timestamps` must have one row per window of `values` (the same batch size)",
    )
    step = timestamps[:, -1:] - timestamps[:, -2:-1]  # (B, 1)
    step = _checks.ensure(
        step, step > 0, "`timestamps` must increase: a window's last two are not in order"
    )
    scaled = (values - mean) / scale
    ahead = tf.range(1, config.pred_len + 1, dtype=tf.int64)[tf.newaxis, :]
    future = timestamps[:, -1:] + step * ahead  # (B, pred_len)
    label_start = config.seq_len - config.label_len
    decoder_stamps = tf.concat([timestamps[:, label_start:], future], axis=1)
    x_dec = decoder_input(scaled, config.label_len, config.pred_len)
    marks = time_features_tf if config.embed == "timeF" else time_marks_tf
    outputs = model(
        [scaled, marks(timestamps, config.freq), x_dec, marks(decoder_stamps, config.freq)],
        training=False,
    )
    outputs = tf.cast(outputs, tf.float32)
    if features == "MS":
        forecast = outputs[..., -1:] * scale[-1] + mean[-1]
    else:
        forecast = outputs * scale + mean
    return forecast, future


def _archive(model, mean, scale, features, metadata_json):
    """A Keras ExportArchive of the serving function. Keras's archive (not a bare tf.Module)
    saves the model's variables so that the TF1 session loaders (`saved_model_cli run`, TF
    Serving's) find them as well as `tf.saved_model.load`."""
    config = model.forecast_config
    archive = tf.keras.export.ExportArchive()
    archive.track(model)

    def serve(values, timestamps):
        forecast, future = served_forecast(
            model, values, timestamps, mean=mean, scale=scale, features=features
        )
        return {"forecast": forecast, "timestamps": future}

    archive.add_endpoint(
        SIGNATURE_KEY,
        serve,
        input_signature=[
            tf.TensorSpec((None, config.seq_len, config.enc_in), tf.float32, name="values"),
            tf.TensorSpec((None, config.seq_len), tf.int64, name="timestamps"),
        ],
    )
    archive.add_endpoint("metadata", lambda: tf.constant(metadata_json), input_signature=[])
    return archive


def _sample(config, mean, scale, freq, batch=3, seed=0):
    """A sample request: values around the scaler's mean, timestamps at freq's step."""
    rng = np.random.default_rng(seed)
    values = mean + scale * rng.normal(size=(batch, config.seq_len, config.enc_in))
    step = step_seconds(freq)
    start = np.datetime64("2016-07-01T00:00:00", "s").astype(np.int64)
    starts = start + step * rng.integers(0, 1000, size=(batch, 1))
    timestamps = starts + step * np.arange(config.seq_len)[None, :]
    return values.astype(np.float32), timestamps.astype(np.int64)


def _check_reloaded(export_dir, model, mean, scale, features):
    """Reloads `export_dir`, serves a sample and compares with `served_forecast` run in Python;
    returns the max abs difference of the forecasts (`compare_forecasts` on the forecasts
    divided by their largest magnitude, at least 1: the file's units)."""
    config = model.forecast_config
    values, timestamps = _sample(config, mean, scale, config.freq)
    signature = tf.saved_model.load(export_dir).signatures[SIGNATURE_KEY]
    served = signature(values=tf.constant(values), timestamps=tf.constant(timestamps))
    forecast, future = served_forecast(
        model, values, timestamps, mean=mean, scale=scale, features=features
    )
    if not np.array_equal(served["timestamps"].numpy(), future.numpy()):
        raise ValueError("the exported SavedModel's future timestamps differ; nothing was written.")
    # Forecasts are in the file's units: float32 rounding of the reloaded, separately optimised
    # graph scales with the series' size.
    scale_of_forecast = max(1.0, float(np.max(np.abs(forecast.numpy()), initial=0.0)))
    return (
        compare_forecasts(
            served["forecast"].numpy() / scale_of_forecast, forecast.numpy() / scale_of_forecast
        )
        * scale_of_forecast
    )


def compare_forecasts(actual, expected, tolerance=EXPORT_TOLERANCE):
    """The max abs difference of a reloaded model's forecasts from the model's; ValueError when
    the shapes differ, a value is not finite, or any differs by more than `tolerance * (1 +
    |expected|)` (absolute plus relative).

    >>> compare_forecasts(np.ones(3, "float32"), np.ones(3))
    0.0
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise ValueError(
            f"the exported SavedModel forecasts shape {actual.shape}, the trained model "
            f"{expected.shape}; nothing was written."
        )
    if not (np.all(np.isfinite(actual)) and np.all(np.isfinite(expected))):
        raise ValueError(
            "the exported or the trained model forecasts non-finite values; nothing was written."
        )
    difference = np.abs(actual.astype(np.float64) - expected)
    worst = float(np.max(difference, initial=0.0))
    if np.any(difference > tolerance * (1 + np.abs(expected))):
        raise ValueError(
            f"the exported SavedModel does not forecast as the trained model: max abs "
            f"difference {worst:.3g}, tolerance {tolerance:g} (absolute + relative); nothing "
            f"was written."
        )
    return worst


def export_forecaster(model, export_dir, *, mean, scale, names, features="M", overwrite=False):
    """Writes a SavedModel serving `model` on raw values and timestamps; returns its metadata.

    Args:
        model: a `tf_tsembed.models` model (its `forecast_config` gives seq_len, label_len,
            pred_len, enc_in, c_out and freq; dec_in must equal enc_in).
        export_dir: the SavedModel directory. Written as a temporary sibling directory, reloaded
            and checked, then renamed into place: a failure leaves no partial export and an
            existing one unchanged.
        mean, scale: the training split's StandardScaler statistics (sklearn's `mean_`,
            `scale_`, 1 for a constant column) of the model's input columns, shape (enc_in,).
        names: the input columns' names, in the model's order (TSLib puts the target last).
        features: TSLib's 'M' (every series forecast, c_out == enc_in), 'S' (one series) or
            'MS' (the model forecasts from enc_in series; the last output series, the target,
            is returned and unscaled with the last column's statistics).
        overwrite: replace an existing `export_dir` (the old one is renamed aside, the new one
            renamed in, then the old deleted); without it an existing path is refused.

    The served signature, the future step (the difference of the window's last two
    timestamps, also when the window is not evenly spaced) and the metadata are described in
    the module docstring. The check serves a sample of 3 windows from the reloaded SavedModel
    and compares it with `served_forecast` run eagerly, to 1e-5 relative to the largest
    forecast (ValueError on a mismatch, the previous export kept); the max difference is
    in the returned dict under `check_max_abs_difference` (not saved in the metadata).

    Raises:
        TypeError: `model` is not a tf_tsembed.models model, `names` not a list of str.
        ValueError: naming the parameter, expected and received: mean/scale not of shape
            (enc_in,) or not finite, a non-positive scale, names not enc_in distinct names,
            features not 'M'/'S'/'MS' or not fitting the model (c_out, enc_in), seq_len < 2.
        FileExistsError: `export_dir` exists and overwrite is False, or is not a directory
            holding an earlier SavedModel (or empty): a folder of other files is never replaced.
    """
    config, mean, scale, names = _validated(model, mean, scale, names, features)
    overwrite = bool(overwrite)
    export_dir = os.path.abspath(os.fspath(export_dir))
    atomic.check_replaceable(
        export_dir, directory=True, overwrite=overwrite, earlier=atomic.SAVED_MODEL_FILE
    )
    names_out = [names[-1]] if features == "MS" else list(names)
    metadata = {
        "names_in": names,
        "names_out": names_out,
        "seq_len": config.seq_len,
        "label_len": config.label_len,
        "pred_len": config.pred_len,
        "freq": config.freq,
        "features": features,
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "model": type(model).__name__,
        "options": dict(model.options),
        "config": config.to_dict(),
        "signature": {
            "key": SIGNATURE_KEY,
            "inputs": {
                "values": ["float32", [None, config.seq_len, config.enc_in]],
                "timestamps": ["int64", [None, config.seq_len]],
            },
            "outputs": {
                "forecast": ["float32", [None, config.pred_len, len(names_out)]],
                "timestamps": ["int64", [None, config.pred_len]],
            },
            "timestamps": "seconds since 1970-01-01 00:00:00, naive dates read as UTC",
            "future_step": "the difference of the window's last two timestamps",
        },
    }
    metadata_json = json.dumps(metadata, indent=2)
    archive = _archive(model, mean, scale, features, metadata_json)
    with atomic.replacing(
        export_dir, directory=True, overwrite=overwrite, earlier=atomic.SAVED_MODEL_FILE
    ) as temporary:
        archive.write_out(temporary, verbose=False)
        os.makedirs(os.path.join(temporary, "assets"), exist_ok=True)
        with open(os.path.join(temporary, "assets", METADATA_FILE), "w") as file:
            file.write(metadata_json + "\n")
        difference = _check_reloaded(temporary, model, mean, scale, features)
    return {**metadata, "check_max_abs_difference": difference}


def read_metadata(export_dir):
    """The metadata dict of an `export_forecaster` SavedModel, read from its JSON asset (no
    TensorFlow needed), with what a client reads of it checked (`METADATA_KEYS`).

    Raises ValueError naming the path and the problem: not a directory, not a forecaster
    export (no metadata file), a file that is not JSON, keys missing or of the wrong kind.
    """
    export_dir = os.fspath(export_dir)
    path = os.path.join(export_dir, "assets", METADATA_FILE)
    if not os.path.isdir(export_dir):
        what = "does not exist" if not os.path.lexists(export_dir) else "is not a directory"
        raise ValueError(
            f"{export_dir!r} {what}: give the SavedModel directory written by "
            f"tf_tsembed.serving.export_forecaster."
        )
    try:
        with open(path) as file:
            metadata = json.load(file)
    except FileNotFoundError:
        raise ValueError(
            f"{export_dir!r} is not a forecaster SavedModel written by "
            f"tf_tsembed.serving.export_forecaster: {path} is missing."
        ) from None
    except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path} is not valid JSON ({error}); re-export the model.") from None
    except OSError as error:
        raise ValueError(f"{path} cannot be read: {error}") from None
    _check_metadata(metadata, path)
    return metadata


# What a client (examples/predict.py) reads of the metadata, and what each must be.
METADATA_KEYS = {
    "names_in": "a non-empty list of column names",
    "names_out": "a non-empty list of column names",
    "seq_len": "an integer >= 2",
    "pred_len": "an integer >= 1",
    "freq": "a frequency string such as 'h'",
}


def _check_metadata(metadata, path):
    if not isinstance(metadata, dict):
        raise ValueError(f"{path} holds a {type(metadata).__name__}, not an object of metadata.")
    missing = [key for key in METADATA_KEYS if key not in metadata]
    if missing:
        raise ValueError(
            f"{path} lacks the keys {missing} (a client reads {list(METADATA_KEYS)}); re-export "
            f"the model."
        )
    for key, expected in METADATA_KEYS.items():
        value = metadata[key]
        if key.startswith("names"):
            good = isinstance(value, list) and value and all(isinstance(n, str) for n in value)
        elif key == "freq":
            try:
                good = isinstance(value, str) and bool(parse_freq_multiple(value))
            except ValueError:
                good = False
        else:
            low = 2 if key == "seq_len" else 1
            good = isinstance(value, int) and not isinstance(value, bool) and value >= low
        if not good:
            raise ValueError(f"{path}: {key} must be {expected}; it is {value!r}.")


def convert_to_tflite(export_dir, select_tf_ops=False):
    """The TFLite flatbuffer (bytes) of an `export_forecaster` SavedModel's `serving_default`.

    Builtin ops only, unless `select_tf_ops=True` adds `SELECT_TF_OPS` (Flex ops, for an
    interpreter linked with the Flex delegate; Informer needs it, the other three do not).
    A TimesNet exported in its reshape form is refused with a ValueError: see the module
    docstring.
    """
    metadata = read_metadata(export_dir)
    if metadata["model"] == "TimesNet" and not metadata["options"]["static_shapes"]:
        raise ValueError(
            f"{export_dir} serves TimesNet in its reshape form, which does not run in TFLite "
            f"(its rfft becomes RFFT2D, power-of-two lengths only: seq_len + pred_len = "
            f"{metadata['seq_len'] + metadata['pred_len']}; its period reshape fails the "
            f"interpreter's prepare step). Export the same weights with static_shapes=True: "
            f"`static = TimesNet(model.forecast_config, padding=..., static_shapes=True)`, "
            f"`static.set_weights(model.get_weights())` (or load_checkpoint(..., "
            f"options={{'static_shapes': True}})), then convert that export."
        )
    if metadata["model"] == "Informer" and not select_tf_ops:
        raise ValueError(
            f"{export_dir} serves Informer, whose ProbAttention samples keys with a Select TF op "
            f"(StatelessRandomUniformIntV2): pass select_tf_ops=True and run the flatbuffer "
            f"with the Flex delegate."
        )
    converter = tf.lite.TFLiteConverter.from_saved_model(
        os.fspath(export_dir), signature_keys=[SIGNATURE_KEY]
    )
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    return converter.convert()
