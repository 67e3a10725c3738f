"""examples.forecast: its data handling and baselines against independent NumPy, and whole runs."""

import csv
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from examples import data, evaluation, outputs
from tf_tsembed import serving, tslib_data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small enough for a test (~20 s on 2 busy cores); the README's default run is larger and the
# example itself exits with status 1 when it does not beat every baseline on the built-in data.
TINY = ["--days", "120", "--epochs", "2", "--e_layers", "1", "--d_model", "16"]
ROW = re.compile(
    r"^(model|repeat-last|seasonal-naive \(\d+\))\s+(\d+\.\d+)\s+(\d+\.\d+)$", re.MULTILINE
)


def _run(args, tmp_path, timeout=150):
    export_dir = os.path.join(str(tmp_path), "saved_model")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-m", "examples.forecast", *args, "--export_dir", export_dir],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    metrics = {name: (float(mse), float(mae)) for name, mse, mae in ROW.findall(result.stdout)}
    return result, metrics, export_dir


def _reference_baseline_errors(values, target, seq_len, pred_len, season, global_batch):
    """MSE and MAE of repeat-last and seasonal-naive on the test split, from the issue's words:
    70/10/20 chronological split, test inputs reaching seq_len rows back, train-set standardisation,
    whole global batches of windows."""
    num_rows = len(values)
    num_train, num_test = int(num_rows * 0.7), int(num_rows * 0.2)
    train = values[:num_train, target]
    y = (values[:, target] - train.mean()) / train.std()
    first = num_rows - num_test - seq_len
    count = (num_rows - first - seq_len - pred_len + 1) // global_batch * global_batch
    repeat_last, seasonal = [], []
    for start in range(first, first + count):
        origin = start + seq_len
        for h in range(pred_len):
            truth = y[origin + h]
            repeat_last.append(truth - y[origin - 1])
            seasonal.append(truth - y[origin - season + h % season])
    return {
        "repeat-last": (np.mean(np.square(repeat_last)), np.mean(np.abs(repeat_last))),
        f"seasonal-naive ({season})": (np.mean(np.square(seasonal)), np.mean(np.abs(seasonal))),
    }, count


def _assert_baselines_printed(metrics, expected):
    for name, (mse, mae) in expected.items():
        assert metrics[name] == pytest.approx((mse, mae), abs=1e-4), name


def test_baselines_match_a_loop_reference():
    target = np.random.default_rng(0).normal(size=200)
    starts = np.array([0, 5, 50, 150])
    seq_len, pred_len, season = 30, 17, 7
    forecasts = evaluation.baselines(target, starts, seq_len, pred_len, season)
    repeat_last, seasonal = forecasts["repeat-last"], forecasts["seasonal-naive (7)"]
    for i, start in enumerate(starts):
        origin = start + seq_len
        for h in range(pred_len):
            assert repeat_last[i, h] == target[origin - 1]
            k = h // season + 1  # the latest whole number of seasons back that is already observed
            assert seasonal[i, h] == target[origin + h - k * season]


def test_whole_batches_keeps_only_whole_global_batches():
    np.testing.assert_array_equal(data.whole_batches(np.arange(10, 49), 16), np.arange(10, 42))
    with pytest.raises(ValueError, match="39 windows, fewer than one global batch of 64"):
        data.whole_batches(np.arange(10, 49), 64)


def test_synthetic_series_has_hourly_timestamps_and_calendar_signal():
    dates, names, values = data.synthetic_series(28, seed=1)
    assert names[-1] == "OT" and values.shape == (28 * 24, 5)
    steps = np.diff(dates).astype("timedelta64[h]").astype(int)
    assert np.all(steps == 1)
    days = dates.astype("datetime64[D]").astype(np.int64)
    weekend = (days + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    hour = dates.astype("datetime64[h]").astype(np.int64) % 24
    target = values[:, -1]
    assert target[~weekend].mean() - target[weekend].mean() > 1.0
    assert np.ptp([target[hour == h].mean() for h in range(24)]) > 3.0
    np.testing.assert_array_equal(data.synthetic_series(28, seed=1)[2], values)


def _write_csv(path, dates, columns):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["date", *columns])
        for date, row in zip(dates, zip(*columns.values())):
            writer.writerow([str(date).replace("T", " "), *(f"{v:.6f}" for v in row)])


