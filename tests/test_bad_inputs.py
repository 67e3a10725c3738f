"""Every row of docs/errors.md's bad-input table, run: exception type, stage and excerpt must match.

Each case below is registered under the row's first column and marks the stage it is in with
`at(...)` before each step, so that the stage that raised is checked as well. Cases whose row
says `none` assert themselves what comes out instead of an error.
"""

import contextlib
import io
import os
import pathlib
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest
import reference
import tensorflow as tf

from examples import data, evaluation, outputs, predict, training
from tf_tsembed import (
    DataEmbedding,
    FixedEmbedding,
    PatchEmbedding,
    PositionalEmbedding,
    ReversibleInstanceNorm,
    TemporalEmbedding,
    TimeFeatureEmbedding,
    TokenEmbedding,
    load_pytorch_weights,
    repeat_for_channels,
    serving,
    timefeatures,
    tslib,
)

ERRORS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "errors.md"
EXCEPTIONS = {
    "ValueError": ValueError,
    "TypeError": TypeError,
    "FileExistsError": FileExistsError,
    "InvalidArgumentError": tf.errors.InvalidArgumentError,
    "RuntimeError": RuntimeError,
}
MARKS = np.array([[[7, 1, 4, 0], [7, 1, 4, 1], [12, 31, 6, 23]]], "int32")  # (1, 3, 4), freq 'h'
CASES = {}


def _table_rows():
    """The table's rows as dicts keyed by its header, cells without their code backticks."""
    lines = [line.strip() for line in ERRORS.read_text().splitlines() if line.startswith("|")]
    cells = [[cell.strip().strip("`") for cell in line.strip("|").split("|")] for line in lines]
    header, _, *rows = cells
    return [dict(zip(header, row)) for row in rows]


ROWS = _table_rows()


def case(name):
    def register(function):
        CASES[name] = function
        return function

    return register


def _traced(layer, spec, jit_compile=False):
    return tf.function(
        layer, input_signature=[spec], jit_compile=jit_compile
    ).get_concrete_function()


def _x(shape, dtype="float32"):
    return np.random.default_rng(0).normal(size=shape).astype(dtype)


@case("token-c_in-zero")
def token_c_in_zero(at):
    at("construction")
    TokenEmbedding(c_in=0, d_model=8)


@case("token-kernel-even")
def token_kernel_even(at):
    at("construction")
    TokenEmbedding(3, 8, kernel_size=4)


@case("position-max_len-zero")
def position_max_len_zero(at):
    at("construction")
    PositionalEmbedding(max_len=0)


@case("token-use_bias-string")
def token_use_bias_string(at):
    at("construction")
    TokenEmbedding(3, 8, use_bias="False")


@case("data-unknown-embed-type")
def data_unknown_embed_type(at):
    at("construction")
    DataEmbedding(3, 8, embed_type="sinusoid")


@case("temporal-unknown-freq")
def temporal_unknown_freq(at):
    at("construction")
    TemporalEmbedding(8, freq="fortnight")


@case("temporal-sub-second-freq")
def temporal_sub_second_freq(at):
    at("construction")
    TemporalEmbedding(8, freq="ms")


@case("timef-yearly-freq")
def timef_yearly_freq(at):
    at("construction")
    TimeFeatureEmbedding(8, freq="y")


@case("time-features-unknown-freq")
def time_features_unknown_freq(at):
    at("call")
    timefeatures.time_features(["2016-07-01 00:00:00"], freq="xyz")


@case("time-features-tf-int32")
def time_features_tf_int32(at):
    at("call")
    timefeatures.time_features_tf(tf.constant([[1609677900]], tf.int32), freq="h")


@case("time-marks-tf-out-of-range")
def time_marks_tf_out_of_range(at):
    at("run time")
    timefeatures.time_marks_tf(tf.constant([2**62], tf.int64), freq="h")


DATES = ["2016-07-01 00:00", "2016-07-01 01:00", "2016-07-02 13:00"]


@case("time-features-generator")
def time_features_generator(at):
    at("call")
    timefeatures.time_features((date for date in DATES), freq="h")


@case("time-features-period-index")
def time_features_period_index(at):
    pd = pytest.importorskip("pandas", reason="pandas is not installed")
    periods = pd.PeriodIndex(DATES, freq="h")
    expected = timefeatures.time_features(np.array(DATES, "datetime64[s]"), freq="h")
    np.testing.assert_array_equal(timefeatures.time_features(periods, freq="h"), expected)


@case("repeat-n_vars-vector-tensor")
def repeat_n_vars_vector_tensor(at):
    at("call")
    repeat_for_channels(MARKS, tf.constant([3]))


@case("repeat-n_vars-negative-tensor")
def repeat_n_vars_negative_tensor(at):
    at("call")
    repeat_for_channels(MARKS, tf.constant(-2))


