"""TokenEmbedding against the circular-convolution formula of docs/formulas.md."""

import os
import re
import subprocess
import sys
import textwrap

import layer_harness
import numpy as np
import pytest
import reference
import roundtrip
import tensorflow as tf

from tf_tsembed import PositionalEmbedding, TokenEmbedding, _compile, _precision, token_embedding

keras = tf.keras

# (batch, length, c_in, d_model, kernel_size): L = 1 and 2, L < kernel_size, c_in = 1, odd d_model.
SHAPES = [
    (2, 1, 3, 5, 3),
    (2, 2, 1, 4, 3),
    (1, 2, 2, 3, 5),
    (3, 5, 7, 9, 5),
    (2, 4, 2, 3, 1),
    (2, 96, 7, 16, 3),
]


def _random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _torch_layout_reference(x, weight_oik, bias):
    """PyTorch's Conv1d(padding_mode="circular") definition on NCL data, via np.pad(mode="wrap")."""
    pad = (weight_oik.shape[2] - 1) // 2
    x_ncl = np.transpose(np.asarray(x, np.float64), (0, 2, 1))
    padded = np.pad(x_ncl, ((0, 0), (0, 0), (pad, pad)), mode="wrap")
    length = x_ncl.shape[2]
    windows = np.stack([padded[:, :, t : t + weight_oik.shape[2]] for t in range(length)], axis=1)
    y = np.einsum("blck,ock->blo", windows, weight_oik.astype(np.float64))
    return y + bias


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("batch,length,c_in,d_model,kernel_size", SHAPES)
def test_matches_reference(batch, length, c_in, d_model, kernel_size, jit_compile):
    layer = TokenEmbedding(c_in, d_model, kernel_size=kernel_size, jit_compile=jit_compile)
    x = _random((batch, length, c_in))
    out = layer(x)
    assert out.shape == (batch, length, d_model)
    np.testing.assert_allclose(
        out, reference.circular_conv1d(x, *layer.get_weights()), rtol=1e-5, atol=1e-6
    )


