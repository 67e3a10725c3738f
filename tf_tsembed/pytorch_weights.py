"""Loads PyTorch `state_dict` weights of the reference embeddings into our layers, without torch."""

import collections.abc

import numpy as np
import tensorflow as tf

from tf_tsembed import _checks
from tf_tsembed.data_embedding import (
    DataEmbedding,
    DataEmbeddingInverted,
    DataEmbeddingWithoutPosition,
)
from tf_tsembed.patch_embedding import PatchEmbedding
from tf_tsembed.positional_embedding import PositionalEmbedding
from tf_tsembed.temporal_embedding import FixedEmbedding, TemporalEmbedding, TimeFeatureEmbedding
from tf_tsembed.token_embedding import TokenEmbedding

# A Linear weight is (out, in); a Keras Dense kernel is (in, out).
LINEAR_AXES = (1, 0)
# A Conv1d weight is (out, in, k); a Keras Conv1D kernel is (k, in, out).
CONV1D_AXES = (2, 1, 0)


class _Plan:
    """What one layer takes from a state_dict, in the reference's names relative to the layer.

    `params`: `(name, variable, axes, layout)`: the PyTorch array, transposed by `axes` (None: as
    it is), becomes `variable`; `layout` names the PyTorch axes for error messages.
    `buffers`: names of the reference's constant tables, skipped because ours are constants.
    `roots`: the first name components that belong to the layer; None: every name does.
    """

    def __init__(self, params=(), buffers=(), roots=None):
        self.params = list(params)
        self.buffers = set(buffers)
        self.roots = roots

    def nest(self, name, plan):
        self.params += [(f"{name}.{key}", *rest) for key, *rest in plan.params]
        self.buffers |= {f"{name}.{key}" for key in plan.buffers}
        return self


def _linear(name, dense, layout):
    """An `nn.Linear` called `name` (no bias when the Dense has none) into a Keras Dense."""
    params = [(f"{name}.weight", dense.kernel, LINEAR_AXES, f"({layout})")]
    if dense.use_bias:
        params.append((f"{name}.bias", dense.bias, None, "(d_model,)"))
    return params


def _token_plan(layer):
    params = [("tokenConv.weight", layer.kernel, CONV1D_AXES, "(d_model, c_in, kernel_size)")]
    if layer.use_bias:
        params.append(("tokenConv.bias", layer.bias, None, "(d_model,)"))
    return _Plan(params)


def _time_feature_plan(layer):
    params = [("embed.weight", layer.kernel, LINEAR_AXES, "(d_model, num_features)")]
    if layer.use_bias:
        params.append(("embed.bias", layer.bias, None, "(d_model,)"))
    return _Plan(params)


def _temporal_plan(layer):
    plan = _Plan()
    for field, _ in layer.fields:
        table = getattr(layer, f"{field}_embed")
        if layer.embed_type == "fixed":
            plan.buffers.add(f"{field}_embed.emb.weight")
        else:
            layout = f"({field} rows, d_model)"
            plan.params.append((f"{field}_embed.weight", table.embeddings, None, layout))
    return plan


def _summed_plan(layer):
    # Time-Series-Library's DataEmbedding_wo_pos builds a PositionalEmbedding it never uses, so
    # its `pe` is skipped for DataEmbeddingWithoutPosition too.
    plan = _Plan(buffers=["position_embedding.pe"])
    plan.nest("value_embedding", _token_plan(layer.value_embedding))
    return plan.nest("temporal_embedding", _plan(layer.temporal_embedding))


def _patch_plan(layer):
    if layer.position == "fixed":
        params = _linear("value_embedding", layer.value_embedding, "d_model, patch_len")
        return _Plan(params, buffers=["position_embedding.pe"])
    # The original PatchTST keeps W_P and W_pos beside its encoder in one module (the backbone):
    # the encoder's weights share the prefix and are not ours to check.
    params = _linear("W_P", layer.value_embedding, "d_model, patch_len")
    params.append(("W_pos", layer.position_embedding, None, "(num_patches, d_model)"))
    return _Plan(params, roots=("W_P", "W_pos"))


def _inverted_plan(layer):
    return _Plan(_linear("value_embedding", layer.value_embedding, "d_model, c_in"))


SUPPORTED_LAYERS = (
    "TokenEmbedding",
    "PositionalEmbedding",
    "FixedEmbedding",
    "TemporalEmbedding",
    "TimeFeatureEmbedding",
    "DataEmbedding",
    "DataEmbeddingWithoutPosition",
    "DataEmbeddingInverted",
    "PatchEmbedding",
)

