"""The project's speed targets, measured and checked in one command.

    python -m benchmarks.targets                      # 3 runs of 60 rounds, ~3 minutes on 2 CPU cores
    python -m benchmarks.targets --runs=5 --json=targets.json

The targets are set for the CPU, in float32 unless said, at Informer's default shape. Each run
times the cases of `benchmarks.forward` that the targets need, side by side in interleaved rounds
on the same data, and computes every target's ratio from medians of that run. The table shows
each run's ratio, the median over runs and whether that median meets the target. Rows marked
"reported" have no target: they show what bounds the others (the bare matmul every XLA
formulation needs) or are asked to be reported. On a GPU or TPU (`--device`) the same ratios are
printed, against the CPU targets; modes a device lacks print as "-".
"""

import dataclasses

import numpy as np
from absl import app, flags

import tf_tsembed
from benchmarks import _cases, _report
from benchmarks._devices import JIT_LABELS, MODES, find_devices
from benchmarks._measure import time_case
from benchmarks._timing import Timing

FLAGS = flags.FLAGS

flags.DEFINE_integer("runs", 3, "Independent runs; the verdict is on the median of their ratios.", lower_bound=1)
flags.DEFINE_integer("reps", 60, "Timed rounds per case in each run, after the warm-up.", lower_bound=1)
flags.DEFINE_integer("warmup", 3, "Untimed calls per function before timing.", lower_bound=1)
flags.DEFINE_string("shape", "32x96x7:512", "BxLxC:D of the targets (Informer's default).")
flags.DEFINE_integer("position_batch", 256, "Large batch of the PositionalEmbedding batch-independence target.", lower_bound=1)
flags.DEFINE_enum("device", "cpu", ["cpu", "gpu", "tpu"], "Where to measure.")
flags.DEFINE_string("json", None, "Write every target's per-run ratios as a JSON list to this path.")


@dataclasses.dataclass(frozen=True)
class Target:
    """`ratio(records)` of one run, met when `<= limit` (`>= limit` with `at_least`); no limit: reported."""

    text: str
    ratio: object
    limit: float = None
    at_least: bool = False

    def met(self, value):
        if self.limit is None or value is None:
            return None
        return value >= self.limit if self.at_least else value <= self.limit


def _find(records, layer, dtype, mode, batch=None):
    for record in records:
        if (record["layer"], record["dtype"], record["mode"]) == (layer, dtype, mode):
            if batch is None or record["shape"][0] == batch:
                return record
    return None


def _timing(record, key):
    """A median in ms of `record`: a record key ("median_ms", "floor_ms", ...) or a reference label."""
    return record[key] if key in record else record["references"].get(key)


def _ratio_of(layer, dtype, mode, numerator, denominator, batch=None):
    """A ratio of two timings of one record; each argument is a record key or a reference label."""

    def ratio(records):
        record = _find(records, layer, dtype, mode, batch)
        return None if record is None else _report.ratio(_timing(record, numerator), _timing(record, denominator))

    return ratio


def _conv1d_best_over(key):
    """Conv1D's fastest mode divided by `key` (a record key or reference label) of TokenEmbedding
    float32 jit on."""

    def ratio(records):
        ours = _find(records, "TokenEmbedding", "float32", "xla")
        conv1d = [r["baseline_ms"] for mode in MODES if (r := _find(records, "TokenEmbedding", "float32", mode))]
        if ours is None or not conv1d:
            return None
        return _report.ratio(min(conv1d), _timing(ours, key))

    return ratio


