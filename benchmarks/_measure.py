"""Side-by-side timing, and the record every benchmark report is made of."""

import dataclasses
import time

import numpy as np
import tensorflow as tf

from benchmarks import _cases
from benchmarks._devices import JIT_LABELS

# Compute dtypes, each as the policy a user would set (16-bit ones as mixed policies).
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
MIN_REPS = 5


@dataclasses.dataclass(frozen=True)
class Timing:
    """`reps` timed rounds after `warmup` calls; fewer rounds, but at least MIN_REPS, when they
    would take longer than `budget_s` seconds (None: no limit)."""

    reps: int
    warmup: int
    budget_s: float | None = None


def time_side_by_side(functions, timing, sync):
    """`{name: wall times in ms}` of zero-argument callables timed in interleaved rounds.

    Every function is called `timing.warmup` times first (tracing, compiling, allocator warm-up),
    then each round calls every function once in turn: load from other processes on a shared
    machine then slows all candidates alike instead of whichever happened to run during a burst,
    so their ratios stay meaningful even when the absolute times are noisy. `sync()` waits until
    queued work is done (asynchronous devices).
    """
    round_s = 0.0
    for function in functions.values():
        for _ in range(timing.warmup):
            start = time.perf_counter()
            function()
            sync()
        round_s += time.perf_counter() - start  # the last warm-up call: compiled and warm
    reps = timing.reps
    if timing.budget_s is not None:
        reps = min(reps, max(MIN_REPS, int(timing.budget_s / round_s)))
    samples = {name: [] for name in functions}
    for _ in range(reps):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            sync()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return samples


@dataclasses.dataclass(frozen=True)
class Record:
    """A layer (or model) timed in one mode beside what it is compared with; medians in ms."""

    layer: str
    shape: _cases.Shape
    dtype: str
    mode: str
    device: str
    median_ms: float
    min_ms: float
    max_ms: float
    reps: int
    floor_ms: float | None
    baseline_ms: float | None
    baseline: str
    references: dict  # {label: median_ms}
    sweep: str | None = None  # the axis a sweep grows, else None

    @classmethod
    def of(cls, samples, baseline, layer, shape, dtype, mode, device, sweep=None):
        """From `time_side_by_side`'s samples of "layer", "floor" and "baseline" (when timed) and
        of references."""
        medians = {name: float(np.median(times)) for name, times in samples.items()}
        ours, median_ms = samples["layer"], medians.pop("layer")
        floor_ms, baseline_ms = medians.pop("floor", None), medians.pop("baseline", None)
        return cls(
            layer, shape, dtype, mode, device.kind, median_ms, min(ours), max(ours), len(ours),
            floor_ms, baseline_ms, baseline, medians, sweep,
        )  # fmt: skip

    def timing(self, key):
        """A median: a field ("median_ms", "floor_ms", "baseline_ms") or a reference's label."""
        return self.references[key] if key in self.references else getattr(self, key, None)

    def cells(self):
        """The cells every results table starts with: layer, shape, dtype, jit, median, range."""
        jit = JIT_LABELS[self.mode] + ("" if self.device == "CPU" else f" ({self.device})")
        span = f"{self.min_ms:.2f}-{self.max_ms:.2f}"
        return [self.layer, str(self.shape), self.dtype, jit, self.median_ms, span]

    def as_json(self):
        return {**dataclasses.asdict(self), "jit": self.mode == "xla"}


def time_case(name, shape, dtype, device, modes, timing, sweep=None, only_references=None):
    """Records for one layer, shape and dtype in each mode; the layer built once for all modes.

    Each is timed beside its floor (a jit-compiled fill of the output's shape and dtype: no op
    that writes the output can be cheaper), its baseline and its references. `only_references`:
    the labels of the references to time; None times them all. Every extra function in a round
    can disturb the others (PyTorch's threads, for one).
    """
    with device.scope():
        case = _cases.BUILDERS[name](shape, POLICIES[dtype], np.random.default_rng(0), device)
        output = tf.nest.flatten(case.forward(*case.inputs))[0]
        fill = device.compile(lambda value: tf.broadcast_to(value, output.shape), "xla")
        zero = tf.zeros((), output.dtype)
        references = {"baseline": case.baseline}
        for label, reference in case.references.items():
            if only_references is None or label in only_references:
                references[label] = reference
        records = []
        for mode in modes:
            layer = device.compile(case.forward, mode)
            functions = {"layer": lambda f=layer: f(*case.inputs), "floor": lambda: fill(zero)}
            for label, reference in references.items():
                if mode in reference.modes:
                    compiled = device.compile(reference.function, mode)
                    functions[label] = lambda f=compiled, inputs=reference.inputs: f(*inputs)
            samples = time_side_by_side(functions, timing, device.sync)
            record = Record.of(samples, case.baseline_name, name, shape, dtype, mode, device, sweep)
            records.append(record)
    return records
