"""A SavedModel with a free batch serves batches of 1 and 64 in a fresh process."""

import json
import os
import subprocess
import sys
import textwrap

import _models
import numpy as np
import pytest

from examples import forecaster
from tf_tsembed.timefeatures import time_marks

C_IN, LENGTH, D_MODEL, PRED_LEN, BATCHES = 3, 24, 8, 6, (1, 64)

_SERVE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    export_dir, inputs_path, outputs_path, spec_path = sys.argv[1:5]
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    with open(spec_path, "w") as file:
        shapes = {name: [spec.shape.as_list(), spec.dtype.name] for name, spec in specs.items()}
        json.dump(shapes, file)
    outputs = {}
    with np.load(inputs_path) as inputs:
        for batch in sorted({key.split("/")[0] for key in inputs.files}):
            served = signature(**{name: tf.constant(inputs[f"{batch}/{name}"]) for name in specs})
            (output,) = served.values()
            outputs[batch] = output.numpy()
    np.savez(outputs_path, **outputs)
    """
)


def _default_layers_model():
    return _models.default_layers_model(C_IN, LENGTH, D_MODEL, PRED_LEN)


def _example_model():
    return forecaster.build(
        LENGTH, PRED_LEN, C_IN, 4, target_index=1, d_model=D_MODEL, n_heads=2, e_layers=1, d_ff=16
    )


def _inputs(batch, seed):
    rng = np.random.default_rng(seed)
    starts = np.datetime64("2022-03-01T00", "h") + rng.integers(0, 24 * 365, size=batch)
    dates = starts[:, None] + np.arange(LENGTH)
    marks = time_marks(dates.reshape(-1), "h").reshape(batch, LENGTH, 4)
    return {"values": rng.normal(size=(batch, LENGTH, C_IN)).astype("float32"), "marks": marks}


@pytest.mark.slow
@pytest.mark.parametrize(
    "build", [_default_layers_model, _example_model], ids=["default_layers", "example"]
)
def test_export_serves_batches_of_1_and_64_in_fresh_process(build, tmp_path):
    model = build()
    export_dir = os.path.join(str(tmp_path), "exported")
    model.export(export_dir, verbose=False)
    batches = {f"batch{batch}": _inputs(batch, seed=batch) for batch in BATCHES}
    inputs_path = os.path.join(str(tmp_path), "inputs.npz")
    np.savez(
        inputs_path,
        **{f"{key}/{name}": x for key, arrays in batches.items() for name, x in arrays.items()},
    )
    outputs_path = os.path.join(str(tmp_path), "outputs.npz")
    spec_path = os.path.join(str(tmp_path), "specs.json")
    result = subprocess.run(
        [sys.executable, "-c", _SERVE_SCRIPT, export_dir, inputs_path, outputs_path, spec_path],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(spec_path) as file:
        specs = json.load(file)
    assert specs == {
        "values": [[None, LENGTH, C_IN], "float32"],
        "marks": [[None, LENGTH, 4], "int32"],
    }
    with np.load(outputs_path) as served:
        for key, arrays in batches.items():
            expected = model([arrays["values"], arrays["marks"]], training=False)
            assert served[key].shape == (arrays["values"].shape[0], PRED_LEN)
            # The reloaded graph is optimised on its own, so float32 rounding differs in the last
            # bits of each sum: the error scales with the outputs' size, not with a near-zero output
            # (seen: 1.4e-6 at an output of 6e-4 among outputs up to 8).
            scale = np.abs(np.asarray(expected)).max()
            np.testing.assert_allclose(served[key], expected, rtol=1e-5, atol=1e-6 * scale)
