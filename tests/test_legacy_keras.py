"""Legacy Keras 2: the layer tests again, in a process where tf.keras is tf_keras.

`TF_USE_LEGACY_KERAS=1` only takes effect before TensorFlow is imported, hence the subprocess.
Tests marked slow (fresh-process SavedModel reloads, XLA dumps) are left out there, and so are
the property, bad-input, TFLite and PyTorch-weight files: they pass under tf_keras too, but would
take this run past the ~90 s it may cost in the default suite on 2 cores.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYER_TESTS = (
    "test_arguments.py",
    "test_models.py",
    "test_forecast_models.py",
    "test_token_embedding.py",
    "test_positional_embedding.py",
    "test_temporal_embedding.py",
    "test_data_embedding.py",
    "test_patch_embedding.py",
    "test_reversible_instance_norm.py",
)
# Fails loudly if the variable is ignored, instead of running the tests on Keras 3 again.
_RUN_UNDER_TF_KERAS = """
import sys
import pytest
import tensorflow as tf
assert tf.keras.__name__.startswith("tf_keras"), f"tf.keras is {tf.keras.__name__}, not tf_keras"
sys.exit(pytest.main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("tf_keras") is None,
    reason="tf-keras is not installed; `pip install .[test]` installs it",
)
def test_layer_tests_pass_under_legacy_keras():
    files = [str(ROOT / "tests" / name) for name in LAYER_TESTS]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUN_UNDER_TF_KERAS,
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not slow",
            *files,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