_PLANS = (
    (TokenEmbedding, _token_plan),
    (PositionalEmbedding, lambda layer: _Plan(buffers=["pe"])),
    (FixedEmbedding, lambda layer: _Plan(buffers=["emb.weight"])),
    (TemporalEmbedding, _temporal_plan),
    (TimeFeatureEmbedding, _time_feature_plan),
    ((DataEmbedding, DataEmbeddingWithoutPosition), _summed_plan),
    (DataEmbeddingInverted, _inverted_plan),
    (PatchEmbedding, _patch_plan),
)


def _plan(layer):
    return next(make(layer) for layer_type, make in _PLANS if isinstance(layer, layer_type))


def _pytorch_shape(variable, axes):
    shape = tuple(int(size) for size in variable.shape)
    if axes is None:
        return shape
    return tuple(shape[axis] for axis in np.argsort(axes))


def shape_text(shape):
    """A shape as PyTorch prints it: `(3,)`, `(16, 7, 3)`."""
    return "(" + ", ".join(str(size) for size in shape) + ("," if len(shape) == 1 else "") + ")"


def converted_weight(key, array, dtype):
    """`(array in dtype, None)`, or `(None, problem)` if finite values of `array` overflow it."""
    dtype = tf.as_dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        value = array.astype(dtype.as_numpy_dtype)
        overflow = np.isfinite(array.astype(np.float64)) & ~np.isfinite(value.astype(np.float64))
    if not overflow.any():
        return value, None
    index = tuple(int(i) for i in np.argwhere(overflow)[0])
    return None, (
        f"{key!r} holds {int(overflow.sum())} value(s) beyond the range of {dtype.name} "
        f"(+-{dtype.max:.6g}), e.g. {float(array[index]):.6g} at index {index}"
    )


