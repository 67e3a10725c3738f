"""The forward benchmark's cases: each public layer on random data, with its baseline (what a user
would write without tf_tsembed, run in the same jit mode) and further references."""

import importlib.util
import os
import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

import tf_tsembed
from benchmarks._devices import MODES

keras = tf.keras

KERNEL_SIZE = 3
# Calendar marks for freq "h", coarse to fine: month 1..12, day 1..31, weekday 0..6, hour 0..23.
MARK_LOW, MARK_HIGH = np.array([1, 1, 0, 0]), np.array([13, 32, 7, 24])
PATCH_LEN, STRIDE = 16, 8
# Labels of the references that benchmarks.targets reads.
BARE_MATMUL = "matmul alone, stacked input given"
SAME_LAYER_FLOAT32 = "same layer in float32"
BATCH_1 = "same layer, batch 1"
TOKEN_ALONE = "TokenEmbedding alone"
SUBLAYERS_ADDED = "its sublayers called one by one and added"


class Shape(NamedTuple):
    """Batch B, length L, input channels C, embedding size D: the `(B, L, C) -> D` of a case."""

    batch: int
    length: int
    channels: int
    d_model: int

    @classmethod
    def parse(cls, text):
        """`"BxLxC:D"`, e.g. `"32x96x7:512"`."""
        match = re.fullmatch(r"\s*(\d+)x(\d+)x(\d+):(\d+)\s*", text)
        sizes = [int(group) for group in match.groups()] if match else [0]
        if 0 in sizes:
            rule = "A shape must be BxLxC:D with positive integers, e.g. 32x96x7:512"
            raise ValueError(f"{rule}; received {text!r}.")
        return cls(*sizes)

    def __str__(self):
        return f"({self.batch}, {self.length}, {self.channels} -> {self.d_model})"


class Reference(NamedTuple):
    """A function timed beside the layer on `inputs`, in the case's mode when that is in `modes`."""

    function: Callable
    inputs: tuple
    modes: tuple = MODES


class Case(NamedTuple):
    forward: Callable
    inputs: tuple
    baseline_name: str
    baseline: Reference
    references: dict = {}


def _normal(rng, *size):
    return tf.constant(rng.normal(size=size).astype(np.float32))


def calendar_marks(rng, shape):
    """Valid integer calendar marks `(B, L, 4)` for freq "h"."""
    size = (shape.batch, shape.length, len(MARK_LOW))
    return tf.constant(rng.integers(MARK_LOW, MARK_HIGH, size=size).astype(np.int32))


def _time_features(rng, shape):
    size = (shape.batch, shape.length, len(MARK_LOW))
    return tf.constant(rng.uniform(-0.5, 0.5, size=size).astype(np.float32))


def user_sinusoid(rows, d_model, dtype):
    """The interleaved sinusoid (docs/formulas.md) as a user would precompute it: a constant."""
    angles = np.arange(rows)[:, None] * 10000.0 ** (-np.arange(0, d_model, 2) / d_model)
    table = np.empty((rows, d_model), np.float32)
    table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles[:, : d_model // 2])
    return tf.cast(tf.constant(table), dtype)


def user_calendar(d_model, dtype):
    """A user's fixed calendar embedding: one constant sinusoid table per mark column, summed."""
    tables = [user_sinusoid(int(size), d_model, dtype) for size in MARK_HIGH]

    def calendar(marks):
        total = tf.gather(tables[0], marks[..., 0])
        for column in range(1, len(tables)):
            total += tf.gather(tables[column], marks[..., column])
        return total

    return calendar


def _keras_conv1d(shape, policy, use_bias, x):
    conv = keras.layers.Conv1D(
        shape.d_model, KERNEL_SIZE, padding="same", use_bias=use_bias, dtype=policy
    )
    conv(x)
    return conv


def _torch_circular_conv1d(x, kernel, bias, dtype):
    """PyTorch's `Conv1d(padding_mode="circular")` on the same data and weights, channels first."""
    # PyTorch's OpenMP threads otherwise spin after each call and slow whatever runs next in the
    # round; read when torch is first imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    pad = KERNEL_SIZE // 2
    conv = torch.nn.Conv1d(*kernel.shape[1:], KERNEL_SIZE, padding=pad, padding_mode="circular")
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(2, 1, 0))))
        conv.bias.copy_(torch.from_numpy(bias))
    torch_dtype = getattr(torch, tf.as_dtype(dtype).name)
    conv = conv.to(torch_dtype)
    x_ncl = torch.from_numpy(np.ascontiguousarray(x.numpy().transpose(0, 2, 1))).to(torch_dtype)
    return torch.no_grad()(lambda: conv(x_ncl))


