"""The Transformer encoder and decoder of Time-Series-Library (`layers/Transformer_EncDec.py`).

Written to match the PyTorch reference where it changes training: PyTorch's default Linear and
Conv1d initialisation, full attention with dropout on the attention weights, a post-norm layer
whose feed-forward is two 1x1 convolutions (position-wise linear maps), LayerNorm epsilon 1e-5.
Informer's pieces too (`layers/SelfAttention_Family.py`): `ProbAttention`, selected in the layers
by `attention="prob"`, and the distilling `ConvLayer` between encoder layers.

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


class _ProjectedAttention(keras.layers.Layer):
    """TSLib's AttentionLayer: the query, key, value and output projections around an inner
    attention (`call`, written by the subclass)."""

    def __init__(self, d_model, n_heads, causal=False, **kwargs):
        super().__init__(**kwargs)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of n_heads={n_heads}.")
        self.d_model, self.n_heads, self.causal = d_model, n_heads, causal
        self.head_size = d_model // n_heads
        self.query = torch_linear(d_model, d_model, name="query")
        self.key = torch_linear(d_model, d_model, name="key")
        self.value = torch_linear(d_model, d_model, name="value")
        self.out = torch_linear(d_model, d_model, name="out")

    def build(self, x_shape, context_shape=None):
        self.query.build(x_shape)
        for layer in (self.key, self.value):
            layer.build(x_shape if context_shape is None else context_shape)
        self.out.build(tuple(x_shape[:-1]) + (self.d_model,))
        self.built = True

    def _heads(self, x):
        shape = tf.shape(x)
        return tf.reshape(x, [shape[0], shape[1], self.n_heads, self.head_size])

    def get_config(self):
        config = super().get_config()
        config.update(d_model=self.d_model, n_heads=self.n_heads, causal=self.causal)
        return config


@keras.utils.register_keras_serializable(package="tf_tsembed")
class FullAttention(_ProjectedAttention):
    """TSLib's AttentionLayer around FullAttention: multi-head scaled dot-product attention.

    Queries (from `x`), keys and values (from `context`, by default `x`) are projected to
    `n_heads` heads of `d_model // n_heads`, the scores scaled by 1/sqrt(head size), masked
    when `causal` (query i sees keys 0..i, TSLib's TriangularCausalMask), softmax, dropout on
    the attention weights, and the heads projected back to `d_model`.
    """

    def __init__(self, d_model, n_heads, dropout, causal=False, **kwargs):
        super().__init__(d_model, n_heads, causal, **kwargs)
        self.dropout = dropout
        self.attention_dropout = keras.layers.Dropout(dropout, name="attention_dropout")

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
        config.update(dropout=self.dropout)
        return config


def _has_seed_generator():
    """Keras 3 draws with a SeedGenerator; legacy tf_keras has none (tf.random then)."""
    return hasattr(keras, "random") and hasattr(keras.random, "SeedGenerator")


@keras.utils.register_keras_serializable(package="tf_tsembed")
class ProbAttention(_ProjectedAttention):
    """TSLib's AttentionLayer around ProbAttention: Informer's ProbSparse attention.

    With `L_Q` queries and `L_K` keys (static lengths), `sample_k = min(factor * ceil(ln L_K),
    L_K)` and `n_top = min(factor * ceil(ln L_Q), L_Q)`. Each query is scored against `sample_k`
    keys drawn uniformly (indices `(L_Q, sample_k)` in [0, L_K), the same for every batch row and
    head); the sparsity measure `M = max(scores) - sum(scores) / L_K` picks the `n_top` most
    active queries of each head, which attend to every key (scaled by 1/sqrt(head size), masked
    when `causal`: query i sees keys 0..i, TSLib's ProbMask). The others take the mean of the
    values (`causal=False`) or their cumulative sum up to the query (`causal=True`, which needs
    `L_Q == L_K`). No dropout: TSLib's ProbAttention never applies its attention dropout.

    TSLib returns the context heads-first `(B, H, L_Q, D)` and its AttentionLayer reads it as
    `(B, L_Q, H * D)`, so the output projection sees the heads "mixed" (Informer2020's
    mix=True); this layer does the same.

    The keys are drawn at every call, in inference too, as TSLib draws them: an Informer's
    forecast is stochastic exactly as TSLib's. The draws come from a `keras.random.SeedGenerator`
    (`seed`; None takes one from Python's `random`, so `keras.utils.set_random_seed` makes them
    reproducible), under legacy tf_keras from `tf.random.uniform(seed=seed)`. Set
    `sample_indices` to an int array `(L_Q, sample_k)` to use given indices instead (None draws
    again); in eager calls the indices used are kept as `last_sample`. Inside a `tf.function`
    (`predict`, `jit_compile`) `sample_indices` is read when the function is traced.

    Args:
        d_model, n_heads: sizes. factor: TSLib's `--factor` (c in c * ln L). causal: TSLib's
            mask_flag. seed: the draws' seed.
    """

    def __init__(self, d_model, n_heads, factor=5, causal=False, seed=None, **kwargs):
        super().__init__(d_model, n_heads, causal, **kwargs)
        if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
            raise ValueError(f"factor must be a positive int; received {factor!r}.")
        self.factor, self.seed = factor, seed
        self.seed_generator = keras.random.SeedGenerator(seed) if _has_seed_generator() else None
        self.sample_indices = None
        self.last_sample = None

    def sizes(self, queries, keys):
        """`(sample_k, n_top)` for `queries` and `keys` positions, TSLib's formulas."""
        sample_k = min(self.factor * math.ceil(math.log(keys)), keys)
        return sample_k, min(self.factor * math.ceil(math.log(queries)), queries)

    def _sample(self, queries, keys, sample_k):
        if self.sample_indices is not None:
            index = tf.convert_to_tensor(self.sample_indices)
            if tuple(index.shape) != (queries, sample_k):
                raise ValueError(
                    f"sample_indices must have shape {(queries, sample_k)} (queries, sample_k); "
                    f"received {tuple(index.shape)}."
                )
            return tf.cast(index, tf.int32)
        shape = (queries, sample_k)
        if self.seed_generator is not None:
            return keras.random.randint(shape, 0, keys, dtype="int32", seed=self.seed_generator)
        return tf.random.uniform(shape, 0, keys, dtype=tf.int32, seed=self.seed)

    def call(self, x, context=None, training=None):
        context = x if context is None else context
        queries, keys = x.shape[1], context.shape[1]
        if queries is None or keys is None or min(queries, keys) < 2:
            raise ValueError(
                "ProbAttention needs static lengths of at least 2 (its sample sizes are fixed "
                f"while tracing); received {queries} queries and {keys} keys."
            )
        if self.causal and queries != keys:
            raise ValueError(f"causal ProbAttention is self-attention; {queries} != {keys}.")
        sample_k, n_top = self.sizes(queries, keys)
        q, k, v = (
            tf.transpose(self._heads(layer(t)), [0, 2, 1, 3])  # (B, H, L, E)
            for layer, t in ((self.query, x), (self.key, context), (self.value, context))
        )
        index = self._sample(queries, keys, sample_k)
        if tf.executing_eagerly():
            self.last_sample = index
        sampled = tf.einsum("bhqe,bhqse->bhqs", q, tf.gather(k, index, axis=2))
        sparsity = tf.reduce_max(sampled, -1) - tf.reduce_sum(sampled, -1) / keys
        top = tf.math.top_k(sparsity, n_top, sorted=False).indices  # (B, H, n_top)
        scores = tf.einsum("bhne,bhke->bhnk", tf.gather(q, top, axis=2, batch_dims=2), k)
        scores /= math.sqrt(self.head_size)
        if self.causal:
            later = tf.range(keys)[None, None, None, :] > top[..., None]
            scores = tf.where(later, tf.constant(-math.inf, scores.dtype), scores)
            initial = tf.cumsum(v, axis=2)
        else:
            initial = tf.reduce_mean(v, axis=2, keepdims=True) + tf.zeros_like(q)
        attended = tf.einsum("bhnk,bhkd->bhnd", tf.nn.softmax(scores, axis=-1), v)
        # The selected rows replaced: a one-hot product, exact (distinct indices, zeros elsewhere).
        chosen = tf.one_hot(top, queries, dtype=v.dtype)  # (B, H, n_top, L_Q)
        kept = 1.0 - tf.reduce_sum(chosen, axis=2)[..., None]
        heads = initial * kept + tf.einsum("bhnq,bhnd->bhqd", chosen, attended)
        # Heads-first (B, H, L_Q, D) read as (B, L_Q, H * D): TSLib's view, the "mixed" output.
        return self.out(tf.reshape(heads, [tf.shape(x)[0], queries, self.d_model]))

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, seed=self.seed)
        return config


ATTENTIONS = ("full", "prob")


def _attention_layer(attention, d_model, n_heads, dropout, factor, causal, name):
    if attention == "full":
        return FullAttention(d_model, n_heads, dropout, causal=causal, name=name)
    return ProbAttention(d_model, n_heads, factor, causal=causal, name=name)


@keras.utils.register_keras_serializable(package="tf_tsembed")
class ConvLayer(keras.layers.Layer):
    """Informer's distilling layer (TSLib's ConvLayer): `(B, L, C) -> (B, floor((L + 1) / 2) + 1,
    C)`.

    Conv1d(C, C, kernel 3, padding 2, circular) giving L + 2 steps, BatchNorm1d (PyTorch's
    momentum 0.1 is Keras' 0.9, eps 1e-5), ELU, MaxPool1d(3, stride 2, padding 1). In training,
    Keras' BatchNormalization updates its moving variance with the biased batch variance
    (PyTorch: the unbiased one); inference is the same.
    """

    def __init__(self, d_model, **kwargs):
        super().__init__(**kwargs)
        self.d_model = d_model
        bound = 1.0 / math.sqrt(3 * d_model)  # nn.Conv1d's init, fan_in = C * kernel
        self.down_conv = keras.layers.Conv1D(
            d_model,
            3,
            kernel_initializer=keras.initializers.RandomUniform(-bound, bound),
            bias_initializer=keras.initializers.RandomUniform(-bound, bound),
            name="down_conv",
        )
        self.norm = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="norm")

    def build(self, input_shape):
        self.down_conv.build((None, None, self.d_model))
        self.norm.build((None, None, self.d_model))
        self.built = True

    def call(self, x, training=None):
        length = x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
        # Circular padding 2: steps -2 .. L+1 taken modulo L.
        wrapped = tf.gather(x, tf.math.floormod(tf.range(-2, length + 2), length), axis=1)
        y = tf.nn.elu(self.norm(self.down_conv(wrapped), training=training))
        y = tf.pad(y, [[0, 0], [1, 1], [0, 0]], constant_values=y.dtype.min)  # max pool's -inf
        return tf.nn.max_pool1d(y, 3, 2, "VALID")

    def compute_output_shape(self, input_shape):
        length = input_shape[1]
        length = None if length is None else (length + 1) // 2 + 1
        return (input_shape[0], length, self.d_model)

    def get_config(self):
        config = super().get_config()
        config.update(d_model=self.d_model)
        return config


