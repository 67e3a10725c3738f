"""tf_tsembed.tslib: run.py flags, TSLib checkpoint.pth -> Keras, and its command line.

Each model's PyTorch re-statement (benchmarks.torch_tslib; TimesNet from
benchmarks.torch_timesnet with its keys renamed to TSLib's) has every parameter and running
statistic set at random, is saved with torch.save as TSLib's run.py saves it, converted with
`load_checkpoint(path, **flags)`, and compared in eval mode: max |difference| <= 1e-5 * max
|output|. The refusals are checked by the name they give. Tests with torch skip without it.
"""

import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_tsembed import tslib, tslib_data
from tf_tsembed.models import MODELS

ROOT = pathlib.Path(__file__).resolve().parent.parent
ETTH1 = ROOT.parent / "shared" / "data" / "ETT-small" / "ETTh1.csv"
FLAGS = dict(
    task_name="long_term_forecast", seq_len=32, label_len=16, pred_len=16, enc_in=3, dec_in=3,
    c_out=3, d_model=16, n_heads=4, d_ff=24, e_layers=2, d_layers=1, top_k=3, num_kernels=3,
)  # fmt: skip
CONVERTED = ("TimesNet", "iTransformer", "PatchTST", "Transformer")


def _torch():
    return pytest.importorskip("torch")


def _reference(name, flags, seed=0):
    """`(eval-mode module, forward(x_enc, x_mark_enc, x_dec, x_mark_dec), TSLib state_dict)`,
    every floating entry but the sinusoid tables drawn at random."""
    torch = _torch()
    from benchmarks import torch_timesnet, torch_tslib

    torch.manual_seed(seed)
    if name == "TimesNet":
        module = torch_timesnet.TimesNet(
            flags["seq_len"], flags["pred_len"], flags["enc_in"], 4,
            d_model=flags["d_model"], d_ff=flags["d_ff"], e_layers=flags["e_layers"],
            dropout=0.1, top_k=flags["top_k"], num_kernels=flags["num_kernels"], padding="zeros",
        )  # fmt: skip
        forward = lambda x, m, xd, md: module(x, m)  # noqa: E731
    else:
        module = torch_tslib.build(name, **flags)
        forward = module
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for key, tensor in module.state_dict().items():
            if not tensor.is_floating_point() or key.endswith(("pe", "position")):
                continue
            value = torch.randn(tensor.shape, generator=generator) * 0.3
            tensor.copy_(value.abs() + 0.5 if key.endswith("running_var") else value)
    module.eval()
    if name == "TimesNet":
        return module, forward, torch_timesnet.tslib_state_dict(module)
    return module, forward, dict(module.state_dict())


def _inputs(flags, batch=3, seed=2):
    rng = np.random.default_rng(seed)
    decoder = flags["label_len"] + flags["pred_len"]
    return [
        rng.normal(size=(batch, flags["seq_len"], flags["enc_in"])).astype("float32"),
        (rng.random((batch, flags["seq_len"], 4)) - 0.5).astype("float32"),
        rng.normal(size=(batch, decoder, flags["dec_in"])).astype("float32"),
        (rng.random((batch, decoder, 4)) - 0.5).astype("float32"),
    ]


def _compare(name, flags, state_path, forward, inputs):
    torch = _torch()
    model = tslib.load_checkpoint(state_path, model=name, **flags)
    with torch.no_grad():
        expected = forward(*(torch.from_numpy(x) for x in inputs)).numpy()
    actual = model(inputs).numpy()
    assert actual.shape == expected.shape == (len(inputs[0]), flags["pred_len"], flags["c_out"])
    difference = np.abs(actual - expected).max()
    scale = np.abs(expected).max()
    print(f"{name}: max |difference| {difference:.3g}, max |output| {scale:.3g}")
    assert difference <= 1e-5 * scale, (difference, scale)
    return model


