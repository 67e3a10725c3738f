"""tf_tsembed.serving: the SavedModel that takes raw values and timestamps and returns the future.

The served forecast is compared with the model called on inputs prepared by hand in NumPy (the
scaler, `time_features` on datetime64, TSLib's decoder input, the inverse transform), for
features M, S and MS; `saved_model_cli` shows and runs it; each model converts to TFLite.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

from tf_tsembed import serving
from tf_tsembed.models import MODELS, ForecastConfig
from tf_tsembed.models.forecast_model import ForecastModel, forecast_inputs
from tf_tsembed.timefeatures import time_features, time_marks

SEQ_LEN, LABEL_LEN, PRED_LEN = 16, 8, 6
SIZES = dict(d_model=8, n_heads=2, d_ff=8, e_layers=1, d_layers=1, top_k=2, num_kernels=2)
NAMES = ["HUFL", "MULL", "OT"]
MEAN = np.array([10.0, -3.0, 250.0])
SCALE = np.array([2.0, 0.5, 40.0])
HOUR = 3600
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
# (model, features, enc_in, c_out) of the three exports the tests share.
CASES = {
    "M": ("Transformer", 3, 3),
    "S": ("iTransformer", 1, 1),
    "MS": ("PatchTST", 3, 3),
}


def _config(enc_in, c_out, freq="h"):
    return ForecastConfig(
        seq_len=SEQ_LEN, label_len=LABEL_LEN, pred_len=PRED_LEN, enc_in=enc_in, dec_in=enc_in,
        c_out=c_out, freq=freq, dropout=0.0, **SIZES,
    )  # fmt: skip


def _stats(features):
    if features == "S":
        return MEAN[-1:], SCALE[-1:], NAMES[-1:]
    return MEAN, SCALE, NAMES


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """`{features: (model, export_dir)}`, each exported once."""
    tf.keras.utils.set_random_seed(7)
    result = {}
    for features, (name, enc_in, c_out) in CASES.items():
        model = MODELS[name](_config(enc_in, c_out))
        mean, scale, names = _stats(features)
        export_dir = str(tmp_path_factory.mktemp("served") / features)
        serving.export_forecaster(
            model, export_dir, mean=mean, scale=scale, names=names, features=features
        )
        result[features] = model, export_dir
    return result


def _request(enc_in, step_seconds, batch=2, seed=0, mean=MEAN, scale=SCALE):
    rng = np.random.default_rng(seed)
    values = mean[-enc_in:] + scale[-enc_in:] * rng.normal(size=(batch, SEQ_LEN, enc_in))
    start = np.datetime64("2018-03-25T00:00:00", "s")  # a DST Sunday: naive dates ignore it
    starts = start + step_seconds * rng.integers(0, 2000, size=batch).astype("timedelta64[s]")
    dates = starts[:, None] + (step_seconds * np.arange(SEQ_LEN)).astype("timedelta64[s]")
    return values.astype(np.float32), dates


def _by_hand(model, values, dates, mean, scale, features, step_seconds):
    """The forecast built in NumPy, as TSLib's experiment prepares and undoes the model's I/O."""
    config = model.forecast_config
    scaled = ((values - mean) / scale).astype(np.float32)
    future = dates[:, -1:] + (step_seconds * np.arange(1, PRED_LEN + 1)).astype("timedelta64[s]")
    decoder_dates = np.concatenate([dates[:, SEQ_LEN - LABEL_LEN :], future], axis=1)
    marks = [
        np.stack([time_features(row, config.freq) for row in d]) for d in (dates, decoder_dates)
    ]
    x_dec = np.concatenate(
        [scaled[:, SEQ_LEN - LABEL_LEN :], np.zeros((len(values), PRED_LEN, config.enc_in))], 1
    ).astype(np.float32)
    outputs = model([scaled, marks[0], x_dec, marks[1]], training=False).numpy()
    if features == "MS":
        return outputs[..., -1:] * scale[-1] + mean[-1], future
    return outputs * scale + mean, future


def _serve(export_dir, values, dates):
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    served = signature(
        values=tf.constant(values),
        timestamps=tf.constant(dates.astype("datetime64[s]").astype(np.int64)),
    )
    return served["forecast"].numpy(), served["timestamps"].numpy()


def _close(actual, expected):
    atol = 1e-5 * np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=atol)


@pytest.mark.slow
@pytest.mark.parametrize("features", list(CASES))
def test_served_forecast_equals_model_on_inputs_prepared_by_hand(exports, features):
    model, export_dir = exports[features]
    mean, scale, names = _stats(features)
    values, dates = _request(len(mean), HOUR, mean=mean, scale=scale)
    forecast, future = _serve(export_dir, values, dates)
    expected, expected_future = _by_hand(model, values, dates, mean, scale, features, HOUR)
    assert forecast.shape == (2, PRED_LEN, 1 if features != "M" else 3)
    _close(forecast, expected)
    np.testing.assert_array_equal(future, expected_future.astype(np.int64))
    metadata = serving.read_metadata(export_dir)
    assert metadata["names_in"] == names
    assert metadata["names_out"] == (names if features != "MS" else ["OT"])
    assert (metadata["seq_len"], metadata["label_len"], metadata["pred_len"]) == (16, 8, 6)
    assert (metadata["freq"], metadata["features"]) == ("h", features)


class _MarksProbe(ForecastModel):
    """Returns the integer marks it is given, as floats: the encoder's last `pred_len` rows, then
    the decoder's last `pred_len` rows, side by side (c_out = 2 x the marks)."""

    def __init__(self, config):
        inputs = forecast_inputs(config)
        x_enc, x_mark_enc, _, x_mark_dec = inputs
        pred_len = config.pred_len
        marks = tf.keras.layers.Concatenate()(
            [x_mark_enc[:, -pred_len:], x_mark_dec[:, -pred_len:]]
        )
        marks = tf.keras.ops.cast(marks, "float32")
        super().__init__(config, inputs, marks + 0.0 * x_enc[:, -pred_len:])


