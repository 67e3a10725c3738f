"""PatchEmbedding and repeat_for_channels against the patching formula of docs/formulas.md."""

import layer_harness
import numpy as np
import pytest
import reference
import roundtrip
import tensorflow as tf

from tf_tsembed import PatchEmbedding, repeat_for_channels

keras = tf.keras

# (batch, n_vars, length, d_model, patch_len, stride, padding): PatchTST's padding = stride, no
# padding, a stride that does not divide patch_len, gaps between patches (stride > patch_len), a
# single patch (L + padding == patch_len), L = 1 made long enough by padding, odd d_model.
CASES = [
    (2, 3, 24, 8, 8, 4, 4),
    (2, 2, 20, 6, 6, 3, 0),
    (1, 3, 17, 5, 5, 3, 2),
    (2, 1, 19, 4, 3, 5, 1),
    (2, 2, 5, 4, 8, 2, 3),
    (3, 2, 1, 3, 2, 1, 1),
]


def _random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _patches_reference(x, patch_len, stride, padding):
    """PyTorch's ReplicationPad1d((0, padding)) then unfold(-1, patch_len, stride), row b*N + n."""
    x = np.asarray(x, np.float64)
    batch, n_vars, length = x.shape
    padded = np.concatenate([x, np.repeat(x[:, :, -1:], padding, axis=2)], axis=2)
    count = (length + padding - patch_len) // stride + 1
    rows = np.zeros((batch * n_vars, count, patch_len))
    for b in range(batch):
        for n in range(n_vars):
            for p in range(count):
                rows[b * n_vars + n, p] = padded[b, n, p * stride : p * stride + patch_len]
    return rows


def _expected(layer, x):
    """Tokens from the NumPy patching, the layer's weights and the fixed or learned positions."""
    patches = _patches_reference(x, layer.patch_len, layer.stride, layer.padding)
    kernel = layer.value_embedding.kernel.numpy().astype(np.float64)
    out = patches @ kernel
    if layer.use_bias:
        out = out + layer.value_embedding.bias.numpy()
    if layer.position == "learned":
        return out + layer.position_embedding.numpy()
    return out + reference.sinusoid(patches.shape[1], layer.d_model)


@pytest.mark.parametrize("batch,n_vars,length,d_model,patch_len,stride,padding", CASES)
def test_matches_reference(batch, n_vars, length, d_model, patch_len, stride, padding):
    layer = PatchEmbedding(d_model, patch_len, stride, padding)
    x = _random((batch, n_vars, length))
    tokens, got_n_vars = layer(x)
    count = (length + padding - patch_len) // stride + 1
    assert tokens.shape == (batch * n_vars, count, d_model)
    assert got_n_vars == n_vars and isinstance(got_n_vars, int)
    np.testing.assert_allclose(tokens, _expected(layer, x), rtol=1e-5, atol=1e-6)


def test_patchtst_form_has_bias_and_learned_positions():
    layer = PatchEmbedding(8, 4, 2, 2, position="learned", use_bias=True)
    x = _random((2, 3, 10))
    tokens, _ = layer(x)
    assert [getattr(w, "path", w.name.split(":")[0]).split("/", 1)[1] for w in layer.weights] == [
        "position_embedding",
        "value_embedding/kernel",
        "value_embedding/bias",
    ]
    assert layer.position_embedding.shape == (5, 8)
    np.testing.assert_allclose(tokens, _expected(layer, x), rtol=1e-5, atol=1e-6)


def test_tslib_form_has_only_the_projection_kernel():
    layer = PatchEmbedding(8, 4, 2, 2)
    layer(_random((1, 1, 10)))
    assert [getattr(w, "path", w.name.split(":")[0]).split("/", 1)[1] for w in layer.weights] == [
        "value_embedding/kernel"
    ]


def test_default_init_reproduces_pytorch_linear_and_patchtst_position():
    patch_len, d_model = 16, 4096
    layer = PatchEmbedding(d_model, patch_len, 8, 8, position="learned", use_bias=True)
    layer.build((None, None, 512))
    bound = 1 / np.sqrt(patch_len)
    for values, limit in [
        (layer.value_embedding.kernel.numpy(), bound),
        (layer.value_embedding.bias.numpy(), bound),
        (layer.position_embedding.numpy(), 0.02),
    ]:
        assert values.min() >= -limit and values.max() <= limit
        assert values.min() < -0.95 * limit and values.max() > 0.95 * limit
        assert abs(values.std() / (limit / np.sqrt(3)) - 1) < 0.05  # uniform, not normal


def test_row_order_keeps_each_series_in_its_own_row():
    layer = PatchEmbedding(4, 4, 2, 2)
    x = _random((3, 4, 8))
    base, _ = layer(x)
    x[1, 2] += 1.0
    moved, _ = layer(x)
    changed = np.nonzero(np.abs(moved - base).max(axis=(1, 2)) > 0)[0].tolist()
    assert changed == [1 * 4 + 2]


