"""Time-Series-Library checkpoints into Keras: run.py's flags -> a `ForecastConfig`, a
`checkpoint.pth` -> the equal `tf_tsembed.models` model, and a command line for both.

`parse_run_flags` reads a TSLib run line (run.py's flag names, values and defaults, from the one
table `RUN_FLAGS` below); `load_checkpoint` builds the model those flags describe and assigns
every parameter of TSLib's `state_dict` to its Keras variable, all or nothing; the model called
as `model([x_enc, x_mark_enc, x_dec, x_mark_dec])` returns `(B, pred_len, c_out)`, TSLib's
forward in eval mode. `checkpoint_shapes` lists the parameters a checkpoint must hold.

Command line (`--help` for the flags):

    python -m tf_tsembed.tslib --model TimesNet --seq_len 96 ... --checkpoint checkpoint.pth \\
        --export_dir served/

With `--export_dir`, the run's data file (`--root_path`, `--data_path`, `--data`, `--features`,
`--target`) gives the columns and the training rows' scaler, as TSLib's data provider fits it
(`tf_tsembed.tslib_data.train_scaler`), and `tf_tsembed.serving.export_forecaster` writes a
SavedModel that forecasts from raw values and timestamps.

Reading a `.pth` needs torch (`pip install tf_tsembed[torch]`), loaded with `weights_only=True`
so that a checkpoint cannot run code; a mapping of NumPy arrays needs no torch:

>>> import numpy as np
>>> from tf_tsembed import tslib
>>> line = ("--task_name long_term_forecast --model iTransformer --seq_len 24 --label_len 12 "
...         "--pred_len 8 --enc_in 3 --dec_in 3 --c_out 3 --d_model 8 --n_heads 2 --d_ff 16 "
...         "--e_layers 1 --des 'Exp' --itr 1 --root_path ./dataset/ETT-small/ "
...         "--data_path ETTh1.csv")
>>> name, config, extras = tslib.parse_run_flags(line)
>>> name, config.seq_len, config.d_model, extras["data_path"]
('iTransformer', 24, 8, 'ETTh1.csv')
>>> rng = np.random.default_rng(0)
>>> state_dict = {key: rng.normal(size=shape).astype("float32")
...               for key, shape in tslib.checkpoint_shapes(line).items()}
>>> state_dict["projection.weight"].shape
(8, 8)
>>> model = tslib.load_checkpoint(state_dict, **tslib.run_flags_dict(line))
>>> x = [np.zeros((2, 24, 3)), np.zeros((2, 24, 4)), np.zeros((2, 20, 3)), np.zeros((2, 20, 4))]
>>> model([np.asarray(v, "float32") for v in x]).shape
TensorShape([2, 8, 3])
"""

import argparse
import collections.abc
import dataclasses
import os
import pathlib
import pickle
import re
import shlex
import signal
import sys

import numpy as np

from tf_tsembed import atomic
from tf_tsembed._sinusoid import sinusoid
from tf_tsembed.models import MODELS, ForecastConfig
from tf_tsembed.models.patchtst import num_patches
from tf_tsembed.pytorch_weights import CONV1D_AXES, LINEAR_AXES, converted_weight, shape_text
from tf_tsembed.tslib_data import train_scaler

# --- run.py's flags ---------------------------------------------------------------------------