@pytest.mark.parametrize("freq, step", [("h", HOUR), ("15min", 900)])
def test_fixed_embed_models_are_served_the_exact_integer_marks(freq, step):
    # A config with embed 'fixed' takes int32 calendar marks (TSLib's timeenc=0 columns), and
    # served_forecast computes them in the graph: the ids equal time_marks on datetime64.
    num_marks = 4 if freq == "h" else 5
    config = ForecastConfig(
        seq_len=SEQ_LEN, label_len=LABEL_LEN, pred_len=PRED_LEN, enc_in=2 * num_marks,
        dec_in=2 * num_marks, c_out=2 * num_marks, freq=freq, embed="fixed", **SIZES,
    )  # fmt: skip
    assert config.num_marks == num_marks
    assert [(x.dtype, x.shape[-1]) for x in forecast_inputs(config)[1::2]] == [
        ("int32", num_marks)
    ] * 2
    _, dates = _request(1, step)
    values = np.zeros((len(dates), SEQ_LEN, 2 * num_marks), np.float32)
    forecast, future = serving.served_forecast(
        _MarksProbe(config), values, dates.astype("datetime64[s]").astype(np.int64),
        mean=np.zeros(2 * num_marks), scale=np.ones(2 * num_marks),
    )  # fmt: skip
    future_dates = future.numpy().astype("datetime64[s]")
    expected = np.stack(
        [
            np.concatenate([time_marks(d[-PRED_LEN:], freq), time_marks(f, freq)], axis=1)
            for d, f in zip(dates, future_dates)
        ]
    )
    np.testing.assert_array_equal(forecast.numpy(), expected.astype(np.float32))
    assert np.all(expected[..., 0] >= 1)  # months: real ids, not zeros


@pytest.mark.slow
def test_fifteen_minute_data_continue_their_step(tmp_path):
    model = MODELS["iTransformer"](_config(3, 3, freq="15min"))
    export_dir = str(tmp_path / "served")
    serving.export_forecaster(model, export_dir, mean=MEAN, scale=SCALE, names=NAMES)
    values, dates = _request(3, 900)
    forecast, future = _serve(export_dir, values, dates)
    expected, expected_future = _by_hand(model, values, dates, MEAN, SCALE, "M", 900)
    _close(forecast, expected)
    np.testing.assert_array_equal(future, expected_future.astype(np.int64))
    assert np.all(np.diff(future, axis=1) == 900)
    assert str(expected_future[0, 0] - dates[0, -1]) == "900 seconds"
    # The metadata is in the SavedModel too, beside the asset file.
    metadata = tf.saved_model.load(export_dir).metadata().numpy().decode()
    assert '"freq": "15min"' in metadata


