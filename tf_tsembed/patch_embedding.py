"""PatchEmbedding: PatchTST's patch tokens, one sequence of patches per variable."""

import math

import tensorflow as tf

from tf_tsembed import _checks
from tf_tsembed._sinusoid import sinusoid_rows

keras = tf.keras


def num_patches(length, patch_len, stride, padding):
    """`P = floor((L + padding - patch_len) / stride) + 1`, on Python ints or scalar tensors."""
    return (length + padding - patch_len) // stride + 1


def patch_indices(length, patch_len, stride, padding):
    """Time index of every patch element, `(P, patch_len)`: `min(p * stride + j, L - 1)`.

    Taking the minimum with L - 1 is the replication padding: the `padding` steps appended after
    the sequence all repeat its last value, so one gather cuts the patches from the unpadded input.
    """
    count = num_patches(length, patch_len, stride, padding)
    starts = tf.range(count)[:, None] * stride
    return tf.minimum(starts + tf.range(patch_len)[None, :], length - 1)


def repeat_for_channels(x_mark, n_vars):
    """Repeats each sample's time marks `n_vars` times in a row: `(B, ...) -> (B * n_vars, ...)`.

    Row `b * n_vars + n` holds `x_mark[b]`, the row order of `PatchEmbedding`'s tokens, so marks
    stay with the series they belong to. Tiling the whole batch instead (row `n * B + b`, as one
    well-known reference does) pairs series with another sample's marks.

    Args:
        x_mark: tensor of rank >= 1 whose axis 0 is the batch, e.g. `(B, L, F)` time features.
        n_vars: the number of variables N: a positive Python int, or the scalar int tensor that
            `PatchEmbedding` returns when N is not static.

    Returns:
        `(B * n_vars, ...)` tensor of `x_mark`'s dtype.

    Example:

    >>> import numpy as np
    >>> repeat_for_channels(np.array([[1.0], [2.0]]), 3).numpy()[:, 0].tolist()
    [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    """
    n_vars = _checks.positive_count("n_vars", n_vars)
    x_mark = _checks.dense("repeat_for_channels", "`x_mark`", x_mark)
    rank = x_mark.shape.rank if x_mark.shape.rank is not None else tf.rank(x_mark)
    message = "repeat_for_channels expects `x_mark` of rank >= 1 with the batch on axis 0"
    # An unknown rank is checked at run time: a scalar would fail to slice, with a raw error.
    x_mark = _checks.ensure(x_mark, rank >= 1, f"{message}; received shape {x_mark.shape}")
    # Broadcast-and-reshape, not tf.repeat: XLA keeps it static when n_vars comes from tf.shape.
    shape = tf.shape(x_mark)
    repeated = tf.broadcast_to(x_mark[:, None], tf.concat([shape[:1], [n_vars], shape[1:]], 0))
    return tf.reshape(repeated, tf.concat([[-1], shape[1:]], 0))


