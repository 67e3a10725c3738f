"""The forward benchmark's cases: each public layer, its inputs, and what it is compared with.

A case builder returns the layer's forward function, its inputs, the baseline (what a user would
write without tf_tsembed, run in the same jit mode) and further references. Builders exist for
layers that colleagues may not have finished: `available_layers` keeps those that
`tf_tsembed` exports at run time.
"""

import dataclasses
import importlib.util
import os
import re

import numpy as np
import tensorflow as tf

import tf_tsembed
from benchmarks._devices import MODES
from tf_tsembed._sinusoid import sinusoid as sinusoid_table

keras = tf.keras

KERNEL_SIZE = 3
# Calendar marks for freq "h", coarse to fine: month 1..12, day 1..31, weekday 0..6, hour 0..23.
MARK_LOW = np.array([1, 1, 0, 0])
MARK_HIGH = np.array([13, 32, 7, 24])
PATCH_LEN, STRIDE = 16, 8


@dataclasses.dataclass(frozen=True)
class Shape:
    """Batch B, length L, input channels C, embedding size D: the `(B, L, C) -> D` of a case."""

    batch: int
    length: int
    channels: int
    d_model: int

    @classmethod
    def parse(cls, text):
        """`"BxLxC:D"`, e.g. `"32x96x7:512"`."""
        match = re.fullmatch(r"\s*(\d+)x(\d+)x(\d+):(\d+)\s*", text)
        if not match or 0 in [int(group) for group in match.groups()]:
            raise ValueError(f"A shape must be BxLxC:D with positive integers, e.g. 32x96x7:512; received {text!r}.")
        return cls(*[int(group) for group in match.groups()])

    def as_list(self):
        return [self.batch, self.length, self.channels, self.d_model]

    def __str__(self):
        return f"({self.batch}, {self.length}, {self.channels} -> {self.d_model})"


@dataclasses.dataclass(frozen=True)
class Reference:
    """A function timed beside the layer, in the case's mode when that is one of `modes`.

    `native=True` marks another framework's function: it is called as it is, never traced.
    """

    function: object
    inputs: tuple
    modes: tuple = MODES
    native: bool = False


@dataclasses.dataclass(frozen=True)
class Case:
    forward: object
    inputs: tuple
    baseline_name: str
    baseline: Reference
    references: dict


def _normal(rng, shape):
    return tf.constant(rng.normal(size=shape).astype(np.float32))


def calendar_marks(rng, shape):
    """Valid integer calendar marks `(B, L, 4)` for freq "h"."""
    size = (shape.batch, shape.length, len(MARK_LOW))
    return tf.constant(rng.integers(MARK_LOW, MARK_HIGH, size=size).astype(np.int32))


def _time_features(rng, shape):
    size = (shape.batch, shape.length, len(MARK_LOW))
    return tf.constant(rng.uniform(-0.5, 0.5, size=size).astype(np.float32))


def _constant(table, dtype):
    return tf.cast(tf.constant(np.asarray(table, np.float32)), dtype)


def user_position(shape, dtype):
    """A user's positional term: a constant table, sliced to the length."""
    table = _constant(sinusoid_table(max(shape.length, 1), shape.d_model), dtype)
    return lambda length: table[None, :length]


def user_calendar(shape, dtype):
    """A user's fixed calendar embedding: one constant sinusoid table per mark column, summed."""
    tables = [_constant(sinusoid_table(int(size), shape.d_model), dtype) for size in MARK_HIGH]

    def calendar(marks):
        total = tf.gather(tables[0], marks[..., 0])
        for column in range(1, len(tables)):
            total += tf.gather(tables[column], marks[..., column])
        return total

    return calendar


def _keras_conv1d(shape, policy, use_bias, x):
    conv = keras.layers.Conv1D(shape.d_model, KERNEL_SIZE, padding="same", use_bias=use_bias, dtype=policy)
    conv(x)
    return conv


def _torch_circular_conv1d(x, kernel, bias, dtype):
    """PyTorch's `Conv1d(padding_mode="circular")` on the same data and weights, channels first."""
    # PyTorch's OpenMP threads otherwise spin after each call and slow whatever runs next in the
    # round; read when torch is first imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch_dtype = {tf.float32: torch.float32, tf.bfloat16: torch.bfloat16, tf.float16: torch.float16}[dtype]
    kernel_size, channels, d_model = kernel.shape
    conv = torch.nn.Conv1d(channels, d_model, kernel_size, padding=(kernel_size - 1) // 2, padding_mode="circular")
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(2, 1, 0))))
        conv.bias.copy_(torch.from_numpy(bias))
    conv = conv.to(torch_dtype)
    x_ncl = torch.from_numpy(np.ascontiguousarray(x.numpy().transpose(0, 2, 1))).to(torch_dtype)

    def forward():
        with torch.no_grad():
            return conv(x_ncl)

    return forward


