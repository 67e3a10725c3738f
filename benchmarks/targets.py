"""The project's speed targets, measured and judged in one command (docs/benchmarks.md).

    python -m benchmarks.targets                 # 3 runs of 60 rounds, ~3 minutes on 2 CPU cores
    python -m benchmarks.targets --runs=5 --json=targets.json

Each run times the cases the targets read side by side and takes every ratio from its medians; the
verdict is on the median over runs. The targets are set for the CPU; `--device` prints the same
ratios on a GPU or TPU, "-" where the device lacks a mode.
"""

import dataclasses

import numpy as np
from absl import app, flags

import tf_tsembed
from benchmarks import _cases, _report
from benchmarks._devices import JIT_LABELS, MODES, find_devices
from benchmarks._measure import Timing, time_case

FLAGS = flags.FLAGS
TOKEN, POSITION, DATA = "TokenEmbedding", "PositionalEmbedding", "DataEmbedding"
EAGER, XLA = ("eager",), ("xla",)
MEDIAN, FLOOR, BASELINE = "median_ms", "floor_ms", "baseline_ms"
# The references the targets read; the cases' others are left out of the rounds.
REFERENCES = (
    _cases.BARE_MATMUL,
    _cases.SAME_LAYER_FLOAT32,
    _cases.BATCH_1,
    _cases.TOKEN_ALONE,
    _cases.SUBLAYERS_ADDED,
)

flags.DEFINE_integer("runs", 3, "Independent runs; the verdict is on their median.", lower_bound=1)
flags.DEFINE_integer("reps", 60, "Timed rounds per case and run, after the warm-up.", lower_bound=1)
flags.DEFINE_integer("warmup", 3, "Untimed calls per function before timing.", lower_bound=1)
flags.DEFINE_string("shape", "32x96x7:512", "BxLxC:D of the targets (Informer's default).")
flags.DEFINE_integer("position_batch", 256, "PositionalEmbedding's large batch.", lower_bound=1)
flags.DEFINE_enum("device", "cpu", ["cpu", "gpu", "tpu"], "Where to measure.")
flags.DEFINE_string("json", None, "Write every target's per-run ratios as a JSON list here.")


@dataclasses.dataclass(frozen=True)
class Target:
    """`numerator / denominator` for one case (layer and dtype) in one run, met when `<= limit`
    (`>= limit` with `at_least`; no limit: reported). Each side is `(modes, timing)`: the fastest
    over `modes` of a Record field ("median_ms", ...) or reference label."""

    text: str
    layer: str
    dtype: str
    numerator: tuple
    denominator: tuple
    limit: float | None = None
    at_least: bool = False

    def ratio(self, records):
        def fastest(modes, timing):
            case = [r for r in records if (r.layer, r.dtype) == (self.layer, self.dtype)]
            found = [r.timing(timing) for r in case if r.mode in modes]
            return min([ms for ms in found if ms is not None], default=None)

        return _report.ratio(fastest(*self.numerator), fastest(*self.denominator))

    def met(self, value):
        if self.limit is None or value is None:
            return None
        return value >= self.limit if self.at_least else value <= self.limit

    def limit_text(self):
        return "-" if self.limit is None else f"{'>=' if self.at_least else '<='} {self.limit:g}"

    def verdict(self, median):
        met = self.met(median)
        return "reported" if self.limit is None else "-" if met is None else "yes" if met else "no"


