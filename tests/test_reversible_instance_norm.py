"""ReversibleInstanceNorm against the RevIN formulas (TSLib `Normalize`) in float64 NumPy."""

import numpy as np
import pytest
import reference
import roundtrip
import tensorflow as tf

from tf_tsembed import ReversibleInstanceNorm

keras = tf.keras
C, L, H = 3, 12, 5  # features, input length, forecast horizon


def _random(shape, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    return (offset + rng.normal(size=shape) * rng.uniform(0.5, 3.0, size=shape[-1])).astype(
        "float32"
    )


def _stats_reference(x, eps, subtract_last):
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=1, keepdims=True)
    stdev = np.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + eps)
    center = x[:, -1:, :] if subtract_last else mean
    return center, stdev


def _norm_reference(x, weight, bias, eps, subtract_last):
    center, stdev = _stats_reference(x, eps, subtract_last)
    return (np.asarray(x, np.float64) - center) / stdev * weight + bias


def _denorm_reference(y, weight, bias, eps, center, stdev):
    return (np.asarray(y, np.float64) - bias) / (weight + eps * eps) * stdev + center


def _layer(affine=True, subtract_last=False, eps=1e-5, **kwargs):
    """A built layer with non-trivial affine parameters, so every term of the formulas counts."""
    layer = ReversibleInstanceNorm(C, eps=eps, affine=affine, subtract_last=subtract_last, **kwargs)
    layer.build((None, None, C))
    if affine:
        layer.set_weights(
            [np.array([0.5, 1.0, 2.0], "float32"), np.array([0.1, -0.2, 0.3], "float32")]
        )
    return layer


def _affine(layer):
    if not layer.affine:
        return 1.0, 0.0
    weight, bias = layer.get_weights()
    return weight.astype(np.float64), bias.astype(np.float64)


