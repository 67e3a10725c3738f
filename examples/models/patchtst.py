"""PatchTST (Nie et al., ICLR 2023) as Time-Series-Library's `models/PatchTST.py` writes it.

Each input window is standardised per series (RevIN without affine map); every series is cut
into patches of `patch_len` every `stride` steps after `padding` copies of its last value
(`PatchEmbedding`, fixed sinusoidal positions, no bias); the series are encoded independently
by full-attention layers with a final BatchNorm over d_model; a flatten head maps each series'
`(d_model, patches)` to `pred_len` steps; the standardisation is undone.
"""

import tensorflow as tf

from examples.models.encoder import encoder, torch_linear
from tf_tsembed import PatchEmbedding, ReversibleInstanceNorm

keras = tf.keras
ops = keras.ops

PATCH_LEN, STRIDE = 16, 8


def num_patches(seq_len, patch_len=PATCH_LEN, stride=STRIDE):
    """Patches per series with `padding = stride`, as TSLib's head size `int((L - p) / s + 2)`."""
    return int((seq_len - patch_len) / stride + 2)


def build(
    seq_len, pred_len, num_series, *, d_model, n_heads, e_layers, d_ff, dropout, activation="gelu"
):
    """`[values (B, seq_len, N)] -> (B, pred_len, N)`."""
    values = keras.Input((seq_len, num_series), name="values")
    revin = ReversibleInstanceNorm(num_series, eps=1e-5, affine=False, name="window_norm")
    normalized, stats = revin.normalize(values)
    tokens, _ = PatchEmbedding(
        d_model, PATCH_LEN, STRIDE, padding=STRIDE, dropout=dropout, name="patch_embedding"
    )(keras.layers.Permute((2, 1))(normalized))  # (B * N, P, d_model)
    x = encoder(
        tokens,
        e_layers=e_layers,
        d_model=d_model,
        n_heads=n_heads,
        d_ff=d_ff,
        dropout=dropout,
        activation=activation,
    )
    # PyTorch's BatchNorm1d(d_model) on (B * N, d_model, P): statistics over batch and patches,
    # running averages updated with momentum 0.1 (Keras counts the complement), epsilon 1e-5.
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="encoder_norm")(x)
    patches = num_patches(seq_len)
    x = ops.reshape(x, (-1, num_series, patches, d_model))
    x = ops.reshape(ops.transpose(x, (0, 1, 3, 2)), (-1, num_series, d_model * patches))
    forecast = torch_linear(pred_len, d_model * patches, name="head")(x)
    forecast = keras.layers.Dropout(dropout, name="head_dropout")(forecast)  # (B, N, pred_len)
    forecast = keras.layers.Permute((2, 1))(forecast)
    return keras.Model([values], revin.denormalize(forecast, stats), name="patchtst")
