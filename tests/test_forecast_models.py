"""tf_tsembed.models as Keras models: TSLib's four inputs, the config and `.keras` round trips,
registration, and the refusals of ForecastConfig. Runs under legacy tf_keras too."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tf_tsembed.models import MODELS, ForecastConfig, TimesNet

keras = tf.keras
CONFIG = ForecastConfig(
    seq_len=24, label_len=12, pred_len=8, enc_in=3, dec_in=3, c_out=3, d_model=8, n_heads=2,
    e_layers=2, d_layers=1, d_ff=12, top_k=2, num_kernels=2, factor=1,
)  # fmt: skip
READS_DECODER = ("Transformer", "Informer")


def _inputs(config, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    decoder = config.label_len + config.pred_len
    return [
        rng.normal(size=(batch, config.seq_len, config.enc_in)).astype("float32"),
        rng.uniform(-0.5, 0.5, (batch, config.seq_len, 4)).astype("float32"),
        rng.normal(size=(batch, decoder, config.dec_in)).astype("float32"),
        rng.uniform(-0.5, 0.5, (batch, decoder, 4)).astype("float32"),
    ]


def _forecast(model, inputs):
    """Inference; Informer's ProbAttention samples drawn once, then fixed (TSLib's draw too)."""
    for attention in getattr(model, "prob_attentions", list)():
        if attention.sample_indices is None:
            model(inputs, training=False)
            attention.sample_indices = attention.last_sample.numpy()
    return model(inputs, training=False).numpy()


@pytest.fixture(scope="module", params=sorted(MODELS))
def built(request):
    keras.utils.set_random_seed(0)
    return request.param, MODELS[request.param](CONFIG)


def test_forward_is_tslibs_signature(built):
    name, model = built
    assert [tuple(i.shape) for i in model.inputs] == [
        (None, 24, 3), (None, 24, 4), (None, 20, 3), (None, 20, 4),
    ]  # fmt: skip
    inputs = _inputs(CONFIG)
    out = _forecast(model, inputs)
    assert out.shape == (2, 8, 3) and np.all(np.isfinite(out))
    moved = inputs[:2] + [inputs[2] + 1.0, inputs[3]]
    # x_dec is read by the encoder-decoder models only; the others accept it unused.
    assert np.allclose(_forecast(model, moved), out) == (name not in READS_DECODER)
    assert keras.utils.get_registered_object(f"tf_tsembed>{type(model).__name__}") is type(model)


def test_config_and_keras_file_round_trip(built, tmp_path):
    name, model = built
    config = json.loads(json.dumps(model.get_config()))
    rebuilt = type(model).from_config(config)
    assert rebuilt.forecast_config == CONFIG and rebuilt.get_config() == model.get_config()
    inputs = _inputs(CONFIG, seed=1)
    expected = _forecast(model, inputs)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded) is type(model) and reloaded.forecast_config == CONFIG
    for mine, theirs in zip(
        getattr(model, "prob_attentions", list)(), getattr(reloaded, "prob_attentions", list)()
    ):
        theirs.sample_indices = mine.sample_indices
    np.testing.assert_allclose(_forecast(reloaded, inputs), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(d_model=True), "`d_model` must be a positive integer; received d_model=True"),
        (dict(seq_len=96.0), "`seq_len` must be a positive integer; received seq_len=96.0"),
        (dict(e_layers=0), "`e_layers` must be a positive integer; received e_layers=0"),
        (dict(label_len=-1), "`label_len` must be a non-negative integer"),
        (dict(seq_len=24, label_len=48), "`label_len` must be at most seq_len=24"),
        (dict(dropout=1.0), r"`dropout` must be a float in \[0, 1\); received dropout=1.0"),
        (dict(embed="fix"), "`embed` must be one of"),
        (dict(activation="tanh"), "`activation` must be one of"),
        (dict(freq="fortnight"), "freq must be"),
        (dict(distil="yes"), "`distil` must be a bool"),
    ],
)
def test_config_refusals_name_the_field(fields, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ForecastConfig(**fields)


def test_config_from_a_dict_refuses_unknown_fields_and_other_types():
    assert ForecastConfig.from_dict({"seq_len": 48}) == ForecastConfig(seq_len=48)
    with pytest.raises(ValueError, match=r"Unknown ForecastConfig fields \['sequence_length'\]"):
        ForecastConfig.from_dict({"sequence_length": 48})
    with pytest.raises(TypeError, match="`config` must be a ForecastConfig or a dict"):
        TimesNet([96, 96])


def test_models_refuse_what_they_do_not_implement():
    with pytest.raises(
        ValueError, match="TimesNet needs c_out equal to enc_in=3; received c_out=1"
    ):
        TimesNet(ForecastConfig(enc_in=3, dec_in=3, c_out=1, d_model=8, d_ff=8))
    for model_class in MODELS.values():
        with pytest.raises(ValueError, match="implements embed='timeF' only"):
            model_class(ForecastConfig(embed="fixed", d_model=8, n_heads=2, d_ff=8))


def test_the_converter_maps_keras_3_variables_and_refuses_legacy_ones():
    from tf_tsembed import tslib

    flags = dict(CONFIG.to_dict(), model="Transformer")
    state = {
        key: np.zeros(shape, "float32") for key, shape in tslib.checkpoint_shapes(flags).items()
    }
    if keras.__name__.startswith("tf_keras"):
        with pytest.raises(RuntimeError, match="needs Keras 3"):
            tslib.load_checkpoint(state, **flags)
    else:
        assert tslib.load_checkpoint(state, **flags).forecast_config == CONFIG
