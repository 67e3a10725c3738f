"""tf_tsembed.models.Informer and its ProbAttention and ConvLayer: ProbAttention against a NumPy
float64 statement of TSLib's steps and, keeping every query and key, against full attention; the
whole model against `benchmarks.torch_tslib.Informer` with copied weights and the same key
samples; .keras round trip, XLA, the parameter count."""

import math
import os

import numpy as np
import pytest
import reference
import tensorflow as tf

from tf_tsembed import tslib
from tf_tsembed.models import MODELS, ForecastConfig, Informer
from tf_tsembed.models.encoder import ConvLayer, DecoderLayer, EncoderLayer, ProbAttention

keras = tf.keras
SMALL = dict(
    seq_len=48, label_len=24, pred_len=12, enc_in=3, dec_in=3, c_out=3, d_model=16, n_heads=2,
    d_ff=20, e_layers=2, d_layers=1, dropout=0.1,
)  # fmt: skip


def _projections(layer):
    """The layer's projected q, k, v `(B, L, H, E)` and output projection, as NumPy."""
    weights = {name: getattr(layer, name) for name in ("query", "key", "value", "out")}
    return {n: (w.kernel.numpy().astype(np.float64), w.bias.numpy()) for n, w in weights.items()}


def _heads(x, dense, heads):
    kernel, bias = dense
    y = x.astype(np.float64) @ kernel + bias
    return y.reshape(y.shape[0], y.shape[1], heads, -1)


@pytest.mark.parametrize("causal", [False, True])
def test_prob_attention_given_a_sample_is_tslibs_steps(causal):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    L_Q, L_K = 10, 10 if causal else 7
    x = rng.normal(size=(2, L_Q, 12)).astype("float32")
    context = rng.normal(size=(2, L_K, 12)).astype("float32")
    layer = ProbAttention(12, 3, factor=1, causal=causal)
    sample_k, n_top = layer.sizes(L_Q, L_K)
    assert (sample_k, n_top) == (math.ceil(math.log(L_K)), 3)
    sample = rng.integers(0, L_K, size=(L_Q, sample_k))
    layer.sample_indices = sample
    out = layer(x, context).numpy()
    assert np.array_equal(layer.last_sample.numpy(), sample)
    p = _projections(layer)
    q, k, v = _heads(x, p["query"], 3), _heads(context, p["key"], 3), _heads(context, p["value"], 3)
    heads = reference.prob_attention(q, k, v, sample, n_top, causal)  # (B, H, L_Q, D)
    expected = heads.reshape(2, L_Q, 12) @ p["out"][0] + p["out"][1]  # read as (B, L, H * D)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_prob_attention_keeping_every_query_and_key_is_full_attention(causal):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 8)).astype("float32")
    layer = ProbAttention(8, 2, factor=10, causal=causal)
    assert layer.sizes(6, 6) == (6, 6)
    layer.sample_indices = np.tile(np.arange(6), (6, 1))
    out = layer(x).numpy()
    p = _projections(layer)
    q, k, v = (_heads(x, p[n], 2) for n in ("query", "key", "value"))
    scores = np.einsum("blhe,bshe->bhls", q, k) / 2.0  # sqrt(head size 4)
    if causal:
        scores = np.where(np.triu(np.ones((6, 6)), 1) > 0, -np.inf, scores)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = np.einsum("bhls,bshd->bhld", weights, v)  # heads-first, then TSLib's view
    expected = heads.reshape(2, 6, 8) @ p["out"][0] + p["out"][1]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_prob_attention_draws_reproducibly_and_refuses_a_wrong_sample():
    x = np.random.default_rng(3).normal(size=(1, 20, 8)).astype("float32")
    outs = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        layer = ProbAttention(8, 2, factor=1)
        outs.append((layer(x).numpy(), layer.last_sample.numpy(), layer(x).numpy()))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert outs[0][1].shape == (20, 3) and outs[0][1].min() >= 0 and outs[0][1].max() < 20
    layer.sample_indices = np.zeros((20, 4), "int32")
    with pytest.raises(ValueError, match="sample_indices"):
        layer(x)


def test_conv_layer_distils_to_floor_of_half_plus_one():
    layer = ConvLayer(4)
    for length, expected in ((48, 25), (25, 14), (24, 13), (3, 3)):
        assert layer(tf.zeros((2, length, 4))).shape == (2, expected, 4)
    assert layer.compute_output_shape((None, 96, 4)) == (None, 49, 4)


def test_layers_config_round_trip():
    for layer in (
        ProbAttention(8, 2, factor=3, causal=True, seed=5),
        ConvLayer(8),
        EncoderLayer(8, 2, 16, 0.1, attention="prob", factor=2),
        DecoderLayer(8, 2, 16, 0.1, attention="prob", factor=2),
    ):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
    assert DecoderLayer.from_config(config).self_attention.factor == 2
    with pytest.raises(ValueError, match="attention"):
        EncoderLayer(8, 2, 16, 0.1, attention="sparse")