@pytest.mark.parametrize("name", CONVERTED)
def test_checkpoint_converts_to_tslibs_forward(name, tmp_path):
    torch = _torch()
    _, forward, state = _reference(name, FLAGS)
    path = tmp_path / "checkpoint.pth"
    torch.save(state, path)
    _compare(name, FLAGS, path, forward, _inputs(FLAGS))


@pytest.mark.e2e
@pytest.mark.parametrize("name", CONVERTED)
def test_etth1_window(name, tmp_path):
    if not ETTH1.exists():
        pytest.skip(f"{ETTH1} is not there")
    torch = _torch()
    from tf_tsembed.timefeatures import time_features

    flags = dict(FLAGS, enc_in=7, dec_in=7, c_out=7, seq_len=96, label_len=48, pred_len=24)
    rows = np.genfromtxt(ETTH1, delimiter=",", skip_header=1, dtype=str, max_rows=400)
    values = rows[:, 1:].astype("float32")
    marks = time_features(rows[:, 0], freq="h")
    start = 200
    end = start + flags["seq_len"]
    decoder = slice(end - flags["label_len"], end + flags["pred_len"])
    x_dec = values[decoder].copy()
    x_dec[flags["label_len"] :] = 0  # TSLib's dec_inp
    inputs = [values[start:end], marks[start:end], x_dec, marks[decoder]]
    inputs = [np.ascontiguousarray(x[None], "float32") for x in inputs]
    _, forward, state = _reference(name, flags)
    path = tmp_path / "checkpoint.pth"
    torch.save(state, path)
    _compare(name, flags, path, forward, inputs)


def test_dataparallel_prefix_and_tensor_mapping():
    _, forward, state = _reference("iTransformer", FLAGS)
    prefixed = {f"module.{key}": value for key, value in state.items()}
    _compare("iTransformer", FLAGS, prefixed, forward, _inputs(FLAGS))


# --- refusals ---------------------------------------------------------------------------------


def _numpy_state(name, flags):
    rng = np.random.default_rng(0)
    shapes = tslib.checkpoint_shapes(dict(flags, model=name))
    return {key: rng.normal(size=shape).astype("float32") for key, shape in shapes.items()}


def test_missing_unexpected_and_misshaped_keys_are_named():
    state = _numpy_state("Transformer", FLAGS)
    del state["decoder.norm.bias"]
    state["decoder.extra.weight"] = np.zeros(3)
    state["encoder.norm.weight"] = np.zeros(5)
    with pytest.raises(ValueError) as raised:
        tslib.load_checkpoint(state, model="Transformer", **FLAGS)
    message = str(raised.value)
    assert "missing keys: ['decoder.norm.bias']" in message
    assert "unexpected keys: ['decoder.extra.weight']" in message
    assert (
        "the checkpoint's encoder.norm.weight has shape (5,): d_model 5; "
        "the flags give --d_model 16" in message
    )


def test_flags_against_the_checkpoints_shapes():
    state = _numpy_state("Transformer", FLAGS)
    with pytest.raises(
        ValueError,
        match=r"tokenConv.weight has shape \(16, 3, 3\): d_model 16, enc_in 3; "
        r"the flags give --enc_in 8",
    ):
        tslib.load_checkpoint(state, model="Transformer", **dict(FLAGS, enc_in=8))
    with pytest.raises(
        ValueError, match="the checkpoint has 2 indices for e_layers .*the flags give --e_layers 3"
    ):
        tslib.load_checkpoint(state, model="Transformer", **dict(FLAGS, e_layers=3))
    state = _numpy_state("TimesNet", FLAGS)
    with pytest.raises(
        ValueError,
        match=r"predict_linear.weight has shape \(48, 32\): seq_len \+ pred_len 48, seq_len 32; "
        r"the flags give seq_len \+ pred_len = 56 \(--seq_len 32, --pred_len 24\)",
    ):
        tslib.load_checkpoint(state, model="TimesNet", **dict(FLAGS, pred_len=24))
    with pytest.raises(ValueError, match="3 indices for num_kernels .*--num_kernels 2"):
        tslib.load_checkpoint(state, model="TimesNet", **dict(FLAGS, num_kernels=2))
    with pytest.raises(
        ValueError,
        match=r"embed.weight has shape \(16, 4\): d_model 16, num_time_features 4; "
        r"the flags give --freq 't' \(5 time features\)",
    ):
        tslib.load_checkpoint(state, model="TimesNet", **dict(FLAGS, freq="t"))
    state = _numpy_state("PatchTST", FLAGS)
    with pytest.raises(
        ValueError,
        match=r"head.linear.weight has shape \(16, 64\).*d_model \* patch_num = 80 "
        r"\(--d_model 16, patch_num 5 from --seq_len 40\)",
    ):
        tslib.load_checkpoint(state, model="PatchTST", **dict(FLAGS, seq_len=40))  # fmt: skip


