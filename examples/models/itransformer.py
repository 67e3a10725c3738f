"""iTransformer (Liu et al., ICLR 2024) on tf_tsembed's DataEmbeddingInverted and RevIN.

As the authors' `model/iTransformer.py`: each input window is standardised per series (mean and
population std + 1e-5, the statistics held constant for gradients); every series and every time
feature becomes one token (`DataEmbeddingInverted`); an encoder of full-attention layers with a
final LayerNorm mixes the tokens; a linear projector maps each token to `pred_len` steps; the
time-feature tokens are dropped and the standardisation undone.
"""

import tensorflow as tf

from examples.models.encoder import LAYER_NORM_EPSILON, encoder, torch_linear
from tf_tsembed import DataEmbeddingInverted, ReversibleInstanceNorm

keras = tf.keras


def build(
    seq_len,
    pred_len,
    num_series,
    num_time_features,
    *,
    d_model,
    n_heads,
    e_layers,
    d_ff,
    dropout,
    activation="gelu",
):
    """`(values (B, seq_len, N), time features (B, seq_len, F)) -> (B, pred_len, N)`."""
    values = keras.Input((seq_len, num_series), name="values")
    marks = keras.Input((seq_len, num_time_features), name="time_features")
    # Without the affine map, RevIN is iTransformer's normalisation, its denorm the exact inverse.
    revin = ReversibleInstanceNorm(num_series, eps=1e-5, affine=False, name="window_norm")
    normalized, stats = revin.normalize(values)
    tokens = DataEmbeddingInverted(seq_len, d_model, dropout=dropout, name="embedding")(
        normalized, marks
    )
    x = encoder(
        tokens,
        e_layers=e_layers,
        d_model=d_model,
        n_heads=n_heads,
        d_ff=d_ff,
        dropout=dropout,
        activation=activation,
    )
    x = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="encoder_norm")(x)
    forecast = torch_linear(pred_len, d_model, name="projector")(x)  # (B, N + F, pred_len)
    forecast = keras.layers.Permute((2, 1))(forecast)[:, :, :num_series]
    return keras.Model([values, marks], revin.denormalize(forecast, stats), name="itransformer")
