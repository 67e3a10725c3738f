"""examples.outputs and what the scripts write: checked before training, written whole or not at
all; a diverged run refused; `--help` ending in one line. Script runs end to end are in
test_long_term_forecast.py (they reuse its helpers)."""

import json
import os
import signal
import subprocess
import sys

import _export_interrupt
import numpy as np
import pytest
import tensorflow as tf

from examples import evaluation, outputs, training
from tf_tsembed import serving

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))


def _siblings(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


def test_check_refuses_an_existing_output_without_overwrite(tmp_path):
    json_path, export_dir = tmp_path / "out.json", tmp_path / "saved"
    json_path.write_text("{}")
    export_dir.mkdir()
    for kind, path in (("files", json_path), ("directories", export_dir)):
        flag = "json" if kind == "files" else "export_dir"
        with pytest.raises(ValueError, match=f"--{flag}=.* exists; give --overwrite to replace"):
            outputs.check(**{kind: {flag: str(path)}})
        outputs.check(**{kind: {flag: str(path)}}, overwrite=True)
    outputs.check(files={"json": str(tmp_path / "new.json")}, directories={"export_dir": None})


def test_check_refuses_an_output_that_is_an_input(tmp_path):
    csv_path = tmp_path / "data.csv"
    csv_path.write_text("date,OT\n")
    (tmp_path / "link.json").symlink_to(csv_path)
    os.link(csv_path, tmp_path / "hard.json")
    inputs = {"csv": str(csv_path)}
    for name in ("data.csv", "link.json", "hard.json"):
        with pytest.raises(ValueError, match=f"--json=.*{name}' is the input --csv="):
            outputs.check(files={"json": str(tmp_path / name)}, inputs=inputs, overwrite=True)
    with pytest.raises(ValueError, match="--export_dir=.* holds the input --csv="):
        outputs.check(directories={"export_dir": str(tmp_path)}, inputs=inputs, overwrite=True)
    with pytest.raises(ValueError, match="--json=.* is inside --export_dir="):
        outputs.check(
            files={"json": str(tmp_path / "saved" / "out.json")},
            directories={"export_dir": str(tmp_path / "saved")},
        )
    assert csv_path.read_text() == "date,OT\n"


def test_check_refuses_an_output_inside_an_input_directory_and_two_same_outputs(tmp_path):
    # examples.predict --out served/assets/forecaster.json --overwrite destroyed the model's
    # metadata: an output inside an input directory (--model_dir) is refused, as is the
    # directory itself.
    served = tmp_path / "served"
    (served / "assets").mkdir(parents=True)
    (served / "assets" / "forecaster.json").write_text("{}")
    (tmp_path / "served_link").symlink_to(served)
    inputs = {"model_dir": str(served), "csv": str(tmp_path / "data.csv")}
    for out in ("served/assets/forecaster.json", "served_link/assets/new.csv", "served/x.csv"):
        with pytest.raises(ValueError, match="--out=.* lies inside the input --model_dir="):
            outputs.check(files={"out": str(tmp_path / out)}, inputs=inputs, overwrite=True)
    with pytest.raises(ValueError, match="--out=.* is the input --model_dir="):
        outputs.check(files={"out": str(served)}, inputs=inputs, overwrite=True)
    assert (served / "assets" / "forecaster.json").read_text() == "{}"
    outputs.check(files={"out": str(tmp_path / "forecast.csv")}, inputs=inputs)
    # --json P --export_dir P was found only after training ("appeared during the run").
    same = str(tmp_path / "P")
    with pytest.raises(ValueError, match="--json=.*P' and --export_dir=.*P' are the same path"):
        outputs.check(files={"json": same}, directories={"export_dir": same})


def test_a_file_is_replaced_only_when_written_whole(tmp_path):
    path = tmp_path / "out.json"
    outputs.write_json(str(path), {"mse": 0.5})
    assert json.loads(path.read_text()) == {"mse": 0.5}
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        outputs.write_json(str(path), {"mse": float("nan")}, overwrite=True)
    with pytest.raises(RuntimeError, match="half-way"):
        with outputs.replacing_file(str(path), overwrite=True) as file:
            file.write("date,OT\n")
            raise RuntimeError("half-way")
    assert json.loads(path.read_text()) == {"mse": 0.5} and _siblings(tmp_path) == []
    with pytest.raises(ValueError, match="appeared during the run; give --overwrite"):
        outputs.write_json(str(path), {"mse": 0.25})
    outputs.write_json(str(path), {"mse": 0.25}, overwrite=True)
    assert json.loads(path.read_text()) == {"mse": 0.25} and _siblings(tmp_path) == []


def test_a_directory_is_swapped_in_and_the_backup_removed(tmp_path):
    # A directory output is a SavedModel: what it holds is named as one's.
    path = tmp_path / "saved"
    with outputs.replacing(str(path), directory=True) as temporary:
        (tmp_path / temporary / "saved_model.pb").write_text("old")
    with pytest.raises(OSError):
        with outputs.replacing(str(path), directory=True, overwrite=True) as temporary:
            (tmp_path / temporary / "saved_model.pb").write_text("half")
            raise OSError("disk full")
    assert os.listdir(path) == ["saved_model.pb"]
    assert (path / "saved_model.pb").read_text() == "old"
    with outputs.replacing(str(path), directory=True, overwrite=True) as temporary:
        (tmp_path / temporary / "saved_model.pb").write_text("new")
        (tmp_path / temporary / "variables").mkdir()
    assert sorted(os.listdir(path)) == ["saved_model.pb", "variables"]
    assert (path / "saved_model.pb").read_text() == "new" and _siblings(tmp_path) == []
    # A folder of other files is refused before training, --overwrite or not, and kept.
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="--export_dir: .*not an earlier output"):
        outputs.check(directories={"export_dir": str(tmp_path / "notes")}, overwrite=True)
    assert os.listdir(tmp_path / "notes") == ["notes.txt"]