def test_a_positional_table_other_than_the_sinusoid_is_refused():
    state = _numpy_state("PatchTST", FLAGS)
    state["patch_embedding.position_embedding.pe"] = np.zeros((1, 5000, 16), "float32")
    with pytest.raises(ValueError, match="position_embedding.pe is not TSLib's fixed sinusoid"):
        tslib.load_checkpoint(state, model="PatchTST", **FLAGS)


@pytest.mark.parametrize(
    "flags, excerpt",
    [
        ("--model TimesNet --bogus 1", r"unknown run.py flags \['--bogus', '1'\]"),
        ("--model TimesNet --task_name classification", "--task_name 'classification' is not"),
        ("--model Transformer --embed fixed", "--embed 'fixed' is not converted"),
        ("--model Transformer --output_attention", "--output_attention is not converted"),
        ("--model Autoformer", r"--model 'Autoformer' is not a tf_tsembed model; known: \["),
    ],
)  # fmt: skip
def test_flag_refusals(flags, excerpt):
    with pytest.raises(ValueError, match=excerpt):
        tslib.parse_run_flags(flags)


def test_every_model_has_a_weight_plan_and_others_are_refused():
    assert set(tslib.WEIGHT_PLANS) == set(MODELS)
    with pytest.raises(ValueError, match="--model 'Autoformer' is not a tf_tsembed model"):
        tslib.parse_run_flags("--model Autoformer")


