"""The interleaved sinusoid shared by PositionalEmbedding, FixedEmbedding and PatchEmbedding."""

import functools
import math

import numpy as np
import tensorflow as tf


def _angles(positions, d_model):
    """`positions[:, None] * w_i` in float64, `w_i = 10000^(-2i / d_model)`, 2i < d_model."""
    frequencies = np.power(10000.0, -np.arange(0, d_model, 2, dtype=np.float64) / d_model)
    return np.asarray(positions, dtype=np.float64)[:, None] * frequencies


def _interleave(sines, cosines, d_model):
    """`(..., h)` sines and cosines -> `(..., d_model)` with sin in even and cos in odd columns."""
    pairs = tf.stack([sines, cosines], axis=-1)
    shape = tf.concat([tf.shape(sines)[:-1], [2 * sines.shape[-1]]], axis=0)
    return tf.reshape(pairs, shape)[..., :d_model]


def _rows_array(num_rows, d_model, host_dtype):
    angles = _angles(np.arange(num_rows), d_model)
    rows = np.empty((num_rows, d_model), dtype=np.float64)
    rows[:, 0::2] = np.sin(angles)
    rows[:, 1::2] = np.cos(angles[:, : d_model // 2])
    rows = rows.astype(host_dtype)
    rows.flags.writeable = False
    return rows


# Eager calls reuse their rows; bounded in count, each entry holding only the rows used.
_host_rows = functools.lru_cache(maxsize=16)(_rows_array)

# Up to this many elements, a free length slices an exact table; past it, split tables.
EXACT_TABLE_MAX_ELEMENTS = 2**22


def sinusoid(num_rows, d_model):
    """Rows `0 .. num_rows - 1` of the interleaved sinusoid, a read-only float64 NumPy array.

    `table[p, 2i] = sin(p * w_i)`, `table[p, 2i + 1] = cos(p * w_i)`, `w_i = 10000^(-2i / d_model)`.
    An odd `d_model` ends with a sine column. Row p does not depend on how many rows follow it.
    Computed in float64: sinusoids of positions in the hundreds are off by more than 1 in bfloat16.

    >>> sinusoid(2, 4)[1].round(6).tolist()
    [0.841471, 0.540302, 0.01, 0.99995]
    """
    return _rows_array(num_rows, d_model, np.float64)


def _split_rows(max_rows, d_model, host_dtype):
    """Sines and cosines of both parts of `p = q * step + r`, `step = ceil(sqrt(max_rows))`."""
    step = max(1, math.isqrt(max_rows - 1) + 1)
    coarse = _angles(np.arange(0, max_rows, step), d_model)
    fine = _angles(np.arange(step), d_model)
    tables = [np.sin(coarse), np.cos(coarse), np.sin(fine), np.cos(fine)]
    return step, [tf.constant(table.astype(host_dtype)) for table in tables]


def sinusoid_rows(length, d_model, dtype, max_rows, batch_axis=False):
    """The first `length` rows as a `(length, d_model)` tensor of `dtype`; `length <= max_rows`.

    `batch_axis=True` gives `(1, length, d_model)`, shaped in NumPy when `length` is static
    (an eager expand_dims costs as much as the rest of PositionalEmbedding's call).

    A static `length` (a Python int) bakes just those rows into the graph as a constant. A
    tensor `length` gathers from a baked table of `max_rows` rows while it has at most
    `EXACT_TABLE_MAX_ELEMENTS` elements; past that, it builds the rows at run time from two
    tables of about `sqrt(max_rows)` rows, by `sin(a + b) = sin a cos b + cos a sin b`, in ops
    every backend has (TFLite has no float64), to within 3e-7 of the float64 values instead of
    exactly rounded: no table of `max_rows` rows is built or exported. A tensor `length` past
    `max_rows` fails everywhere: the gather fails on CPU and in TFLite, and a zero-width slice
    of `max_rows` rows, joined to the result, fails while XLA compiles ("Expected size[0] in
    [0, max_rows]"), where a gather would clamp.
    Constants are built here, not captured: a captured eager tensor becomes a placeholder that
    bloats every exported SavedModel.
    """
    dtype = tf.as_dtype(dtype)
    # float32 is exact enough for every compute dtype but float64; casting last keeps bf16 close.
    host_dtype = np.float64 if dtype == tf.float64 else np.float32
    if isinstance(length, int):
        rows = _host_rows(length, d_model, host_dtype)
        return tf.cast(tf.constant(rows[None] if batch_axis else rows), dtype)
    if max_rows * d_model <= EXACT_TABLE_MAX_ELEMENTS:
        # Not table[:length]: a strided slice past the end clamps, a gather fails.
        rows = tf.gather(tf.constant(_rows_array(max_rows, d_model, host_dtype)), tf.range(length))
    else:
        rows = _split_sinusoid(length, d_model, host_dtype, max_rows)
    # XLA clamps gather indices but checks slice bounds when it compiles: no silent rows.
    in_bounds = tf.slice(tf.zeros((max_rows, 0), rows.dtype), [0, 0], [length, 0])
    rows = tf.cast(tf.concat([rows, in_bounds], axis=1), dtype)
    return rows[None] if batch_axis else rows


def _split_sinusoid(length, d_model, host_dtype, max_rows):
    step, (sin_q, cos_q, sin_r, cos_r) = _split_rows(max_rows, d_model, host_dtype)
    positions = tf.range(length)
    # Positions past max_rows point past the coarse table, so the gather refuses them.
    coarse = tf.where(positions < max_rows, positions // step, sin_q.shape[0])
    fine = positions % step
    sin_a, cos_a = tf.gather(sin_q, coarse), tf.gather(cos_q, coarse)
    sin_b, cos_b = tf.gather(sin_r, fine), tf.gather(cos_r, fine)
    sines = sin_a * cos_b + cos_a * sin_b
    cosines = cos_a * cos_b - sin_a * sin_b
    return _interleave(sines, cosines, d_model)
