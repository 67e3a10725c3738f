"""ReversibleInstanceNorm (RevIN): per-series normalisation of the input, undone on the forecast."""

import tensorflow as tf

from tf_tsembed import _checks

keras = tf.keras


def _current_graph():
    """The graph ops are being added to, or None when executing eagerly."""
    return None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()


class _LastNormStats:
    """The statistics of the latest seed-form `mode="norm"` call and the graph they live in.

    A plain object, not a layer attribute holding tensors: Keras and tf.Module leave it alone, so
    it never reaches checkpoints or SavedModels.
    """

    def __init__(self):
        self.graph = None
        self.stats = None

    def remember(self, stats):
        self.graph = _current_graph()
        self.stats = stats

    def recall(self, layer_name):
        if self.stats is None:
            raise ValueError(
                f"ReversibleInstanceNorm '{layer_name}': mode='denorm' was called before any "
                f"mode='norm' call, so there are no statistics to undo. Call the layer with "
                f"mode='norm' first, or use `normalize(x)` and `denormalize(y, stats)`."
            )
        if self.graph is not _current_graph():
            raise ValueError(
                f"ReversibleInstanceNorm '{layer_name}': mode='denorm' runs in a different "
                f"graph (or eager context) than the last mode='norm' call, e.g. in another "
                f"tf.function trace; its statistics would be stale or unusable here. Use "
                f"`y, stats = layer.normalize(x)` and `layer.denormalize(y_hat, stats)` instead."
            )
        return self.stats


