"""examples.long_term_forecast, its data protocol (examples.data) and its models.

The protocol is checked against TSLib's `data_provider/data_loader.py` formulas written out here,
the models against NumPy forward passes and parameter counts from the reference layer shapes.
The full ETTh1 reproduction is not run here (docs/reproducing.md).
"""

import csv
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from examples import data as benchmark_data
from examples import recipes, training
from tf_tsembed import tslib_data
from tf_tsembed.models import ForecastConfig, ITransformer, PatchTST, Transformer, encoder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
keras = tf.keras
SCRIPT = "examples.long_term_forecast"
FORECAST = "examples.forecast"
ETT_HOUR_ROWS = 17420  # ETTh1.csv: 2016-07-01 00:00 to 2018-06-26 19:00, hourly


def _write_csv(path, dates, columns):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["date", *columns])
        for date, row in zip(dates, zip(*columns.values())):
            writer.writerow([str(date).replace("T", " "), *(repr(float(v)) for v in row)])


def _synthetic_csv(path, rows, step_minutes=60, seed=0):
    rng = np.random.default_rng(seed)
    dates = np.datetime64("2016-07-01T00:00", "m") + step_minutes * np.arange(rows)
    steps = np.arange(rows)
    columns = {
        "HUFL": 5 + np.sin(2 * np.pi * steps / 24) + rng.normal(scale=0.1, size=rows),
        "MULL": 2 + steps / rows + rng.normal(scale=0.1, size=rows),
        "OT": 10
        + 3 * np.cos(2 * np.pi * steps / 24)
        + steps / 500
        + rng.normal(scale=0.2, size=rows),
    }
    _write_csv(path, dates, columns)
    return dates, np.stack(list(columns.values()), axis=1)


# TSLib's borders, written out: Dataset_ETT_hour (x 4 for Dataset_ETT_minute) and Dataset_Custom.
def _config(seq_len, pred_len, series, features=4, label_len=0, **sizes):
    """A ForecastConfig of `series` series; features 4 is freq 'h'."""
    assert features == 4
    return ForecastConfig(
        seq_len=seq_len,
        label_len=label_len,
        pred_len=pred_len,
        enc_in=series,
        dec_in=series,
        c_out=series,
        freq="h",
        **sizes,
    )


def _decoder_values(x, label_len, pred_len):
    """TSLib's dec_inp: the window's last label_len steps, then pred_len zeros."""
    zeros = np.zeros((x.shape[0], pred_len, x.shape[2]), x.dtype)
    return np.concatenate([x[:, x.shape[1] - label_len :], zeros], axis=1)


def _four(x, marks, pred_len):
    """The four inputs of a model that reads the encoder's only (label_len 0)."""
    return [
        x,
        marks,
        _decoder_values(x, 0, pred_len),
        np.zeros_like(marks[:, :1]).repeat(pred_len, 1),
    ]


def _tslib_borders(protocol, rows, seq_len):
    if protocol == "custom":
        num_train, num_test = int(rows * 0.7), int(rows * 0.2)
        num_vali = rows - num_train - num_test
        return [0, num_train - seq_len, rows - num_test - seq_len], [
            num_train,
            num_train + num_vali,
            rows,
        ]
    k = 1 if protocol == "ETTh" else 4
    month = 30 * 24 * k
    return [0, 12 * month - seq_len, 16 * month - seq_len], [12 * month, 16 * month, 20 * month]


@pytest.mark.parametrize(
    "protocol, rows, seq_len, pred_len",
    [
        ("ETTh", ETT_HOUR_ROWS, 96, 96),
        ("ETTh", ETT_HOUR_ROWS, 96, 720),
        ("ETTm", 69680, 96, 336),
        ("custom", 1000, 96, 24),
        ("custom", 52696, 96, 192),
    ],
)
def test_split_borders_and_window_counts_follow_tslib(protocol, rows, seq_len, pred_len):
    border1s, border2s = _tslib_borders(protocol, rows, seq_len)
    borders = tslib_data.split_borders(protocol, rows, seq_len, pred_len)
    assert borders == list(zip(border1s, border2s))
    counts = [len(benchmark_data.window_starts(b, seq_len, pred_len)) for b in borders]
    # TSLib's __len__: len(data_x) - seq_len - pred_len + 1.
    assert counts == [b2 - b1 - seq_len - pred_len + 1 for b1, b2 in zip(border1s, border2s)]


def test_etth1_96_96_has_the_published_window_counts():
    borders = tslib_data.split_borders("ETTh", ETT_HOUR_ROWS, 96, 96)
    assert [len(benchmark_data.window_starts(b, 96, 96)) for b in borders] == [8449, 2785, 2785]


