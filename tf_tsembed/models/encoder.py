"""The Transformer encoder and decoder of Time-Series-Library (`layers/Transformer_EncDec.py`).

Written to match the PyTorch reference where it changes training: PyTorch's default Linear and
Conv1d initialisation, full attention with dropout on the attention weights, a post-norm layer
whose feed-forward is two 1x1 convolutions (position-wise linear maps), LayerNorm epsilon 1e-5.

>>> layer = EncoderLayer(d_model=8, n_heads=2, d_ff=16, dropout=0.1)
>>> layer(tf.zeros((2, 5, 8))).shape
TensorShape([2, 5, 8])
"""

import math

import tensorflow as tf

keras = tf.keras

LAYER_NORM_EPSILON = 1e-5  # PyTorch's nn.LayerNorm default; Keras' is 1e-3.


def torch_linear(units, fan_in, use_bias=True, name=None):
    """A Dense layer initialised as PyTorch's nn.Linear (and Conv1d with kernel 1) is.

    PyTorch draws the weight from kaiming_uniform(a=sqrt(5)), which is U(+-1/sqrt(fan_in)), and
    the bias from the same uniform.
    """
    bound = 1.0 / math.sqrt(fan_in)
    return keras.layers.Dense(
        units,
        use_bias=use_bias,
        kernel_initializer=keras.initializers.RandomUniform(-bound, bound),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound),
        name=name,
    )


@keras.utils.register_keras_serializable(package="tf_tsembed")
class FullAttention(keras.layers.Layer):
    """TSLib's AttentionLayer around FullAttention: multi-head scaled dot-product attention.

    Queries (from `x`), keys and values (from `context`, by default `x`) are projected to
    `n_heads` heads of `d_model // n_heads`, the scores scaled by 1/sqrt(head size), masked
    when `causal` (query i sees keys 0..i, TSLib's TriangularCausalMask), softmax, dropout on
    the attention weights, and the heads projected back to `d_model`.
    """

    def __init__(self, d_model, n_heads, dropout, causal=False, **kwargs):
        super().__init__(**kwargs)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of n_heads={n_heads}.")
        self.d_model, self.n_heads, self.dropout, self.causal = d_model, n_heads, dropout, causal
        self.head_size = d_model // n_heads
        self.query = torch_linear(d_model, d_model, name="query")
        self.key = torch_linear(d_model, d_model, name="key")
        self.value = torch_linear(d_model, d_model, name="value")
        self.out = torch_linear(d_model, d_model, name="out")
        self.attention_dropout = keras.layers.Dropout(dropout, name="attention_dropout")

    def build(self, x_shape, context_shape=None):
        self.query.build(x_shape)
        for layer in (self.key, self.value):
            layer.build(x_shape if context_shape is None else context_shape)
        self.out.build(tuple(x_shape[:-1]) + (self.d_model,))
        self.built = True

    def _heads(self, x):
        shape = tf.shape(x)
        return tf.reshape(x, [shape[0], shape[1], self.n_heads, self.head_size])

    def call(self, x, context=None, training=None):
        context = x if context is None else context
        query = self._heads(self.query(x))
        key, value = self._heads(self.key(context)), self._heads(self.value(context))
        scores = tf.einsum("blhe,bshe->bhls", query, key) / math.sqrt(self.head_size)
        if self.causal:
            visible = tf.cast(tf.linalg.band_part(tf.ones_like(scores[0, 0]), -1, 0), tf.bool)
            scores = tf.where(visible, scores, tf.constant(-math.inf, scores.dtype))
        weights = self.attention_dropout(tf.nn.softmax(scores, axis=-1), training=training)
        heads = tf.einsum("bhls,bshd->blhd", weights, value)
        shape = tf.shape(x)
        return self.out(tf.reshape(heads, [shape[0], shape[1], self.d_model]))

    def get_config(self):
        config = super().get_config()
        config.update(
            d_model=self.d_model, n_heads=self.n_heads, dropout=self.dropout, causal=self.causal
        )
        return config


