"""Shared test set-up: two logical CPUs (for MirroredStrategy tests) before TF starts its devices."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture
def mixed_policy():
    """Sets a global dtype policy for one test, restoring float32 after it."""
    previous = tf.keras.mixed_precision.global_policy()

    def set_policy(name):
        tf.keras.mixed_precision.set_global_policy(name)

    yield set_policy
    tf.keras.mixed_precision.set_global_policy(previous)
