"""TokenEmbedding: the value embedding of Informer-style models, a circular 1-D convolution."""

import math

import tensorflow as tf

from tf_tsembed import _checks, _compile, _precision

keras = tf.keras

# Past this k*C, stacking costs more than a VALID convolution on CPU (docs/benchmarks.md).
_CPU_MATMUL_MAX_CONTRACTION = 128


def _stacked_matmul(inputs, kernel, bias):
    kernel_size, channels, d_model = kernel.shape
    pad = (kernel_size - 1) // 2
    length = tf.shape(inputs)[1]
    # (L, k) indices (t + j - p) mod L, so that one gather yields (B, L, k, C).
    steps = tf.range(length)[:, None] + tf.range(kernel_size)[None, :] - pad
    shifted = tf.gather(inputs, tf.math.floormod(steps, length), axis=1)
    stacked = tf.reshape(shifted, (-1, kernel_size * channels))
    weights = tf.reshape(kernel, (kernel_size * channels, d_model))
    if bias is not None:
        stacked = tf.concat([stacked, tf.ones_like(stacked[:, :1])], axis=1)
        weights = tf.concat([weights, bias[None, :]], axis=0)
    outputs = tf.matmul(stacked, weights)
    return tf.reshape(outputs, tf.concat([tf.shape(inputs)[:2], [d_model]], axis=0))


def _wrapped_convolution(inputs, kernel, bias):
    pad = (kernel.shape[0] - 1) // 2
    length = tf.shape(inputs)[1]
    # Steps -p .. L+p-1 taken modulo L: exact also for L < k.
    wrapped = tf.gather(inputs, tf.math.floormod(tf.range(-pad, length + pad), length), axis=1)
    outputs = tf.nn.conv1d(wrapped, kernel, stride=1, padding="VALID")
    if bias is not None:
        outputs += bias
    return outputs


def circular_conv1d(inputs, kernel, bias=None, output_dtype=None):
    """Circular cross-correlation over axis 1 of `inputs`, written with plain TF ops.

    `y[b, t, o] = sum_{j, c} kernel[j, c, o] * inputs[b, (t + j - p) mod L, c] (+ bias[o])`
    with `p = (k - 1) // 2`. TensorFlow has no circular padding mode: the sequence is wrapped
    with a gather whose indices are taken modulo L, which keeps the formula exact when L < k.
    Two exact formulations, picked while tracing by the static `k * C` and the device of
    `inputs` (see `_CPU_MATMUL_MAX_CONTRACTION`): one matmul over the k shifted copies stacked
    along channels, with the bias folded into the product so the dot writes the final output,
    or a VALID convolution over the wrapped sequence, which never materialises the k-times
    larger stacked input. GPU and TPU always take the matmul, the product their matrix units
    are built for.

    Args:
        inputs: `(B, L, C)` floating tensor, L >= 1, in the dtype the arithmetic runs in.
        kernel: `(k, C, D)` floating tensor, k odd, cast to the dtype of `inputs`.
        bias: optional `(D,)` floating tensor, cast likewise.
        output_dtype: dtype the result is cast to; None keeps the inputs' dtype.

    Returns:
        `(B, L, D)` tensor.
    """
    # Cast here, inside the compiled function, where the casts fuse with the rest.
    kernel = tf.cast(kernel, inputs.dtype)
    bias = None if bias is None else tf.cast(bias, inputs.dtype)
    kernel_size, channels, _ = kernel.shape
    if kernel_size * channels <= _CPU_MATMUL_MAX_CONTRACTION or _precision.on_accelerator(inputs):
        outputs = _stacked_matmul(inputs, kernel, bias)
    else:
        outputs = _wrapped_convolution(inputs, kernel, bias)
    return outputs if output_dtype is None else tf.cast(outputs, output_dtype)


# Weights go in as tensors: an XLA cluster capturing a mirrored variable fails in MirroredStrategy.
compiled_circular_conv1d = _compile.jit(circular_conv1d)


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
            when the layer is called eagerly (inside a function that is itself jit-compiled, as
            part of that function); False runs plain TF ops (for TFLite conversion or serving
            stacks without XLA). Each new input shape is compiled once; see docs/benchmarks.md,
            "Compilation per shape" for serving many batch sizes.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, L, c_in)` floating tensor, L >= 1.

    Returns:
        `(B, L, d_model)` tensor in the layer's compute dtype.

    Mixed precision: under a 16-bit policy such as `"mixed_bfloat16"` the weights are rounded to
    the 16-bit dtype, as Keras does. On CPU the inputs are not: the convolution runs in float32
    and its result is rounded once. On GPU and TPU the inputs are cast to the 16-bit dtype for
    the matrix units.

    Weights are `[kernel (kernel_size, c_in, d_model), bias (d_model,)]` (no bias when
    `use_bias=False`): a PyTorch `Conv1d` weight `(d_model, c_in, k)` loads after
    `.transpose(2, 1, 0)`.

    Errors: a `use_bias` or `jit_compile` that is not a bool raises TypeError at construction.
    A wrong rank or channel count raises ValueError at build or call; an empty sequence
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
        # Inputs reach call unrounded: `_precision.math_dtype` decides whether they are rounded.
        super().__init__(autocast=False, **kwargs)
        self.c_in = _checks.positive_int("c_in", c_in)
        self.d_model = _checks.positive_int("d_model", d_model)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size, odd=True)
        self.use_bias = _checks.boolean("use_bias", use_bias)
        self.jit_compile = _checks.boolean("jit_compile", jit_compile)
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

    def _checked(self, value):
        """`value` (inputs, or their shape in `build`) once it has rank 3, c_in channels and a
        time step: known sizes are checked now, unknown ones at run time."""
        name = type(self).__name__
        _checks.rank(name, "inputs", getattr(value, "shape", value), "batch, time, c_in")
        # Unchecked, a multiple of c_in channels would run as a grouped convolution, silently.
        value = _checks.ensure_size(
            value, 2, lambda n: n == self.c_in, f"{name} was built with c_in={self.c_in}: the "
            f"inputs must have {self.c_in} channels",
        )  # fmt: skip
        return _checks.ensure_size(
            value, 1, lambda n: n >= 1, f"{name} needs at least one time step (L >= 1)"
        )

    def build(self, input_shape):
        self._checked(input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.c_in, self.d_model),
            initializer=self.kernel_initializer,
            trainable=True,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.d_model,),
                initializer=self.bias_initializer,
                trainable=True,
            )
        self.built = True

    def term(self, inputs, dtype=None):
        """`(function, args)` such that `function(*args)` is this layer's output in `dtype`.

        The inputs are checked as in `call` and cast to `dtype` (default: the dtype the
        arithmetic runs in, see "Mixed precision"); the weights are rounded to the compute dtype.
        `call` runs `function` compiled; DataEmbedding runs it inside its own compiled sum.
        """
        name = type(self).__name__
        inputs = _checks.floating(name, "inputs", _checks.dense(name, "inputs", inputs))
        inputs = self._checked(inputs)
        dtype = dtype or _precision.math_dtype(self.compute_dtype, inputs)
        kernel = _precision.rounded_weight(self.kernel, self.compute_dtype)
        bias = _precision.rounded_weight(self.bias, self.compute_dtype)
        return circular_conv1d, (tf.cast(inputs, dtype), kernel, bias)

    def call(self, inputs):
        _, args = self.term(inputs)
        conv = compiled_circular_conv1d if self.jit_compile else circular_conv1d
        return conv(*args, tf.as_dtype(self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return tuple(self._checked(input_shape))[:-1] + (self.d_model,)

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