@case("repeat-n_vars-dynamic")
def repeat_n_vars_dynamic(at):
    at("trace")
    spec = [tf.TensorSpec((None, None, 4), tf.int32), tf.TensorSpec((), tf.int32)]
    forward = tf.function(repeat_for_channels, input_signature=spec).get_concrete_function()
    at("run time")
    forward(tf.constant(MARKS), tf.constant(-1))


@case("repeat-x_mark-scalar-dynamic")
def repeat_x_mark_scalar_dynamic(at):
    at("trace")
    spec = tf.TensorSpec(None, tf.float32)
    forward = tf.function(lambda x_mark: repeat_for_channels(x_mark, 2), input_signature=[spec])
    forward = forward.get_concrete_function()
    at("run time")
    forward(tf.constant(1.0))


@case("token-rank-2")
def token_rank_2(at):
    at("construction")
    layer = TokenEmbedding(3, 8)
    at("build")
    layer.build((2, 10))


@case("position-rank-1")
def position_rank_1(at):
    at("construction")
    layer = PositionalEmbedding(10, 8)
    at("build")
    layer.build((10,))


@case("temporal-rank-2")
def temporal_rank_2(at):
    at("construction")
    layer = TemporalEmbedding(8, freq="h")
    at("build")
    layer.build((10, 4))


@case("token-wrong-channels")
def token_wrong_channels(at):
    at("construction")
    layer = TokenEmbedding(3, 8)
    at("build")
    layer.build((2, 10, 4))


@case("token-wrong-channels-after-build")
def token_wrong_channels_after_build(at):
    at("construction")
    layer = TokenEmbedding(3, 8)
    at("build")
    layer.build((2, 10, 3))
    at("call")
    layer(_x((2, 10, 2)))


def _run_with_unknown_channels(layer, channels, at):
    at("construction")
    layer = layer()
    at("trace")
    forward = _traced(layer, tf.TensorSpec((None, None, None)))
    at("run time")
    forward(tf.constant(_x((2, 10, channels))))


@case("token-wrong-channels-dynamic")
def token_wrong_channels_dynamic(at):
    _run_with_unknown_channels(lambda: TokenEmbedding(3, 8), 4, at)


@case("token-wrong-channels-xla-dynamic")
def token_wrong_channels_xla_dynamic(at):
    at("construction")
    layer = TokenEmbedding(3, 8)
    layer.build((None, None, 3))
    at("trace")
    forward = _traced(layer, tf.TensorSpec((None, None, None)), jit_compile=True)
    at("run time")
    forward(tf.ones((2, 5, 6)))


@case("token-channel-multiple-dynamic")
def token_channel_multiple_dynamic(at):
    _run_with_unknown_channels(lambda: TokenEmbedding(30, 8, kernel_size=5), 60, at)


@case("data-channel-multiple-dynamic")
def data_channel_multiple_dynamic(at):
    _run_with_unknown_channels(lambda: DataEmbedding(50, 8), 100, at)


@case("temporal-wrong-columns")
def temporal_wrong_columns(at):
    at("construction")
    layer = TemporalEmbedding(8, freq="h")
    at("build")
    layer.build((1, 3, 3))


@case("data-mark-length")
def data_mark_length(at):
    at("construction")
    layer = DataEmbedding(3, 8)
    at("build")
    layer.build((1, 5, 3), (1, 4, 4))


@case("data-mark-batch-xla-dynamic")
def data_mark_batch_xla_dynamic(at):
    at("construction")
    layer = DataEmbedding(3, 8, embed_type="timeF", freq="h")
    at("trace")
    specs = [tf.TensorSpec((None, 16, 3)), tf.TensorSpec((None, 16, 4))]
    forward = tf.function(layer, input_signature=specs, jit_compile=True)
    forward.get_concrete_function()
    at("run time")
    forward(tf.constant(_x((2, 16, 3))), tf.constant(_x((1, 16, 4))))


@case("data-mark-columns-dynamic-batch")
def data_mark_columns_dynamic_batch(at):
    at("construction")
    layer = DataEmbedding(3, 8, freq="h")
    layer(_x((2, 16, 3)), np.zeros((2, 16, 4), "int32"))  # built: the call checks the columns
    at("trace")
    specs = [tf.TensorSpec((None, 16, 3)), tf.TensorSpec((None, 16, 3), tf.int32)]
    tf.function(layer, input_signature=specs).get_concrete_function()


@case("position-too-long")
def position_too_long(at):
    at("construction")
    layer = PositionalEmbedding(max_len=10, d_model=8)
    at("build")
    layer.build((2, 12, 3))


@case("position-too-long-dynamic")
def position_too_long_dynamic(at):
    at("construction")
    layer = PositionalEmbedding(max_len=10, d_model=8)
    at("trace")
    forward = _traced(layer, tf.TensorSpec((None, None, 3)))
    at("run time")
    forward(tf.zeros((2, 12, 3)))


