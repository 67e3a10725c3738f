"""load_pytorch_weights: state_dicts built in PyTorch's names and layouts, checked against NumPy
implementations of the PyTorch modules' forward passes written in those layouts (and, where torch
is importable, against torch itself)."""

import numpy as np
import pytest
import reference
import tensorflow as tf

from tf_tsembed import (
    DataEmbedding,
    DataEmbeddingInverted,
    DataEmbeddingWithoutPosition,
    FixedEmbedding,
    PatchEmbedding,
    PositionalEmbedding,
    TemporalEmbedding,
    TimeFeatureEmbedding,
    TokenEmbedding,
    load_pytorch_weights,
)

keras = tf.keras
BATCH, LENGTH, C_IN, D_MODEL = 2, 12, 3, 8
# (field, table rows), coarse to fine: the integer mark columns of docs/formulas.md.
FIELDS = (("month", 13), ("day", 32), ("weekday", 7), ("hour", 24), ("minute", 4))
MARKS = {"h": 4, "t": 5}
FEATURES = {"h": 4, "t": 5}
RTOL, ATOL = 1e-5, 1e-5


# NumPy forward passes of the PyTorch modules, in PyTorch's weight layouts, float64.


def torch_conv1d_circular(x, weight, bias=None):
    """`nn.Conv1d(padding=(k-1)//2, padding_mode="circular")` on channels-last `x (B, L, C)`.

    `weight (D, C, k)`: cross-correlation of the wrapped sequence, `y[b,t,d] = sum_{c,j}
    weight[d,c,j] * padded[b,t+j,c]`.
    """
    x = np.asarray(x, np.float64)
    kernel_size = weight.shape[2]
    pad = (kernel_size - 1) // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (0, 0)), mode="wrap")
    length = x.shape[1]
    windows = np.stack([padded[:, j : j + length, :] for j in range(kernel_size)], axis=-1)
    y = np.einsum("btcj,dcj->btd", windows, np.asarray(weight, np.float64))
    return y if bias is None else y + bias


def torch_linear(x, weight, bias=None):
    """`nn.Linear`: `x @ weight.T + bias` with `weight (out, in)`."""
    y = np.asarray(x, np.float64) @ np.asarray(weight, np.float64).T
    return y if bias is None else y + bias


def torch_patches(x, patch_len, stride, padding):
    """`ReplicationPad1d((0, padding))`, `unfold(-1, patch_len, stride)`, as rows b*N + n."""
    padded = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (0, padding)), mode="edge")
    count = (padded.shape[2] - patch_len) // stride + 1
    patches = np.stack([padded[..., p * stride : p * stride + patch_len] for p in range(count)], 2)
    return patches.reshape(-1, count, patch_len)


# Random state_dicts in PyTorch's names and layouts, with the forward pass of their module.


def _rng(seed=0):
    return np.random.default_rng(seed)


def _x(seed=1):
    return _rng(seed).normal(size=(BATCH, LENGTH, C_IN)).astype("float32")


def _marks(freq, seed=2):
    rng = _rng(seed)
    low = {"month": 1, "day": 1}
    columns = [
        rng.integers(low.get(f, 0), rows, (BATCH, LENGTH)) for f, rows in FIELDS[: MARKS[freq]]
    ]
    return np.stack(columns, axis=-1).astype("int32")


def _features(freq, seed=3):
    return _rng(seed).uniform(-0.5, 0.5, (BATCH, LENGTH, FEATURES[freq])).astype("float32")


def _token_state(rng, kernel_size=3, bias=False):
    state = {"tokenConv.weight": rng.normal(size=(D_MODEL, C_IN, kernel_size))}
    if bias:
        state["tokenConv.bias"] = rng.normal(size=(D_MODEL,))
    return state


def _token_forward(state, x):
    return torch_conv1d_circular(x, state["tokenConv.weight"], state.get("tokenConv.bias"))


