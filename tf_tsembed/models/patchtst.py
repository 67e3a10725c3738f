"""PatchTST (Nie et al., ICLR 2023) as Time-Series-Library's `models/PatchTST.py` writes it.

Each input window is standardised per series (RevIN without affine map); every series is cut
into patches of `patch_len` every `stride` steps after `stride` copies of its last value
(`PatchEmbedding`, fixed sinusoidal positions, no bias); the series are encoded independently
by full-attention layers with a final BatchNorm over d_model; a flatten head maps each series'
`(d_model, patches)` to `pred_len` steps; the standardisation is undone.
"""

import tensorflow as tf

from tf_tsembed.models.encoder import encoder, torch_linear
from tf_tsembed.models.forecast_model import (
    ForecastConfig,
    ForecastModel,
    forecast_inputs,
    require,
)
from tf_tsembed.patch_embedding import PatchEmbedding
from tf_tsembed.reversible_instance_norm import ReversibleInstanceNorm

keras = tf.keras


def num_patches(seq_len, patch_len=16, stride=8):
    """Patches per series with `padding = stride`, as TSLib's head size `int((L - p) / s + 2)`."""
    return int((seq_len - patch_len) / stride + 2)


@keras.utils.register_keras_serializable(package="tf_tsembed")
class FlattenHead(keras.layers.Layer):
    """TSLib's FlattenHead: `(B * N, patches, d_model)` -> `(B, pred_len, N)`, each series'
    `(d_model, patches)` flattened d_model-major and mapped by one Linear, then dropout."""

    def __init__(self, num_series, pred_len, dropout, **kwargs):
        super().__init__(**kwargs)
        self.num_series, self.pred_len, self.dropout = num_series, pred_len, dropout
        self.head_dropout = keras.layers.Dropout(dropout, name="head_dropout")

    def build(self, input_shape):
        patches, d_model = input_shape[1], input_shape[2]
        self.linear = torch_linear(self.pred_len, d_model * patches, name="linear")
        self.linear.build((None, self.num_series, d_model * patches))

    def call(self, x, training=None):
        patches, d_model = x.shape[1], x.shape[2]
        x = tf.reshape(x, (-1, self.num_series, patches, d_model))
        x = tf.reshape(tf.transpose(x, (0, 1, 3, 2)), (-1, self.num_series, d_model * patches))
        forecast = self.head_dropout(self.linear(x), training=training)  # (B, N, pred_len)
        return tf.transpose(forecast, (0, 2, 1))

    def compute_output_shape(self, input_shape):
        return (None, self.pred_len, self.num_series)

    def get_config(self):
        config = super().get_config()
        config.update(num_series=self.num_series, pred_len=self.pred_len, dropout=self.dropout)
        return config


@keras.utils.register_keras_serializable(package="tf_tsembed")
class PatchTST(ForecastModel):
    """TSLib's PatchTST, `[x_enc, x_mark_enc, x_dec, x_mark_dec] -> (B, pred_len, c_out)`; only
    `x_enc` is read.

    Args:
        config: a `ForecastConfig` (or its dict); reads seq_len, pred_len, enc_in, c_out (equal
            to enc_in), d_model, n_heads, e_layers, d_ff, dropout, activation.
        patch_len, stride: the patches (TSLib's constructor defaults 16 and 8; padding = stride).

    Example:

    >>> from tf_tsembed.models import ForecastConfig, PatchTST
    >>> config = ForecastConfig(seq_len=32, label_len=16, pred_len=8, enc_in=3, dec_in=3,
    ...                         c_out=3, d_model=8, n_heads=2, d_ff=8, e_layers=1)
    >>> model = PatchTST(config)
    >>> x = tf.ones((2, 32, 3)), tf.zeros((2, 32, 4)), tf.zeros((2, 24, 3)), tf.zeros((2, 24, 4))
    >>> model(list(x)).shape
    TensorShape([2, 8, 3])

    Reference: Nie et al., "A Time Series is Worth 64 Words: Long-term Forecasting with
    Transformers", ICLR 2023; Time-Series-Library `models/PatchTST.py`.
    """

    def __init__(self, config, patch_len=16, stride=8, **kwargs):
        config = ForecastConfig.from_dict(config)
        require(config, "PatchTST", c_out="enc_in")
        if num_patches(config.seq_len, patch_len, stride) < 1:
            raise ValueError(
                f"PatchTST needs seq_len + stride >= patch_len; received seq_len="
                f"{config.seq_len}, patch_len={patch_len}, stride={stride}."
            )
        inputs = forecast_inputs(config)
        revin = ReversibleInstanceNorm(config.enc_in, eps=1e-5, affine=False, name="window_norm")
        normalized, stats = revin.normalize(inputs[0])
        tokens, _ = PatchEmbedding(
            config.d_model,
            patch_len,
            stride,
            padding=stride,
            dropout=config.dropout,
            name="patch_embedding",
        )(keras.layers.Permute((2, 1))(normalized))  # (B * N, P, d_model)
        x = encoder(
            tokens,
            e_layers=config.e_layers,
            d_model=config.d_model,
            n_heads=config.n_heads,
            d_ff=config.d_ff,
            dropout=config.dropout,
            activation=config.activation,
        )
        # PyTorch's BatchNorm1d(d_model) on (B * N, d_model, P): statistics over batch and
        # patches, momentum 0.1 (Keras counts the complement), epsilon 1e-5.
        x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="encoder_norm")(x)
        forecast = FlattenHead(config.enc_in, config.pred_len, config.dropout, name="head")(x)
        kwargs.setdefault("name", "patchtst")
        options = dict(patch_len=patch_len, stride=stride)
        super().__init__(config, inputs, revin.denormalize(forecast, stats), options, **kwargs)