@keras.utils.register_keras_serializable(package="tf_tsembed")
class PatchEmbedding(keras.layers.Layer):
    """Cuts each variable's series into patches and embeds every patch as one token.

    The patch embedding of PatchTST as Time-Series-Library writes it. Inputs are `(B, N, L)`,
    one row per variable (transpose a `(B, L, N)` batch first). Each row is extended at the end
    by `padding` copies of its last value, then cut into
    `P = floor((L + padding - patch_len) / stride) + 1` patches of `patch_len` steps taken every
    `stride` steps. Variables are treated independently: the patches are flattened to
    `(B * N, P, patch_len)` with row `b * N + n` for variable n of sample b, projected linearly
    to `d_model`, a position embedding of the patch index is added, and dropout is applied.

    Two forms of the projection and position embedding:

    - `position="fixed"`, `use_bias=False` (default): Time-Series-Library. The position term is
      the fixed interleaved sinusoid of `PositionalEmbedding` (rows 0..P-1), a graph constant.
    - `position="learned"`, `use_bias=True`: the original PatchTST code. The position term is a
      trainable `(P, d_model)` table initialised `U(-0.02, 0.02)`; P is fixed when the layer is
      built, so the time axis must be static then and every later input must have that length.

    To feed calendar marks or time features to a channel-independent model, bring them to the
    same row order with `repeat_for_channels(x_mark, n_vars)`.

    Args:
        d_model: int, embedding size.
        patch_len: int, time steps per patch.
        stride: int, steps between the starts of consecutive patches.
        padding: int >= 0, copies of the last value appended to every series before patching
            (PyTorch's `ReplicationPad1d((0, padding))`; PatchTST uses `padding=stride`).
        dropout: float in [0, 1), dropout rate applied to the tokens. Defaults to 0.
        position: `"fixed"` (default) or `"learned"`, see above.
        use_bias: bool, whether the patch projection has a bias. Defaults to False.
        max_len: int, the largest number of patches the fixed sinusoid accepts, 5000 as in the
            reference. Ignored when `position="learned"`.
        kernel_initializer: initializer for the `(patch_len, d_model)` projection. Defaults to
            PyTorch Linear's `U(-1/sqrt(patch_len), +1/sqrt(patch_len))`.
        bias_initializer: initializer for the `(d_model,)` bias, by default the same uniform.
        position_initializer: initializer for the learned `(P, d_model)` table. Defaults to
            `U(-0.02, 0.02)`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, N, L)` floating tensor. N and L may be unknown when traced, except that
            `position="learned"` needs a static L when the layer is built.
        training: bool, whether dropout is active.

    Returns:
        A tuple `(tokens, n_vars)`: `tokens` is `(B * N, P, d_model)` in the layer's compute
        dtype; `n_vars` is N, a Python int when N is static and a scalar int32 tensor otherwise.
        Symbolically, in a Functional model, `n_vars` is always an int32 scalar KerasTensor (Keras
        needs tensor outputs) whose run-time value follows the rule above: use it inside the
        model (e.g. to reshape the encoder output back to `(B, N, ...)`), not as a model output.

    Weights: the projection is the `Dense` sublayer `value_embedding` (kernel `(patch_len,
    d_model)`, bias `(d_model,)` when `use_bias`), so a PyTorch `nn.Linear` weight
    `(d_model, patch_len)` loads transposed; with `position="learned"` the layer also owns
    `position_embedding` `(P, d_model)`, PatchTST's `W_pos` as it is. `get_weights()` is
    `[kernel]`, or `[position_embedding, kernel, bias]` in the PatchTST form.

    Errors: bad constructor arguments raise ValueError at construction (a `use_bias` that is not a
    bool: TypeError). A wrong rank, an empty or too short series (`L + padding < patch_len`),
    more than `max_len` patches, or a length other than the one a learned table was built for
    raise ValueError at build or call when L is static, and InvalidArgumentError naming the
    condition at run time when it is not. Inside an XLA-compiled function, where run-time
    asserts are dropped, they still fail with InvalidArgumentError, but with XLA's message about
    a negative size.

    Example:

    >>> import numpy as np
    >>> layer = PatchEmbedding(d_model=16, patch_len=16, stride=8, padding=8)
    >>> tokens, n_vars = layer(np.zeros((4, 7, 96), "float32"))
    >>> tokens.shape, n_vars
    (TensorShape([28, 12, 16]), 7)

    Reference:
        Nie et al., "A Time Series is Worth 64 Words: Long-term Forecasting with Transformers",
        ICLR 2023.
    """

    def __init__(
        self,
        d_model,
        patch_len,
        stride,
        padding,
        dropout=0.0,
        position="fixed",
        use_bias=False,
        max_len=5000,
        kernel_initializer=None,
        bias_initializer=None,
        position_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.d_model = _checks.positive_int("d_model", d_model)
        self.patch_len = _checks.positive_int("patch_len", patch_len)
        self.stride = _checks.positive_int("stride", stride)
        self.padding = _checks.non_negative_int("padding", padding)
        self.dropout = _checks.probability("dropout", dropout)
        self.position = _checks.one_of("position", position, ("fixed", "learned"))
        self.use_bias = _checks.boolean("use_bias", use_bias)
        self.max_len = _checks.positive_int("max_len", max_len)
        bound = 1.0 / math.sqrt(self.patch_len)
        if kernel_initializer is None:
            kernel_initializer = keras.initializers.RandomUniform(-bound, bound)
        if bias_initializer is None:
            bias_initializer = keras.initializers.RandomUniform(-bound, bound)
        if position_initializer is None:
            position_initializer = keras.initializers.RandomUniform(-0.02, 0.02)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.position_initializer = keras.initializers.get(position_initializer)
        self.value_embedding = keras.layers.Dense(
            self.d_model,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="value_embedding",
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )
        self.position_embedding = None

    def _check_input_shape(self, input_shape):
        return _checks.rank(type(self).__name__, "inputs", input_shape, "batch, n_vars, time")

    def _checked_count(self, length, rows=None):
        """P for the series length L (an int, or a scalar tensor checked at run time), once L
        has a time step, is at least patch_len with the padding, and gives as many patches as
        the positions allow: at most max_len, or exactly the `rows` of a learned table (by
        default, the table's)."""
        name = type(self).__name__
        count = num_patches(length, self.patch_len, self.stride, self.padding)
        given = f"L={length}" if isinstance(length, int) else "L"
        if self.position == "learned":
            rows = self.position_embedding.shape[0] if rows is None else rows
            fits = count == rows
            limit = f"{name} with position='learned' was built for {rows} patches, but {given}"
            limit += f" gives {count}" if isinstance(count, int) else " gives another count"
        else:
            fits = count <= self.max_len
            limit = f"{name}: {given} gives more than max_len={self.max_len} patches"
        conditions = [
            (length >= 1, f"{name} needs at least one time step; received {given}"),
            (
                length + self.padding >= self.patch_len,
                f"{name}: patch_len={self.patch_len} is longer than the padded series "
                f"L + padding = {length} + {self.padding} = {length + self.padding}"
                if isinstance(length, int)
                else f"{name}: L + padding (padding={self.padding}) must be >= "
                f"patch_len={self.patch_len}",
            ),
            (fits, limit),
        ]
        for condition, message in conditions:
            count = _checks.ensure(count, condition, message)
        if isinstance(count, int):
            return count
        # XLA drops the asserts; a negative count still makes tf.range fail to compile there,
        # where an invalid count would silently give no patches or broadcast the position table.
        valid = tf.reduce_all(tf.stack([condition for condition, _ in conditions]))
        return tf.where(valid, count, -1)

    def build(self, input_shape):
        length = self._check_input_shape(input_shape)[2]
        if self.position == "learned":
            if length is None:
                raise ValueError(
                    f"{type(self).__name__} with position='learned' needs the series length "
                    f"when it is built (its table has one row per patch); received shape "
                    f"{tf.TensorShape(input_shape)}."
                )
            rows = num_patches(length, self.patch_len, self.stride, self.padding)
            self.position_embedding = self.add_weight(
                name="position_embedding",
                shape=(self._checked_count(length, rows), self.d_model),
                initializer=self.position_initializer,
            )
        elif length is not None:
            self._checked_count(length)
        _checks.build_sublayer(self.value_embedding, (None, None, self.patch_len))
        _checks.build_sublayer(self.dropout_layer, (None, None, self.d_model))
        self.built = True

    def call(self, inputs, training=None):
        name = type(self).__name__
        inputs = _checks.floating(name, "inputs", _checks.dense(name, "inputs", inputs))
        shape = self._check_input_shape(inputs.shape)
        length = shape[2] if shape[2] is not None else tf.shape(inputs)[2]
        count = self._checked_count(length)
        dtype = self.compute_dtype
        # One gather both pads and cuts; tf.signal.frame is as exact but needs the padded copy
        # first and measured slower under XLA on CPU.
        indices = patch_indices(length, self.patch_len, self.stride, self.padding)
        patches = tf.gather(tf.cast(inputs, dtype), indices, axis=2)  # (B, N, P, patch_len)
        patches = tf.reshape(patches, [-1, count, self.patch_len])  # row b * N + n
        if self.position == "learned":
            position = tf.cast(self.position_embedding, dtype)
        else:
            position = sinusoid_rows(count, self.d_model, dtype, self.max_len)
        tokens = self.dropout_layer(self.value_embedding(patches) + position, training=training)
        n_vars = shape[1] if shape[1] is not None else tf.shape(inputs)[1]
        return tokens, n_vars

    def compute_output_shape(self, input_shape):
        batch, n_vars, length = self._check_input_shape(input_shape).as_list()
        rows = None if batch is None or n_vars is None else batch * n_vars
        count = None if length is None else self._checked_count(length)
        return (rows, count, self.d_model), ()

    def compute_output_spec(self, inputs, training=None):
        # A Functional graph needs every output to be a tensor, also a static n_vars.
        tokens_shape, _ = self.compute_output_shape(inputs.shape)
        return keras.KerasTensor(tokens_shape, dtype=self.compute_dtype), keras.KerasTensor(
            (), dtype="int32"
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            patch_len=self.patch_len,
            stride=self.stride,
            padding=self.padding,
            dropout=self.dropout,
            position=self.position,
            use_bias=self.use_bias,
            max_len=self.max_len,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            position_initializer=keras.initializers.serialize(self.position_initializer),
        )
        return config
