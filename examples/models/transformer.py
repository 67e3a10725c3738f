"""The vanilla Transformer (Vaswani et al., 2017) as Time-Series-Library's `models/Transformer.py`.

Encoder input: `DataEmbedding` (TokenEmbedding + time features + PositionalEmbedding) of the
`seq_len` input window; decoder input: the last `label_len` input steps followed by `pred_len`
zeros, embedded with the future time features; an encoder of full-attention layers and a decoder
of causal self-attention + cross-attention layers, each with a final LayerNorm; a linear
projection to the series. No per-window normalisation, as in TSLib.
"""

import tensorflow as tf

from examples import recipes
from examples.models.encoder import LAYER_NORM_EPSILON, DecoderLayer, encoder, torch_linear
from tf_tsembed import DataEmbedding

keras = tf.keras
ops = keras.ops


def build(
    seq_len,
    pred_len,
    num_series,
    num_time_features,
    freq,
    *,
    d_model,
    n_heads,
    e_layers,
    d_layers,
    d_ff,
    dropout,
    label_len=recipes.LABEL_LEN,
    activation="gelu",
):
    """`[values (B, seq_len, N), time features (B, seq_len, F), decoder time features
    (B, label_len + pred_len, F)] -> (B, pred_len, N)`."""
    if not 0 <= label_len <= seq_len:
        raise ValueError(f"label_len must be in [0, seq_len={seq_len}]; got {label_len}.")
    values = keras.Input((seq_len, num_series), name="values")
    marks = keras.Input((seq_len, num_time_features), name="time_features")
    decoder_marks = keras.Input(
        (label_len + pred_len, num_time_features), name="decoder_time_features"
    )
    x = DataEmbedding(
        num_series,
        d_model,
        embed_type="timeF",
        freq=freq,
        dropout=dropout,
        name="encoder_embedding",
    )(values, marks)
    x = encoder(
        x,
        e_layers=e_layers,
        d_model=d_model,
        n_heads=n_heads,
        d_ff=d_ff,
        dropout=dropout,
        activation=activation,
    )
    context = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="encoder_norm")(x)
    # TSLib's dec_inp: the known last label_len steps, then zeros where the forecast goes.
    zeros = ops.repeat(ops.zeros_like(values[:, :1]), pred_len, axis=1)
    start = ops.concatenate([values[:, seq_len - label_len :], zeros], axis=1)
    y = DataEmbedding(
        num_series,
        d_model,
        embed_type="timeF",
        freq=freq,
        dropout=dropout,
        name="decoder_embedding",
    )(start, decoder_marks)
    for index in range(d_layers):
        y = DecoderLayer(
            d_model, n_heads, d_ff, dropout, activation, name=f"decoder_layer_{index}"
        )(y, context)
    y = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="decoder_norm")(y)
    forecast = torch_linear(num_series, d_model, name="projection")(y)
    return keras.Model([values, marks, decoder_marks], forecast[:, -pred_len:], name="transformer")