# What a flag does here: "config" (a ForecastConfig field), "extra" (kept in `extras` for the
# serving export: the data the scaler comes from), "ignored" (no effect on the forward pass in
# eval mode), "refused" (only its default is implemented: another value is refused by name).
# Rows: (flag, kind, default, use). kind: a type (int, float, str), "store_true",
# "store_false", "bool" (run.py's `type=bool`: any non-empty string is True), "ints" (nargs +).
RUN_FLAGS = (
    ("task_name", str, "long_term_forecast", "refused"),
    ("is_training", int, 1, "ignored"),
    ("model_id", str, "test", "ignored"),
    ("model", str, "Autoformer", "model"),
    ("data", str, "ETTh1", "extra"),
    ("root_path", str, "./data/ETT/", "extra"),
    ("data_path", str, "ETTh1.csv", "extra"),
    ("label_col", str, "label", "ignored"),
    ("drop_cols", str, "", "ignored"),
    ("window_step", int, 1, "ignored"),
    ("train_ratio", float, 0.7, "ignored"),
    ("val_ratio", float, 0.15, "ignored"),
    ("file_split_mode", str, "shuffle", "ignored"),
    ("window_label_mode", str, "last", "ignored"),
    ("features", str, "M", "extra"),
    ("target", str, "OT", "extra"),
    ("freq", str, "h", "config"),
    ("checkpoints", str, "./checkpoints/", "ignored"),
    ("seq_len", int, 96, "config"),
    ("label_len", int, 48, "config"),
    ("pred_len", int, 96, "config"),
    ("seasonal_patterns", str, "Monthly", "ignored"),
    ("inverse", "store_true", False, "ignored"),
    ("mask_rate", float, 0.25, "ignored"),
    ("anomaly_ratio", float, 0.25, "ignored"),
    ("expand", int, 2, "ignored"),
    ("d_conv", int, 4, "ignored"),
    ("tv_dt", int, 0, "ignored"),
    ("tv_B", int, 0, "ignored"),
    ("tv_C", int, 0, "ignored"),
    ("use_D", int, 0, "ignored"),
    ("top_k", int, 5, "config"),
    ("num_kernels", int, 6, "config"),
    ("enc_in", int, 7, "config"),
    ("dec_in", int, 7, "config"),
    ("c_out", int, 7, "config"),
    ("d_model", int, 512, "config"),
    ("n_heads", int, 8, "config"),
    ("e_layers", int, 2, "config"),
    ("d_layers", int, 1, "config"),
    ("d_ff", int, 2048, "config"),
    ("moving_avg", int, 25, "ignored"),
    ("factor", int, 1, "config"),
    ("distil", "store_false", True, "config"),
    ("dropout", float, 0.1, "config"),
    ("embed", str, "timeF", "refused"),
    ("activation", str, "gelu", "config"),
    ("channel_independence", int, 1, "ignored"),
    ("decomp_method", str, "moving_avg", "ignored"),
    ("use_norm", int, 1, "ignored"),  # TSLib's TimesNet, iTransformer, PatchTST always normalise
    ("down_sampling_layers", int, 0, "ignored"),
    ("down_sampling_window", int, 1, "ignored"),
    ("down_sampling_method", str, None, "ignored"),
    ("seg_len", int, 96, "ignored"),
    ("output_attention", "store_true", False, "refused"),
    ("num_workers", int, 10, "ignored"),
    ("itr", int, 1, "ignored"),
    ("train_epochs", int, 10, "ignored"),
    ("batch_size", int, 32, "ignored"),
    ("patience", int, 3, "ignored"),
    ("learning_rate", float, 0.0001, "ignored"),
    ("use_class_weights", "store_true", False, "ignored"),
    ("des", str, "test", "ignored"),
    ("loss", str, "MSE", "ignored"),
    ("lradj", str, "type1", "ignored"),
    # Autocast changes CUDA numerics to float16, not the weights (saved in float32): the Keras
    # model computes TSLib's float32 forward; an AMP run's own outputs differ by float16 rounding.
    ("use_amp", "store_true", False, "ignored"),
    ("use_gpu", "bool", True, "ignored"),
    ("gpu", int, 0, "ignored"),
    ("gpu_type", str, "cuda", "ignored"),
    ("use_multi_gpu", "store_true", False, "ignored"),  # its `module.` key prefix is stripped
    ("devices", str, "0,1,2,3", "ignored"),
    ("p_hidden_dims", "ints", [128, 128], "ignored"),
    ("p_hidden_layers", int, 2, "ignored"),
    ("use_dtw", "bool", False, "ignored"),
    ("augmentation_ratio", int, 0, "ignored"),
    ("seed", int, 2, "ignored"),
    *(
        (name, "store_true", False, "ignored")
        for name in (
            "jitter",
            "scaling",
            "permutation",
            "randompermutation",
            "magwarp",
            "timewarp",
            "windowslice",
            "windowwarp",
            "rotation",
            "spawner",
            "dtwwarp",
            "shapedtwwarp",
            "wdba",
            "discdtw",
            "discsdtw",
        )
    ),  # fmt: skip
    ("extra_tag", str, "", "ignored"),
    ("patch_len", int, 16, "ignored"),  # TimeXer's; TSLib's PatchTST keeps its own 16 (stride 8)
    ("node_dim", int, 10, "ignored"),
    ("gcn_depth", int, 2, "ignored"),
    ("gcn_dropout", float, 0.3, "ignored"),
    ("propalpha", float, 0.3, "ignored"),
    ("conv_channel", int, 32, "ignored"),
    ("skip_channel", int, 32, "ignored"),
    ("individual", "store_true", False, "ignored"),
    ("alpha", float, 0.1, "ignored"),
    ("top_p", float, 0.5, "ignored"),
    ("pos", int, 1, "ignored"),
)
EXTRAS = tuple(flag for flag, _, _, use in RUN_FLAGS if use == "extra")
FORECAST_TASKS = ("long_term_forecast", "short_term_forecast")


class _Refusal(argparse.ArgumentParser):
    """argparse raising ValueError instead of printing and exiting."""

    def error(self, message):
        raise ValueError(message)


def _bool_flag(text):
    return bool(text)  # run.py's `type=bool`: "False" is True there too


