"""The benchmark commands run and write what they promise; the speed work keeps TokenEmbedding exact
and free of retracing and recompiling. No timing is asserted: timings are reported, not tested."""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import reference
from tf_tsembed import DataEmbedding, PositionalEmbedding, TokenEmbedding
from tf_tsembed import _compile, _precision, _sinusoid, token_embedding

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUIRED_KEYS = {"layer", "shape", "dtype", "jit", "device", "median_ms", "floor_ms", "baseline_ms"}


def _run(args, extra_env=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(extra_env or {}))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_forward_cli_writes_table_and_json_with_required_keys(tmp_path):
    path = tmp_path / "forward.json"
    result = _run(
        [
            "-m", "benchmarks.forward", "--layers=TokenEmbedding,PositionalEmbedding", "--shapes=2x5x3:4",
            "--dtypes=float32,bfloat16", "--reps=2", "--warmup=1", "--sweep_shape=1x3x2:4", f"--json={path}",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
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
    assert {tuple(r["shape"]) for r in records if r["sweep"] == "batch"} == {(1, 3, 2, 4), (2, 3, 2, 4), (4, 3, 2, 4), (8, 3, 2, 4)}


@pytest.mark.slow
def test_train_step_cli_writes_json(tmp_path):
    path = tmp_path / "train.json"
    result = _run(
        [
            "-m", "benchmarks.train_step", "--batch=2", "--length=8", "--channels=3", "--d_model=8",
            "--heads=2", "--encoder_layers=1", "--dtypes=float32", "--reps=1", "--warmup=1", f"--json={path}",
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
            "-m", "benchmarks.targets", "--runs=2", "--reps=1", "--warmup=1", "--shape=2x5x3:4",
            "--position_batch=3", f"--json={path}",
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
            expected = row["median"] >= row["limit"] if row["at_least"] else row["median"] <= row["limit"]
            assert row["met"] == expected, row


@pytest.mark.slow
def test_forward_cli_rejects_bad_shapes_naming_the_flag():
    result = _run(["-m", "benchmarks.forward", "--shapes=32x96x7"])
    assert result.returncode != 0
    assert "--shapes" in result.stderr and "'32x96x7'" in result.stderr and "BxLxC:D" in result.stderr


def _token_layer(c_in, d_model, kernel_size=3):
    layer = TokenEmbedding(c_in, d_model, kernel_size=kernel_size)
    layer.build((None, None, c_in))
    return layer


def test_token_embedding_does_not_retrace_eagerly():
    layer = _token_layer(2, 4)
    cache = token_embedding.compiled_circular_conv1d.eager_functions
    layer(np.zeros((3, 5, 2), "float32"))
    functions = list(cache.values())
    for _ in range(3):
        layer(np.ones((3, 5, 2), "float32"))
    assert set(map(id, cache.values())) == set(map(id, functions))
    layer(np.ones((3, 6, 2), "float32"))
    layer(np.ones((3, 5, 2), "float32"))
    assert len(set(map(id, cache.values())) - set(map(id, functions))) == 1


def test_eager_compiled_functions_are_bounded_least_recently_used_first():
    layer = _token_layer(2, 4)
    cache = token_embedding.compiled_circular_conv1d.eager_functions
    lengths = range(1, _compile.EAGER_CACHE_SIZE + 9)
    for length in lengths:
        layer(np.ones((1, length, 2), "float32"))
    assert len(cache) == _compile.EAGER_CACHE_SIZE
    shapes = [key[0][0] for key in cache]
    assert shapes[-1] == (1, lengths[-1], 2) and (1, 1, 2) not in shapes
    x = np.random.default_rng(0).normal(size=(1, 1, 2)).astype("float32")
    np.testing.assert_allclose(layer(x), reference.circular_conv1d(x, *layer.get_weights()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_token_and_positional_embedding_do_not_retrace_in_tf_function(jit_compile):
    token = _token_layer(2, 4)
    position = PositionalEmbedding(max_len=16, d_model=4)
    traces = []

    @tf.function(jit_compile=jit_compile)
    def embed(x):
        traces.append(x.shape)
        return token(x) + position(x)

    inner = token_embedding.compiled_circular_conv1d.in_graphs
    embed(tf.zeros((3, 5, 2)))
    inner_traces = inner.experimental_get_tracing_count()
    for value in (1.0, 2.0, 3.0):
        embed(tf.fill((3, 5, 2), value))
    assert len(traces) == 1
    assert inner.experimental_get_tracing_count() == inner_traces


def test_positional_embedding_builds_its_rows_once_when_called_eagerly():
    layer = PositionalEmbedding(max_len=37, d_model=6)
    layer(np.zeros((1, 5, 2), "float32"))
    misses = _sinusoid._host_rows.cache_info().misses
    for batch in (1, 4, 1):
        layer(np.zeros((batch, 5, 2), "float32"))
    assert _sinusoid._host_rows.cache_info().misses == misses


_RECOMPILE_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    from tf_tsembed import TokenEmbedding

    layer = TokenEmbedding(3, 4)
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32"))
    layer(x)
    optimizer = tf.keras.optimizers.SGD(0.1)
    optimizer.build(layer.trainable_variables)

    @tf.function(jit_compile=True)
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(layer(x) ** 2)
        gradients = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply_gradients(zip(gradients, layer.trainable_variables))
        return loss

    for _ in range(4):
        train_step(x).numpy()
    """
)


@pytest.mark.slow
def test_jit_compiled_train_step_compiles_once(tmp_path):
    """XLA writes one module per compilation: updated weights must not trigger a new one.

    A compiled function nested inside the jit-compiled step made XLA take the weights as
    compile-time constants and recompile the step after every update.
    """
    dump_dir = tmp_path / "dump"
    result = _run(["-c", _RECOMPILE_SCRIPT], {"XLA_FLAGS": f"--xla_dump_to={dump_dir}"})
    assert result.returncode == 0, result.stderr[-3000:]
    modules = [n for n in os.listdir(dump_dir) if "train_step" in n and n.endswith("before_optimizations.txt")]
    assert len(modules) == 1, modules


# (batch, length, c_in, kernel_size): c_in * kernel_size on both sides of the CPU threshold between
# the stacked matmul and the wrapped convolution, with L = 1 and L < kernel_size.
FORMULATION_SHAPES = [(2, 1, 50, 3), (2, 2, 50, 5), (3, 9, 60, 3), (2, 9, 4, 3), (2, 2, 4, 5)]


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("batch,length,c_in,kernel_size", FORMULATION_SHAPES)
def test_both_formulations_match_reference(batch, length, c_in, kernel_size, jit_compile, use_bias):
    assert token_embedding._CPU_MATMUL_MAX_CONTRACTION < 50 * 3 and 4 * 5 < token_embedding._CPU_MATMUL_MAX_CONTRACTION
    layer = TokenEmbedding(c_in, 6, kernel_size=kernel_size, use_bias=use_bias, jit_compile=jit_compile)
    x = np.random.default_rng(length).normal(size=(batch, length, c_in)).astype("float32")
    out = layer(x)
    np.testing.assert_allclose(out, reference.circular_conv1d(x, *layer.get_weights()), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("c_in", [4, 50])
def test_both_formulations_take_a_dynamic_length(c_in):
    layer = _token_layer(c_in, 5)
    embed = tf.function(layer, input_signature=[tf.TensorSpec((None, None, c_in), tf.float32)])
    for length in (1, 7):
        x = np.random.default_rng(length).normal(size=(2, length, c_in)).astype("float32")
        np.testing.assert_allclose(embed(x), reference.circular_conv1d(x, *layer.get_weights()), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("c_in", [4, 50])
def test_bfloat16_matches_float32_by_value_on_both_formulations(c_in):
    x = np.random.default_rng(0).normal(size=(2, 9, c_in)).astype("float32")
    reduced = TokenEmbedding(c_in, 8, dtype="mixed_bfloat16")
    out = reduced(x)
    assert out.dtype == tf.bfloat16
    expected = reference.circular_conv1d(x, *reduced.get_weights())
    scale = np.abs(expected).max()
    np.testing.assert_allclose(tf.cast(out, tf.float32), expected, rtol=2e-2, atol=2e-2 * scale)


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("c_in", [4, 50])
def test_mixed_bfloat16_on_cpu_is_the_float32_output_rounded_once(c_in, jit_compile):
    """The documented CPU contract, which also keeps float32 -> bfloat16 conversions out of the
    stacking gather: weights rounded to bfloat16, float32 math on the unrounded inputs, one
    rounding at the end."""
    x = np.random.default_rng(c_in).normal(size=(2, 9, c_in)).astype("float32")
    reduced = TokenEmbedding(c_in, 8, jit_compile=jit_compile, dtype="mixed_bfloat16")
    reduced(x)
    layer = TokenEmbedding(c_in, 8, jit_compile=jit_compile)
    layer(x)
    layer.set_weights([tf.cast(tf.cast(w, tf.bfloat16), tf.float32) for w in reduced.get_weights()])
    expected = tf.cast(layer(x), tf.bfloat16).numpy()
    for call in (reduced, tf.function(reduced), tf.function(reduced, jit_compile=True)):
        np.testing.assert_array_equal(call(x).numpy(), expected)


def test_mixed_bfloat16_on_accelerators_feeds_the_matrix_unit_bfloat16(monkeypatch):
    """GPU and TPU keep 16-bit operands: the dot XLA receives takes and gives bfloat16."""
    monkeypatch.setattr(_precision, "on_accelerator", lambda tensor: True)
    assert _precision.math_dtype("bfloat16", tf.zeros(())) == tf.bfloat16
    layer = TokenEmbedding(4, 8, dtype="mixed_bfloat16")
    x = tf.zeros((2, 9, 4))
    hlo = tf.function(layer, jit_compile=True).experimental_get_compiler_ir(x)(stage="hlo")
    dots = re.findall(r"= (\w+)\[[\d,]*\]\S* dot\(", hlo)
    assert dots == ["bf16"], dots


def test_precision_follows_the_device_the_op_runs_on(monkeypatch):
    """A layer pinned to the CPU of a GPU host computes as on CPU; unplaced ops follow the host."""
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: ["fake"] if kind == "GPU" else [])
    with tf.Graph().as_default():
        unplaced = tf.constant(1.0)
        with tf.device("/device:CPU:0"):
            on_cpu = tf.constant(1.0)
        with tf.device("/device:GPU:0"):
            on_gpu = tf.constant(1.0)
    assert _precision.math_dtype("bfloat16", on_cpu) == tf.float32
    assert _precision.math_dtype("bfloat16", on_gpu) == tf.bfloat16
    assert _precision.math_dtype("bfloat16", unplaced) == tf.bfloat16
    assert _precision.math_dtype("float32", on_gpu) == tf.float32


@pytest.mark.parametrize("c_in", [4, 50])
def test_compiled_hlo_has_no_host_ops(c_in):
    """What XLA receives on any device: no host transfers or custom calls, only standard ops."""
    kernel = tf.zeros((3, c_in, 8))
    hlo = token_embedding.compiled_circular_conv1d.in_graphs.experimental_get_compiler_ir(
        tf.zeros((2, 9, c_in)), kernel, tf.zeros((8,)), None
    )(stage="hlo")
    assert ("dot(" in hlo) == (c_in == 4) and ("convolution(" in hlo) == (c_in == 50)
    for op in ("custom-call", "send(", "recv(", "outfeed", "infeed", "host"):
        assert op not in hlo.lower(), op


_HLO_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%\S+ = \w+\[([\d,]*)\]\S* (\S+?)\(", re.MULTILINE)


def _full_size_ops(hlo, size):
    """Opcodes of the ENTRY instructions whose output has `size` elements (bitcasts aside): the
    buffers a compiled call writes at full size."""
    entry = hlo[hlo.index("\nENTRY") :]
    found = []
    for dims, opcode in _HLO_INSTRUCTION.findall(entry):
        if opcode not in ("bitcast", "parameter") and int(np.prod([int(d) for d in dims.split(",") if d])) == size:
            found.append(opcode)
    return found


@pytest.mark.parametrize("convention", ["tslib", "informer"])
def test_compiled_data_embedding_writes_the_output_once_after_the_matmul(convention):
    """The speed claims' structure under XLA: TokenEmbedding's matmul writes its output directly
    (the bias folded in), and DataEmbedding adds the calendar and position terms in ONE fused
    pass, with no full-size intermediate per term."""
    batch, length, d_model = 4, 24, 64
    x = tf.zeros((batch, length, 3))
    marks = tf.ones((batch, length, 4))
    data = DataEmbedding(3, d_model, embed_type="fixed", freq="h", dropout=0.0, convention=convention)
    token = TokenEmbedding(3, d_model, use_bias=convention == "informer")
    size = batch * length * d_model
    data_hlo = tf.function(lambda x, m: data(x, m), jit_compile=True).experimental_get_compiler_ir(x, marks)(
        stage="optimized_hlo"
    )
    token_hlo = tf.function(token, jit_compile=True).experimental_get_compiler_ir(x)(stage="optimized_hlo")
    assert _full_size_ops(token_hlo, size) == ["dot"]
    assert _full_size_ops(data_hlo, size) == ["dot", "fusion"]


@pytest.mark.slow
def test_serving_cli_reports_each_variant(tmp_path):
    path = tmp_path / "serving.json"
    result = _run(["-m", "benchmarks.serving", "--batch_sizes=2", "--pad_to=2", f"--json={path}"])
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(path.read_text())
    assert [row["model"] for row in rows] == ["jit_compile=True", "jit_compile=True, padded to [2]", "jit_compile=False"]
    for row in rows:
        assert row["first_pass_s"] > 0 and row["warm_call_median_ms"] > 0
    assert "| jit_compile=False |" in result.stdout
