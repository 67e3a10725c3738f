"""PositionalEmbedding against the float64 sinusoid formula of docs/formulas.md."""

import os
import tracemalloc

import layer_harness
import numpy as np
import pytest
import reference
import tensorflow as tf

from tf_tsembed import PositionalEmbedding, _sinusoid

keras = tf.keras


@pytest.mark.parametrize("length,d_model", [(1, 1), (2, 5), (7, 3), (96, 512), (13, 8)])
def test_matches_reference(length, d_model):
    out = PositionalEmbedding(max_len=100, d_model=d_model)(np.zeros((3, length, 2), "float32"))
    assert out.shape == (1, length, d_model) and out.dtype == tf.float32
    np.testing.assert_allclose(out[0], reference.sinusoid(length, d_model), rtol=1e-6, atol=1e-6)


def test_default_table_matches_float64_formula_and_spec_vectors():
    out = PositionalEmbedding()(np.zeros((1, 5000, 1), "float32"))[0].numpy()
    np.testing.assert_allclose(out, reference.sinusoid(5000, 512), rtol=0, atol=1e-6)
    # Values quoted in docs/formulas.md from the reference implementation.
    np.testing.assert_allclose(out[0, :4], [0, 1, 0, 1], atol=1e-7)
    np.testing.assert_allclose(
        out[1, :4], [0.84147096, 0.54030234, 0.82185620, 0.56969506], atol=1e-7
    )
    np.testing.assert_allclose(out[1, 510:512], [1.0366e-4, 1.0], rtol=1e-4)
    np.testing.assert_allclose(out[4999, 0:2], [-0.66394955, -0.74777740], atol=1e-6)


def test_odd_d_model_ends_with_a_sine_column():
    out = PositionalEmbedding(max_len=10, d_model=5)(np.zeros((1, 10, 1)))[0].numpy()
    positions = np.arange(10)
    np.testing.assert_allclose(out[:, 4], np.sin(positions * 10000.0 ** (-4 / 5)), atol=1e-6)


def test_has_no_weights():
    layer = PositionalEmbedding(max_len=4321, d_model=77)
    inputs = keras.Input((12, 3))
    model = keras.Model(inputs, layer(inputs))
    assert layer.weights == [] and model.weights == []


