"""Calendar embeddings: FixedEmbedding, TemporalEmbedding (integer marks), TimeFeatureEmbedding."""

import math

import tensorflow as tf

from tf_tsembed import _checks, _precision
from tf_tsembed._sinusoid import sinusoid_rows
from tf_tsembed.timefeatures import mark_fields, num_time_features

keras = tf.keras


def _validated_ids(layer_name, inputs, fields):
    """`inputs` as int32 ids, once every id indexes its table (`_checks.host_ids` eagerly,
    `_checks.graph_ids` in a graph).

    `fields` holds `(name, column, size)`: the ids `inputs[..., column]` (all of `inputs` when
    `column` is None) must lie in [0, size). Floating inputs are accepted when they hold whole
    numbers, because the reference data loaders hand marks over as floats. The checks run on
    the original dtype, before the cast, so that large values cannot wrap into range.
    """
    what = "integer ids (or floats holding whole numbers)"
    inputs = _checks.numeric(layer_name, what, _checks.dense(layer_name, "ids", inputs))
    if tf.executing_eagerly():
        _checks.host_ids(layer_name, inputs.numpy(), fields)
    else:
        inputs = _checks.graph_ids(layer_name, inputs, fields)
    return tf.cast(inputs, tf.int32)


def lookup_sum(ids, tables, dtype):
    """`sum_f tables[f][ids[..., f]]` in `dtype`: one table per id column, the rows added up."""
    total = tf.cast(tf.gather(tables[0], ids[..., 0]), dtype)
    for column in range(1, len(tables)):
        total += tf.cast(tf.gather(tables[column], ids[..., column]), dtype)
    return total


def linear(features, kernel, bias=None):
    """`features @ kernel (+ bias)` over the last axis, in the dtype of `features`."""
    outputs = tf.matmul(features, tf.cast(kernel, features.dtype))
    if bias is not None:
        outputs += tf.cast(bias, features.dtype)
    return outputs


def _checked_marks(layer_name, value, freq, width, what, columns=""):
    """`value` (marks, or their shape in `build`) once it has rank 3 and `width` columns."""
    _checks.rank(layer_name, what, getattr(value, "shape", value), "batch, time, columns")
    return _checks.ensure_size(
        value,
        2,
        lambda n: n == width,
        f"{layer_name} with freq={freq!r} expects {width} {what} columns{columns}",
    )


@keras.utils.register_keras_serializable(package="tf_tsembed")
class FixedEmbedding(keras.layers.Layer):
    """Frozen sinusoid lookup table: integer ids of any shape `(...)` -> `(..., d_model)`.

    Row `i` of the table is row `i` of the interleaved sinusoid of `PositionalEmbedding`
    (`sin(i w_k)` in even columns, `cos(i w_k)` in odd ones). The table is a graph constant
    computed in float64 NumPy: the layer has no weights at all, not even non-trainable ones.

    Args:
        c_in: int, number of rows (ids 0 .. c_in - 1).
        d_model: int, embedding size (odd sizes end with a sine column).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: integer ids of any shape. Floating ids holding whole numbers are accepted (and
            not autocast, so ids above 256 stay exact under mixed precision).

    Returns:
        `inputs.shape + (d_model,)` tensor in the layer's compute dtype.

    Errors: non-numeric or boolean ids raise TypeError. Ids outside [0, c_in) or floats that are
    not whole numbers (NaN included, in any floating dtype: float16, bfloat16, float32, float64)
    raise InvalidArgumentError at run time, eagerly or in a `tf.function`.
    Inside an enclosing XLA-compiled function (e.g. a model compiled with jit_compile=True)
    run-time asserts are dropped: a gather there clamps out-of-range ids to the nearest table
    row without an error (TF on GPU returns zero rows instead), and floating ids are truncated
    toward zero.

    Example:

    >>> import numpy as np
    >>> layer = FixedEmbedding(c_in=24, d_model=8)
    >>> layer(np.array([[0, 23]])).shape
    TensorShape([1, 2, 8])

    Reference:
        `FixedEmbedding` of Zhou et al., "Informer: Beyond Efficient Transformer for Long
        Sequence Time-Series Forecasting", AAAI 2021.
    """

    def __init__(self, c_in, d_model, **kwargs):
        super().__init__(autocast=False, **kwargs)
        # Float ids must reach call unrounded: bfloat16 holds integers exactly only up to 256.
        self.c_in = _checks.positive_int("c_in", c_in)
        self.d_model = _checks.positive_int("d_model", d_model)

    def table(self, dtype=None):
        """The `(c_in, d_model)` table in `dtype` (default: the compute dtype), baked into the
        graph as a constant."""
        return sinusoid_rows(self.c_in, self.d_model, dtype or self.compute_dtype, self.c_in)

    def call(self, inputs):
        ids = _validated_ids(type(self).__name__, inputs, [("ids", None, self.c_in)])
        return tf.gather(self.table(), ids)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(c_in=self.c_in, d_model=self.d_model)
        return config