@pytest.mark.slow
def test_uneven_window_continues_its_last_step(exports):
    _, export_dir = exports["M"]
    values, dates = _request(3, HOUR)
    dates[:, -1] += np.timedelta64(30 * 60, "s")  # last gap 90 minutes
    _, future = _serve(export_dir, values, dates)
    last = dates[:, -1].astype(np.int64)
    np.testing.assert_array_equal(future, last[:, None] + 5400 * np.arange(1, PRED_LEN + 1))


def _cli(*args):
    return subprocess.run(
        [SAVED_MODEL_CLI, *args],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(SAVED_MODEL_CLI), reason="no saved_model_cli beside python")
def test_saved_model_cli_shows_and_runs_the_signature(exports, tmp_path):
    _, export_dir = exports["MS"]
    shown = _cli("show", "--dir", export_dir, "--tag_set", "serve", "--signature_def",
                 "serving_default")  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in ("inputs['values']", "inputs['timestamps']", "outputs['forecast']",
                 "outputs['timestamps']"):  # fmt: skip
        assert name in shown.stdout
    assert "shape: (-1, 16, 3)" in shown.stdout and "DT_INT64" in shown.stdout
    values, dates = _request(3, HOUR, seed=3)
    np.save(tmp_path / "values.npy", values)
    np.save(tmp_path / "timestamps.npy", dates.astype("datetime64[s]").astype(np.int64))
    outdir = tmp_path / "out"
    ran = _cli(
        "run", "--dir", export_dir, "--tag_set", "serve", "--signature_def", "serving_default",
        "--inputs", f"values={tmp_path / 'values.npy'};timestamps={tmp_path / 'timestamps.npy'}",
        "--outdir", str(outdir),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    forecast, future = _serve(export_dir, values, dates)
    _close(np.load(outdir / "forecast.npy"), forecast)
    np.testing.assert_array_equal(np.load(outdir / "timestamps.npy"), future)


@pytest.mark.slow
def test_existing_export_refused_and_kept_when_the_check_fails(tmp_path, monkeypatch):
    model = MODELS["iTransformer"](_config(3, 3))
    export_dir = str(tmp_path / "served")
    serving.export_forecaster(model, export_dir, mean=MEAN, scale=SCALE, names=NAMES)
    before = serving.read_metadata(export_dir)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        serving.export_forecaster(model, export_dir, mean=MEAN, scale=SCALE, names=NAMES)

    def failing_check(*args):
        raise AssertionError("reloaded SavedModel vs the Python forecaster")

    monkeypatch.setattr(serving, "_check_reloaded", failing_check)
    with pytest.raises(AssertionError, match="reloaded"):
        serving.export_forecaster(
            model, export_dir, mean=MEAN + 1, scale=SCALE, names=NAMES, overwrite=True
        )
    assert serving.read_metadata(export_dir) == before
    assert sorted(os.listdir(tmp_path)) == ["served"]  # no temporary directory left
    monkeypatch.undo()
    serving.export_forecaster(
        model, export_dir, mean=MEAN + 1, scale=SCALE, names=NAMES, overwrite=True
    )
    assert serving.read_metadata(export_dir)["mean"] == (MEAN + 1).tolist()
    assert sorted(os.listdir(tmp_path)) == ["served"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(export_dir).st_mode & 0o777 == 0o777 & ~umask  # readable by a server's user
    # A folder of other files is never replaced, overwrite or not.
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an earlier output"):
        serving.export_forecaster(
            model, str(folder), mean=MEAN, scale=SCALE, names=NAMES, overwrite=True
        )
    assert os.listdir(folder) == ["notes.txt"]


def test_calendar_steps_are_refused_at_export(tmp_path):
    model = MODELS["iTransformer"](_config(3, 3, freq="MS"))
    with pytest.raises(ValueError, match="freq='MS', whose steps differ in length"):
        serving.export_forecaster(model, str(tmp_path / "s"), mean=MEAN, scale=SCALE, names=NAMES)


def test_timestamps_of_another_batch_or_out_of_order_are_refused(exports):
    _, export_dir = exports["M"]
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    values, dates = _request(3, HOUR, batch=2)
    stamps = dates.astype("datetime64[s]").astype(np.int64)
    with pytest.raises(tf.errors.InvalidArgumentError, match="one row per window of `values`"):
        signature(values=tf.constant(values), timestamps=tf.constant(stamps[:1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="`timestamps` must increase"):
        signature(values=tf.constant(values), timestamps=tf.constant(stamps[:, ::-1].copy()))


@pytest.fixture(scope="module")
def small_model():
    return MODELS["iTransformer"](_config(3, 3))


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (
            dict(mean=[0.0, 0.0]),
            ValueError,
            r"`mean` must have shape \(3,\).*received shape \(2,\)",
        ),
        (dict(scale=[1.0, 0.0, 1.0]), ValueError, r"`scale` must be positive.*scale\[1\]=0.0"),
        (dict(scale=[[1.0, 1.0, 1.0]]), ValueError, r"`scale` must have shape \(3,\)"),
        (dict(names=["a", "b"]), ValueError, r"`names` must hold 3 column names.*received 2"),
        (dict(features="X"), ValueError, r"`features` must be one of \['M', 'S', 'MS'\]"),
        (dict(features="S"), ValueError, r"features='S' needs a model of one series"),
        (dict(mean=[0.0, np.nan, 0.0]), ValueError, r"`mean` must be finite.*mean\[1\]=nan"),
    ],
)
def test_bad_arguments_refused_by_name(small_model, tmp_path, arguments, error, message):
    kwargs = {**dict(mean=MEAN, scale=SCALE, names=NAMES), **arguments}
    with pytest.raises(error, match=message):
        serving.export_forecaster(small_model, str(tmp_path / "served"), **kwargs)
    assert not os.listdir(tmp_path)


def _tflite_run(flatbuffer, values, timestamps):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    return interpreter.get_signature_runner("serving_default")(values=values, timestamps=timestamps)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(MODELS) - {"Informer"}))
def test_tflite_matches_saved_model_with_builtin_ops(name, tmp_path):
    # TimesNet in its static-shape form (DFT as matrix products, static slices).
    options = {"static_shapes": True} if name == "TimesNet" else {}
    model = MODELS[name](_config(3, 3), **options)
    export_dir = str(tmp_path / "served")
    serving.export_forecaster(model, export_dir, mean=MEAN, scale=SCALE, names=NAMES)
    flatbuffer = serving.convert_to_tflite(export_dir)
    values, dates = _request(3, HOUR, batch=2, seed=5)
    stamps = dates.astype("datetime64[s]").astype(np.int64)
    forecast, future = _serve(export_dir, values, dates)
    lite = _tflite_run(flatbuffer, values, stamps)
    difference = np.max(np.abs(lite["forecast"] - forecast)) / np.abs(forecast).max()
    print(f"{name}: TFLite vs SavedModel max difference / max |forecast| = {difference:.1e}")
    np.testing.assert_allclose(
        lite["forecast"], forecast, rtol=1e-4, atol=1e-4 * np.abs(forecast).max()
    )
    np.testing.assert_array_equal(lite["timestamps"], future)


