"""What the authors' scripts pass per (model, file, horizon), and the published figures.

The data loader (protocol) a file gets, model sizes and training settings. No TensorFlow here:
`--help` reads these tables without waiting for it.
"""

import dataclasses
import os

# TSLib's data set classes: Dataset_ETT_hour, Dataset_ETT_minute, Dataset_Custom. Their home is
# tf_tsembed.tslib_data.PROTOCOLS (with the splits); restated here for --help, which imports no
# TensorFlow (the package does); tests/test_data.py checks the two agree.
PROTOCOLS = ("ETTh", "ETTm", "custom")
# The defaults of the scripts' run.py (thuml/Time-Series-Library and thuml/iTransformer agree);
# every script row below overrides some of them.
DEFAULTS = dict(
    d_model=512,
    n_heads=8,
    e_layers=2,
    d_layers=1,
    d_ff=2048,
    dropout=0.1,
    learning_rate=1e-4,
    batch_size=32,
    epochs=10,
    top_k=5,
)
# No script passes --freq: every file gets run.py's 'h' (4 time features), also the 15- and
# 10-minute files and exchange_rate's daily rows.
SCRIPT_FREQ = "h"
LABEL_LEN = 48  # every TSLib script: the Transformer's decoder starts from the last 48 input steps
# The examples' model names -> TSLib's --model names (tf_tsembed.models.MODELS).
TSLIB_MODEL_NAMES = {
    "timesnet": "TimesNet",
    "itransformer": "iTransformer",
    "patchtst": "PatchTST",
    "transformer": "Transformer",
}


@dataclasses.dataclass(frozen=True)
class TSLibVersion:
    """How a version of TSLib batches windows and pads TimesNet (`--tslib_version`).

    `drop_last`: training and validation drop their last incomplete batch (and so need one
    whole batch); `shuffle_validation`; `test_batch_size`: 1, or None for the training batch
    size; `timesnet_padding`: 'last_rows' or 'zeros'.
    """

    name: str
    drop_last: bool
    shuffle_validation: bool
    test_batch_size: int | None
    timesnet_padding: str

    def test_batch(self, batch_size):
        return self.test_batch_size or batch_size