def _add_run_flags(parser):
    for flag, kind, default, _ in RUN_FLAGS:
        option = f"--{flag}"
        if kind in ("store_true", "store_false"):
            parser.add_argument(option, action=kind, default=default)
        elif kind == "ints":
            parser.add_argument(option, type=int, nargs="+", default=default)
        else:
            parser.add_argument(
                option, type=_bool_flag if kind == "bool" else kind, default=default
            )


def _argv(line):
    """A run line as argv: shell-split, `\\` continuations joined, `python run.py` dropped."""
    argv = shlex.split(line.replace("\\\n", " "))
    for index, token in enumerate(argv):
        if token.endswith("run.py"):
            return argv[index + 1 :]
    return argv


def run_flags_dict(argv_or_mapping):
    """`{flag: value}` of every run.py flag: run.py's defaults, overridden by those given.

    `argv_or_mapping`: a run line (str), its argv (list of str), or a mapping of flag names
    (without `--`) to values. Unknown flags are refused by name (ValueError).

    >>> run_flags_dict("--model TimesNet --seq_len 48 --distil")["seq_len"]
    48
    """
    defaults = {flag: default for flag, _, default, _ in RUN_FLAGS}
    if isinstance(argv_or_mapping, collections.abc.Mapping):
        unknown = [flag for flag in argv_or_mapping if flag not in defaults]
        if unknown:
            raise ValueError(f"unknown run.py flags {unknown}")
        return {**defaults, **argv_or_mapping}
    argv = _argv(argv_or_mapping) if isinstance(argv_or_mapping, str) else list(argv_or_mapping)
    parser = _Refusal(prog="run.py", add_help=False, allow_abbrev=False)
    _add_run_flags(parser)
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ValueError(f"unknown run.py flags {unknown}")
    return vars(namespace)


