"""FixedEmbedding, TemporalEmbedding and TimeFeatureEmbedding against float64 NumPy references."""

import layer_harness
import numpy as np
import pytest
import reference
import roundtrip
import tensorflow as tf

from tf_tsembed import DataEmbedding, FixedEmbedding, TemporalEmbedding, TimeFeatureEmbedding

keras = tf.keras

# From docs/formulas.md: mark columns coarse to fine, their table sizes, the values they take.
TABLE_SIZES = (13, 32, 7, 24, 4)
MARK_VALUES = ((1, 13), (1, 32), (0, 7), (0, 24), (0, 4))  # [low, high)
FIELDS = ("month", "day", "weekday", "hour", "minute")
MARKS_PER_FREQ = [
    ("s", 4),
    ("t", 5),
    ("15min", 5),
    ("h", 4),
    ("3H", 4),
    ("d", 3),
    ("b", 3),
    ("W-SUN", 3),
    ("m", 1),
    ("q", 1),
    ("y", 1),
]
FEATURES_PER_FREQ = [("s", 6), ("t", 5), ("h", 4), ("d", 3), ("b", 3), ("w", 2), ("m", 1), ("q", 1)]
D_MODEL = 7


def _marks(shape, width, seed=0):
    rng = np.random.default_rng(seed)
    columns = [rng.integers(low, high, size=shape) for low, high in MARK_VALUES[:width]]
    return np.stack(columns, axis=-1).astype("int32")


def _features(shape, width, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, size=shape + (width,)).astype("float32")


def _fixed_reference(marks, d_model=D_MODEL):
    """Sum over the mark columns of rows of each field's sinusoid table."""
    total = np.zeros(marks.shape[:-1] + (d_model,))
    for column in range(marks.shape[-1]):
        total += reference.sinusoid(TABLE_SIZES[column], d_model)[marks[..., column]]
    return total


def _learned_reference(marks, tables):
    total = np.zeros(marks.shape[:-1] + (tables[0].shape[1],))
    for column, table in enumerate(tables):
        total += np.asarray(table, np.float64)[marks[..., column]]
    return total


def _linear_reference(features, kernel, bias=None):
    out = np.asarray(features, np.float64) @ np.asarray(kernel, np.float64)
    return out if bias is None else out + np.asarray(bias, np.float64)


# --- FixedEmbedding ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_fixed_embedding_rows_are_sinusoid_rows_and_no_weights(shape):
    ids = np.random.default_rng(1).integers(0, 24, size=shape)
    layer = FixedEmbedding(24, D_MODEL)
    np.testing.assert_allclose(
        layer(ids), reference.sinusoid(24, D_MODEL)[ids], rtol=1e-6, atol=1e-6
    )
    assert layer.weights == []


def test_fixed_embedding_built_symbolically_in_functional_model():
    inputs = keras.Input((3,), dtype="int32")
    model = keras.Model(inputs, FixedEmbedding(32, D_MODEL)(inputs))
    ids = np.array([[0, 31, 17], [5, 5, 1]])
    np.testing.assert_allclose(
        model(ids), reference.sinusoid(32, D_MODEL)[ids], rtol=1e-6, atol=1e-6
    )
    assert model.weights == []


def test_fixed_embedding_float_ids_stay_exact_under_mixed_bfloat16(mixed_policy):
    mixed_policy("mixed_bfloat16")
    layer = FixedEmbedding(300, 8)
    ids = np.array([0.0, 257.0, 299.0], "float32")  # 257 rounds to 256 in bfloat16
    out = layer(ids)
    assert out.dtype == tf.bfloat16
    np.testing.assert_allclose(
        out.numpy().astype("float64"),
        reference.sinusoid(300, 8)[[0, 257, 299]],
        rtol=1e-2,
        atol=1e-2,
    )


@pytest.mark.parametrize("ids", [[0, 24], [-1, 3]])
def test_fixed_embedding_out_of_range_ids_raise(ids):
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"ids must lie in \[0, 23\]"):
        FixedEmbedding(24, D_MODEL)(np.array(ids))


def test_fixed_embedding_rejects_bad_arguments_and_dtypes():
    with pytest.raises(ValueError, match="c_in"):
        FixedEmbedding(0, D_MODEL)
    layer = FixedEmbedding(24, D_MODEL)
    with pytest.raises(tf.errors.InvalidArgumentError, match="whole numbers"):
        layer(np.array([1.5], "float32"))
    with pytest.raises(TypeError, match="bool"):
        layer(np.array([True]))
    with pytest.raises(TypeError, match="string"):
        layer(tf.constant(["3"]))