def _temporal_state(rng, embed_type, freq, bias=False):
    """A TemporalEmbedding's or TimeFeatureEmbedding's state_dict, with its forward pass."""
    if embed_type == "timeF":
        state = {"embed.weight": rng.normal(size=(D_MODEL, FEATURES[freq]))}
        if bias:
            state["embed.bias"] = rng.normal(size=(D_MODEL,))

        def forward(x_mark):
            return torch_linear(x_mark, state["embed.weight"], state.get("embed.bias"))

        return state, _features(freq), forward
    fields = FIELDS[: MARKS[freq]]
    if embed_type == "fixed":
        # The reference's FixedEmbedding keeps its frozen sinusoid as a parameter `emb.weight`.
        tables = {f"{f}_embed.emb.weight": reference.sinusoid(rows, D_MODEL) for f, rows in fields}
    else:
        tables = {
            f"{field}_embed.weight": rng.normal(size=(rows, D_MODEL)) for field, rows in fields
        }
    ordered = list(tables.values())

    def forward(x_mark):
        return sum(table[x_mark[..., i]] for i, table in enumerate(ordered))

    return tables, _marks(freq), forward


def _prefixed(prefix, state):
    return {prefix + key: value for key, value in state.items()}


def _pe(max_len=5000):
    return reference.sinusoid(max_len, D_MODEL)[None]


def _built(layer, *shapes):
    layer.build(*shapes)
    return layer


def _assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=RTOL, atol=ATOL)


# Loading and computing like the reference.


@pytest.mark.parametrize("use_bias, kernel_size", [(True, 5), (False, 3)])
def test_token_embedding(use_bias, kernel_size):
    state = _token_state(_rng(), kernel_size, bias=use_bias)
    layer = _built(
        TokenEmbedding(C_IN, D_MODEL, kernel_size, use_bias=use_bias), (None, None, C_IN)
    )
    assert load_pytorch_weights(layer, state) == []
    x = _x()
    _assert_close(layer(x), _token_forward(state, x))


@pytest.mark.parametrize("use_bias", [False, True])
def test_time_feature_embedding(use_bias):
    state, features, forward = _temporal_state(_rng(), "timeF", "h", bias=use_bias)
    layer = _built(TimeFeatureEmbedding(D_MODEL, "h", use_bias=use_bias), (None, None, 4))
    assert load_pytorch_weights(layer, state) == []
    _assert_close(layer(features), forward(features))


def test_learned_temporal_embedding_with_minutes():
    state, marks, forward = _temporal_state(_rng(), "learned", "t")
    layer = _built(TemporalEmbedding(D_MODEL, "learned", "t"), (None, None, 5))
    assert load_pytorch_weights(layer, state) == []
    _assert_close(layer(marks), forward(marks))


def test_fixed_tables_and_positional_buffers_are_skipped():
    state, marks, forward = _temporal_state(_rng(), "fixed", "h")
    layer = _built(TemporalEmbedding(D_MODEL, "fixed", "h"), (None, None, 4))
    assert load_pytorch_weights(layer, state) == list(state)
    _assert_close(layer(marks), forward(marks))
    position = _built(PositionalEmbedding(5000, D_MODEL), (None, None, C_IN))
    assert load_pytorch_weights(position, {"pe": _pe()}) == ["pe"]
    fixed = _built(FixedEmbedding(24, D_MODEL), (None,))
    table = reference.sinusoid(24, D_MODEL)
    assert load_pytorch_weights(fixed, {"emb.weight": table}) == ["emb.weight"]


