"""DataEmbedding, DataEmbeddingWithoutPosition and DataEmbeddingInverted against float64 NumPy."""

import re

import layer_harness
import numpy as np
import pytest
import reference
import roundtrip
import tensorflow as tf

from tf_tsembed import (
    DataEmbedding,
    DataEmbeddingInverted,
    DataEmbeddingWithoutPosition,
    TokenEmbedding,
)

keras = tf.keras
C_IN, D_MODEL, LENGTH = 3, 7, 10
# From docs/formulas.md: table sizes of the mark columns (coarse to fine), the values they take.
TABLE_SIZES = (13, 32, 7, 24, 4)
MARK_VALUES = ((1, 13), (1, 32), (0, 7), (0, 24), (0, 4))
MARKS = {"t": 5, "h": 4, "d": 3, "m": 1}
FEATURES = {"t": 5, "h": 4, "d": 3, "w": 2}


def _x(batch=2, length=LENGTH, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, C_IN)).astype("float32")


def _x_mark(embed_type, freq, batch=2, length=LENGTH, seed=1):
    rng = np.random.default_rng(seed)
    if embed_type == "timeF":
        return rng.uniform(-0.5, 0.5, size=(batch, length, FEATURES[freq])).astype("float32")
    columns = [
        rng.integers(low, high, size=(batch, length)) for low, high in MARK_VALUES[: MARKS[freq]]
    ]
    return np.stack(columns, axis=-1).astype("int32")


def _temporal_reference(layer, x_mark):
    """The temporal term (docs/formulas.md): sinusoid or learned table lookups, or a linear map."""
    temporal = layer.temporal_embedding
    if layer.embed_type == "timeF":
        weights = [np.asarray(w, np.float64) for w in temporal.get_weights()]
        out = np.asarray(x_mark, np.float64) @ weights[0]
        return out + weights[1] if len(weights) == 2 else out
    if layer.embed_type == "fixed":
        tables = [
            reference.sinusoid(size, layer.d_model) for size in TABLE_SIZES[: x_mark.shape[-1]]
        ]
    else:
        tables = [np.asarray(w, np.float64) for w in temporal.get_weights()]
    return sum(table[x_mark[..., column]] for column, table in enumerate(tables))


def _reference(layer, x, x_mark=None):
    """Value convolution + temporal term (+ sinusoid for DataEmbedding), before dropout."""
    out = reference.circular_conv1d(x, *layer.value_embedding.get_weights())
    if isinstance(layer, DataEmbedding):
        out = out + reference.sinusoid(x.shape[1], layer.d_model)
    if x_mark is not None:
        out = out + _temporal_reference(layer, x_mark)
    return out


def _inverted_reference(layer, x, x_mark=None):
    tokens = np.swapaxes(np.asarray(x, np.float64), 1, 2)
    if x_mark is not None:
        tokens = np.concatenate([tokens, np.swapaxes(np.asarray(x_mark, np.float64), 1, 2)], axis=1)
    kernel, bias = layer.value_embedding.get_weights()
    return tokens @ kernel + bias


def _assert_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


# --- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("convention", ["tslib", "informer"])
@pytest.mark.parametrize("embed_type", ["fixed", "learned", "timeF"])
def test_data_embedding_matches_reference(embed_type, convention, jit_compile):
    layer = DataEmbedding(
        C_IN, D_MODEL, embed_type=embed_type, convention=convention, jit_compile=jit_compile
    )
    x, x_mark = _x(), _x_mark(embed_type, "h")
    _assert_close(layer(x, x_mark), _reference(layer, x, x_mark))
    _assert_close(layer(x), _reference(layer, x))


@pytest.mark.parametrize(
    "embed_type,freq,batch,length",
    [("fixed", "d", 1, 7), ("learned", "m", 3, 4), ("fixed", "t", 2, 1), ("timeF", "w", 2, 5)],
)
def test_data_embedding_every_mark_width_and_short_sequences(embed_type, freq, batch, length):
    layer = DataEmbedding(C_IN, D_MODEL, embed_type=embed_type, freq=freq)
    x, x_mark = _x(batch, length), _x_mark(embed_type, freq, batch, length)
    _assert_close(layer(x, x_mark), _reference(layer, x, x_mark))


@pytest.mark.parametrize("embed_type", ["learned", "timeF"])
def test_data_embedding_without_position_matches_reference(embed_type):
    layer = DataEmbeddingWithoutPosition(
        C_IN, 6, embed_type=embed_type, freq="t", convention="informer"
    )
    x, x_mark = _x(3, 5), _x_mark(embed_type, "t", 3, 5)
    _assert_close(layer(x, x_mark), _reference(layer, x, x_mark))
    _assert_close(layer(x), _reference(layer, x))
    assert layer.position_embedding is None