def test_dynamic_batch_vars_and_length_in_tf_function():
    layer = PatchEmbedding(6, 4, 3, 3)
    forward = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None), tf.float32)])
    for shape in [(2, 3, 12), (1, 2, 7)]:
        x = _random(shape, seed=shape[2])
        tokens, n_vars = forward(x)
        assert tokens.shape.rank == 3 and int(n_vars) == shape[1]
        np.testing.assert_allclose(tokens, _expected(layer, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("position,use_bias", [("fixed", False), ("learned", True)])
def test_xla_gives_the_same_numbers(position, use_bias):
    layer = PatchEmbedding(8, 6, 4, 4, position=position, use_bias=use_bias)
    x = _random((2, 3, 22))
    eager, _ = layer(x)
    compiled, n_vars = tf.function(layer, jit_compile=True)(x)
    assert n_vars == 3
    np.testing.assert_allclose(compiled, eager, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(compiled, _expected(layer, x), rtol=1e-5, atol=1e-6)


def test_dropout_only_in_training():
    rate = 0.5
    layer = PatchEmbedding(16, 4, 4, 0, dropout=rate)
    x = _random((4, 3, 16))
    inference, _ = layer(x)
    np.testing.assert_allclose(inference, _expected(layer, x), rtol=1e-5, atol=1e-6)
    training, _ = layer(x, training=True)
    kept = training.numpy() != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(
        training.numpy()[kept], inference.numpy()[kept] / (1 - rate), rtol=1e-5
    )


@pytest.mark.parametrize("position,use_bias", [("fixed", False), ("learned", True)])
def test_layer_contract(position, use_bias, tmp_path):
    layer_harness.run_layer_test(
        lambda **kwargs: PatchEmbedding(
            32, 8, 4, 4, position=position, use_bias=use_bias, **kwargs
        ),
        (_random((2, 3, 40)),),
        tmp_path,
        expected=lambda layer, inputs: _expected(layer, inputs[0]),
    )


def test_gradients_reach_projection_and_learned_positions():
    layer = PatchEmbedding(4, 4, 2, 2, position="learned", use_bias=True)
    x = _random((2, 2, 8))
    with tf.GradientTape() as tape:
        tokens, _ = layer(x)
        loss = tf.reduce_sum(tokens**2)
    for grad in tape.gradient(loss, layer.trainable_weights):
        assert np.abs(grad.numpy()).max() > 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(d_model=0), "d_model"),
        (dict(patch_len=2.0), "patch_len"),
        (dict(stride=-1), "stride"),
        (dict(padding=-1), "padding"),
        (dict(padding=True), "padding"),
        (dict(dropout=1.0), "dropout"),
        (dict(position="sinusoid"), "position"),
        (dict(max_len=0), "max_len"),
    ],
)
def test_bad_constructor_arguments_name_the_parameter(kwargs, message):
    args = {**dict(d_model=4, patch_len=4, stride=2, padding=2), **kwargs}
    with pytest.raises(ValueError, match=message):
        PatchEmbedding(**args)


def test_bad_inputs_raise_clear_errors():
    layer = PatchEmbedding(4, patch_len=8, stride=2, padding=2)
    with pytest.raises(ValueError, match="rank 3"):
        layer(_random((2, 16)))
    with pytest.raises(ValueError, match=r"patch_len=8 .* L \+ padding = 5 \+ 2 = 7"):
        layer(_random((2, 3, 5)))
    with pytest.raises(TypeError, match="floating"):
        layer(np.zeros((2, 3, 16), "int32"))
    with pytest.raises(ValueError, match="at least one time step"):
        PatchEmbedding(4, 2, 1, 3)(_random((2, 3, 0)))
    with pytest.raises(ValueError, match="max_len=3"):
        PatchEmbedding(4, 2, 1, 0, max_len=3)(_random((1, 1, 5)))


