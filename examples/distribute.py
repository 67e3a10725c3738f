"""The tf.distribute strategies of the examples, and the one TPU connection (benchmarks too)."""

import os
import shutil
import tempfile

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")

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


def make_strategy(name, tpu=""):
    """The tf.distribute strategy called `name`."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            return connect_tpu(tpu)
        except TPU_CONNECT_ERRORS as error:
            raise RuntimeError(
                f"--strategy tpu: no TPU found (--tpu={tpu!r}). Run on a Cloud TPU VM with "
                f"--tpu local, or pass the TPU's name or grpc:// address with --tpu. "
                f"TPUClusterResolver said: {error}"
            ) from error
    raise ValueError(f"--strategy must be one of {list(STRATEGIES)}; got {name!r}.")


def is_chief(strategy):
    """Whether this process reports and exports: the chief, else worker 0, else the only one."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def export_from_chief(strategy, export, export_dir):
    """`export(export_dir)` on the chief, returning what it returns (the max abs difference of
    its check); other workers take part in saving (it may run collectives) into a scratch
    directory they then drop, and return None."""
    if is_chief(strategy):
        return export(export_dir)
    scratch = tempfile.mkdtemp(prefix="forecast_worker_export_")
    try:
        export(os.path.join(scratch, "saved_model"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return None
