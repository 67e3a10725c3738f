"""The one TPU connection of the examples and the benchmarks."""

import tensorflow as tf

# What TPUClusterResolver and the TPU system raise when no TPU answers.
TPU_CONNECT_ERRORS = (ValueError, RuntimeError, tf.errors.OpError)


def connect_tpu(name):
    """Connects to the TPU `name` and returns a `tf.distribute.TPUStrategy` over it.

    `name` is "local" on a TPU VM, else the TPU's name or grpc:// address (None or "": the
    resolver's default, TPU_NAME). Raises one of `TPU_CONNECT_ERRORS` when no TPU answers.
    """
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
