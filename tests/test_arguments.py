"""Every layer's constructor arguments are strict: booleans accept only bools, integers only ints.

The arguments are found from the constructors' signatures (default a bool, or an int), so a new
argument is covered without a new test; the expected sets below make a missed one visible.
"""

import inspect

import numpy as np
import pytest
import tensorflow as tf

from tf_tsembed import (
    DataEmbedding,
    DataEmbeddingInverted,
    DataEmbeddingWithoutPosition,
    FixedEmbedding,
    PatchEmbedding,
    PositionalEmbedding,
    ReversibleInstanceNorm,
    TemporalEmbedding,
    TimeFeatureEmbedding,
    TokenEmbedding,
)

# A valid construction of each layer, its integer arguments included; the booleans come from the
# signature defaults.
VALID = {
    TokenEmbedding: dict(c_in=3, d_model=8, kernel_size=3),
    PositionalEmbedding: dict(max_len=50, d_model=8),
    FixedEmbedding: dict(c_in=5, d_model=8),
    TemporalEmbedding: dict(d_model=8),
    TimeFeatureEmbedding: dict(d_model=8),
    DataEmbedding: dict(c_in=3, d_model=8, max_len=50),
    DataEmbeddingWithoutPosition: dict(c_in=3, d_model=8),
    DataEmbeddingInverted: dict(c_in=12, d_model=8),
    PatchEmbedding: dict(d_model=8, patch_len=4, stride=2, padding=2, max_len=50),
    ReversibleInstanceNorm: dict(num_features=3),
}
EXPECTED_BOOLEANS = {
    TokenEmbedding: {"use_bias", "jit_compile"},
    TimeFeatureEmbedding: {"use_bias"},
    DataEmbedding: {"jit_compile"},
    DataEmbeddingWithoutPosition: {"jit_compile"},
    PatchEmbedding: {"use_bias"},
    ReversibleInstanceNorm: {"affine", "subtract_last"},
}
NOT_BOOLEANS = ["False", "True", 0, 1, 1.0, None, np.array(True), tf.constant(True)]
NOT_INTEGERS = [3.0, 2.5, "3", True, None, np.float32(3), tf.constant(3)]


def _defaults(layer_type):
    parameters = inspect.signature(layer_type.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _booleans(layer_type):
    return sorted(name for name, value in _defaults(layer_type).items() if isinstance(value, bool))


def _integers(layer_type):
    return sorted(name for name, value in VALID[layer_type].items() if isinstance(value, int))


def _cases(kind):
    return [
        pytest.param(layer_type, name, id=f"{layer_type.__name__}-{name}")
        for layer_type in VALID
        for name in kind(layer_type)
    ]


def test_every_boolean_argument_is_found():
    found = {layer_type: set(_booleans(layer_type)) for layer_type in VALID}
    assert {k: v for k, v in found.items() if v} == EXPECTED_BOOLEANS


@pytest.mark.parametrize("layer_type,name", _cases(_booleans))
def test_boolean_arguments_accept_only_bools(layer_type, name):
    for value in (True, False, np.bool_(True)):
        layer = layer_type(**VALID[layer_type], **{name: value})
        assert getattr(layer, name) is bool(value)
        assert layer.get_config()[name] is bool(value)
    for value in NOT_BOOLEANS:
        message = rf"`{name}` must be a bool \(True or False\); received {name}="
        with pytest.raises(TypeError, match=message):
            layer_type(**VALID[layer_type], **{name: value})


@pytest.mark.parametrize("layer_type,name", _cases(_integers))
def test_integer_arguments_refuse_floats_strings_and_bools(layer_type, name):
    layer = layer_type(**dict(VALID[layer_type], **{name: np.int64(VALID[layer_type][name])}))
    assert type(getattr(layer, name)) is int
    for value in NOT_INTEGERS:
        with pytest.raises(ValueError, match=rf"must be a .*integer; received {name}="):
            layer_type(**dict(VALID[layer_type], **{name: value}))


def test_reversible_instance_norm_return_stats_accepts_only_bools():
    layer = ReversibleInstanceNorm(3)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    y, stats = layer(x, return_stats=True)
    assert y.shape == (2, 5, 3) and len(stats) == 2
    message = r"`return_stats` must be a bool.*received return_stats='no'"
    with pytest.raises(TypeError, match=message):
        layer(x, return_stats="no")