def test_run_line_with_ignored_flags_and_defaults():
    line = (
        "python -u run.py --task_name long_term_forecast --is_training 1 --root_path "
        "./dataset/ETT-small/ --data_path ETTh1.csv --model_id ETTh1_96_96 --model TimesNet "
        "--data ETTh1 --features M --seq_len 96 --label_len 48 --pred_len 96 --e_layers 2 "
        "--d_layers 1 --factor 3 --enc_in 7 --dec_in 7 --c_out 7 --d_model 16 --d_ff 32 \\\n"
        "  --des 'Exp' --itr 1 --top_k 5 --use_amp --train_epochs 3 --patience 1"
    )
    name, config, extras = tslib.parse_run_flags(line)
    assert name == "TimesNet"
    assert (config.seq_len, config.d_model, config.d_ff, config.factor) == (96, 16, 32, 3)
    assert (config.n_heads, config.num_kernels, config.freq, config.dropout) == (8, 6, "h", 0.1)
    assert extras == dict(
        data="ETTh1", root_path="./dataset/ETT-small/", data_path="ETTh1.csv", features="M",
        target="OT",
    )  # fmt: skip


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    torch = _torch()
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "checkpoint.pth"
    torch.save({"projection.weight": Payload()}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        tslib.load_checkpoint(path, model="iTransformer", **FLAGS)
    assert not marker.exists()


_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None
import tf_tsembed.tslib as tslib
try:
    tslib.load_checkpoint("checkpoint.pth", model="TimesNet")
except ImportError as error:
    print(error)
"""


@pytest.mark.slow
def test_imports_without_torch_and_says_what_to_install():
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH], cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pip install tf_tsembed[torch]" in result.stdout


# --- command line -----------------------------------------------------------------------------


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "tf_tsembed.tslib", *args], cwd=ROOT, capture_output=True,
        text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300,
    )  # fmt: skip


def _custom_csv(directory, rows=600, seed=3):
    """A Dataset_Custom file: hourly `date`, the target `OT` first (TSLib moves it last), then
    `a`, `b` on scales far from 1; returns `(path, dates, values in the file's order)`."""
    rng = np.random.default_rng(seed)
    dates = np.datetime64("2021-03-01T00", "h") + np.arange(rows)
    values = rng.normal(size=(rows, 3)) * [5.0, 0.5, 40.0] + [20.0, -3.0, 100.0]
    path = pathlib.Path(directory) / "series.csv"
    with open(path, "w") as file:
        file.write("date,OT,a,b\n")
        for date, row in zip(dates, values):
            text = str(date).replace("T", " ") + ":00:00"
            file.write(text + "," + ",".join(repr(float(v)) for v in row) + "\n")
    return path, dates, values


@pytest.mark.slow
def test_cli_help_conversion_and_refusal(tmp_path, capsys):
    torch = _torch()
    result = _cli("--help")
    assert result.returncode == 0 and "--checkpoint" in result.stdout and "--top_k" in result.stdout
    _, _, state = _reference("iTransformer", FLAGS)
    path = tmp_path / "checkpoint.pth"
    torch.save(state, path)
    csv_path, _, _ = _custom_csv(tmp_path)
    data = ["--data", "custom", "--root_path", str(tmp_path), "--data_path", csv_path.name]
    flags = [f"--{k}={v}" for k, v in FLAGS.items()] + data
    export = tmp_path / "exported"
    result = _cli(
        "--model", "iTransformer", *flags, "--checkpoint", str(path), "--export_dir", str(export)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("iTransformer: ") and "parameters" in result.stdout
    assert (export / "saved_model.pb").exists()
    # The refusals in-process (the subprocess above showed the one-line form).
    code, last = _main(
        capsys, "--model", "iTransformer", *flags, "--checkpoint", str(path),
        "--export_dir", str(export),
    )  # fmt: skip
    assert code == 2
    assert last == [f"error: --export_dir {str(export)!r} exists: pass --overwrite to replace it"]
    code, last = _main(
        capsys, "--model", "iTransformer", *flags, "--d_model", "8", "--checkpoint", str(path)
    )
    assert code == 2 and "the flags give --d_model 8" in last[0]
    # --features S gives one column: the checkpoint's --enc_in 3 is refused naming both.
    code, last = _main(
        capsys, "--model", "iTransformer", *flags, "--features", "S", "--checkpoint", str(path),
        "--export_dir", str(tmp_path / "single"),
    )  # fmt: skip
    assert code == 2 and "--enc_in 3 but --data custom --features S gives 1 columns" in last[0]
    assert not (tmp_path / "single").exists()


def _served_against_keras(name, flags, checkpoint, export_dir, csv_path, dates, values, order):
    """The SavedModel's serving_default on the file's last seq_len rows (raw values, int64
    timestamps) against the Keras model on the same rows scaled with the training rows'
    StandardScaler (`values[:train]` reordered by `order`), TSLib's time features and dec_inp,
    unscaled: max |difference| <= 1e-5 * max |forecast|."""

    from tf_tsembed.timefeatures import time_features

    seq_len, label_len, pred_len = flags["seq_len"], flags["label_len"], flags["pred_len"]
    train = flags.pop("train_rows")
    values = values if order is None else values[:, order]
    mean, scale = values[:train].mean(axis=0), values[:train].std(axis=0)
    window = values[-seq_len:]
    stamps = dates[-seq_len:].astype("datetime64[s]")
    signature = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    served = signature(
        values=tf.constant(window[None], tf.float32),
        timestamps=tf.constant(stamps.astype(np.int64)[None]),
    )
    future = stamps[-1] + (stamps[-1] - stamps[-2]) * np.arange(1, pred_len + 1)
    np.testing.assert_array_equal(served["timestamps"].numpy()[0], future.astype(np.int64))
    model = tslib.load_checkpoint(checkpoint, model=name, **flags)
    scaled = ((window - mean) / scale).astype("float32")
    x_dec = np.concatenate([scaled[-label_len:], np.zeros((pred_len, scaled.shape[1]))])
    decoder_dates = np.concatenate([stamps[-label_len:], future])
    inputs = [scaled, time_features(stamps, "h"), x_dec, time_features(decoder_dates, "h")]
    expected = model([np.asarray(x[None], "float32") for x in inputs]).numpy()[0]
    expected = expected * scale + mean
    forecast = served["forecast"].numpy()[0]
    assert forecast.shape == expected.shape == (pred_len, values.shape[1])
    difference = np.abs(forecast - expected).max()
    print(f"{name}: served vs Keras max |difference| {difference:.3g}")
    assert difference <= 1e-5 * np.abs(expected).max(), difference


@pytest.mark.slow
def test_cli_export_serves_raw_values_with_the_training_rows_scaler(tmp_path, capsys):
    """Dataset_Custom: columns [a, b, OT], the scaler fit on the first 70 % of the rows."""
    torch = _torch()
    _, _, state = _reference("iTransformer", FLAGS)
    checkpoint = tmp_path / "checkpoint.pth"
    torch.save(state, checkpoint)
    csv_path, dates, values = _custom_csv(tmp_path)
    export = tmp_path / "served"
    flags = [f"--{k}={v}" for k, v in FLAGS.items()]
    code = tslib.main([
        "--model", "iTransformer", *flags, "--data", "custom", "--root_path", f"{tmp_path}/",
        "--data_path", csv_path.name, "--checkpoint", str(checkpoint), "--export_dir", str(export),
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err[-2000:]
    metadata = json.loads((export / "assets" / "forecaster.json").read_text())
    assert metadata["names_in"] == ["a", "b", "OT"]
    flags = dict(FLAGS, train_rows=int(len(values) * 0.7))
    _served_against_keras(
        "iTransformer", flags, checkpoint, export, csv_path, dates, values, [1, 2, 0]
    )


@pytest.mark.e2e
def test_cli_export_of_etth1_serves_with_dataset_ett_hours_scaler(tmp_path):
    if not ETTH1.exists():
        pytest.skip(f"{ETTH1} is not there")
    torch = _torch()

    flags = dict(FLAGS, enc_in=7, dec_in=7, c_out=7, seq_len=96, label_len=48, pred_len=24)
    _, _, state = _reference("iTransformer", flags)
    checkpoint = tmp_path / "checkpoint.pth"
    torch.save(state, checkpoint)
    export = tmp_path / "served"
    result = _cli(
        "--model", "iTransformer", *[f"--{k}={v}" for k, v in flags.items()], "--data", "ETTh1",
        "--root_path", str(ETTH1.parent), "--data_path", ETTH1.name,
        "--checkpoint", str(checkpoint), "--export_dir", str(export),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    dates, names, values = tslib_data.read_csv(str(ETTH1))
    metadata = json.loads((export / "assets" / "forecaster.json").read_text())
    assert metadata["names_in"] == names  # Dataset_ETT_hour keeps the file's order
    flags["train_rows"] = 12 * 30 * 24
    _served_against_keras("iTransformer", flags, checkpoint, export, ETTH1, dates, values, None)


def _readme_section(title):
    text = (ROOT / "README.md").read_text()
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.e2e
def test_readme_from_tslib_to_tf_serving_runs_as_written(tmp_path):
    """Every line of the section's bash blocks, run verbatim with `bash -c` in a directory laid
    out as TSLib's: `checkpoint.pth` (a TimesNet of the line's flags, weights at random) and
    `dataset/ETT-small/ETTh1.csv` (the shared ETTh1, else a synthetic file of its layout)."""
    torch = _torch()
    section = _readme_section("From TSLib to TF Serving")
    commands = [
        line.strip()
        for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
        for line in block.splitlines()
        if line.strip()
    ]
    assert [command.split()[:3] for command in commands] == [
        ["python", "-m", "tf_tsembed.tslib"],
        ["saved_model_cli", "show", "--dir"],
        ["python", "-m", "examples.predict"],
    ]
    name, config, extras = tslib.parse_run_flags(
        commands[0].split("-m tf_tsembed.tslib ")[1].split(" --checkpoint")[0]
    )
    data_dir = tmp_path / "dataset" / "ETT-small"
    data_dir.mkdir(parents=True)
    if ETTH1.exists():
        shutil.copy(ETTH1, data_dir / "ETTh1.csv")
    else:
        rows = 20 * 30 * 24
        rng = np.random.default_rng(0)
        dates = np.datetime64("2016-07-01T00", "h") + np.arange(rows)
        values = np.cumsum(rng.normal(size=(rows, 7)), axis=0) + 10
        with open(data_dir / "ETTh1.csv", "w") as file:
            file.write("date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT\n")
            for date, row in zip(dates, values):
                file.write(
                    f"{str(date).replace('T', ' ')}:00:00,"
                    + ",".join(f"{v:.3f}" for v in row)
                    + "\n"
                )
    flags = {
        key: getattr(config, key)
        for key in (
            "seq_len",
            "pred_len",
            "enc_in",
            "d_model",
            "d_ff",
            "e_layers",
            "top_k",
            "num_kernels",
        )
    }
    flags.update(label_len=config.label_len, dec_in=config.dec_in, c_out=config.c_out)
    _, _, state = _reference(name, flags)
    torch.save(state, tmp_path / "checkpoint.pth")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    (shim / "python").chmod(0o755)
    path = os.pathsep.join([str(shim), os.path.dirname(sys.executable), os.environ["PATH"]])
    env = dict(os.environ, PATH=path, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    for command in commands:
        result = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, (command, result.stderr[-3000:])
    dates, names, _ = tslib_data.read_csv(str(data_dir / "ETTh1.csv"))
    forecast_dates, forecast_names, forecast = tslib_data.read_csv(str(tmp_path / "forecast.csv"))
    assert forecast_names == names and forecast.shape == (config.pred_len, 7)
    hour = np.timedelta64(1, "h")
    np.testing.assert_array_equal(forecast_dates, dates[-1] + hour * np.arange(1, 97))
    assert np.isfinite(forecast).all()


# --- a TimesNet trained in PyTorch (benchmarks/torch_timesnet_train.py), converted ------------


@pytest.mark.e2e
def test_a_trained_pytorch_timesnet_gives_its_test_errors_through_our_model(tmp_path):
    if not ETTH1.exists():
        pytest.skip(f"{ETTH1} is not there")
    _torch()
    from benchmarks import converted_timesnet

    windows = 200
    checkpoint, results = tmp_path / "checkpoint.pth", tmp_path / "torch.json"
    command = [sys.executable, "-m", "benchmarks.torch_timesnet_train", f"--csv={ETTH1}"]
    # A short training and the first test windows: the full run's figures are in
    # docs/reproducing.md; the equality is of the same forward, window by window.
    command += ["--seed=2022", "--epochs=1", "--steps_per_epoch=4", f"--test_windows={windows}"]
    command += [f"--checkpoint={checkpoint}", f"--json={results}"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    expected = json.loads(results.read_text())
    # Through the converted Keras model on TSLib's inputs, and through the served SavedModel
    # from the file's raw rows and their timestamps.
    result = converted_timesnet.test_errors(str(ETTH1), checkpoint, windows)
    print(f"PyTorch {expected['mse']:.8f} / {expected['mae']:.8f}, ours {result}")
    for mse, mae in result.values():
        assert mse == pytest.approx(expected["mse"], rel=1e-6)
        assert mae == pytest.approx(expected["mae"], rel=1e-6)


# --- what the command line refuses before it writes (each in-process) --------------------------


def _main(capsys, *args):
    code = tslib.main(list(args))
    return code, capsys.readouterr().err.strip().splitlines()[-1:]


@pytest.fixture
def saved_checkpoint(tmp_path):
    torch = _torch()
    _, _, state = _reference("iTransformer", FLAGS)
    folder = tmp_path / "run1"
    folder.mkdir()
    torch.save(state, folder / "checkpoint.pth")
    csv_path, _, _ = _custom_csv(tmp_path)
    flags = [f"--{k}={v}" for k, v in FLAGS.items()] + ["--model", "iTransformer"]
    flags += ["--data", "custom", "--root_path", str(tmp_path), "--data_path", csv_path.name]
    return folder / "checkpoint.pth", flags


def test_cli_refuses_an_export_dir_that_is_or_holds_an_input(saved_checkpoint, capsys):
    checkpoint, flags = saved_checkpoint
    for export_dir in (checkpoint.parent, checkpoint, checkpoint.parent.parent):
        code, last = _main(
            capsys, *flags, "--checkpoint", str(checkpoint), "--export_dir", str(export_dir),
            "--overwrite",
        )  # fmt: skip
        assert code == 2 and "is or holds the input" in last[0], last
    assert checkpoint.exists() and (checkpoint.parent.parent / "series.csv").exists()
    code, last = _main(capsys, *flags, "--checkpoint", str(checkpoint), "--export_dir", "")
    assert code == 2 and last == ["error: --export_dir is empty; give a directory path"]


def test_cli_never_replaces_a_folder_of_other_files(saved_checkpoint, tmp_path, capsys):
    checkpoint, flags = saved_checkpoint
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    code, last = _main(
        capsys, *flags, "--checkpoint", str(checkpoint), "--export_dir", str(folder), "--overwrite"
    )
    assert code == 2 and "not an earlier output (it has no saved_model.pb)" in last[0], last
    assert (folder / "notes.txt").read_text() == "keep me"
    code, last = _main(
        capsys, *flags, "--checkpoint", str(checkpoint), "--export_dir",
        str(tmp_path / "series.csv" / "served"),
    )  # fmt: skip
    assert code == 2 and "is not a directory" in last[0] and "Traceback" not in last[0]


def test_unusable_weights_and_wrapped_or_unreadable_checkpoints_are_refused(tmp_path):
    torch = _torch()
    state = _numpy_state("iTransformer", FLAGS)
    key = "projection.weight"
    for value, message in (
        (np.full_like(state[key], np.nan), f"{key} holds {state[key].size} non-finite value"),
        (state[key].astype(np.int64), f"{key} must hold floating-point weights; it has int64"),
    ):
        with pytest.raises(ValueError, match=message):
            tslib.load_checkpoint({**state, key: value}, model="iTransformer", **FLAGS)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": {k: torch.from_numpy(v) for k, v in state.items()}, "epoch": 3}, wrapped)
    with pytest.raises(ValueError, match=r"top-level keys \['model', 'epoch'\] hold mappings"):
        tslib.load_checkpoint(wrapped, model="iTransformer", **FLAGS)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot be read as a torch checkpoint: EOFError"):
        tslib.load_checkpoint(empty, model="iTransformer", **FLAGS)
    with pytest.raises(ValueError, match="is a directory; give TSLib's checkpoint.pth"):
        tslib.load_checkpoint(tmp_path, model="iTransformer", **FLAGS)