@case("position-too-long-xla")
def position_too_long_xla(at):
    at("construction")
    layer = PositionalEmbedding(max_len=10, d_model=8)
    at("trace")
    _traced(layer, tf.TensorSpec((2, 12, 3)), jit_compile=True)


@case("position-too-long-xla-dynamic")
def position_too_long_xla_dynamic(at):
    at("construction")
    layer = PositionalEmbedding(max_len=10, d_model=8)
    at("trace")
    forward = _traced(layer, tf.TensorSpec((None, None, 3)), jit_compile=True)
    assert forward(tf.zeros((2, 10, 3))).shape == (1, 10, 8)
    at("run time")
    forward(tf.zeros((2, 12, 3)))


@case("data-too-long")
def data_too_long(at):
    at("construction")
    layer = DataEmbedding(3, 8, max_len=4)
    at("build")
    layer.build((1, 5, 3), (1, 5, 4))


def _free_length_model(layer):
    x = tf.keras.Input((None, 3))
    return tf.keras.Model(x, layer(x))


@case("position-too-long-savedmodel")
def position_too_long_savedmodel(at):
    at("construction")
    model = _free_length_model(PositionalEmbedding(max_len=10, d_model=8))
    with tempfile.TemporaryDirectory() as path:
        model.export(path, verbose=False)
        reloaded = tf.saved_model.load(path)
        at("run time")
        reloaded.serve(tf.zeros((2, 12, 3)))


def _tflite_run(model, x):
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the interpreter announces its move
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    runner = interpreter.get_signature_runner()
    (name,) = runner.get_input_details()
    return runner(**{name: x})


@case("position-too-long-tflite")
def position_too_long_tflite(at):
    at("construction")
    model = _free_length_model(PositionalEmbedding(max_len=10, d_model=8))
    at("run time")
    _tflite_run(model, np.zeros((2, 12, 3), "float32"))


@case("data-too-long-tflite")
def data_too_long_tflite(at):
    at("construction")
    model = _free_length_model(DataEmbedding(3, 8, max_len=10))
    at("run time")
    _tflite_run(model, np.zeros((2, 12, 3), "float32"))


@case("fixed-uint8-ids-function")
def fixed_uint8_ids_function(at):
    layer = FixedEmbedding(300, 8)
    ids = np.array([[0, 99, 255]], "uint8")
    np.testing.assert_array_equal(tf.function(layer)(ids), layer(ids.astype("int32")))


@case("temporal-uint64-id-function")
def temporal_uint64_id_function(at):
    at("construction")
    layer = TemporalEmbedding(8, freq="h")
    marks = MARKS.astype("uint64")
    marks[0, 0, 0] = 2**40  # cast to int32, it would wrap to month 0
    at("run time")
    tf.function(layer)(tf.constant(marks))