class _PostNormBlock(keras.layers.Layer):
    """What TSLib's encoder and decoder layers share: their arguments and the feed-forward block
    `conv2(drop(act(conv1(x))))`, the convolutions being 1x1 (position-wise)."""

    def __init__(self, d_model, n_heads, d_ff, dropout, activation="gelu", **kwargs):
        super().__init__(**kwargs)
        if activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu'; got {activation!r}.")
        self.d_model, self.n_heads, self.d_ff = d_model, n_heads, d_ff
        self.dropout, self.activation = dropout, activation

    def _create_feed_forward(self):
        # Called after the attention layers: Keras seeds initializers in creation order.
        self.conv1 = torch_linear(self.d_ff, self.d_model, name="conv1")
        self.conv2 = torch_linear(self.d_model, self.d_ff, name="conv2")

    def _build_feed_forward(self, x_shape):
        self.conv1.build(x_shape)
        self.conv2.build(tuple(x_shape[:-1]) + (self.d_ff,))

    def _feed_forward(self, x, hidden_dropout, training):
        # F.gelu is the exact (erf) GELU, as Keras' default.
        hidden = keras.activations.get(self.activation)(self.conv1(x))
        return self.conv2(hidden_dropout(hidden, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_ff=self.d_ff,
            dropout=self.dropout,
            activation=self.activation,
        )
        return config


@keras.utils.register_keras_serializable(package="tf_tsembed")
class EncoderLayer(_PostNormBlock):
    """TSLib's EncoderLayer: `x = norm1(x + drop(attn(x)))`, then
    `norm2(x + drop(conv2(drop(act(conv1(x))))))`."""

    def __init__(self, d_model, n_heads, d_ff, dropout, activation="gelu", **kwargs):
        super().__init__(d_model, n_heads, d_ff, dropout, activation, **kwargs)
        self.attention = FullAttention(d_model, n_heads, dropout, name="attention")
        self._create_feed_forward()
        self.norm1 = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm1")
        self.norm2 = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm2")
        self.attention_output_dropout = keras.layers.Dropout(dropout, name="dropout_attention")
        self.hidden_dropout = keras.layers.Dropout(dropout, name="dropout_hidden")
        self.output_dropout = keras.layers.Dropout(dropout, name="dropout_output")

    def build(self, input_shape):
        self.attention.build(input_shape)
        for layer in (self.norm1, self.norm2):
            layer.build(input_shape)
        self._build_feed_forward(input_shape)
        self.built = True

    def call(self, x, training=None):
        x = self.norm1(
            x
            + self.attention_output_dropout(self.attention(x, training=training), training=training)
        )
        y = self._feed_forward(x, self.hidden_dropout, training)
        return self.norm2(x + self.output_dropout(y, training=training))


def encoder(x, *, e_layers, d_model, n_heads, d_ff, dropout, activation="gelu"):
    """`e_layers` EncoderLayers applied to the Functional tensor `x (B, tokens, d_model)`."""
    for index in range(e_layers):
        x = EncoderLayer(
            d_model, n_heads, d_ff, dropout, activation, name=f"encoder_layer_{index}"
        )(x)
    return x


@keras.utils.register_keras_serializable(package="tf_tsembed")
class DecoderLayer(_PostNormBlock):
    """TSLib's DecoderLayer: `x = norm1(x + drop(causal self-attn(x)))`,
    `x = norm2(x + drop(cross-attn(x, context)))`, then the EncoderLayer's feed-forward block."""

    def __init__(self, d_model, n_heads, d_ff, dropout, activation="gelu", **kwargs):
        super().__init__(d_model, n_heads, d_ff, dropout, activation, **kwargs)
        self.self_attention = FullAttention(
            d_model, n_heads, dropout, causal=True, name="self_attention"
        )
        self.cross_attention = FullAttention(d_model, n_heads, dropout, name="cross_attention")
        self._create_feed_forward()
        self.norms = [
            keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"norm{i}")
            for i in (1, 2, 3)
        ]
        self.dropouts = [keras.layers.Dropout(dropout, name=f"dropout_{i}") for i in range(4)]

    def build(self, x_shape, context_shape=None):
        # Legacy Keras passes the first input's shape only; the context's width is d_model too.
        context_shape = x_shape if context_shape is None else context_shape
        self.self_attention.build(x_shape)
        self.cross_attention.build(x_shape, context_shape)
        for layer in self.norms:
            layer.build(x_shape)
        self._build_feed_forward(x_shape)
        self.built = True

    def call(self, x, context, training=None):
        drop = [lambda t, d=d: d(t, training=training) for d in self.dropouts]
        x = self.norms[0](x + drop[0](self.self_attention(x, training=training)))
        x = self.norms[1](x + drop[1](self.cross_attention(x, context, training=training)))
        return self.norms[2](x + drop[3](self._feed_forward(x, self.dropouts[2], training)))
