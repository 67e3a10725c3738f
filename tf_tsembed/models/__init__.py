"""Forecasting models of Time-Series-Library, on tf_tsembed's layers: each a Functional model built
from one `ForecastConfig` and called as TSLib's `forward`, `[x_enc, x_mark_enc, x_dec,
x_mark_dec] -> (B, pred_len, c_out)`.

>>> from tf_tsembed.models import MODELS, ForecastConfig
>>> config = ForecastConfig(seq_len=32, label_len=16, pred_len=8, enc_in=3, dec_in=3, c_out=3,
...                         d_model=8, n_heads=2, d_ff=8, e_layers=1, top_k=2)
>>> sorted(name for name, model in MODELS.items() if model(config).output.shape == (None, 8, 3))
['Informer', 'PatchTST', 'TimesNet', 'Transformer', 'iTransformer']
"""

from tf_tsembed.models.forecast_model import ForecastConfig, ForecastModel
from tf_tsembed.models.informer import Informer
from tf_tsembed.models.itransformer import ITransformer
from tf_tsembed.models.patchtst import PatchTST
from tf_tsembed.models.timesnet import TimesNet
from tf_tsembed.models.transformer import Transformer

# TSLib's `--model` names.
MODELS = {
    "Informer": Informer,
    "iTransformer": ITransformer,
    "PatchTST": PatchTST,
    "TimesNet": TimesNet,
    "Transformer": Transformer,
}

__all__ = [
    "MODELS",
    "ForecastConfig",
    "ForecastModel",
    "Informer",
    "ITransformer",
    "PatchTST",
    "TimesNet",
    "Transformer",
]