@keras.utils.register_keras_serializable(package="tf_tsembed")
class TemporalEmbedding(keras.layers.Layer):
    """Sum of per-field embeddings of integer calendar marks: `(B, L, M) -> (B, L, d_model)`.

    Mark columns run coarse to fine, as `timefeatures.time_marks` returns them: month (table of
    13 rows), day (32), weekday (7, Monday = 0), hour (24), minute // 15 (4). A frequency keeps
    the leading `num_time_marks(freq)` columns: 5 for 't', 4 for 'h' and 's' (as in the reference,
    only minutely data have a minute table), 3 for 'd', 'b' and 'w', 1 for 'm', 'q' and 'y'.
    Only those fields have tables, and the output is the sum of
    their rows. Unlike the reference, daily and coarser data work (the reference always reads
    the hour from column 3).

    Args:
        d_model: int, embedding size.
        embed_type: 'fixed' (default): frozen sinusoid tables (`FixedEmbedding`), no weights.
            'learned': trainable tables initialised N(0, 1), as in the reference.
        freq: frequency string understood by `timefeatures.parse_freq` ('h', '15min', 'D',
            'W-SUN', 'MS', ...). Defaults to 'h'.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, L, num_time_marks(freq))` integer marks. Floats holding whole numbers (as
            reference data loaders produce) are accepted and cast; they are not autocast.

    Returns:
        `(B, L, d_model)` tensor in the layer's compute dtype.

    The tables are the sublayers `month_embed`, `day_embed`, `weekday_embed`, `hour_embed` and
    `minute_embed` (those present for `freq`, listed with their rows in the attribute `fields`
    as `(name, rows)` pairs, coarse to fine), as in the reference: `FixedEmbedding` layers for
    'fixed', `keras.layers.Embedding` layers (weight `embeddings`, shape `(rows, d_model)`, the
    layout of a PyTorch `nn.Embedding` weight) for 'learned'.

    Errors: an unknown `freq` or `embed_type` raises ValueError at construction. A wrong rank or
    number of mark columns raises ValueError at build or call, naming freq and both widths.
    Non-numeric marks raise TypeError. Marks outside a field's table (e.g. month 13, hour 24) or
    floats that are not whole numbers (NaN included, in any floating dtype) raise
    InvalidArgumentError at run time, eagerly or in a `tf.function`, naming the field and range.
    Inside an enclosing XLA-compiled function (e.g. a model compiled with jit_compile=True)
    run-time asserts are dropped: a gather there clamps out-of-range ids to the nearest table
    row without an error (TF on GPU returns zero rows instead), and floating ids are truncated
    toward zero.

    Example:

    >>> import numpy as np
    >>> layer = TemporalEmbedding(d_model=8, freq="h")
    >>> layer(np.array([[[7, 1, 4, 0], [7, 1, 4, 1]]])).shape
    TensorShape([1, 2, 8])

    Reference:
        Zhou et al., "Informer: Beyond Efficient Transformer for Long Sequence Time-Series
        Forecasting", AAAI 2021; `TemporalEmbedding` in Time-Series-Library `layers/Embed.py`.
    """

    def __init__(self, d_model, embed_type="fixed", freq="h", **kwargs):
        super().__init__(autocast=False, **kwargs)
        # Float marks must reach the integrality and range checks unrounded by bfloat16.
        self.d_model = _checks.positive_int("d_model", d_model)
        self.embed_type = _checks.one_of("embed_type", embed_type, ("fixed", "learned"))
        self.freq = freq
        self.fields = tuple((field, size) for field, _, size in mark_fields(freq))
        for field, size in self.fields:
            if self.embed_type == "fixed":
                table = FixedEmbedding(
                    size, self.d_model, dtype=self.dtype_policy, name=f"{field}_embed"
                )
            else:
                table = keras.layers.Embedding(
                    size,
                    self.d_model,
                    embeddings_initializer=keras.initializers.RandomNormal(mean=0.0, stddev=1.0),
                    dtype=self.dtype_policy,
                    name=f"{field}_embed",
                )
            setattr(self, f"{field}_embed", table)

    def _table_layers(self):
        return [getattr(self, f"{field}_embed") for field, _ in self.fields]

    def _checked(self, value):
        columns = " (" + ", ".join(field for field, _ in self.fields) + ", coarse to fine)"
        name = type(self).__name__
        return _checked_marks(name, value, self.freq, len(self.fields), "mark", columns)

    def build(self, input_shape):
        self._checked(input_shape)
        column_shape = tuple(tf.TensorShape(input_shape))[:-1]
        for table in self._table_layers():
            _checks.build_sublayer(table, column_shape)
        self.built = True

    def lookup_tables(self, dtype=None):
        """The tables present for `freq`, coarse to fine: fixed ones as constants of `dtype`
        (default: the compute dtype), learned ones rounded to the compute dtype."""
        if self.embed_type == "fixed":
            return [table.table(dtype or self.compute_dtype) for table in self._table_layers()]
        tables = [table.embeddings for table in self._table_layers()]
        return [_precision.rounded_weight(table, self.compute_dtype) for table in tables]

    def term(self, inputs, dtype=None):
        """`(function, args)` such that `function(*args)` is this layer's output in `dtype`.

        The marks are checked as in `call`; `dtype` defaults to the compute dtype.
        DataEmbedding runs `function` inside its compiled sum, so the lookups fuse with it.
        """
        name = type(self).__name__
        inputs = self._checked(_checks.dense(name, "inputs", inputs))
        fields = [
            (f"{field} marks (column {column})", column, size)
            for column, (field, size) in enumerate(self.fields)
        ]
        ids = _validated_ids(name, inputs, fields)
        dtype = tf.as_dtype(dtype or self.compute_dtype)
        return lookup_sum, (ids, tuple(self.lookup_tables(dtype)), dtype)

    def call(self, inputs):
        function, args = self.term(inputs)
        return function(*args)

    def compute_output_shape(self, input_shape):
        return tuple(self._checked(input_shape))[:-1] + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(d_model=self.d_model, embed_type=self.embed_type, freq=self.freq)
        return config


