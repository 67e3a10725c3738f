"""Time-series embedding layers for tf.keras, exact to the reference and compiled with XLA."""

from tf_tsembed.positional_embedding import PositionalEmbedding
from tf_tsembed.token_embedding import TokenEmbedding

__version__ = "0.1.0"

__all__ = ["PositionalEmbedding", "TokenEmbedding", "__version__"]
