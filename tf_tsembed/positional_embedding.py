"""PositionalEmbedding: the fixed, interleaved sinusoid of the Transformer, kept as a constant."""

import tensorflow as tf

from tf_tsembed import _checks
from tf_tsembed._sinusoid import sinusoid_rows

keras = tf.keras


@keras.utils.register_keras_serializable(package="tf_tsembed")
class PositionalEmbedding(keras.layers.Layer):
    """Fixed sinusoidal position embedding: returns `(1, L, d_model)` for inputs of length L.

    Column `2i` holds `sin(p * 10000^(-2i/d_model))` and column `2i+1` the matching cosine
    (interleaved, as in the reference time-series models; an odd `d_model` ends with a sine
    column). The table is computed once in float64 NumPy and used as a constant: the layer has
    no weights and adds nothing to checkpoints. The result is meant to be broadcast-added to
    the value embedding. Only the rows used are computed: `max_len` is a limit, not a cost.

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
    InvalidArgumentError at run time when it is not. Where asserts are dropped, a slice of
    max_len rows still refuses it: in TFLite ("Invalid begin and size") and when XLA compiles a
    length unknown while tracing ("Expected size[0] in [0, max_len]").

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

    def _checked(self, value):
        """`value` (inputs, or their shape in `build`) once its length is at most max_len."""
        name = type(self).__name__
        shape = _checks.rank_at_least(name, "inputs", getattr(value, "shape", value), "batch, time")
        if shape.rank is None:
            return value
        return _checks.ensure_size(
            value, 1, lambda n: n <= self.max_len, f"{name}: the sequence length L exceeds "
            f"max_len={self.max_len} (construct the layer with a larger max_len)",
        )  # fmt: skip

    def build(self, input_shape):
        self._checked(input_shape)
        self.built = True

    def call(self, inputs):
        return self.position_rows(inputs)

    def position_rows(self, inputs, dtype=None):
        """The `(1, L, d_model)` rows for `inputs` in `dtype` (default: the compute dtype).

        What `call` returns, in any dtype: DataEmbedding adds them in the dtype of its sum.
        L is checked against max_len, at run time when it is unknown while tracing.
        """
        inputs = self._checked(_checks.dense(type(self).__name__, "inputs", inputs))
        length = inputs.shape[1]
        if length is None:
            length = tf.shape(inputs)[1]  # of the checked inputs: after the max_len assert
        dtype = dtype or self.compute_dtype
        return sinusoid_rows(length, self.d_model, dtype, self.max_len, batch_axis=True)

    def compute_output_shape(self, input_shape):
        return (1, tuple(input_shape)[1], self.d_model)

    def get_config(self):
        config = super().get_config()
        config.update(max_len=self.max_len, d_model=self.d_model)
        return config