_RAGGED = tf.ragged.constant([[[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]], ragged_rank=1)
_SPARSE = tf.sparse.from_dense(np.ones((2, 4, 3), "float32"))


@case("token-ragged")
def token_ragged(at):
    at("construction")
    layer = TokenEmbedding(3, 8)
    at("call")
    layer(_RAGGED)


@case("data-sparse-mark")
def data_sparse_mark(at):
    at("construction")
    layer = DataEmbedding(3, 8, embed_type="timeF")
    at("call")
    layer(np.zeros((2, 4, 3), "float32"), tf.sparse.from_dense(np.ones((2, 4, 4), "float32")))


@case("position-sparse")
def position_sparse(at):
    at("construction")
    layer = PositionalEmbedding(10, 8)
    at("call")
    layer(_SPARSE)


@case("revin-ragged")
def revin_ragged(at):
    at("construction")
    layer = ReversibleInstanceNorm(3)
    at("call")
    layer.normalize(_RAGGED)


@case("patch-sparse")
def patch_sparse(at):
    at("construction")
    layer = PatchEmbedding(8, 2, 2, 0)
    at("call")
    layer(_SPARSE)


@case("fixed-ragged-ids")
def fixed_ragged_ids(at):
    at("construction")
    layer = FixedEmbedding(10, 8)
    at("call")
    layer(tf.ragged.constant([[1, 2], [3]]))


@case("repeat-ragged-marks")
def repeat_ragged_marks(at):
    at("call")
    repeat_for_channels(_RAGGED, 2)


@case("token-empty")
def token_empty(at):
    at("construction")
    layer = TokenEmbedding(3, 8)
    at("build")
    layer.build((2, 0, 3))


@case("token-empty-dynamic")
def token_empty_dynamic(at):
    at("construction")
    layer = TokenEmbedding(3, 8)
    at("trace")
    forward = _traced(layer, tf.TensorSpec((None, None, 3)))
    at("run time")
    forward(tf.zeros((2, 0, 3)))


@case("token-empty-xla-dynamic")
def token_empty_xla_dynamic(at):
    layer = TokenEmbedding(3, 8)
    forward = _traced(layer, tf.TensorSpec((None, None, 3)), jit_compile=True)
    assert forward(tf.zeros((2, 0, 3))).shape == (2, 0, 8)


@case("data-empty")
def data_empty(at):
    at("construction")
    layer = DataEmbedding(3, 8)
    at("build")
    layer.build((2, 0, 3))


@case("position-empty")
def position_empty(at):
    assert PositionalEmbedding(10, 8)(np.zeros((2, 0, 3), "float32")).shape == (1, 0, 8)


@case("token-empty-batch")
def token_empty_batch(at):
    assert TokenEmbedding(3, 8)(np.zeros((0, 10, 3), "float32")).shape == (0, 10, 8)


def _called_with(layer, build_shape, inputs, at):
    at("construction")
    layer = layer()
    at("build")
    layer.build(build_shape)
    at("call")
    layer(inputs)


@case("token-int")
def token_int(at):
    _called_with(lambda: TokenEmbedding(3, 8), (1, 5, 3), np.zeros((1, 5, 3), "int32"), at)


@case("token-bool")
def token_bool(at):
    _called_with(lambda: TokenEmbedding(3, 8), (1, 5, 3), np.zeros((1, 5, 3), bool), at)


@case("token-string")
def token_string(at):
    _called_with(lambda: TokenEmbedding(3, 8), (1, 5, 3), np.full((1, 5, 3), "1.0"), at)


@case("data-int")
def data_int(at):
    _called_with(lambda: DataEmbedding(3, 8), (1, 5, 3), np.zeros((1, 5, 3), "int32"), at)


@case("timef-int")
def timef_int(at):
    _called_with(lambda: TimeFeatureEmbedding(8, freq="h"), (1, 3, 4), MARKS, at)


@case("temporal-string")
def temporal_string(at):
    _called_with(lambda: TemporalEmbedding(8, freq="h"), (1, 3, 4), MARKS.astype(str), at)


@case("position-int")
def position_int(at):
    got = PositionalEmbedding(10, 8)(np.ones((2, 5, 3), "int32"))
    np.testing.assert_allclose(got, reference.sinusoid(5, 8)[None], rtol=0, atol=1e-7)


def _run_with_marks(marks, at, layer=None):
    """Traces on an unknown length (so the range checks are in-graph asserts), then runs."""
    at("construction")
    layer = layer or TemporalEmbedding(8, freq="h")
    at("trace")
    forward = _traced(layer, tf.TensorSpec((None, None, 4), marks.dtype))
    at("run time")
    return forward(tf.constant(marks))


def _marks_with(value, column, dtype="int32"):
    marks = MARKS.astype(dtype)
    marks[0, 1, column] = value
    return marks


@case("temporal-fractional-mark")
def temporal_fractional_mark(at):
    _run_with_marks(_marks_with(2.5, 3, "float32"), at)


@case("temporal-nan-mark")
def temporal_nan_mark(at):
    _run_with_marks(_marks_with(np.nan, 0, "float32"), at)


def _eager_with_marks(marks, at, layer=None):
    at("construction")
    layer = layer or TemporalEmbedding(8, freq="h")
    at("run time")
    return layer(tf.constant(marks))


@case("temporal-fractional-mark-bfloat16")
def temporal_fractional_mark_bfloat16(at):
    _eager_with_marks(tf.cast(_marks_with(2.5, 3, "float32"), tf.bfloat16), at)


@case("temporal-nan-mark-float16")
def temporal_nan_mark_float16(at):
    _eager_with_marks(_marks_with(np.nan, 0, "float16"), at)


@case("data-nan-mark-bfloat16")
def data_nan_mark_bfloat16(at):
    at("construction")
    layer = DataEmbedding(3, 8)
    at("run time")
    layer(np.zeros((1, 3, 3), "float32"), tf.cast(_marks_with(np.nan, 0, "float32"), tf.bfloat16))


@case("temporal-month-13")
def temporal_month_13(at):
    _run_with_marks(_marks_with(13, 0), at)


@case("temporal-hour-24")
def temporal_hour_24(at):
    _run_with_marks(_marks_with(24, 3), at)


@case("temporal-negative-mark")
def temporal_negative_mark(at):
    _run_with_marks(_marks_with(-1, 0), at)


@case("data-month-13")
def data_month_13(at):
    at("construction")
    layer = DataEmbedding(3, 8)
    at("trace")
    spec = [tf.TensorSpec((None, None, 3)), tf.TensorSpec((None, None, 4), tf.int32)]
    forward = tf.function(layer, input_signature=spec).get_concrete_function()
    at("run time")
    forward(tf.zeros((1, 3, 3)), tf.constant(_marks_with(13, 0)))


@case("temporal-month-13-xla")
def temporal_month_13_xla(at):
    layer = TemporalEmbedding(8, freq="h")
    forward = tf.function(layer, jit_compile=True)
    np.testing.assert_array_equal(forward(_marks_with(13, 0)), forward(_marks_with(12, 0)))


def _token_with(value, length, kernel_size, jit_compile):
    """`(output, float64 reference)` for a series with `value` at step L // 2, channel 1, row 1."""
    layer = TokenEmbedding(2, 4, kernel_size=kernel_size, jit_compile=jit_compile)
    x = _x((2, length, 2))
    x[1, length // 2, 1] = value
    got = np.asarray(layer(x))
    with np.errstate(invalid="ignore"):  # Inf - Inf is the NaN the row describes
        return got, reference.circular_conv1d(x, *layer.get_weights())


@case("revin-seed-batch-mismatch")
def revin_seed_batch_mismatch(at):
    at("construction")
    layer = ReversibleInstanceNorm(3)
    at("call")
    layer(_x((4, 6, 3)), mode="norm")
    layer(_x((1, 2, 3)), mode="denorm")


@case("revin-seed-batch-mismatch-dynamic")
def revin_seed_batch_mismatch_dynamic(at):
    at("construction")
    layer = ReversibleInstanceNorm(3)

    def seed_form(x, y):
        layer(x, mode="norm")
        return layer(y, mode="denorm")

    at("trace")
    spec = [tf.TensorSpec((None, 6, 3)), tf.TensorSpec((None, 2, 3))]
    forward = tf.function(seed_form, input_signature=spec).get_concrete_function()
    at("run time")
    forward(tf.constant(_x((4, 6, 3))), tf.constant(_x((1, 2, 3))))


@case("revin-features-dynamic")
def revin_features_dynamic(at):
    at("construction")
    layer = ReversibleInstanceNorm(3)
    at("trace")
    forward = _traced(layer, tf.TensorSpec((None, None, None)))
    at("run time")
    forward(tf.constant(_x((2, 6, 1))))


@case("revin-stats-lists")
def revin_stats_lists(at):
    layer = ReversibleInstanceNorm(3)
    y, stats = layer.normalize(_x((2, 6, 3)))
    as_lists = [s.numpy().tolist() for s in stats]
    np.testing.assert_array_equal(layer.denormalize(y, as_lists), layer.denormalize(y, stats))


@case("revin-stats-none")
def revin_stats_none(at):
    at("construction")
    layer = ReversibleInstanceNorm(3)
    at("call")
    layer.denormalize(_x((2, 6, 3)), (None, None))


@case("weights-unreadable")
def weights_unreadable(at):
    at("construction")
    layer = TokenEmbedding(3, 8, use_bias=False)
    at("build")
    layer.build((None, None, 3))
    at("call")
    load_pytorch_weights(layer, {"tokenConv.weight": [[1.0, 2.0], [3.0]]})


@case("weights-overflow")
def weights_overflow(at):
    at("construction")
    layer = TokenEmbedding(3, 8, use_bias=False)
    at("build")
    layer.build((None, None, 3))
    weight = np.zeros((8, 3, 3))
    weight[0, 0, 0] = 1e39
    at("call")
    load_pytorch_weights(layer, {"tokenConv.weight": weight})


@case("token-nan")
def token_nan(at):
    for jit_compile in (True, False):
        for length, kernel_size in ((9, 3), (9, 5), (2, 3)):
            got, expected = _token_with(np.nan, length, kernel_size, jit_compile)
            pad, t = (kernel_size - 1) // 2, length // 2
            nan_steps = {(t + shift) % length for shift in range(-pad, pad + 1)}
            want_nan = np.zeros(got.shape, bool)
            want_nan[1, sorted(nan_steps)] = True
            np.testing.assert_array_equal(np.isnan(got), want_nan)
            np.testing.assert_allclose(got[~want_nan], expected[~want_nan], rtol=1e-5, atol=1e-6)


@case("token-inf")
def token_inf(at):
    for jit_compile in (True, False):
        for length, kernel_size in ((9, 3), (1, 3), (2, 5)):
            got, expected = _token_with(np.inf, length, kernel_size, jit_compile)
            finite = np.isfinite(expected)
            assert not finite.all()
            np.testing.assert_array_equal(
                got[~finite], expected[~finite]
            )  # same Infs, signs and NaNs
            np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-5, atol=1e-6)


@case("position-nan")
def position_nan(at):
    x = np.full((1, 6, 2), np.nan, "float32")
    x[0, 0, 0] = np.inf
    got = PositionalEmbedding(10, 8)(x)
    np.testing.assert_allclose(got, reference.sinusoid(6, 8)[None], rtol=0, atol=1e-7)


@case("csv-mixed-utc-offsets")
def csv_mixed_utc_offsets(at):
    from tf_tsembed import tslib_data

    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "series.csv"
        path.write_text("date,OT\n2020-01-01 00:00+01:00,1\n2020-01-01 01:00,2\n")
        at("call")
        tslib_data.read_csv(str(path))


@case("freq-multiple-contradicts-dates")
def freq_multiple_contradicts_dates(at):
    from examples import data

    months = np.arange("2000-01", "2003-01", dtype="datetime64[M]").astype("datetime64[ns]")
    at("call")
    data.check_freq("12M", months)


# --- the example scripts' refusals (rows cli-*) ------------------------------------------------


def _outputs_dir():
    return pathlib.Path(tempfile.mkdtemp(prefix="bad_inputs_outputs_"))


@case("cli-output-exists")
def cli_output_exists(at):
    path = _outputs_dir() / "out.json"
    path.write_text("{}")
    at("call")
    outputs.check(files={"json": str(path)})


@case("cli-output-is-input")
def cli_output_is_input(at):
    directory = _outputs_dir()
    (directory / "data.csv").write_text("date,OT\n")
    (directory / "out.json").symlink_to(directory / "data.csv")
    at("call")
    outputs.check(
        files={"json": str(directory / "out.json")},
        inputs={"csv": str(directory / "data.csv")},
        overwrite=True,
    )


@case("cli-export-dir-holds-input")
def cli_export_dir_holds_input(at):
    directory = _outputs_dir()
    (directory / "data.csv").write_text("date,OT\n")
    at("call")
    outputs.check(
        directories={"export_dir": str(directory)},
        inputs={"csv": str(directory / "data.csv")},
        overwrite=True,
    )


@case("cli-output-inside-output")
def cli_output_inside_output(at):
    saved = _outputs_dir() / "saved"
    at("call")
    outputs.check(files={"json": str(saved / "out.json")}, directories={"export_dir": str(saved)})


@case("cli-output-inside-input")
def cli_output_inside_input(at):
    served = _outputs_dir() / "served"
    (served / "assets").mkdir(parents=True)
    (served / "assets" / "forecaster.json").write_text("{}")
    at("call")
    outputs.check(
        files={"out": str(served / "assets" / "forecaster.json")},
        inputs={"model_dir": str(served)},
        overwrite=True,
    )


@case("cli-outputs-same-path")
def cli_outputs_same_path(at):
    path = str(_outputs_dir() / "P")
    at("call")
    outputs.check(files={"json": path}, directories={"export_dir": path})


@case("cli-output-appeared")
def cli_output_appeared(at):
    path = _outputs_dir() / "out.json"
    at("call")
    with outputs.replacing_file(str(path)) as file:
        file.write("{}")
        path.write_text("written by another run meanwhile")


@case("cli-json-nan")
def cli_json_nan(at):
    path = _outputs_dir() / "out.json"
    at("call")
    try:
        outputs.write_json(str(path), {"mse": float("nan")})
    finally:
        assert not path.exists()


@case("cli-training-diverged")
def cli_training_diverged(at):
    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=training.TorchAdam(1e30), loss="mse")
    x = np.ones((8, 2), "float32")
    at("call")
    model.fit(x, x[:, :1], batch_size=2, epochs=2, callbacks=[training.FiniteLosses()], verbose=0)