def test_max_len_costs_nothing_only_the_rows_used_are_computed():
    # A table of max_len rows would take 200_000 * 64 * 8 bytes = 102 MB on the host.
    tracemalloc.start()
    out = PositionalEmbedding(max_len=200_000, d_model=64)(np.zeros((2, 96, 3), "float32"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000, peak
    np.testing.assert_allclose(out[0], reference.sinusoid(96, 64), rtol=1e-6, atol=1e-6)


def test_host_row_cache_is_bounded():
    for d_model in range(1, 40):
        PositionalEmbedding(max_len=8, d_model=d_model)(np.zeros((1, 8, 1), "float32"))
    assert _sinusoid._host_rows.cache_info().currsize <= 16


@pytest.mark.parametrize("max_len,d_model", [(50, 6), (50, 7), (1, 4), (10**7, 8)])
def test_dynamic_length_inside_tf_function(max_len, d_model):
    layer = PositionalEmbedding(max_len=max_len, d_model=d_model)
    forward = tf.function(layer, input_signature=[tf.TensorSpec((None, None, 2))])
    for length in sorted(
        {1, 17, 50, min(max_len, 3000)} - {n for n in (17, 50, 3000) if n > max_len}
    ):
        expected = reference.sinusoid(length, d_model)
        np.testing.assert_allclose(
            forward(tf.zeros((2, length, 2)))[0], expected, rtol=0, atol=1e-6
        )


def test_static_length_over_max_len_raises_naming_both():
    with pytest.raises(
        ValueError, match=r"L exceeds max_len=10.*received shape \(\w+, 11(, \d+)*\)"
    ):
        PositionalEmbedding(max_len=10, d_model=4)(np.zeros((1, 11, 1)))
    with pytest.raises(
        ValueError, match=r"L exceeds max_len=10.*received shape \(\w+, 11(, \d+)*\)"
    ):
        inputs = keras.Input((11, 2))
        PositionalEmbedding(max_len=10, d_model=4)(inputs)


def test_dynamic_length_over_max_len_raises_at_run_time():
    layer = PositionalEmbedding(max_len=10, d_model=4)
    forward = tf.function(layer, input_signature=[tf.TensorSpec((None, None, 2))])
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"exceeds max_len=10(.|\n)*received axis 1 of size(.|\n)*11",
    ):
        forward(tf.zeros((1, 11, 2)))


def test_xla_compiled_call_matches_reference():
    layer = PositionalEmbedding(max_len=64, d_model=10)
    forward = tf.function(layer, jit_compile=True)
    np.testing.assert_allclose(
        forward(tf.zeros((2, 33, 1)))[0], reference.sinusoid(33, 10), atol=1e-6
    )


def test_mixed_bfloat16_is_the_bf16_rounding_of_float32():
    x = np.zeros((1, 700, 1), "float32")
    out = PositionalEmbedding(max_len=1000, d_model=64, dtype="mixed_bfloat16")(x)
    assert out.dtype == tf.bfloat16
    expected = tf.cast(tf.constant(reference.sinusoid(700, 64), tf.float32), tf.bfloat16)
    np.testing.assert_array_equal(tf.cast(out[0], tf.float32), tf.cast(expected, tf.float32))


def test_float64_policy_is_exact():
    out = PositionalEmbedding(max_len=3000, d_model=9, dtype="float64")(np.zeros((1, 3000, 1)))
    assert out.dtype == tf.float64
    np.testing.assert_allclose(out[0], reference.sinusoid(3000, 9), rtol=0, atol=1e-12)


def test_layer_contract(tmp_path):
    layer_harness.run_layer_test(
        lambda **kwargs: PositionalEmbedding(max_len=50, d_model=9, **kwargs),
        (np.zeros((2, 20, 3), "float32"),),
        tmp_path,
        expected=lambda layer, inputs: reference.sinusoid(20, 9)[None],
    )


@pytest.mark.parametrize(
    "kwargs,message", [(dict(max_len=0), "max_len=0"), (dict(d_model=2.0), "d_model=2.0")]
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PositionalEmbedding(**kwargs)


def test_rank_one_input_is_rejected():
    with pytest.raises(ValueError, match="rank >= 2"):
        PositionalEmbedding(10, 4)(np.zeros((5,), "float32"))


@pytest.mark.slow
def test_exported_saved_model_holds_only_the_rows_it_uses(tmp_path):
    inputs = keras.Input((96, 7))
    model = keras.Model(inputs, PositionalEmbedding(5000, 512)(inputs))
    model.export(str(tmp_path))
    size = sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, files in os.walk(tmp_path)
        for f in files
    )
    # The 96 rows are 196,608 bytes; the whole table would be 10,240,000.
    assert size < 1_000_000, size


@pytest.mark.slow
def test_exported_saved_model_with_free_length_holds_no_max_len_table(tmp_path):
    inputs = keras.Input((None, 7))
    model = keras.Model(inputs, PositionalEmbedding(10**6, 64)(inputs))
    model.export(str(tmp_path))
    size = sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, files in os.walk(tmp_path)
        for f in files
    )
    # Two tables of 1000 rows (1,024,000 bytes); max_len rows would be 256,000,000.
    assert size < 2_000_000, size
    reloaded = tf.saved_model.load(str(tmp_path))
    out = reloaded.serve(tf.zeros((1, 2500, 7)))
    np.testing.assert_allclose(out[0], reference.sinusoid(2500, 64), rtol=0, atol=1e-6)


def test_builds_its_rows_once_when_called_eagerly():
    layer = PositionalEmbedding(max_len=37, d_model=6)
    layer(np.zeros((1, 5, 2), "float32"))
    misses = _sinusoid._host_rows.cache_info().misses
    for batch in (1, 4, 1):
        layer(np.zeros((batch, 5, 2), "float32"))
    assert _sinusoid._host_rows.cache_info().misses == misses