def targets(position_batch):
    token = "TokenEmbedding"
    rows = [
        Target("TokenEmbedding eager: speed-up over `Conv1D(padding=\"same\")` eager", _ratio_of(token, "float32", "eager", "baseline_ms", "median_ms"), 2.0, True),
        Target("TokenEmbedding jit on / memory-write floor", _ratio_of(token, "float32", "xla", "median_ms", "floor_ms"), 1.5),
        Target("(reported) matmul alone, jit on / memory-write floor", _ratio_of(token, "float32", "xla", _cases.BARE_MATMUL, "floor_ms")),
        Target("TokenEmbedding jit on: speed-up over Conv1D in its best mode", _conv1d_best_over("median_ms"), 1.3, True),
        Target("(reported) matmul alone, jit on: speed-up over Conv1D in its best mode", _conv1d_best_over(_cases.BARE_MATMUL)),
        Target("TokenEmbedding bfloat16 / float32, jit on", _ratio_of(token, "bfloat16", "xla", "median_ms", _cases.SAME_LAYER_FLOAT32), 1.2),
        Target("(reported) matmul alone rounded to bfloat16 / TokenEmbedding float32, jit on", _ratio_of(token, "bfloat16", "xla", _cases.BARE_MATMUL, _cases.SAME_LAYER_FLOAT32)),
    ]
    position_ratios = [
        (f"batch {position_batch} / batch 1", "same layer, batch 1", ": about 1"),
        ("/ slice of a constant", "baseline_ms", ""),
    ]
    for what, denominator, suffix in position_ratios:
        for mode in MODES:
            label = JIT_LABELS[mode] if mode == "eager" else f"jit {JIT_LABELS[mode]}"
            ratio = _ratio_of("PositionalEmbedding", "float32", mode, "median_ms", denominator, position_batch)
            rows.append(Target(f"PositionalEmbedding {what}, {label}{suffix}", ratio, 1.2))
    rows += [
        Target("DataEmbedding / TokenEmbedding alone, jit on", _ratio_of("DataEmbedding", "float32", "xla", "median_ms", "TokenEmbedding alone"), 1.3),
        Target("(reported) DataEmbedding / TokenEmbedding alone, eager", _ratio_of("DataEmbedding", "float32", "eager", "median_ms", "TokenEmbedding alone")),
    ]
    return rows


# The references the targets read; the cases' others are left out of the rounds.
_REFERENCES = (_cases.BARE_MATMUL, _cases.SAME_LAYER_FLOAT32, "same layer, batch 1", "TokenEmbedding alone")


def _one_run(device, shape, position_shape, timing):
    """The records of every case the targets read, timed once."""
    modes = [mode for mode in MODES if mode in device.modes]

    def timed(name, case_shape, dtype, case_modes):
        return time_case(name, case_shape, dtype, device, case_modes, timing, only_references=_REFERENCES)

    records = timed("TokenEmbedding", shape, "float32", modes)
    records += timed("TokenEmbedding", shape, "bfloat16", [m for m in modes if m == "xla"])
    records += timed("PositionalEmbedding", position_shape, "float32", modes)
    records += timed("DataEmbedding", shape, "float32", [m for m in modes if m in ("eager", "xla")])
    return records


def _verdict(target, median):
    met = target.met(median)
    if target.limit is None:
        return "reported"
    if met is None:
        return "-"
    return "yes" if met else "no"


def _limit_text(target):
    if target.limit is None:
        return "-"
    return f"{'>=' if target.at_least else '<='} {target.limit:g}"


def main(argv):
    del argv
    try:
        shape = _cases.Shape.parse(FLAGS.shape)
    except ValueError as error:
        raise app.UsageError(f"--shape: {error}")
    position_shape = dataclasses.replace(shape, batch=FLAGS.position_batch)
    info = _report.machine_info()
    print(f"tf_tsembed {tf_tsembed.__version__} speed targets on {_report.machine_line(info)}", flush=True)
    (device,) = find_devices(FLAGS.device)
    timing = Timing(FLAGS.reps, FLAGS.warmup)
    rows = targets(FLAGS.position_batch)
    ratios = [[] for _ in rows]
    for run in range(FLAGS.runs):
        records = _one_run(device, shape, position_shape, timing)
        for values, target in zip(ratios, rows):
            values.append(target.ratio(records))
        print(f"  run {run + 1} of {FLAGS.runs} done", flush=True)
    table_rows, json_rows = [], []
    for target, values in zip(rows, ratios):
        measured = [value for value in values if value is not None]
        median = float(np.median(measured)) if measured else None
        table_rows.append([target.text, _limit_text(target), ", ".join(_report.cell(v) for v in values), median, _verdict(target, median)])
        json_rows.append(
            {"target": target.text, "limit": target.limit, "at_least": target.at_least, "ratios": values, "median": median, "met": target.met(median)}
        )
    print(f"\n{device.kind}, shape {shape}, {FLAGS.runs} runs of {FLAGS.reps} rounds:\n")
    print(_report.markdown_table(["target", "limit", "per run", "median", "met"], table_rows))
    if FLAGS.json:
        _report.write_json(FLAGS.json, json_rows)


if __name__ == "__main__":
    app.run(main)