@case("cli-test-metrics-not-finite")
def cli_test_metrics_not_finite(at):
    at("call")
    evaluation.finite_errors(np.array([[1.0, np.inf]]), np.zeros((1, 2)))


@case("cli-export-mismatch")
def cli_export_mismatch(at):
    expected = np.zeros((2, 3), "float32")
    at("call")
    serving.compare_forecasts(expected + 0.01, expected)


@case("cli-split-fewer-than-a-batch")
def cli_split_fewer_than_a_batch(at):
    at("call")
    data.whole_batches(np.arange(10, 49), 64, "validation")


def _script(*args, **kwargs):
    root = pathlib.Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    command = [sys.executable, "-m", "examples.forecast", *args]
    return subprocess.run(command, cwd=root, env=env, text=True, timeout=60, **kwargs)


@case("cli-help-bad-value")
def cli_help_bad_value(at):
    result = _script("--help", "--seq_len", "abc", capture_output=True)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: flag --seq_len=abc: invalid literal for int() with base 10: 'abc'\n"
    )


@case("cli-help-closed-pipe")
def cli_help_closed_pipe(at):
    read, write = os.pipe()
    os.close(read)
    try:
        result = _script("--help", stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (0, "")


TSLIB_FLAGS = dict(seq_len=24, label_len=12, pred_len=8, enc_in=3, dec_in=3, c_out=3, d_model=8,
                   n_heads=2, d_ff=8, e_layers=1, d_layers=1)  # fmt: skip


def _tslib_state(model):
    shapes = tslib.checkpoint_shapes(dict(TSLIB_FLAGS, model=model))
    return {key: np.zeros(shape, "float32") for key, shape in shapes.items()}


@case("tslib-unknown-flag")
def tslib_unknown_flag(at):
    at("call")
    tslib.parse_run_flags("--model TimesNet --bogus 1")


@case("tslib-data-not-forecasting")
def tslib_data_not_forecasting(at):
    from tf_tsembed import tslib_data

    at("call")
    tslib_data.train_scaler(".", "ETTh1.csv", data="m4")


@case("tslib-enc-in-against-data")
def tslib_enc_in_against_data(at):
    from tf_tsembed.models import ForecastConfig, ITransformer

    config = ForecastConfig(seq_len=8, label_len=4, pred_len=4, enc_in=3, dec_in=3, c_out=3)
    model = ITransformer(config)
    dates = np.datetime64("2020-01-01T00", "h") + np.arange(100)
    rows = "".join(
        f"{str(date).replace('T', ' ')}:00,{i},{i % 3},{i % 5}\n" for i, date in enumerate(dates)
    )
    with tempfile.TemporaryDirectory() as directory:
        (pathlib.Path(directory) / "series.csv").write_text("date,OT,a,b\n" + rows)
        extras = dict(
            root_path=directory, data_path="series.csv", data="custom", features="S", target="OT"
        )
        at("call")
        tslib._export(model, pathlib.Path(directory) / "served", False, extras)


# --- tf_tsembed.serving and examples/predict.py (rows serving-*, predict-*) ---------------------

_SERVING = {}


def _serving_model():
    if "model" not in _SERVING:
        from tf_tsembed.models import ForecastConfig, ITransformer

        config = ForecastConfig(
            seq_len=8, label_len=4, pred_len=3, enc_in=2, dec_in=2, c_out=2, d_model=8,
            n_heads=2, d_ff=8, e_layers=1,
        )  # fmt: skip
        _SERVING["model"] = ITransformer(config)
    return _SERVING["model"]


def _export(export_dir=None, **arguments):
    from tf_tsembed import serving

    export_dir = export_dir or str(_outputs_dir() / "served")
    kwargs = {"mean": [0.0, 1.0], "scale": [1.0, 2.0], "names": ["a", "OT"], **arguments}
    return serving.export_forecaster(_serving_model(), export_dir, **kwargs)


@case("serving-scale-not-positive")
def serving_scale_not_positive(at):
    _serving_model()
    at("call")
    _export(scale=[1.0, 0.0])


@case("serving-mean-shape")
def serving_mean_shape(at):
    _serving_model()
    at("call")
    _export(mean=[0.0, 1.0, 2.0])


@case("serving-names-length")
def serving_names_length(at):
    _serving_model()
    at("call")
    _export(names=["OT"])


@case("serving-features-unknown")
def serving_features_unknown(at):
    _serving_model()
    at("call")
    _export(features="MM")


@case("serving-other-files")
def serving_other_files(at):
    _serving_model()
    folder = _outputs_dir()
    (folder / "notes.txt").write_text("keep me")
    at("call")
    try:
        _export(str(folder), overwrite=True)
    finally:
        assert (folder / "notes.txt").read_text() == "keep me"


@case("serving-calendar-freq")
def serving_calendar_freq(at):
    from tf_tsembed import serving
    from tf_tsembed.models import ForecastConfig, ITransformer

    config = ForecastConfig(
        seq_len=8, label_len=4, pred_len=3, enc_in=2, dec_in=2, c_out=2, d_model=8, n_heads=2,
        d_ff=8, e_layers=1, freq="MS",
    )  # fmt: skip
    model = ITransformer(config)
    at("call")
    serving.export_forecaster(
        model, str(_outputs_dir() / "s"), mean=[0.0, 0.0], scale=[1.0, 1.0], names=["a", "b"]
    )


@case("serving-export-exists")
def serving_export_exists(at):
    _serving_model()
    export_dir = _outputs_dir()
    at("call")
    _export(str(export_dir))


_PREDICT_METADATA = {"names_in": ["a", "OT"], "seq_len": 4, "freq": "h"}


def _hours(count):
    return np.datetime64("2018-06-26T00", "ns") + np.arange(count) * np.timedelta64(1, "h")


@case("predict-missing-columns")
def predict_missing_columns(at):
    at("call")
    predict.window("f.csv", _hours(5), ["OT"], np.zeros((5, 1)), _PREDICT_METADATA)


@case("predict-too-short")
def predict_too_short(at):
    at("call")
    predict.window("f.csv", _hours(3), ["a", "OT"], np.zeros((3, 2)), _PREDICT_METADATA)


@case("predict-irregular-step")
def predict_irregular_step(at):
    dates = _hours(6)
    dates[3] += np.timedelta64(30, "m")
    at("call")
    predict.window("f.csv", dates, ["a", "OT"], np.zeros((6, 2)), _PREDICT_METADATA)


def _model_dir(metadata_text):
    model_dir = _outputs_dir() / "served"
    (model_dir / "assets").mkdir(parents=True)
    (model_dir / "assets" / serving.METADATA_FILE).write_text(metadata_text)
    return str(model_dir)


@case("predict-model-dir-a-file")
def predict_model_dir_a_file(at):
    path = _outputs_dir() / "model.keras"
    path.write_text("")
    at("call")
    predict.read_metadata(str(path))


@case("predict-metadata-not-json")
def predict_metadata_not_json(at):
    model_dir = _model_dir("{names_in: 1}")
    at("call")
    predict.read_metadata(model_dir)


@case("predict-metadata-missing-keys")
def predict_metadata_missing_keys(at):
    model_dir = _model_dir('{"names_in": ["OT"], "names_out": ["OT"], "seq_len": 4}')
    at("call")
    predict.read_metadata(model_dir)


@case("predict-freq-contradicts-window")
def predict_freq_contradicts_window(at):
    dates = np.datetime64("2018-06-26T00", "ns") + np.arange(6) * np.timedelta64(15, "m")
    at("call")
    predict.window("f.csv", dates, ["a", "OT"], np.zeros((6, 2)), _PREDICT_METADATA)


@case("predict-fractional-seconds")
def predict_fractional_seconds(at):
    dates = _hours(6)
    dates[3] += np.timedelta64(500, "ms")
    at("call")
    predict.window("f.csv", dates, ["a", "OT"], np.zeros((6, 2)), _PREDICT_METADATA)


@case("predict-beyond-float32")
def predict_beyond_float32(at):
    values = np.zeros((6, 2))
    values[4, 1] = 1e39
    at("call")
    predict.window("f.csv", _hours(6), ["a", "OT"], values, _PREDICT_METADATA)


@case("tslib-embed-fixed")
def tslib_embed_fixed(at):
    at("call")
    tslib.parse_run_flags("--model Transformer --embed fixed")


@case("tslib-unknown-model")
def tslib_unknown_model(at):
    at("call")
    tslib.parse_run_flags("--model Autoformer")


@case("tslib-missing-key")
def tslib_missing_key(at):
    state = _tslib_state("iTransformer")
    del state["projection.bias"]
    at("call")
    tslib.load_checkpoint(state, model="iTransformer", **TSLIB_FLAGS)


@case("tslib-non-finite-weights")
def tslib_non_finite_weights(at):
    state = _tslib_state("iTransformer")
    state["projection.weight"] = np.full_like(state["projection.weight"], np.nan)
    at("call")
    tslib.load_checkpoint(state, model="iTransformer", **TSLIB_FLAGS)


@case("tslib-integer-weights")
def tslib_integer_weights(at):
    state = _tslib_state("iTransformer")
    state["projection.weight"] = state["projection.weight"].astype(np.int64)
    at("call")
    tslib.load_checkpoint(state, model="iTransformer", **TSLIB_FLAGS)


@case("tslib-wrapped-checkpoint")
def tslib_wrapped_checkpoint(at):
    state = {"model": _tslib_state("iTransformer"), "epoch": 3}
    at("call")
    tslib.load_checkpoint(state, model="iTransformer", **TSLIB_FLAGS)


@case("tslib-export-dir-holds-checkpoint")
def tslib_export_dir_holds_checkpoint(at):
    run = _outputs_dir() / "run1"
    run.mkdir()
    (run / "checkpoint.pth").write_bytes(b"kept")
    argv = ["--model", "iTransformer", "--checkpoint", str(run / "checkpoint.pth")]
    argv += ["--export_dir", str(run), "--overwrite"]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = tslib.main(argv)
    lines = stderr.getvalue().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: --export_dir {str(run)!r} is or holds the input")
    assert (run / "checkpoint.pth").read_bytes() == b"kept"


@case("tslib-flag-against-shape")
def tslib_flag_against_shape(at):
    state = _tslib_state("Transformer")
    at("call")
    tslib.load_checkpoint(state, model="Transformer", **dict(TSLIB_FLAGS, enc_in=8))


@case("tslib-not-sinusoid")
def tslib_not_sinusoid(at):
    state = _tslib_state("PatchTST")
    state["patch_embedding.position_embedding.pe"] = np.ones((1, 100, 8), "float32")
    at("call")
    tslib.load_checkpoint(state, model="PatchTST", **TSLIB_FLAGS)


def test_every_row_has_a_case_and_every_case_a_row():
    names = [row["Case"] for row in ROWS]
    assert len(names) == len(set(names)), "duplicate rows"
    assert set(names) == set(CASES)


def _param(row):
    return pytest.param(row, id=row["Case"])


@pytest.mark.parametrize("row", [_param(row) for row in ROWS])
def test_row(row):
    stages = []
    if row["Exception"] == "none":
        assert row["Raised at"] == "—"
        CASES[row["Case"]](stages.append)
        return
    with pytest.raises(EXCEPTIONS[row["Exception"]]) as raised:
        CASES[row["Case"]](stages.append)
    assert type(raised.value).__name__ == row["Exception"]
    assert row["Message (excerpt)"] in str(raised.value)
    assert stages[-1] == row["Raised at"]
