"""PositionalEmbedding: the fixed, interleaved sinusoid of the Transformer, kept as a constant."""

import functools

import numpy as np
import tensorflow as tf

from tf_tsembed import _checks

keras = tf.keras


@functools.lru_cache(maxsize=32)
def sinusoid_table(num_positions, d_model):
    """The interleaved sinusoid `(num_positions, d_model)` as a read-only float64 NumPy array.

    `table[p, 2i] = sin(p * w_i)`, `table[p, 2i + 1] = cos(p * w_i)`, `w_i = 10000^(-2i / d_model)`.
    An odd `d_model` ends with a sine column. Computed in float64 on the host: sinusoids of
    positions in the hundreds are off by more than 1 when computed in bfloat16.

    >>> sinusoid_table(2, 4)[1].round(6).tolist()
    [0.841471, 0.540302, 0.01, 0.99995]
    """
    positions = np.arange(num_positions, dtype=np.float64)[:, None]
    frequencies = np.power(10000.0, -np.arange(0, d_model, 2, dtype=np.float64) / d_model)
    angles = positions * frequencies
    table = np.empty((num_positions, d_model), dtype=np.float64)
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : d_model // 2])
    table.flags.writeable = False
    return table


def sinusoid_rows(num_positions, d_model, length, dtype, batch_axis=False):
    """The first `length` rows of `sinusoid_table` as a `(length, d_model)` tensor of `dtype`.

    `batch_axis=True` gives `(1, length, d_model)`, shaped in NumPy: an eager expand_dims would
    cost as much as the rest of the call.

    A static `length` bakes only those rows into the graph; a dynamic one bakes the whole table
    and slices it at run time. The table goes in as a graph constant built here, not as a
    tensor attribute: an eager tensor captured by a traced function becomes a placeholder input
    that bloats every exported SavedModel by the whole table.
    """
    dtype = tf.as_dtype(dtype)
    table = sinusoid_table(num_positions, d_model)
    # float32 is exact enough for every compute dtype but float64; casting last keeps bf16 close.
    host_dtype = np.float64 if dtype == tf.float64 else np.float32
    if batch_axis:
        table = table[None]
    if isinstance(length, int):
        rows = tf.constant(table[..., :length, :].astype(host_dtype))
    else:
        rows = tf.constant(table.astype(host_dtype))[..., :length, :]
    return tf.cast(rows, dtype)


@keras.utils.register_keras_serializable(package="tf_tsembed")
class PositionalEmbedding(keras.layers.Layer):
    """Fixed sinusoidal position embedding: returns `(1, L, d_model)` for inputs of length L.

    Column `2i` holds `sin(p * 10000^(-2i/d_model))` and column `2i+1` the matching cosine
    (interleaved, as in the reference time-series models; an odd `d_model` ends with a sine
    column). The table is computed once in float64 NumPy and used as a constant: the layer has
    no weights and adds nothing to checkpoints. The result is meant to be broadcast-added to
    the value embedding.

    Args:
        max_len: int, the largest sequence length the layer accepts. Defaults to 5000.
        d_model: int, embedding size. Defaults to 512.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor of rank >= 2 whose axis 1 is time; only its length L is read. L may be
            unknown when traced (`None`).

    Returns:
        `(1, L, d_model)` tensor in the layer's compute dtype.

    Errors: L > max_len raises ValueError naming both when L is static, and
    InvalidArgumentError at run time when it is not. Inside an XLA-compiled function the
    length is always static, so the check happens while tracing.

    Example:

    >>> import numpy as np
    >>> layer = PositionalEmbedding(max_len=500, d_model=8)
    >>> layer(np.zeros((4, 96, 7), "float32")).shape
    TensorShape([1, 96, 8])

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017; the interleaved layout of
        Zhou et al., "Informer", AAAI 2021.
    """

    def __init__(self, max_len=5000, d_model=512, **kwargs):
        super().__init__(**kwargs)
        self.max_len = _checks.positive_int("max_len", max_len)
        self.d_model = _checks.positive_int("d_model", d_model)

    def _check_rank(self, input_shape):
        if input_shape.rank is not None and input_shape.rank < 2:
            raise ValueError(
                f"{type(self).__name__} reads the length from axis 1 and expects inputs of rank "
                f">= 2 (batch, time, ...); received shape {input_shape}."
            )

    def _check_static_length(self, length):
        if length is not None and length > self.max_len:
            raise ValueError(
                f"{type(self).__name__}: sequence length L={length} exceeds max_len={self.max_len}. "
                f"Construct the layer with max_len >= {length}."
            )

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        self._check_rank(input_shape)
        if input_shape.rank is not None:
            self._check_static_length(input_shape[1])
        self.built = True

    def call(self, inputs):
        return self._rows(inputs, self.compute_dtype)

    def _rows(self, inputs, dtype):
        """The `(1, L, d_model)` rows for `inputs` in `dtype`, L checked against max_len."""
        shape = inputs.shape
        self._check_rank(shape)
        length = shape[1]
        self._check_static_length(length)
        if length is None:
            length = tf.shape(inputs)[1]
            tf.debugging.assert_less_equal(
                length,
                self.max_len,
                message=f"{type(self).__name__}: sequence length L exceeds max_len={self.max_len}",
                summarize=1,
            )
        return sinusoid_rows(self.max_len, self.d_model, length, dtype, batch_axis=True)

    def compute_output_shape(self, input_shape):
        return (1, tuple(input_shape)[1], self.d_model)

    def get_config(self):
        config = super().get_config()
        config.update(max_len=self.max_len, d_model=self.d_model)
        return config
