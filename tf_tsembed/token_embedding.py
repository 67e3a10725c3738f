"""TokenEmbedding: the value embedding of Informer-style models, a circular 1-D convolution over time."""

import math

import tensorflow as tf

from tf_tsembed import _checks

keras = tf.keras


def _wrapped_indices(length, kernel_size):
    """Indices `(t + j - p) mod L` for t in [0, L), j in [0, k): shape (L, k), exact also for L < k."""
    pad = (kernel_size - 1) // 2
    steps = tf.range(length)[:, None] + tf.range(kernel_size)[None, :] - pad
    return tf.math.floormod(steps, length)


def circular_conv1d(inputs, kernel, bias=None):
    """Circular cross-correlation over axis 1 of `inputs`, written with plain TF ops.

    `y[b, t, o] = sum_{j, c} kernel[j, c, o] * inputs[b, (t + j - p) mod L, c] (+ bias[o])`
    with `p = (k - 1) // 2`. TensorFlow has no circular padding mode, so the k shifted copies
    of the sequence are gathered at once and contracted with the kernel in one matmul; the
    gather indices are taken modulo L, which keeps the formula exact when L < k.

    Args:
        inputs: `(B, L, C)` floating tensor, L >= 1.
        kernel: `(k, C, D)` tensor of the same dtype, k odd.
        bias: optional `(D,)` tensor of the same dtype.

    Returns:
        `(B, L, D)` tensor.
    """
    kernel_size, channels, d_model = kernel.shape
    length = tf.shape(inputs)[1]
    shifted = tf.gather(inputs, _wrapped_indices(length, kernel_size), axis=1)  # (B, L, k, C)
    stacked = tf.reshape(shifted, tf.concat([tf.shape(inputs)[:2], [kernel_size * channels]], 0))
    outputs = tf.matmul(stacked, tf.reshape(kernel, (kernel_size * channels, d_model)))
    if bias is not None:
        outputs = outputs + bias
    return outputs


# One compiled function for all layers: it retraces per input signature, like any tf.function.
# Weights come in as tensors, not resource variables: an XLA cluster that captures a mirrored
# variable fails under MirroredStrategy ("Trying to access resource ... located in device CPU:1").
_compiled_circular_conv1d = tf.function(circular_conv1d, jit_compile=True)


@keras.utils.register_keras_serializable(package="tf_tsembed")
class TokenEmbedding(keras.layers.Layer):
    """Circular-padded 1-D convolution over time: `(B, L, c_in) -> (B, L, d_model)`.

    The value embedding of Informer, Autoformer, FEDformer and their descendants: each output
    step sees `kernel_size` neighbouring steps, wrapping around the sequence ends (step 0 sees
    step L-1). Exact for every length L >= 1, also L < kernel_size.

    Args:
        c_in: int, number of input channels (variables).
        d_model: int, embedding size.
        kernel_size: odd int, taps of the convolution. Defaults to 3.
        use_bias: bool. True (default) matches Informer's original code; False matches
            Time-Series-Library.
        kernel_initializer: initializer for the `(kernel_size, c_in, d_model)` kernel. Defaults to
            PyTorch's `kaiming_normal_(mode="fan_in", nonlinearity="leaky_relu")`: an untruncated
            normal with std `sqrt(2 / (kernel_size * c_in))` (Keras' `HeNormal` is truncated).
        bias_initializer: initializer for the `(d_model,)` bias. Defaults to PyTorch Conv1d's
            `U(-1/sqrt(kernel_size * c_in), +1/sqrt(kernel_size * c_in))`.
        jit_compile: bool. True (default) runs the convolution as an XLA-compiled function, also
            when the layer is called eagerly; False runs plain TF ops (for TFLite conversion or
            serving stacks without XLA).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, L, c_in)` floating tensor, L >= 1.

    Returns:
        `(B, L, d_model)` tensor in the layer's compute dtype.

    Weights are `[kernel (kernel_size, c_in, d_model), bias (d_model,)]` (no bias when
    `use_bias=False`): a PyTorch `Conv1d` weight `(d_model, c_in, k)` loads after
    `.transpose(2, 1, 0)`.

    Errors: a wrong rank or channel count raises ValueError at build or call; an empty sequence
    raises ValueError when L is static, and InvalidArgumentError at run time when it is not,
    except inside an enclosing XLA-compiled function, where run-time asserts are dropped.

    Example:

    >>> import numpy as np
    >>> layer = TokenEmbedding(c_in=7, d_model=16)
    >>> layer(np.zeros((2, 96, 7), "float32")).shape
    TensorShape([2, 96, 16])

    Reference:
        Zhou et al., "Informer: Beyond Efficient Transformer for Long Sequence Time-Series
        Forecasting", AAAI 2021.
    """

    def __init__(
        self,
        c_in,
        d_model,
        kernel_size=3,
        use_bias=True,
        kernel_initializer=None,
        bias_initializer=None,
        jit_compile=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.c_in = _checks.positive_int("c_in", c_in)
        self.d_model = _checks.positive_int("d_model", d_model)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size, odd=True)
        self.use_bias = bool(use_bias)
        self.jit_compile = bool(jit_compile)
        fan_in = self.kernel_size * self.c_in
        if kernel_initializer is None:
            kernel_initializer = keras.initializers.VarianceScaling(
                scale=2.0, mode="fan_in", distribution="untruncated_normal"
            )
        if bias_initializer is None:
            bound = 1.0 / math.sqrt(fan_in)
            bias_initializer = keras.initializers.RandomUniform(-bound, bound)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _check_input_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 3:
            raise ValueError(
                f"{type(self).__name__} expects inputs of rank 3 (batch, time, c_in); "
                f"received shape {input_shape}."
            )
        channels = input_shape[-1]
        if channels is not None and channels != self.c_in:
            raise ValueError(
                f"{type(self).__name__} was built with c_in={self.c_in}, but the inputs have "
                f"{channels} channels (shape {input_shape})."
            )
        if input_shape[1] == 0:
            raise ValueError(
                f"{type(self).__name__} needs at least one time step; received shape {input_shape}."
            )

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.c_in, self.d_model),
            initializer=self.kernel_initializer,
            trainable=True,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.d_model,), initializer=self.bias_initializer, trainable=True
            )
        self.built = True

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        if not inputs.dtype.is_floating:
            raise TypeError(
                f"{type(self).__name__} expects floating inputs; received dtype {inputs.dtype.name}."
            )
        self._check_input_shape(inputs.shape)
        if inputs.shape[1] is None:
            tf.debugging.assert_positive(
                tf.shape(inputs)[1],
                message=f"{type(self).__name__} needs at least one time step (L >= 1)",
            )
        dtype = self.compute_dtype
        kernel = tf.cast(self.kernel, dtype)
        bias = tf.cast(self.bias, dtype) if self.use_bias else None
        conv = _compiled_circular_conv1d if self.jit_compile else circular_conv1d
        return conv(tf.cast(inputs, dtype), kernel, bias)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(
            c_in=self.c_in,
            d_model=self.d_model,
            kernel_size=self.kernel_size,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            jit_compile=self.jit_compile,
        )
        return config
