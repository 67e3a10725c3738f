"""A SavedModel with a free batch serves batches of 1 and 64 in a fresh process: a model's own
export (values and marks in), and the main job's (`tf_tsembed.serving.export_forecaster`: raw
values and timestamps in)."""

import json
import os
import subprocess
import sys
import textwrap

import _models
import numpy as np
import pytest

from examples import forecaster
from tf_tsembed import serving
from tf_tsembed.models import ForecastConfig
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
            output = served["forecast"] if "forecast" in served else next(iter(served.values()))
            outputs[batch] = output.numpy()
    np.savez(outputs_path, **outputs)
    """
)


MEAN, SCALE = np.array([5.0, -2.0, 20.0]), np.array([2.0, 0.5, 4.0])


def _dates(batch, rng):
    starts = np.datetime64("2022-03-01T00", "h") + rng.integers(0, 24 * 365, size=batch)
    return starts[:, None] + np.arange(LENGTH)


class _DefaultLayers:
    """The package's layers in a Functional model, exported by `model.export`."""

    specs = {"values": [[None, LENGTH, C_IN], "float32"], "marks": [[None, LENGTH, 4], "int32"]}
    output_shape = (PRED_LEN,)

    def __init__(self):
        self.model = _models.default_layers_model(C_IN, LENGTH, D_MODEL, PRED_LEN)

    def export(self, export_dir):
        self.model.export(export_dir, verbose=False)

    def inputs(self, batch, seed):
        rng = np.random.default_rng(seed)
        dates = _dates(batch, rng)
        marks = time_marks(dates.reshape(-1), "h").reshape(batch, LENGTH, 4)
        return {"values": rng.normal(size=(batch, LENGTH, C_IN)).astype("float32"), "marks": marks}

    def expected(self, arrays):
        return self.model([arrays["values"], arrays["marks"]], training=False)


class _Example:
    """The main job's model, exported as the main job does (export_forecaster, 'MS')."""

    specs = {
        "values": [[None, LENGTH, C_IN], "float32"],
        "timestamps": [[None, LENGTH], "int64"],
    }
    output_shape = (PRED_LEN, 1)

    def __init__(self):
        config = ForecastConfig(
            seq_len=LENGTH, label_len=0, pred_len=PRED_LEN, enc_in=C_IN, dec_in=C_IN,
            c_out=C_IN, embed="fixed", d_model=D_MODEL, n_heads=2, e_layers=1, d_ff=16,
        )  # fmt: skip
        self.model = forecaster.MainJobForecaster(config)

    def export(self, export_dir):
        serving.export_forecaster(
            self.model, export_dir, mean=MEAN, scale=SCALE, names=["a", "b", "OT"], features="MS"
        )

    def inputs(self, batch, seed):
        rng = np.random.default_rng(seed)
        seconds = _dates(batch, rng).astype("datetime64[s]").astype(np.int64)
        values = MEAN + SCALE * rng.normal(size=(batch, LENGTH, C_IN))
        return {"values": values.astype("float32"), "timestamps": seconds}

    def expected(self, arrays):
        # Independent of the graph's marks: NumPy's time_marks of the future dates.
        scaled = ((arrays["values"] - MEAN) / SCALE).astype("float32")
        dates = arrays["timestamps"].astype("datetime64[s]")
        future = dates[:, -1:] + np.arange(1, PRED_LEN + 1) * (dates[:, -1:] - dates[:, -2:-1])
        marks = [time_marks(d.reshape(-1), "h").reshape(len(d), -1, 4) for d in (dates, future)]
        zeros = np.zeros((len(scaled), PRED_LEN, C_IN), "float32")
        outputs = self.model([scaled, marks[0], zeros, marks[1]], training=False).numpy()
        return outputs[..., -1:] * SCALE[-1] + MEAN[-1]


@pytest.mark.slow
@pytest.mark.parametrize("build", [_DefaultLayers, _Example], ids=["default_layers", "example"])
def test_export_serves_batches_of_1_and_64_in_fresh_process(build, tmp_path):
    case = build()
    export_dir = os.path.join(str(tmp_path), "exported")
    case.export(export_dir)
    batches = {f"batch{batch}": case.inputs(batch, seed=batch) for batch in BATCHES}
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
    assert specs == case.specs
    with np.load(outputs_path) as served:
        for key, arrays in batches.items():
            expected = case.expected(arrays)
            assert served[key].shape == (arrays["values"].shape[0], *case.output_shape)
            # The reloaded graph is optimised on its own, so float32 rounding differs in the last
            # bits of each sum: the error scales with the outputs' size, not with a near-zero output
            # (seen: 1.4e-6 at an output of 6e-4 among outputs up to 8).
            scale = np.abs(np.asarray(expected)).max()
            np.testing.assert_allclose(served[key], expected, rtol=1e-5, atol=1e-6 * scale)
