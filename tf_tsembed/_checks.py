"""Argument checks shared by the layers: errors name the parameter, expected and received."""

import numbers

import numpy as np
import tensorflow as tf


def positive_int(name, value, *, odd=False):
    """Returns `value` as an int, or raises ValueError if it is not a positive (odd) integer."""
    expected = "a positive odd integer" if odd else "a positive integer"
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or value < 1 or (odd and value % 2 == 0):
        raise ValueError(f"`{name}` must be {expected}; received {name}={value!r}.")
    return int(value)


def boolean(name, value):
    """Returns `value` as a bool, or raises TypeError if it is not one: `"False"` and 0 are not."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"`{name}` must be a bool (True or False); received {name}={value!r} "
            f"of type {type(value).__name__}."
        )
    return bool(value)


def positive_count(name, value):
    """`value` as an int, or as an int32 scalar tensor checked to be positive (at run time in a
    graph); raises ValueError for anything else: floats, vectors, zero or negative counts."""
    if not tf.is_tensor(value):
        return positive_int(name, value)
    expected = "a positive integer or a scalar integer tensor"
    if value.shape.rank != 0 or not value.dtype.is_integer:
        raise ValueError(f"`{name}` must be {expected}; received {name}={value!r}.")
    if tf.executing_eagerly():
        if int(value) < 1:
            raise ValueError(f"`{name}` must be {expected}; received {name}={int(value)}.")
        return int(value)
    return ensure(tf.cast(value, tf.int32), value > 0, f"`{name}` must be {expected}")


def probability(name, value):
    """Returns `value` as a float, or raises ValueError if it is not in [0, 1)."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1); received {name}={value!r}.")
    return float(value)


def one_of(name, value, choices):
    """Returns `value`, or raises ValueError if it is not one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}; received {name}={value!r}.")
    return value


def non_negative_int(name, value):
    """Returns `value` as an int, or raises ValueError if it is not an integer >= 0."""
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer; received {name}={value!r}.")
    return int(value)


def positive_float(name, value):
    """Returns `value` as a float, or raises ValueError if it is not a finite number > 0."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number or not 0.0 < value < float("inf"):
        raise ValueError(f"`{name}` must be a finite positive float; received {name}={value!r}.")
    return float(value)


def rank(layer_name, argument, shape, axes):
    """Raises ValueError unless `shape` has one axis per name in `axes` ("batch, time, c_in")."""
    shape = tf.TensorShape(shape)
    expected = len(axes.split(","))
    if shape.rank != expected:
        raise ValueError(
            f"{layer_name} expects {argument} of rank {expected} ({axes}); received shape {shape}."
        )
    return shape


def rank_at_least(layer_name, argument, shape, axes):
    """Raises ValueError unless `shape` has at least the named leading `axes` ("batch, time")."""
    shape = tf.TensorShape(shape)
    expected = len(axes.split(","))
    if shape.rank is not None and shape.rank < expected:
        raise ValueError(
            f"{layer_name} expects {argument} of rank >= {expected} ({axes}, ...); "
            f"received shape {shape}."
        )
    return shape


def floating(layer_name, argument, tensor, hint=""):
    """Raises TypeError unless `tensor` is floating (float16, bfloat16, float32 or float64)."""
    if not is_floating(tensor.dtype):
        raise TypeError(
            f"{layer_name} expects floating {argument}; received dtype {tensor.dtype.name}.{hint}"
        )
    return tensor


def numeric(layer_name, what, tensor):
    """Raises TypeError unless `tensor` holds integers or floats (not bools, strings, ...)."""
    dtype = tensor.dtype
    if dtype == tf.bool or not (dtype.is_integer or dtype.is_floating):
        raise TypeError(f"{layer_name} expects {what}; received dtype {dtype.name}.")
    return tensor


def is_floating(dtype):
    """Whether `dtype` (NumPy, TF or a name) is a floating type: float16, bfloat16, float32 or
    float64. NumPy's `dtype.kind == "f"` misses bfloat16, whose NumPy kind is 'V'."""
    try:
        return tf.as_dtype(dtype).is_floating
    except TypeError:
        return False


def dense(layer_name, argument, value):
    """`value` as a dense tensor. A RaggedTensor or SparseTensor raises TypeError saying how to
    densify it (the layers' math is defined on dense windows of one length)."""
    if isinstance(value, tf.RaggedTensor):
        raise TypeError(
            f"{layer_name} expects a dense tensor for {argument}; received a tf.RaggedTensor. "
            f"Pad it to one length first, e.g. with `.to_tensor()`."
        )
    if isinstance(value, tf.SparseTensor):
        raise TypeError(
            f"{layer_name} expects a dense tensor for {argument}; received a tf.SparseTensor. "
            f"Densify it first with `tf.sparse.to_dense(...)`."
        )
    return tf.convert_to_tensor(value)