def test_too_short_series_with_unknown_length_fails_at_run_time():
    layer = PatchEmbedding(4, patch_len=8, stride=2, padding=2)
    forward = tf.function(layer, input_signature=[tf.TensorSpec((None, 3, None), tf.float32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="patch_len=8"):
        forward(_random((2, 3, 5)))


def test_invalid_unknown_length_still_fails_under_xla():
    layer = PatchEmbedding(4, patch_len=8, stride=2, padding=2)
    forward = tf.function(
        layer, jit_compile=True, input_signature=[tf.TensorSpec((None, 3, None), tf.float32)]
    )
    with pytest.raises(tf.errors.InvalidArgumentError):
        forward(_random((2, 3, 5)))  # P would be 0, not an error, without the guard


def test_learned_positions_need_and_keep_the_built_length():
    with pytest.raises(ValueError, match="needs the series length"):
        PatchEmbedding(4, 4, 2, 2, position="learned").build((None, 3, None))
    layer = PatchEmbedding(4, 4, 2, 2, position="learned")
    layer(_random((1, 3, 10)))
    with pytest.raises(ValueError, match=r"built for 5 patches, but L=12 gives 6"):
        layer(_random((1, 3, 12)))
    forward = tf.function(layer, input_signature=[tf.TensorSpec((None, 3, None), tf.float32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="built for 5 patches"):
        forward(_random((1, 3, 12)))


def test_repeat_for_channels_follows_the_token_row_order():
    batch, n_vars = 3, 4
    x_mark = _random((batch, 6, 2), seed=1)
    repeated = repeat_for_channels(x_mark, n_vars).numpy()
    np.testing.assert_array_equal(repeated, np.repeat(x_mark, n_vars, axis=0))
    for b in range(batch):
        for n in range(n_vars):
            np.testing.assert_array_equal(repeated[b * n_vars + n], x_mark[b])
    # Tiling the batch is the known mistake: it hands row b*N+n another sample's marks.
    assert not np.array_equal(repeated, np.tile(x_mark, (n_vars, 1, 1)))


def test_repeat_for_channels_takes_the_layers_dynamic_n_vars_under_xla():
    layer = PatchEmbedding(4, 4, 2, 2)

    @tf.function(
        jit_compile=True,
        input_signature=[tf.TensorSpec((None, None, 8)), tf.TensorSpec((None, 8, 2))],
    )
    def tokens_and_marks(x, x_mark):
        tokens, n_vars = layer(x)
        return tokens, repeat_for_channels(x_mark, n_vars)

    x_mark = _random((2, 8, 2), seed=2)
    tokens, marks = tokens_and_marks(_random((2, 3, 8)), x_mark)
    assert marks.shape[0] == tokens.shape[0] == 6
    np.testing.assert_array_equal(marks, np.repeat(x_mark, 3, axis=0))


def test_repeat_for_channels_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_vars"):
        repeat_for_channels(np.zeros((2, 3)), 0)
    x_mark = np.zeros((2, 3), "float32")
    for n_vars in (tf.constant(3.0), tf.constant([3]), tf.constant(0), tf.constant(-2, tf.int64)):
        message = "`n_vars` must be a positive integer or a scalar integer tensor"
        with pytest.raises(ValueError, match=message):
            repeat_for_channels(x_mark, n_vars)
    assert repeat_for_channels(x_mark, tf.constant(3, tf.int64)).shape == (6, 3)
    spec = [tf.TensorSpec((2, 3)), tf.TensorSpec((), tf.int32)]
    traced = tf.function(repeat_for_channels, input_signature=spec)
    assert traced(x_mark, 2).shape == (4, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`n_vars` must be a positive integer"):
        traced(x_mark, -1)
    with pytest.raises(ValueError, match="rank >= 1"):
        repeat_for_channels(np.float32(1.0), 2)


def test_config_roundtrip_keeps_every_argument():
    layer = PatchEmbedding(
        8,
        4,
        2,
        1,
        dropout=0.1,
        position="learned",
        use_bias=True,
        max_len=64,
        position_initializer=keras.initializers.Constant(0.5),
        name="patches",
    )
    rebuilt = roundtrip.assert_config_roundtrip(layer)
    assert (rebuilt.d_model, rebuilt.patch_len, rebuilt.stride, rebuilt.padding) == (8, 4, 2, 1)
    assert (rebuilt.dropout, rebuilt.position, rebuilt.use_bias, rebuilt.max_len) == (
        0.1,
        "learned",
        True,
        64,
    )
    rebuilt.build((None, 2, 9))
    np.testing.assert_array_equal(rebuilt.position_embedding.numpy(), np.full((4, 8), 0.5))


def _functional(position, length=24):
    inputs = keras.Input((3, length))
    tokens, _ = PatchEmbedding(
        8, 6, 3, 3, position=position, use_bias=position == "learned", name="patches"
    )(inputs)
    return keras.Model(inputs, tokens)


@pytest.mark.parametrize("position", ["fixed", "learned"])
def test_functional_model_matches_reference_and_keras_file_roundtrip(position, tmp_path):
    model = _functional(position)
    x = _random((2, 3, 24))
    np.testing.assert_allclose(
        model(x), _expected(model.get_layer("patches"), x), rtol=1e-5, atol=1e-6
    )
    roundtrip.assert_keras_file_roundtrip(model, x, tmp_path)


@pytest.mark.slow
def test_export_reloads_in_fresh_process(tmp_path):
    inputs = keras.Input((3, None))
    tokens, _ = PatchEmbedding(8, 6, 3, 3, name="patches")(inputs)
    model = keras.Model(inputs, tokens)
    roundtrip.assert_export_roundtrip_in_fresh_process(model, _random((2, 3, 17)), tmp_path)