def test_use_bias_false_has_only_a_kernel():
    layer = TokenEmbedding(3, 4, use_bias=False)
    x = _random((2, 6, 3))
    out = layer(x)
    (kernel,) = layer.get_weights()
    assert kernel.shape == (3, 3, 4)
    np.testing.assert_allclose(out, reference.circular_conv1d(x, kernel), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("length", [1, 2, 11])
def test_pytorch_conv1d_weights_load_by_transpose(length):
    c_in, d_model, kernel_size = 4, 6, 3
    rng = np.random.default_rng(3)
    weight_oik = rng.normal(size=(d_model, c_in, kernel_size)).astype("float32")
    bias = rng.normal(size=(d_model,)).astype("float32")
    layer = TokenEmbedding(c_in, d_model, kernel_size=kernel_size)
    layer.build((None, None, c_in))
    layer.set_weights([weight_oik.transpose(2, 1, 0), bias])
    x = _random((2, length, c_in), seed=4)
    np.testing.assert_allclose(
        layer(x), _torch_layout_reference(x, weight_oik, bias), rtol=1e-5, atol=1e-6
    )


def test_matches_pytorch_conv1d_circular_when_installed():
    torch = reference.torch_or_skip(0)
    conv = torch.nn.Conv1d(7, 8, 3, padding=1, padding_mode="circular")
    layer = TokenEmbedding(7, 8)
    layer.build((None, None, 7))
    layer.set_weights([conv.weight.detach().numpy().transpose(2, 1, 0), conv.bias.detach().numpy()])
    x = _random((2, 10, 7))
    expected = conv(torch.from_numpy(x).permute(0, 2, 1)).permute(0, 2, 1).detach().numpy()
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_default_init_reproduces_the_reference_distributions():
    c_in, d_model, kernel_size = 7, 4096, 3
    layer = TokenEmbedding(c_in, d_model)
    layer.build((None, None, c_in))
    kernel, bias = layer.get_weights()
    std = np.sqrt(2.0 / (kernel_size * c_in))  # 0.30861 for C=7, k=3
    assert abs(kernel.mean()) < 0.01
    assert abs(kernel.std() / std - 1) < 0.02
    # An untruncated normal puts 4.55% of its mass beyond 2 std; Keras' HeNormal puts none there.
    assert 0.04 < np.mean(np.abs(kernel) > 2 * std) < 0.051
    bound = 1 / np.sqrt(kernel_size * c_in)
    assert bias.min() >= -bound and bias.max() <= bound
    assert bias.min() < -0.95 * bound and bias.max() > 0.95 * bound


def test_initializers_are_overridable_and_serialize():
    layer = TokenEmbedding(
        2, 3, kernel_initializer="ones", bias_initializer=keras.initializers.Constant(0.5)
    )
    rebuilt = roundtrip.assert_config_roundtrip(layer)
    rebuilt.build((None, None, 2))
    kernel, bias = rebuilt.get_weights()
    np.testing.assert_array_equal(kernel, np.ones((3, 2, 3)))
    np.testing.assert_array_equal(bias, np.full(3, 0.5))


def test_default_config_roundtrip_keeps_every_argument():
    layer = TokenEmbedding(5, 8, kernel_size=5, use_bias=False, jit_compile=False, name="tok")
    rebuilt = roundtrip.assert_config_roundtrip(layer)
    assert (rebuilt.c_in, rebuilt.d_model, rebuilt.kernel_size) == (5, 8, 5)
    assert (rebuilt.use_bias, rebuilt.jit_compile, rebuilt.name) == (False, False, "tok")


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("c_in", [7, 50])
def test_layer_contract(c_in, jit_compile, tmp_path):
    """Both formulations (k * c_in below and above the matmul bound), jit on and off."""
    x = _random((2, 12, c_in), seed=c_in)
    layer_harness.run_layer_test(
        lambda **kwargs: TokenEmbedding(c_in, 16, jit_compile=jit_compile, **kwargs),
        (x,),
        tmp_path,
        expected=lambda layer, inputs: reference.circular_conv1d(inputs[0], *layer.get_weights()),
    )


def _must_compile_functions(layer, x):
    graph = tf.function(layer).get_concrete_function(x).graph
    return [
        f.signature.name
        for f in graph.as_graph_def().library.function
        if f.attr["_XlaMustCompile"].b
    ]


def test_jit_compile_flag_selects_the_compiled_function():
    x = tf.zeros((1, 4, 2))
    assert _must_compile_functions(TokenEmbedding(2, 3), x)
    assert not _must_compile_functions(TokenEmbedding(2, 3, jit_compile=False), x)


_DUMP_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from tf_tsembed import TokenEmbedding
    layer = TokenEmbedding(3, 4, jit_compile=sys.argv[1] == "1")
    layer(np.ones((2, 5, 3), "float32")).numpy()
    """
)


@pytest.mark.slow
def test_eager_call_runs_xla_compiled_code(tmp_path):
    """XLA writes a module for each program it compiles: an eager call must produce one."""
    dumped = {}
    for jit in ("1", "0"):
        dump_dir = tmp_path / f"jit{jit}"
        env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={dump_dir}", TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(
            [sys.executable, "-c", _DUMP_SCRIPT, jit], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-2000:]
        dumped[jit] = [name for name in os.listdir(dump_dir)] if dump_dir.exists() else []
    assert any(
        "circular_conv1d" in name and "after_optimizations" in name for name in dumped["1"]
    ), dumped["1"]
    assert not any("circular_conv1d" in name for name in dumped["0"])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(c_in=0, d_model=4), "c_in=0"),
        (dict(c_in=2.5, d_model=4), "c_in=2.5"),
        (dict(c_in=True, d_model=4), "c_in=True"),
        (dict(c_in="3", d_model=4), "c_in='3'"),
        (dict(c_in=3, d_model=-1), "d_model=-1"),
        (dict(c_in=3, d_model=4, kernel_size=2), "kernel_size=2"),
        (dict(c_in=3, d_model=4, kernel_size=0), "kernel_size=0"),
    ],
)
def test_bad_constructor_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenEmbedding(**kwargs)


@pytest.mark.parametrize(
    "shape,message",
    [
        ((2, 3), "rank 3"),
        ((2, 3, 3, 1), "rank 3"),
        ((2, 5, 4), r"c_in=3: the inputs must have 3 channels; received shape \(2, 5, 4\)"),
        ((2, 0, 3), "at least one time step"),
    ],
)
def test_bad_input_shapes_raise_at_build(shape, message):
    with pytest.raises(ValueError, match=message):
        TokenEmbedding(3, 4).build(shape)
    with pytest.raises(ValueError, match=message):
        TokenEmbedding(3, 4)(np.zeros(shape, "float32"))


def test_channel_mismatch_after_build_raises_at_call():
    layer = TokenEmbedding(3, 4)
    layer(np.zeros((1, 5, 3), "float32"))
    with pytest.raises(ValueError, match=r"must have 3 channels; received shape \(1, 5, 2\)"):
        layer(np.zeros((1, 5, 2), "float32"))


def test_empty_dynamic_length_fails_at_run_time():
    layer = TokenEmbedding(3, 4)
    forward = tf.function(layer, input_signature=[tf.TensorSpec((None, None, 3))])
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least one time step"):
        forward(tf.zeros((1, 0, 3)))


def test_integer_inputs_raise_type_error():
    with pytest.raises(TypeError, match="floating inputs; received dtype int32"):
        TokenEmbedding(3, 4)(np.zeros((1, 5, 3), "int32"))


def _token_layer(c_in, d_model, kernel_size=3):
    layer = TokenEmbedding(c_in, d_model, kernel_size=kernel_size)
    layer.build((None, None, c_in))
    return layer


def test_does_not_retrace_eagerly():
    layer = _token_layer(2, 4)
    cache = token_embedding.compiled_circular_conv1d.eager_functions
    layer(np.zeros((3, 5, 2), "float32"))
    functions = set(map(id, cache.values()))
    for _ in range(3):
        layer(np.ones((3, 5, 2), "float32"))
    assert set(map(id, cache.values())) == functions
    layer(np.ones((3, 6, 2), "float32"))
    layer(np.ones((3, 5, 2), "float32"))
    assert len(set(map(id, cache.values())) - functions) == 1


def test_eager_compiled_functions_are_bounded_least_recently_used_first():
    layer = _token_layer(2, 4)
    cache = token_embedding.compiled_circular_conv1d.eager_functions
    lengths = range(1, _compile.EAGER_CACHE_SIZE + 9)
    for length in lengths:
        layer(np.ones((1, length, 2), "float32"))
    assert len(cache) == _compile.EAGER_CACHE_SIZE
    shapes = [key[0][0] for key in cache]
    assert shapes[-1] == (1, lengths[-1], 2) and (1, 1, 2) not in shapes
    x = _random((1, 1, 2))
    expected = reference.circular_conv1d(x, *layer.get_weights())
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_does_not_retrace_in_tf_function_beside_positional_embedding(jit_compile):
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
    env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={dump_dir}", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", _RECOMPILE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules = [
        n
        for n in os.listdir(dump_dir)
        if "train_step" in n and n.endswith("before_optimizations.txt")
    ]
    assert len(modules) == 1, modules


# (batch, length, c_in, kernel_size): c_in * kernel_size on both sides of the CPU threshold between
# the stacked matmul and the wrapped convolution, with L = 1 and L < kernel_size.
FORMULATION_SHAPES = [(2, 1, 50, 3), (2, 2, 50, 5), (3, 9, 60, 3), (2, 9, 4, 3), (2, 2, 4, 5)]


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("batch,length,c_in,kernel_size", FORMULATION_SHAPES)
def test_both_formulations_match_reference(batch, length, c_in, kernel_size, jit_compile, use_bias):
    assert (
        token_embedding._CPU_MATMUL_MAX_CONTRACTION < 50 * 3
        and 4 * 5 < token_embedding._CPU_MATMUL_MAX_CONTRACTION
    )
    layer = TokenEmbedding(
        c_in, 6, kernel_size=kernel_size, use_bias=use_bias, jit_compile=jit_compile
    )
    x = np.random.default_rng(length).normal(size=(batch, length, c_in)).astype("float32")
    out = layer(x)
    np.testing.assert_allclose(
        out, reference.circular_conv1d(x, *layer.get_weights()), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("c_in", [4, 50])
def test_both_formulations_take_a_dynamic_length(c_in):
    layer = _token_layer(c_in, 5)
    embed = tf.function(layer, input_signature=[tf.TensorSpec((None, None, c_in), tf.float32)])
    for length in (1, 7):
        x = np.random.default_rng(length).normal(size=(2, length, c_in)).astype("float32")
        np.testing.assert_allclose(
            embed(x), reference.circular_conv1d(x, *layer.get_weights()), rtol=1e-5, atol=1e-5
        )


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


def test_precision_follows_the_device_the_op_runs_on(monkeypatch):
    """A layer pinned to the CPU of a GPU host computes as on CPU; unplaced ops follow the host."""
    fake_gpu_host = lambda kind=None: ["fake"] if kind == "GPU" else []  # noqa: E731
    monkeypatch.setattr(tf.config, "list_logical_devices", fake_gpu_host)
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


def test_mixed_bfloat16_on_accelerators_feeds_the_matrix_unit_bfloat16(monkeypatch):
    """GPU and TPU keep 16-bit operands: the dot XLA receives takes and gives bfloat16."""
    monkeypatch.setattr(_precision, "on_accelerator", lambda tensor: True)
    assert _precision.math_dtype("bfloat16", tf.zeros(())) == tf.bfloat16
    layer = TokenEmbedding(4, 8, dtype="mixed_bfloat16")
    x = tf.zeros((2, 9, 4))
    hlo = tf.function(layer, jit_compile=True).experimental_get_compiler_ir(x)(stage="hlo")
    dots = re.findall(r"= (\w+)\[[\d,]*\]\S* dot\(", hlo)
    assert dots == ["bf16"], dots


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
