"""Round trips every layer must survive: config, `.keras` file, SavedModel in a fresh process."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

keras = tf.keras

_RELOAD_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    export_dir, inputs_path, outputs_path = sys.argv[1:4]
    loaded = tf.saved_model.load(export_dir)
    with np.load(inputs_path) as data:
        inputs = [tf.constant(data[f"arr_{i}"]) for i in range(len(data.files))]
    # Keras serves a multi-input model's inputs as one list argument.
    outputs = loaded.serve(inputs if len(inputs) > 1 else inputs[0])
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    np.savez(outputs_path, *[np.asarray(o) for o in outputs])
    """
)


def _as_list(values):
    return list(values) if isinstance(values, (list, tuple)) else [values]


def assert_config_roundtrip(layer):
    """`from_config(get_config())` rebuilds a layer with the same config, also through JSON."""
    config = layer.get_config()
    rebuilt = type(layer).from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    return rebuilt


def assert_keras_file_roundtrip(model, inputs, tmp_path):
    """Saving to `.keras` and loading gives a model with identical outputs."""
    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    for expected, actual in zip(_as_list(model(inputs)), _as_list(reloaded(inputs))):
        np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected))
    return reloaded


def assert_export_roundtrip_in_fresh_process(model, inputs, tmp_path):
    """`model.export()` then `tf.saved_model.load` in a new Python process: identical outputs."""
    export_dir = os.path.join(str(tmp_path), "exported")
    model.export(export_dir)
    inputs_path = os.path.join(str(tmp_path), "inputs.npz")
    outputs_path = os.path.join(str(tmp_path), "outputs.npz")
    np.savez(inputs_path, *[np.asarray(x) for x in _as_list(inputs)])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", _RELOAD_SCRIPT, export_dir, inputs_path, outputs_path],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = _as_list(model(inputs))
    with np.load(outputs_path) as reloaded:
        actual = [reloaded[f"arr_{i}"] for i in range(len(reloaded.files))]
    assert len(actual) == len(expected)
    for want, got in zip(expected, actual):
        np.testing.assert_array_equal(got, np.asarray(want))
    return export_dir
