"""The DataEmbedding family: value, calendar and position embeddings summed, then one dropout."""

import math

import tensorflow as tf

from tf_tsembed import _checks, _compile, _precision
from tf_tsembed.positional_embedding import PositionalEmbedding
from tf_tsembed.temporal_embedding import TemporalEmbedding, TimeFeatureEmbedding
from tf_tsembed.token_embedding import TokenEmbedding

keras = tf.keras

EMBED_TYPES = ("fixed", "learned", "timeF")
CONVENTIONS = ("tslib", "informer")


def summed_terms(terms, output_dtype):
    """`sum(function(*args) for function, args in terms)`, cast to `output_dtype` once.

    One function for the whole sum, so that under XLA the gathers and adds run in one pass
    after the token matrix product instead of each term being written out at full size (the
    gain is measured in docs/benchmarks.md). The terms come from the sublayers' `term` methods
    (a `(1, L, D)` position term broadcasts over the batch).
    """
    (function, args), *rest = terms
    outputs = function(*args)
    for function, args in rest:
        outputs += function(*args)
    return tf.cast(outputs, output_dtype)


# Weights go in as tensors: an XLA cluster capturing a mirrored variable fails in MirroredStrategy.
compiled_summed_terms = _compile.jit(summed_terms)


def _paired(layer_name, x, x_mark):
    """`x_mark` (or its shape in `build`) once it has rank 3 and the batch size and length of
    `x`: otherwise it would broadcast or fail late."""
    _checks.rank(layer_name, "`x_mark`", getattr(x_mark, "shape", x_mark), "batch, time, columns")
    known_now = True
    for axis, what in ((0, "batch size"), (1, "length")):
        size, mark_size = _checks.size(x, axis), _checks.size(x_mark, axis)
        if size is not None and mark_size is not None:  # None: a shape in build, checked at call
            known_now = known_now and not tf.is_tensor(size == mark_size)
            x_mark = _checks.ensure(
                x_mark,
                size == mark_size,
                f"{layer_name}: `x_mark` must have the {what} of `x`; received x_mark shape "
                f"{tuple(getattr(x_mark, 'shape', x_mark))} for x shape "
                f"{tuple(getattr(x, 'shape', x))}",
            )
    if known_now:
        return x_mark
    # XLA drops the asserts and would broadcast a batch of 1; it bounds-checks slices when it
    # compiles, and these two fail there unless batch and length are equal.
    marks = tf.slice(x_mark, [0, 0, 0], tf.concat([tf.shape(x)[:2], [-1]], 0))
    empty = tf.cast(x[:, :, :0], x_mark.dtype)
    marks = tf.concat(
        [marks, tf.slice(empty, [0, 0, 0], tf.concat([tf.shape(x_mark)[:2], [0]], 0))], 2
    )
    # Slices by run-time sizes lose the static shape the column checks read.
    marks.set_shape(x.shape[:2].merge_with(x_mark.shape[:2]).concatenate(x_mark.shape[2:]))
    return marks


