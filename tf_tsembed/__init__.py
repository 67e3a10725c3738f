"""Time-series embedding layers for tf.keras, exact to the reference and compiled with XLA."""

# `models` registers its classes: a saved model loads after `import tf_tsembed`.
from tf_tsembed import models
from tf_tsembed.data_embedding import (
    DataEmbedding,
    DataEmbeddingInverted,
    DataEmbeddingWithoutPosition,
)
from tf_tsembed.patch_embedding import PatchEmbedding, repeat_for_channels
from tf_tsembed.positional_embedding import PositionalEmbedding
from tf_tsembed.pytorch_weights import load_pytorch_weights
from tf_tsembed.reversible_instance_norm import ReversibleInstanceNorm
from tf_tsembed.temporal_embedding import FixedEmbedding, TemporalEmbedding, TimeFeatureEmbedding
from tf_tsembed.token_embedding import TokenEmbedding

__version__ = "0.3.0"

__all__ = [
    "DataEmbedding",
    "DataEmbeddingInverted",
    "DataEmbeddingWithoutPosition",
    "FixedEmbedding",
    "PatchEmbedding",
    "PositionalEmbedding",
    "ReversibleInstanceNorm",
    "TemporalEmbedding",
    "TimeFeatureEmbedding",
    "TokenEmbedding",
    "load_pytorch_weights",
    "models",
    "repeat_for_channels",
    "__version__",
]