def test_export_mismatch_is_a_clear_error_and_leaves_the_old_export(tmp_path, monkeypatch):
    expected = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match=r"max abs difference 0\.01, tolerance 1e-05"):
        serving.compare_forecasts(expected + 0.01, expected)
    with pytest.raises(ValueError, match="non-finite"):
        serving.compare_forecasts(expected + np.nan, expected + np.nan)
    export_dir = str(tmp_path / "saved")
    old = _export_interrupt.tiny_model(seed=1)
    assert evaluation.export_and_check(old, export_dir, _export_interrupt.INPUTS) < 1e-5
    # The reloaded forecasts made to differ: refused, and the first export still answers.
    load = tf.saved_model.load

    class Shifted:
        def __init__(self, path):
            self.loaded = load(path)

        def serve(self, inputs):
            return self.loaded.serve(inputs) + 1.0

    monkeypatch.setattr(tf.saved_model, "load", Shifted)
    with pytest.raises(ValueError, match="does not forecast as the trained model: max abs diff"):
        evaluation.export_and_check(
            _export_interrupt.tiny_model(seed=2),
            export_dir,
            _export_interrupt.INPUTS,
            overwrite=True,
        )
    monkeypatch.undo()
    reloaded = tf.saved_model.load(export_dir)
    np.testing.assert_allclose(
        reloaded.serve([_export_interrupt.INPUTS]), old([_export_interrupt.INPUTS]), rtol=1e-6
    )
    assert _siblings(tmp_path) == []


def test_a_diverged_fit_stops_with_the_epoch_and_the_learning_rate():
    model = _export_interrupt.tiny_model(seed=3)
    model.compile(optimizer=training.TorchAdam(1e30), loss="mse")
    x = np.repeat(_export_interrupt.INPUTS, 4, axis=0)
    with pytest.raises(ValueError, match=r"^epoch 1, step \d+: the training loss is (nan|inf)"):
        model.fit(x, np.ones((8, 4)), batch_size=2, callbacks=[training.FiniteLosses()], verbose=0)
    with pytest.raises(ValueError, match=r"epoch 3: the validation loss is nan: .*--learning_rate"):
        training.refuse_non_finite("validation loss", float("nan"), 2, model)
    with pytest.raises(ValueError, match="the test metrics are not finite"):
        evaluation.finite_errors(np.array([[np.inf]]), np.zeros((1, 1)))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_export_stopped_by_a_signal_leaves_the_old_savedmodel(tmp_path, signum):
    export_dir = str(tmp_path / "saved")
    old = _export_interrupt.tiny_model(seed=1)
    evaluation.export_and_check(old, export_dir, _export_interrupt.INPUTS)
    before = sorted(os.listdir(export_dir))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, TESTS]), CUDA_VISIBLE_DEVICES="")
    worker = subprocess.Popen(
        [sys.executable, os.path.join(TESTS, "_export_interrupt.py"), export_dir],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = worker.stdout.readline()  # the new SavedModel is written, not yet in place
        assert line.startswith("EXPORTED "), line + worker.stderr.read()[-3000:]
        assert os.path.exists(os.path.join(line.split()[1], "saved_model.pb"))
        worker.send_signal(signum)
        assert worker.wait(timeout=60) == 128 + signum, worker.stderr.read()[-3000:]
    finally:
        worker.kill()
        worker.wait()
    assert "Traceback" not in worker.stderr.read()
    assert sorted(os.listdir(export_dir)) == before and _siblings(tmp_path) == []
    reloaded = tf.saved_model.load(export_dir)
    np.testing.assert_allclose(
        reloaded.serve([_export_interrupt.INPUTS]), old([_export_interrupt.INPUTS]), rtol=1e-6
    )


@pytest.mark.parametrize("script", ["examples.forecast", "examples.long_term_forecast"])
def test_help_with_a_bad_value_is_one_error_line(script):
    result = subprocess.run(
        [sys.executable, "-m", script, "--help", "--seq_len", "abc"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert (
        result.stderr
        == "error: flag --seq_len=abc: invalid literal for int() with base 10: 'abc'\n"
    )


def test_help_into_a_closed_pipe_ends_quietly():
    read, write = os.pipe()
    os.close(read)  # as `--help | head` once head has gone
    try:
        result = subprocess.run(
            [sys.executable, "-m", "examples.long_term_forecast", "--help"],
            cwd=REPO,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert result.returncode == 0 and result.stderr == ""
