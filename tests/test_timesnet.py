"""tf_tsembed.models.timesnet against a NumPy TimesBlock written from the reference's steps,
PyTorch's TSLib TimesNet (forward and gradients, when torch is installed), the reference's
parameter count, and its two formulations against each other."""

import math

import numpy as np
import pytest
import reference
import tensorflow as tf

from tf_tsembed import tslib
from tf_tsembed.models import ForecastConfig, timesnet

keras = tf.keras
SMALL = dict(d_model=8, d_ff=12, e_layers=2, dropout=0.1, top_k=3)


def _inputs(batch, seq_len, channels=3, features=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, seq_len, channels)).astype("float32")
    marks = rng.uniform(-0.5, 0.5, (batch, seq_len, features)).astype("float32")
    return x, marks


def _timesnet(seq_len, pred_len, channels, *, padding="last_rows", static_shapes=False, **sizes):
    """TimesNet with no decoder rows (label_len 0): its decoder inputs are unused."""
    config = ForecastConfig(
        seq_len=seq_len,
        label_len=0,
        pred_len=pred_len,
        enc_in=channels,
        dec_in=channels,
        c_out=channels,
        freq="h",
        **sizes,
    )
    return timesnet.TimesNet(config, padding=padding, static_shapes=static_shapes)


def _call(x, marks, pred_len):
    """TSLib's four inputs from the encoder's two; the unused decoder ones are zeros."""
    batch, _, channels = x.shape
    decoder = [tf.zeros((batch, pred_len, width)) for width in (channels, marks.shape[2])]
    return [tf.convert_to_tensor(x), tf.convert_to_tensor(marks), *decoder]


# --- NumPy reference of one TimesBlock, float64, from TSLib's steps ---------------------------


def _conv2d_same(grid, weight, bias):
    """`nn.Conv2d(padding=(k-1)/2)` on `(B, rows, cols, in)`, PyTorch's weight `(out, in, k, k)`."""
    size = weight.shape[-1]
    half = size // 2
    batch, rows, cols, _ = grid.shape
    padded = np.pad(grid, [(0, 0), (half, half), (half, half), (0, 0)])
    out = np.zeros((batch, rows, cols, weight.shape[0])) + bias
    for i in range(size):
        for j in range(size):
            out += padded[:, i : i + rows, j : j + cols] @ weight[:, :, i, j].T
    return out