class _SummedEmbedding(keras.layers.Layer):
    """DataEmbedding with or without the positional term; see the public subclasses."""

    def __init__(self, c_in, d_model, embed_type, freq, dropout, convention, jit_compile, **kwargs):
        super().__init__(autocast=False, **kwargs)
        # Float marks must reach TemporalEmbedding's range and integrality checks unrounded by
        # bfloat16; `x` is cast to the compute dtype explicitly.
        self.c_in = _checks.positive_int("c_in", c_in)
        self.d_model = _checks.positive_int("d_model", d_model)
        self.embed_type = _checks.one_of("embed_type", embed_type, EMBED_TYPES)
        self.freq = freq
        self.dropout = _checks.probability("dropout", dropout)
        self.convention = _checks.one_of("convention", convention, CONVENTIONS)
        self.jit_compile = _checks.boolean("jit_compile", jit_compile)
        use_bias = self.convention == "informer"
        self.value_embedding = TokenEmbedding(
            self.c_in,
            self.d_model,
            use_bias=use_bias,
            jit_compile=self.jit_compile,
            dtype=self.dtype_policy,
            name="value_embedding",
        )
        if self.embed_type == "timeF":
            self.temporal_embedding = TimeFeatureEmbedding(
                self.d_model,
                freq=freq,
                use_bias=use_bias,
                dtype=self.dtype_policy,
                name="temporal_embedding",
            )
        else:
            self.temporal_embedding = TemporalEmbedding(
                self.d_model,
                embed_type=embed_type,
                freq=freq,
                dtype=self.dtype_policy,
                name="temporal_embedding",
            )
        self.position_embedding = None
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )

    def build(self, x_shape, x_mark_shape=None):
        # Every check before any sublayer creates weights: a failed build must leave nothing
        # half-built behind for the next call.
        x_shape = tf.TensorShape(x_shape)
        self.value_embedding.compute_output_shape(x_shape)
        if x_mark_shape is None:
            # The temporal tables do not depend on the input: build them for an unknown width.
            x_mark_shape = x_shape[:-1].concatenate([None])
        else:
            x_mark_shape = tf.TensorShape(x_mark_shape)
            self.temporal_embedding.compute_output_shape(x_mark_shape)
            _paired(type(self).__name__, x_shape, x_mark_shape)
        if self.position_embedding is not None:
            _checks.build_sublayer(self.position_embedding, x_shape)
        _checks.build_sublayer(self.value_embedding, x_shape)
        _checks.build_sublayer(self.temporal_embedding, x_mark_shape)
        _checks.build_sublayer(self.dropout_layer, x_shape[:-1].concatenate([self.d_model]))
        self.built = True

    def call(self, x, x_mark=None, training=None):
        name = type(self).__name__
        x = _checks.floating(name, "`x`", _checks.dense(name, "`x`", x))
        # Every term in the dtype of the arithmetic (float32 for 16-bit policies on CPU), so the
        # sum is rounded to the compute dtype once.
        dtype = _precision.math_dtype(self.compute_dtype, x)
        terms = [self.value_embedding.term(x, dtype)]
        if self.position_embedding is not None:
            terms.append((tf.identity, (self.position_embedding.position_rows(x, dtype),)))
        if x_mark is not None:
            x_mark = _paired(name, x, _checks.dense(name, "`x_mark`", x_mark))
            terms.append(self.temporal_embedding.term(x_mark, dtype))
        summed = compiled_summed_terms if self.jit_compile else summed_terms
        outputs = summed(tuple(terms), tf.as_dtype(self.compute_dtype))
        return self.dropout_layer(outputs, training=training)

    def compute_output_shape(self, x_shape, x_mark_shape=None):
        return tuple(x_shape)[:-1] + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(
            c_in=self.c_in,
            d_model=self.d_model,
            embed_type=self.embed_type,
            freq=self.freq,
            dropout=self.dropout,
            convention=self.convention,
            jit_compile=self.jit_compile,
        )
        return config