def test_protocol_follows_the_file_name_and_short_files_are_refused():
    assert recipes.protocol_for("/data/ETTh1.csv") == "ETTh"
    assert recipes.protocol_for("ETTm2.csv") == "ETTm"
    assert recipes.protocol_for("weather.csv") == "custom"
    with pytest.raises(
        ValueError, match=r"ETTh protocol needs 14400 rows.*has 5000.*--protocol=custom"
    ):
        tslib_data.split_borders("ETTh", 5000, 96, 96)
    with pytest.raises(
        ValueError, match=r"validation split has 196 rows.*seq_len \+ pred_len = 197"
    ):
        tslib_data.split_borders("custom", 1000, 96, 101)
    with pytest.raises(ValueError, match="protocol must be one of"):
        tslib_data.split_borders("ETT", 20000, 96, 96)


def test_load_benchmark_scales_on_train_rows_and_keeps_every_test_window(tmp_path):
    path = os.path.join(str(tmp_path), "ETTh1.csv")
    rows = 14400 + 50  # the 50 rows after the test split are unused, as in TSLib
    _, values = _synthetic_csv(path, rows)
    data = benchmark_data.load_benchmark(path, None, "M", "OT", None, 96, 96)
    assert (
        data["protocol"] == "ETTh"
        and data["freq"] == "h"
        and data["names"] == ["HUFL", "MULL", "OT"]
    )
    values = np.array([[float(repr(float(v))) for v in row] for row in values])
    train = values[:8640]
    np.testing.assert_allclose(
        data["series"], (values - train.mean(0)) / train.std(0), rtol=1e-12, atol=1e-12
    )
    test_stop = data["borders"][2][1]
    assert test_stop == 14400
    assert (
        data["starts"][2][-1] + 96 + 96 == test_stop
    )  # the last test window reaches the split's end
    assert data["marks"].shape == (rows, 4)  # timeF, freq h: hour, weekday, day, day of year
    np.testing.assert_allclose(
        data["marks"][1], [1 / 23 - 0.5, 4 / 6 - 0.5, -0.5, 182 / 365 - 0.5], rtol=1e-6
    )
    # A change in the test rows changes nothing in the scaled training rows.
    values[-1000:] *= 3
    path2 = os.path.join(str(tmp_path), "ETTh2.csv")
    _write_csv(
        path2,
        np.datetime64("2016-07-01T00:00", "m") + 60 * np.arange(rows),
        {"HUFL": values[:, 0], "MULL": values[:, 1], "OT": values[:, 2]},
    )
    changed = benchmark_data.load_benchmark(path2, None, "M", "OT", None, 96, 96)
    np.testing.assert_array_equal(changed["series"][:8640], data["series"][:8640])


def test_features_s_and_ms_put_the_target_last(tmp_path):
    path = os.path.join(str(tmp_path), "weather.csv")
    _synthetic_csv(path, 400)
    ms = benchmark_data.load_benchmark(path, None, "MS", "HUFL", None, 24, 12)
    assert ms["protocol"] == "custom" and ms["names"] == ["MULL", "OT", "HUFL"]
    single = benchmark_data.load_benchmark(path, None, "S", "HUFL", None, 24, 12)
    assert single["names"] == ["HUFL"]
    np.testing.assert_allclose(single["series"][:, 0], ms["series"][:, -1])
    with pytest.raises(ValueError, match=r"target column 'load' \(--target\) is not in"):
        benchmark_data.load_benchmark(path, None, "M", "load", None, 24, 12)


def test_dataset_batches_hold_every_window_in_order():
    series = np.arange(200.0)[:, None] * [1.0, -1.0]
    marks = np.arange(200.0)[:, None] * [0.5]
    starts = benchmark_data.window_starts(
        (0, 100), 10, 5
    )  # 86 windows: 2 batches of 32 and one of 22
    dataset = benchmark_data.make_dataset(series, series[:, -1:], starts, 10, 5, 32, marks=marks)
    batches = list(dataset)
    assert [len(y) for _, y in batches] == [32, 32, 22]
    (x, mark), y = batches[-1]
    np.testing.assert_array_equal(x[-1].numpy(), series[85:95])
    np.testing.assert_array_equal(mark[-1].numpy(), marks[85:95])
    np.testing.assert_array_equal(y[-1].numpy(), series[95:100, -1:])


def test_dataset_decoder_inputs_are_tslibs_dec_inp():
    series = np.arange(100.0)[:, None] * [1.0, -1.0]
    marks = np.arange(100.0)[:, None] * [0.5]
    dataset = benchmark_data.make_dataset(
        series, series, [3, 40], 10, 5, 2, marks=marks, label_len=4
    )
    (x, mark, x_dec, x_mark_dec), y = next(iter(dataset))
    # TSLib's exp: cat(batch_y[:, :label_len], zeros(pred_len)); batch_y starts label_len
    # rows before the window's end, and its marks run to the forecast's end.
    np.testing.assert_array_equal(x_dec[1, :4].numpy(), series[46:50])
    np.testing.assert_array_equal(x_dec[1, 4:].numpy(), np.zeros((5, 2)))
    np.testing.assert_array_equal(x_mark_dec[1].numpy(), marks[46:55])
    np.testing.assert_array_equal(y[1].numpy(), series[50:55])
    assert x.shape == (2, 10, 2) and mark.shape == (2, 10, 1)


