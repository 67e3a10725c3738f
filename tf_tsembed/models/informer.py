"""Informer (Zhou et al., 2021) as Time-Series-Library's `models/Informer.py`.

The Transformer's layout (`transformer.encoder_decoder`: timeF DataEmbeddings, an encoder with a
final LayerNorm, a decoder of self- and cross-attention layers with a final LayerNorm and a
projection to `c_out`, the last `pred_len` rows) with TSLib's Informer differences: every
attention is a ProbAttention (`config.factor`): the encoder's, the decoder's masked
self-attention and, unlike Informer2020, the decoder's cross-attention; each reads its context
heads-first ("mixed"); and, when `config.distil`, a distilling ConvLayer between encoder layers
(L -> floor((L + 1) / 2) + 1).

ProbAttention draws its sampled keys at every call, in inference too, as TSLib does: the
forecast is stochastic exactly as TSLib's (reproducible under `keras.utils.set_random_seed`, or
fixed by setting each ProbAttention's `sample_indices`).
"""

import tensorflow as tf

from tf_tsembed.models.encoder import ProbAttention
from tf_tsembed.models.forecast_model import (
    ForecastConfig,
    ForecastModel,
    forecast_inputs,
    require,
)
from tf_tsembed.models.transformer import encoder_decoder

keras = tf.keras


@keras.utils.register_keras_serializable(package="tf_tsembed")
class Informer(ForecastModel):
    """TSLib's Informer, `[x_enc, x_mark_enc, x_dec, x_mark_dec] -> (B, pred_len, c_out)`.

    Args:
        config: a `ForecastConfig` (or its dict); reads seq_len, label_len, pred_len, enc_in,
            dec_in, c_out, freq, d_model, n_heads, e_layers, d_layers, d_ff, factor, distil,
            dropout, activation. The lengths must be at least 2 (ProbAttention's sample).

    Example:

    >>> from tf_tsembed.models import ForecastConfig, Informer
    >>> config = ForecastConfig(seq_len=24, label_len=12, pred_len=8, enc_in=3, dec_in=3,
    ...                         c_out=3, d_model=8, n_heads=2, d_ff=8, e_layers=2)
    >>> model = Informer(config)
    >>> x = tf.ones((1, 24, 3)), tf.zeros((1, 24, 4)), tf.zeros((1, 20, 3)), tf.zeros((1, 20, 4))
    >>> model(list(x)).shape
    TensorShape([1, 8, 3])
    >>> model.get_layer("distil_conv_0").output.shape  # 24 steps distilled to 13
    (None, 13, 8)

    Reference: Zhou et al., "Informer: Beyond Efficient Transformer for Long Sequence Time-Series
    Forecasting", AAAI 2021; Time-Series-Library `models/Informer.py`.
    """

    def __init__(self, config, **kwargs):
        config = ForecastConfig.from_dict(config)
        require(config, "Informer")
        inputs = forecast_inputs(config)
        outputs = encoder_decoder(
            config, inputs, attention="prob", distil=config.distil, embeddings_first=True
        )
        kwargs.setdefault("name", "informer")
        super().__init__(config, inputs, outputs, **kwargs)

    def prob_attentions(self):
        """The ProbAttention layers in TSLib's order of drawing: encoder layers 0.., then each
        decoder layer's self then cross attention (`benchmarks.torch_tslib`'s module order)."""
        config = self.forecast_config
        found = [self.get_layer(f"encoder_layer_{i}").attention for i in range(config.e_layers)]
        for j in range(config.d_layers):
            layer = self.get_layer(f"decoder_layer_{j}")
            found += [layer.self_attention, layer.cross_attention]
        assert all(isinstance(layer, ProbAttention) for layer in found)
        return found
