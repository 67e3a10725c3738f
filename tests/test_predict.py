"""examples.predict: the rows after a CSV's end, from a SavedModel of tf_tsembed.serving.

On a small synthetic hourly CSV always, on ETTh1 when the shared data directory has it: 96 rows
whose values equal the SavedModel's on the file's last 96 rows and whose dates continue hourly.
"""

import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from examples import outputs, predict
from tf_tsembed import serving, tslib_data
from tf_tsembed.models import ForecastConfig, ITransformer

ROOT = pathlib.Path(__file__).resolve().parent.parent
ETTH1 = ROOT.parent / "shared" / "data" / "ETT-small" / "ETTh1.csv"
NAMES = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
SEQ_LEN = PRED_LEN = 96


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    config = ForecastConfig(
        seq_len=SEQ_LEN, label_len=48, pred_len=PRED_LEN, enc_in=7, dec_in=7, c_out=7,
        d_model=8, n_heads=2, d_ff=8, e_layers=1, dropout=0.0,
    )  # fmt: skip
    export_dir = str(tmp_path_factory.mktemp("predict") / "served")
    mean = np.array([7.0, 2.0, 4.5, 0.9, 3.0, 0.9, 17.0])
    scale = np.array([5.8, 2.0, 5.5, 1.6, 1.1, 0.6, 9.0])
    serving.export_forecaster(ITransformer(config), export_dir, mean=mean, scale=scale, names=NAMES)
    return export_dir


def _synthetic_csv(path, rows=150, start="2018-06-20T00", shuffle_columns=True):
    dates = np.datetime64(start, "h") + np.arange(rows)
    rng = np.random.default_rng(0)
    columns = ["extra", *NAMES[::-1]] if shuffle_columns else NAMES
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["date", *columns])
        for date in dates:
            row = rng.normal(5, 3, size=len(columns)).round(3)
            writer.writerow([str(date.astype("datetime64[s]")).replace("T", " "), *row])
    return path