@keras.utils.register_keras_serializable(package="tf_tsembed")
class DataEmbedding(_SummedEmbedding):
    """Value + calendar + position embedding, then one dropout: `(B, L, c_in) -> (B, L, d_model)`.

    `dropout(TokenEmbedding(x) + temporal(x_mark) + PositionalEmbedding(x))`, the input
    embedding of Informer, TimesNet and most Time-Series-Library models. `temporal` is a
    `TemporalEmbedding` of integer marks for `embed_type` 'fixed' or 'learned', and a
    `TimeFeatureEmbedding` of continuous time features for 'timeF'. Without `x_mark` the
    temporal term is left out. Dropout is applied once, to the sum.

    Args:
        c_in: int, number of input channels (variables).
        d_model: int, embedding size (odd sizes work).
        embed_type: 'fixed' (default), 'learned' or 'timeF'; see above.
        freq: frequency string understood by `timefeatures.parse_freq` ('h', '15min', 'D',
            ...). It fixes the number of `x_mark` columns: `num_time_marks(freq)` integer marks
            for 'fixed'/'learned', `num_time_features(freq)` features for 'timeF'. Defaults to 'h'.
        dropout: float in [0, 1), the dropout rate. Defaults to 0.1.
        convention: whose bias convention to follow. 'tslib' (default): Time-Series-Library and
            its descendants, no bias in the value convolution nor in the time-feature map.
            'informer': Informer's original code, a bias in both.
        max_len: int, the longest sequence the positional table covers. Defaults to 5000.
        jit_compile: bool. True (default) computes the whole sum in one XLA-compiled function,
            also when called eagerly, so the adds fuse; False uses plain TF ops (for TFLite or
            serving stacks without XLA).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        x: `(B, L, c_in)` floating tensor, 1 <= L <= max_len.
        x_mark: optional `(B, L, columns)` tensor: integer marks (floats holding whole numbers
            are accepted) for 'fixed'/'learned', floating time features for 'timeF'.
        training: bool, whether dropout is active.

    Returns:
        `(B, L, d_model)` tensor in the layer's compute dtype.

    Sublayers, named as in the reference: `value_embedding` (`TokenEmbedding`),
    `position_embedding` (`PositionalEmbedding`), `temporal_embedding`, `dropout_layer`.

    Errors: bad arguments raise ValueError at construction (unknown `freq`, `embed_type` or
    `convention`; yearly `freq` with 'timeF'), a `jit_compile` that is not a bool TypeError.
    Wrong shapes (channels, mark columns, L > max_len, `x_mark` whose batch or length differs
    from `x`) raise ValueError at build or call; out-of-range marks raise InvalidArgumentError
    at run time, except inside an enclosing XLA-compiled function, where run-time asserts are
    dropped and a gather clamps silently (see `TemporalEmbedding`). There, shapes unknown while
    tracing fail when XLA compiles, with XLA's message: L > max_len and an `x_mark` of another
    batch or length as "Expected size[0] in [0, n]", a wrong channel count in a reshape.

    Example:

    >>> import numpy as np
    >>> layer = DataEmbedding(c_in=7, d_model=16, freq="h")
    >>> x = np.zeros((2, 96, 7), "float32")
    >>> x_mark = np.tile(np.array([7, 1, 4, 0], "int32"), (2, 96, 1))
    >>> layer(x, x_mark).shape
    TensorShape([2, 96, 16])

    Reference:
        Zhou et al., "Informer: Beyond Efficient Transformer for Long Sequence Time-Series
        Forecasting", AAAI 2021; `DataEmbedding` in Time-Series-Library `layers/Embed.py`.
    """

    def __init__(
        self,
        c_in,
        d_model,
        embed_type="fixed",
        freq="h",
        dropout=0.1,
        convention="tslib",
        max_len=5000,
        jit_compile=True,
        **kwargs,
    ):
        super().__init__(
            c_in, d_model, embed_type, freq, dropout, convention, jit_compile, **kwargs
        )
        self.max_len = _checks.positive_int("max_len", max_len)
        self.position_embedding = PositionalEmbedding(
            self.max_len, self.d_model, dtype=self.dtype_policy, name="position_embedding"
        )

    def get_config(self):
        config = super().get_config()
        config.update(max_len=self.max_len)
        return config


@keras.utils.register_keras_serializable(package="tf_tsembed")
class DataEmbeddingWithoutPosition(_SummedEmbedding):
    """Value + calendar embedding, then one dropout, no position: `(B, L, c_in) -> (B, L, d_model)`.

    `dropout(TokenEmbedding(x) + temporal(x_mark))`, the input embedding of Autoformer and
    FEDformer (`DataEmbedding_wo_pos`), whose decomposition and auto-correlation make the
    positional term unnecessary. Everything else is as in `DataEmbedding`.

    Args:
        c_in: int, number of input channels (variables).
        d_model: int, embedding size.
        embed_type: 'fixed' (default), 'learned' or 'timeF', as in `DataEmbedding`.
        freq: frequency string, as in `DataEmbedding`. Defaults to 'h'.
        dropout: float in [0, 1), the dropout rate. Defaults to 0.1.
        convention: 'tslib' (default, no biases) or 'informer' (biases in the value convolution
            and the time-feature map), as in `DataEmbedding`.
        jit_compile: bool, as in `DataEmbedding`. Defaults to True.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        x: `(B, L, c_in)` floating tensor, L >= 1.
        x_mark: optional `(B, L, columns)` marks or time features, as in `DataEmbedding`.
        training: bool, whether dropout is active.

    Returns:
        `(B, L, d_model)` tensor in the layer's compute dtype.

    Errors: as in `DataEmbedding`, without the max_len limit.

    Example:

    >>> import numpy as np
    >>> layer = DataEmbeddingWithoutPosition(c_in=7, d_model=16, embed_type="timeF", freq="h")
    >>> layer(np.zeros((2, 96, 7), "float32"), np.zeros((2, 96, 4), "float32")).shape
    TensorShape([2, 96, 16])

    Reference:
        Wu et al., "Autoformer: Decomposition Transformers with Auto-Correlation for Long-Term
        Series Forecasting", NeurIPS 2021.
    """

    def __init__(
        self,
        c_in,
        d_model,
        embed_type="fixed",
        freq="h",
        dropout=0.1,
        convention="tslib",
        jit_compile=True,
        **kwargs,
    ):
        super().__init__(
            c_in, d_model, embed_type, freq, dropout, convention, jit_compile, **kwargs
        )