def test_functional_model_with_dynamic_length_matches_reference():
    x_in = keras.Input((None, C_IN))
    mark_in = keras.Input((None, 4), dtype="int32")
    layer = DataEmbedding(C_IN, D_MODEL, embed_type="learned", max_len=64)
    model = keras.Model([x_in, mark_in], layer(x_in, mark_in))
    for length in (LENGTH, 3):
        x, x_mark = _x(length=length), _x_mark("learned", "h", length=length)
        _assert_close(model([x, x_mark]), _reference(layer, x, x_mark))


def test_inverted_embedding_matches_reference():
    layer = DataEmbeddingInverted(LENGTH, D_MODEL)
    x, x_mark = _x(), _x_mark("timeF", "h")
    out = layer(x, x_mark)
    assert out.shape == (2, C_IN + 4, D_MODEL)
    _assert_close(out, _inverted_reference(layer, x, x_mark))
    _assert_close(layer(x), _inverted_reference(layer, x))
    int_marks = _x_mark("fixed", "h")
    _assert_close(layer(x, int_marks), _inverted_reference(layer, x, int_marks))


def test_inverted_embedding_init_is_pytorch_linear_uniform():
    layer = DataEmbeddingInverted(16, 256)
    layer.build((None, 16, 5))
    bound = 1 / np.sqrt(16)
    for weight in layer.value_embedding.get_weights():
        assert np.abs(weight).max() <= bound
        assert np.abs(weight).max() > 0.9 * bound


def test_gradients_reach_every_weight_through_the_compiled_sum():
    layer = DataEmbedding(C_IN, D_MODEL, embed_type="learned", convention="informer")
    x, x_mark = _x(), _x_mark("learned", "h")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, x_mark, training=True) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert len(grads) == 6
    for grad in grads:
        assert np.abs(tf.convert_to_tensor(grad).numpy()).sum() > 0


# --- dropout ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_layer,inputs",
    [
        (
            lambda: DataEmbedding(C_IN, 16, embed_type="timeF", dropout=0.5),
            (_x(4), _x_mark("timeF", "h", 4)),
        ),
        (
            lambda: DataEmbeddingWithoutPosition(C_IN, 16, dropout=0.5),
            (_x(4), _x_mark("fixed", "h", 4)),
        ),
        (lambda: DataEmbeddingInverted(LENGTH, 16, dropout=0.5), (_x(4), _x_mark("timeF", "h", 4))),
    ],
)
def test_exactly_one_dropout_after_the_sum(make_layer, inputs):
    layer = make_layer()
    summed = layer(*inputs).numpy()
    np.testing.assert_array_equal(layer(*inputs, training=False), summed)
    dropped = layer(*inputs, training=True).numpy()
    kept = dropped != 0
    # One dropout on the sum keeps each element scaled by 1 / (1 - rate) or zeroes it; a dropout
    # per term, or two in a row, would leave other values.
    np.testing.assert_allclose(dropped[kept], summed[kept] / 0.5, rtol=1e-5, atol=1e-6)
    assert 0.35 < 1 - kept.mean() < 0.65


# --- bias convention, sublayers ---------------------------------------------------------------


@pytest.mark.parametrize("convention,use_bias", [("tslib", False), ("informer", True)])
def test_convention_switches_both_biases_and_names_the_sublayers(convention, use_bias):
    layer = DataEmbedding(C_IN, D_MODEL, embed_type="timeF", convention=convention)
    layer(_x(), _x_mark("timeF", "h"))
    assert layer.value_embedding.use_bias is use_bias
    assert layer.temporal_embedding.use_bias is use_bias
    expected = ["value_embedding/kernel", "temporal_embedding/kernel"]
    if use_bias:
        expected = [
            "value_embedding/kernel",
            "value_embedding/bias",
            "temporal_embedding/kernel",
            "temporal_embedding/bias",
        ]
    assert [
        getattr(w, "path", w.name.split(":")[0]).split("/", 1)[1] for w in layer.weights
    ] == expected
    assert layer.position_embedding.name == "position_embedding"


# --- bad inputs -------------------------------------------------------------------------------