@keras.utils.register_keras_serializable(package="tf_tsembed")
class ReversibleInstanceNorm(keras.layers.Layer):
    """Reversible instance normalisation (RevIN) of `(B, L, num_features)` series.

    `normalize` standardises every series of every sample over time with its own statistics,
    `center` (the mean, or the last value with `subtract_last=True`) and
    `stdev = sqrt(var + eps)` (population variance about the mean), then applies an optional
    per-feature affine map: `y = (x - center) / stdev * affine_weight + affine_bias`.
    `denormalize` undoes it on the model's output with the same statistics:
    `x = (y - affine_bias) / (affine_weight + eps^2) * stdev + center`, as in the reference
    code (Time-Series-Library `layers/StandardNorm.py`). The statistics are constants for
    gradients (the reference detaches them).

    The statistics are passed explicitly, as the tuple `stats = (center, stdev)` of two
    `(B, 1, num_features)` tensors; nothing is stored in the layer between calls. This is the
    recommended form and works everywhere: eagerly, in tf.function and XLA, in Functional and
    subclassed models, in SavedModels.

    The reference's call form `y = layer(x, mode="norm")` ... `layer(y_hat, mode="denorm")` is
    also accepted where it can be correct: the denorm call uses the statistics of the latest
    norm call of this layer made in the same graph, i.e. in the same tf.function trace or both
    eagerly (for eager calls, the latest call in time). A denorm call without a preceding norm
    call, or one in another graph (another trace, or eager vs. traced), raises ValueError rather
    than using missing or stale tensors, and so does a denorm call on another batch size than the
    norm call's (InvalidArgumentError at run time when a batch size is unknown while tracing). It
    cannot link the two calls in a Functional model, whose symbolic calls raise ValueError: use
    `normalize`/`denormalize` there.

    Thread safety: the seed form keeps the latest statistics in the layer, so it is not
    thread-safe: two threads calling one layer eagerly can denormalise with each other's
    statistics. `y, stats = layer.normalize(x)` and `layer.denormalize(y_hat, stats)` keep
    nothing in the layer and are thread-safe.

    Mixed precision: the statistics and both transforms are computed in the layer's variable
    dtype (float32 under `mixed_bfloat16`/`mixed_float16`) from inputs that Keras does not cast
    down. Normalised outputs, of order 1, come in the compute dtype; statistics and denormalised
    outputs, at the data's scale, in the variable dtype.

    Args:
        num_features: int, number of features (channels) C.
        eps: float > 0 added to the variance. Defaults to 1e-5.
        affine: bool, whether to learn a per-feature scale (`affine_weight`, initialised to ones)
            and shift (`affine_bias`, zeros). Defaults to True.
        subtract_last: bool, center on each series' last value instead of its mean. The stdev
            is still taken about the mean, as in the reference. Defaults to False.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, num_features)` floating tensor: the series to normalise (T = L >= 1), or
            the normalised-space output to denormalise (any horizon T).
        mode: `"norm"` (default) or `"denorm"`.
        stats: for `mode="denorm"`, the `(center, stdev)` of the matching norm call (tensors,
            arrays or nested lists of floats); None (the seed form) uses the latest norm call in
            the same graph.
        return_stats: for `mode="norm"`, return `(y, stats)` instead of `y` and leave nothing
            for the seed form.

    Returns:
        `mode="norm"`: `y` `(B, L, num_features)` in the compute dtype, or `(y, stats)` with
        `return_stats=True`. `mode="denorm"`: `(B, T, num_features)` in the variable dtype.

    Errors: bad constructor arguments raise ValueError at construction (TypeError for an `affine`,
    `subtract_last` or `return_stats` that is not a bool); a wrong rank or feature count, an
    empty series, an unknown mode or malformed `stats` raise ValueError at build or call (a
    feature count unknown while tracing: InvalidArgumentError at run time). A batch size of
    `stats` that differs from the inputs' raises InvalidArgumentError at run time when either is
    unknown while tracing, except inside an XLA-compiled function, where run-time asserts are
    dropped (and a stats batch of 1 would broadcast).

    Example: normalise the input and denormalise the forecast inside one Functional model.

    >>> import numpy as np
    >>> inputs = keras.Input((96, 7))
    >>> revin = ReversibleInstanceNorm(num_features=7)
    >>> y, stats = revin.normalize(inputs)
    >>> h = keras.layers.Dense(24)(keras.layers.Permute((2, 1))(y))  # 96 steps -> 24 ahead
    >>> forecast = revin.denormalize(keras.layers.Permute((2, 1))(h), stats)
    >>> model = keras.Model(inputs, forecast)
    >>> model(np.random.rand(2, 96, 7).astype("float32")).shape
    TensorShape([2, 24, 7])

    Reference:
        Kim et al., "Reversible Instance Normalization for Accurate Time-Series Forecasting
        against Distribution Shift", ICLR 2022.
    """

    def __init__(self, num_features, eps=1e-5, affine=True, subtract_last=False, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.num_features = _checks.positive_int("num_features", num_features)
        self.eps = _checks.positive_float("eps", eps)
        self.affine = _checks.boolean("affine", affine)
        self.subtract_last = _checks.boolean("subtract_last", subtract_last)
        # Keras would otherwise cast the inputs and the stats to bfloat16 before `call`: with an
        # 8-bit mantissa, a series at 1000 +- 1 is rounded in steps of 4 before its mean is removed.
        self._last_norm_stats = _LastNormStats()
        self.affine_weight = None
        self.affine_bias = None

    def _check_shape(self, name, shape):
        shape = _checks.rank(type(self).__name__, f"`{name}`", shape, "batch, time, num_features")
        if shape[2] is not None and shape[2] != self.num_features:
            raise ValueError(
                f"{type(self).__name__} was built with num_features={self.num_features}, but "
                f"`{name}` has {shape[2]} features (shape {shape})."
            )
        return shape

    def _check_stats(self, stats, input_shape):
        if not (isinstance(stats, (tuple, list)) and len(stats) == 2):
            raise ValueError(
                f"{type(self).__name__}: `stats` must be the tuple (center, stdev) returned by "
                f"normalize(); received {stats!r}."
            )
        for name, tensor in zip(("center", "stdev"), stats):
            shape = self._check_shape(f"stats[{name}]", tensor.shape)
            batch_mismatch = None not in (shape[0], input_shape[0]) and shape[0] != input_shape[0]
            if shape[1] != 1 or batch_mismatch:
                raise ValueError(
                    f"{type(self).__name__}: `stats` {name} must have shape "
                    f"({input_shape[0]}, 1, {self.num_features}) to match inputs of shape "
                    f"{input_shape}; received shape {shape}."
                )

    def _stats_as_tensors(self, stats):
        """`stats` with array-likes (nested lists, scalars) as tensors, checked to be floating."""
        if not (isinstance(stats, (tuple, list)) and len(stats) == 2):
            return stats  # `_check_stats` names the problem
        converted = []
        for name, value in zip(("center", "stdev"), stats):
            if not hasattr(value, "shape"):
                try:
                    value = tf.convert_to_tensor(value)
                except (TypeError, ValueError) as error:
                    raise ValueError(
                        f"{type(self).__name__}: `stats` {name} must be a (batch, 1, "
                        f"{self.num_features}) array, as normalize() returns it; received "
                        f"{value!r}."
                    ) from error
            if not _checks.is_floating(value.dtype):
                raise TypeError(
                    f"{type(self).__name__}: `stats` {name} must be floating, as normalize() "
                    f"returns it; received dtype {getattr(value.dtype, 'name', value.dtype)}."
                )
            converted.append(value)
        return tuple(converted)

    def _check_call(self, input_shape, mode, stats, return_stats):
        _checks.one_of("mode", mode, ("norm", "denorm"))
        _checks.boolean("return_stats", return_stats)
        input_shape = self._check_shape("inputs", input_shape)
        if mode == "norm":
            if stats is not None:
                raise ValueError(
                    f"{type(self).__name__}: `stats` is only for mode='denorm'; mode='norm' "
                    f"computes them. Received stats={stats!r}."
                )
            if input_shape[1] == 0:
                raise ValueError(
                    f"{type(self).__name__} needs at least one time step to normalise; received "
                    f"shape {input_shape}."
                )
        else:
            if return_stats:
                raise ValueError(
                    f"{type(self).__name__}: return_stats=True is only for mode='norm'; "
                    f"received mode={mode!r}."
                )
            if stats is not None:
                self._check_stats(stats, input_shape)
        return input_shape

    def build(self, input_shape):
        self._check_shape("inputs", input_shape)
        if self.affine:
            self.affine_weight = self.add_weight(
                name="affine_weight", shape=(self.num_features,), initializer="ones", trainable=True
            )
            self.affine_bias = self.add_weight(
                name="affine_bias", shape=(self.num_features,), initializer="zeros", trainable=True
            )
        self.built = True

    def _normalize(self, x):
        if self.subtract_last:
            center = x[:, -1:, :]
        else:
            center = tf.reduce_mean(x, axis=1, keepdims=True)
        stdev = tf.sqrt(tf.math.reduce_variance(x, axis=1, keepdims=True) + self.eps)
        center, stdev = tf.stop_gradient(center), tf.stop_gradient(stdev)
        y = (x - center) / stdev
        if self.affine:
            y = y * tf.cast(self.affine_weight, x.dtype) + tf.cast(self.affine_bias, x.dtype)
        return y, (center, stdev)

    def _denormalize(self, y, stats):
        center, stdev = (tf.cast(s, y.dtype) for s in stats)
        if self.affine:
            weight = tf.cast(self.affine_weight, y.dtype)
            y = (y - tf.cast(self.affine_bias, y.dtype)) / (weight + self.eps * self.eps)
        return y * stdev + center

    def call(self, inputs, mode="norm", stats=None, return_stats=False):
        inputs = _checks.floating(type(self).__name__, "inputs", tf.convert_to_tensor(inputs))
        if mode == "denorm" and stats is not None:
            stats = self._stats_as_tensors(stats)
        input_shape = self._check_call(inputs.shape, mode, stats, return_stats)
        x = self._checked_features_at_run_time(tf.cast(inputs, self.variable_dtype))
        if mode == "norm":
            if input_shape[1] is None:
                message = f"{type(self).__name__} needs at least one time step"
                check = tf.debugging.assert_positive(tf.shape(x)[1], message=message)
                x = _checks.after_checks([check], x)
            y, new_stats = self._normalize(x)
            y = tf.cast(y, self.compute_dtype)
            if return_stats:
                return y, new_stats
            self._last_norm_stats.remember(new_stats)
            return y
        if stats is None:
            stats = self._last_norm_stats.recall(self.name)
            self._check_seed_stats(stats, input_shape)
        return self._denormalize(self._same_batch_at_run_time(x, stats), stats)

    def _check_seed_stats(self, stats, input_shape):
        """The seed form undoes the last norm call on that batch: a batch of 1 would broadcast."""
        batch = stats[0].shape[0]
        if None not in (batch, input_shape[0]) and batch != input_shape[0]:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': mode='denorm' received inputs of shape "
                f"{input_shape}, but the last mode='norm' call normalised a batch of {batch}: its "
                f"statistics have shape {stats[0].shape}. Denormalise outputs of that same batch, "
                f"or use `y, stats = layer.normalize(x)` and `layer.denormalize(y_hat, stats)`."
            )

    def _checked_features_at_run_time(self, x):
        """`x`, checked at run time to have num_features features when that is unknown."""
        if x.shape[2] is not None:
            return x
        check = tf.debugging.assert_equal(
            tf.shape(x)[2],
            self.num_features,
            message=f"{type(self).__name__} was built with num_features={self.num_features}, but "
            f"`inputs` has a different number of features",
        )
        return _checks.after_checks([check], x)

    def _same_batch_at_run_time(self, x, stats):
        """`x`, checked at run time to have the batch size of `stats` when either is unknown."""
        if None not in (x.shape[0], stats[0].shape[0]):
            return x
        check = tf.debugging.assert_equal(
            tf.shape(stats[0])[0],
            tf.shape(x)[0],
            message=f"{type(self).__name__}: the statistics (`stats`, or those of the last "
            f"mode='norm' call) and the inputs differ in batch size",
        )
        return _checks.after_checks([check], x)

    def normalize(self, inputs):
        """Returns `(y, stats)`: the normalised inputs and their `(center, stdev)`."""
        return self(inputs, mode="norm", return_stats=True)

    def denormalize(self, inputs, stats):
        """Undoes `normalize` on `inputs` (any horizon) with the `stats` it returned."""
        return self(inputs, mode="denorm", stats=stats)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs, mode="norm", stats=None, return_stats=False):
        shape = self._check_call(inputs.shape, mode, stats, return_stats)
        if mode == "denorm":
            if stats is None:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': in a Functional model mode='denorm' "
                    f"cannot be tied to a mode='norm' call by itself. Use "
                    f"`y, stats = layer.normalize(x)` and `layer.denormalize(y_hat, stats)`."
                )
            return keras.KerasTensor(shape, dtype=self.variable_dtype)
        y = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if not return_stats:
            return y
        stats_shape = (shape[0], 1, self.num_features)
        center = keras.KerasTensor(stats_shape, dtype=self.variable_dtype)
        stdev = keras.KerasTensor(stats_shape, dtype=self.variable_dtype)
        return y, (center, stdev)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_features=self.num_features,
            eps=self.eps,
            affine=self.affine,
            subtract_last=self.subtract_last,
        )
        return config