def parse_run_flags(argv_or_mapping):
    """`(model_name, ForecastConfig, extras)` from TSLib run.py's flags (see `run_flags_dict`).

    Flags that do not change the forward pass are accepted and ignored; `extras` keeps the data
    ones (root_path, data_path, data, features, target). Refused (ValueError, naming the flag):
    `--task_name` other than long_term_forecast or short_term_forecast, `--embed` other than
    timeF, `--output_attention`, a `--model` not in `tf_tsembed.models.MODELS` (or without a
    weight plan here), and unknown flags. `--activation`: 'relu', anything else is GELU (as
    TSLib). iTransformer and PatchTST ignore `--c_out` in TSLib (they output enc_in series):
    their config takes c_out = enc_in.

    >>> name, config, extras = parse_run_flags(["--model", "PatchTST", "--enc_in", "7"])
    >>> name, config.d_model, config.c_out, extras["target"]
    ('PatchTST', 512, 7, 'OT')
    """
    flags = run_flags_dict(argv_or_mapping)
    if flags["task_name"] not in FORECAST_TASKS:
        raise ValueError(
            f"--task_name {flags['task_name']!r} is not converted: only the forecast path "
            f"({' or '.join(FORECAST_TASKS)}) is implemented"
        )
    if flags["embed"] != "timeF":
        raise ValueError(
            f"--embed {flags['embed']!r} is not converted: the models implement --embed timeF only"
        )
    if flags["output_attention"]:
        raise ValueError("--output_attention is not converted: the models return the forecast only")
    name = flags["model"]
    if name not in WEIGHT_PLANS:
        raise ValueError(f"--model {name!r} is not a tf_tsembed model; known: {list(MODELS)}")
    fields = {field.name for field in dataclasses.fields(ForecastConfig)}
    values = {flag: flags[flag] for flag in fields}
    values["activation"] = "relu" if flags["activation"] == "relu" else "gelu"
    if WEIGHT_PLANS[name].output_is_input:
        values["c_out"] = values["enc_in"]
    try:
        config = ForecastConfig(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the flags do not make a ForecastConfig: {error}") from None
    return name, config, {flag: flags[flag] for flag in EXTRAS}


# --- weight plans -----------------------------------------------------------------------------


def _squeezed_linear(array):
    """A 1x1 Conv1d `(out, in, 1)` as a Dense kernel `(in, out)`."""
    return array[..., 0].T


# PyTorch layout -> Keras, by name.
LAYOUTS = {
    "linear": lambda a: a.transpose(LINEAR_AXES),
    "conv1x1": _squeezed_linear,
    "conv1d": lambda a: a.transpose(CONV1D_AXES),
    "conv2d": lambda a: a.transpose(2, 3, 1, 0),  # (out, in, kh, kw) -> (kh, kw, in, out)
    "vector": lambda a: a,
}


@dataclasses.dataclass(frozen=True)
class Param:
    """One TSLib parameter: its key, the Keras variable path, the layout, and its PyTorch axes
    as sizes named by flags (`"d_model"`), expressions of them (`"seq_len + pred_len"`) or ints."""

    key: str
    path: str
    layout: str
    dims: tuple


def _linear(key, path, out, inputs, bias=True):
    params = [Param(f"{key}.weight", f"{path}/kernel", "linear", (out, inputs))]
    return params + ([Param(f"{key}.bias", f"{path}/bias", "vector", (out,))] if bias else [])


def _conv1x1(key, path, out, inputs):
    return [
        Param(f"{key}.weight", f"{path}/kernel", "conv1x1", (out, inputs, 1)),
        Param(f"{key}.bias", f"{path}/bias", "vector", (out,)),
    ]


def _layer_norm(key, path):
    return [
        Param(f"{key}.weight", f"{path}/gamma", "vector", ("d_model",)),
        Param(f"{key}.bias", f"{path}/beta", "vector", ("d_model",)),
    ]


def _batch_norm(key, path):
    names = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"))
    names += (("running_var", "moving_variance"),)
    return [Param(f"{key}.{a}", f"{path}/{b}", "vector", ("d_model",)) for a, b in names]


def _attention(key, path):
    params = []
    for torch_name, keras_name in (("query", "query"), ("key", "key"), ("value", "value")):
        params += _linear(
            f"{key}.{torch_name}_projection", f"{path}/{keras_name}", "d_model", "d_model"
        )
    return params + _linear(f"{key}.out_projection", f"{path}/out", "d_model", "d_model")


def _feed_forward(key, path):
    return _conv1x1(f"{key}.conv1", f"{path}/conv1", "d_ff", "d_model") + _conv1x1(
        f"{key}.conv2", f"{path}/conv2", "d_model", "d_ff"
    )


def _encoder_layers(config):
    params = []
    for i in range(config.e_layers):
        key, path = f"encoder.attn_layers.{i}", f"encoder_layer_{i}"
        params += _attention(f"{key}.attention", f"{path}/attention") + _feed_forward(key, path)
        params += _layer_norm(f"{key}.norm1", f"{path}/norm1")
        params += _layer_norm(f"{key}.norm2", f"{path}/norm2")
    return params


def _decoder_layers(config):
    params = []
    for j in range(config.d_layers):
        key, path = f"decoder.layers.{j}", f"decoder_layer_{j}"
        for attention in ("self_attention", "cross_attention"):
            params += _attention(f"{key}.{attention}", f"{path}/{attention}")
        params += _feed_forward(key, path)
        for n in (1, 2, 3):
            params += _layer_norm(f"{key}.norm{n}", f"{path}/norm{n}")
    return params


def _data_embedding(key, path, series):
    """TSLib's DataEmbedding with embed='timeF' (its `position_embedding.pe` is a buffer)."""
    return [
        Param(
            f"{key}.value_embedding.tokenConv.weight",
            f"{path}/value_embedding/kernel",
            "conv1d",
            ("d_model", series, 3),
        ),
        Param(
            f"{key}.temporal_embedding.embed.weight",
            f"{path}/temporal_embedding/kernel",
            "linear",
            ("d_model", "num_time_features"),
        ),
    ]


def _timesnet(config):
    params = _data_embedding("enc_embedding", "embedding", "enc_in")
    params += _linear("predict_linear", "predict_linear", "seq_len + pred_len", "seq_len")
    for i in range(config.e_layers):
        for index, (keras_name, out, inputs) in (
            (0, ("inception_in", "d_ff", "d_model")),
            (2, ("inception_out", "d_model", "d_ff")),
        ):
            for n in range(config.num_kernels):
                size = 2 * n + 1
                key = f"model.{i}.conv.{index}.kernels.{n}"
                path = f"times_block_{i}/{keras_name}"
                params.append(
                    Param(
                        f"{key}.weight",
                        f"{path}/kernel_{size}",
                        "conv2d",
                        (out, inputs, size, size),
                    )
                )
                params.append(Param(f"{key}.bias", f"{path}/bias_{size}", "vector", (out,)))
    params += _layer_norm("layer_norm", "layer_norm")
    return params + _linear("projection", "projection", "c_out", "d_model")


def _itransformer(config):
    params = _linear(
        "enc_embedding.value_embedding", "embedding/value_embedding", "d_model", "seq_len"
    )
    params += _encoder_layers(config) + _layer_norm("encoder.norm", "encoder_norm")
    return params + _linear("projection", "projector", "pred_len", "d_model")


def _patchtst(config):
    params = _linear(
        "patch_embedding.value_embedding", "patch_embedding/value_embedding", "d_model", 16, False
    )
    params += _encoder_layers(config) + _batch_norm("encoder.norm.1", "encoder_norm")
    return params + _linear("head.linear", "head/linear", "pred_len", "d_model * patch_num")


def _transformer(config):
    params = _data_embedding("enc_embedding", "encoder_embedding", "enc_in")
    params += _encoder_layers(config) + _layer_norm("encoder.norm", "encoder_norm")
    params += _data_embedding("dec_embedding", "decoder_embedding", "dec_in")
    params += _decoder_layers(config) + _layer_norm("decoder.norm", "decoder_norm")
    return params + _linear("decoder.projection", "projection", "c_out", "d_model")


def _informer(config):
    params = _transformer(config)
    for k in range(config.e_layers - 1 if config.distil else 0):
        key, path = f"encoder.conv_layers.{k}", f"distil_conv_{k}"
        params += [
            Param(
                f"{key}.downConv.weight",
                f"{path}/down_conv/kernel",
                "conv1d",
                ("d_model",) * 2 + (3,),
            ),
            Param(f"{key}.downConv.bias", f"{path}/down_conv/bias", "vector", ("d_model",)),
        ]
        params += _batch_norm(f"{key}.norm", f"{path}/norm")
    return params


@dataclasses.dataclass(frozen=True)
class WeightPlan:
    """How one TSLib model's state_dict becomes the Keras model's variables.

    `params(config)`: every Param. `buffers`: keys of constant sinusoid tables, checked, not
    loaded. `ignored`: key suffixes skipped (BatchNorm's counter). `counts`: flag -> regex whose
    group is a layer index (the checkpoint's count is checked against the flag). `options`:
    keyword arguments of the model's constructor. `output_is_input`: TSLib ignores c_out.
    """

    params: collections.abc.Callable
    buffers: tuple = ()
    ignored: tuple = ()
    counts: dict = dataclasses.field(default_factory=dict)
    options: dict = dataclasses.field(default_factory=dict)
    output_is_input: bool = False


ENCODER_LAYERS = {"e_layers": r"^encoder\.attn_layers\.(\d+)\."}
ENCODER_DECODER_LAYERS = {**ENCODER_LAYERS, "d_layers": r"^decoder\.layers\.(\d+)\."}
ENCODER_DECODER_TABLES = (
    "enc_embedding.position_embedding.pe",
    "dec_embedding.position_embedding.pe",
)
# One entry per TSLib model name.
WEIGHT_PLANS = {
    "TimesNet": WeightPlan(
        _timesnet,
        buffers=("enc_embedding.position_embedding.pe",),
        counts={
            "e_layers": r"^model\.(\d+)\.",
            "num_kernels": r"^model\.\d+\.conv\.0\.kernels\.(\d+)\.",
        },
        options={"padding": "zeros"},  # TSLib pads with zeros since 2023
    ),
    "iTransformer": WeightPlan(_itransformer, counts=ENCODER_LAYERS, output_is_input=True),
    "PatchTST": WeightPlan(
        _patchtst,
        buffers=("patch_embedding.position_embedding.pe",),
        ignored=("num_batches_tracked",),
        counts=ENCODER_LAYERS,
        output_is_input=True,
    ),
    "Transformer": WeightPlan(
        _transformer, buffers=ENCODER_DECODER_TABLES, counts=ENCODER_DECODER_LAYERS
    ),
    # Informer's ProbAttention draws its key sample at every call, as TSLib's: the converted
    # model forecasts as TSLib's does for the same sample (`ProbAttention.sample_indices`).
    "Informer": WeightPlan(
        _informer,
        buffers=ENCODER_DECODER_TABLES,
        ignored=("num_batches_tracked",),
        counts=ENCODER_DECODER_LAYERS,
    ),
}


def _sizes(config):
    """The names a Param's dims may use, with their values for `config`."""
    sizes = config.to_dict()
    sizes["num_time_features"] = config.num_time_features
    sizes["patch_num"] = num_patches(config.seq_len)
    return sizes


def _size(dim, sizes):
    return dim if isinstance(dim, int) else int(eval(dim, {}, dict(sizes)))  # our own strings


def _flag_text(dim, sizes):
    if dim == "num_time_features":
        return f"--freq {sizes['freq']!r} ({sizes['num_time_features']} time features)"
    if dim in sizes:
        return f"--{dim} {sizes[dim]}"
    names = re.findall(r"[a-z_]+", dim)
    given = ", ".join(
        f"patch_num {sizes[name]} from --seq_len {sizes['seq_len']}"
        if name == "patch_num"
        else f"--{name} {sizes[name]}"
        for name in names
    )
    return f"{dim} = {_size(dim, sizes)} ({given})"


def _shape_message(param, shape, sizes):
    """`the checkpoint's KEY has shape S: <dim> <size>, ...; the flags give <flag> <value>`."""
    named = ", ".join(
        f"{dim} {size}" for dim, size in zip(param.dims, shape) if not isinstance(dim, int)
    )
    wrong = [
        _flag_text(dim, sizes)
        for dim, size in zip(param.dims, shape)
        if not isinstance(dim, int) and _size(dim, sizes) != size
    ]
    if len(shape) != len(param.dims) or not wrong:
        expected = tuple(_size(dim, sizes) for dim in param.dims)
        return (
            f"the checkpoint's {param.key} has shape {shape_text(shape)}; TSLib's layout "
            f"{tuple(param.dims)} gives {shape_text(expected)} for the flags"
        )
    return (
        f"the checkpoint's {param.key} has shape {shape_text(shape)}: {named}; "
        f"the flags give {', '.join(wrong)}"
    )


def checkpoint_shapes(argv_or_mapping):
    """`{key: PyTorch shape}` of every parameter a TSLib checkpoint of these run.py flags holds
    (buffers left out: `position_embedding.pe`, BatchNorm's `num_batches_tracked`).

    >>> shapes = checkpoint_shapes("--model TimesNet --d_model 16 --d_ff 32 --num_kernels 2")
    >>> shapes["enc_embedding.value_embedding.tokenConv.weight"]
    (16, 7, 3)
    >>> shapes["model.1.conv.2.kernels.1.weight"]
    (16, 32, 3, 3)
    """
    name, config, _ = parse_run_flags(argv_or_mapping)
    sizes = _sizes(config)
    return {
        p.key: tuple(_size(dim, sizes) for dim in p.dims) for p in WEIGHT_PLANS[name].params(config)
    }


# --- reading a checkpoint ---------------------------------------------------------------------


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "reading a TSLib checkpoint.pth needs PyTorch: pip install tf_tsembed[torch] (or pass "
            "a mapping of names to NumPy arrays)"
        ) from None
    return torch