# 2023: TSLib as first published (commit e08ddc00, behind the published figures); 2025: today.
TSLIB_VERSIONS = {
    "2023": TSLibVersion("2023", True, True, 1, "last_rows"),
    "2025": TSLibVersion("2025", False, False, None, "zeros"),
}
# Per (model, file stem as the scripts' --data_path, pred_len): what the script sets beyond
# DEFAULTS. Every script passes seq_len 96 and features M. The vanilla Transformer's ETTh1
# script sets only defaults (e_layers 2, d_layers 1), so it has no rows here.
SCRIPTS = {
    # iTransformer: thuml/iTransformer scripts/multivariate_forecasting/{ETT,Exchange,Weather,ECL,
    # Traffic}/*.sh.
    ("itransformer", "ETTh1", 96): dict(d_model=256, d_ff=256),
    ("itransformer", "ETTh1", 192): dict(d_model=256, d_ff=256),
    ("itransformer", "ETTh1", 336): dict(d_ff=512),
    ("itransformer", "ETTh1", 720): dict(d_ff=512),
    ("itransformer", "ETTh2", 96): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTh2", 192): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTh2", 336): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTh2", 720): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTm1", 96): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTm1", 192): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTm1", 336): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTm1", 720): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTm2", 96): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTm2", 192): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTm2", 336): dict(d_model=128, d_ff=128),
    ("itransformer", "ETTm2", 720): dict(d_model=128, d_ff=128),
    ("itransformer", "exchange_rate", 96): dict(d_model=128, d_ff=128),
    ("itransformer", "exchange_rate", 192): dict(d_model=128, d_ff=128),
    ("itransformer", "exchange_rate", 336): dict(d_model=128, d_ff=128, epochs=1),
    ("itransformer", "exchange_rate", 720): dict(d_model=128, d_ff=128),
    ("itransformer", "weather", 96): dict(e_layers=3, d_ff=512),
    ("itransformer", "weather", 192): dict(e_layers=3, d_ff=512),
    ("itransformer", "weather", 336): dict(e_layers=3, d_ff=512),
    ("itransformer", "weather", 720): dict(e_layers=3, d_ff=512),
    ("itransformer", "electricity", 96): dict(
        e_layers=3, d_ff=512, learning_rate=0.0005, batch_size=16
    ),
    ("itransformer", "electricity", 192): dict(
        e_layers=3, d_ff=512, learning_rate=0.0005, batch_size=16
    ),
    ("itransformer", "electricity", 336): dict(
        e_layers=3, d_ff=512, learning_rate=0.0005, batch_size=16
    ),
    ("itransformer", "electricity", 720): dict(
        e_layers=3, d_ff=512, learning_rate=0.0005, batch_size=16
    ),
    ("itransformer", "traffic", 96): dict(e_layers=4, d_ff=512, learning_rate=0.001, batch_size=16),
    ("itransformer", "traffic", 192): dict(
        e_layers=4, d_ff=512, learning_rate=0.001, batch_size=16
    ),
    ("itransformer", "traffic", 336): dict(
        e_layers=4, d_ff=512, learning_rate=0.001, batch_size=16
    ),
    ("itransformer", "traffic", 720): dict(
        e_layers=4, d_ff=512, learning_rate=0.001, batch_size=16
    ),
    # PatchTST: thuml/Time-Series-Library scripts/long_term_forecast/*_script/PatchTST*.sh.
    ("patchtst", "ETTh1", 96): dict(n_heads=2, e_layers=1),
    ("patchtst", "ETTh1", 192): dict(e_layers=1),
    ("patchtst", "ETTh1", 336): dict(e_layers=1),
    ("patchtst", "ETTh1", 720): dict(n_heads=16, e_layers=1),
    ("patchtst", "ETTh2", 96): dict(n_heads=4, e_layers=3),
    ("patchtst", "ETTh2", 192): dict(n_heads=4, e_layers=3),
    ("patchtst", "ETTh2", 336): dict(n_heads=4, e_layers=3),
    ("patchtst", "ETTh2", 720): dict(n_heads=4, e_layers=3),
    ("patchtst", "ETTm1", 96): dict(n_heads=2, e_layers=1),
    ("patchtst", "ETTm1", 192): dict(n_heads=2, e_layers=3, batch_size=128),
    ("patchtst", "ETTm1", 336): dict(n_heads=4, e_layers=1, batch_size=128),
    ("patchtst", "ETTm1", 720): dict(n_heads=4, e_layers=3, batch_size=128),
    ("patchtst", "ETTm2", 96): dict(n_heads=16, e_layers=3),
    ("patchtst", "ETTm2", 192): dict(n_heads=2, e_layers=3, batch_size=128),
    ("patchtst", "ETTm2", 336): dict(n_heads=4, e_layers=1),
    ("patchtst", "ETTm2", 720): dict(n_heads=4, e_layers=3, batch_size=128),
    ("patchtst", "exchange_rate", 96): dict(),
    ("patchtst", "exchange_rate", 192): dict(),
    ("patchtst", "exchange_rate", 336): dict(epochs=1),
    ("patchtst", "exchange_rate", 720): dict(),
    ("patchtst", "weather", 96): dict(n_heads=4, epochs=3),
    ("patchtst", "weather", 192): dict(n_heads=16, epochs=3),
    ("patchtst", "weather", 336): dict(n_heads=4, batch_size=128, epochs=3),
    ("patchtst", "weather", 720): dict(n_heads=4, batch_size=128, epochs=3),
    ("patchtst", "electricity", 96): dict(batch_size=16),
    ("patchtst", "electricity", 192): dict(batch_size=16),
    ("patchtst", "electricity", 336): dict(batch_size=16),
    ("patchtst", "electricity", 720): dict(batch_size=16),
    ("patchtst", "traffic", 96): dict(d_ff=512, batch_size=4),
    ("patchtst", "traffic", 192): dict(d_ff=512, batch_size=4),
    ("patchtst", "traffic", 336): dict(d_ff=512, batch_size=4),
    ("patchtst", "traffic", 720): dict(d_ff=512, batch_size=4),
    # TimesNet: thuml/Time-Series-Library scripts/long_term_forecast/*_script/TimesNet*.sh.
    ("timesnet", "ETTh1", 96): dict(d_model=16, d_ff=32),
    ("timesnet", "ETTh1", 192): dict(d_model=16, d_ff=32),
    ("timesnet", "ETTh1", 336): dict(d_model=16, d_ff=32),
    ("timesnet", "ETTh1", 720): dict(d_model=16, d_ff=32),
    ("timesnet", "ETTh2", 96): dict(d_model=32, d_ff=32),
    ("timesnet", "ETTh2", 192): dict(d_model=32, d_ff=32),
    ("timesnet", "ETTh2", 336): dict(d_model=32, d_ff=32),
    ("timesnet", "ETTh2", 720): dict(d_model=32, d_ff=32),
    ("timesnet", "ETTm1", 96): dict(d_model=64, d_ff=64),
    ("timesnet", "ETTm1", 192): dict(d_model=64, d_ff=64),
    ("timesnet", "ETTm1", 336): dict(d_model=16, d_ff=32, epochs=3),
    ("timesnet", "ETTm1", 720): dict(d_model=16, d_ff=32),
    ("timesnet", "ETTm2", 96): dict(d_model=32, d_ff=32),
    ("timesnet", "ETTm2", 192): dict(d_model=32, d_ff=32, epochs=1),
    ("timesnet", "ETTm2", 336): dict(d_model=32, d_ff=32),
    ("timesnet", "ETTm2", 720): dict(d_model=16, d_ff=32, epochs=1),
    ("timesnet", "exchange_rate", 96): dict(d_model=64, d_ff=64),
    ("timesnet", "exchange_rate", 192): dict(d_model=64, d_ff=64),
    ("timesnet", "exchange_rate", 336): dict(d_model=32, d_ff=32, epochs=1),
    ("timesnet", "exchange_rate", 720): dict(d_model=32, d_ff=32, epochs=1),
    ("timesnet", "weather", 96): dict(d_model=32, d_ff=32),
    ("timesnet", "weather", 192): dict(d_model=32, d_ff=32, epochs=1),
    ("timesnet", "weather", 336): dict(d_model=32, d_ff=32),
    ("timesnet", "weather", 720): dict(d_model=32, d_ff=32, epochs=1),
    ("timesnet", "electricity", 96): dict(d_model=256, d_ff=512),
    ("timesnet", "electricity", 192): dict(d_model=256, d_ff=512),
    ("timesnet", "electricity", 336): dict(d_model=256, d_ff=512),
    ("timesnet", "electricity", 720): dict(d_model=256, d_ff=512),
    ("timesnet", "traffic", 96): dict(d_ff=512),
    ("timesnet", "traffic", 192): dict(d_ff=512),
    ("timesnet", "traffic", 336): dict(d_ff=512),
    ("timesnet", "traffic", 720): dict(d_ff=512),
}
# Published test MSE / MAE (standardised data, features M, seq_len 96), with their sources.
ITRANSFORMER_PAPER = "iTransformer paper (Liu et al., ICLR 2024), full results, lookback 96"
TIMESNET_PAPER = "TimesNet paper (Wu et al., ICLR 2023), full long-term results, lookback 96"
PUBLISHED = {
    ("itransformer", "ETTh1", 96): (0.386, 0.405, ITRANSFORMER_PAPER),
    ("itransformer", "ETTh1", 192): (0.441, 0.436, ITRANSFORMER_PAPER),
    ("itransformer", "ETTh1", 336): (0.487, 0.458, ITRANSFORMER_PAPER),
    ("itransformer", "ETTh1", 720): (0.503, 0.491, ITRANSFORMER_PAPER),
    ("timesnet", "ETTh1", 96): (0.384, 0.402, TIMESNET_PAPER),
    ("timesnet", "ETTh1", 192): (0.436, 0.429, TIMESNET_PAPER),
    ("timesnet", "ETTh1", 336): (0.491, 0.469, TIMESNET_PAPER),
    ("timesnet", "ETTh1", 720): (0.521, 0.500, TIMESNET_PAPER),
}