def _inception(grid, weights, biases):
    """The mean of the convolutions of every size (TSLib's Inception_Block_V1)."""
    return np.mean([_conv2d_same(grid, w, b) for w, b in zip(weights, biases)], axis=0)


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _times_block(x, k, inception_in, inception_out, padding):
    """TSLib's TimesBlock.forward on `x (B, T, N)` in float64; inceptions as (weights, biases)."""
    batch, length, channels = x.shape
    spectrum = np.abs(np.fft.rfft(x, axis=1))
    frequencies = spectrum.mean(0).mean(-1)
    frequencies[0] = 0
    top = np.argsort(-frequencies, kind="stable")[:k]
    results = []
    for frequency in top:
        period = length // frequency
        out = x
        if length % period:
            extra = (length // period + 1) * period - length
            tail = x[:, -extra:] if padding == "last_rows" else np.zeros((batch, extra, channels))
            out = np.concatenate([x, tail], axis=1)
        grid = out.reshape(batch, -1, period, channels)
        grid = _inception(_gelu(_inception(grid, *inception_in)), *inception_out)
        results.append(grid.reshape(batch, -1, channels)[:, :length])
    weights = np.exp(spectrum.mean(-1)[:, top])
    weights /= weights.sum(1, keepdims=True)
    return np.einsum("kbtn,bk->btn", np.stack(results), weights) + x


def _torch_layout(block, name):
    inception = getattr(block, name)
    weights = [k.numpy().astype(np.float64).transpose(3, 2, 0, 1) for k in inception.kernels]
    return weights, [b.numpy().astype(np.float64) for b in inception.biases]


@pytest.mark.parametrize("padding", timesnet.PADDINGS)
@pytest.mark.parametrize("static_shapes", [False, True])
@pytest.mark.parametrize("length", [24, 37])  # 37: no period but 37 divides it: always padded
def test_times_block_matches_a_numpy_reference(padding, static_shapes, length):
    keras.utils.set_random_seed(2)
    block = timesnet.TimesBlock(
        6, top_k=3, num_kernels=3, padding=padding, static_shapes=static_shapes
    )
    x = np.random.default_rng(3).normal(size=(4, length, 5)).astype("float32")
    # Random biases too: the reference initialises them at 0, which would hide a bias bug.
    block.build(x.shape)
    for bias in block.inception_in.biases + block.inception_out.biases:
        bias.assign(np.random.default_rng(4).normal(size=bias.shape))
    expected = _times_block(
        x.astype(np.float64),
        3,
        _torch_layout(block, "inception_in"),
        _torch_layout(block, "inception_out"),
        padding,
    )
    np.testing.assert_allclose(block(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_static_shapes_equal_the_reshape_on_random_inputs():
    for seq_len, pred_len, seed in ((96, 96, 0), (96, 336, 1), (30, 7, 2)):
        keras.utils.set_random_seed(seed)
        x, marks = _inputs(6, seq_len, seed=seed)
        for padding in timesnet.PADDINGS:
            kwargs = dict(SMALL, padding=padding)
            reshape = _timesnet(seq_len, pred_len, 3, **kwargs)
            taps = _timesnet(seq_len, pred_len, 3, static_shapes=True, **kwargs)
            taps.set_weights(reshape.get_weights())
            np.testing.assert_allclose(
                taps(_call(x, marks, pred_len)).numpy(),
                reshape(_call(x, marks, pred_len)).numpy(),
                rtol=1e-5,
                atol=1e-5,
            )


@pytest.mark.parametrize("length", [37, 192])
def test_amplitudes_by_fft_and_by_dft_products_equal_numpys_rfft(length):
    x = np.random.default_rng(8).normal(size=(2, length, 3))
    expected = np.abs(np.fft.rfft(x, axis=1)).transpose(0, 2, 1)
    for fft in (True, False):
        got = timesnet.amplitude_spectrum(tf.constant(x, tf.float32), fft=fft).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5 * np.abs(expected).max())


def test_xla_compiles_the_static_formulation_and_not_the_reshape():
    keras.utils.set_random_seed(0)
    x, marks = _inputs(4, 48)
    graph = _timesnet(48, 24, 3, **SMALL)
    taps = _timesnet(48, 24, 3, static_shapes=True, **SMALL)
    taps.set_weights(graph.get_weights())
    compiled = tf.function(lambda a, b: taps(_call(a, b, 24), training=False), jit_compile=True)
    np.testing.assert_allclose(
        compiled(x, marks).numpy(), graph(_call(x, marks, 24)).numpy(), rtol=1e-5, atol=1e-5
    )
    hlo = compiled.experimental_get_compiler_ir(x, marks)(stage="hlo")
    # Static shapes, and the periods from DFT products (no FFT: TFLite's RFFT2D wants 2**n).
    assert "fft(" not in hlo and not any(mark in hlo for mark in ("<=", "?]"))
    reshape = tf.function(lambda a, b: graph(_call(a, b, 24), training=False), jit_compile=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be a compile-time constant"):
        reshape(x, marks)


def test_etth1_96_has_the_reference_parameter_count():
    # TSLib TimesNet, ETTh1 96 -> 96: d_model 16, d_ff 32, e_layers 2, num_kernels 6, 7 series,
    # 4 timeF features; the layer shapes of models/TimesNet.py and layers/Conv_Blocks.py.
    seq_len, pred_len, n, f, d_model, d_ff = 96, 96, 7, 4, 16, 32
    taps = sum((2 * i + 1) ** 2 for i in range(6))  # Conv2d kernels 1x1 .. 11x11
    inception = lambda cin, cout: taps * cin * cout + 6 * cout  # noqa: E731
    expected = (
        3 * n * d_model  # TokenEmbedding Conv1d, no bias
        + f * d_model  # TimeFeatureEmbedding Linear, no bias
        + seq_len * (seq_len + pred_len) + (seq_len + pred_len)  # predict_linear
        + 2 * (inception(d_model, d_ff) + inception(d_ff, d_model))  # two TimesBlocks
        + 2 * d_model  # the one LayerNorm
        + d_model * n + n  # projection
    )  # fmt: skip
    model = _timesnet(seq_len, pred_len, n, d_model=16, d_ff=32, e_layers=2, dropout=0.1)
    assert model.count_params() == expected == 605_479


def test_inception_weights_start_as_pytorch_initialises_them():
    keras.utils.set_random_seed(0)
    block = timesnet.InceptionBlock(32, 64, num_kernels=6)
    block.build()
    for index, (kernel, bias) in enumerate(zip(block.kernels, block.biases)):
        size = 2 * index + 1
        # kaiming_normal_(mode="fan_out", nonlinearity="relu"): std sqrt(2 / (64 * size**2)).
        std = math.sqrt(2.0 / (64 * size * size))
        values = kernel.numpy()
        assert values.shape == (size, size, 32, 64)
        assert values.std() == pytest.approx(std, rel=0.05)
        assert np.abs(values).max() > 2.5 * std  # untruncated, unlike Keras' HeNormal
        np.testing.assert_array_equal(bias.numpy(), 0.0)


@pytest.mark.parametrize("pred_len", [96, 192, 336, 720])
def test_forecast_shape_for_every_horizon(pred_len):
    model = _timesnet(96, pred_len, 7, d_model=4, d_ff=4, e_layers=1, dropout=0.1)
    x, marks = _inputs(2, 96, channels=7)
    assert model(_call(x, marks, pred_len)).shape == (2, pred_len, 7)


def test_trains_one_step_and_forecasts_in_the_input_scale():
    keras.utils.set_random_seed(3)
    model = _timesnet(32, 12, 3, **SMALL)
    x, marks = _inputs(8, 32, seed=3)
    y = np.random.default_rng(3).normal(size=(8, 12, 3)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    before = [w.numpy() for w in model.trainable_weights]
    assert np.isfinite(model.train_on_batch(_call(x, marks, 12), y))
    # Every weight moves (the zero-initialised Inception biases included).
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
    # The per-window standardisation is undone on the output: an affine change of each input
    # series changes its forecast by the same map (the periods come from the embedding, which
    # sees the standardised series only).
    scale, shift = np.array([2.0, 5.0, 0.5], "float32"), np.array([10.0, -3.0, 1.0], "float32")
    np.testing.assert_allclose(
        model.predict(_call(x * scale + shift, marks, 12), verbose=0),
        model.predict(_call(x, marks, 12), verbose=0) * scale + shift,
        rtol=1e-3,
        atol=1e-2,
    )


# --- PyTorch's TSLib TimesNet -------------------------------------------------------------------


@pytest.mark.parametrize("padding", timesnet.PADDINGS)
def test_forward_and_gradients_match_pytorch(padding):
    torch = reference.torch_or_skip(0)
    from benchmarks import torch_timesnet

    sizes = dict(SMALL, dropout=0.0)
    theirs = torch_timesnet.TimesNet(40, 20, 3, 4, padding=padding, **sizes)
    ours = tslib.load_checkpoint(
        torch_timesnet.tslib_state_dict(theirs),
        options={"padding": padding},
        model="TimesNet",
        **dict(seq_len=40, label_len=0, pred_len=20, enc_in=3, dec_in=3, c_out=3, **sizes),
    )
    x, marks = _inputs(6, 40, seed=5)
    y = np.random.default_rng(6).normal(size=(6, 20, 3)).astype("float32")
    loss = torch.mean((theirs(torch.tensor(x), torch.tensor(marks)) - torch.tensor(y)) ** 2)
    loss.backward()
    with tf.GradientTape() as tape:
        our_loss = tf.reduce_mean(tf.square(ours(_call(x, marks, 20), training=True) - y))
    assert float(our_loss) == pytest.approx(loss.item(), rel=1e-5)
    gradients = dict(
        zip(
            (v.path for v in ours.trainable_weights),
            tape.gradient(our_loss, ours.trainable_weights),
        )
    )
    expected = {
        "predict_linear/kernel": theirs.predict_linear.weight.grad.numpy().T,
        "embedding/value_embedding/kernel": theirs.token.weight.grad.numpy().transpose(2, 1, 0),
        "times_block_1/inception_out/kernel_11": theirs.blocks[1]
        .conv[2]
        .kernels[5]
        .weight.grad.numpy()
        .transpose(2, 3, 1, 0),
        "times_block_0/inception_in/bias_5": theirs.blocks[0].conv[0].kernels[2].bias.grad.numpy(),
        "layer_norm/gamma": theirs.layer_norm.weight.grad.numpy(),
    }
    for path, value in expected.items():
        scale = np.abs(value).max()
        np.testing.assert_allclose(gradients[path].numpy(), value, rtol=1e-4, atol=1e-5 * scale)


def test_pytorch_inception_as_one_convolution_equals_its_six():
    torch = reference.torch_or_skip(0)
    from benchmarks import torch_timesnet

    six = torch_timesnet.Inception(5, 4, 6)
    one = torch_timesnet.Inception(5, 4, 6, one_convolution=True)
    for conv in six.kernels:  # nonzero biases, so that their mean is checked too
        torch.nn.init.normal_(conv.bias)
    one.load_state_dict(six.state_dict())
    grid = torch.tensor(np.random.default_rng(7).normal(size=(2, 5, 4, 7)).astype("float32"))
    expected, got = six(grid).detach().numpy(), one(grid).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