@pytest.mark.parametrize("convention", ["tslib", "informer"])
@pytest.mark.parametrize("embed_type", ["fixed", "learned", "timeF"])
def test_data_embedding_inside_a_model_state_dict(embed_type, convention):
    rng = _rng()
    informer = convention == "informer"
    token = _token_state(rng, bias=informer)
    temporal, x_mark, temporal_forward = _temporal_state(rng, embed_type, "h", bias=informer)
    embedding = {
        **_prefixed("value_embedding.", token),
        "position_embedding.pe": _pe(),
        **_prefixed("temporal_embedding.", temporal),
    }
    # A whole model: the decoder's embedding and the head are not under the prefix.
    state = {
        **_prefixed("enc_embedding.", embedding),
        **_prefixed("dec_embedding.", {"value_embedding.tokenConv.weight": np.zeros((1, 1, 1))}),
        "projection.weight": rng.normal(size=(C_IN, D_MODEL)),
    }
    layer = DataEmbedding(C_IN, D_MODEL, embed_type, "h", convention=convention)
    layer.build((None, None, C_IN))
    skipped = load_pytorch_weights(layer, state, prefix="enc_embedding.")
    expected_skipped = ["enc_embedding.position_embedding.pe"]
    if embed_type == "fixed":
        expected_skipped += [f"enc_embedding.temporal_embedding.{key}" for key in temporal]
    assert skipped == expected_skipped
    x = _x()
    expected = (
        _token_forward(token, x) + reference.sinusoid(LENGTH, D_MODEL) + temporal_forward(x_mark)
    )
    _assert_close(layer(x, x_mark, training=False), expected)


@pytest.mark.parametrize("with_unused_pe", [True, False])
def test_data_embedding_without_position(with_unused_pe):
    rng = _rng()
    token = _token_state(rng)
    temporal, x_mark, temporal_forward = _temporal_state(rng, "learned", "h")
    state = {**_prefixed("value_embedding.", token), **_prefixed("temporal_embedding.", temporal)}
    if with_unused_pe:  # Time-Series-Library's DataEmbedding_wo_pos holds a `pe` it never adds.
        state["position_embedding.pe"] = _pe()
    layer = _built(DataEmbeddingWithoutPosition(C_IN, D_MODEL, "learned"), (None, None, C_IN))
    assert load_pytorch_weights(layer, state) == ["position_embedding.pe"] * with_unused_pe
    x = _x()
    _assert_close(
        layer(x, x_mark, training=False), _token_forward(token, x) + temporal_forward(x_mark)
    )


def test_data_embedding_inverted():
    rng = _rng()
    state = {
        "value_embedding.weight": rng.normal(size=(D_MODEL, LENGTH)),
        "value_embedding.bias": rng.normal(size=(D_MODEL,)),
    }
    layer = _built(DataEmbeddingInverted(LENGTH, D_MODEL), (None, LENGTH, C_IN))
    assert load_pytorch_weights(layer, _prefixed("enc_embedding.", state), "enc_embedding.") == []
    x, x_mark = _x(), _features("h")
    tokens = np.concatenate([np.swapaxes(x, 1, 2), np.swapaxes(x_mark, 1, 2)], axis=1)
    expected = torch_linear(tokens, state["value_embedding.weight"], state["value_embedding.bias"])
    _assert_close(layer(x, x_mark, training=False), expected)


PATCH_LEN, STRIDE, PADDING = 4, 2, 2
NUM_PATCHES = (LENGTH + PADDING - PATCH_LEN) // STRIDE + 1


def test_patch_embedding_time_series_library():
    weight = _rng().normal(size=(D_MODEL, PATCH_LEN))
    state = {"value_embedding.weight": weight, "position_embedding.pe": _pe()}
    layer = _built(PatchEmbedding(D_MODEL, PATCH_LEN, STRIDE, PADDING), (None, C_IN, LENGTH))
    assert load_pytorch_weights(layer, state) == ["position_embedding.pe"]
    x = np.swapaxes(_x(), 1, 2)
    expected = torch_linear(torch_patches(x, PATCH_LEN, STRIDE, PADDING), weight)
    expected += reference.sinusoid(NUM_PATCHES, D_MODEL)
    _assert_close(layer(x)[0], expected)


def _patchtst_layer():
    layer = PatchEmbedding(D_MODEL, PATCH_LEN, STRIDE, PADDING, position="learned", use_bias=True)
    return _built(layer, (None, C_IN, LENGTH))