def _bare_matmul(shape, dtype, rng):
    """The one product TokenEmbedding's jit-on CPU path does, given its stacked input, in float32
    and rounded to `dtype` as the layer does there: what any formulation built on XLA's CPU matmul
    costs at least."""
    contraction = KERNEL_SIZE * shape.channels + 1  # the bias folded in as a row
    stacked = _normal(rng, shape.batch * shape.length, contraction)
    weights = _normal(rng, contraction, shape.d_model)
    matmul = lambda stacked, weights: tf.cast(tf.matmul(stacked, weights), dtype)  # noqa: E731
    return Reference(matmul, (stacked, weights), modes=("xla",))


def token_embedding(shape, policy, rng, device):
    x = _normal(rng, shape.batch, shape.length, shape.channels)
    layer = tf_tsembed.TokenEmbedding(
        shape.channels, shape.d_model, kernel_size=KERNEL_SIZE, dtype=policy
    )
    layer(x)
    conv = _keras_conv1d(shape, policy, True, x)
    conv.set_weights(layer.get_weights())
    dtype = layer.compute_dtype
    kernel, bias = layer.get_weights()
    pad = KERNEL_SIZE // 2

    def plain_circular(x):
        x = tf.cast(x, dtype)
        wrapped = tf.concat([x[:, -pad:], x, x[:, :pad]], axis=1)
        return tf.nn.conv1d(wrapped, tf.cast(kernel, dtype), 1, "VALID") + tf.cast(bias, dtype)

    references = {
        "plain TF pad+conv, no XLA": Reference(plain_circular, (x,), modes=("eager", "function")),
        BARE_MATMUL: _bare_matmul(shape, dtype, rng),
    }
    if dtype != "float32":
        float32_layer = tf_tsembed.TokenEmbedding(
            shape.channels, shape.d_model, kernel_size=KERNEL_SIZE
        )
        float32_layer(x)
        float32_layer.set_weights(layer.get_weights())
        references[SAME_LAYER_FLOAT32] = Reference(float32_layer, (x,))
    if device.kind == "CPU" and importlib.util.find_spec("torch") is not None:
        torch_conv = _torch_circular_conv1d(x, kernel, bias, dtype)
        references["PyTorch Conv1d circular"] = Reference(torch_conv, (), modes=("eager",))
    return Case(layer, (x,), "Conv1D(padding='same')", Reference(conv, (x,)), references)


def positional_embedding(shape, policy, rng, device):
    x = _normal(rng, shape.batch, shape.length, shape.channels)
    max_len = max(5000, shape.length)
    layer = tf_tsembed.PositionalEmbedding(max_len=max_len, d_model=shape.d_model, dtype=policy)
    table = user_sinusoid(shape.length, shape.d_model, layer.compute_dtype)
    baseline = Reference(lambda x: table[None, : x.shape[1]], (x,))
    return Case(layer, (x,), "slice of a constant", baseline, {BATCH_1: Reference(layer, (x[:1],))})


def _summed_embedding(layer_type, with_position):
    def build(shape, policy, rng, device):
        x = _normal(rng, shape.batch, shape.length, shape.channels)
        marks = calendar_marks(rng, shape)
        layer = layer_type(
            shape.channels, shape.d_model, embed_type="fixed", freq="h", dtype=policy
        )
        conv = _keras_conv1d(shape, policy, False, x)
        calendar = user_calendar(shape.d_model, layer.compute_dtype)
        positions = user_sinusoid(shape.length, shape.d_model, layer.compute_dtype)

        def user_sum(x, marks):
            outputs = conv(x) + calendar(marks)
            return outputs + positions[None, : shape.length] if with_position else outputs

        token = tf_tsembed.TokenEmbedding(
            shape.channels, shape.d_model, use_bias=False, dtype=policy
        )
        token(x)
        layer(x, marks)  # builds the sublayers

        def sublayers_added(x, marks):
            # The sum DataEmbedding compiles as one function, written as plain sublayer calls.
            outputs = layer.value_embedding(x) + layer.temporal_embedding(marks)
            return outputs + layer.position_embedding(x) if with_position else outputs

        references = {
            TOKEN_ALONE: Reference(token, (x,)),
            SUBLAYERS_ADDED: Reference(sublayers_added, (x, marks)),
        }
        baseline = Reference(user_sum, (x, marks))
        return Case(layer, (x, marks), "Conv1D same + gathers (+ slice)", baseline, references)

    return build