def test_freq_is_inferred_and_a_contradicting_one_refused():
    hourly = np.datetime64("2020-01-01T00", "h") + np.arange(48)
    quarter = np.datetime64("2020-01-01T00:00", "m") + 15 * np.arange(48)
    days = np.datetime64("2020-01-01", "D")
    assert benchmark_data.infer_freq(hourly) == "h"
    assert benchmark_data.infer_freq(quarter) == "15min"
    assert benchmark_data.infer_freq(days + np.arange(10)) == "d"
    assert benchmark_data.infer_freq(days + 7 * np.arange(10)) == "w"
    assert (
        benchmark_data.infer_freq(
            np.arange("2020-01", "2021-01", dtype="datetime64[M]").astype("datetime64[D]")
        )
        == "m"
    )
    benchmark_data.check_freq("15min", quarter)
    benchmark_data.check_freq("H", hourly)
    with pytest.raises(
        ValueError, match=r"--freq='h' contradicts the dates, spaced 900 s apart.*'15min'"
    ):
        benchmark_data.check_freq("h", quarter)
    with pytest.raises(ValueError, match=r"--freq='10min' contradicts"):
        benchmark_data.check_freq("10min", quarter)


# --- models -----------------------------------------------------------------------------------


def _layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + eps) * gamma + beta


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def test_encoder_layer_matches_a_numpy_forward_pass():
    keras.utils.set_random_seed(0)
    d_model, n_heads, d_ff = 8, 2, 12
    layer = encoder.EncoderLayer(d_model, n_heads, d_ff, dropout=0.3)
    x = np.random.default_rng(1).normal(size=(3, 5, d_model)).astype("float32")
    out = layer(x, training=False).numpy()
    w = {v.path.split("/", 1)[1]: v.numpy().astype(np.float64) for v in layer.weights}
    xd = x.astype(np.float64)

    def heads(name):
        y = xd @ w[f"attention/{name}/kernel"] + w[f"attention/{name}/bias"]
        return y.reshape(3, 5, n_heads, d_model // n_heads)

    q, k, v = heads("query"), heads("key"), heads("value")
    scores = np.einsum("blhe,bshe->bhls", q, k) / math.sqrt(d_model // n_heads)
    a = np.exp(scores - scores.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    attended = np.einsum("bhls,bshd->blhd", a, v).reshape(3, 5, d_model)
    attended = attended @ w["attention/out/kernel"] + w["attention/out/bias"]
    h = _layer_norm(xd + attended, w["norm1/gamma"], w["norm1/beta"])
    y = _gelu(h @ w["conv1/kernel"] + w["conv1/bias"]) @ w["conv2/kernel"] + w["conv2/bias"]
    expected = _layer_norm(h + y, w["norm2/gamma"], w["norm2/beta"])
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # Dropout is on while training (on attention weights and three places of the layer).
    assert not np.allclose(layer(x, training=True).numpy(), out)


def test_causal_cross_attention_matches_numpy():
    keras.utils.set_random_seed(1)
    layer = encoder.FullAttention(8, 2, dropout=0.0, causal=True)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 8)).astype("float32")
    context = rng.normal(size=(2, 4, 8)).astype("float32")
    out = layer(x, context).numpy()
    w = {v.path.split("/", 1)[1]: v.numpy().astype(np.float64) for v in layer.weights}

    def heads(name, t):
        return (t.astype(np.float64) @ w[f"{name}/kernel"] + w[f"{name}/bias"]).reshape(2, 4, 2, 4)

    q, k, v = heads("query", x), heads("key", context), heads("value", context)
    scores = np.einsum("blhe,bshe->bhls", q, k) / 2.0
    scores[
        ..., np.triu_indices(4, 1)[0], np.triu_indices(4, 1)[1]
    ] = -np.inf  # query i sees keys <= i
    a = np.exp(scores - scores.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    expected = np.einsum("bhls,bshd->blhd", a, v).reshape(2, 4, 8) @ w["out/kernel"] + w["out/bias"]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_linear_layers_are_initialised_as_pytorch():
    keras.utils.set_random_seed(0)
    layer = encoder.torch_linear(256, 400)
    layer.build((None, 400))
    bound = 1 / math.sqrt(400)
    for weights in (layer.kernel.numpy(), layer.bias.numpy()):
        assert np.abs(weights).max() <= bound and np.abs(weights).max() > 0.95 * bound
    # U(-b, b) has standard deviation b / sqrt(3).
    assert layer.kernel.numpy().std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def _encoder_layer_parameters(d_model, d_ff):
    attention = 4 * (d_model * d_model + d_model)  # q, k, v, out projections with bias
    feed_forward = (d_model * d_ff + d_ff) + (d_ff * d_model + d_model)  # Conv1d(k=1) x 2
    return attention + feed_forward + 2 * 2 * d_model  # two LayerNorms


def test_patchtst_etth1_96_has_the_reference_parameter_count():
    # TSLib PatchTST, ETTh1 96 -> 96: d_model 512, d_ff 2048, e_layers 1, patch_len 16, stride 8.
    d_model, d_ff, seq_len, pred_len = 512, 2048, 96, 96
    patches = int((seq_len - 16) / 8 + 2)
    expected = (
        16 * d_model  # PatchEmbedding's Linear(16, d_model, bias=False)
        + _encoder_layer_parameters(d_model, d_ff)
        + 2 * d_model  # BatchNorm1d(d_model) weight and bias
        + d_model * patches * pred_len
        + pred_len
    )  # FlattenHead's Linear
    assert expected == 3_751_520
    model = PatchTST(
        _config(seq_len, pred_len, 7, d_model=d_model, n_heads=2, e_layers=1, d_ff=d_ff)
    )
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == expected


def test_itransformer_etth1_parameter_count_follows_the_reference_shapes():
    d_model, d_ff, seq_len, pred_len = 256, 256, 96, 96
    expected = (
        (seq_len * d_model + d_model)
        + 2 * _encoder_layer_parameters(d_model, d_ff)
        + 2 * d_model
        + (d_model * pred_len + pred_len)
    )
    model = ITransformer(
        _config(seq_len, pred_len, 7, d_model=d_model, n_heads=8, e_layers=2, d_ff=d_ff)
    )
    assert model.count_params() == expected == 841_568


def test_transformer_etth1_parameter_count_follows_the_reference_shapes():
    # TSLib Transformer, ETTh1: d_model 512, d_ff 2048, e_layers 2, d_layers 1, timeF freq h (4).
    d_model, d_ff, channels, features = 512, 2048, 7, 4
    embedding = 3 * channels * d_model + features * d_model  # circular Conv1d and Linear, no biases
    decoder_layer = (
        2 * 4 * (d_model * d_model + d_model)
        + (d_model * d_ff + d_ff)
        + (d_ff * d_model + d_model)
        + 3 * 2 * d_model
    )
    expected = (
        2 * embedding
        + 2 * _encoder_layer_parameters(d_model, d_ff)
        + decoder_layer
        + 2 * 2 * d_model
        + (d_model * channels + channels)
    )
    model = Transformer(
        _config(96, 96, channels, features, label_len=48, d_model=d_model, n_heads=8, d_ff=d_ff)
    )
    assert model.count_params() == expected == 10_540_039


def test_transformer_decoder_sees_no_future_values():
    keras.utils.set_random_seed(4)
    sizes = dict(d_model=8, n_heads=2, e_layers=1, d_layers=1, d_ff=8, dropout=0.0)
    model = Transformer(_config(24, 6, 2, label_len=12, **sizes))
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 24, 2)).astype("float32")
    inputs = [
        x,
        rng.uniform(-0.5, 0.5, (3, 24, 4)).astype("float32"),
        _decoder_values(x, 12, 6),
        rng.uniform(-0.5, 0.5, (3, 18, 4)).astype("float32"),
    ]
    base = model.predict(inputs, verbose=0)
    assert base.shape == (3, 6, 2)
    # The decoder's future marks change step t of the forecast and later steps only (causal mask).
    later = [*inputs[:3], inputs[3].copy()]
    later[3][:, 15:] += 0.3  # decoder positions 15.. are forecast steps 3..
    changed = model.predict(later, verbose=0)
    np.testing.assert_allclose(changed[:, :3], base[:, :3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(changed[:, 3:], base[:, 3:])


TINY = dict(d_model=16, n_heads=2, e_layers=1, d_ff=24, dropout=0.1)


@pytest.mark.parametrize("name", ["itransformer", "patchtst"])
def test_model_trains_one_step_and_forecasts_in_the_input_scale(name):
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 32, 3)).astype("float32")
    marks = rng.uniform(-0.5, 0.5, size=(8, 32, 4)).astype("float32")
    y = rng.normal(size=(8, 12, 3)).astype("float32")
    model_class = ITransformer if name == "itransformer" else PatchTST
    model, inputs = model_class(_config(32, 12, 3, **TINY)), _four(x, marks, 12)
    _assert_trains_one_step(model, inputs, y)
    # Per-window normalisation undone on the output: an affine change of each input series
    # changes its forecast by the same map (up to the 1e-5 inside the std).
    scale, shift = np.array([2.0, 5.0, 0.5], "float32"), np.array([10.0, -3.0, 1.0], "float32")
    moved = _four(x * scale + shift, marks, 12)
    np.testing.assert_allclose(
        model.predict(moved, verbose=0),
        model.predict(inputs, verbose=0) * scale + shift,
        rtol=1e-3,
        atol=1e-3 * 10,
    )