BARE_MATMUL = "matmul alone, stacked input given"
SAME_LAYER_FLOAT32 = "same layer in float32"


def _bare_matmul(shape, dtype, rng):
    """The one product TokenEmbedding's jit-on CPU path does, given its stacked input, in float32
    and rounded to `dtype` as the layer does there: what any formulation built on XLA's CPU matmul
    costs at least."""
    contraction = KERNEL_SIZE * shape.channels + 1  # the bias folded in as a row
    stacked = tf.constant(rng.normal(size=(shape.batch * shape.length, contraction)), tf.float32)
    weights = tf.constant(rng.normal(size=(contraction, shape.d_model)), tf.float32)

    def matmul(stacked, weights):
        return tf.cast(tf.matmul(stacked, weights), dtype)

    return Reference(matmul, (stacked, weights), modes=("xla",))


def token_embedding(shape, policy, rng, device):
    x = _normal(rng, (shape.batch, shape.length, shape.channels))
    layer = tf_tsembed.TokenEmbedding(shape.channels, shape.d_model, kernel_size=KERNEL_SIZE, dtype=policy)
    layer(x)
    conv = _keras_conv1d(shape, policy, True, x)
    conv.set_weights(layer.get_weights())
    dtype = layer.compute_dtype
    kernel, bias = layer.get_weights()
    kernel_c, bias_c = _constant(kernel, dtype), _constant(bias, dtype)
    pad = (KERNEL_SIZE - 1) // 2

    def plain_circular(x):
        x = tf.cast(x, dtype)
        wrapped = tf.concat([x[:, shape.length - pad :], x, x[:, :pad]], axis=1)
        return tf.nn.conv1d(wrapped, kernel_c, 1, "VALID") + bias_c

    references = {"plain TF pad+conv, no XLA": Reference(plain_circular, (x,), modes=("eager", "function"))}
    references[BARE_MATMUL] = _bare_matmul(shape, dtype, rng)
    if dtype != "float32":
        float32_layer = tf_tsembed.TokenEmbedding(shape.channels, shape.d_model, kernel_size=KERNEL_SIZE)
        float32_layer(x)
        float32_layer.set_weights(layer.get_weights())
        references[SAME_LAYER_FLOAT32] = Reference(float32_layer, (x,))
    if device.kind == "CPU" and importlib.util.find_spec("torch") is not None:
        references["PyTorch Conv1d circular"] = Reference(
            _torch_circular_conv1d(x, kernel, bias, tf.as_dtype(dtype)), (), modes=("eager",), native=True
        )
    return Case(layer, (x,), "Conv1D(padding='same')", Reference(conv, (x,)), references)


def positional_embedding(shape, policy, rng, device):
    del device
    x = _normal(rng, (shape.batch, shape.length, shape.channels))
    layer = tf_tsembed.PositionalEmbedding(max_len=max(5000, shape.length), d_model=shape.d_model, dtype=policy)
    layer(x)
    position = user_position(shape, layer.compute_dtype)
    references = {"same layer, batch 1": Reference(layer, (x[:1],))}
    return Case(layer, (x,), "slice of a constant", Reference(lambda x: position(x.shape[1]), (x,)), references)


def _summed_embedding(with_position):
    def build(shape, policy, rng, device):
        del device
        x = _normal(rng, (shape.batch, shape.length, shape.channels))
        marks = calendar_marks(rng, shape)
        layer_type = tf_tsembed.DataEmbedding if with_position else tf_tsembed.DataEmbeddingWithoutPosition
        layer = layer_type(shape.channels, shape.d_model, embed_type="fixed", freq="h", dtype=policy)
        layer(x, marks)
        dtype = layer.compute_dtype
        conv = _keras_conv1d(shape, policy, False, x)
        calendar = user_calendar(shape, dtype)
        position = user_position(shape, dtype)

        def user_sum(x, marks):
            outputs = conv(x) + calendar(marks)
            return outputs + position(shape.length) if with_position else outputs

        token = tf_tsembed.TokenEmbedding(shape.channels, shape.d_model, use_bias=False, dtype=policy)
        token(x)
        references = {"TokenEmbedding alone": Reference(token, (x,))}
        return Case(layer, (x, marks), "Conv1D same + gathers (+ slice)", Reference(user_sum, (x, marks)), references)

    return build