def test_read_csv_and_infer_season(tmp_path):
    dates = np.datetime64("2016-07-01T00:00", "m") + 15 * np.arange(10)
    path = os.path.join(str(tmp_path), "small.csv")
    _write_csv(path, dates, {"HUFL": np.arange(10.0), "OT": np.arange(10.0) / 2})
    read_dates, names, values = tslib_data.read_csv(path)
    assert names == ["HUFL", "OT"]
    np.testing.assert_array_equal(read_dates, dates)
    np.testing.assert_allclose(values, np.stack([np.arange(10.0), np.arange(10.0) / 2], axis=1))
    assert data.infer_season(read_dates) == 96
    assert data.infer_season(np.datetime64("2020-01-01T00", "h") + np.arange(5)) == 24
    assert data.infer_season(np.datetime64("2020-01-01", "D") + np.arange(5)) == 7
    with pytest.raises(ValueError, match=r"target column 'load' \(--target\) is not in"):
        data.load_data(path, "load", None, 0, 0)


def test_load_data_infers_the_frequency_and_refuses_a_contradicting_one(tmp_path):
    dates = np.datetime64("2016-07-01T00:00", "m") + 15 * np.arange(10)
    path = os.path.join(str(tmp_path), "quarter_hourly.csv")
    _write_csv(path, dates, {"OT": np.arange(10.0)})
    assert data.load_data(path, "OT", None, 0, 0)[3] == "15min"
    assert data.load_data(path, "OT", "15min", 0, 0)[3] == "15min"
    with pytest.raises(
        ValueError, match=r"--freq='h' contradicts the dates, spaced 900 s apart.*'15min'"
    ):
        data.load_data(path, "OT", "h", 0, 0)
    assert data.load_data(None, "OT", None, 30, 0)[3] == "h"