# --- TemporalEmbedding ------------------------------------------------------------------------


@pytest.mark.parametrize("freq,width", MARKS_PER_FREQ)
def test_fixed_temporal_embedding_matches_reference_for_every_freq(freq, width):
    shape = (2, 5) if width % 2 else (3, 4)
    marks = _marks(shape, width)
    layer = TemporalEmbedding(D_MODEL, embed_type="fixed", freq=freq)
    np.testing.assert_allclose(layer(marks), _fixed_reference(marks), rtol=1e-5, atol=1e-6)
    assert layer.weights == []


@pytest.mark.parametrize("freq,width", [("t", 5), ("h", 4), ("d", 3), ("m", 1)])
def test_learned_temporal_embedding_matches_reference_and_names_its_tables(freq, width):
    marks = _marks((2, 6), width, seed=2)
    layer = TemporalEmbedding(D_MODEL, embed_type="learned", freq=freq)
    out = layer(marks)
    tables = layer.get_weights()
    np.testing.assert_allclose(out, _learned_reference(marks, tables), rtol=1e-5, atol=1e-6)
    assert [table.shape for table in tables] == [(size, D_MODEL) for size in TABLE_SIZES[:width]]
    for field in FIELDS[:width]:
        embeddings = getattr(layer, f"{field}_embed").embeddings
        assert embeddings.trainable and f"{field}_embed" in getattr(
            embeddings, "path", embeddings.name
        )
    assert not any(hasattr(layer, f"{field}_embed") for field in FIELDS[width:])


def test_learned_tables_are_initialised_standard_normal():
    layer = TemporalEmbedding(64, embed_type="learned", freq="t")
    layer.build((None, None, 5))
    values = np.concatenate([w.reshape(-1) for w in layer.get_weights()])
    assert abs(values.mean()) < 0.1
    assert 0.9 < values.std() < 1.1
    assert np.abs(values).max() > 2.5  # untruncated: a normal of 6000 draws goes past 2.5 sigma