def test_bad_constructor_arguments_raise_naming_the_parameter():
    for kwargs, name in [
        (dict(embed_type="timef"), "embed_type"),
        (dict(convention="autoformer"), "convention"),
        (dict(freq="fortnight"), "freq"),
        (dict(dropout=1.0), "dropout"),
        (dict(max_len=0), "max_len"),
        (dict(embed_type="timeF", freq="y"), "freq"),
    ]:
        with pytest.raises(ValueError, match=name):
            DataEmbedding(C_IN, D_MODEL, **kwargs)


def test_bad_shapes_raise_value_errors():
    layer = DataEmbedding(C_IN, D_MODEL, freq="h", max_len=16)
    x = _x()
    with pytest.raises(
        ValueError, match=r"freq='h' expects 4 mark columns .*; received shape \(\d+, \d+, 3\)"
    ):
        layer(x, _x_mark("fixed", "d"))
    with pytest.raises(ValueError, match="length of `x`"):
        layer(x, _x_mark("fixed", "h", length=LENGTH - 1))
    with pytest.raises(ValueError, match="batch size of `x`"):
        layer(x, _x_mark("fixed", "h", batch=1))
    with pytest.raises(ValueError, match=r"L exceeds max_len=16.*received shape \(\d+, 20, \d+\)"):
        layer(_x(length=20))
    with pytest.raises(ValueError, match="c_in=3"):
        layer(np.zeros((2, LENGTH, 4), "float32"))
    with pytest.raises(ValueError, match="expects 4 mark columns"):
        DataEmbedding(C_IN, D_MODEL)(
            keras.Input((LENGTH, C_IN)), keras.Input((LENGTH, 5), dtype="int32")
        )
    with pytest.raises(ValueError, match="c_in=10"):
        DataEmbeddingInverted(LENGTH, D_MODEL)(_x(length=LENGTH + 1))


def test_bad_marks_raise_at_run_time_also_inside_tf_function():
    layer = DataEmbedding(C_IN, D_MODEL, freq="h")
    x, x_mark = _x(), _x_mark("fixed", "h")
    x_mark[1, 3, 3] = 24
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"hour marks \(column 3\) must lie in \[0, 23\]"
    ):
        layer(x, x_mark)
    signature = [tf.TensorSpec((None, None, C_IN)), tf.TensorSpec((None, None, 4), tf.int32)]
    forward = tf.function(layer, input_signature=signature)
    with pytest.raises(tf.errors.InvalidArgumentError, match="hour marks"):
        forward(x, x_mark)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must have the length of `x`"):
        forward(x, _x_mark("fixed", "h", length=LENGTH - 1))


# --- mixed precision, distribution ------------------------------------------------------------


@pytest.mark.parametrize("embed_type,freq", [("fixed", "t"), ("learned", "h"), ("timeF", "h")])
@pytest.mark.parametrize("jit_compile", [True, False])
def test_mixed_bfloat16_on_cpu_is_the_float32_sum_rounded_once(
    embed_type, freq, jit_compile, mixed_policy
):
    """The documented CPU contract: weights rounded to bfloat16, the whole sum in float32 from
    the unrounded inputs, one rounding at the end (rounding each term or the convolution first
    would differ in the last bit of many elements)."""
    inputs = (_x(), _x_mark(embed_type, freq))

    def make_layer():
        return DataEmbedding(
            C_IN, 16, embed_type=embed_type, freq=freq, dropout=0.0, jit_compile=jit_compile
        )

    layer = make_layer()
    layer(*inputs)
    weights = layer.get_weights()
    layer.set_weights([tf.cast(tf.cast(w, tf.bfloat16), tf.float32) for w in weights])
    expected = tf.cast(layer(*inputs), tf.bfloat16).numpy()
    mixed_policy("mixed_bfloat16")
    mixed = make_layer()
    mixed(*inputs)
    mixed.set_weights(weights)
    for call in (mixed, tf.function(mixed), tf.function(mixed, jit_compile=True)):
        np.testing.assert_array_equal(call(*inputs).numpy(), expected)


@pytest.mark.parametrize(
    "make_layer,inputs,expected",
    [
        (
            lambda **kwargs: DataEmbedding(C_IN, 16, embed_type="fixed", freq="t", **kwargs),
            (_x(), _x_mark("fixed", "t")),
            lambda layer, inputs: _reference(layer, *inputs),
        ),
        (
            lambda **kwargs: DataEmbeddingWithoutPosition(
                C_IN, 16, embed_type="timeF", convention="informer", jit_compile=False, **kwargs
            ),
            (_x(), _x_mark("timeF", "h")),
            lambda layer, inputs: _reference(layer, *inputs),
        ),
        (
            lambda **kwargs: DataEmbeddingInverted(LENGTH, 16, **kwargs),
            (_x(), _x_mark("timeF", "h")),
            lambda layer, inputs: _inverted_reference(layer, *inputs),
        ),
    ],
    ids=["data-fixed", "without-position-timeF", "inverted"],
)
def test_layer_contract(make_layer, inputs, expected, tmp_path):
    layer_harness.run_layer_test(make_layer, inputs, tmp_path, expected=expected)


