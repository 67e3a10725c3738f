"""TimesNet (Wu et al., ICLR 2023) as Time-Series-Library's `models/TimesNet.py` forecasts.

Each input window is standardised per series (RevIN without affine map: mean, population std
+ 1e-5, constants for gradients); `DataEmbedding` (circular token convolution without bias +
timeF features + sinusoid position) embeds it; a linear map along time stretches the `seq_len`
steps to `seq_len + pred_len`; `e_layers` TimesBlocks, each followed by one shared LayerNorm,
mix them; a linear projection maps `d_model` to the series; the standardisation is undone and
the last `pred_len` steps returned.

A TimesBlock finds the batch's `top_k` strongest frequencies (the FFT amplitude averaged over
the batch and the channels, the zero frequency left out), and for each, period
`p = T // frequency`: the series, padded to a multiple of p, is folded into a 2-D grid of rows
of p steps, an Inception block (the mean of 'same' 2-D convolutions of sizes 1, 3, ...,
2 * num_kernels - 1), GELU and a second Inception block run over it, and it is unfolded back.
The k results are weighted by the softmax of each window's amplitudes at the k frequencies,
summed and added to the input. The periods depend on the whole batch, so a forecast depends on
the windows batched with it.

Two formulations of the folded convolution, equal to float rounding:
- `static_shapes=False`: the reference's reshape to `(B, T_padded / p, p, d)` and one 2-D
  convolution. The shapes depend on the data, which XLA cannot compile: graph mode only.
- `static_shapes=True`: every tap of the 2-D kernel read at offset `row * p + column` of the
  1-D series, with masks where a tap leaves its row or the grid, and the periods found with a
  DFT as matrix products instead of an FFT. Shapes stay static and only values depend on p, so
  XLA (TPU) compiles it and TFLite runs it with builtin ops.

Two paddings (`padding`): 'last_rows', as TSLib's first public version (February 2023, the code
behind the published figures), repeats the last rows of the series; 'zeros', as TSLib since
2023, pads with zeros.
"""

import numpy as np
import tensorflow as tf

from tf_tsembed.data_embedding import DataEmbedding
from tf_tsembed.models.encoder import LAYER_NORM_EPSILON, torch_linear
from tf_tsembed.models.forecast_model import (
    ForecastConfig,
    ForecastModel,
    forecast_inputs,
    require,
)
from tf_tsembed.reversible_instance_norm import ReversibleInstanceNorm

keras = tf.keras

PADDINGS = ("last_rows", "zeros")


@keras.utils.register_keras_serializable(package="tf_tsembed")
class InceptionBlock(keras.layers.Layer):
    """TSLib's `Inception_Block_V1`: the mean of `num_kernels` 'same' 2-D convolutions of sizes
    1, 3, ..., 2 * num_kernels - 1 over `(B, rows, columns, in_channels)`.

    The weights are the reference's, one kernel and bias per size, initialised as it does
    (kaiming normal, fan_out, relu: std sqrt(2 / (out_channels * size**2)); biases 0). The
    mean of centred convolutions is one convolution of the largest size with the mean of the
    zero-padded kernels (exact, by linearity), so `combined()` returns that kernel and bias and
    `call` runs one convolution.
    """

    def __init__(self, in_channels, out_channels, num_kernels=6, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_kernels = num_kernels
        self.kernel_size = 2 * num_kernels - 1

    def build(self, input_shape=None):
        self.kernels, self.biases = [], []
        for index in range(self.num_kernels):
            size = 2 * index + 1
            # PyTorch's kaiming_normal_(mode="fan_out", nonlinearity="relu"), untruncated; one
            # initializer per kernel (legacy Keras repeats an unseeded one's draws).
            initializer = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{size}",
                    shape=(size, size, self.in_channels, self.out_channels),
                    initializer=initializer,
                )
            )
            self.biases.append(
                self.add_weight(
                    name=f"bias_{size}", shape=(self.out_channels,), initializer="zeros"
                )
            )

    def combined(self):
        """`(kernel (K, K, in, out), bias (out,))` of the one convolution equal to the mean."""
        padded = [
            tf.pad(kernel, [[self.num_kernels - 1 - index] * 2] * 2 + [[0, 0]] * 2)
            for index, kernel in enumerate(self.kernels)
        ]
        return tf.add_n(padded) / self.num_kernels, tf.add_n(self.biases) / self.num_kernels

    def call(self, grid):
        kernel, bias = self.combined()
        return tf.nn.conv2d(grid, kernel, strides=1, padding="SAME") + bias

    def get_config(self):
        config = super().get_config()
        config.update(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            num_kernels=self.num_kernels,
        )
        return config