def ensure(tensor, condition, message, error=ValueError, data=()):
    """`tensor`, once `condition` holds: the one way the layers check what they are given.

    A condition known while tracing (a Python or NumPy bool) raises `error(message)` at once
    when False. A boolean tensor, known only when the graph runs, is checked then: `tensor`
    comes back made to wait for an assert raising InvalidArgumentError(message), so that this
    message is the error raised, not that of a gather or reshape consuming the same input (in a
    graph nothing else orders the assert first). Eagerly that assert runs at once. Inside an
    XLA-compiled function asserts are dropped: each layer's docstring says what happens there.
    `data` (tensors) is printed after the message at run time.
    """
    if not tf.is_tensor(condition):
        if not condition:
            raise error(message)
        return tensor
    assertion = tf.debugging.Assert(tf.reduce_all(condition), [message, *data])
    if assertion is None:  # eager: already checked
        return tensor
    with tf.control_dependencies([assertion]):
        return tf.identity(tensor)


def size(value, axis):
    """The size of axis `axis` of a tensor or shape: an int when known while tracing; else the
    run-time size of a tensor (a scalar int32 tensor), or None for a shape."""
    shape = tf.TensorShape(value.shape if tf.is_tensor(value) else value)
    if shape[axis] is not None or not tf.is_tensor(value):
        return shape[axis]
    return tf.shape(value)[axis]


def ensure_size(value, axis, predicate, message, error=ValueError):
    """`value` once `predicate(size)` holds for the size of its axis `axis`, via `ensure`.

    `value` is a tensor, or (in `build`) a shape. A known size is checked now, the error naming
    the shape; an unknown one when the graph runs, or, for a shape, at call. `predicate` takes
    an int or a scalar int32 tensor (`lambda n: n >= 1`).
    """
    shape = tf.TensorShape(value.shape if tf.is_tensor(value) else value)
    size = shape[axis]
    if size is not None:
        return ensure(value, bool(predicate(size)), f"{message}; received shape {shape}.", error)
    if not tf.is_tensor(value):
        return value
    size = tf.shape(value)[axis]
    return ensure(
        value, predicate(size), message, error, data=[f"received axis {axis} of size", size]
    )


def host_ids(layer_name, values, fields):
    """Raises InvalidArgumentError unless the NumPy ids `values` index their tables.

    `fields` holds `(name, column, size)`: the ids `values[..., column]` (all of `values` when
    `column` is None) must lie in [0, size). Floating ids, in any floating dtype, must hold whole
    numbers (NaN does not). The eager twin of `graph_ids`: one pass on the host costs less
    than the asserts.
    """
    if is_floating(values.dtype):
        values = values.astype(np.float64)  # exact for every float; bfloat16 arrays lack round
        fractional = values != np.round(values)  # NaN included
        if fractional.any():
            index = tuple(int(i) for i in np.argwhere(fractional)[0])
            raise tf.errors.InvalidArgumentError(
                None,
                None,
                f"{layer_name}: floating ids must hold whole numbers; received {values[index]} "
                f"at index {index}",
            )
    for name, column, size in fields:
        column_values = values if column is None else values[..., column]
        if column_values.size and (column_values.min() < 0 or column_values.max() >= size):
            raise tf.errors.InvalidArgumentError(
                None,
                None,
                f"{layer_name}: {name} must lie in [0, {size - 1}]; received values from "
                f"{column_values.min()} to {column_values.max()}",
            )


def graph_ids(layer_name, ids, fields):
    """`ids`, checked when the graph runs as `host_ids` checks them eagerly.

    A bound is compared in the ids' own dtype only where that dtype holds it: a uint8 id is
    always below 300, and 300 cast to uint8 would be 44.
    """
    if ids.dtype.is_floating:
        ids = ensure(
            ids, tf.equal(ids, tf.round(ids)), f"{layer_name}: floating ids must hold whole numbers"
        )
    largest = ids.dtype.max
    for name, column, size in fields:
        values = ids if column is None else ids[..., column]
        inside = values >= tf.zeros((), ids.dtype)
        if size - 1 < largest:
            inside &= values < tf.constant(size, ids.dtype)
        ids = ensure(ids, inside, f"{layer_name}: {name} must lie in [0, {size - 1}]")
    return ids


def build_sublayer(layer, input_shape):
    """Builds `layer` in its own name scope: tf_keras names weights by scope, Keras 3 by tree."""
    with tf.name_scope(layer.name):
        layer.build(input_shape)