class _PostNormBlock(keras.layers.Layer):
    """What TSLib's encoder and decoder layers share: their arguments and the feed-forward block
    `conv2(drop(act(conv1(x))))`, the convolutions being 1x1 (position-wise), and the attention
    type: `attention="full"` (FullAttention) or "prob" (ProbAttention with `factor`)."""

    def __init__(
        self, d_model, n_heads, d_ff, dropout, activation="gelu", attention="full", factor=5,
        **kwargs,
    ):  # fmt: skip
        super().__init__(**kwargs)
        if activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu'; got {activation!r}.")
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be 'full' or 'prob'; got {attention!r}.")
        self.d_model, self.n_heads, self.d_ff = d_model, n_heads, d_ff
        self.dropout, self.activation = dropout, activation
        self.attention_type, self.factor = attention, factor

    def _attention(self, causal, name):
        return _attention_layer(
            self.attention_type, self.d_model, self.n_heads, self.dropout, self.factor, causal, name
        )

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
            attention=self.attention_type,
            factor=self.factor,
        )
        return config


@keras.utils.register_keras_serializable(package="tf_tsembed")
class EncoderLayer(_PostNormBlock):
    """TSLib's EncoderLayer: `x = norm1(x + drop(attn(x)))`, then
    `norm2(x + drop(conv2(drop(act(conv1(x))))))`; `attention` "full" or "prob" (Informer)."""

    def __init__(
        self, d_model, n_heads, d_ff, dropout, activation="gelu", attention="full", factor=5,
        **kwargs,
    ):  # fmt: skip
        super().__init__(d_model, n_heads, d_ff, dropout, activation, attention, factor, **kwargs)
        self.attention = self._attention(False, "attention")
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