def read_checkpoint(path):
    """TSLib's `checkpoint.pth` as `{key: NumPy array}`, with `torch.load(weights_only=True)`
    (tensors and plain containers only: a pickle that would run code is refused)."""
    torch = _torch()
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "a directory" if os.path.isdir(path) else "not a file"
        raise ValueError(f"checkpoint {path!r} is {what}; give TSLib's checkpoint.pth")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"checkpoint {path!r} holds objects other than tensors and plain containers, which "
            f"torch.load(weights_only=True) refuses (a checkpoint that would run code is never "
            f"loaded): {error}"
        ) from None
    except Exception as error:  # whatever an empty, truncated or foreign file raises
        raise ValueError(
            f"checkpoint {path!r} cannot be read as a torch checkpoint: "
            f"{type(error).__name__}: {error}"
        ) from None
    if not isinstance(state, collections.abc.Mapping):
        raise ValueError(
            f"{os.fspath(path)!r} holds a {type(state).__name__}, not a state_dict (TSLib saves "
            f"model.state_dict())"
        )
    return state


def _array(value):
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu()
        if value.dtype.is_floating_point and str(value.dtype) != "torch.float64":
            value = value.float()  # bfloat16 has no NumPy dtype
        return value.numpy()
    return np.asarray(value)


def _state_dict(checkpoint):
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = read_checkpoint(checkpoint)
    if not isinstance(checkpoint, collections.abc.Mapping):
        raise TypeError(
            f"`checkpoint` must be a path to a checkpoint.pth or a mapping of names to arrays; "
            f"received a {type(checkpoint).__name__}"
        )
    keys = list(checkpoint)
    nested = [key for key, value in checkpoint.items() if isinstance(value, dict)]
    if nested:
        raise ValueError(
            f"the checkpoint's top-level keys {keys[:8]} hold mappings ({nested[:4]}), not "
            f"parameters: TSLib saves model.state_dict() itself; pass the state_dict inside"
        )
    if keys and all(isinstance(key, str) and key.startswith("module.") for key in keys):
        return {key[len("module.") :]: value for key, value in checkpoint.items()}  # DataParallel
    return dict(checkpoint)


