"""The devices a benchmark runs on: CPU always, GPU when TF sees one, TPU when one connects."""

import dataclasses
import glob
import os
import sys

import tensorflow as tf

from examples.distribute import TPU_CONNECT_ERRORS, connect_tpu

# How a function is run: called eagerly, traced into a graph (`tf.function`), or jit-compiled.
MODES = ("eager", "function", "xla")
JIT_LABELS = {"eager": "eager", "function": "off", "xla": "on"}


@dataclasses.dataclass(frozen=True)
class Device:
    """One device to time on; `strategy` is the TPUStrategy on a TPU, else None."""

    kind: str
    tf_name: str
    strategy: tf.distribute.Strategy | None = None

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
            return tf.function(lambda *args: self.strategy.run(function, args=args))
        return function if mode == "eager" else tf.function(function, jit_compile=mode == "xla")

    def sync(self):
        """Waits for queued work: CPU ops are done when they return, accelerators queue them."""
        if self.kind != "CPU":
            tf.test.experimental.sync_devices()


def find_devices(which):
    """The devices selected by `which`: "auto" (every device found), "cpu", "gpu" or "tpu"."""
    devices = [Device("CPU", "/device:CPU:0")] if which in ("auto", "cpu") else []
    if which in ("auto", "gpu"):
        if tf.config.list_logical_devices("GPU"):
            devices.append(Device("GPU", "/device:GPU:0"))
        elif which == "gpu":
            raise ValueError("--device=gpu, but TensorFlow sees no GPU.")
    # "auto" tries a TPU only where one can be (TPU_NAME set, or a TPU VM's /dev/accel*): elsewhere
    # the resolver queries the cloud metadata server over the network and retries for minutes.
    name = "local" if glob.glob("/dev/accel*") else os.environ.get("TPU_NAME")
    if which == "tpu" or (which == "auto" and name):
        try:
            devices.append(Device("TPU", "TPU", connect_tpu(name)))
        except TPU_CONNECT_ERRORS as error:
            if which == "tpu":
                raise
            print(f"No TPU: the cluster resolver did not connect ({error}).", file=sys.stderr)
    return devices