@keras.utils.register_keras_serializable(package="tf_tsembed")
class DataEmbeddingInverted(keras.layers.Layer):
    """Each variable's whole series as one token: `(B, L, N) -> (B, N (+ F), d_model)`.

    The iTransformer embedding: `x` is transposed to `(B, N, L)`; when given, the time features
    `x_mark (B, L, F)` are transposed to `(B, F, L)` and appended as F more tokens; a linear map
    with bias takes each token's L values to `d_model`; then one dropout.

    Args:
        c_in: int, the series length L that every token holds (the reference calls it `c_in`
            and iTransformer passes `seq_len`).
        d_model: int, embedding size.
        dropout: float in [0, 1), the dropout rate. Defaults to 0.1.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        x: `(B, c_in, N)` floating tensor.
        x_mark: optional `(B, c_in, F)` tensor of time features (integer marks are cast to the
            compute dtype as they are).
        training: bool, whether dropout is active.

    Returns:
        `(B, N + F, d_model)` tensor (`(B, N, d_model)` without `x_mark`) in the compute dtype.

    The linear map is the `keras.layers.Dense` sublayer `value_embedding` with kernel
    `(c_in, d_model)` and bias, both initialised `U(-1/sqrt(c_in), +1/sqrt(c_in))` as PyTorch's
    Linear; a PyTorch weight `(d_model, c_in)` loads transposed.

    Errors: a length other than `c_in`, a wrong rank, or an `x_mark` whose batch or length
    differs from `x` raise ValueError at build or call (InvalidArgumentError at run time when
    the length is unknown while tracing); non-numeric `x_mark` raises TypeError.

    Example:

    >>> import numpy as np
    >>> layer = DataEmbeddingInverted(c_in=96, d_model=16)
    >>> layer(np.zeros((2, 96, 7), "float32"), np.zeros((2, 96, 4), "float32")).shape
    TensorShape([2, 11, 16])

    Reference:
        Liu et al., "iTransformer: Inverted Transformers Are Effective for Time Series
        Forecasting", ICLR 2024.
    """

    def __init__(self, c_in, d_model, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.c_in = _checks.positive_int("c_in", c_in)
        self.d_model = _checks.positive_int("d_model", d_model)
        self.dropout = _checks.probability("dropout", dropout)
        bound = 1.0 / math.sqrt(self.c_in)
        self.value_embedding = keras.layers.Dense(
            self.d_model,
            kernel_initializer=keras.initializers.RandomUniform(-bound, bound),
            bias_initializer=keras.initializers.RandomUniform(-bound, bound),
            dtype=self.dtype_policy,
            name="value_embedding",
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )

    def _checked(self, x):
        """`x` (or its shape in `build`) once it has rank 3 and length c_in."""
        name = type(self).__name__
        _checks.rank(name, "`x`", getattr(x, "shape", x), "batch, time, columns")
        return _checks.ensure_size(
            x, 1, lambda n: n == self.c_in, f"{name} was built with c_in={self.c_in} (the series "
            f"length): `x` must have length {self.c_in}",
        )  # fmt: skip

    def build(self, x_shape, x_mark_shape=None):
        x_shape = tf.TensorShape(x_shape)
        self._checked(x_shape)
        if x_mark_shape is not None:
            _paired(type(self).__name__, x_shape, tf.TensorShape(x_mark_shape))
        _checks.build_sublayer(self.value_embedding, (x_shape[0], None, self.c_in))
        _checks.build_sublayer(self.dropout_layer, (x_shape[0], None, self.d_model))
        self.built = True

    def call(self, x, x_mark=None, training=None):
        name = type(self).__name__
        x = self._checked(_checks.floating(name, "`x`", _checks.dense(name, "`x`", x)))
        dtype = self.compute_dtype
        tokens = tf.transpose(tf.cast(x, dtype), (0, 2, 1))
        if x_mark is not None:
            x_mark = _checks.dense(name, "`x_mark`", x_mark)
            x_mark = _paired(name, x, _checks.numeric(name, "numeric `x_mark`", x_mark))
            tokens = tf.concat([tokens, tf.transpose(tf.cast(x_mark, dtype), (0, 2, 1))], axis=1)
        return self.dropout_layer(self.value_embedding(tokens), training=training)

    def compute_output_shape(self, x_shape, x_mark_shape=None):
        tokens = x_shape[2]
        if x_mark_shape is not None:
            tokens = None if tokens is None or x_mark_shape[2] is None else tokens + x_mark_shape[2]
        return (x_shape[0], tokens, self.d_model)

    def get_config(self):
        config = super().get_config()
        config.update(c_in=self.c_in, d_model=self.d_model, dropout=self.dropout)
        return config