def _predict(*args):
    return subprocess.run(
        [sys.executable, "-m", "examples.predict", *args],
        cwd=ROOT,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _expected(export_dir, csv_path):
    dates, names, values = tslib_data.read_csv(csv_path)
    columns = [names.index(name) for name in NAMES]
    window = values[-SEQ_LEN:, columns].astype(np.float32)[None]
    stamps = np.asarray(dates[-SEQ_LEN:], "datetime64[s]").astype(np.int64)[None]
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    out = signature(values=tf.constant(window), timestamps=tf.constant(stamps))
    return dates, out["forecast"].numpy()[0]


def _check_output(out_path, export_dir, csv_path):
    dates, expected = _expected(export_dir, csv_path)
    with open(out_path, newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["date", *NAMES]
    assert len(rows) == 1 + PRED_LEN
    written_dates = np.array([row[0] for row in rows[1:]], "datetime64[s]")
    last = np.asarray(dates[-1], "datetime64[s]")
    np.testing.assert_array_equal(
        written_dates, last + np.arange(1, PRED_LEN + 1) * np.timedelta64(1, "h")
    )
    assert rows[1][0] == str(written_dates[0]).replace("T", " ")  # '2018-06-26 20:00:00'
    values = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


@pytest.mark.slow
def test_synthetic_csv_forecast_continues_hourly(served, tmp_path):
    csv_path = _synthetic_csv(str(tmp_path / "series.csv"))
    out = str(tmp_path / "forecast.csv")
    result = _predict("--model_dir", served, "--csv", csv_path, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    _check_output(out, served, csv_path)
    assert "96 rows forecast after 2018-06-26T05:00:00" in result.stdout
    # An existing --out is refused without --overwrite and kept; with it, replaced.
    with open(out) as file:
        before = file.read()
    refused = _predict("--model_dir", served, "--csv", csv_path, "--out", out)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr.splitlines()[-1]
    with open(out) as file:
        assert file.read() == before
    again = _predict("--model_dir", served, "--csv", csv_path, "--out", out, "--overwrite")
    assert again.returncode == 0, again.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(not ETTH1.exists(), reason=f"no {ETTH1}")
def test_etth1_forecast_continues_hourly(served, tmp_path):
    out = str(tmp_path / "forecast.csv")
    result = _predict("--model_dir", served, "--csv", str(ETTH1), "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    _check_output(out, served, str(ETTH1))
    with open(out) as file:
        assert file.readlines()[1].startswith("2018-06-26 20:00:00,")


def _refusal(model_dir, csv_path, out, overwrite=False):
    """What `examples.predict` checks before serving, in-process, in its order: the output, the
    model's metadata, the file's window; the ValueError's message, or None."""
    try:
        outputs.check(
            files={"out": out}, inputs={"model_dir": model_dir, "csv": csv_path},
            overwrite=overwrite,
        )  # fmt: skip
        metadata = predict.read_metadata(model_dir)
        predict.window(csv_path, *tslib_data.read_csv(csv_path), metadata)
    except ValueError as error:
        return str(error)
    return None


def test_refusals_name_the_problem(served, tmp_path):
    out = str(tmp_path / "forecast.csv")
    csv_path = _synthetic_csv(str(tmp_path / "series.csv"))
    assert _refusal(served, csv_path, out) is None
    short = _synthetic_csv(str(tmp_path / "short.csv"), rows=50)
    assert "has 50 rows; the model reads the last seq_len=96 rows" in _refusal(served, short, out)
    irregular = _synthetic_csv(str(tmp_path / "irregular.csv"))
    lines = open(irregular).read().splitlines()
    lines.pop(120)  # one missing hour: 2018-06-24 22:00 -> 2018-06-25 00:00 in the window
    open(irregular, "w").write("\n".join(lines) + "\n")
    message = "not evenly spaced: 2018-06-24T22:00:00 -> 2018-06-25T00:00:00"
    assert message in _refusal(served, irregular, out)
    missing = str(tmp_path / "missing.csv")
    with open(missing, "w") as file:
        file.write("date,HUFL,OT\n2018-01-01 00:00:00,1,2\n")
    message = "lacks the model's input columns ['HULL', 'MUFL', 'MULL', 'LUFL', 'LULL']"
    assert message in _refusal(served, missing, out)
    assert "is the input --csv" in _refusal(served, missing, missing)
    a_file = tmp_path / "model.keras"
    a_file.write_text("")
    message = f"--model_dir={str(a_file)!r} is not a directory"
    assert _refusal(str(a_file), csv_path, out).startswith(message)
    trimmed = tmp_path / "trimmed"
    shutil.copytree(served, trimmed)
    metadata_path = trimmed / "assets" / "forecaster.json"
    metadata = json.loads(metadata_path.read_text())
    del metadata["names_out"]
    metadata_path.write_text(json.dumps(metadata))
    message = f"--model_dir={str(trimmed)!r}: {metadata_path} lacks the keys ['names_out']"
    assert _refusal(str(trimmed), csv_path, out).startswith(message)
    quarter = _synthetic_csv(str(tmp_path / "quarter.csv"))  # hourly dates made 15-minute ones
    with open(quarter) as file:
        header, *rows = file.read().splitlines()
    starts = np.datetime64("2018-06-20T00:00", "m") + 15 * np.arange(len(rows))
    rows = [
        f"{str(d).replace('T', ' ')}:00,{row.partition(',')[2]}" for d, row in zip(starts, rows)
    ]
    open(quarter, "w").write("\n".join([header, *rows]) + "\n")
    message = (
        "the window's rows are 900 seconds apart ('15min'), but the model in --model_dir was "
        "trained at freq 'h'"
    )
    assert message in _refusal(served, quarter, out)
    metadata_file = os.path.join(served, "assets", "forecaster.json")
    message = f"lies inside the input --model_dir={served!r}"
    assert message in _refusal(served, csv_path, metadata_file, overwrite=True)


@pytest.mark.slow
def test_a_refusal_is_one_error_line_and_writes_nothing(served, tmp_path):
    out = str(tmp_path / "forecast.csv")
    short = _synthetic_csv(str(tmp_path / "short.csv"), rows=50)
    metadata_file = os.path.join(served, "assets", "forecaster.json")
    before = open(metadata_file).read()
    cases = [
        (["--model_dir", served, "--csv", short, "--out", out], "has 50 rows"),
        (["--model_dir", served, "--csv", short, "--out", metadata_file, "--overwrite"],
         f"lies inside the input --model_dir={served!r}"),
    ]  # fmt: skip
    for args, message in cases:
        result = _predict(*args)
        assert result.returncode == 2, result.stderr[-3000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in result.stderr
        assert message in result.stderr.splitlines()[-1], result.stderr[-3000:]
    assert not os.path.exists(out) and open(metadata_file).read() == before


@pytest.mark.slow
def test_dates_with_utc_offsets_are_forecast_in_utc_and_said_so(served, tmp_path):
    plain = _synthetic_csv(str(tmp_path / "plain.csv"))
    with open(plain) as file:
        header, *rows = file.read().splitlines()
    # The same instants written at +02:00: 2018-06-20 00:00 UTC is 02:00+02:00.
    hours = np.datetime64("2018-06-20T02", "h") + np.arange(len(rows))
    shifted = str(tmp_path / "offsets.csv")
    with open(shifted, "w") as file:
        file.write(header + "\n")
        for hour, row in zip(hours, rows):
            date = str(hour.astype("datetime64[s]")).replace("T", " ")
            file.write(f"{date}+02:00,{row.partition(',')[2]}\n")
    out = str(tmp_path / "forecast.csv")
    result = _predict("--model_dir", served, "--csv", shifted, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note: " in result.stdout and "converted to UTC" in result.stdout
    assert "96 rows forecast after 2018-06-26T05:00:00 written to" in result.stdout
    assert result.stdout.rstrip().endswith("; dates in UTC (the file's UTC offsets converted; "
                                           "written without offset)")  # fmt: skip
    _check_output(out, served, plain)  # the UTC dates and values of the naive UTC file


def test_names_with_commas_and_quotes_read_back_as_written(tmp_path):
    names = ["load, kW", 'say "OT"', "plain"]
    stamps = (np.datetime64("2018-06-26T20", "h") + np.arange(3)).astype("datetime64[s]")
    forecast = np.array([[1.5, -2.25, 3.0], [4.0, 5.125, 6.0], [7.0, 8.0, 9.5e-7]], "float32")
    out = str(tmp_path / "forecast.csv")
    predict.write_forecast(out, stamps.astype(np.int64), forecast, names, overwrite=False)
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["date", *names]
    np.testing.assert_array_equal(frame[names].to_numpy(), forecast.astype(np.float64))
    assert list(frame["date"]) == ["2018-06-26 20:00:00", "2018-06-26 21:00:00",
                                   "2018-06-26 22:00:00"]  # fmt: skip
    dates, read_names, values = tslib_data.read_csv(out)
    assert read_names == names and np.array_equal(values, forecast.astype(np.float64))


def test_help_exits_0():
    result = _predict("--help")
    assert result.returncode == 0 and "--model_dir" in result.stdout
    assert 'says "dates in UTC"' in result.stdout  # the docstring says how dates are written


def test_help_answers_without_tensorflow():
    # --help took ~3 s and printed TensorFlow's start-up lines when predict imported it.
    result = subprocess.run(
        [sys.executable, "-c", _HELP_WITHOUT_TENSORFLOW, "--help"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--model_dir [required]:" in result.stdout
    assert "tensorflow imported: False" in result.stdout and result.stderr == ""


# Runs predict's --help in-process and reports whether TensorFlow got imported.
_HELP_WITHOUT_TENSORFLOW = """
import atexit, runpy, sys
atexit.register(lambda: print("tensorflow imported:", "tensorflow" in sys.modules))
sys.argv = ["predict.py", *sys.argv[1:]]
runpy.run_module("examples.predict", run_name="__main__")
"""
