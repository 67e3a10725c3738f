"""Forward-pass benchmark of every public tf_tsembed layer.

    python -m benchmarks.forward                      # default set, under 2 minutes on 2 CPU cores
    python -m benchmarks.forward --layers=TokenEmbedding --reps=100 --json=out.json --plot=out.png

For each layer, shape, dtype policy and jit mode (eager call; `tf.function` with jit off; jit on)
on every device found (CPU; GPU when TensorFlow sees one; TPU under TPUStrategy when a cluster
resolver connects), the layer is timed side by side, in the same process and on the same data,
with:

- the floor: the cheapest compiled op writing an output of the same shape and dtype (a fill);
- the baseline: what a user would write without tf_tsembed (for TokenEmbedding
  `keras.layers.Conv1D(padding="same")`, zero padding), in the same jit mode;
- further references: a plain-TF pad-and-conv circular convolution without XLA, PyTorch's
  `Conv1d(padding_mode="circular")` when torch is importable, TokenEmbedding alone beside the
  DataEmbedding sum, PositionalEmbedding at batch 1.

Every timing is the median, min and max over `--reps` interleaved rounds after `--warmup` calls
(fewer rounds, at least 5, for slow cases: `--case_seconds`). By default TokenEmbedding,
PositionalEmbedding and DataEmbedding are timed at the four shapes of `--shapes`' help, the other
layers at Informer's default shape. `--sweep` also times TokenEmbedding (jit on, float32) over
growing B and L and fits a line.
"""

import dataclasses
import sys

from absl import app, flags

import tf_tsembed
from benchmarks import _cases, _report
from benchmarks._devices import JIT_LABELS, MODES, find_devices
from benchmarks._measure import POLICIES, time_case
from benchmarks._timing import Timing, fit_line

FLAGS = flags.FLAGS

# Informer's default, many channels, long, small d_model.
ISSUE_SHAPES = ["32x96x7:512", "32x96x321:512", "8x720x7:512", "256x96x7:64"]
# The layers with speed targets get every shape by default, the others Informer's default only,
# which keeps the default run near two minutes on two cores.
CORE_LAYERS = ("TokenEmbedding", "PositionalEmbedding", "DataEmbedding")
SWEEP_FACTORS = (1, 2, 4, 8)

flags.DEFINE_list("layers", None, f"Layers to time; default: each of {list(_cases.BUILDERS)} that tf_tsembed exports.")
flags.DEFINE_list(
    "shapes",
    None,
    f"Shapes BxLxC:D (batch, length, input channels, d_model) for every layer. Default: {ISSUE_SHAPES} "
    f"for {list(CORE_LAYERS)}, {ISSUE_SHAPES[0]} for the others.",
)
flags.DEFINE_list("dtypes", ["float32", "bfloat16"], f"Compute dtypes, from {list(POLICIES)} (16-bit ones as mixed policies).")
flags.DEFINE_list("jit", list(MODES), "Modes: eager (layer called eagerly), function (tf.function, jit off), xla (jit on).")
flags.DEFINE_integer("reps", 15, "Timed rounds per case, after the warm-up.", lower_bound=1)
flags.DEFINE_float(
    "case_seconds", 2.0, "Fewer rounds (at least 5) for a case whose rounds would take longer than this; 0: no limit.", lower_bound=0
)
flags.DEFINE_integer("warmup", 3, "Untimed calls per function before timing.", lower_bound=1)
flags.DEFINE_enum("device", "auto", ["auto", "cpu", "gpu", "tpu"], "auto: CPU, plus GPU and TPU when found.")
flags.DEFINE_bool("sweep", True, "Also time TokenEmbedding over growing batch and length, and fit the slope.")
flags.DEFINE_string("sweep_shape", "8x96x7:512", f"Smallest shape of the sweep; B, then L, grow by {SWEEP_FACTORS}.")
flags.DEFINE_string("json", None, "Write the records as a JSON list to this path.")
flags.DEFINE_string("plot", None, "Draw the x-floor and x-baseline ratios as a PNG at this path (needs matplotlib).")


