"""The devices a benchmark runs on: CPU always, GPU when TF sees one, TPU when a cluster connects."""

import dataclasses
import glob
import os
import sys

import tensorflow as tf

# How a function is run: called eagerly, traced into a graph (`tf.function`), or jit-compiled.
MODES = ("eager", "function", "xla")
JIT_LABELS = {"eager": "eager", "function": "off", "xla": "on"}


@dataclasses.dataclass(frozen=True)
class Device:
    """One device to time on; `strategy` is the TPUStrategy on a TPU, else None."""

    kind: str
    tf_name: str
    strategy: object = None

    @property
    def modes(self):
        # Everything a TPU runs is compiled by XLA: there is no eager or graph mode to compare.
        return ("xla",) if self.strategy is not None else MODES

    def scope(self):
        """Where layers and data are created and the timed functions run."""
        return self.strategy.scope() if self.strategy is not None else tf.device(self.tf_name)

    def compile(self, function, mode):
        """`function` as run in `mode`; on a TPU, every replica runs it under `strategy.run`."""
        if self.strategy is not None:
            strategy = self.strategy
            return tf.function(lambda *args: strategy.run(function, args=args))
        if mode == "eager":
            return function
        return tf.function(function, jit_compile=mode == "xla")

    def sync(self, outputs):
        """Waits for `outputs`: CPU ops have finished when they return, accelerators queue them."""
        del outputs
        if self.kind != "CPU":
            tf.test.experimental.sync_devices()


def _tpu_strategy(required):
    """TPUStrategy when a TPU cluster resolver connects, else None.

    Without `required`, a connection is tried only where a TPU can be (TPU_NAME set, as on TPU
    nodes and Colab, or a TPU VM's /dev/accel*): elsewhere the resolver would query the cloud
    metadata server over the network and retry for minutes.
    """
    tpu_name = os.environ.get("TPU_NAME")
    on_tpu_vm = bool(glob.glob("/dev/accel*"))
    if not (required or tpu_name or on_tpu_vm):
        return None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local" if on_tpu_vm else tpu_name)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        if required:
            raise
        print(f"No TPU: the cluster resolver did not connect ({error}).", file=sys.stderr)
        return None
    return tf.distribute.TPUStrategy(resolver)


def find_devices(which):
    """The devices selected by `which`: "auto" (every device found), "cpu", "gpu" or "tpu"."""
    devices = []
    if which in ("auto", "cpu"):
        devices.append(Device("CPU", "/device:CPU:0"))
    if which in ("auto", "gpu"):
        if tf.config.list_logical_devices("GPU"):
            devices.append(Device("GPU", "/device:GPU:0"))
        elif which == "gpu":
            raise ValueError("--device=gpu, but TensorFlow sees no GPU.")
    if which in ("auto", "tpu"):
        strategy = _tpu_strategy(required=which == "tpu")
        if strategy is not None:
            devices.append(Device("TPU", "TPU", strategy))
    return devices