def test_compiled_sum_runs_under_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = DataEmbedding(C_IN, D_MODEL, embed_type="learned", convention="informer")
        layer.build((None, LENGTH, C_IN), (None, LENGTH, 4))
    x, x_mark = _x(), _x_mark("learned", "h")

    @tf.function
    def forward():
        return strategy.run(lambda: layer(x, x_mark))

    for replica_output in strategy.experimental_local_results(forward()):
        _assert_close(replica_output, _reference(layer, x, x_mark))


# --- serialization ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        DataEmbedding(
            C_IN,
            D_MODEL,
            embed_type="learned",
            freq="15min",
            dropout=0.2,
            convention="informer",
            max_len=96,
            jit_compile=False,
        ),
        DataEmbeddingWithoutPosition(C_IN, D_MODEL, embed_type="timeF", freq="W-SUN"),
        DataEmbeddingInverted(96, D_MODEL, dropout=0.0),
    ],
    ids=["data", "without-position", "inverted"],
)
def test_config_roundtrip(layer):
    rebuilt = roundtrip.assert_config_roundtrip(layer)
    assert type(rebuilt) is type(layer)


def _functional_model(length=LENGTH):
    x_in = keras.Input((length, C_IN))
    mark_in = keras.Input((length, 4), dtype="int32")
    features_in = keras.Input((length, 4))
    outputs = [
        DataEmbedding(C_IN, D_MODEL, embed_type="learned", max_len=64)(x_in, mark_in),
        DataEmbeddingWithoutPosition(C_IN, D_MODEL, embed_type="timeF", convention="informer")(
            x_in, features_in
        ),
    ]
    if length is not None:
        outputs.append(DataEmbeddingInverted(length, D_MODEL)(x_in, features_in))
    return keras.Model([x_in, mark_in, features_in], outputs)


def test_keras_file_roundtrip(tmp_path):
    inputs = [_x(), _x_mark("learned", "h"), _x_mark("timeF", "h")]
    roundtrip.assert_keras_file_roundtrip(_functional_model(), inputs, tmp_path)


@pytest.mark.slow
def test_export_reloads_in_fresh_process_with_dynamic_length(tmp_path):
    inputs = [_x(length=7), _x_mark("learned", "h", length=7), _x_mark("timeF", "h", length=7)]
    model = _functional_model(length=None)
    roundtrip.assert_export_roundtrip_in_fresh_process(model, inputs, tmp_path)


_HLO_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%\S+ = \w+\[([\d,]*)\]\S* (\S+?)\(", re.MULTILINE)


def _full_size_ops(hlo, size):
    """Opcodes of the ENTRY instructions whose output has `size` elements (bitcasts aside): the
    buffers a compiled call writes at full size."""
    entry = hlo[hlo.index("\nENTRY") :]
    found = []
    for dims, opcode in _HLO_INSTRUCTION.findall(entry):
        if (
            opcode not in ("bitcast", "parameter")
            and int(np.prod([int(d) for d in dims.split(",") if d])) == size
        ):
            found.append(opcode)
    return found


@pytest.mark.parametrize("convention", ["tslib", "informer"])
def test_compiled_data_embedding_writes_the_output_once_after_the_matmul(convention):
    """The speed claims' structure under XLA: TokenEmbedding's matmul writes its output directly
    (the bias folded in), and DataEmbedding adds the calendar and position terms in ONE fused
    pass, with no full-size intermediate per term."""
    batch, length, d_model = 4, 24, 64
    x = tf.zeros((batch, length, 3))
    marks = tf.ones((batch, length, 4))
    data = DataEmbedding(
        3, d_model, embed_type="fixed", freq="h", dropout=0.0, convention=convention
    )
    token = TokenEmbedding(3, d_model, use_bias=convention == "informer")
    size = batch * length * d_model
    data_hlo = tf.function(lambda x, m: data(x, m), jit_compile=True).experimental_get_compiler_ir(
        x, marks
    )(stage="optimized_hlo")
    token_hlo = tf.function(token, jit_compile=True).experimental_get_compiler_ir(x)(
        stage="optimized_hlo"
    )
    assert _full_size_ops(token_hlo, size) == ["dot"]
    assert _full_size_ops(data_hlo, size) == ["dot", "fusion"]