def test_patch_embedding_original_patchtst_backbone():
    rng = _rng()
    embedding = {
        "W_P.weight": rng.normal(size=(D_MODEL, PATCH_LEN)),
        "W_P.bias": rng.normal(size=(D_MODEL,)),
        "W_pos": rng.uniform(-0.02, 0.02, (NUM_PATCHES, D_MODEL)),
    }
    # The backbone holds the encoder beside W_P and W_pos; those keys are not the layer's.
    backbone = {**embedding, "encoder.layers.0.self_attn.W_Q.weight": np.zeros((D_MODEL, D_MODEL))}
    state = {**_prefixed("model.backbone.", backbone), "model.head.linear.weight": np.zeros((1, 1))}
    layer = _patchtst_layer()
    assert load_pytorch_weights(layer, state, prefix="model.backbone.") == []
    x = np.swapaxes(_x(), 1, 2)
    patches = torch_patches(x, PATCH_LEN, STRIDE, PADDING)
    expected = torch_linear(patches, embedding["W_P.weight"], embedding["W_P.bias"])
    expected += embedding["W_pos"]
    _assert_close(layer(x)[0], expected)


def test_mixed_bfloat16_layer_loads_float32_weights(mixed_policy):
    mixed_policy("mixed_bfloat16")
    rng = _rng()
    token = _token_state(rng, bias=True)
    temporal, x_mark, temporal_forward = _temporal_state(rng, "learned", "h")
    state = {**_prefixed("value_embedding.", token), **_prefixed("temporal_embedding.", temporal)}
    layer = DataEmbedding(C_IN, D_MODEL, "learned", convention="informer")
    layer.build((None, None, C_IN))
    load_pytorch_weights(layer, state)
    assert all(w.dtype == "float32" for w in layer.weights)
    bias = token["tokenConv.bias"].astype("float32")
    np.testing.assert_array_equal(layer.value_embedding.bias.numpy(), bias)
    x = _x()
    out = layer(x, x_mark, training=False)
    assert out.dtype == tf.bfloat16
    expected = (
        _token_forward(token, x) + reference.sinusoid(LENGTH, D_MODEL) + temporal_forward(x_mark)
    )
    scale = np.abs(expected).max()
    np.testing.assert_allclose(
        out.numpy().astype("float64"), expected, rtol=1e-2, atol=1e-2 * scale
    )


# Errors: one message with every problem, and nothing assigned before it.


def _token_layer(use_bias=True):
    return _built(
        TokenEmbedding(C_IN, D_MODEL, use_bias=use_bias, name="token"), (None, None, C_IN)
    )


def test_missing_keys():
    state = {"tokenConv.weight": np.zeros((D_MODEL, C_IN, 3))}
    with pytest.raises(ValueError) as error:
        load_pytorch_weights(_token_layer(), state)
    assert str(error.value) == (
        "Cannot load the PyTorch weights into TokenEmbedding 'token' (prefix=''):\n"
        "  missing keys: ['tokenConv.bias']"
    )


def test_unexpected_keys():
    # Time-Series-Library has no biases: an Informer state_dict into a 'tslib' layer.
    state = _prefixed("enc.", _token_state(_rng(), bias=True))
    with pytest.raises(ValueError) as error:
        load_pytorch_weights(_token_layer(use_bias=False), state, prefix="enc.")
    assert str(error.value) == (
        "Cannot load the PyTorch weights into TokenEmbedding 'token' (prefix='enc.'):\n"
        "  unexpected keys: ['enc.tokenConv.bias']"
    )


def test_tables_of_another_frequency_are_unexpected():
    state, _, _ = _temporal_state(_rng(), "learned", "t")
    layer = _built(TemporalEmbedding(D_MODEL, "learned", "h", name="temporal"), (None, None, 4))
    with pytest.raises(ValueError, match=r"unexpected keys: \['minute_embed.weight'\]$"):
        load_pytorch_weights(layer, state)


def test_mis_shaped_entries_name_key_layout_and_both_shapes():
    # The conv weight in Keras' layout (k, C, D) instead of PyTorch's (D, C, k), and a bad bias.
    state = {
        "tokenConv.weight": np.zeros((3, C_IN, D_MODEL)),
        "tokenConv.bias": np.zeros((D_MODEL, 1)),
    }
    with pytest.raises(ValueError) as error:
        load_pytorch_weights(_token_layer(), state)
    assert str(error.value) == (
        "Cannot load the PyTorch weights into TokenEmbedding 'token' (prefix=''):\n"
        "  'tokenConv.weight' must have the PyTorch shape (d_model, c_in, kernel_size) "
        "= (8, 3, 3); "
        "received (3, 3, 8)\n"
        "  'tokenConv.bias' must have the PyTorch shape (d_model,) = (8,); received (8, 1)"
    )