def data_embedding_inverted(shape, policy, rng, device):
    del device
    x = _normal(rng, (shape.batch, shape.length, shape.channels))
    features = _time_features(rng, shape)
    layer = tf_tsembed.DataEmbeddingInverted(shape.length, shape.d_model, dtype=policy)
    layer(x, features)
    dense = keras.layers.Dense(shape.d_model, dtype=policy)

    def user_inverted(x, features):
        return dense(tf.transpose(tf.concat([x, features], axis=-1), (0, 2, 1)))

    user_inverted(x, features)
    return Case(layer, (x, features), "concat+transpose+Dense", Reference(user_inverted, (x, features)), {})


def temporal_embedding(shape, policy, rng, device):
    del device
    marks = calendar_marks(rng, shape)
    layer = tf_tsembed.TemporalEmbedding(shape.d_model, embed_type="fixed", freq="h", dtype=policy)
    layer(marks)
    calendar = user_calendar(shape, layer.compute_dtype)
    return Case(layer, (marks,), "4 gathers from constants", Reference(calendar, (marks,)), {})


def fixed_embedding(shape, policy, rng, device):
    del device
    hours = tf.constant(rng.integers(0, 24, size=(shape.batch, shape.length)).astype(np.int32))
    layer = tf_tsembed.FixedEmbedding(24, shape.d_model, dtype=policy)
    layer(hours)
    table = _constant(sinusoid_table(24, shape.d_model), layer.compute_dtype)
    return Case(layer, (hours,), "gather from a constant", Reference(lambda ids: tf.gather(table, ids), (hours,)), {})


def time_feature_embedding(shape, policy, rng, device):
    del device
    features = _time_features(rng, shape)
    layer = tf_tsembed.TimeFeatureEmbedding(shape.d_model, freq="h", dtype=policy)
    layer(features)
    dense = keras.layers.Dense(shape.d_model, use_bias=False, dtype=policy)
    dense(features)
    return Case(layer, (features,), "Dense(use_bias=False)", Reference(dense, (features,)), {})


def patch_embedding(shape, policy, rng, device):
    """PatchTST's defaults (patch 16, stride 8, padding 8) on `(B, N=C, L)`."""
    del device
    series = _normal(rng, (shape.batch, shape.channels, shape.length))
    layer = tf_tsembed.PatchEmbedding(shape.d_model, patch_len=PATCH_LEN, stride=STRIDE, padding=STRIDE, dtype=policy)
    layer(series)
    num_patches = (shape.length + STRIDE - PATCH_LEN) // STRIDE + 1
    dense = keras.layers.Dense(shape.d_model, use_bias=False, dtype=policy)
    position = user_position(Shape(1, num_patches, 1, shape.d_model), layer.compute_dtype)

    def user_patches(series):
        padded = tf.concat([series, tf.repeat(series[..., -1:], STRIDE, axis=-1)], axis=-1)
        patches = tf.reshape(tf.signal.frame(padded, PATCH_LEN, STRIDE), (-1, num_patches, PATCH_LEN))
        return dense(patches) + position(num_patches)

    user_patches(series)
    return Case(lambda s: layer(s)[0], (series,), "pad+frame+Dense+slice", Reference(user_patches, (series,)), {})


def reversible_instance_norm(shape, policy, rng, device):
    del device
    x = _normal(rng, (shape.batch, shape.length, shape.channels))
    layer = tf_tsembed.ReversibleInstanceNorm(shape.channels, dtype=policy)
    layer(x)
    dtype = layer.compute_dtype

    def user_norm(x):
        mean, variance = tf.nn.moments(x, axes=[1], keepdims=True)
        return tf.cast((x - mean) * tf.math.rsqrt(variance + 1e-5), dtype)

    return Case(layer, (x,), "tf.nn.moments normalise", Reference(user_norm, (x,)), {})


BUILDERS = {
    "TokenEmbedding": token_embedding,
    "PositionalEmbedding": positional_embedding,
    "DataEmbedding": _summed_embedding(with_position=True),
    "DataEmbeddingWithoutPosition": _summed_embedding(with_position=False),
    "DataEmbeddingInverted": data_embedding_inverted,
    "TemporalEmbedding": temporal_embedding,
    "FixedEmbedding": fixed_embedding,
    "TimeFeatureEmbedding": time_feature_embedding,
    "PatchEmbedding": patch_embedding,
    "ReversibleInstanceNorm": reversible_instance_norm,
}


def available_layers():
    """The layers with a builder that `tf_tsembed` exports now, in `BUILDERS` order."""
    return [name for name in BUILDERS if getattr(tf_tsembed, name, None) is not None]