def _sinusoid_problem(key, array, d_model):
    """None if `array` is TSLib's `pe` buffer `(1, rows, d_model)` (to float32 rounding of the
    angle: row p within 1e-6 + 4 * 2**-24 * p), else what is wrong."""
    if array.ndim != 3 or array.shape[0] != 1 or array.shape[2] != d_model:
        return (
            f"the checkpoint's {key} has shape {shape_text(array.shape)}; TSLib's sinusoid "
            f"buffer is (1, max_len, d_model) with d_model {d_model}"
        )
    rows = array.shape[1]
    tolerance = 1e-6 + 4 * 2.0**-24 * np.arange(rows)[:, None]
    difference = np.abs(array[0].astype(np.float64) - sinusoid(rows, d_model))
    if not (difference <= tolerance).all():
        row, column = np.argwhere(~(difference <= tolerance))[0]
        return (
            f"the checkpoint's {key} is not TSLib's fixed sinusoid (row {row}, column {column} "
            f"differs by {difference[row, column]:.3g}): the Keras model's positions are that "
            f"constant, so this checkpoint computes something else"
        )
    return None


def _layer_counts(plan, state, config):
    problems = []
    for flag, pattern in plan.counts.items():
        indices = {int(m.group(1)) for key in state if (m := re.match(pattern, key))}
        found = max(indices) + 1 if indices else 0
        if found != getattr(config, flag):
            example = next(key for key in state if re.match(pattern, key)) if indices else None
            where = f" (e.g. {example})" if example else ""
            problems.append(
                f"the checkpoint has {found} indices for {flag}{where}; the flags give "
                f"--{flag} {getattr(config, flag)}"
            )
    return problems


