"""Where 16-bit arithmetic happens: the dtype the embeddings compute in, how weights are rounded."""

import tensorflow as tf

_SIXTEEN_BIT = (tf.bfloat16, tf.float16)


def on_accelerator(tensor):
    """Whether the ops on `tensor` run on a GPU or TPU, judged while tracing.

    A tensor placed on a device (eager, or under `tf.device`) answers for itself; an unplaced
    graph tensor goes where TensorFlow puts unplaced ops: the first GPU or TPU it sees, if any.
    """
    device_type = tf.DeviceSpec.from_string(tensor.device or "").device_type
    if device_type:
        return device_type in ("GPU", "TPU")
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def math_dtype(compute_dtype, tensor):
    """The dtype the arithmetic on `tensor` runs in for a layer of compute dtype `compute_dtype`.

    16-bit compute dtypes on CPU get float32: the inputs go in unrounded, the weights rounded to
    the compute dtype (`rounded_weight`), and the result is rounded once. XLA's CPU dot converts
    16-bit operands to float32 anyway, and a 16-bit conversion fused into a gather runs element
    by element. Accelerators keep the 16-bit operands their matrix units are built for.
    """
    compute_dtype = tf.as_dtype(compute_dtype)
    if compute_dtype in _SIXTEEN_BIT and not on_accelerator(tensor):
        return tf.float32
    return compute_dtype


def rounded_weight(weight, compute_dtype):
    """`weight` (or None) rounded to `compute_dtype`; the math casts it on to its own dtype.

    Keras rounds weights read in `call` to the compute dtype under mixed precision, except that
    Keras 3 skips it for a layer with `autocast=False` called inside another mixed-precision
    layer (Keras 2 always rounds): rounding here gives the same result wherever the layer runs.
    The second cast happens inside the compiled math, where it fuses with the rest.
    """
    return None if weight is None else tf.cast(weight, compute_dtype)
