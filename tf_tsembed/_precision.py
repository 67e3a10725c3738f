"""Where 16-bit arithmetic happens: the dtype the embeddings compute in, and how weights are rounded."""

import tensorflow as tf


def on_accelerator():
    """Whether TensorFlow sees a GPU or TPU: decided while tracing, from the devices present."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def math_dtype(compute_dtype):
    """The dtype the embeddings' arithmetic runs in for a layer whose compute dtype is `compute_dtype`.

    16-bit compute dtypes on CPU get float32: the inputs go in unrounded, the weights rounded to
    the compute dtype (`rounded_weight`), and the result is rounded once. XLA's CPU dot converts
    16-bit operands to float32 anyway, and a float32 -> bfloat16 conversion fused into
    TokenEmbedding's stacking gather runs element by element: rounding a float32 input to
    bfloat16 first made that layer under jit 1.4-1.6x slower at (256, 96, 7 -> 64), and a
    bfloat16 dot is slower than a float32 one rounded after (1.38-1.44x against 1.28-1.30x the
    float32 time at (32, 96, 7 -> 512)). Accelerators keep the 16-bit operands their matrix units
    are built for.
    """
    compute_dtype = tf.as_dtype(compute_dtype)
    if compute_dtype in (tf.bfloat16, tf.float16) and not on_accelerator():
        return tf.float32
    return compute_dtype


def rounded_weight(weight, compute_dtype, dtype=None):
    """`weight` rounded to `compute_dtype`, then cast to `dtype` (default `math_dtype(compute_dtype)`).

    Keras rounds weights read in `call` to the compute dtype under mixed precision, except that
    Keras 3 skips it for a layer with `autocast=False` called inside another mixed-precision
    layer (Keras 2 always rounds): rounding here gives the same result wherever the layer runs.
    """
    dtype = math_dtype(compute_dtype) if dtype is None else dtype
    return tf.cast(tf.cast(weight, compute_dtype), dtype)