def encoder(
    x, *, e_layers, d_model, n_heads, d_ff, dropout, activation="gelu", attention="full",
    factor=5, distil=False,
):  # fmt: skip
    """`e_layers` EncoderLayers applied to the Functional tensor `x (B, tokens, d_model)`; with
    `distil` (Informer), a ConvLayer `distil_conv_{k}` after each but the last."""
    for index in range(e_layers):
        x = EncoderLayer(
            d_model, n_heads, d_ff, dropout, activation, attention, factor,
            name=f"encoder_layer_{index}",
        )(x)  # fmt: skip
        if distil and index < e_layers - 1:
            x = ConvLayer(d_model, name=f"distil_conv_{index}")(x)
    return x


@keras.utils.register_keras_serializable(package="tf_tsembed")
class DecoderLayer(_PostNormBlock):
    """TSLib's DecoderLayer: `x = norm1(x + drop(causal self-attn(x)))`,
    `x = norm2(x + drop(cross-attn(x, context)))`, then the EncoderLayer's feed-forward block;
    `attention` "full" or "prob" (Informer: both attentions ProbAttention, as TSLib's)."""

    def __init__(
        self, d_model, n_heads, d_ff, dropout, activation="gelu", attention="full", factor=5,
        **kwargs,
    ):  # fmt: skip
        super().__init__(d_model, n_heads, d_ff, dropout, activation, attention, factor, **kwargs)
        self.self_attention = self._attention(True, "self_attention")
        self.cross_attention = self._attention(False, "cross_attention")
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
