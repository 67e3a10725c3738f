"""iTransformer (Liu et al., ICLR 2024) on tf_tsembed's DataEmbeddingInverted and RevIN.

As the authors' `model/iTransformer.py` and TSLib's: each input window is standardised per series
(mean and population std + 1e-5, the statistics held constant for gradients); every series and
every time feature becomes one token (`DataEmbeddingInverted`); an encoder of full-attention
layers with a final LayerNorm mixes the tokens; a linear projector maps each token to `pred_len`
steps; the time-feature tokens are dropped and the standardisation undone.
"""

import tensorflow as tf

from tf_tsembed.data_embedding import DataEmbeddingInverted
from tf_tsembed.models.encoder import LAYER_NORM_EPSILON, encoder, torch_linear
from tf_tsembed.models.forecast_model import (
    ForecastConfig,
    ForecastModel,
    forecast_inputs,
    require,
)
from tf_tsembed.reversible_instance_norm import ReversibleInstanceNorm

keras = tf.keras


@keras.utils.register_keras_serializable(package="tf_tsembed")
class ITransformer(ForecastModel):
    """iTransformer, `[x_enc, x_mark_enc, x_dec, x_mark_dec] -> (B, pred_len, c_out)`; the
    decoder inputs are unused.

    Args:
        config: a `ForecastConfig` (or its dict); reads seq_len, pred_len, enc_in, c_out (equal
            to enc_in: one output per input series, as the reference), freq, d_model, n_heads,
            e_layers, d_ff, dropout, activation.

    Example:

    >>> from tf_tsembed.models import ForecastConfig, ITransformer
    >>> config = ForecastConfig(seq_len=24, label_len=12, pred_len=8, enc_in=3, dec_in=3,
    ...                         c_out=3, d_model=8, n_heads=2, d_ff=8, e_layers=1)
    >>> model = ITransformer(config)
    >>> x = tf.ones((1, 24, 3)), tf.zeros((1, 24, 4)), tf.zeros((1, 20, 3)), tf.zeros((1, 20, 4))
    >>> model(list(x)).shape
    TensorShape([1, 8, 3])

    Reference: Liu et al., "iTransformer: Inverted Transformers Are Effective for Time Series
    Forecasting", ICLR 2024; Time-Series-Library `models/iTransformer.py`.
    """

    def __init__(self, config, **kwargs):
        config = ForecastConfig.from_dict(config)
        require(config, "ITransformer", c_out="enc_in")
        inputs = forecast_inputs(config)
        values, marks = inputs[:2]
        # Without the affine map, RevIN is iTransformer's normalisation, its denorm the inverse.
        revin = ReversibleInstanceNorm(config.enc_in, eps=1e-5, affine=False, name="window_norm")
        normalized, stats = revin.normalize(values)
        tokens = DataEmbeddingInverted(
            config.seq_len, config.d_model, dropout=config.dropout, name="embedding"
        )(normalized, marks)
        x = encoder(
            tokens,
            e_layers=config.e_layers,
            d_model=config.d_model,
            n_heads=config.n_heads,
            d_ff=config.d_ff,
            dropout=config.dropout,
            activation=config.activation,
        )
        x = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="encoder_norm")(x)
        forecast = torch_linear(config.pred_len, config.d_model, name="projector")(x)
        forecast = keras.layers.Permute((2, 1))(forecast)[:, :, : config.enc_in]
        kwargs.setdefault("name", "itransformer")
        super().__init__(config, inputs, revin.denormalize(forecast, stats), **kwargs)
