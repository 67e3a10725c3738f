"""The benchmark commands run and write what they promise. No timing is asserted: timings are
reported, not tested."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUIRED_KEYS = {"layer", "shape", "dtype", "jit", "device", "median_ms", "floor_ms", "baseline_ms"}


def _run(args, extra_env=None):
    """`python args` from the repository root; TF's C++ log level left to the benchmarks."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(extra_env or {})
    command = [sys.executable, *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_forward_cli_writes_table_and_json_with_required_keys(tmp_path):
    path = tmp_path / "forward.json"
    result = _run(
        [
            "-m",
            "benchmarks.forward",
            "--layers=TokenEmbedding,PositionalEmbedding",
            "--shapes=2x5x3:4",
            "--dtypes=float32,bfloat16",
            "--reps=2",
            "--warmup=1",
            "--sweep_shape=1x3x2:4",
            f"--json={path}",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CUDA error" not in result.stderr  # TF 2.21 logs a failed cuInit at ERROR level
    assert "| layer | shape | dtype | jit | median ms |" in result.stdout
    assert "ms per unit" in result.stdout  # the fitted slopes of the sweep
    records = json.loads(path.read_text())
    main = [r for r in records if r["sweep"] is None]
    # 2 layers x 2 dtypes x 3 modes on the CPU, and 2 axes x 4 sizes of the sweep.
    assert len(main) == 12 and len(records) == 20
    for record in records:
        assert REQUIRED_KEYS <= set(record), record
        assert record["device"] == "CPU"
        assert record["median_ms"] > 0 and record["floor_ms"] > 0 and record["baseline_ms"] > 0
        assert record["min_ms"] <= record["median_ms"] <= record["max_ms"]
    token_eager = [r for r in main if r["layer"] == "TokenEmbedding" and r["mode"] == "eager"]
    assert all("plain TF pad+conv, no XLA" in r["references"] for r in token_eager)
    assert {r["jit"] for r in main} == {True, False}
    assert {tuple(r["shape"]) for r in records if r["sweep"] == "batch"} == {
        (1, 3, 2, 4),
        (2, 3, 2, 4),
        (4, 3, 2, 4),
        (8, 3, 2, 4),
    }


@pytest.mark.slow
def test_train_step_cli_writes_json(tmp_path):
    path = tmp_path / "train.json"
    result = _run(
        [
            "-m",
            "benchmarks.train_step",
            "--batch=2",
            "--length=8",
            "--channels=3",
            "--d_model=8",
            "--heads=2",
            "--encoder_layers=1",
            "--dtypes=float32",
            "--reps=1",
            "--warmup=1",
            f"--json={path}",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads(path.read_text())
    assert [r["mode"] for r in records] == ["function", "xla"]
    for record in records:
        assert REQUIRED_KEYS <= set(record), record
        assert record["median_ms"] > 0 and record["baseline_ms"] > 0


@pytest.mark.slow
def test_targets_cli_reports_every_target_per_run(tmp_path):
    path = tmp_path / "targets.json"
    result = _run(
        [
            "-m",
            "benchmarks.targets",
            "--runs=2",
            "--reps=1",
            "--warmup=1",
            "--shape=2x5x3:4",
            "--position_batch=3",
            f"--json={path}",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| target | limit | per run | median | met |" in result.stdout
    rows = json.loads(path.read_text())
    texts = [row["target"] for row in rows]
    assert any(text.startswith("TokenEmbedding jit on / memory-write floor") for text in texts)
    assert sum(text.startswith("PositionalEmbedding batch 3 / batch 1") for text in texts) == 3
    for row in rows:
        assert len(row["ratios"]) == 2 and all(ratio > 0 for ratio in row["ratios"]), row
        assert row["median"] == pytest.approx(float(np.median(row["ratios"])))
        if row["limit"] is None:
            assert row["met"] is None
        else:
            expected = (
                row["median"] >= row["limit"] if row["at_least"] else row["median"] <= row["limit"]
            )
            assert row["met"] == expected, row


@pytest.mark.slow
def test_forward_cli_rejects_bad_shapes_naming_the_flag():
    result = _run(["-m", "benchmarks.forward", "--shapes=32x96x7"])
    assert result.returncode != 0
    assert (
        "--shapes" in result.stderr and "'32x96x7'" in result.stderr and "BxLxC:D" in result.stderr
    )


@pytest.mark.parametrize("user_level,expected", [(None, "3"), ("1", "1")])
def test_benchmarks_set_tf_log_level_before_tf_unless_the_user_did(user_level, expected):
    script = "import os, sys, benchmarks\n"
    script += "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], 'tensorflow' in sys.modules)"
    result = _run(["-c", script], {"TF_CPP_MIN_LOG_LEVEL": user_level} if user_level else None)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [expected, "False"]


@pytest.mark.slow
def test_serving_cli_reports_each_variant(tmp_path):
    path = tmp_path / "serving.json"
    result = _run(["-m", "benchmarks.serving", "--batch_sizes=2", "--pad_to=2", f"--json={path}"])
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(path.read_text())
    labels = [row["model"] for row in rows]
    assert labels == ["jit_compile=True", "jit_compile=True, padded to [2]", "jit_compile=False"]
    for row in rows:
        assert row["first_pass_s"] > 0 and row["warm_call_median_ms"] > 0
    assert "| jit_compile=False |" in result.stdout


@pytest.mark.e2e
def test_timesnet_step_times_every_variant_and_the_parts_of_a_step(tmp_path):
    path = tmp_path / "timesnet.json"
    args = ["--batch=2", "--seq_len=16", "--pred_len=8", "--d_model=4", "--d_ff=4", "--reps=1"]
    args += ["--warmup=1", "--profile", f"--json={path}"]
    result = _run(["-m", "benchmarks.timesnet_step", *args])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| TimesNet train step | median ms | min-max ms | x PyTorch |" in result.stdout
    medians = json.loads(path.read_text())
    variants = ["ours, reshape (reference), graph", "ours, static taps, graph"]
    variants += ["ours, static taps, XLA", "forward + gradients", "Adam update alone"]
    assert all(medians[name] > 0 for name in variants), medians
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    assert medians["PyTorch, TSLib's TimesNet (six convolutions)"] > 0
    assert medians["PyTorch, each Inception block as one convolution"] > 0


@pytest.mark.e2e
def test_torch_timesnet_train_runs_tslibs_loop_and_reports_the_test_metrics(tmp_path):
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("torch is not installed")
    path = tmp_path / "small.csv"
    hours = np.arange("2024-01-01T00", "2024-01-26T00", dtype="datetime64[h]")  # 600 rows
    values = np.random.default_rng(0).normal(size=(len(hours), 3))
    lines = ["date,a,b,OT"] + [
        f"{str(hour).replace('T', ' ')}:00:00," + ",".join(f"{v:.4f}" for v in row)
        for hour, row in zip(hours, values)
    ]
    path.write_text("\n".join(lines) + "\n")
    args = ["-m", "benchmarks.torch_timesnet_train", f"--csv={path}", "--seq_len=48"]
    args += ["--pred_len=24", "--epochs=2", "--steps_per_epoch=2", "--d_model=8", "--d_ff=8"]
    result = _run(args)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["epoch 1", "epoch 2"], lines
    # custom split 70/10/20 of 600 rows: test rows 480..599, inputs from row 432, 97 windows
    assert lines[-1].startswith("test (97 windows): MSE "), lines
    mse = float(lines[-1].split("MSE ")[1].split(",")[0])
    assert 0 < mse < 10


def test_read_csv_benchmark_reports_ours_beside_pandas(tmp_path):
    path = tmp_path / "read_csv.json"
    result = _run(["-m", "benchmarks.read_csv", "--shapes=60x3", "--reps=2", f"--json={path}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| rows x columns | file MB | ours ms | pandas ms | x pandas |" in result.stdout
    [row] = json.loads(path.read_text())
    assert row["shape"] == "60x3" and row["reps"] == 2
    assert row["ours_ms"] > 0 and row["pandas_ms"] > 0 and row["time_ratio"] > 0
    assert row["ours_mb"] >= 0 and row["pandas_mb"] >= 0


def test_read_csv_benchmark_rejects_bad_shapes_naming_the_flag():
    result = _run(["-m", "benchmarks.read_csv", "--shapes=60"])
    assert result.returncode != 0 and "--shapes: '60' is not ROWSxCOLUMNS" in result.stderr