def test_wrong_prefix_and_naming_are_reported_together():
    state = {
        "value_embedding.weight": np.zeros((D_MODEL, PATCH_LEN)),
        "W_pos": np.zeros((1, D_MODEL)),
    }
    layer = _patchtst_layer()
    with pytest.raises(ValueError) as error:
        load_pytorch_weights(layer, state, prefix="backbone.")
    assert str(error.value).splitlines()[1:] == [
        "  missing keys: ['backbone.W_P.weight', 'backbone.W_P.bias', 'backbone.W_pos']",
        "  no key of state_dict starts with prefix='backbone.'",
    ]
    with pytest.raises(ValueError) as error:
        load_pytorch_weights(layer, state)
    assert str(error.value).splitlines()[1:] == [
        "  missing keys: ['W_P.weight', 'W_P.bias']",
        f"  'W_pos' must have the PyTorch shape (num_patches, d_model) "
        f"= ({NUM_PATCHES}, {D_MODEL}); "
        f"received (1, {D_MODEL})",
    ]


def test_non_numeric_entry():
    state = {"tokenConv.weight": np.full((D_MODEL, C_IN, 3), "w")}
    with pytest.raises(
        ValueError, match=r"'tokenConv.weight' must hold numbers; received dtype <U1$"
    ):
        load_pytorch_weights(_token_layer(use_bias=False), state)


def test_a_failed_load_assigns_nothing():
    rng = _rng()
    token = _token_state(rng, bias=True)
    temporal, _, _ = _temporal_state(rng, "learned", "h")
    temporal["hour_embed.weight"] = temporal["hour_embed.weight"][:-1]
    state = {**_prefixed("value_embedding.", token), **_prefixed("temporal_embedding.", temporal)}
    layer = _built(
        DataEmbedding(C_IN, D_MODEL, "learned", convention="informer"), (None, None, C_IN)
    )
    before = layer.get_weights()
    message = (
        r"'temporal_embedding.hour_embed.weight' must have the PyTorch shape "
        r"\(hour rows, d_model\) = \(24, 8\); received \(23, 8\)$"
    )
    with pytest.raises(ValueError, match=message):
        load_pytorch_weights(layer, state)
    for old, new in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_values_beyond_the_dtype_are_refused_and_nothing_is_assigned():
    state = _token_state(_rng(), bias=True)
    state["tokenConv.weight"][5, 1, 2] = 1e39  # float32 tops out at 3.4e38: would load as inf
    state["tokenConv.weight"][6, 0, 0] = -1e39
    layer = _token_layer()
    before = layer.get_weights()
    with pytest.raises(ValueError) as error:
        load_pytorch_weights(layer, state)
    assert str(error.value) == (
        "Cannot load the PyTorch weights into TokenEmbedding 'token' (prefix=''):\n"
        "  'tokenConv.weight' holds 2 value(s) beyond the range of float32 (+-3.40282e+38), "
        "e.g. 1e+39 at index (5, 1, 2)"
    )
    for old, new in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_float16_variables_refuse_values_beyond_65504():
    layer = TimeFeatureEmbedding(D_MODEL, "h", name="timef", dtype="float16")
    layer.build((None, None, 4))
    weight = _rng().normal(size=(D_MODEL, 4))
    weight[0, 3] = 7e4
    message = r"'embed.weight' holds 1 value\(s\) beyond the range of float16"
    with pytest.raises(ValueError, match=message):
        load_pytorch_weights(layer, {"embed.weight": weight})
    weight[0, 3] = 6e4
    load_pytorch_weights(layer, {"embed.weight": weight})
    np.testing.assert_array_equal(layer.kernel.numpy(), weight.T.astype("float16"))


