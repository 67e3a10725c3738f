"""Property-based tests: random shapes, dtypes and values against the float64 NumPy references.

Most examples run the plain-TF path (`jit_compile=False`): every new shape costs an XLA compile
(~0.3 s) on the compiled path, which gets a smaller sample of its own.
"""

import os

import numpy as np
import pytest
import reference
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tf_tsembed import PositionalEmbedding, TokenEmbedding

# bfloat16 rounds inputs, weights and the result to 8 significant bits: 4 * 2^-8 = 1.6e-2 of
# the sum of |products| when the products are summed in float32, as XLA and oneDNN do on CPU.
BF16_RTOL = 2e-2


def _relative_bound(dtype, terms):
    """Error bound relative to the sum of |products|, for a sum of `terms` products (+ bias).

    Rounding each product and each addition costs at most one unit roundoff u: (terms + 2) u,
    twice that in float64, where the reference rounds as much as the layer.
    """
    if dtype == "mixed_bfloat16":
        return BF16_RTOL
    roundoff = np.finfo(dtype).eps / 2
    return (terms + 2) * roundoff * (2 if dtype == "float64" else 1)


@st.composite
def token_cases(draw, dtypes=("float32", "float64")):
    """`(layer kwargs, x)`: L from 1, also below kernel_size; odd and even sizes; wide scales."""
    dtype = draw(st.sampled_from(dtypes))
    kwargs = dict(
        # Past k * c_in = 128 the layer switches from one stacked matmul to a convolution.
        c_in=draw(st.one_of(st.integers(1, 5), st.integers(26, 40))),
        d_model=draw(st.integers(1, 9)),
        kernel_size=draw(st.sampled_from([1, 3, 5])),
        use_bias=draw(st.booleans()),
        dtype=dtype,
    )
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 12)), kwargs["c_in"])
    # Powers of ten up to 1e30 keep every sum finite in float32 (and in bfloat16's range).
    scale = 10.0 ** draw(st.integers(-6, 30))
    unit = st.floats(-1.0, 1.0, allow_nan=False, width=32)
    x = draw(hnp.arrays(np.float32, shape, elements=unit)).astype(np.float64) * scale
    return kwargs, x.astype("float32" if dtype == "mixed_bfloat16" else dtype)


def _check_token_embedding(kwargs, x, jit_compile):
    layer = TokenEmbedding(jit_compile=jit_compile, **kwargs)
    got = layer(x)
    weights = layer.get_weights()
    expected = reference.circular_conv1d(x, *weights)
    # Cancellation makes a relative bound on the result meaningless; bound the error by the
    # same sum taken over absolute values instead.
    magnitude = reference.circular_conv1d(np.abs(x), *[np.abs(w) for w in weights])
    terms = kwargs["kernel_size"] * kwargs["c_in"]
    tolerance = _relative_bound(kwargs["dtype"], terms) * magnitude + np.finfo(np.float32).tiny
    error = np.abs(np.asarray(got, np.float64) - expected)
    assert got.shape == x.shape[:2] + (kwargs["d_model"],)
    assert np.all(error <= tolerance), np.max(error / tolerance)


@settings(max_examples=40, deadline=None)
@given(token_cases())
def test_token_embedding_matches_reference(case):
    _check_token_embedding(*case, jit_compile=False)


@settings(max_examples=10, deadline=None)
@given(token_cases(dtypes=("float32", "mixed_bfloat16")))
def test_compiled_token_embedding_matches_reference(case):
    _check_token_embedding(*case, jit_compile=True)


@settings(max_examples=10, deadline=None)
@given(token_cases(dtypes=("mixed_bfloat16",)))
def test_mixed_bfloat16_token_embedding_is_close_to_float32(case):
    kwargs, x = case
    bf16 = TokenEmbedding(jit_compile=False, **kwargs)
    got = bf16(x)
    assert got.dtype == tf.bfloat16
    weights = bf16.get_weights()
    float32 = TokenEmbedding(jit_compile=False, **dict(kwargs, dtype="float32"))
    float32.build(x.shape)
    float32.set_weights(weights)
    magnitude = reference.circular_conv1d(np.abs(x), *[np.abs(w) for w in weights])
    error = np.abs(np.asarray(tf.cast(got, tf.float64)) - np.asarray(float32(x), np.float64))
    assert np.all(error <= BF16_RTOL * magnitude + np.finfo(np.float32).tiny), np.max(
        error / magnitude
    )


@st.composite
def position_cases(draw):
    max_len = draw(st.integers(1, 600))
    return (
        dict(
            max_len=max_len,
            d_model=draw(st.integers(1, 33)),
            dtype=draw(st.sampled_from(["float32", "float64", "mixed_bfloat16"])),
        ),
        draw(st.integers(1, max_len)),
        draw(st.booleans()),
    )


# Half a unit in the last place of values up to 1 (bfloat16: 8 significant bits), plus the
# float64 reference's own error at positions up to 600.
POSITION_ATOL = {"float32": 2**-25, "float64": 1e-12, "mixed_bfloat16": 2**-9}


@settings(max_examples=40, deadline=None)
@given(position_cases())
def test_positional_embedding_matches_reference(case):
    kwargs, length, dynamic = case
    layer = PositionalEmbedding(**kwargs)
    x = np.zeros((1, length, 2), "float64" if kwargs["dtype"] == "float64" else "float32")
    if dynamic:
        got = tf.function(layer, input_signature=[tf.TensorSpec((None, None, 2), x.dtype)])(x)
    else:
        got = layer(x)
    assert got.dtype == layer.compute_dtype
    expected = reference.sinusoid(length, kwargs["d_model"])[None]
    got = np.asarray(tf.cast(got, tf.float64))
    np.testing.assert_allclose(got, expected, rtol=0, atol=POSITION_ATOL[kwargs["dtype"]] + 1e-12)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 50), st.integers(1, 20), st.integers(1, 9))
def test_positional_embedding_refuses_every_length_over_max_len(max_len, excess, d_model):
    length = max_len + excess
    with pytest.raises(
        ValueError, match=rf"L exceeds max_len={max_len}.*received shape \(\d+, {length}, \d+\)"
    ):
        PositionalEmbedding(max_len, d_model)(np.zeros((1, length, 1), "float32"))


# --- The tests' randomness is fixed (conftest.py) -------------------------------------------------


@pytest.mark.skipif("HYPOTHESIS_PROFILE" in os.environ, reason="another hypothesis profile chosen")
def test_every_test_starts_from_the_same_seed():
    """Weights, data and dropout masks drawn without a seed of their own do not depend on the
    tests that ran before: each test starts from `set_random_seed(1234)`."""
    drawn = (
        np.random.random(),
        float(tf.random.uniform(())),
        TokenEmbedding(2, 3).kernel_initializer((3, 2, 3)).numpy(),
    )
    tf.keras.utils.set_random_seed(1234)
    again = (
        np.random.random(),
        float(tf.random.uniform(())),
        TokenEmbedding(2, 3).kernel_initializer((3, 2, 3)).numpy(),
    )
    assert drawn[:2] == again[:2]
    np.testing.assert_array_equal(drawn[2], again[2])
