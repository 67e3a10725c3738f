"""The main job's forecaster: RevIN, `DataEmbedding`, Informer's encoder (full attention), a
linear head; a `tf_tsembed.models.ForecastModel`, so `tf_tsembed.serving.export_forecaster`
serves it on raw values and timestamps.

Each input window is standardised per series by `ReversibleInstanceNorm` (affine), embedded by
`DataEmbedding` (circular token convolution + calendar marks, of `config.embed`, + sinusoid
position), encoded by `e_layers` of Time-Series-Library's post-norm encoder layers
(`tf_tsembed.models.encoder`, the same layers as the installed models), flattened and mapped to
`pred_len` steps of every series; RevIN is undone and every series returned, `(B, pred_len,
c_out)`, the target last (TSLib's 'MS' order). The main job trains on the target only
(`target_only`).
"""

import tensorflow as tf

from tf_tsembed import DataEmbedding, ReversibleInstanceNorm
from tf_tsembed.models.encoder import encoder, torch_linear
from tf_tsembed.models.forecast_model import ForecastConfig, ForecastModel, forecast_inputs

keras = tf.keras


@keras.utils.register_keras_serializable(package="examples")
class MainJobForecaster(ForecastModel):
    """TSLib's four inputs `[x_enc, x_mark_enc, x_dec, x_mark_dec]` -> `(B, pred_len, c_out)`.

    From `config`: seq_len, pred_len, enc_in (= dec_in = c_out, the series), freq, embed
    ('fixed' and 'learned' take int32 calendar marks, 'timeF' float time features), d_model,
    n_heads, e_layers, d_ff, dropout. The decoder inputs are accepted and unused.
    """

    def __init__(self, config, **kwargs):
        config = ForecastConfig.from_dict(config)
        if config.d_model % config.n_heads:
            raise ValueError(
                f"--d_model must be a multiple of --n_heads={config.n_heads}; got "
                f"d_model={config.d_model}."
            )
        if not config.c_out == config.dec_in == config.enc_in:
            raise ValueError(
                f"MainJobForecaster needs c_out and dec_in equal to enc_in={config.enc_in} (RevIN "
                f"undoes every input series); received c_out={config.c_out}, "
                f"dec_in={config.dec_in}."
            )
        kwargs.setdefault("name", "informer_encoder_forecaster")
        inputs = forecast_inputs(config)
        values, marks = inputs[:2]
        channels = config.enc_in
        revin = ReversibleInstanceNorm(channels, name="revin")
        normalized, stats = revin.normalize(values)
        x = DataEmbedding(
            channels,
            config.d_model,
            embed_type=config.embed,
            freq=config.freq,
            dropout=config.dropout,
            name="embedding",
        )(normalized, marks)
        x = encoder(
            x,
            e_layers=config.e_layers,
            d_model=config.d_model,
            n_heads=config.n_heads,
            d_ff=config.d_ff,
            dropout=config.dropout,
        )
        # Every channel is forecast in RevIN's normalised space, as RevIN undoes all of them.
        head = torch_linear(
            config.pred_len * channels, config.seq_len * config.d_model, name="head"
        )
        forecast = head(keras.layers.Flatten()(x))
        forecast = revin.denormalize(
            keras.layers.Reshape((config.pred_len, channels))(forecast), stats
        )
        super().__init__(config, inputs, forecast, **kwargs)


def target_only(model):
    """The model's last output series, `(B, pred_len)`: what the main job trains and scores (TSLib's
    'MS', `f_dim=-1`); it shares the model's weights."""
    return keras.Model(model.inputs, model.outputs[0][:, :, -1], name=f"{model.name}_target")
