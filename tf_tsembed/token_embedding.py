"""TokenEmbedding: the value embedding of Informer-style models, a circular 1-D convolution over time."""

import math

import tensorflow as tf
from tensorflow.python.ops import control_flow_util  # no public equivalent: see inside_xla_compilation

from tf_tsembed import _checks, _precision

keras = tf.keras


# The two exact formulations, chosen while tracing from static facts. Measured on CPU with XLA
# (2 AMD EPYC cores, medians of 30-100 interleaved rounds, ms; B=32, L=96, D=512, k=3):
# - k*C small: gather the k shifted copies and do ONE matmul (B*L, k*C+1) x (k*C+1, D), the bias
#   folded in as a kernel row against a column of ones, so that the dot writes the final output
#   and no second pass over it adds the bias. C=7: 2.60 (bias added after: 3.58; convolution:
#   3.99; writing the output alone: 1.82). C=32: 5.32 vs convolution 6.11.
# - k*C large: wrap to L+2p steps and run a VALID convolution, which never materialises the
#   k-times larger stacked input. C=64: 7.76 vs matmul 8.69; C=321: 25.8 vs 30.2.
# On GPU and TPU the stacked matmul is used for every C (decided by the devices TF sees): one
# dense product with a contraction of k*C is what tensor cores and the MXU are built for (not
# measured: no accelerator here).
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
    Two exact formulations, picked while tracing by the static `k * C` and the devices present
    (see the comment above): one matmul over the k shifted copies stacked along channels, with
    the bias folded into the product, or a VALID convolution over the wrapped sequence.

    Args:
        inputs: `(B, L, C)` floating tensor, L >= 1, in the dtype the arithmetic runs in.
        kernel: `(k, C, D)` floating tensor, k odd, cast to the dtype of `inputs`.
        bias: optional `(D,)` floating tensor, cast likewise.
        output_dtype: dtype the result is cast to; None keeps the inputs' dtype.

    Returns:
        `(B, L, D)` tensor.
    """
    # Cast here, inside the compiled function, where the casts fuse with the rest: as two eager
    # ops per weight they made an eager bfloat16 call (32, 96, 7 -> 512) about 10 % slower.
    kernel = tf.cast(kernel, inputs.dtype)
    bias = None if bias is None else tf.cast(bias, inputs.dtype)
    kernel_size, channels, _ = kernel.shape
    if _precision.on_accelerator() or kernel_size * channels <= _CPU_MATMUL_MAX_CONTRACTION:
        outputs = _stacked_matmul(inputs, kernel, bias)
    else:
        outputs = _wrapped_convolution(inputs, kernel, bias)
    return outputs if output_dtype is None else tf.cast(outputs, output_dtype)


# One compiled function for all layers: it retraces per input signature, like any tf.function.
# Weights come in as tensors, not resource variables: an XLA cluster that captures a mirrored
# variable fails under MirroredStrategy ("Trying to access resource ... located in device CPU:1").
_compiled_circular_conv1d = tf.function(circular_conv1d, jit_compile=True)

# Its concrete functions by argument signature, for eager calls: calling one directly skips
# tf.function's argument canonicalisation, ~0.4 ms of a 3 ms eager call (B=32, L=96, C=7, D=512).
_eager_concrete_functions = {}


def _call_compiled(inputs, kernel, bias, output_dtype):
    """`_compiled_circular_conv1d(...)`, through a cached concrete function when eager."""
    if not tf.executing_eagerly():
        return _compiled_circular_conv1d(inputs, kernel, bias, output_dtype)
    key = (tuple(inputs.shape), inputs.dtype, tuple(kernel.shape), bias is None, output_dtype)
    function = _eager_concrete_functions.get(key)
    if function is None:
        function = _compiled_circular_conv1d.get_concrete_function(inputs, kernel, bias, output_dtype)
        _eager_concrete_functions[key] = function
    return function(inputs, kernel, bias, output_dtype)


def inside_xla_compilation():
    """Whether the graph being traced is itself compiled by XLA (`jit_compile=True`, TPU).

    There the compiled function must not be nested: it gains nothing, and with gradients XLA
    then takes the nested function's inputs (batch, weights) as compile-time constants and
    recompiles the whole step on every call (a tiny Adam step: ~300 ms instead of 1 ms).
    `tf.function` answers the same question this way for its own nested calls.
    """
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


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
            stacks without XLA).
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

    def _checked_at_run_time(self, inputs):
        """`inputs`, made to wait for checks of the sizes left unknown while tracing."""
        name = type(self).__name__
        checks = []
        if inputs.shape[1] is None:
            checks.append(
                tf.debugging.assert_positive(
                    tf.shape(inputs)[1], message=f"{name} needs at least one time step (L >= 1)"
                )
            )
        if inputs.shape[-1] is None:
            # Unchecked, a multiple of c_in channels runs as a grouped convolution, without error.
            checks.append(
                tf.debugging.assert_equal(
                    tf.shape(inputs)[-1],
                    self.c_in,
                    message=f"{name} was built with c_in={self.c_in}, but the inputs have a "
                    f"different number of channels",
                )
            )
        return _checks.after_checks(checks, inputs)

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
        inputs = self._checked_at_run_time(inputs)
        compute_dtype = tf.as_dtype(self.compute_dtype)
        # Weights rounded to the compute dtype (see `_precision.rounded_weight`); circular_conv1d
        # casts them to the dtype of the arithmetic, inside the compiled function.
        kernel = tf.cast(self.kernel, compute_dtype)
        bias = tf.cast(self.bias, compute_dtype) if self.use_bias else None
        compiled = self.jit_compile and not inside_xla_compilation()
        conv = _call_compiled if compiled else circular_conv1d
        inputs = tf.cast(inputs, _precision.math_dtype(compute_dtype))
        return conv(inputs, kernel, bias, compute_dtype)

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