def test_transformer_trains_one_step():
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, 32, 3)).astype("float32")
    inputs = [
        x,
        rng.uniform(-0.5, 0.5, (8, 32, 4)).astype("float32"),
        _decoder_values(x, 16, 12),
        rng.uniform(-0.5, 0.5, (8, 28, 4)).astype("float32"),
    ]
    model = Transformer(_config(32, 12, 3, label_len=16, d_layers=1, **TINY))
    _assert_trains_one_step(model, inputs, rng.normal(size=(8, 12, 3)).astype("float32"))


def _assert_trains_one_step(model, inputs, y):
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    before = [w.numpy() for w in model.trainable_weights]
    loss = model.train_on_batch(inputs, y)
    assert np.isfinite(loss)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


# --- the scripts, end to end ------------------------------------------------------------------


def _run(script, args, tmp_path, timeout=240):
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="", TMPDIR=str(tmp_path))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, "-m", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "model, tslib_version",
    # Each model once, both protocols among them (TimesNet's two paddings: test_timesnet).
    [("timesnet", "2025"), ("itransformer", "2023"), ("patchtst", "2025"), ("transformer", "2023")],
)  # fmt: skip
def test_long_term_forecast_writes_json_and_a_savedmodel_that_reloads(
    model, tslib_version, tmp_path
):
    path = os.path.join(str(tmp_path), "small.csv")
    rows = 600
    _synthetic_csv(path, rows)
    out, export_dir = os.path.join(str(tmp_path), "out.json"), os.path.join(str(tmp_path), "saved")
    args = ["--csv", path, "--model", model, "--seq_len", "48", "--pred_len", "24", "--epochs", "2",
            "--steps_per_epoch", "2", "--d_model", "16", "--d_ff", "16", "--e_layers", "1",
            "--log_every", "1", "--batch_size", "16", "--tslib_version", tslib_version,
            "--json", out, "--export_dir", export_dir]  # fmt: skip
    if model != "timesnet":
        args += ["--n_heads", "2"]
    result = _run(SCRIPT, args, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    # A file the authors' scripts do not name: the first line says so and names the defaults.
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"note: the authors' scripts have no {model} run on 'small' at "), first
    assert "run.py's defaults {'d_model': 512, 'n_heads': 8, 'e_layers': 2" in first
    with open(out) as file:
        report = json.load(file)
    assert set(report) == {
        "model", "data", "protocol", "tslib_version", "features", "seq_len", "pred_len",
        "settings", "windows", "parameters", "epochs_run", "mse", "mae", "published", "seconds",
    }  # fmt: skip
    border1s, border2s = _tslib_borders("custom", rows, 48)
    counts = [b2 - b1 - 48 - 24 + 1 for b1, b2 in zip(border1s, border2s)]
    if tslib_version == "2023":  # the last incomplete training and validation batches dropped
        counts[:2] = [count // 16 * 16 for count in counts[:2]]
    assert report["windows"] == dict(zip(("train", "val", "test"), counts))
    assert (report["model"], report["data"], report["protocol"], report["features"]) == (
        model,
        "small",
        "custom",
        "M",
    )
    assert report["settings"]["d_model"] == 16 and report["settings"]["batch_size"] == 16
    assert report["published"] is None and report["epochs_run"] in (1, 2)
    assert report["parameters"] > 0 and np.isfinite(report["mse"]) and report["mae"] > 0
    assert f"SavedModel written to {export_dir} (raw values and timestamps in" in result.stdout
    # The served forecaster (tf_tsembed.serving): the file's columns and the training scaler.
    with open(os.path.join(export_dir, "assets", "forecaster.json")) as file:
        served = json.load(file)
    assert (served["seq_len"], served["pred_len"], served["features"]) == (48, 24, "M")
    assert len(served["names_in"]) == len(served["mean"]) == len(served["scale"])
    assert re.search(
        r"^  step 2: \d+\.\d+ s per step, running train loss \d+\.\d+$", result.stdout, re.M
    )
    assert "shuffle" not in result.stderr  # no Keras warning from our own fit call


def test_features_ms_exports_the_package_model_serving_the_target(tmp_path):
    # --features MS trained a keras.Model wrapper (the target's column of the model's output)
    # and handed it to export_forecaster, which refused it with a TypeError after training.
    path = os.path.join(str(tmp_path), "small.csv")
    _synthetic_csv(path, 400)
    out, export_dir = os.path.join(str(tmp_path), "out.json"), os.path.join(str(tmp_path), "saved")
    args = ["--csv", path, "--model", "itransformer", "--features", "MS", "--seq_len", "24",
            "--pred_len", "12", "--epochs", "1", "--steps_per_epoch", "1", "--d_model", "8",
            "--d_ff", "8", "--e_layers", "1", "--n_heads", "2", "--batch_size", "16",
            "--json", out, "--export_dir", export_dir]  # fmt: skip
    result = _run(SCRIPT, args, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"SavedModel written to {export_dir} (raw values and timestamps in" in result.stdout
    with open(out) as file:
        assert json.load(file)["features"] == "MS"
    with open(os.path.join(export_dir, "assets", "forecaster.json")) as file:
        served = json.load(file)
    assert served["features"] == "MS" and served["model"] == "ITransformer"
    assert served["names_in"] == ["HUFL", "MULL", "OT"] and served["names_out"] == ["OT"]
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    hours = np.datetime64("2016-07-17T16", "h") + np.arange(24)
    forecast = signature(
        values=tf.ones((1, 24, 3)),
        timestamps=tf.constant(hours.astype("datetime64[s]").astype(np.int64)[None]),
    )["forecast"]
    assert forecast.shape == (1, 12, 1) and np.all(np.isfinite(forecast.numpy()))


def test_help_exits_0_without_tensorflow_and_names_the_settings():
    args = ["--help", "--model", "timesnet", "--csv", "/data/ETTh1.csv", "--pred_len", "336"]
    result = subprocess.run(
        [sys.executable, "-c", _HELP_WITHOUT_TENSORFLOW, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--csv [required]:" in result.stdout and "--tslib_version:" in result.stdout
    assert "settings of the authors' script for timesnet on ETTh1, pred_len 336" in result.stdout
    assert "'d_model': 16, " in result.stdout and "'d_ff': 32, " in result.stdout
    assert "tensorflow imported: False" in result.stdout


# Runs the script's --help in-process and reports whether TensorFlow got imported.
_HELP_WITHOUT_TENSORFLOW = """
import atexit, runpy, sys
atexit.register(lambda: print("tensorflow imported:", "tensorflow" in sys.modules))
sys.argv = ["long_term_forecast.py", *sys.argv[1:]]
runpy.run_module("examples.long_term_forecast", run_name="__main__")
"""


def test_tslib_learning_rate_halves_from_the_third_epoch():
    # TSLib: adjust_learning_rate(optimizer, epoch + 1) after each epoch, lr * 0.5 ** (epoch - 1).
    rates = [training.tslib_learning_rate(1e-4, epoch) for epoch in range(5)]
    np.testing.assert_allclose(rates, [1e-4, 1e-4, 5e-5, 2.5e-5, 1.25e-5])


def test_tslib_validation_loss_is_the_mean_of_batch_losses():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(70, 3)).astype("float32")
    truth = rng.normal(size=(70, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((values, truth)).batch(32)  # 32, 32, 6
    batch_losses = [np.mean((values[i : i + 32] - truth[i : i + 32]) ** 2) for i in (0, 32, 64)]
    loss = training.tslib_validation_loss(tf.identity, dataset)
    assert loss == pytest.approx(np.mean(batch_losses), rel=1e-6)
    assert loss != pytest.approx(np.mean((values - truth) ** 2), rel=1e-3)  # not per window


HORIZONS = (96, 192, 336, 720)
SCRIPT_FILES = ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "exchange_rate", "weather", "electricity",
                "traffic")  # fmt: skip


def test_recipes_hold_every_run_of_the_authors_scripts():
    keys = {(m, f, h) for m in ("timesnet", "itransformer", "patchtst") for f in SCRIPT_FILES
            for h in HORIZONS}  # fmt: skip
    assert set(recipes.SCRIPTS) == keys
    # Spot checks, read off the scripts (TSLib scripts/long_term_forecast, iTransformer's
    # scripts/multivariate_forecasting).
    settings = recipes.settings
    assert settings("timesnet", "ETTh1", 96, {})["d_model"] == 16
    assert settings("timesnet", "ETTh1", 720, {})["d_ff"] == 32
    assert settings("timesnet", "weather", 192, {})["epochs"] == 1
    assert settings("timesnet", "ETTm1", 336, {})["epochs"] == 3
    assert settings("timesnet", "electricity", 96, {})["d_model"] == 256
    assert settings("itransformer", "traffic", 96, {})["learning_rate"] == 1e-3
    assert settings("itransformer", "traffic", 96, {})["batch_size"] == 16
    assert settings("itransformer", "ETTh1", 336, {})["d_ff"] == 512
    assert settings("patchtst", "weather", 336, {})["batch_size"] == 128
    # A flag given wins; a file the scripts do not name gets run.py's defaults.
    assert settings("timesnet", "ETTh1", 96, {"d_model": 8, "top_k": None})["d_model"] == 8
    assert settings("timesnet", "mine", 96, {}) == recipes.DEFAULTS
    assert not recipes.in_scripts("timesnet", "ETTh1", 100)


def test_time_features_follow_the_scripts_freq():
    # No script passes --freq: run.py's 'h' (4 features), also for daily exchange_rate.csv.
    assert recipes.script_freq("/data/exchange_rate.csv") == "h"
    assert recipes.script_freq("ETTm2.csv") == "h"
    assert recipes.script_freq("/data/my_series.csv") is None


def test_forecast_infers_freq_leaves_no_savedmodel_and_fit_does_not_warn(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    args = ["--days", "40", "--epochs", "1", "--e_layers", "1", "--d_model", "8", "--seq_len", "48"]
    result = _run(FORECAST, args, scratch)
    assert result.returncode in (0, 1), result.stdout[-2000:] + result.stderr[-3000:]
    assert "freq 'h'" in result.stdout
    assert (
        "SavedModel (raw values and timestamps in) checked in a temporary directory"
        in result.stdout
    )
    assert list(scratch.iterdir()) == []
    assert "`shuffle=True` was passed" not in result.stderr
    # One line per epoch in a log (no progress bar), and none of TensorFlow's start-up lines at
    # the scripts' default log level 3 (TensorFlow prints each twice, whatever the level).
    assert re.search(r"^\d+/\d+ - \d+s - .*loss: \d", result.stdout, re.M), result.stdout
    assert "\x1b[" not in result.stdout and "\r" not in result.stdout
    assert "oneDNN custom operations" not in result.stderr, result.stderr[-2000:]


def test_forecast_refuses_a_freq_the_dates_contradict(tmp_path):
    path = os.path.join(str(tmp_path), "quarter.csv")
    _synthetic_csv(path, 3000, step_minutes=15)
    result = _run(FORECAST, ["--csv", path, "--freq", "h", "--epochs", "1"], tmp_path, timeout=120)
    assert result.returncode != 0
    assert (
        "--freq='h' contradicts the dates, spaced 900 s apart (median), i.e. '15min'"
        in result.stderr
    )


def test_torch_adam_steps_as_pytorchs_adam():
    rng = np.random.default_rng(0)
    start = rng.normal(size=6)
    # Gradients from 1e-9 to 1: where epsilon's place (Keras' Adam vs PyTorch's) matters.
    gradients = [rng.normal(size=6) * 10.0 ** rng.integers(-9, 1, 6) for _ in range(5)]
    variable = tf.Variable(start)
    optimizer = training.TorchAdam(1e-3)
    for gradient in gradients:
        optimizer.apply_gradients([(tf.constant(gradient), variable)])
    # torch.optim.Adam's update, written out in float64.
    expected, m, v = start.copy(), np.zeros(6), np.zeros(6)
    for step, gradient in enumerate(gradients, start=1):
        m = 0.9 * m + 0.1 * gradient
        v = 0.999 * v + 0.001 * gradient**2
        denominator = np.sqrt(v) / math.sqrt(1 - 0.999**step) + 1e-8
        expected -= 1e-3 / (1 - 0.9**step) * m / denominator
    # The learning rate is a float32 variable: 1e-3 is 1.00000005e-3 there.
    np.testing.assert_allclose(variable.numpy() - start, expected - start, rtol=1e-6)
    keras_adam = tf.Variable(start)
    adam = keras.optimizers.Adam(1e-3, epsilon=1e-8)
    for gradient in gradients:
        adam.apply_gradients([(tf.constant(gradient), keras_adam)])
    moved, keras_moved = expected - start, keras_adam.numpy() - start
    assert np.max(np.abs(keras_moved - moved) / np.abs(moved)) > 0.05  # epsilon's place matters


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "itransformer", "--top_k", "3"], "--top_k applies to --model timesnet only"),
        (["--model", "timesnet", "--n_heads", "4"], "--n_heads applies to --model itransformer"),
        (["--model", "patchtst", "--label_len", "24"], "--label_len applies to --model trans"),
        (["--batch_size", "512"], "The training split has 349 windows, fewer than one batch of "
                                  "512 (--batch_size), and TSLib 2023 drops incomplete batches"),
        (["--csv", "/nonexistent/ETTh1.csv"], "'/nonexistent/ETTh1.csv' cannot be read: No such"),
        (["--steps_per_epoch", "100"], "--steps_per_epoch=100 is more than the 10 batches of one "
                                       "training epoch (349 windows, batch 32)"),
        (["--model", "itransformer", "--n_heads", "0"], "flag --n_heads=0: 0 is not a positive"),
        (["--e_layers", "-1"], "flag --e_layers=-1: -1 is not a positive integer"),
        (["--model", "transformer", "--d_layers", "-2"], "flag --d_layers=-2: -2 is not a posi"),
        (["--d_ff", "0"], "flag --d_ff=0: 0 is not a positive integer"),
        (["--learning_rate", "nan"], "flag --learning_rate=nan: must be a finite number > 0"),
        (["--learning_rate", "0"], "flag --learning_rate=0.0: must be a finite number > 0"),
        (["--dropout", "1"], "flag --dropout=1.0: must be in [0, 1)"),
        (["--seed", "-1"], "flag --seed=-1: -1 is not an integer in the range [0, 4294967295]"),
        (["--pred_len", "0"], "flag --pred_len=0: 0 is not a positive integer"),
    ],
)  # fmt: skip
def test_flags_that_cannot_apply_are_refused_before_training(tmp_path, args, message):
    path = os.path.join(str(tmp_path), "small.csv")
    _synthetic_csv(path, 600)
    base = ["--csv", path, "--model", "timesnet", "--seq_len", "48", "--pred_len", "24"]
    result = _run(SCRIPT, [*base, *args], tmp_path, timeout=120)
    assert result.returncode == 2
    assert f"error: {message}" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "epoch 1:" not in result.stdout


def test_torch_adam_round_trips_through_its_config():
    optimizer = training.TorchAdam(2e-4, beta_1=0.8, beta_2=0.99, epsilon=1e-7, name="mine")
    config = optimizer.get_config()
    restored = training.TorchAdam.from_config(config)  # was a TypeError: 'name' given twice
    assert restored.get_config() == config and restored.name == "mine"
    assert training.TorchAdam.from_config(training.TorchAdam().get_config()).name == "torch_adam"
    # The restored optimizer steps as the original does.
    start = np.random.default_rng(1).normal(size=4)
    gradient = tf.constant(np.random.default_rng(2).normal(size=4))
    moved = []
    for opt in (optimizer, restored):
        variable = tf.Variable(start)
        for _ in range(3):
            opt.apply_gradients([(gradient, variable)])
        moved.append(variable.numpy())
    np.testing.assert_array_equal(moved[0], moved[1])


@pytest.mark.slow
def test_existing_outputs_need_overwrite_and_a_diverged_run_leaves_them_unchanged(tmp_path):
    path = os.path.join(str(tmp_path), "small.csv")
    _synthetic_csv(path, 600)
    out, export_dir = tmp_path / "out.json", tmp_path / "saved"
    out.write_text('{"mse": 0.5}\n')
    export_dir.mkdir()
    (export_dir / "saved_model.pb").write_bytes(b"old")
    args = ["--csv", path, "--model", "patchtst", "--seq_len", "48", "--pred_len", "24",
            "--epochs", "1", "--steps_per_epoch", "2", "--d_model", "8", "--d_ff", "8",
            "--e_layers", "1", "--n_heads", "2", "--batch_size", "16", "--json", str(out),
            "--export_dir", str(export_dir)]  # fmt: skip
    result = _run(SCRIPT, args, tmp_path, timeout=120)
    assert result.returncode == 2 and "epoch" not in result.stdout
    assert result.stderr.endswith(
        f"error: --json={str(out)!r} exists; give --overwrite to replace it (it is kept until the "
        f"new one is written and checked), or another path.\n"
    ), result.stderr[-2000:]
    result = _run(SCRIPT, [*args, "--overwrite", "--learning_rate", "1e30"], tmp_path)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert re.search(
        r"^error: epoch 1, step \d: the training loss is nan: training diverged; give a smaller "
        r"--learning_rate \(this run: 1e\+30\), or check the data for values too large\. Nothing "
        r"was written\.$",
        result.stderr,
        re.M,
    ), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert out.read_text() == '{"mse": 0.5}\n' and os.listdir(export_dir) == ["saved_model.pb"]
    assert (export_dir / "saved_model.pb").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["out.json", "saved", "small.csv"]


@pytest.mark.slow
def test_forecast_refuses_a_diverged_run_and_an_output_that_is_its_input(tmp_path):
    path = os.path.join(str(tmp_path), "small.csv")
    _synthetic_csv(path, 1200)
    (tmp_path / "link").symlink_to(tmp_path)  # --export_dir through a symlink holds the csv
    result = _run(FORECAST, ["--csv", path, "--export_dir", str(tmp_path / "link")], tmp_path)
    assert result.returncode == 2 and "data:" not in result.stdout
    assert f"error: --export_dir={str(tmp_path / 'link')!r} holds the input --csv=" in (
        result.stderr
    )
    args = ["--csv", path, "--epochs", "1", "--e_layers", "1", "--d_model", "8", "--seq_len", "48",
            "--learning_rate", "1e30", "--export_dir", str(tmp_path / "saved")]  # fmt: skip
    result = _run(FORECAST, args, tmp_path)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert re.search(r"^error: epoch 1, step \d+: the training loss is nan", result.stderr, re.M)
    assert "Traceback" not in result.stderr and "test:" not in result.stdout
    assert sorted(os.listdir(tmp_path)) == ["link", "small.csv"]