def test_spec_marks_of_the_test_timestamps_embed_like_the_reference():
    marks = np.array(
        [[[7, 1, 4, 0, 0], [7, 1, 4, 1, 1], [12, 31, 3, 23, 3], [1, 3, 6, 12, 3], [2, 29, 3, 6, 2]]]
    )
    np.testing.assert_allclose(
        TemporalEmbedding(D_MODEL, freq="t")(marks), _fixed_reference(marks), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_integral_float_and_int64_marks_give_the_int32_result(dtype):
    marks = _marks((2, 5), 4, seed=3)
    layer = TemporalEmbedding(D_MODEL, freq="h")
    np.testing.assert_array_equal(layer(marks.astype(dtype)), layer(marks))


@pytest.mark.parametrize("column", range(5))
def test_out_of_range_marks_raise_naming_the_field(column):
    marks = _marks((1, 3), 5)
    marks[0, 1, column] = TABLE_SIZES[column]
    layer = TemporalEmbedding(D_MODEL, freq="t")
    message = (
        rf"{FIELDS[column]} marks \(column {column}\) must lie in \[0, {TABLE_SIZES[column] - 1}\]"
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        layer(marks)
    marks[0, 1, column] = -1
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        layer(marks)


def test_out_of_range_and_fractional_marks_raise_inside_tf_function():
    layer = TemporalEmbedding(D_MODEL, embed_type="learned", freq="d")
    forward = tf.function(layer)
    marks = _marks((1, 3), 3)
    forward(marks)
    marks[0, 0, 2] = 7
    with pytest.raises(tf.errors.InvalidArgumentError, match="weekday marks"):
        forward(marks)
    with pytest.raises(tf.errors.InvalidArgumentError, match="whole numbers"):
        forward(_marks((1, 3), 3).astype("float32") + 0.5)


FLOAT_DTYPES = ["float16", "bfloat16", "float32", "float64"]
BAD_FLOAT_MARKS = [  # (value, column, message): every floating dtype holds each value exactly
    (2.5, 0, "floating ids must hold whole numbers"),
    (-0.5, 3, "floating ids must hold whole numbers"),
    (np.nan, 1, "floating ids must hold whole numbers"),
    (np.inf, 1, r"day marks \(column 1\) must lie in \[0, 31\]"),
    (13.0, 0, r"month marks \(column 0\) must lie in \[0, 12\]"),
]


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("value,column,message", BAD_FLOAT_MARKS)
def test_bad_float_marks_raise_in_every_floating_dtype(value, column, message, dtype, traced):
    marks = _marks((1, 3), 4)
    layer = TemporalEmbedding(D_MODEL, freq="h")
    forward = tf.function(layer) if traced else layer
    good = tf.cast(marks, dtype)
    np.testing.assert_array_equal(forward(good), layer(marks))
    bad = marks.astype("float64")
    bad[0, 1, column] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        forward(tf.cast(bad, dtype))


@pytest.mark.parametrize("freq,width", [("d", 4), ("h", 3), ("t", 4), ("m", 3)])
def test_wrong_number_of_mark_columns_raises_at_build_and_call(freq, width):
    expected = dict(MARKS_PER_FREQ)[freq]
    message = rf"freq='{freq}' expects {expected} mark columns .*; received shape \(.*, {width}\)"
    with pytest.raises(ValueError, match=message):
        TemporalEmbedding(D_MODEL, freq=freq).build((None, 4, width))
    with pytest.raises(ValueError, match=message):
        TemporalEmbedding(D_MODEL, freq=freq)(np.zeros((1, 4, width), "int32"))


def test_temporal_embedding_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="freq"):
        TemporalEmbedding(D_MODEL, freq="fortnight")
    with pytest.raises(ValueError, match="embed_type"):
        TemporalEmbedding(D_MODEL, embed_type="timeF")
    with pytest.raises(ValueError, match="rank 3"):
        TemporalEmbedding(D_MODEL, freq="h")(np.zeros((4, 4), "int32"))
    with pytest.raises(TypeError, match="string"):
        TemporalEmbedding(D_MODEL, freq="m")(tf.constant([[["1"]]]))


# --- TimeFeatureEmbedding ---------------------------------------------------------------------


@pytest.mark.parametrize("freq,width", FEATURES_PER_FREQ + [("15min", 5), ("W-SUN", 2)])
def test_time_feature_embedding_matches_linear_reference(freq, width):
    features = _features((2, 5), width)
    for use_bias in (False, True):
        layer = TimeFeatureEmbedding(D_MODEL, freq=freq, use_bias=use_bias)
        out = layer(features)
        weights = layer.get_weights()
        assert len(weights) == (2 if use_bias else 1) and weights[0].shape == (width, D_MODEL)
        np.testing.assert_allclose(out, _linear_reference(features, *weights), rtol=1e-5, atol=1e-6)


def test_time_feature_embedding_init_is_pytorch_linear_uniform():
    # 4096 outputs: the bias mean's standard error is then bound / 111, so the mean check below
    # sits 11 standard errors out (with 256 it was 2.8 and failed about once in 200 runs).
    layer = TimeFeatureEmbedding(4096, freq="h", use_bias=True)
    layer.build((None, None, 4))
    bound = 1 / np.sqrt(4)
    for weight in layer.get_weights():
        assert np.abs(weight).max() <= bound
        assert np.abs(weight).max() > 0.9 * bound
        assert abs(weight.mean()) < 0.1 * bound


@pytest.mark.parametrize("freq", ["y", "A", "YE-DEC"])
def test_time_feature_embedding_rejects_yearly_freq(freq):
    with pytest.raises(ValueError, match=rf"freq='{freq}' \(yearly\) has none"):
        TimeFeatureEmbedding(D_MODEL, freq=freq)


def test_time_feature_embedding_rejects_wrong_width_and_integer_marks():
    with pytest.raises(
        ValueError, match=r"freq='h' expects 4 time-feature columns; received shape \(.*, 5\)"
    ):
        TimeFeatureEmbedding(D_MODEL, freq="h")(_features((1, 3), 5))
    with pytest.raises(TypeError, match="int32"):
        TimeFeatureEmbedding(D_MODEL, freq="h")(_marks((1, 3), 4))


# --- mixed precision, serialization -----------------------------------------------------------


def _float32_and_bfloat16(make_layer, inputs, mixed_policy):
    layer = make_layer()
    expected = layer(inputs).numpy()
    mixed_policy("mixed_bfloat16")
    mixed = make_layer()
    mixed(inputs)
    mixed.set_weights(layer.get_weights())
    out = mixed(inputs)
    assert out.dtype == tf.bfloat16
    return out.numpy().astype("float32"), expected


@pytest.mark.parametrize(
    "make_layer,inputs,expected",
    [
        (
            lambda **kwargs: FixedEmbedding(24, 5, **kwargs),
            (_marks((2, 6), 4)[..., 3],),
            lambda layer, inputs: reference.sinusoid(24, 5)[inputs[0]],
        ),
        (
            lambda **kwargs: TemporalEmbedding(D_MODEL, "fixed", "t", **kwargs),
            (_marks((2, 6), 5),),
            lambda layer, inputs: _fixed_reference(inputs[0]),
        ),
        (
            lambda **kwargs: TemporalEmbedding(D_MODEL, "learned", "h", **kwargs),
            (_marks((2, 6), 4),),
            lambda layer, inputs: _learned_reference(inputs[0], layer.get_weights()),
        ),
        (
            lambda **kwargs: TimeFeatureEmbedding(D_MODEL, "h", use_bias=True, **kwargs),
            (_features((2, 6), 4),),
            lambda layer, inputs: _linear_reference(inputs[0], *layer.get_weights()),
        ),
    ],
    ids=["fixed", "temporal-fixed", "temporal-learned", "time-feature"],
)
def test_layer_contract(make_layer, inputs, expected, tmp_path):
    layer_harness.run_layer_test(make_layer, inputs, tmp_path, expected=expected)


@pytest.mark.parametrize(
    "layer",
    [
        FixedEmbedding(24, 5, name="hour"),
        TemporalEmbedding(6, embed_type="learned", freq="15min"),
        TemporalEmbedding(6, freq="B"),
        TimeFeatureEmbedding(6, freq="W-SUN", use_bias=True),
    ],
    ids=["fixed", "temporal-learned", "temporal-fixed", "time-feature"],
)
def test_config_roundtrip(layer):
    rebuilt = roundtrip.assert_config_roundtrip(layer)
    assert type(rebuilt) is type(layer)


def test_keras_file_roundtrip(tmp_path):
    marks_in = keras.Input((6, 4), dtype="int32")
    features_in = keras.Input((6, 4))
    outputs = [
        TemporalEmbedding(D_MODEL, "learned", "h")(marks_in),
        TimeFeatureEmbedding(D_MODEL, "h", use_bias=True)(features_in),
        FixedEmbedding(13, D_MODEL)(marks_in[:, :, 0]),
    ]
    model = keras.Model([marks_in, features_in], outputs)
    roundtrip.assert_keras_file_roundtrip(
        model, [_marks((2, 6), 4), _features((2, 6), 4)], tmp_path
    )


INTEGER_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
def test_ids_of_every_integer_dtype_embed_as_int32_ids_do(dtype):
    marks = np.array([[[7, 1, 4, 0], [12, 31, 6, 23], [1, 1, 0, 12]]])
    ids = np.array([[0, 99, 127]])  # 127: the largest int8
    layers = {
        "temporal": (TemporalEmbedding(8, freq="h"), marks),
        "fixed": (FixedEmbedding(300, 8), ids),  # 300 does not fit uint8 (it would wrap to 44)
        "data": (DataEmbedding(3, 8, freq="h", dropout=0.0), marks),
    }
    for name, (layer, values) in layers.items():

        def embed(v, layer=layer, name=name):
            return layer(np.ones((1, 3, 3), "float32"), v) if name == "data" else layer(v)

        expected = embed(values.astype("int32")).numpy()
        typed = tf.constant(values.astype(dtype))
        for jit_compile in (None, False, True):  # eager, graph, XLA
            run = embed if jit_compile is None else tf.function(embed, jit_compile=jit_compile)
            np.testing.assert_array_equal(run(typed).numpy(), expected, err_msg=(name, jit_compile))


@pytest.mark.parametrize("dtype", ["uint8", "uint32", "int64", "uint64"])
def test_out_of_range_ids_of_wide_or_unsigned_dtypes_are_refused_in_a_graph(dtype):
    layer = TemporalEmbedding(8, freq="h")
    marks = np.array([[[7, 1, 4, 0]]]).astype(dtype)
    marks[0, 0, 3] = 24 if dtype == "uint8" else 2**31 + 5  # past int32: no wrap into range
    for run in (layer, tf.function(layer)):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"hour marks \(column 3\)"):
            run(tf.constant(marks))
