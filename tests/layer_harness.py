"""The checks every layer gets, in one call: `run_layer_test` (in the spirit of keras-hub's).

Each layer's test file calls it with a factory and inputs; what is specific to a layer (its
formula against the NumPy reference, its errors) stays in that file.
"""

import numpy as np
import roundtrip
import tensorflow as tf

keras = tf.keras

# Relative to the largest float32 output: 16-bit rounding of inputs, weights and result.
SIXTEEN_BIT_RTOL = {"mixed_bfloat16": 2e-2, "mixed_float16": 2e-3}


def _first(outputs):
    """The embedding output; PatchEmbedding also returns its variable count."""
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


def _called(layer, inputs):
    return np.asarray(_first(layer(*inputs)))


def _assert_symbolic_build_matches_eager(make_layer, inputs, tmp_path):
    """A Functional model with a free batch axis builds the layer symbolically; its outputs,
    also after a `.keras` round trip, equal those of the same weights called eagerly."""
    symbolic = [keras.Input(x.shape[1:], dtype=x.dtype.name) for x in inputs]
    layer = make_layer()
    model = keras.Model(symbolic, _first(layer(*symbolic)))
    eager = make_layer()
    eager(*inputs)
    eager.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(model(list(inputs))), _called(eager, inputs))
    roundtrip.assert_keras_file_roundtrip(model, list(inputs), tmp_path)


def _assert_float64_policy(make_layer, inputs, expected):
    layer = make_layer(dtype="float64")
    out = _first(layer(*inputs))
    assert out.dtype == tf.float64
    if expected is not None:
        np.testing.assert_allclose(out, expected(layer, inputs), rtol=1e-12, atol=1e-12)


def _assert_sixteen_bit_matches_float32_by_value(make_layer, inputs, policy):
    reduced = make_layer(dtype=policy)
    out = _first(reduced(*inputs))
    assert out.dtype == tf.as_dtype(policy.removeprefix("mixed_"))
    assert all(weight.dtype == "float32" for weight in reduced.weights)
    full = make_layer()
    full(*inputs)
    full.set_weights(reduced.get_weights())
    expected = _called(full, inputs)
    rtol = SIXTEEN_BIT_RTOL[policy]
    scale = np.abs(expected).max()
    np.testing.assert_allclose(tf.cast(out, tf.float32), expected, rtol=rtol, atol=rtol * scale)


def run_layer_test(make_layer, inputs, tmp_path, expected=None):
    """Config round trip, symbolic build, `.keras` round trip and dtype policies by value.

    `make_layer(**kwargs)` builds the layer (kwargs: `dtype`); `inputs` is the tuple of positional
    call arguments (NumPy arrays with a batch axis first); `expected(layer, inputs)`, when
    given, is the independent float64 reference for the float64 policy.
    """
    inputs = tuple(np.asarray(x) for x in inputs)
    rebuilt = roundtrip.assert_config_roundtrip(make_layer())
    assert type(rebuilt) is type(make_layer())
    _assert_symbolic_build_matches_eager(make_layer, inputs, tmp_path)
    _assert_float64_policy(make_layer, tuple(_as_float64(x) for x in inputs), expected)
    for policy in SIXTEEN_BIT_RTOL:
        _assert_sixteen_bit_matches_float32_by_value(make_layer, inputs, policy)


def _as_float64(x):
    return x.astype(np.float64) if x.dtype.kind == "f" else x