def data_embedding_inverted(shape, policy, rng, device):
    x = _normal(rng, shape.batch, shape.length, shape.channels)
    features = _time_features(rng, shape)
    layer = tf_tsembed.DataEmbeddingInverted(shape.length, shape.d_model, dtype=policy)
    dense = keras.layers.Dense(shape.d_model, dtype=policy)

    def user_inverted(x, features):
        return dense(tf.transpose(tf.concat([x, features], axis=-1), (0, 2, 1)))

    user_inverted(x, features)
    baseline = Reference(user_inverted, (x, features))
    return Case(layer, (x, features), "concat+transpose+Dense", baseline)


def temporal_embedding(shape, policy, rng, device):
    marks = calendar_marks(rng, shape)
    layer = tf_tsembed.TemporalEmbedding(shape.d_model, embed_type="fixed", freq="h", dtype=policy)
    calendar = user_calendar(shape.d_model, layer.compute_dtype)
    return Case(layer, (marks,), "4 gathers from constants", Reference(calendar, (marks,)))


def fixed_embedding(shape, policy, rng, device):
    hours = tf.constant(rng.integers(0, 24, size=(shape.batch, shape.length)).astype(np.int32))
    layer = tf_tsembed.FixedEmbedding(24, shape.d_model, dtype=policy)
    table = user_sinusoid(24, shape.d_model, layer.compute_dtype)
    baseline = Reference(lambda ids: tf.gather(table, ids), (hours,))
    return Case(layer, (hours,), "gather from a constant", baseline)


def time_feature_embedding(shape, policy, rng, device):
    features = _time_features(rng, shape)
    layer = tf_tsembed.TimeFeatureEmbedding(shape.d_model, freq="h", dtype=policy)
    dense = keras.layers.Dense(shape.d_model, use_bias=False, dtype=policy)
    dense(features)
    return Case(layer, (features,), "Dense(use_bias=False)", Reference(dense, (features,)))


def patch_embedding(shape, policy, rng, device):
    """PatchTST's defaults (patch 16, stride 8, padding 8) on `(B, N=C, L)`."""
    series = _normal(rng, shape.batch, shape.channels, shape.length)
    layer = tf_tsembed.PatchEmbedding(
        shape.d_model, patch_len=PATCH_LEN, stride=STRIDE, padding=STRIDE, dtype=policy
    )
    patches = (shape.length + STRIDE - PATCH_LEN) // STRIDE + 1
    dense = keras.layers.Dense(shape.d_model, use_bias=False, dtype=policy)
    positions = user_sinusoid(patches, shape.d_model, layer.compute_dtype)

    def user_patches(series):
        padded = tf.concat([series, tf.repeat(series[..., -1:], STRIDE, axis=-1)], axis=-1)
        framed = tf.reshape(tf.signal.frame(padded, PATCH_LEN, STRIDE), (-1, patches, PATCH_LEN))
        return dense(framed) + positions[None]

    user_patches(series)
    baseline = Reference(user_patches, (series,))
    return Case(lambda s: layer(s)[0], (series,), "pad+frame+Dense+slice", baseline)


def reversible_instance_norm(shape, policy, rng, device):
    x = _normal(rng, shape.batch, shape.length, shape.channels)
    layer = tf_tsembed.ReversibleInstanceNorm(shape.channels, dtype=policy)

    def user_norm(x):
        mean, variance = tf.nn.moments(x, axes=[1], keepdims=True)
        return tf.cast((x - mean) * tf.math.rsqrt(variance + 1e-5), layer.compute_dtype)

    return Case(layer, (x,), "tf.nn.moments normalise", Reference(user_norm, (x,)))


BUILDERS = {
    "TokenEmbedding": token_embedding,
    "PositionalEmbedding": positional_embedding,
    "DataEmbedding": _summed_embedding(tf_tsembed.DataEmbedding, True),
    "DataEmbeddingWithoutPosition": _summed_embedding(
        tf_tsembed.DataEmbeddingWithoutPosition, False
    ),
    "DataEmbeddingInverted": data_embedding_inverted,
    "TemporalEmbedding": temporal_embedding,
    "FixedEmbedding": fixed_embedding,
    "TimeFeatureEmbedding": time_feature_embedding,
    "PatchEmbedding": patch_embedding,
    "ReversibleInstanceNorm": reversible_instance_norm,
}