@pytest.mark.parametrize("subtract_last", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_normalize_and_denormalize_match_reference(affine, subtract_last):
    layer = _layer(affine, subtract_last, eps=1e-3)
    x = _random((2, L, C), offset=10.0)
    y, (center, stdev) = layer.normalize(x)
    weight, bias = _affine(layer)
    ref_center, ref_stdev = _stats_reference(x, 1e-3, subtract_last)
    np.testing.assert_allclose(center, ref_center, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stdev, ref_stdev, rtol=1e-5, atol=1e-6)
    # float32 rounding happens at the data's scale (offset 10), not at the scale of y.
    data_atol = 2e-6 * np.abs(x).max()
    expected_y = _norm_reference(x, weight, bias, 1e-3, subtract_last)
    np.testing.assert_allclose(
        y, expected_y, rtol=1e-5, atol=data_atol * np.max(weight) / ref_stdev.min()
    )
    y_hat = _random((2, H, C), seed=1)  # a forecast of another length, in normalised space
    out = layer.denormalize(y_hat, (center, stdev))
    assert out.shape == (2, H, C)
    expected_out = _denorm_reference(y_hat, weight, bias, 1e-3, ref_center, ref_stdev)
    np.testing.assert_allclose(out, expected_out, rtol=1e-5, atol=data_atol)


def test_denormalize_inverts_normalize():
    layer = _layer()
    x = _random((3, L, C), offset=50.0)
    y, stats = layer.normalize(x)
    np.testing.assert_allclose(layer.denormalize(y, stats), x, rtol=1e-5)


def test_single_step_series_uses_sqrt_eps():
    layer = _layer(affine=False, eps=1e-2)
    x = _random((2, 1, C))
    y, (center, stdev) = layer.normalize(x)
    np.testing.assert_allclose(stdev, np.full((2, 1, C), 0.1), rtol=1e-6)
    np.testing.assert_array_equal(y, np.zeros((2, 1, C)))


def test_statistics_are_constants_for_gradients():
    """dy/dx = weight / stdev exactly: the reference detaches the statistics."""
    layer = _layer(eps=1e-3)
    x = tf.constant(_random((2, L, C)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y, _ = layer.normalize(x)
        loss = tf.reduce_sum(y)
    weight, _ = _affine(layer)
    _, stdev = _stats_reference(x.numpy(), 1e-3, False)
    np.testing.assert_allclose(
        tape.gradient(loss, x), np.broadcast_to(weight / stdev, x.shape), rtol=1e-5
    )
    assert all(g is not None for g in tape.gradient(loss, layer.trainable_weights))


def test_seed_form_matches_explicit_form_eagerly_and_traced():
    layer = _layer()
    x, y_hat = _random((2, L, C), offset=5.0), _random((2, H, C), seed=1)
    y, stats = layer.normalize(x)
    expected = layer.denormalize(y_hat, stats)
    np.testing.assert_array_equal(layer(x, mode="norm"), y)
    np.testing.assert_array_equal(layer(y_hat, mode="denorm"), expected)

    def seed_form(x, y_hat):
        return layer(x, mode="norm"), layer(y_hat, mode="denorm")

    for jit_compile in (False, True):
        traced_y, traced_out = tf.function(seed_form, jit_compile=jit_compile)(x, y_hat)
        np.testing.assert_allclose(traced_y, y, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(traced_out, expected, rtol=1e-6, atol=1e-6)


def test_seed_form_misuse_raises():
    layer = _layer()
    x, y_hat = _random((2, L, C)), _random((2, H, C), seed=1)
    with pytest.raises(ValueError, match="before any mode='norm'"):
        layer(y_hat, mode="denorm")
    tf.function(lambda x: layer(x, mode="norm"))(x)
    with pytest.raises(ValueError, match="different graph"):
        tf.function(lambda y: layer(y, mode="denorm"))(y_hat)
    with pytest.raises(ValueError, match="different graph"):
        layer(y_hat, mode="denorm")
    layer(x, mode="norm")
    with pytest.raises(ValueError, match="different graph"):
        tf.function(lambda y: layer(y, mode="denorm"))(y_hat)


def test_seed_form_denorm_of_another_batch_size_raises():
    layer = _layer()
    x, y_hat = _random((4, L, C)), _random((4, H, C), seed=1)
    layer(x, mode="norm")
    message = rf"inputs of shape \(1, {H}, {C}\), but the last mode='norm' call normalised a batch"
    with pytest.raises(ValueError, match=message):
        layer(y_hat[:1], mode="denorm")  # unchecked, the batch of 1 broadcast to 4
    assert layer(y_hat, mode="denorm").shape == (4, H, C)

    def seed_form(x, y_hat):
        layer(x, mode="norm")
        return layer(y_hat, mode="denorm")

    with pytest.raises(ValueError, match=message):
        tf.function(seed_form)(x, y_hat[:1])
    unknown_batch = [tf.TensorSpec((None, L, C)), tf.TensorSpec((None, H, C))]
    traced = tf.function(seed_form, input_signature=unknown_batch)
    expected = layer.denormalize(y_hat, layer.normalize(x)[1])
    np.testing.assert_allclose(traced(x, y_hat), expected, rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="differ in batch size"):
        traced(x, y_hat[:1])


def test_unknown_feature_count_is_checked_at_run_time():
    layer = _layer()
    _, stats = layer.normalize(_random((2, L, C)))
    spec = tf.TensorSpec((None, None, None))
    normalize = tf.function(layer.normalize, input_signature=[spec])
    stats_spec = (tf.TensorSpec((None, 1, C)),) * 2
    denormalize = tf.function(layer.denormalize, input_signature=[spec, stats_spec])
    message = "was built with num_features=3, but `inputs` has a different number of features"
    assert normalize(_random((2, L, C)))[0].shape == (2, L, C)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        normalize(_random((2, L, 1)))  # unchecked, one feature broadcast to three
    assert denormalize(_random((2, H, C)), stats).shape == (2, H, C)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        denormalize(_random((2, H, 1)), stats)


def test_seed_form_denorm_in_functional_model_is_an_error():
    layer = ReversibleInstanceNorm(C)
    inputs = keras.Input((L, C))
    y = layer(inputs, mode="norm")
    with pytest.raises(ValueError, match="normalize"):
        layer(y, mode="denorm")


class SeedFormForecaster(keras.Model):
    """The reference's usage in a subclassed model: norm, a linear map over time, denorm."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.revin = ReversibleInstanceNorm(C)
        self.head = keras.layers.Dense(H)

    def call(self, x):
        y = self.revin(x, mode="norm")
        y_hat = tf.transpose(self.head(tf.transpose(y, (0, 2, 1))), (0, 2, 1))
        return self.revin(y_hat, mode="denorm")


def test_seed_form_in_subclassed_model_trains_in_fit():
    model = SeedFormForecaster()
    x, target = _random((8, L, C), offset=3.0), _random((8, H, C), seed=1, offset=3.0)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=True)
    history = model.fit(x, target, epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    revin = model.revin
    y = np.transpose(_norm_reference(x, *_affine(revin), 1e-5, False), (0, 2, 1))
    kernel, bias = model.head.get_weights()
    y_hat = np.transpose(y @ kernel + bias, (0, 2, 1))
    center, stdev = _stats_reference(x, 1e-5, False)
    expected = _denorm_reference(y_hat, *_affine(revin), 1e-5, center, stdev)
    np.testing.assert_allclose(model(x), expected, rtol=1e-4, atol=1e-4)


def _forecaster(policy=None):
    """The recommended form: explicit statistics in a Functional model."""
    inputs = keras.Input((L, C))
    revin = ReversibleInstanceNorm(C, name="revin", dtype=policy)
    y, stats = revin.normalize(inputs)
    h = keras.layers.Dense(H, name="head", dtype=policy)(keras.layers.Permute((2, 1))(y))
    forecast = revin.denormalize(keras.layers.Permute((2, 1))(h), stats)
    return keras.Model(inputs, forecast)


def _forecast_reference(model, x):
    revin = model.get_layer("revin")
    y = np.transpose(_norm_reference(x, *_affine(revin), revin.eps, False), (0, 2, 1))
    kernel, bias = model.get_layer("head").get_weights()
    y_hat = np.transpose(y @ kernel + bias, (0, 2, 1))
    return _denorm_reference(
        y_hat, *_affine(revin), revin.eps, *_stats_reference(x, revin.eps, False)
    )


def test_functional_forecaster_matches_reference_and_xla(tmp_path):
    model = _forecaster()
    model.get_layer("revin").set_weights(
        [np.array([0.5, 1.0, 2.0], "float32"), np.array([0.1, -0.2, 0.3], "float32")]
    )
    x = _random((2, L, C), offset=100.0)
    expected = _forecast_reference(model, x)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        tf.function(model, jit_compile=True)(x), expected, rtol=1e-5, atol=1e-4
    )
    roundtrip.assert_keras_file_roundtrip(model, x, tmp_path)


@pytest.mark.slow
def test_functional_forecaster_exports_and_reloads_in_fresh_process(tmp_path):
    roundtrip.assert_export_roundtrip_in_fresh_process(
        _forecaster(), _random((2, L, C), offset=100.0), tmp_path
    )


def test_mixed_bfloat16_keeps_statistics_in_float32():
    # A series at 1000 +- 1: bfloat16 rounds it in steps of 4, so only float32 statistics survive.
    x = _random((2, L, C), offset=1000.0)
    layer = _layer(dtype="mixed_bfloat16")
    y, (center, stdev) = layer.normalize(x)
    assert (y.dtype, center.dtype, stdev.dtype) == (tf.bfloat16, tf.float32, tf.float32)
    expected = _norm_reference(x, *_affine(layer), 1e-5, False)
    np.testing.assert_allclose(
        tf.cast(y, tf.float32), expected, rtol=1e-2, atol=1e-2 * np.abs(expected).max()
    )
    out = layer.denormalize(y, (center, stdev))
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out, x, rtol=0, atol=2e-2 * x.std(axis=1).max())


def test_mixed_bfloat16_forecaster_matches_float32_by_value(mixed_policy):
    x = _random((2, L, C), offset=1000.0)
    full = _forecaster()
    mixed_policy("mixed_bfloat16")
    reduced = _forecaster()
    reduced.set_weights(full.get_weights())
    out = reduced(x)
    assert out.dtype == tf.float32
    expected = full(x).numpy()
    spread = np.abs(expected - x.mean(axis=1, keepdims=True)).max()
    np.testing.assert_allclose(out, expected, rtol=0, atol=2e-2 * spread)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(num_features=0), "num_features"),
        (dict(eps=0.0), "eps"),
        (dict(eps=float("nan")), "eps"),
        (dict(eps="1e-5"), "eps"),
    ],
)
def test_bad_constructor_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReversibleInstanceNorm(**{"num_features": C, **kwargs})


def test_bad_calls_raise_clear_errors():
    layer = _layer()
    x = _random((2, L, C))
    y, stats = layer.normalize(x)
    with pytest.raises(ValueError, match="rank 3"):
        layer(x[0])
    with pytest.raises(
        ValueError,
        match=r"num_features=3, but `inputs` has a different number of features; "
        r"received shape \(\d+, \d+, 4\)",
    ):
        layer(_random((2, L, 4)))
    with pytest.raises(ValueError, match="mode"):
        layer(x, mode="inverse")
    with pytest.raises(ValueError, match="at least one time step"):
        layer(np.zeros((2, 0, C), "float32"))
    with pytest.raises(TypeError, match="floating"):
        layer(np.zeros((2, L, C), "int32"))
    with pytest.raises(ValueError, match="only for mode='denorm'"):
        layer(x, mode="norm", stats=stats)
    with pytest.raises(ValueError, match="only for mode='norm'"):
        layer(y, mode="denorm", stats=stats, return_stats=True)
    with pytest.raises(ValueError, match=r"tuple \(center, stdev\)"):
        layer.denormalize(y, stats[0])
    with pytest.raises(ValueError, match=r"must have shape \(3, 1, 3\)"):
        layer.denormalize(_random((3, H, C)), stats)
    with pytest.raises(ValueError, match=r"must have shape"):
        layer.denormalize(y, (x, x))


def test_stats_as_nested_lists_work_and_unreadable_stats_raise_clearly():
    layer = _layer()
    x, y_hat = _random((2, L, C)), _random((2, H, C), seed=1)
    _, stats = layer.normalize(x)
    expected = layer.denormalize(y_hat, stats)
    as_lists = [s.numpy().tolist() for s in stats]
    np.testing.assert_allclose(layer.denormalize(y_hat, as_lists), expected, rtol=1e-6)
    message = r"`stats` center must be a \(batch, 1, 3\) array.*received None"
    with pytest.raises(ValueError, match=message):
        layer.denormalize(y_hat, (None, stats[1]))
    with pytest.raises(ValueError, match=r"`stats` stdev must be a \(batch, 1, 3\) array"):
        layer.denormalize(y_hat, (as_lists[0], [[1.0], [2.0, 3.0]]))
    with pytest.raises(TypeError, match="`stats` center must be floating.*received dtype string"):
        layer.denormalize(y_hat, (["a"], as_lists[1]))
    with pytest.raises(ValueError, match=r"expects `stats\[center\]` of rank 3"):
        layer.denormalize(y_hat, (1.0, as_lists[1]))


def test_stats_batch_mismatch_fails_at_run_time_when_unknown():
    layer = _layer()
    _, stats = layer.normalize(_random((1, L, C)))
    denorm = tf.function(
        layer.denormalize,
        input_signature=[tf.TensorSpec((None, H, C)), (tf.TensorSpec((None, 1, C)),) * 2],
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="batch size"):
        denorm(_random((2, H, C)), stats)


def test_config_roundtrip_keeps_every_argument():
    layer = ReversibleInstanceNorm(5, eps=1e-3, affine=False, subtract_last=True, name="revin")
    rebuilt = roundtrip.assert_config_roundtrip(layer)
    assert (rebuilt.num_features, rebuilt.eps, rebuilt.affine, rebuilt.subtract_last) == (
        5,
        1e-3,
        False,
        True,
    )
    rebuilt.build((None, None, 5))
    assert rebuilt.weights == []


# --- gradients as the reference's: the mean and the stdev detached, the last value not ---------


def _our_gradient(affine, subtract_last):
    """`(layer, x, wy, wo, forecast, d loss / d x)` of the layer in float64, for the loss
    `sum(wy * normalize(x)) + sum(wo * denormalize(forecast))`."""
    layer = _layer(affine, subtract_last, eps=1e-3, dtype="float64")
    x = _random((2, L, C), offset=3.0).astype(np.float64)
    rng = np.random.default_rng(7)
    wy, wo, forecast = (
        rng.normal(size=(2, L, C)),
        rng.normal(size=(2, H, C)),
        rng.normal(size=(2, H, C)),
    )
    with tf.GradientTape() as tape:
        xt = tf.constant(x)
        tape.watch(xt)
        y, stats = layer.normalize(xt)
        out = layer.denormalize(tf.constant(forecast), stats)
        loss = tf.reduce_sum(wy * y) + tf.reduce_sum(wo * out)
    return layer, x, wy, wo, forecast, tape.gradient(loss, xt).numpy()


def _reference_loss(x, x0, affine_weight, affine_bias, eps, subtract_last, forecast, wy, wo):
    """The reference's forward in float64 NumPy, its detached statistics taken from `x0`:
    `sum(wy * normalize(x)) + sum(wo * denormalize(forecast))`."""
    mean0 = x0.mean(axis=1, keepdims=True)
    stdev0 = np.sqrt(((x0 - mean0) ** 2).mean(axis=1, keepdims=True) + eps)
    center = x[:, -1:, :] if subtract_last else mean0  # the last value is not detached
    y = (x - center) / stdev0 * affine_weight + affine_bias
    out = (forecast - affine_bias) / (affine_weight + eps * eps) * stdev0 + center
    return np.sum(wy * y) + np.sum(wo * out)


@pytest.mark.parametrize("subtract_last", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_input_gradients_match_finite_differences_of_the_reference(affine, subtract_last):
    layer, x, wy, wo, forecast, gradient = _our_gradient(affine, subtract_last)
    weight, bias = _affine(layer)
    step, numeric = 1e-6, np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = [x.copy(), x.copy()]
        shifted[0][index] += step
        shifted[1][index] -= step
        losses = [
            _reference_loss(s, x, weight, bias, 1e-3, subtract_last, forecast, wy, wo)
            for s in shifted
        ]
        numeric[index] = (losses[0] - losses[1]) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-7)
    if subtract_last:  # the last value carries gradient: the reference does not detach it
        assert np.abs(gradient[:, -1]).max() > 1.0


@pytest.mark.parametrize("subtract_last", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_input_gradients_match_pytorch_autograd(affine, subtract_last):
    torch = reference.torch_or_skip(0)
    layer, x, wy, wo, forecast, gradient = _our_gradient(affine, subtract_last)
    weight, bias = (torch.tensor(np.broadcast_to(v, (C,)).copy()) for v in _affine(layer))
    # TSLib's layers/StandardNorm.py Normalize, written out in torch: what it detaches.
    xt = torch.tensor(x, requires_grad=True)
    mean = torch.mean(xt, dim=1, keepdim=True).detach()
    last = xt[:, -1, :].unsqueeze(1)
    stdev = torch.sqrt(torch.var(xt, dim=1, keepdim=True, unbiased=False) + 1e-3).detach()
    center = last if subtract_last else mean
    y = (xt - center) / stdev
    out = torch.tensor(forecast)
    if affine:
        y = y * weight + bias
        out = (out - bias) / (weight + 1e-3 * 1e-3)
    out = out * stdev + center
    (torch.sum(torch.tensor(wy) * y) + torch.sum(torch.tensor(wo) * out)).backward()
    np.testing.assert_allclose(gradient, xt.grad.numpy(), rtol=1e-10)
