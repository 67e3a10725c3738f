"""Argument checks shared by the layers: each error names the parameter, the expected and the received value."""

import numbers

import tensorflow as tf


def positive_int(name, value, *, odd=False):
    """Returns `value` as an int, or raises ValueError if it is not a positive (odd) integer."""
    expected = "a positive odd integer" if odd else "a positive integer"
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or value < 1 or (odd and value % 2 == 0):
        raise ValueError(f"`{name}` must be {expected}; received {name}={value!r}.")
    return int(value)


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
    """Raises ValueError unless `shape` has one axis per name in `axes` (e.g. "batch, time, c_in")."""
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
    if not tensor.dtype.is_floating:
        raise TypeError(
            f"{layer_name} expects floating {argument}; received dtype {tensor.dtype.name}.{hint}"
        )
    return tensor


def build_sublayer(layer, input_shape):
    """Builds `layer` in its own name scope: tf_keras names weights by the scope, Keras 3 by the layer tree."""
    with tf.name_scope(layer.name):
        layer.build(input_shape)


def after_checks(checks, tensor):
    """`tensor`, made to wait for the run-time `checks` (tf.debugging asserts; None when eager).

    The one way the layers attach run-time checks: in a graph nothing orders an assert before
    the ops that consume the same input, so a failing gather or slice could report its own
    error first; this makes the assert's clear message the one that is raised.
    """
    checks = [check for check in checks if check is not None]
    if not checks:
        return tensor
    with tf.control_dependencies(checks):
        return tf.identity(tensor)