def load_pytorch_weights(layer, state_dict, prefix=""):
    """Loads a PyTorch `state_dict` of the reference embedding into a built `layer`.

    Names and layouts are those of Time-Series-Library `layers/Embed.py`; Informer's original
    `models/embed.py` has the same names plus biases (build our layer with
    `convention="informer"` or `use_bias=True` for it). D is d_model; names are relative to
    `prefix`:

    - TokenEmbedding: `tokenConv.weight (D, c_in, k)`, transposed (2, 1, 0) to our kernel;
      `tokenConv.bias (D,)` when `use_bias`.
    - TimeFeatureEmbedding: `embed.weight (D, F)`, transposed; `embed.bias (D,)` when `use_bias`.
    - TemporalEmbedding 'learned': `<field>_embed.weight` as it is, for the fields of `freq`:
      month (13, D), day (32, D), weekday (7, D), hour (24, D), minute (4, D).
      'fixed': `<field>_embed.emb.weight`, skipped. The reference always has the hour, weekday,
      day and month tables (minute too for 't' only); ours has the fields of `freq`, so loading
      a reference model of daily or coarser data reports its extra tables as unexpected:
      that model computes something else (it adds the hour-0 row to every step).
    - DataEmbedding, DataEmbeddingWithoutPosition: `value_embedding.` + TokenEmbedding's names,
      `temporal_embedding.` + TemporalEmbedding's or TimeFeatureEmbedding's, and
      `position_embedding.pe`, skipped (Time-Series-Library's `DataEmbedding_wo_pos` has it too).
    - DataEmbeddingInverted: `value_embedding.weight (D, L)`, transposed; `value_embedding.bias`.
    - PatchEmbedding `position="fixed"`: `value_embedding.weight (D, patch_len)`, transposed
      (`.bias` when `use_bias`); `position_embedding.pe`, skipped.
      `position="learned"` takes the original PatchTST names: `W_P.weight (D, patch_len)`,
      transposed; `W_P.bias (D,)` when `use_bias`; `W_pos (P, D)` as it is.

    PositionalEmbedding (`pe`) and FixedEmbedding (`emb.weight`) have nothing to load: their
    buffers are skipped. The skipped buffers are not compared with our constant tables.

    Args:
        layer: one of the layers above, built (called once, or `layer.build(input_shape)`):
            its weights must exist.
        state_dict: mapping of names to arrays, e.g. `{k: v.detach().cpu().numpy() for k, v in
            module.state_dict().items()}`. Values go through `np.asarray`; no PyTorch needed.
        prefix: str, the name of the embedding module within the model, with its trailing dot
            (e.g. `"enc_embedding."`, or `"model.backbone."` for PatchTST). Keys that do not
            start with it are ignored; every key that does must be one of the layer's
            parameters or skipped buffers, except for a 'learned' PatchEmbedding, whose
            PatchTST backbone also holds the encoder: there only `W_P.*` and `W_pos` are read.

    Returns:
        The keys of `state_dict` that were skipped as constant buffers, in `state_dict` order.

    Raises:
        TypeError: `layer` is not a supported layer, `state_dict` is not a mapping, or
            `prefix` is not a string.
        ValueError: `layer` is not built; or keys are missing or unexpected, or arrays are not
            numeric (or cannot be read by `np.asarray`, as a torch tensor that requires grad or
            holds bfloat16), have the wrong shape, or hold finite values beyond the range of the
            variable's dtype (1e39 into float32): one message lists every such problem, with the
            expected PyTorch shape and layout. Nothing is assigned unless everything loads. NaN
            and Inf load as they are.

    Example:

    >>> import numpy as np
    >>> from tf_tsembed import DataEmbedding
    >>> layer = DataEmbedding(c_in=7, d_model=16, embed_type="timeF", freq="h")
    >>> layer.build((None, 96, 7))
    >>> rng = np.random.default_rng(0)
    >>> state_dict = {
    ...     "enc_embedding.value_embedding.tokenConv.weight": rng.normal(size=(16, 7, 3)),
    ...     "enc_embedding.position_embedding.pe": np.zeros((1, 5000, 16)),
    ...     "enc_embedding.temporal_embedding.embed.weight": rng.normal(size=(16, 4)),
    ...     "projection.weight": rng.normal(size=(7, 16)),
    ... }
    >>> load_pytorch_weights(layer, state_dict, prefix="enc_embedding.")
    ['enc_embedding.position_embedding.pe']
    """
    name = f"{type(layer).__name__} {getattr(layer, 'name', '')!r}"
    if not isinstance(state_dict, collections.abc.Mapping):
        raise TypeError(
            f"`state_dict` must be a mapping of names to arrays; received a "
            f"{type(state_dict).__name__}."
        )
    if not isinstance(prefix, str):
        raise TypeError(f"`prefix` must be a string; received prefix={prefix!r}.")
    if not isinstance(layer, tuple(layer_type for layer_type, _ in _PLANS)):
        raise TypeError(
            f"load_pytorch_weights supports {', '.join(SUPPORTED_LAYERS)}; received a "
            f"{type(layer).__name__}."
        )
    if not layer.built:
        raise ValueError(
            f"load_pytorch_weights needs a built layer, but {name} is not built, so its weights do "
            f"not exist yet: call it once on a batch, or call layer.build(input_shape), first."
        )
    plan = _plan(layer)
    under_prefix = [key for key in state_dict if isinstance(key, str) and key.startswith(prefix)]
    owned = [
        key
        for key in under_prefix
        if plan.roots is None or key[len(prefix) :].split(".")[0] in plan.roots
    ]
    params = {prefix + key: rest for key, *rest in plan.params}
    buffers = {prefix + key for key in plan.buffers}
    problems = []
    missing = [key for key in params if key not in state_dict]
    if missing:
        problems.append(f"missing keys: {missing}")
        if prefix and not under_prefix:
            problems.append(f"no key of state_dict starts with prefix={prefix!r}")
    unexpected = [key for key in owned if key not in params and key not in buffers]
    if unexpected:
        problems.append(f"unexpected keys: {unexpected}")
    assignments = []
    for key, (variable, axes, layout) in params.items():
        if key not in state_dict:
            continue
        try:
            array = np.asarray(state_dict[key])
        except (TypeError, ValueError, RuntimeError) as error:
            # e.g. a tensor that requires grad, a bfloat16 or GPU torch tensor, a ragged list
            problems.append(
                f"{key!r} could not be read as a NumPy array ({type(error).__name__}: {error}); "
                f"pass arrays, e.g. tensor.detach().cpu().float().numpy()"
            )
            continue
        expected = _pytorch_shape(variable, axes)
        if not (_checks.is_floating(array.dtype) or array.dtype.kind in "iu"):
            problems.append(f"{key!r} must hold numbers; received dtype {array.dtype}")
        elif array.shape != expected:
            problems.append(
                f"{key!r} must have the PyTorch shape {layout} = {shape_text(expected)}; "
                f"received {shape_text(array.shape)}"
            )
        else:
            value, problem = converted_weight(key, array, variable.dtype)
            if problem:
                problems.append(problem)
            else:
                assignments.append((variable, value if axes is None else value.transpose(axes)))
    if problems:
        raise ValueError(
            f"Cannot load the PyTorch weights into {name} (prefix={prefix!r}):\n  "
            + "\n  ".join(problems)
        )
    for variable, value in assignments:
        variable.assign(value)
    return [key for key in owned if key in buffers]