def load_checkpoint(checkpoint, *, options=None, **flags):
    """The Keras model of a TSLib checkpoint: built from run.py's `flags`, every parameter set.

    Args:
        checkpoint: a path to TSLib's `checkpoint.pth` (its model's state_dict; read with torch,
            `weights_only=True`), or a mapping of names to arrays (NumPy or torch tensors). A
            `module.` prefix on every key (DataParallel) is stripped.
        options: the model's constructor arguments beside its config, over the plan's: e.g.
            `{"padding": "last_rows"}` for a TimesNet trained by TSLib's first version (2023),
            which padded with the last rows where TSLib now pads with zeros.
        **flags: run.py's flags by name, `model` among them (see `parse_run_flags`); left out,
            run.py's defaults.

    Returns:
        The `tf_tsembed.models` model, `model([x_enc, x_mark_enc, x_dec, x_mark_dec]) ->
        (B, pred_len, c_out)` as TSLib's forward in eval mode (TimesNet pads with zeros).

    Buffers are not loaded: a `position_embedding.pe` present is checked against the fixed
    sinusoid (our positions are that constant; one left out is not missed), BatchNorm's
    `num_batches_tracked` is skipped.

    Raises:
        ValueError: a refused flag; or, listing every problem, keys missing or unexpected,
            a layer count or a shape that disagrees with the flags (naming both), a `pe` buffer
            that is not TSLib's sinusoid, values that overflow float32. Nothing is returned
            unless every variable is assigned exactly once.
        TypeError: `checkpoint` is neither a path nor a mapping.
        RuntimeError: under legacy tf_keras, whose variables have no paths (Keras 3 only).
        ImportError: a path without torch installed.
    """
    name, config, _ = parse_run_flags(flags)
    plan = WEIGHT_PLANS[name]
    state = _state_dict(checkpoint)
    problems = _layer_counts(plan, state, config)
    if problems:
        raise ValueError(f"Cannot load the {name} checkpoint:\n  " + "\n  ".join(problems))
    model = MODELS[name](config, **{**plan.options, **(options or {})})
    if not all(hasattr(variable, "path") for variable in model.weights):
        raise RuntimeError(
            "load_checkpoint needs Keras 3 (tf.keras of TensorFlow >= 2.16): under legacy "
            "tf_keras (TF_USE_LEGACY_KERAS=1) the variables have no layer paths to map TSLib's "
            "keys to"
        )
    variables = {variable.path: variable for variable in model.weights}
    sizes = _sizes(config)
    params = plan.params(config)
    expected = {p.key for p in params}
    missing = [key for key in expected if key not in state]
    unexpected = [
        key
        for key in state
        if key not in expected
        and key not in plan.buffers
        and not any(key.endswith(f".{suffix}") for suffix in plan.ignored)
    ]
    if missing:
        problems.append(f"missing keys: {missing}")
    if unexpected:
        problems.append(f"unexpected keys: {unexpected}")
    for key in plan.buffers:
        if key in state:
            problem = _sinusoid_problem(key, _array(state[key]), config.d_model)
            if problem:
                problems.append(problem)
    assignments = []
    for param in params:
        if param.key not in state:
            continue
        array = _array(state[param.key])
        if array.dtype.kind != "f":
            problems.append(
                f"the checkpoint's {param.key} must hold floating-point weights; it has "
                f"{array.dtype}"
            )
            continue
        if not np.all(np.isfinite(array)):
            problems.append(
                f"the checkpoint's {param.key} holds {int(np.sum(~np.isfinite(array)))} "
                f"non-finite value(s) (NaN or infinity): the run that saved it diverged"
            )
            continue
        shape = tuple(_size(dim, sizes) for dim in param.dims)
        if array.shape != shape:
            problems.append(_shape_message(param, array.shape, sizes))
            continue
        variable = variables[param.path]
        value, problem = converted_weight(param.key, array, variable.dtype)
        if problem:
            problems.append(problem)
            continue
        value = LAYOUTS[param.layout](value)
        assert value.shape == tuple(variable.shape), (param, value.shape, variable.shape)
        assignments.append((variable, value))
    if problems:
        raise ValueError(f"Cannot load the {name} checkpoint:\n  " + "\n  ".join(problems))
    assigned = [variable.path for variable, _ in assignments]
    left = sorted(set(variables) - set(assigned))
    twice = sorted({path for path in assigned if assigned.count(path) > 1})
    assert not left and not twice, f"variables left {left}, assigned twice {twice}"
    for variable, value in assignments:
        variable.assign(value)
    return model


