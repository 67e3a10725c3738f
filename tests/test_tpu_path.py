"""What a TPU needs, checked without one: the example's TPU branch, and XLA programs with static
shapes, no host round trips and the batch as a run-time input (not baked in, not recompiled)."""

import os
import re
import subprocess
import sys
import textwrap

import _models
import numpy as np
import pytest
import tensorflow as tf

from examples import distribute, forecaster
from tf_tsembed.models import ForecastConfig

keras = tf.keras
C_IN, LENGTH, D_MODEL, PRED_LEN, BATCH = 3, 24, 8, 6, 4
TESTS = os.path.dirname(os.path.abspath(__file__))

# Ops that leave the device or call code XLA does not own: TPUs have no host fallback for them.
_HOST_OPCODES = {"custom-call", "send", "send-done", "recv", "recv-done", "infeed", "outfeed"}
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%\S+\s+=\s+\S.*?\s([a-z][a-z0-9-]*)\(", re.MULTILINE)
_ENTRY = re.compile(r"^ENTRY %\S+ \((.*)\) -> ", re.MULTILINE)


def _example_model():
    """The main job's model as it trains: TSLib's four inputs, the target's forecast out."""
    config = ForecastConfig(
        seq_len=LENGTH, label_len=0, pred_len=PRED_LEN, enc_in=C_IN, dec_in=C_IN, c_out=C_IN,
        embed="fixed", d_model=D_MODEL, n_heads=2, e_layers=1, d_ff=16,
    )  # fmt: skip
    assert config.num_marks == _models.NUM_MARKS
    return forecaster.target_only(forecaster.MainJobForecaster(config))


def _default_layers_model():
    return _models.default_layers_model(C_IN, LENGTH, D_MODEL, PRED_LEN)


IDS = ["example", "default_layers"]
MODELS = pytest.mark.parametrize("build", [_example_model, _default_layers_model], ids=IDS)

HLO_DTYPES = {"float32": "f32", "mixed_bfloat16": "bf16"}


def _batch(model, seed=0):
    """`(inputs, targets)` for `model`: values and marks, and for TSLib's four inputs the
    decoder's too (zeros and the next PRED_LEN steps' marks)."""
    rng = np.random.default_rng(seed)
    values = tf.constant(rng.normal(size=(BATCH, LENGTH, C_IN)).astype("float32"))
    low, high = np.array([1, 1, 0, 0]), np.array([13, 29, 7, 24])  # month, day, weekday, hour
    marks = rng.integers(low, high, size=(BATCH, LENGTH + PRED_LEN, 4)).astype("int32")
    inputs = [values, tf.constant(marks[:, :LENGTH])]
    if len(model.inputs) == 4:
        inputs += [tf.zeros((BATCH, PRED_LEN, C_IN)), tf.constant(marks[:, LENGTH:])]
    targets = tf.constant(rng.normal(size=(BATCH, PRED_LEN)).astype("float32"))
    return inputs, targets


def _train_step(model, name="train_step"):
    """A jit-compiled Adam step on `model`; `name` names it in TF's compilation log."""
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)

    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(inputs, training=True) - targets))
        optimizer.apply_gradients(
            zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        )
        return loss

    train_step.__name__ = name
    return tf.function(train_step, jit_compile=True)


def _assert_tpu_ready(hlo, dtype):
    """No host ops; static shapes; values and marks of the batch are parameters of the program."""
    opcodes = set(_INSTRUCTION.findall(hlo))
    assert {"parameter", "dot"} <= opcodes, sorted(opcodes)  # the parse sees the instructions
    assert not opcodes & _HOST_OPCODES, sorted(opcodes & _HOST_OPCODES)
    assert not re.search(r"\[[^\]]*(<=|\?)", hlo), "dynamic dimension in the HLO"
    (entry_parameters,) = _ENTRY.findall(hlo)
    assert f"f32[{BATCH},{LENGTH},{C_IN}]" in entry_parameters, entry_parameters
    assert f"s32[{BATCH},{LENGTH},4]" in entry_parameters, entry_parameters
    assert (
        f"{dtype}[{BATCH},{LENGTH},{D_MODEL}]" in hlo
    )  # the embedding is computed in the compute dtype


def test_tpu_branch_without_a_tpu_fails_with_a_clear_message():
    with pytest.raises(
        RuntimeError, match=r"--strategy tpu: no TPU found \(--tpu=''\).*--tpu local"
    ):
        distribute.make_strategy("tpu", tpu="")


@MODELS
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_compiled_forward_is_tpu_ready(build, policy, mixed_policy):
    mixed_policy(policy)
    model = build()
    forward = tf.function(lambda inputs: model(inputs, training=False), jit_compile=True)
    inputs, _ = _batch(model)
    _assert_tpu_ready(forward.experimental_get_compiler_ir(inputs)(stage="hlo"), HLO_DTYPES[policy])


@MODELS
def test_compiled_train_step_is_tpu_ready(build):
    model = build()
    train_step = _train_step(model)
    _assert_tpu_ready(train_step.experimental_get_compiler_ir(*_batch(model))(stage="hlo"), "f32")


_COMPILE_COUNT_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import test_tpu_path as t
    for name in ("example", "default_layers"):
        model = getattr(t, "_" + name + "_model")()
        step = t._train_step(model, name=name + "_step")
        for seed in range(3):
            step(*t._batch(model, seed))
    """
)


@pytest.fixture(scope="module")
def compile_counts():
    """XLA compilations of each model's train step over 3 batches of other values, from TF's log."""
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="0",
        TF_CPP_VMODULE="device_compilation_profiler=1",
        CUDA_VISIBLE_DEVICES="",
        PYTHONPATH=os.path.dirname(TESTS),
    )
    result = subprocess.run(
        [sys.executable, "-c", _COMPILE_COUNT_SCRIPT.format(tests=TESTS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    counts = {}
    # "device_compilation_profiler.cc:113] Compiled __inference_example_step_123 2 times, ..."
    for name, count in re.findall(
        r"Compiled __inference_(\w+?)_step_\d+ (\d+) times", result.stderr
    ):
        counts[name] = max(counts.get(name, 0), int(count))
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("name", ["example", "default_layers"])
def test_compiled_train_step_compiles_once_for_new_batches(compile_counts, name):
    assert compile_counts[name] == 1, compile_counts