@pytest.mark.slow
def test_builtin_data_run_beats_both_baselines_and_exports(tmp_path):
    result, metrics, export_dir = _run(TINY, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    model_mse, model_mae = metrics.pop("model")
    assert len(metrics) == 2
    for name, (mse, mae) in metrics.items():
        assert model_mse < mse and model_mae < mae, (name, metrics)
    assert "model beats every baseline on MSE and MAE: yes" in result.stdout
    dates, names, values = data.synthetic_series(120, seed=2021)
    expected, count = _reference_baseline_errors(values, names.index("OT"), 96, 24, 24, 32)
    _assert_baselines_printed(metrics, expected)
    assert f"/{count} (whole global batches of 32)" in result.stdout
    assert f"SavedModel (raw values and timestamps in) written to {export_dir}" in result.stdout
    _assert_served_model_scores_as_printed(export_dir, dates, values, model_mse, model_mae, count)


def _assert_served_model_scores_as_printed(export_dir, dates, values, model_mse, model_mae, count):
    """The export takes each test window's rows in the file's units and its timestamps, and
    returns the target in the file's units: standardised here with the training rows' mean and
    std of OT (NumPy), its errors are the printed model row's."""
    import tensorflow as tf

    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    num_train, num_test = int(len(values) * 0.7), int(len(values) * 0.2)
    first = len(values) - num_test - 96
    rows = first + np.arange(count)[:, None] + np.arange(96)[None, :]
    seconds = dates.astype("datetime64[s]").astype(np.int64)
    served = serve(
        values=tf.constant(values[rows].astype(np.float32)), timestamps=tf.constant(seconds[rows])
    )
    assert served["forecast"].shape == (count, 24, 1)
    np.testing.assert_array_equal(served["timestamps"], seconds[rows[:, -1:] + np.arange(1, 25)])
    train = values[:num_train, -1]
    forecast = (served["forecast"].numpy()[..., 0] - train.mean()) / train.std()
    truth = (values[rows[:, -1:] + np.arange(1, 25), -1] - train.mean()) / train.std()
    errors = forecast.astype(np.float64) - truth
    assert np.mean(errors**2) == pytest.approx(model_mse, abs=2e-4)
    assert np.mean(np.abs(errors)) == pytest.approx(model_mae, abs=2e-4)


@pytest.mark.slow
def test_csv_run_reads_splits_and_standardises_like_the_benchmarks(tmp_path):
    rng = np.random.default_rng(3)
    dates = np.datetime64("2017-03-01T00", "h") + np.arange(50 * 24)
    steps = np.arange(len(dates))
    daily = 2 * np.pi * (steps % 24) / 24
    columns = {
        "MUFL": 100 + 10 * np.sin(daily) + rng.normal(size=len(dates)),
        "load": 40 + 5 * np.cos(daily) + steps / 100 + rng.normal(size=len(dates)),
    }
    path = os.path.join(str(tmp_path), "bench.csv")
    _write_csv(path, dates, columns)
    args = [
        "--csv",
        path,
        "--target",
        "MUFL",
        "--embed_type",
        "timeF",
        "--epochs",
        "1",
        "--e_layers",
        "1",
        "--d_model",
        "8",
        "--seq_len",
        "48",
        "--pred_len",
        "12",
        "--batch_size",
        "16",
    ]
    result, metrics, export_dir = _run(args, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    values = np.round(np.stack(list(columns.values()), axis=1), 6)  # as written to the CSV
    expected, count = _reference_baseline_errors(values, 0, 48, 12, 24, 16)
    _assert_baselines_printed(metrics, expected)
    assert f"/{count} (whole global batches of 16)" in result.stdout
    assert np.all(np.isfinite(metrics["model"]))
    # The target is moved last (TSLib's Dataset_Custom); the export serves the file as it is.
    metadata = serving.read_metadata(export_dir)
    assert (metadata["names_in"], metadata["names_out"]) == (["load", "MUFL"], ["MUFL"])
    assert (metadata["features"], metadata["config"]["embed"]) == ("MS", "timeF")
    out = os.path.join(str(tmp_path), "forecast.csv")
    predicted = subprocess.run(
        [sys.executable, "-m", "examples.predict", "--model_dir", export_dir, "--csv", path,
         "--out", out],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES=""),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stdout[-2000:] + predicted.stderr[-3000:]
    with open(out) as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["date", "MUFL"] and len(rows) == 13
    assert rows[1][0] == str(dates[-1] + 1).replace("T", " ") + ":00:00"


@pytest.mark.slow
def test_mirrored_run_on_two_virtual_cpus(tmp_path):
    result, metrics, _ = _run([*TINY, "--strategy", "mirrored", "--virtual_cpus", "2"], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "strategy: mirrored (2 replica(s))" in result.stdout
    assert "(whole global batches of 64)" in result.stdout
    assert set(metrics) == {"model", "repeat-last", "seasonal-naive (24)"}


def test_outputs_are_checked_for_writability_before_any_work(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    refused = [
        ("json", str(a_file / "out.json"), False, "is not a directory"),
        ("json", str(tmp_path), False, "is a directory; give a file path"),
        ("export_dir", str(a_file), True, "is a file; give a directory path"),
        ("export_dir", str(a_file / "deeper" / "saved"), True, "is not a directory"),
    ]
    for flag, path, directory, message in refused:
        with pytest.raises(ValueError, match=f"--{flag}=.*{message}"):
            outputs.check_writable(flag, path, directory=directory)
    # Writable places pass and are left as they were.
    outputs.check_writable("json", str(tmp_path / "new.json"))
    outputs.check_writable("export_dir", str(tmp_path / "new" / "saved"), directory=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tpu", "my-tpu"], "--tpu applies to --strategy tpu only; got --strategy default."),
        (["--virtual_cpus", "2"], "--virtual_cpus applies to --strategy mirrored only"),
        (["--strategy", "tpu"], "--strategy tpu: no TPU found"),
        (["--strategy", "foo"], "flag --strategy=foo: must be one of ['default', 'mirrored'"),
        (["--learning_rate", "-1"], "flag --learning_rate=-1.0: must be a finite number > 0"),
        (["--dropout", "-0.1"], "flag --dropout=-0.1: must be in [0, 1)"),
        (["--seed", "-1"], "flag --seed=-1: -1 is not an integer in the range [0, 4294967295]"),
    ],
)
def test_forecast_refuses_flags_in_one_line_before_training(tmp_path, args, message):
    result, _, _ = _run(args, tmp_path, timeout=120)
    assert result.returncode == 2
    assert f"error: {message}" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "epoch" not in result.stdout.lower()


@pytest.mark.parametrize("script", ["examples.forecast", "examples.long_term_forecast"])
def test_an_unwritable_output_stops_the_run_before_training(tmp_path, script):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    path = os.path.join(str(tmp_path), "ETTh1.csv")
    with open(path, "w") as file:
        file.write("date,OT\n2020-01-01,1\n")
    args = ["--export_dir", str(a_file / "saved")]
    if script == "examples.long_term_forecast":
        args = ["--csv", path, "--json", str(a_file / "out.json")]
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-m", script, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "cannot be written" in result.stderr and "is not a directory" in result.stderr
    assert "epoch" not in result.stdout.lower() and "data:" not in result.stdout


@pytest.mark.slow
def test_ten_minute_data_runs_with_default_flags_and_says_why_a_baseline_is_left_out(tmp_path):
    # weather.csv is sampled every 10 minutes: a day is 144 steps, longer than --seq_len 96.
    rng = np.random.default_rng(5)
    dates = np.datetime64("2020-01-01T00:00", "m") + 10 * np.arange(6 * 24 * 12)
    steps = np.arange(len(dates))
    columns = {
        "p (mbar)": 1000 + np.sin(2 * np.pi * steps / 144) + rng.normal(size=len(dates)),
        "stuck": np.full(len(dates), 0.1),
        "OT": 20 + 5 * np.cos(2 * np.pi * steps / 144) + rng.normal(size=len(dates)),
    }
    path = os.path.join(str(tmp_path), "weather.csv")
    _write_csv(path, dates, columns)
    result, metrics, _ = _run(["--csv", path, "--epochs", "1", "--d_model", "8"], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert (
        "note: seasonal-naive left out: the dates' season (144 steps) is longer than the input "
        "window (--seq_len 96)" in result.stdout
    )
    assert "note: columns ['stuck'] are constant over the training rows" in result.stdout
    assert set(metrics) == {"model", "repeat-last"} and np.all(np.isfinite(metrics["model"]))


def test_main_job_model_is_a_registered_forecast_model(tmp_path):
    import tensorflow as tf

    from examples import forecaster
    from tf_tsembed.models import ForecastConfig

    config = ForecastConfig(
        seq_len=12, label_len=0, pred_len=4, enc_in=3, dec_in=3, c_out=3, embed="learned",
        d_model=8, n_heads=2, e_layers=1, d_ff=8, dropout=0.0,
    )  # fmt: skip
    model = forecaster.MainJobForecaster(config)
    rng = np.random.default_rng(0)
    inputs = [
        rng.normal(size=(2, 12, 3)).astype("float32"),
        rng.integers(0, 4, size=(2, 12, 4)).astype("int32"),
        np.zeros((2, 4, 3), "float32"),
        rng.integers(0, 4, size=(2, 4, 4)).astype("int32"),
    ]
    path = os.path.join(str(tmp_path), "main_job.keras")
    model.save(path)
    reloaded = tf.keras.models.load_model(path)
    assert type(reloaded) is forecaster.MainJobForecaster and reloaded.forecast_config == config
    expected = model(inputs).numpy()
    np.testing.assert_allclose(reloaded(inputs).numpy(), expected, rtol=1e-6, atol=1e-6)
    assert expected.shape == (2, 4, 3)
    np.testing.assert_array_equal(forecaster.target_only(model)(inputs).numpy(), expected[:, :, -1])
    with pytest.raises(ValueError, match="needs c_out and dec_in equal to enc_in=3"):
        forecaster.MainJobForecaster({**config.to_dict(), "c_out": 1})
