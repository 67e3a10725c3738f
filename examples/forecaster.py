"""The main job's forecaster: RevIN, `DataEmbedding`, Informer's encoder (full attention), a
linear head.

Each input window is standardised per series by `ReversibleInstanceNorm` (affine), embedded by
`DataEmbedding` (circular token convolution + calendar marks + sinusoid position), encoded by
`e_layers` of Time-Series-Library's post-norm encoder layers (`tf_tsembed.models.encoder`, the
same layers as the installed models), flattened and mapped to `pred_len` steps of every series;
RevIN is undone and the target series returned.
"""

import tensorflow as tf

from tf_tsembed import DataEmbedding, ReversibleInstanceNorm
from tf_tsembed.models.encoder import encoder, torch_linear

keras = tf.keras


def build(
    seq_len,
    pred_len,
    num_channels,
    num_marks,
    target_index,
    *,
    d_model=32,
    n_heads=4,
    e_layers=2,
    d_ff=64,
    dropout=0.1,
    embed_type="fixed",
    freq="h",
):
    """`(values (B, seq_len, C), marks (B, seq_len, M)) -> (B, pred_len)`, the target series."""
    if d_model % n_heads:
        raise ValueError(
            f"--d_model must be a multiple of --n_heads={n_heads}; got d_model={d_model}."
        )
    values = keras.Input((seq_len, num_channels), name="values")
    marks = keras.Input(
        (seq_len, num_marks), dtype="float32" if embed_type == "timeF" else "int32", name="marks"
    )
    revin = ReversibleInstanceNorm(num_channels, name="revin")
    normalized, stats = revin.normalize(values)
    x = DataEmbedding(
        num_channels, d_model, embed_type=embed_type, freq=freq, dropout=dropout, name="embedding"
    )(normalized, marks)
    x = encoder(x, e_layers=e_layers, d_model=d_model, n_heads=n_heads, d_ff=d_ff, dropout=dropout)
    # Every channel is forecast in RevIN's normalised space, as RevIN undoes all of them; only the
    # target is returned and trained on.
    head = torch_linear(pred_len * num_channels, seq_len * d_model, name="head")
    forecast = head(keras.layers.Flatten()(x))
    forecast = revin.denormalize(keras.layers.Reshape((pred_len, num_channels))(forecast), stats)
    return keras.Model(
        [values, marks], forecast[:, :, target_index], name="informer_encoder_forecaster"
    )