# --- command line -----------------------------------------------------------------------------


def _export(model, export_dir, overwrite, extras):
    """Writes the served forecaster (`tf_tsembed.serving.export_forecaster`: raw values and
    timestamps in) with the scaler TSLib's data provider fits on the run's training rows
    (`tslib_data.train_scaler` of `--root_path`, `--data_path`, `--data`, `--features`,
    `--target`). Refused: a file whose columns (as the data set gives them) are not `--enc_in`."""
    from tf_tsembed import serving

    config = model.forecast_config
    names, mean, scale = train_scaler(
        extras["root_path"],
        extras["data_path"],
        data=extras["data"],
        features=extras["features"],
        target=extras["target"],
        seq_len=config.seq_len,
        pred_len=config.pred_len,
    )
    if len(names) != config.enc_in:
        path = os.path.join(extras["root_path"], extras["data_path"])
        raise ValueError(
            f"--enc_in {config.enc_in} but --data {extras['data']} --features "
            f"{extras['features']} gives {len(names)} columns of {path}: {names}"
        )
    serving.export_forecaster(
        model,
        export_dir,
        mean=mean,
        scale=scale,
        names=names,
        features=extras["features"],
        overwrite=overwrite,
    )
    return pathlib.Path(export_dir)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _check_export_dir(export_dir, overwrite, inputs):
    """Refuses, before the checkpoint is read, an --export_dir that is empty, cannot be
    written, exists without --overwrite, is not an earlier export, or is or holds an input."""
    if not export_dir:
        raise ValueError("--export_dir is empty; give a directory path")
    for path in inputs:
        if os.path.lexists(path) and (
            atomic.same_file(export_dir, path) or atomic.inside(path, export_dir)
        ):
            raise ValueError(
                f"--export_dir {export_dir!r} is or holds the input {path!r}, which replacing "
                f"it would delete; give another path"
            )
    atomic.check_writable(export_dir, directory=True, name=f"--export_dir {export_dir!r}")
    if os.path.lexists(export_dir) and not overwrite:
        raise ValueError(f"--export_dir {export_dir!r} exists: pass --overwrite to replace it")
    try:
        atomic.check_replaceable(
            export_dir, directory=True, overwrite=True, earlier=atomic.SAVED_MODEL_FILE
        )
    except FileExistsError as error:
        raise ValueError(f"--export_dir: {error}") from None


def main(argv=None):
    """`python -m tf_tsembed.tslib <run.py flags> --checkpoint PATH [--export_dir DIR]
    [--overwrite]`: converts, prints one summary line; a refusal is one `error:` line, exit 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _Refusal(
        prog="python -m tf_tsembed.tslib",
        description="Converts a Time-Series-Library checkpoint.pth into a Keras model, given "
        "the run.py flags it was trained with (run.py's defaults for the others).",
    )
    parser.add_argument("--checkpoint", required=True, help="TSLib's checkpoint.pth")
    parser.add_argument(
        "--export_dir",
        help="writes the served forecaster here (a SavedModel on raw values and timestamps, "
        "with the scaler fit on the training rows of --root_path/--data_path)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --export_dir")
    group = parser.add_argument_group("run.py flags")
    _add_run_flags(group)
    if "-h" in argv or "--help" in argv:
        parser.print_help()
        return 0
    own_parser = _Refusal(add_help=False, allow_abbrev=False)
    own_parser.add_argument("--checkpoint")
    own_parser.add_argument("--export_dir")
    own_parser.add_argument("--overwrite", action="store_true")
    # SIGTERM ends the run as Ctrl-C does: through the export's cleanup, nothing half-written.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        own, run_argv = own_parser.parse_known_args(argv)
        if not own.checkpoint:
            raise ValueError("--checkpoint is required (TSLib's checkpoint.pth)")
        if not any(token == "--model" or token.startswith("--model=") for token in run_argv):
            raise ValueError("--model is required (TSLib's model name, e.g. --model TimesNet)")
        run_flags = run_flags_dict(run_argv)
        name, config, extras = parse_run_flags(run_flags)
        if own.export_dir is not None:
            data = os.path.join(extras["root_path"], extras["data_path"])
            _check_export_dir(own.export_dir, own.overwrite, [own.checkpoint, data])
        model = load_checkpoint(own.checkpoint, **run_flags)
        written = _export(model, own.export_dir, own.overwrite, extras) if own.export_dir else None
    except (ValueError, TypeError, ImportError, OSError) as error:
        message = str(error).replace("\n  ", "; ")
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130
    fields = ", ".join(f"{key}={value}" for key, value in config.to_dict().items())
    parameters = sum(int(np.prod(variable.shape)) for variable in model.weights)
    where = f"; wrote {written}" if written else ""
    print(f"{name}: {parameters} parameters from {own.checkpoint} ({fields}){where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
