"""What every forecasting model shares: its `ForecastConfig` and the four TSLib inputs.

A model of `tf_tsembed.models` is a Functional `keras.Model` subclass built from one
`ForecastConfig`, whose fields carry Time-Series-Library `run.py`'s flag names and defaults, so a
TSLib run line reads as a config. Every model is called as TSLib's `forward` is,
`model([x_enc, x_mark_enc, x_dec, x_mark_dec])`, and returns `(B, pred_len, c_out)`; an input a
model does not read is accepted and unused.
"""

import dataclasses

import tensorflow as tf

from tf_tsembed import _checks
from tf_tsembed.timefeatures import num_time_features, num_time_marks

keras = tf.keras

EMBEDS = ("timeF", "fixed", "learned")
ACTIVATIONS = ("gelu", "relu")


@dataclasses.dataclass(frozen=True)
class ForecastConfig:
    """One forecasting run's shape and sizes, named and defaulted as TSLib's `run.py` flags.

    Args:
        seq_len: input steps. label_len: steps the decoder input repeats from the input's end.
        pred_len: forecast steps. enc_in, dec_in, c_out: encoder input, decoder input and
            output series. freq: the data's frequency ('h', '15min', ...), which fixes the
            number of timeF features or calendar marks. embed: 'timeF' (float time features,
            the one the package's models implement), or TSLib's 'fixed' and 'learned' (integer
            calendar marks; refused by the package's models, taken by a subclass that embeds
            them). d_model, n_heads, e_layers,
            d_layers, d_ff: sizes. factor: attention factor (ProbAttention). distil: Informer's
            distilling convolutions. dropout: rate in [0, 1). activation: 'gelu' or 'relu'.
            top_k, num_kernels: TimesNet's periods and Inception kernels.

    Example:

    >>> config = ForecastConfig(seq_len=96, pred_len=24, enc_in=7, dec_in=7, c_out=7, d_model=16)
    >>> config.num_time_features, ForecastConfig.from_dict(config.to_dict()) == config
    (4, True)
    """

    seq_len: int = 96
    label_len: int = 48
    pred_len: int = 96
    enc_in: int = 7
    dec_in: int = 7
    c_out: int = 7
    freq: str = "h"
    embed: str = "timeF"
    d_model: int = 512
    n_heads: int = 8
    e_layers: int = 2
    d_layers: int = 1
    d_ff: int = 2048
    factor: int = 1
    distil: bool = True
    dropout: float = 0.1
    activation: str = "gelu"
    top_k: int = 5
    num_kernels: int = 6

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type is int and field.name != "label_len":
                _checks.positive_int(field.name, value)
        _checks.non_negative_int("label_len", self.label_len)
        if self.label_len > self.seq_len:
            raise ValueError(
                f"`label_len` must be at most seq_len={self.seq_len}; received "
                f"label_len={self.label_len}."
            )
        _checks.boolean("distil", self.distil)
        _checks.probability("dropout", self.dropout)
        _checks.one_of("embed", self.embed, EMBEDS)
        _checks.one_of("activation", self.activation, ACTIVATIONS)
        num_time_features(self.freq)  # raises naming freq

    @property
    def num_time_features(self):
        """TSLib's timeF features for `freq`: the columns of `x_mark_enc` for embed 'timeF'."""
        return num_time_features(self.freq)

    @property
    def num_marks(self):
        """Columns of `x_mark_enc` and `x_mark_dec`: the timeF features for embed 'timeF', else
        the integer calendar marks (`tf_tsembed.timefeatures.time_marks`) for `freq`."""
        if self.embed == "timeF":
            return num_time_features(self.freq)
        return num_time_marks(self.freq)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """A config from a mapping of its fields; an unknown name is refused by name."""
        if isinstance(values, cls):
            return values
        if not isinstance(values, dict):
            raise TypeError(
                f"`config` must be a ForecastConfig or a dict of its fields; received "
                f"{type(values).__name__}."
            )
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown ForecastConfig fields {unknown}; known: {sorted(known)}.")
        return cls(**values)


class ForecastModel(keras.Model):
    """The Functional base of the models: keeps the config and the model's own options.

    A subclass builds its graph from `forecast_inputs(config)` and calls
    `super().__init__(config, inputs, outputs, options, **kwargs)`, `options` being the
    constructor arguments it takes beside the config (saved in `get_config`).
    """

    def __init__(self, config, inputs, outputs, options=None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.forecast_config = config
        self.options = dict(options or {})

    def get_config(self):
        return {
            "config": self.forecast_config.to_dict(),
            **self.options,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def forecast_inputs(config):
    """The four inputs of TSLib's `forward`: `x_enc (B, seq_len, enc_in)`, `x_mark_enc
    (B, seq_len, F)`, `x_dec (B, label_len + pred_len, dec_in)`, `x_mark_dec (B, label_len +
    pred_len, F)`. The marks are float32 timeF features of `config.freq` for embed 'timeF', and
    int32 calendar marks (`time_marks`: month, day, weekday, hour, quarter-hour, as TSLib's
    `timeenc=0`) for 'fixed' and 'learned'; F is `config.num_marks`."""
    decoder_len = config.label_len + config.pred_len
    marks = config.num_marks
    dtype = "float32" if config.embed == "timeF" else "int32"
    return [
        keras.Input((config.seq_len, config.enc_in), name="x_enc"),
        keras.Input((config.seq_len, marks), dtype=dtype, name="x_mark_enc"),
        keras.Input((decoder_len, config.dec_in), name="x_dec"),
        keras.Input((decoder_len, marks), dtype=dtype, name="x_mark_dec"),
    ]


def decoder_input(window, label_len, pred_len):
    """TSLib's `dec_inp` for a window `(B, seq_len, N)` of model inputs: its last `label_len`
    rows, then `pred_len` rows of zeros, `(B, label_len + pred_len, N)`.

    >>> decoder_input(tf.ones((1, 4, 2)), label_len=2, pred_len=3)[0, :, 0].numpy()
    array([1., 1., 0., 0., 0.], dtype=float32)
    """
    # A broadcast product, not tf.repeat: TFLite runs it with builtin ops at any batch.
    zeros = tf.zeros_like(window[:, :1, :]) * tf.zeros((1, pred_len, 1), window.dtype)
    return tf.concat([window[:, window.shape[1] - label_len :, :], zeros], axis=1)


def require(config, model, **expected):
    """Refuses a config a model does not implement: `embed` other than timeF, or fields the model
    needs equal (`c_out="enc_in"`: c_out must equal enc_in)."""
    if config.embed != "timeF":
        raise ValueError(
            f"{model} implements embed='timeF' only (TSLib's scripts' choice); received "
            f"embed={config.embed!r}."
        )
    for field, other in expected.items():
        if getattr(config, field) != getattr(config, other):
            raise ValueError(
                f"{model} needs {field} equal to {other}={getattr(config, other)}; received "
                f"{field}={getattr(config, field)}."
            )
