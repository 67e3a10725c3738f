"""A small model with every summed embedding layer at its default arguments, for the distribution,
serving and XLA tests: DataEmbedding (value + calendar + position) plus a TokenEmbedding and a
PositionalEmbedding of its own, flattened into a Dense forecast head."""

import tensorflow as tf

from tf_tsembed import DataEmbedding, PositionalEmbedding, TokenEmbedding

keras = tf.keras
NUM_MARKS = 4  # freq "h": month, day, weekday, hour


def default_layers_model(c_in, length, d_model, outputs, **data_embedding_kwargs):
    """`(values (B, length, c_in) float32, marks (B, length, 4) int32) -> (B, outputs)`, B free."""
    values = keras.Input((length, c_in), name="values")
    marks = keras.Input((length, NUM_MARKS), dtype="int32", name="marks")
    x = DataEmbedding(c_in, d_model, **data_embedding_kwargs)(values, marks)
    x = x + TokenEmbedding(c_in, d_model)(values) + PositionalEmbedding(length, d_model)(values)
    return keras.Model([values, marks], keras.layers.Dense(outputs)(keras.layers.Flatten()(x)))