def data_name(path):
    """The data set's name as the scripts' `--data_path` gives it: the file name's stem, less a
    compression suffix tf_tsembed.tslib_data.read_csv reads (`weather.csv.gz` is `weather`, as
    `weather.csv`)."""
    name = os.path.basename(path)
    for suffix in (".gz", ".bz2", ".xz", ".zip"):  # tf_tsembed.tslib_data._COMPRESSED and zip
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return os.path.splitext(name)[0]


def in_scripts(model, data, pred_len):
    """Whether an authors' script defines this (model, file stem, pred_len)."""
    return (model, data, pred_len) in SCRIPTS


def settings(model, data, pred_len, overrides):
    """DEFAULTS, then the script's row for (model, data, pred_len), then any flag given."""
    chosen = dict(DEFAULTS, **SCRIPTS.get((model, data, pred_len), {}))
    chosen.update({key: value for key, value in overrides.items() if value is not None})
    return chosen


def protocol_for(path):
    """TSLib's data set class for a file name: 'ETTh' (ETTh*), 'ETTm' (ETTm*) or 'custom'."""
    name = os.path.basename(path)
    for protocol in ("ETTh", "ETTm"):
        if name.startswith(protocol):
            return protocol
    return "custom"


def script_freq(path):
    """The --freq the authors' scripts give a file they name (run.py's 'h'), else None."""
    name = data_name(path)
    return SCRIPT_FREQ if any(data == name for _, data, _ in SCRIPTS) else None