def test_bfloat16_arrays_load_and_non_finite_values_load_as_they_are():
    # NumPy calls bfloat16's kind 'V': it is still a number.
    bfloat16 = tf.bfloat16.as_numpy_dtype
    weight = _rng().normal(size=(D_MODEL, 4)).astype(bfloat16)
    weight[1, 2], weight[2, 1] = np.inf, np.nan
    layer = _built(TimeFeatureEmbedding(D_MODEL, "h", name="timef"), (None, None, 4))
    load_pytorch_weights(layer, {"embed.weight": weight})
    np.testing.assert_array_equal(layer.kernel.numpy(), weight.T.astype("float32"))


def test_arrays_numpy_cannot_read_are_reported_with_the_rest():
    state = {"tokenConv.weight": [[1.0, 2.0], [3.0]], "tokenConv.bias": np.zeros((D_MODEL, 1))}
    layer = _token_layer()
    before = layer.get_weights()
    with pytest.raises(ValueError) as error:
        load_pytorch_weights(layer, state)
    lines = str(error.value).splitlines()
    assert lines[1].startswith(
        "  'tokenConv.weight' could not be read as a NumPy array (ValueError: "
    )
    assert lines[1].endswith("pass arrays, e.g. tensor.detach().cpu().float().numpy()")
    assert lines[2] == (
        "  'tokenConv.bias' must have the PyTorch shape (d_model,) = (8,); received (8, 1)"
    )
    for old, new in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_torch_tensors_that_numpy_cannot_read_are_reported():
    torch = reference.torch_or_skip(3)
    conv = torch.nn.Conv1d(C_IN, D_MODEL, 3)
    layer = _token_layer()
    for state, reason in (
        ({f"tokenConv.{k}": v for k, v in conv.named_parameters()}, "requires grad"),
        ({f"tokenConv.{k}": v.bfloat16() for k, v in conv.state_dict().items()}, "BFloat16"),
    ):
        message = rf"'tokenConv.weight' could not be read as a NumPy array .*{reason}"
        with pytest.raises(ValueError, match=message):
            load_pytorch_weights(layer, state)
    load_pytorch_weights(layer, {f"tokenConv.{k}": v for k, v in conv.state_dict().items()})
    expected = conv.weight.detach().numpy().transpose(2, 1, 0)
    np.testing.assert_array_equal(layer.kernel.numpy(), expected)


def test_unbuilt_layer():
    with pytest.raises(ValueError) as error:
        load_pytorch_weights(TokenEmbedding(C_IN, D_MODEL, name="token"), _token_state(_rng()))
    assert str(error.value) == (
        "load_pytorch_weights needs a built layer, but TokenEmbedding 'token' is not built, so its "
        "weights do not exist yet: call it once on a batch, or call "
        "layer.build(input_shape), first."
    )


def test_bad_arguments():
    message = r"supports TokenEmbedding, .*PatchEmbedding; received a Dense\.$"
    with pytest.raises(TypeError, match=message):
        load_pytorch_weights(keras.layers.Dense(2), {})
    message = r"^`state_dict` must be a mapping of names to arrays; received a list\.$"
    with pytest.raises(TypeError, match=message):
        load_pytorch_weights(_token_layer(), [("tokenConv.weight", 0)])
    with pytest.raises(TypeError, match=r"^`prefix` must be a string; received prefix=None\.$"):
        load_pytorch_weights(_token_layer(), {}, prefix=None)


# Against PyTorch itself, where it is installed (CI does not need it).


def _torch_module(torch, **children):
    module = torch.nn.Module()
    for name, child in children.items():
        setattr(module, name, child)
    return module


def _torch_pe(torch, max_len):
    """The reference's PositionalEmbedding buffer, computed as it does, (1, max_len, D) float32."""
    position = torch.arange(0, max_len).float().unsqueeze(1)
    div_term = (torch.arange(0, D_MODEL, 2).float() * -(np.log(10000.0) / D_MODEL)).exp()
    pe = torch.zeros(max_len, D_MODEL)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.unsqueeze(0)


def _numpy_state(module):
    return {key: value.detach().cpu().numpy() for key, value in module.state_dict().items()}


