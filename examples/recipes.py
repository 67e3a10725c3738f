"""What the authors' scripts pass per (model, file, horizon), and the published figures.

The data loader (protocol) a file gets, model sizes and training settings. No TensorFlow here:
`--help` reads these tables without waiting for it.
"""

import os

# TSLib's data set classes: Dataset_ETT_hour, Dataset_ETT_minute, Dataset_Custom.
PROTOCOLS = ("ETTh", "ETTm", "custom")

# run.py's defaults in the authors' repositories; the scripts override them per row below.
DEFAULT_SIZE = dict(
    d_model=512, n_heads=8, e_layers=2, d_layers=1, d_ff=2048, dropout=0.1, learning_rate=1e-4
)
# Per (model, data set, pred_len), the data set being the CSV's stem as the scripts' --data_path.
#   iTransformer: thuml/iTransformer scripts/multivariate_forecasting/ETT/iTransformer_ETTh1.sh
#     (the script sets no learning rate: run.py's default 1e-4 applies).
#   PatchTST, Transformer: thuml/Time-Series-Library scripts/long_term_forecast/ETT_script/
#     PatchTST_ETTh1.sh, Transformer_ETTh1.sh (e_layers 2, d_layers 1: the defaults).
SIZES = {
    ("itransformer", "ETTh1", 96): dict(d_model=256, d_ff=256),
    ("itransformer", "ETTh1", 192): dict(d_model=256, d_ff=256),
    ("itransformer", "ETTh1", 336): dict(d_model=512, d_ff=512),
    ("itransformer", "ETTh1", 720): dict(d_model=512, d_ff=512),
    ("patchtst", "ETTh1", 96): dict(e_layers=1, n_heads=2),
    ("patchtst", "ETTh1", 192): dict(e_layers=1, n_heads=8),
    ("patchtst", "ETTh1", 336): dict(e_layers=1, n_heads=8),
    ("patchtst", "ETTh1", 720): dict(e_layers=1, n_heads=16),
}
# Published test MSE / MAE (standardised data, features M, seq_len 96).
PUBLISHED_SOURCE = "iTransformer paper (Liu et al., ICLR 2024), full results, lookback 96"
PUBLISHED = {
    ("itransformer", "ETTh1", 96): (0.386, 0.405),
    ("itransformer", "ETTh1", 192): (0.441, 0.436),
    ("itransformer", "ETTh1", 336): (0.487, 0.458),
    ("itransformer", "ETTh1", 720): (0.503, 0.491),
}


def data_name(path):
    """The data set's name as the scripts' `--data_path` gives it: the file name's stem."""
    return os.path.splitext(os.path.basename(path))[0]


def model_size(model, data, pred_len, overrides):
    """The authors' size for (model, data, pred_len), then any flag given explicitly."""
    size = dict(DEFAULT_SIZE, **SIZES.get((model, data, pred_len), {}))
    size.update({key: value for key, value in overrides.items() if value is not None})
    return size


def protocol_for(path):
    """TSLib's data set class for a file name: 'ETTh' (ETTh*), 'ETTm' (ETTm*) or 'custom'."""
    name = os.path.basename(path)
    for protocol in ("ETTh", "ETTm"):
        if name.startswith(protocol):
            return protocol
    return "custom"
