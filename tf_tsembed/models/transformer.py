"""The vanilla Transformer (Vaswani et al., 2017) as Time-Series-Library's `models/Transformer.py`.

Encoder input: `DataEmbedding` (TokenEmbedding + time features + PositionalEmbedding) of the
`seq_len` input window; decoder input: `x_dec`, which TSLib's experiment makes the last
`label_len` input steps followed by `pred_len` zeros, embedded with its time features; an encoder
of full-attention layers and a decoder of causal self-attention + cross-attention layers, each
with a final LayerNorm; a linear projection to `c_out` series. No per-window normalisation.
"""

import tensorflow as tf

from tf_tsembed.data_embedding import DataEmbedding
from tf_tsembed.models.encoder import LAYER_NORM_EPSILON, DecoderLayer, encoder, torch_linear
from tf_tsembed.models.forecast_model import (
    ForecastConfig,
    ForecastModel,
    forecast_inputs,
    require,
)

keras = tf.keras


@keras.utils.register_keras_serializable(package="tf_tsembed")
class Transformer(ForecastModel):
    """TSLib's Transformer, `[x_enc, x_mark_enc, x_dec, x_mark_dec] -> (B, pred_len, c_out)`.

    Args:
        config: a `ForecastConfig` (or its dict); reads seq_len, label_len, pred_len, enc_in,
            dec_in, c_out, freq, d_model, n_heads, e_layers, d_layers, d_ff, dropout, activation.

    Example:

    >>> from tf_tsembed.models import ForecastConfig, Transformer
    >>> config = ForecastConfig(seq_len=24, label_len=12, pred_len=8, enc_in=3, dec_in=3,
    ...                         c_out=3, d_model=8, n_heads=2, d_ff=8, e_layers=1)
    >>> model = Transformer(config)
    >>> x = tf.ones((1, 24, 3)), tf.zeros((1, 24, 4)), tf.zeros((1, 20, 3)), tf.zeros((1, 20, 4))
    >>> model(list(x)).shape
    TensorShape([1, 8, 3])

    Reference: Vaswani et al., "Attention Is All You Need", NeurIPS 2017; Time-Series-Library
    `models/Transformer.py`.
    """

    def __init__(self, config, **kwargs):
        config = ForecastConfig.from_dict(config)
        require(config, "Transformer")
        inputs = forecast_inputs(config)
        kwargs.setdefault("name", "transformer")
        super().__init__(config, inputs, encoder_decoder(config, inputs), **kwargs)


def encoder_decoder(config, inputs, attention="full", distil=False, embeddings_first=False):
    """TSLib's Transformer and Informer graph on the four `inputs`: `(B, pred_len, c_out)`.

    `attention` and `config.factor` go to every encoder and decoder layer, `distil` to the
    encoder; `embeddings_first` creates the decoder embedding before the encoder (Informer's
    order of creation: Keras seeds the initializers in that order).
    """
    values, marks, decoder_values, decoder_marks = inputs
    sizes = dict(d_model=config.d_model, n_heads=config.n_heads, d_ff=config.d_ff)
    sizes.update(dropout=config.dropout, activation=config.activation)
    sizes.update(attention=attention, factor=config.factor)

    def embedding(series, name):
        return DataEmbedding(
            series,
            config.d_model,
            embed_type="timeF",
            freq=config.freq,
            dropout=config.dropout,
            name=name,
        )

    encoder_embedding = embedding(config.enc_in, "encoder_embedding")
    if embeddings_first:
        decoder_embedding = embedding(config.dec_in, "decoder_embedding")
    x = encoder(encoder_embedding(values, marks), e_layers=config.e_layers, distil=distil, **sizes)
    context = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="encoder_norm")(x)
    if not embeddings_first:
        decoder_embedding = embedding(config.dec_in, "decoder_embedding")
    y = decoder_embedding(decoder_values, decoder_marks)
    for index in range(config.d_layers):
        y = DecoderLayer(**sizes, name=f"decoder_layer_{index}")(y, context)
    y = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="decoder_norm")(y)
    forecast = torch_linear(config.c_out, config.d_model, name="projection")(y)
    return forecast[:, -config.pred_len :]
