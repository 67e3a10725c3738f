"""XLA compilation of the layers' math: one compiled function per piece of math, used by layers."""

import collections

import tensorflow as tf
from tensorflow.python.ops import (
    control_flow_util,
)  # no public equivalent: see inside_xla_compilation

# Eager calls keep this many compiled signatures per function; the least recently used go first.
EAGER_CACHE_SIZE = 32


def inside_xla_compilation():
    """Whether the graph being traced is itself compiled by XLA (`jit_compile=True`, TPU).

    There a compiled function must not be nested: it gains nothing, and with gradients XLA then
    takes the nested function's inputs as compile-time constants and recompiles the whole step
    on every call. `tf.function` answers the same question this way for its own nested calls.
    """
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _signature(value):
    if tf.is_tensor(value):
        return (tuple(value.shape), value.dtype)
    if isinstance(value, (tuple, list)):
        return tuple(_signature(item) for item in value)
    return value


def jit(function):
    """`function`, run as an XLA-compiled function wherever that helps.

    Inside a graph that XLA already compiles, `function` runs as plain ops in it. In other
    graphs, one `tf.function(jit_compile=True)` is called, which retraces per input signature
    like any tf.function. Eager calls go straight to a concrete function per signature (which
    skips tf.function's argument handling) from a cache of `EAGER_CACHE_SIZE` signatures: each
    new shape costs one XLA compilation, and an evicted one is compiled again when it returns.
    The arguments are tensors (or nested tuples of them) and hashable Python values.
    """
    in_graphs = tf.function(function, jit_compile=True)
    eager = collections.OrderedDict()

    def call(*args):
        if not tf.executing_eagerly():
            return function(*args) if inside_xla_compilation() else in_graphs(*args)
        key = _signature(args)
        concrete = eager.pop(key, None)
        if concrete is None:
            # A tf.function of its own per signature, so that eviction frees its graph too.
            concrete = tf.function(function, jit_compile=True).get_concrete_function(*args)
        eager[key] = concrete
        if len(eager) > EAGER_CACHE_SIZE:
            eager.popitem(last=False)
        return concrete(*args)

    call.in_graphs = in_graphs
    call.eager_functions = eager
    return call
