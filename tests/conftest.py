"""Shared test set-up: two logical CPUs (for MirroredStrategy tests) before TF starts its devices;
every test starts from the same random seed; hypothesis draws the same examples on every run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import hypothesis  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Derandomized and without an example database, so that a run never depends on earlier runs.
# `HYPOTHESIS_PROFILE=explore pytest ...` draws fresh examples to hunt for new failures.
hypothesis.settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis.settings.register_profile("explore", database=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture(autouse=True)
def _seeded():
    """Seeds Python, NumPy and TensorFlow (and so every initializer without a seed of its own)
    before each test: a test's weights, data and dropout masks do not depend on the tests run
    before it."""
    tf.keras.utils.set_random_seed(1234)


@pytest.fixture
def mixed_policy():
    """Sets a global dtype policy for one test, restoring float32 after it."""
    previous = tf.keras.mixed_precision.global_policy()

    def set_policy(name):
        tf.keras.mixed_precision.set_global_policy(name)

    yield set_policy
    tf.keras.mixed_precision.set_global_policy(previous)