def test_matches_torch_data_embedding():
    torch = reference.torch_or_skip(0)
    conv = torch.nn.Conv1d(C_IN, D_MODEL, 3, padding=1, padding_mode="circular")  # Informer: bias
    position = torch.nn.Module()
    position.register_buffer("pe", _torch_pe(torch, 100))
    fields = FIELDS[: MARKS["h"]]
    tables = {f"{field}_embed": torch.nn.Embedding(rows, D_MODEL) for field, rows in fields}
    module = _torch_module(
        torch,
        value_embedding=_torch_module(torch, tokenConv=conv),
        position_embedding=position,
        temporal_embedding=_torch_module(torch, **tables),
    )
    x, x_mark = _x(), _marks("h")
    with torch.no_grad():
        tx, tmarks = torch.from_numpy(x), torch.from_numpy(x_mark).long()
        expected = conv(tx.permute(0, 2, 1)).transpose(1, 2) + position.pe[:, :LENGTH]
        for column, table in enumerate(tables.values()):
            expected = expected + table(tmarks[..., column])
    layer = _built(
        DataEmbedding(C_IN, D_MODEL, "learned", convention="informer"), (None, None, C_IN)
    )
    assert load_pytorch_weights(layer, _numpy_state(module)) == ["position_embedding.pe"]
    _assert_close(layer(x, x_mark, training=False), expected.numpy())


def test_matches_torch_linear_embeddings():
    torch = reference.torch_or_skip(1)
    x, x_mark = _x(), _features("h")
    time_feature = _torch_module(torch, embed=torch.nn.Linear(4, D_MODEL, bias=False))
    inverted = _torch_module(torch, value_embedding=torch.nn.Linear(LENGTH, D_MODEL))
    with torch.no_grad():
        tx, tmark = torch.from_numpy(x), torch.from_numpy(x_mark)
        expected_time = time_feature.embed(tmark)
        tokens = torch.cat([tx.permute(0, 2, 1), tmark.permute(0, 2, 1)], 1)
        expected_inverted = inverted.value_embedding(tokens)
    layer = _built(TimeFeatureEmbedding(D_MODEL, "h"), (None, None, 4))
    load_pytorch_weights(layer, _numpy_state(time_feature))
    _assert_close(layer(x_mark), expected_time.numpy())
    layer = _built(DataEmbeddingInverted(LENGTH, D_MODEL), (None, LENGTH, C_IN))
    load_pytorch_weights(layer, _numpy_state(inverted))
    _assert_close(layer(x, x_mark, training=False), expected_inverted.numpy())


def test_matches_torch_patch_embeddings():
    torch = reference.torch_or_skip(2)
    x = np.swapaxes(_x(), 1, 2)
    with torch.no_grad():
        patches = torch.nn.ReplicationPad1d((0, PADDING))(torch.from_numpy(x))
        patches = patches.unfold(-1, PATCH_LEN, STRIDE).reshape(-1, NUM_PATCHES, PATCH_LEN)
        position = torch.nn.Module()
        position.register_buffer("pe", _torch_pe(torch, 100))
        tslib = _torch_module(
            torch,
            value_embedding=torch.nn.Linear(PATCH_LEN, D_MODEL, bias=False),
            position_embedding=position,
        )
        expected_tslib = tslib.value_embedding(patches) + position.pe[:, :NUM_PATCHES]
        backbone = _torch_module(
            torch,
            W_P=torch.nn.Linear(PATCH_LEN, D_MODEL),
            W_pos=torch.nn.Parameter(torch.empty(NUM_PATCHES, D_MODEL).uniform_(-0.02, 0.02)),
        )
        expected_patchtst = backbone.W_P(patches) + backbone.W_pos
    layer = _built(PatchEmbedding(D_MODEL, PATCH_LEN, STRIDE, PADDING), (None, C_IN, LENGTH))
    load_pytorch_weights(layer, _numpy_state(tslib))
    _assert_close(layer(x)[0], expected_tslib.numpy())
    layer = _patchtst_layer()
    load_pytorch_weights(layer, _prefixed("backbone.", _numpy_state(backbone)), prefix="backbone.")
    _assert_close(layer(x)[0], expected_patchtst.numpy())
