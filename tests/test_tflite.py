"""TFLite: a model of the core layers converts with the stock converter and runs in the interpreter.

The layers keep their default `jit_compile=True`: the exported graph then holds a function
marked must-compile for XLA, and the converter inlines it into builtin TFLite ops, so no flag
is needed for conversion. The interpreter ships with TensorFlow as `tf.lite.Interpreter`.
"""

import warnings

import numpy as np
import pytest
import reference
import tensorflow as tf

from tf_tsembed import DataEmbedding, PositionalEmbedding, TokenEmbedding

keras = tf.keras
C_IN, D_MODEL, MAX_LEN = 3, 5, 16
WIDE_C_IN = 30  # kernel_size * c_in = 150 > 128: TokenEmbedding convolves instead of one matmul
MARK_TABLE_SIZES = (13, 32, 7, 24)  # month, day, weekday, hour: the columns of freq 'h'


@pytest.fixture(scope="module")
def converted():
    """`(model, token layers, flatbuffer)` for one model with every core layer, converted once."""
    x = keras.Input((None, C_IN), name="x")
    x_mark = keras.Input((None, len(MARK_TABLE_SIZES)), dtype="int32", name="x_mark")
    x_feat = keras.Input((None, 4), name="x_feat")
    x_wide = keras.Input((None, WIDE_C_IN), name="x_wide")
    token = TokenEmbedding(C_IN, D_MODEL)
    wide_token = TokenEmbedding(WIDE_C_IN, D_MODEL, kernel_size=5)
    outputs = [
        token(x) + PositionalEmbedding(MAX_LEN, D_MODEL)(x),
        wide_token(x_wide),
        DataEmbedding(C_IN, D_MODEL, freq="h", max_len=MAX_LEN)(x, x_mark),
        DataEmbedding(C_IN, D_MODEL, embed_type="timeF", freq="h", max_len=MAX_LEN)(x, x_feat),
    ]
    # One output under one signature key, whatever name each Keras version gives it.
    model = keras.Model([x, x_mark, x_feat, x_wide], keras.layers.Concatenate()(outputs))
    return model, (token, wide_token), tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _run(flatbuffer, x, x_mark, x_feat, x_wide):
    # A fresh interpreter per call: one that failed to invoke is not reused.
    with warnings.catch_warnings():
        # tf.lite.Interpreter announces its move to ai_edge_litert; TF 2.21 still has it.
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    (output,) = interpreter.get_signature_runner()(
        x=x, x_mark=x_mark, x_feat=x_feat, x_wide=x_wide
    ).values()
    return output


def _inputs(length, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, length, C_IN)).astype("float32")
    x_mark = np.stack([rng.integers(0, size, (2, length)) for size in MARK_TABLE_SIZES], -1)
    x_feat = rng.uniform(-0.5, 0.5, (2, length, 4)).astype("float32")
    x_wide = rng.normal(size=(2, length, WIDE_C_IN)).astype("float32")
    return x, x_mark.astype("int32"), x_feat, x_wide


@pytest.mark.slow
@pytest.mark.parametrize("length", [MAX_LEN, 7, 2, 1])
def test_interpreter_matches_keras_and_reference(converted, length):
    model, (token, wide_token), flatbuffer = converted
    x, x_mark, x_feat, x_wide = inputs = _inputs(length, seed=length)
    got = _run(flatbuffer, *inputs)
    np.testing.assert_allclose(got, model(inputs), rtol=1e-5, atol=1e-5)
    expected = reference.circular_conv1d(x, *token.get_weights()) + reference.sinusoid(
        length, D_MODEL
    )
    np.testing.assert_allclose(got[..., :D_MODEL], expected, rtol=1e-5, atol=1e-5)
    expected = reference.circular_conv1d(x_wide, *wide_token.get_weights())
    np.testing.assert_allclose(got[..., D_MODEL : 2 * D_MODEL], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_interpreter_fails_on_out_of_range_marks_and_lengths(converted):
    """The converter drops the run-time asserts; the interpreter still refuses both inputs."""
    _, _, flatbuffer = converted
    x, x_mark, x_feat, x_wide = _inputs(4, seed=0)
    x_mark[0, 1, 0] = 13  # month 13: one past the month table
    with pytest.raises(RuntimeError, match="gather index out of bounds"):
        _run(flatbuffer, x, x_mark, x_feat, x_wide)
    with pytest.raises(RuntimeError, match="Invalid begin and size"):
        _run(flatbuffer, *_inputs(MAX_LEN + 1, seed=1))
