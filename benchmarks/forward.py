"""Forward-pass benchmark of every public tf_tsembed layer.

    python -m benchmarks.forward                      # default set, under 2 minutes on 2 CPU cores
    python -m benchmarks.forward --layers=TokenEmbedding --reps=100 --json=out.json --plot=out.png

Each layer, shape, dtype and jit mode (eager; tf.function with jit off; jit on), on every device
found, is timed in interleaved rounds beside its floor (a jit-compiled fill of its output), its
baseline (what a user would write without tf_tsembed, in the same mode) and references
(docs/benchmarks.md). `--sweep` also fits TokenEmbedding's time (jit on, float32) against B and L.
"""

import importlib.util
import sys

import numpy as np
from absl import app, flags

import tf_tsembed
from benchmarks import _cases, _report
from benchmarks._devices import JIT_LABELS, MODES, find_devices
from benchmarks._measure import POLICIES, Timing, time_case

FLAGS = flags.FLAGS

# Informer's default, many channels, long, small d_model.
ISSUE_SHAPES = ["32x96x7:512", "32x96x321:512", "8x720x7:512", "256x96x7:64"]
# The layers with speed targets get every shape by default, the others Informer's default only,
# which keeps the default run near two minutes on two cores.
CORE_LAYERS = ("TokenEmbedding", "PositionalEmbedding", "DataEmbedding")
SWEEP_FACTORS = (1, 2, 4, 8)
HEADER = "layer|shape|dtype|jit|median ms|min-max ms|x floor|x baseline|baseline".split("|")
HEADER.append("other references (median ms)")
SWEEP_TITLE = (
    "TokenEmbedding, jit on, float32: time = intercept + slope * size (linear fit of medians)"
)

flags.DEFINE_list("layers", None, f"Layers to time; default: all of {list(_cases.BUILDERS)}.")
flags.DEFINE_list(
    "shapes",
    None,
    f"Shapes BxLxC:D (batch, length, input channels, d_model) for every layer. Default: "
    f"{ISSUE_SHAPES} for {list(CORE_LAYERS)}, {ISSUE_SHAPES[0]} for the others.",
)
flags.DEFINE_list("dtypes", ["float32", "bfloat16"], f"Compute dtypes, from {list(POLICIES)}.")
flags.DEFINE_list("jit", list(MODES), "Modes: eager, function (jit off), xla (jit on).")
flags.DEFINE_integer("reps", 15, "Timed rounds per case, after the warm-up.", lower_bound=1)
flags.DEFINE_float("case_seconds", 2.0, "Fewer rounds (>= 5) past this; 0: all.", lower_bound=0)
flags.DEFINE_integer("warmup", 3, "Untimed calls per function before timing.", lower_bound=1)
flags.DEFINE_enum("device", "auto", ["auto", "cpu", "gpu", "tpu"], "auto: every device found.")
flags.DEFINE_bool("sweep", True, "Also fit TokenEmbedding's time against batch and length.")
flags.DEFINE_string("sweep_shape", "8x96x7:512", f"Sweep start; B, then L, x {SWEEP_FACTORS}.")
flags.DEFINE_string("json", None, "Write the records as a JSON list to this path.")
flags.DEFINE_string("plot", None, "Draw the ratios as a PNG at this path (needs matplotlib).")


def _check_flags():
    """Every flag value checked before the first (slow) measurement."""
    layers = FLAGS.layers or list(_cases.BUILDERS)
    _report.check_choices("layers", layers, _cases.BUILDERS)
    _report.check_choices("dtypes", FLAGS.dtypes, POLICIES)
    _report.check_choices("jit", FLAGS.jit, MODES)
    shapes = {}
    for name in layers:
        texts = FLAGS.shapes or (ISSUE_SHAPES if name in CORE_LAYERS else ISSUE_SHAPES[:1])
        shapes[name] = [_report.parse_shape("shapes", text) for text in texts]
    if FLAGS.plot and importlib.util.find_spec("matplotlib") is None:
        raise app.UsageError(f"--plot={FLAGS.plot} needs matplotlib: pip install '.[bench]'.")
    return layers, shapes, _report.parse_shape("sweep_shape", FLAGS.sweep_shape)


def _row(r):
    others = "; ".join(f"{label} {ms:.2f}" for label, ms in r.references.items()) or "-"
    ratios = [_report.ratio(r.median_ms, r.floor_ms), _report.ratio(r.median_ms, r.baseline_ms)]
    return [*r.cells(), *ratios, r.baseline, others]


def _line_fit(sizes, times_ms):
    """Least-squares `time = intercept + slope * size`: intercept, slope and R^2."""
    slope, intercept = np.polyfit(sizes, times_ms, 1)
    return intercept, slope, np.corrcoef(sizes, times_ms)[0, 1] ** 2


def _sweep(device, base, timing):
    """TokenEmbedding (jit on, float32) over growing B, then L: records and a line fit for each."""
    records, lines = [], []
    for axis in ("batch", "length"):
        sizes = [getattr(base, axis) * factor for factor in SWEEP_FACTORS]
        points = []
        for size in sizes:
            shape = base._replace(**{axis: size})
            points += time_case("TokenEmbedding", shape, "float32", device, ["xla"], timing, axis)
        records += points
        intercept, slope, r_squared = _line_fit(sizes, [r.median_ms for r in points])
        _, floor_slope, floor_r_squared = _line_fit(sizes, [r.floor_ms for r in points])
        per_unit = ", ".join(f"{r.median_ms / size:.4f}" for r, size in zip(points, sizes))
        lines.append(
            f"- {device.kind}, over {axis} {sizes}: {intercept:.3f} + {slope:.4f} ms per unit "
            f"(R^2 {r_squared:.3f}); floor slope {floor_slope:.4f} ms per unit "
            f"(R^2 {floor_r_squared:.3f}); ms per unit at each point: {per_unit}"
        )
    return records, lines


def main(argv):
    del argv
    layers, shapes, sweep_shape = _check_flags()
    version = tf_tsembed.__version__
    print(f"tf_tsembed {version} forward benchmark on {_report.machine_line()}", flush=True)
    timing = Timing(FLAGS.reps, FLAGS.warmup, FLAGS.case_seconds or None)
    records, sweep_records, sweep_lines = [], [], []
    for device in find_devices(FLAGS.device):
        modes = [mode for mode in FLAGS.jit if mode in device.modes]
        for name in layers:
            for shape in shapes[name]:
                for dtype in FLAGS.dtypes:
                    records += time_case(name, shape, dtype, device, modes, timing)
                    print(f"  timed {name} {shape} {dtype} on {device.kind}", file=sys.stderr)
        if FLAGS.sweep:
            points, lines = _sweep(device, sweep_shape, timing)
            sweep_records += points
            sweep_lines += lines
    print("\n" + _report.markdown_table(HEADER, [_row(r) for r in records]))
    if sweep_lines:
        print(f"\n{SWEEP_TITLE}\n" + "\n".join(sweep_lines))
    if FLAGS.json:
        _report.write_json(FLAGS.json, [r.as_json() for r in records + sweep_records])
    if FLAGS.plot:
        labels = [f"{r.layer} {r.shape} {r.dtype} jit {JIT_LABELS[r.mode]}" for r in records]
        series = {
            "x floor": [_report.ratio(r.median_ms, r.floor_ms) for r in records],
            "x baseline": [_report.ratio(r.median_ms, r.baseline_ms) for r in records],
        }
        _report.plot_ratios(FLAGS.plot, labels, series)


if __name__ == "__main__":
    app.run(main)