def _check_flags():
    """Every flag value checked before the first (slow) measurement."""
    known = _cases.available_layers()
    layers = FLAGS.layers or known
    for name in layers:
        if name not in known:
            raise app.UsageError(f"--layers: {name!r} is not one of the layers tf_tsembed exports now: {known}.")
    _report.check_choices("dtypes", FLAGS.dtypes, POLICIES)
    _report.check_choices("jit", FLAGS.jit, MODES)
    try:
        shapes = {name: [_cases.Shape.parse(text) for text in _shapes_for(name)] for name in layers}
    except ValueError as error:
        raise app.UsageError(f"--shapes: {error}")
    try:
        sweep_shape = _cases.Shape.parse(FLAGS.sweep_shape)
    except ValueError as error:
        raise app.UsageError(f"--sweep_shape: {error}")
    _report.check_plot_available(FLAGS.plot)
    return layers, shapes, sweep_shape


def _shapes_for(layer):
    if FLAGS.shapes is not None:
        return FLAGS.shapes
    return ISSUE_SHAPES if layer in CORE_LAYERS else ISSUE_SHAPES[:1]


def _table(records):
    header = ["layer", "shape", "dtype", "jit", "median ms", "min-max ms", "x floor", "x baseline", "baseline", "other references (median ms)"]
    rows = []
    for r in records:
        shape = _cases.Shape(*r["shape"])
        others = "; ".join(f"{label} {ms:.2f}" for label, ms in r["references"].items())
        rows.append(
            [
                r["layer"],
                str(shape),
                r["dtype"],
                *_report.timing_cells(r, JIT_LABELS),
                _report.ratio(r["median_ms"], r["floor_ms"]),
                _report.ratio(r["median_ms"], r["baseline_ms"]),
                r["baseline"],
                others or "-",
            ]
        )
    return _report.markdown_table(header, rows)


def _sweep(device, base, timing):
    """TokenEmbedding (jit on, float32) over growing B, then L: records and a line fit for each."""
    records, lines = [], []
    for axis in ("batch", "length"):
        sizes = [getattr(base, axis) * factor for factor in SWEEP_FACTORS]
        points = []
        for size in sizes:
            shape = dataclasses.replace(base, **{axis: size})
            points += time_case("TokenEmbedding", shape, "float32", device, ["xla"], timing, sweep=axis)
        records += points
        layer_fit = fit_line(sizes, [r["median_ms"] for r in points])
        floor_fit = fit_line(sizes, [r["floor_ms"] for r in points])
        per_step = [r["median_ms"] / s for r, s in zip(points, sizes)]
        lines.append(
            f"- {device.kind}, over {axis} {list(sizes)}: {layer_fit.intercept_ms:.3f} + "
            f"{layer_fit.slope_ms:.4f} ms per unit (R^2 {layer_fit.r_squared:.3f}); floor slope "
            f"{floor_fit.slope_ms:.4f} ms per unit (R^2 {floor_fit.r_squared:.3f}); ms per unit at each "
            f"point: {', '.join(f'{value:.4f}' for value in per_step)}"
        )
    return records, lines


def main(argv):
    del argv
    layers, shapes, sweep_shape = _check_flags()
    info = _report.machine_info()
    print(f"tf_tsembed {tf_tsembed.__version__} forward benchmark on {_report.machine_line(info)}", flush=True)
    timing = Timing(FLAGS.reps, FLAGS.warmup, FLAGS.case_seconds or None)
    records, sweep_lines = [], []
    for device in find_devices(FLAGS.device):
        modes = [mode for mode in FLAGS.jit if mode in device.modes]
        for name in layers:
            for shape in shapes[name]:
                for dtype in FLAGS.dtypes:
                    records += time_case(name, shape, dtype, device, modes, timing)
                    print(f"  timed {name} {shape} {dtype} on {device.kind}", file=sys.stderr, flush=True)
        if FLAGS.sweep:
            sweep_records, lines = _sweep(device, sweep_shape, timing)
            records += sweep_records
            sweep_lines += lines
    print()
    print(_table([r for r in records if r["sweep"] is None]))
    if sweep_lines:
        print("\nTokenEmbedding, jit on, float32: time = intercept + slope * size (linear fit of medians)")
        print("\n".join(sweep_lines))
    if FLAGS.json:
        _report.write_json(FLAGS.json, records)
    if FLAGS.plot:
        shown = [r for r in records if r["sweep"] is None]
        labels = [f"{r['layer']} {_cases.Shape(*r['shape'])} {r['dtype']} jit {JIT_LABELS[r['mode']]}" for r in shown]
        series = {
            "x floor": [_report.ratio(r["median_ms"], r["floor_ms"]) for r in shown],
            "x baseline": [_report.ratio(r["median_ms"], r["baseline_ms"]) for r in shown],
        }
        _report.plot_ratios(FLAGS.plot, labels, series)


if __name__ == "__main__":
    app.run(main)
