"""ReversibleInstanceNorm (RevIN): per-series normalisation of the input, undone on the forecast."""

import tensorflow as tf

from tf_tsembed import _checks

keras = tf.keras


def instance_stats(x, eps, subtract_last):
    """`(center, stdev)` of `x (B, T, C)` over time, each `(B, 1, C)`, held as the reference holds
    them for gradients: the mean and the stdev constant, the last value (`subtract_last`) not."""
    stdev = tf.sqrt(tf.math.reduce_variance(x, axis=1, keepdims=True) + eps)
    if subtract_last:
        center = x[:, -1:, :]
    else:
        center = tf.stop_gradient(tf.reduce_mean(x, axis=1, keepdims=True))
    return center, tf.stop_gradient(stdev)


class _SeedFormMemory:
    """The statistics of the latest seed-form `mode="norm"` call and the graph they live in.

    A plain object, not a layer attribute holding tensors: Keras and tf.Module leave it alone, so
    it never reaches checkpoints or SavedModels.
    """

    def __init__(self):
        self.graph, self.stats = None, None

    @staticmethod
    def _graph():
        return None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()

    def remember(self, stats):
        self.graph, self.stats = self._graph(), stats

    def recall(self, layer_name):
        if self.stats is None:
            raise ValueError(
                f"ReversibleInstanceNorm '{layer_name}': mode='denorm' was called before any "
                f"mode='norm' call, so there are no statistics to undo. Call the layer with "
                f"mode='norm' first, or use `normalize(x)` and `denormalize(y, stats)`."
            )
        if self.graph is not self._graph():
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
    `x = (y - affine_bias) / (affine_weight + eps^2) * stdev + center`, as the reference code
    (Time-Series-Library `layers/StandardNorm.py`). Gradients are the reference's: it detaches
    the mean and the stdev, not the last value, so with `subtract_last=True` gradients flow
    through the last value of each series.

    The statistics are passed explicitly, as `stats = (center, stdev)`, two `(B, 1, C)` tensors;
    nothing is kept in the layer between calls. This form works everywhere: eagerly, in
    tf.function and XLA, in Functional and subclassed models, in SavedModels, across threads.

    The reference's call form, `y = layer(x, mode="norm")` then `layer(y_hat, mode="denorm")`,
    is also accepted where it can be correct: the denorm call undoes the latest norm call of
    this layer in the same graph (the same tf.function trace, or both eager). Otherwise it
    raises ValueError: no norm call before, one in another graph, another batch size
    (InvalidArgumentError at run time when a batch size is unknown while tracing), or a
    Functional model, whose symbolic calls cannot be linked. It keeps the latest statistics in
    the layer, so it is not thread-safe.

    Mixed precision: the statistics and both transforms are computed in the variable dtype
    (float32 under a mixed policy) from inputs Keras does not cast down: with an 8-bit
    mantissa, a series at 1000 +- 1 would be rounded in steps of 4 before its mean is removed.
    Normalised outputs come in the compute dtype; statistics and denormalised outputs, at the
    data's scale, in the variable dtype.

    Args:
        num_features: int, number of features (channels) C.
        eps: float > 0 added to the variance. Defaults to 1e-5.
        affine: bool, whether to learn a per-feature scale (`affine_weight`, initialised to ones)
            and shift (`affine_bias`, zeros). Defaults to True.
        subtract_last: bool, center on each series' last value instead of its mean. The stdev
            is still taken about the mean, as in the reference. Defaults to False.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, num_features)` floating tensor: the series to normalise (T >= 1), or the
            normalised-space output to denormalise (any horizon T).
        mode: `"norm"` (default) or `"denorm"`.
        stats: for `mode="denorm"`, the `(center, stdev)` of the matching norm call (tensors,
            arrays or nested lists of floats); None (the seed form) uses the latest norm call.
        return_stats: for `mode="norm"`, return `(y, stats)` and keep nothing for the seed form.

    Returns:
        `mode="norm"`: `y` `(B, L, num_features)` in the compute dtype, or `(y, stats)` with
        `return_stats=True`. `mode="denorm"`: `(B, T, num_features)` in the variable dtype.

    Errors: bad constructor arguments raise ValueError (TypeError for an `affine`,
    `subtract_last` or `return_stats` that is not a bool). A wrong rank or feature count, an
    empty series, an unknown mode or malformed `stats` raise ValueError at build or call, or
    InvalidArgumentError at run time for sizes unknown while tracing, except inside an
    XLA-compiled function, where run-time asserts are dropped (and a stats batch of 1 would
    broadcast).

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
        self._seed_form = _SeedFormMemory()
        self.affine_weight = self.affine_bias = None

    def build(self, input_shape):
        self._checked("inputs", input_shape)
        if self.affine:
            self.affine_weight = self.add_weight(
                name="affine_weight", shape=(self.num_features,), initializer="ones"
            )
            self.affine_bias = self.add_weight(
                name="affine_bias", shape=(self.num_features,), initializer="zeros"
            )
        self.built = True

    def normalize(self, inputs):
        """Returns `(y, stats)`: the normalised inputs and their `(center, stdev)`."""
        return self(inputs, mode="norm", return_stats=True)

    def denormalize(self, inputs, stats):
        """Undoes `normalize` on `inputs` (any horizon) with the `stats` it returned."""
        return self(inputs, mode="denorm", stats=stats)

    def call(self, inputs, mode="norm", stats=None, return_stats=False):
        name = type(self).__name__
        inputs = _checks.floating(name, "inputs", _checks.dense(name, "inputs", inputs))
        if mode == "denorm" and stats is not None:
            stats = self._stats_as_tensors(stats)
        self._check_call(inputs.shape, mode, stats, return_stats)
        x = self._checked("inputs", tf.cast(inputs, self.variable_dtype))
        if self.affine:  # read as variable-dtype tensors, whatever Keras' autocast scope
            weight, bias = (tf.cast(w, x.dtype) for w in (self.affine_weight, self.affine_bias))
        if mode == "norm":
            x = _checks.ensure_size(x, 1, lambda n: n >= 1, f"{name} needs at least one time step")
            center, stdev = instance_stats(x, self.eps, self.subtract_last)
            y = (x - center) / stdev
            if self.affine:
                y = y * weight + bias
            y = tf.cast(y, self.compute_dtype)
            if return_stats:
                return y, (center, stdev)
            self._seed_form.remember((center, stdev))
            return y
        if stats is None:
            stats = self._seed_form.recall(self.name)
            self._check_seed_batch(stats, inputs.shape)
        center, stdev = stats
        x = _checks.ensure(
            x,
            _checks.size(center, 0) == _checks.size(x, 0),
            f"{name}: the statistics (`stats`, or those of the last mode='norm' call) and the "
            f"inputs differ in batch size",
        )
        if self.affine:
            x = (x - bias) / (weight + self.eps * self.eps)
        return x * tf.cast(stdev, x.dtype) + tf.cast(center, x.dtype)

    def _checked(self, argument, value):
        """`value` (a tensor, or a shape in `build`) once it has rank 3 and num_features."""
        name = type(self).__name__
        shape = getattr(value, "shape", value)
        _checks.rank(name, f"`{argument}`", shape, "batch, time, num_features")
        return _checks.ensure_size(
            value, 2, lambda n: n == self.num_features, f"{name} was built with num_features="
            f"{self.num_features}, but `{argument}` has a different number of features",
        )  # fmt: skip

    def _check_call(self, input_shape, mode, stats, return_stats):
        name = type(self).__name__
        _checks.one_of("mode", mode, ("norm", "denorm"))
        _checks.boolean("return_stats", return_stats)
        self._checked("inputs", input_shape)
        if mode == "norm" and stats is not None:
            raise ValueError(
                f"{name}: `stats` is only for mode='denorm'; mode='norm' computes them. "
                f"Received stats={stats!r}."
            )
        if mode == "denorm" and return_stats:
            raise ValueError(
                f"{name}: return_stats=True is only for mode='norm'; received mode={mode!r}."
            )
        if mode == "denorm" and stats is not None:
            if not (isinstance(stats, (tuple, list)) and len(stats) == 2):
                raise ValueError(
                    f"{name}: `stats` must be the tuple (center, stdev) returned by normalize(); "
                    f"received {stats!r}."
                )
            for part, tensor in zip(("center", "stdev"), stats):
                shape = tf.TensorShape(self._checked(f"stats[{part}]", tensor.shape))
                batches = (shape[0], input_shape[0])
                if shape[1] != 1 or (None not in batches and batches[0] != batches[1]):
                    raise ValueError(
                        f"{name}: `stats` {part} must have shape ({input_shape[0]}, 1, "
                        f"{self.num_features}) to match inputs of shape {input_shape}; received "
                        f"shape {shape}."
                    )

    def _stats_as_tensors(self, stats):
        """`stats` with array-likes (nested lists, scalars) as tensors, checked to be floating."""
        if not (isinstance(stats, (tuple, list)) and len(stats) == 2):
            return stats  # `_check_call` names the problem
        name, converted = type(self).__name__, []
        for part, value in zip(("center", "stdev"), stats):
            if not hasattr(value, "shape"):
                try:
                    value = tf.convert_to_tensor(value)
                except (TypeError, ValueError) as error:
                    raise ValueError(
                        f"{name}: `stats` {part} must be a (batch, 1, {self.num_features}) "
                        f"array, as normalize() returns it; received {value!r}."
                    ) from error
            if not _checks.is_floating(value.dtype):
                raise TypeError(
                    f"{name}: `stats` {part} must be floating, as normalize() returns it; "
                    f"received dtype {getattr(value.dtype, 'name', value.dtype)}."
                )
            converted.append(value)
        return tuple(converted)

    def _check_seed_batch(self, stats, input_shape):
        """The seed form undoes the last norm call on that batch: a batch of 1 would broadcast."""
        batch = stats[0].shape[0]
        if None not in (batch, input_shape[0]) and batch != input_shape[0]:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': mode='denorm' received inputs of shape "
                f"{input_shape}, but the last mode='norm' call normalised a batch of {batch}: its "
                f"statistics have shape {stats[0].shape}. Denormalise outputs of that same batch, "
                f"or use `y, stats = layer.normalize(x)` and `layer.denormalize(y_hat, stats)`."
            )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs, mode="norm", stats=None, return_stats=False):
        self._check_call(inputs.shape, mode, stats, return_stats)
        shape = tuple(inputs.shape)
        if mode == "denorm":
            if stats is None:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': in a Functional model mode='denorm' "
                    f"cannot be tied to a mode='norm' call by itself. Use "
                    f"`y, stats = layer.normalize(x)` and `layer.denormalize(y_hat, stats)`."
                )
            return keras.KerasTensor(shape, dtype=self.variable_dtype)
        if shape[1] == 0:
            raise ValueError(
                f"{type(self).__name__} needs at least one time step; received shape {shape}."
            )
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