# --- the whole model against TSLib's, in PyTorch ----------------------------------------------


def _inputs(torch, config, seed):
    generator = torch.Generator().manual_seed(seed)
    decoder_len = config.label_len + config.pred_len
    return [
        torch.randn(4, config.seq_len, config.enc_in, generator=generator),
        torch.rand(4, config.seq_len, 4, generator=generator) - 0.5,
        torch.randn(4, decoder_len, config.dec_in, generator=generator),
        torch.rand(4, decoder_len, 4, generator=generator) - 0.5,
    ]


@pytest.mark.parametrize("distil", [True, False])
@pytest.mark.parametrize("factor", [1, 3])
def test_informer_equals_tslibs_with_copied_weights_and_the_same_samples(distil, factor):
    torch = reference.torch_or_skip(10 + factor)
    from benchmarks import torch_tslib

    config = ForecastConfig(**SMALL, factor=factor, distil=distil)
    reference_model = torch_tslib.build("Informer", **config.to_dict()).eval()
    with torch.no_grad():  # every parameter and BatchNorm statistic moved off its initial value
        for key, tensor in reference_model.state_dict().items():
            if key.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape) + 0.5)
            elif tensor.is_floating_point() and not key.endswith(".pe"):
                tensor.add_(0.3 * torch.randn(tensor.shape))
        inputs = _inputs(torch, config, seed=factor)
        expected = reference_model(*inputs).numpy()
    samples = [
        m.last_sample.numpy()
        for m in reference_model.modules()
        if isinstance(m, torch_tslib.ProbAttention)
    ]
    model = tslib.load_checkpoint(
        reference_model.state_dict(), model="Informer", **config.to_dict()
    )
    attentions = model.prob_attentions()
    assert [a.causal for a in attentions] == [False] * 2 + [True, False]
    for attention, sample in zip(attentions, samples, strict=True):
        attention.sample_indices = sample
    out = model([t.numpy() for t in inputs], training=False).numpy()
    assert out.shape == expected.shape == (4, 12, 3)
    assert np.max(np.abs(out - expected)) <= 1e-5 * np.max(np.abs(expected))
    # (6) TSLib's parameters are our trainable weights (the BatchNorm statistics are buffers).
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == sum(p.numel() for p in reference_model.parameters())


# --- the model --------------------------------------------------------------------------------


def _numpy_inputs(config, seed=0, batch=2):
    rng = np.random.default_rng(seed)
    decoder_len = config.label_len + config.pred_len
    shapes = [(config.seq_len, config.enc_in), (config.seq_len, 4)]
    shapes += [(decoder_len, config.dec_in), (decoder_len, 4)]
    return [rng.normal(size=(batch, *shape)).astype("float32") for shape in shapes]


def test_keras_file_round_trip_given_the_samples(tmp_path):
    keras.utils.set_random_seed(6)
    config = ForecastConfig(**SMALL, factor=3)
    model = Informer(config)
    inputs = _numpy_inputs(config)
    first = model(inputs, training=False).numpy()
    samples = [a.last_sample.numpy() for a in model.prob_attentions()]
    assert [s.shape for s in samples] == [(48, 12), (25, 12), (36, 12), (36, 12)]
    path = os.path.join(str(tmp_path), "informer.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is Informer and loaded.get_config() == model.get_config()
    for attention, sample in zip(loaded.prob_attentions(), samples):
        attention.sample_indices = sample
    np.testing.assert_allclose(loaded(inputs, training=False).numpy(), first, rtol=0, atol=1e-6)
    assert MODELS["Informer"] is Informer


def test_forward_compiles_with_xla():
    keras.utils.set_random_seed(7)
    config = ForecastConfig(**SMALL)
    model = Informer(config)
    inputs = _numpy_inputs(config)
    eager = model(inputs, training=False).numpy()
    for attention in model.prob_attentions():  # given samples: the compiled forward is the eager
        attention.sample_indices = attention.last_sample.numpy()
    compiled = tf.function(lambda x: model(x, training=False), jit_compile=True)(inputs)
    assert compiled.shape == (2, 12, 3)
    np.testing.assert_allclose(compiled.numpy(), eager, rtol=1e-5, atol=1e-5)
    # The draws compile too (a SeedGenerator's state: new keys at each call).
    layer = ProbAttention(8, 2, factor=1, causal=True)
    draw = tf.function(lambda x: layer(x), jit_compile=True)
    x = tf.random.normal((2, 20, 8))
    first, second = draw(x).numpy(), draw(x).numpy()
    assert np.isfinite(first).all() and not np.array_equal(first, second)


def test_refuses_embed_other_than_timef():
    with pytest.raises(ValueError, match="timeF"):
        Informer(ForecastConfig(**SMALL, embed="fixed"))