@pytest.mark.slow
def test_tflite_refuses_timesnets_reshape_form(tmp_path):
    """Checked when written: TimesNet's reshape form fails the interpreter's prepare step (also
    at seq_len + pred_len = 32, where RFFT2D accepts the length)."""
    model = MODELS["TimesNet"](_config(3, 3))  # 16 + 6 steps
    export_dir = str(tmp_path / "served")
    serving.export_forecaster(model, export_dir, mean=MEAN, scale=SCALE, names=NAMES)
    with pytest.raises(ValueError, match=r"reshape form.*= 22;.*static_shapes=True"):
        serving.convert_to_tflite(export_dir)


@pytest.mark.slow
@pytest.mark.skipif("Informer" not in MODELS, reason="no Informer in tf_tsembed.models")
def test_tflite_informer_needs_select_tf_ops(tmp_path):
    model = MODELS["Informer"](_config(3, 3))
    export_dir = str(tmp_path / "served")
    serving.export_forecaster(model, export_dir, mean=MEAN, scale=SCALE, names=NAMES)
    with pytest.raises(ValueError, match="select_tf_ops=True"):
        serving.convert_to_tflite(export_dir)
    flatbuffer = serving.convert_to_tflite(export_dir, select_tf_ops=True)
    # The pip package's interpreter has no Flex delegate: the flatbuffer is checked by content.
    assert b"FlexStatelessRandomUniformIntV2" in flatbuffer