def targets(position_batch):
    matmul, same_f32 = (XLA, _cases.BARE_MATMUL), (XLA, _cases.SAME_LAYER_FLOAT32)
    conv1d_best = (MODES, BASELINE)
    # fmt: off
    rows = [
        Target('TokenEmbedding eager: speed-up over `Conv1D(padding="same")` eager',
               TOKEN, "float32", (EAGER, BASELINE), (EAGER, MEDIAN), 2.0, at_least=True),
        Target("TokenEmbedding jit on / memory-write floor",
               TOKEN, "float32", (XLA, MEDIAN), (XLA, FLOOR), 1.5),
        Target("(reported) matmul alone, jit on / memory-write floor",
               TOKEN, "float32", matmul, (XLA, FLOOR)),
        Target("TokenEmbedding jit on: speed-up over Conv1D in its best mode",
               TOKEN, "float32", conv1d_best, (XLA, MEDIAN), 1.3, at_least=True),
        Target("(reported) matmul alone, jit on: speed-up over Conv1D in its best mode",
               TOKEN, "float32", conv1d_best, matmul),
        Target("TokenEmbedding bfloat16 / float32, jit on",
               TOKEN, "bfloat16", (XLA, MEDIAN), same_f32, 1.2),
        Target("(reported) matmul alone rounded to bfloat16 / TokenEmbedding float32, jit on",
               TOKEN, "bfloat16", matmul, same_f32),
    ]
    for what, denominator, suffix in [
        (f"batch {position_batch} / batch 1", _cases.BATCH_1, ": about 1"),
        ("/ slice of a constant", BASELINE, ""),
    ]:
        for mode in MODES:
            jit = "eager" if mode == "eager" else f"jit {JIT_LABELS[mode]}"
            rows.append(Target(f"PositionalEmbedding {what}, {jit}{suffix}",
                               POSITION, "float32", ((mode,), MEDIAN), ((mode,), denominator), 1.2))
    return rows + [
        Target("DataEmbedding / TokenEmbedding alone, jit on",
               DATA, "float32", (XLA, MEDIAN), (XLA, _cases.TOKEN_ALONE), 1.3),
        Target("(reported) DataEmbedding / TokenEmbedding alone, eager",
               DATA, "float32", (EAGER, MEDIAN), (EAGER, _cases.TOKEN_ALONE)),
        Target("(reported) its sublayers called one by one and added / DataEmbedding, jit off",
               DATA, "float32", (("function",), _cases.SUBLAYERS_ADDED), (("function",), MEDIAN)),
    ]
    # fmt: on


def _one_run(device, shape, position_shape, timing):
    """The records of every case the targets read, timed once."""

    def timed(name, case_shape, dtype, modes):
        modes = [mode for mode in modes if mode in device.modes]
        return time_case(name, case_shape, dtype, device, modes, timing, None, REFERENCES)

    return [
        *timed(TOKEN, shape, "float32", MODES),
        *timed(TOKEN, shape, "bfloat16", XLA),
        *timed(POSITION, position_shape, "float32", MODES),
        *timed(DATA, shape, "float32", MODES),
    ]


def main(argv):
    del argv
    shape = _report.parse_shape("shape", FLAGS.shape)
    version = tf_tsembed.__version__
    print(f"tf_tsembed {version} speed targets on {_report.machine_line()}", flush=True)
    (device,) = find_devices(FLAGS.device)
    rows = targets(FLAGS.position_batch)
    ratios = [[] for _ in rows]
    for run in range(FLAGS.runs):
        position_shape = shape._replace(batch=FLAGS.position_batch)
        records = _one_run(device, shape, position_shape, Timing(FLAGS.reps, FLAGS.warmup))
        for values, target in zip(ratios, rows):
            values.append(target.ratio(records))
        print(f"  run {run + 1} of {FLAGS.runs} done", flush=True)
    table, results = [], []
    for target, values in zip(rows, ratios):
        measured = [value for value in values if value is not None]
        median = float(np.median(measured)) if measured else None
        per_run = ", ".join(map(_report.cell, values))
        table.append([target.text, target.limit_text(), per_run, median, target.verdict(median)])
        results.append({
            "target": target.text, "limit": target.limit, "at_least": target.at_least,
            "ratios": values, "median": median, "met": target.met(median),
        })  # fmt: skip
    print(f"\n{device.kind}, shape {shape}, {FLAGS.runs} runs of {FLAGS.reps} rounds:\n")
    print(_report.markdown_table(["target", "limit", "per run", "median", "met"], table))
    if FLAGS.json:
        _report.write_json(FLAGS.json, results)


if __name__ == "__main__":
    app.run(main)
