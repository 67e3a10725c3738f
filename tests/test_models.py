"""TokenEmbedding and PositionalEmbedding inside every kind of Keras model, saved and reloaded."""

import numpy as np
import pytest
import reference
import roundtrip
import tensorflow as tf

from tf_tsembed import PositionalEmbedding, TokenEmbedding

keras = tf.keras
C_IN, D_MODEL, LENGTH = 3, 6, 10


def _inputs(batch=2, length=LENGTH, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, C_IN)).astype("float32")


def _expected(token, x):
    """Token embedding plus position, from the NumPy references and the layer's weights."""
    return reference.circular_conv1d(x, *token.get_weights()) + reference.sinusoid(
        x.shape[1], D_MODEL
    )


def _functional(length=LENGTH):
    inputs = keras.Input((length, C_IN))
    token = TokenEmbedding(C_IN, D_MODEL, name="token")
    outputs = token(inputs) + PositionalEmbedding(max_len=64, d_model=D_MODEL)(inputs)
    return keras.Model(inputs, outputs), token


class SubclassedEmbedder(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.token = TokenEmbedding(C_IN, D_MODEL)
        self.position = PositionalEmbedding(max_len=64, d_model=D_MODEL)

    def call(self, inputs):
        return self.token(inputs) + self.position(inputs)


@pytest.mark.parametrize("length", [LENGTH, None])
def test_functional_model_matches_reference(length):
    model, token = _functional(length)
    x = _inputs()
    np.testing.assert_allclose(model(x), _expected(token, x), rtol=1e-5, atol=1e-6)
    if length is None:
        x = _inputs(length=3, seed=1)
        np.testing.assert_allclose(model(x), _expected(token, x), rtol=1e-5, atol=1e-6)


def test_subclassed_model_matches_reference():
    model = SubclassedEmbedder()
    x = _inputs()
    np.testing.assert_allclose(model(x), _expected(model.token, x), rtol=1e-5, atol=1e-6)


def test_sequential_model_matches_reference():
    token = TokenEmbedding(C_IN, D_MODEL)
    model = keras.Sequential([keras.Input((LENGTH, C_IN)), token])
    x = _inputs()
    np.testing.assert_allclose(
        model(x), reference.circular_conv1d(x, *token.get_weights()), rtol=1e-5, atol=1e-6
    )


def test_symbolic_and_eager_builds_give_identical_results():
    eager_token = TokenEmbedding(C_IN, D_MODEL)
    x = _inputs()
    eager_out = eager_token(x) + PositionalEmbedding(64, D_MODEL)(x)
    model, symbolic_token = _functional()
    symbolic_token.set_weights(eager_token.get_weights())
    np.testing.assert_array_equal(model(x), eager_out)


def test_tf_function_retraces_for_new_lengths_and_stays_exact():
    model = SubclassedEmbedder()
    model(_inputs())  # builds the weights: a tf.function that creates variables traces twice
    traces = []

    @tf.function
    def forward(x):
        traces.append(x.shape)
        return model(x)

    for length in (4, 4, 9, 9):
        x = _inputs(length=length)
        np.testing.assert_allclose(forward(x), _expected(model.token, x), rtol=1e-5, atol=1e-6)
    assert len(traces) == 2


def test_fit_trains_the_kernel():
    model, token = _functional()
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = _inputs(batch=8)
    y = np.random.default_rng(1).normal(size=(8, LENGTH, D_MODEL)).astype("float32")
    before = token.get_weights()[0].copy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)
    kernel_grad = tape.gradient(loss, token.trainable_weights[0])
    assert np.abs(kernel_grad.numpy()).min() > 0
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.allclose(token.get_weights()[0], before)


def test_keras_file_roundtrip(tmp_path):
    model, _ = _functional()
    roundtrip.assert_keras_file_roundtrip(model, _inputs(), tmp_path)


@pytest.mark.slow
def test_export_reloads_in_fresh_process_with_dynamic_length(tmp_path):
    model, _ = _functional(length=None)
    roundtrip.assert_export_roundtrip_in_fresh_process(model, _inputs(length=7), tmp_path)