@keras.utils.register_keras_serializable(package="tf_tsembed")
class TimeFeatureEmbedding(keras.layers.Layer):
    """Linear map of continuous time features: `(B, L, num_time_features(freq)) -> (B, L, d_model)`.

    The features are those of `timefeatures.time_features(dates, freq)` (columns fine to coarse,
    each in [-0.5, 0.5]): 6 for 's', 5 for 't', 4 for 'h', 3 for 'd'/'b', 2 for 'w', 1 for
    'm'/'q'. Yearly data has no time features and is rejected.

    Args:
        d_model: int, embedding size.
        freq: frequency string understood by `timefeatures.parse_freq`. Defaults to 'h'.
        use_bias: bool. False (default) matches Time-Series-Library; True matches Informer's
            original code.
        kernel_initializer: initializer for the `(num_features, d_model)` kernel. Defaults to
            PyTorch Linear's `U(-1/sqrt(num_features), +1/sqrt(num_features))`.
        bias_initializer: initializer for the `(d_model,)` bias, by default the same uniform.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, L, num_time_features(freq))` floating tensor.

    Returns:
        `(B, L, d_model)` tensor in the layer's compute dtype.

    Weights are `[kernel (num_features, d_model), bias (d_model,)]` (no bias when
    `use_bias=False`): a PyTorch `Linear` weight `(d_model, num_features)` loads transposed.

    Errors: an unknown or yearly `freq` raises ValueError at construction, a `use_bias` that is
    not a bool TypeError. A wrong rank or number of feature columns raises ValueError at build
    or call, naming freq and both widths. Integer inputs raise TypeError: integer calendar
    marks belong to `TemporalEmbedding`.

    Example:

    >>> import numpy as np
    >>> layer = TimeFeatureEmbedding(d_model=8, freq="h")
    >>> layer(np.zeros((2, 96, 4), "float32")).shape
    TensorShape([2, 96, 8])

    Reference:
        Zhou et al., "Informer", AAAI 2021; `TimeFeatureEmbedding` in Time-Series-Library
        `layers/Embed.py`.
    """

    def __init__(
        self,
        d_model,
        freq="h",
        use_bias=False,
        kernel_initializer=None,
        bias_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.d_model = _checks.positive_int("d_model", d_model)
        self.freq = freq
        self.num_features = num_time_features(freq)
        if self.num_features == 0:
            raise ValueError(
                f"{type(self).__name__} needs at least one time feature, but freq={freq!r} "
                f"(yearly) has none. Use embed_type='fixed' or 'learned' (one month mark) "
                f"for yearly data."
            )
        self.use_bias = _checks.boolean("use_bias", use_bias)
        bound = 1.0 / math.sqrt(self.num_features)
        if kernel_initializer is None:
            kernel_initializer = keras.initializers.RandomUniform(-bound, bound)
        if bias_initializer is None:
            bias_initializer = keras.initializers.RandomUniform(-bound, bound)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _checked(self, value):
        name = type(self).__name__
        return _checked_marks(name, value, self.freq, self.num_features, "time-feature")

    def build(self, input_shape):
        self._checked(input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.num_features, self.d_model),
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

        The features are checked as in `call` and cast to `dtype` (default: the compute dtype);
        the weights are rounded to the compute dtype. DataEmbedding runs `function` inside its
        compiled sum, so the linear map fuses with it.
        """
        name = type(self).__name__
        inputs = _checks.dense(name, "inputs", inputs)
        hint = " Integer calendar marks go to TemporalEmbedding."
        _checks.floating(name, "time features (timefeatures.time_features)", inputs, hint)
        inputs = self._checked(inputs)
        kernel = _precision.rounded_weight(self.kernel, self.compute_dtype)
        bias = _precision.rounded_weight(self.bias, self.compute_dtype)
        return linear, (tf.cast(inputs, dtype or self.compute_dtype), kernel, bias)

    def call(self, inputs):
        function, args = self.term(inputs)
        return function(*args)

    def compute_output_shape(self, input_shape):
        return tuple(self._checked(input_shape))[:-1] + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            freq=self.freq,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