def amplitude_spectrum(x, fft=True):
    """`|rfft|` of `x (B, T, d)` along time, `(B, d, T // 2 + 1)`: by FFT, or with `fft=False`
    as two matrix products with the DFT's cosines and sines (the same to float rounding; no
    FFT op, so TFLite's builtins run it at any length, where its RFFT2D takes powers of 2)."""
    series = tf.transpose(x, (0, 2, 1))
    if fft:
        return tf.abs(tf.signal.rfft(series))
    length = x.shape[1]
    angle = 2 * np.pi * np.outer(np.arange(length), np.arange(length // 2 + 1)) / length
    real = tf.matmul(series, tf.constant(np.cos(angle), x.dtype))
    imaginary = tf.matmul(series, tf.constant(np.sin(angle), x.dtype))
    return tf.sqrt(tf.square(real) + tf.square(imaginary))


def top_periods(x, k, fft=True):
    """The batch's k strongest periods of `x (B, T, d)` and each window's amplitude at them.

    Returns `periods (k,)` int32, `T // frequency` for the k frequencies of largest amplitude
    averaged over the batch and the channels (the zero frequency left out), and
    `amplitudes (B, k)`, each window's amplitude there averaged over the channels. `fft`: see
    `amplitude_spectrum`.
    """
    length = x.shape[1]
    spectrum = amplitude_spectrum(x, fft)  # (B, d, T // 2 + 1)
    # The reference zeroes the zero frequency before its top-k; leaving it out is the same.
    _, index = tf.math.top_k(tf.reduce_mean(spectrum, axis=(0, 1))[1:], k)
    frequencies = index + 1
    amplitudes = tf.gather(tf.reduce_mean(spectrum, axis=1), frequencies, axis=1)
    return length // frequencies, amplitudes


def padded_length(length, period):
    """The length `length` is padded to: the next multiple of `period`."""
    return (length + period - 1) // period * period


def max_padded_length(length):
    """The longest `padded_length` over every period `top_periods` can choose, a static bound."""
    return max(padded_length(length, length // f) for f in range(1, length // 2 + 1))


def pad_to_period(x, period, padding):
    """`x (B, T, d)` padded to `padded_length(T, period)` steps: zeros, or its last rows."""
    length = x.shape[1]
    extra = padded_length(length, period) - length
    if padding == "zeros":
        return tf.pad(x, [[0, 0], [0, extra], [0, 0]])
    return tf.concat([x, x[:, length - extra :]], axis=1)


@keras.utils.register_keras_serializable(package="tf_tsembed")
class TimesBlock(keras.layers.Layer):
    """TSLib's TimesBlock over `(B, T, d_model)`: see the module docstring.

    Args:
        d_ff: channels between the two Inception blocks.
        top_k: how many periods.
        num_kernels: Inception kernel sizes 1, 3, ..., 2 * num_kernels - 1.
        padding: 'last_rows' or 'zeros', how a series is padded to a multiple of a period.
        static_shapes: False for the reshape (graph mode), True for the tap formulation (XLA).
    """

    def __init__(
        self,
        d_ff,
        top_k=5,
        num_kernels=6,
        padding="last_rows",
        static_shapes=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {list(PADDINGS)}; got {padding!r}.")
        self.d_ff, self.top_k, self.num_kernels = d_ff, top_k, num_kernels
        self.padding, self.static_shapes = padding, static_shapes

    def build(self, input_shape):
        length, d_model = input_shape[1], input_shape[2]
        if length is None or not 1 <= self.top_k <= length // 2:
            raise ValueError(
                f"TimesBlock needs a known length T with 1 <= top_k <= T // 2 frequencies; got "
                f"T={length}, top_k={self.top_k}."
            )
        self.inception_in = InceptionBlock(
            d_model, self.d_ff, self.num_kernels, name="inception_in"
        )
        self.inception_out = InceptionBlock(
            self.d_ff, d_model, self.num_kernels, name="inception_out"
        )
        self.inception_in.build()
        self.inception_out.build()

    def _folded_convolution(self, x, period):
        """The Inception-GELU-Inception stack over x folded into rows of `period` steps."""
        length, d_model = x.shape[1], x.shape[2]
        if self.static_shapes:
            return self._tapped_convolution(x, period)[:, :length]
        padded = pad_to_period(x, period, self.padding)
        batch = tf.shape(x)[0]
        grid = tf.reshape(padded, (batch, -1, period, d_model))
        grid = self.inception_out(tf.nn.gelu(self.inception_in(grid), approximate=False))
        return tf.reshape(grid, (batch, -1, d_model))[:, :length]

    def _tapped_convolution(self, x, period):
        """As `_folded_convolution`, with static shapes: see the module docstring."""
        length = x.shape[1]
        steps = max_padded_length(length)
        valid = padded_length(length, period)
        t = tf.range(steps)
        # The padded series on `steps` rows: rows past `valid` are never read (masked below).
        source = tf.where(t < length, t, t - (valid - length))
        series = tf.gather(x, tf.clip_by_value(source, 0, length - 1), axis=1)
        if self.padding == "zeros":
            series *= tf.cast(t < length, x.dtype)[None, :, None]
        hidden = tf.nn.gelu(
            _tapped_conv2d(series, period, valid, *self.inception_in.combined()),
            approximate=False,
        )
        return _tapped_conv2d(hidden, period, valid, *self.inception_out.combined())

    def call(self, x):
        periods, amplitudes = top_periods(x, self.top_k, fft=not self.static_shapes)
        folded = [self._folded_convolution(x, periods[i]) for i in range(self.top_k)]
        weights = tf.nn.softmax(amplitudes, axis=1)  # (B, k)
        mixed = tf.einsum("kbtd,bk->btd", tf.stack(folded), weights)
        return mixed + x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            d_ff=self.d_ff,
            top_k=self.top_k,
            num_kernels=self.num_kernels,
            padding=self.padding,
            static_shapes=self.static_shapes,
        )
        return config


def _tapped_conv2d(series, period, valid, kernel, bias):
    """A 'same' 2-D convolution of `series (B, S, C)` folded into rows of `period` steps, the
    grid being its first `valid` steps, as static-shape gathers and one contraction.

    Tap (a, b) of output step t reads step `t + a * period + b`, which must lie in the same row
    as `t + a * period` (column mask) and inside the grid (row mask). Rows are gathered first
    (`(B, S, K, C)`, K row offsets), contracted with the kernel over rows and channels, and the
    K column offsets summed as static shifts, each masked to its row.
    """
    steps, size = series.shape[1], kernel.shape[0]
    half = size // 2
    t = tf.range(steps)
    row_offsets = tf.range(-half, half + 1) * period
    source = t[:, None] + row_offsets[None, :]  # (S, K)
    inside = tf.cast((source >= 0) & (source < valid), series.dtype)
    rows = tf.gather(series, tf.clip_by_value(source, 0, steps - 1), axis=1) * inside[..., None]
    by_column = tf.einsum("bsac,adco->bsdo", rows, kernel)  # (B, S, K column offsets, out)
    column = t % period
    outputs = 0.0
    for index, offset in enumerate(range(-half, half + 1)):
        same_row = tf.cast((column + offset >= 0) & (column + offset < period), series.dtype)
        outputs += _shifted(by_column[:, :, index], offset) * same_row[None, :, None]
    return outputs + bias


def _shifted(x, offset):
    """`x (B, S, ...)` read `offset` steps ahead along axis 1: `x[:, t + offset]`, zeros past
    either end (where `_tapped_conv2d` masks every read). Slices, not a roll: TFLite builtins."""
    if offset > 0:
        return tf.concat([x[:, offset:], tf.zeros_like(x[:, :offset])], axis=1)
    if offset < 0:
        return tf.concat([tf.zeros_like(x[:, offset:]), x[:, :offset]], axis=1)
    return x


@keras.utils.register_keras_serializable(package="tf_tsembed")
class TimesNet(ForecastModel):
    """TimesNet's long-term forecast, `[x_enc, x_mark_enc, x_dec, x_mark_dec] -> (B, pred_len,
    c_out)`; the decoder inputs are unused.

    Args:
        config: a `ForecastConfig` (or its dict); reads seq_len, pred_len, enc_in, c_out (equal
            to enc_in, as the reference's de-normalisation needs), freq, d_model, d_ff,
            e_layers, dropout, top_k, num_kernels.
        padding: 'zeros' (TSLib today, the default) or 'last_rows' (its first version).
        static_shapes: the tap formulation that XLA compiles (see the module docstring).

    Example:

    >>> from tf_tsembed.models import ForecastConfig, TimesNet
    >>> config = ForecastConfig(seq_len=24, label_len=12, pred_len=8, enc_in=2, dec_in=2,
    ...                         c_out=2, d_model=8, d_ff=8, top_k=2, e_layers=1)
    >>> model = TimesNet(config)
    >>> x = tf.ones((1, 24, 2)), tf.zeros((1, 24, 4)), tf.zeros((1, 20, 2)), tf.zeros((1, 20, 4))
    >>> model(list(x)).shape
    TensorShape([1, 8, 2])

    Reference: Wu et al., "TimesNet: Temporal 2D-Variation Modeling for General Time Series
    Analysis", ICLR 2023; Time-Series-Library `models/TimesNet.py`.
    """

    def __init__(self, config, padding="zeros", static_shapes=False, **kwargs):
        config = ForecastConfig.from_dict(config)
        require(config, "TimesNet", c_out="enc_in")
        if padding not in PADDINGS:
            raise ValueError(f"`padding` must be one of {list(PADDINGS)}; received {padding!r}.")
        inputs = forecast_inputs(config)
        values, marks = inputs[:2]
        revin = ReversibleInstanceNorm(config.enc_in, eps=1e-5, affine=False, name="window_norm")
        normalized, stats = revin.normalize(values)
        x = DataEmbedding(
            config.enc_in,
            config.d_model,
            embed_type="timeF",
            freq=config.freq,
            dropout=config.dropout,
            name="embedding",
        )(normalized, marks)
        # TSLib's predict_linear: Linear(seq_len -> seq_len + pred_len) along time.
        x = keras.layers.Permute((2, 1), name="time_last")(x)
        steps = config.seq_len + config.pred_len
        x = torch_linear(steps, config.seq_len, name="predict_linear")(x)
        x = keras.layers.Permute((2, 1), name="time_first")(x)
        norm = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="layer_norm")
        for index in range(config.e_layers):
            block = TimesBlock(
                config.d_ff,
                config.top_k,
                config.num_kernels,
                padding=padding,
                static_shapes=static_shapes,
                name=f"times_block_{index}",
            )
            x = norm(block(x))  # one LayerNorm, shared by every block, as the reference
        forecast = torch_linear(config.c_out, config.d_model, name="projection")(x)
        forecast = revin.denormalize(forecast[:, -config.pred_len :], stats)
        options = dict(padding=padding, static_shapes=static_shapes)
        kwargs.setdefault("name", "timesnet")
        super().__init__(config, inputs, forecast, options, **kwargs)
