"""Side-by-side timing in one process, and the statistics the benchmarks report."""

import dataclasses
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class Stats:
    """Wall time of `reps` calls, in milliseconds."""

    median_ms: float
    min_ms: float
    max_ms: float
    reps: int


MIN_REPS = 5


@dataclasses.dataclass(frozen=True)
class Timing:
    """`reps` timed rounds after `warmup` calls; fewer rounds, but at least MIN_REPS, when they
    would take longer than `budget_s` seconds (None: no limit)."""

    reps: int
    warmup: int
    budget_s: float = None


def time_side_by_side(functions, timing, sync):
    """`{name: Stats}` for zero-argument callables timed in interleaved rounds.

    Every function is called `timing.warmup` times first (tracing, compiling, allocator warm-up),
    then each round calls every function once in turn: load from other processes on a shared
    machine then slows all candidates alike instead of whichever happened to run during a burst,
    so their ratios stay meaningful even when the absolute times are noisy. `sync(outputs)` waits
    until the outputs are computed (asynchronous devices).
    """
    round_s = 0.0
    for function in functions.values():
        for _ in range(timing.warmup):
            start = time.perf_counter()
            sync(function())
        round_s += time.perf_counter() - start  # the last warm-up call: compiled and warm
    reps = timing.reps
    if timing.budget_s is not None:
        reps = min(reps, max(MIN_REPS, int(timing.budget_s / round_s)))
    samples = {name: [] for name in functions}
    for _ in range(reps):
        for name, function in functions.items():
            start = time.perf_counter()
            sync(function())
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {
        name: Stats(float(np.median(times)), float(np.min(times)), float(np.max(times)), len(times))
        for name, times in samples.items()
    }


@dataclasses.dataclass(frozen=True)
class LineFit:
    """`time_ms ~ intercept_ms + slope_ms * size`, with the coefficient of determination."""

    slope_ms: float
    intercept_ms: float
    r_squared: float


def fit_line(sizes, times_ms):
    """Least-squares straight line through `(size, time)` points."""
    sizes = np.asarray(sizes, np.float64)
    times_ms = np.asarray(times_ms, np.float64)
    slope, intercept = np.polyfit(sizes, times_ms, 1)
    residual = times_ms - (intercept + slope * sizes)
    spread = np.sum((times_ms - times_ms.mean()) ** 2)
    r_squared = 1.0 - np.sum(residual**2) / spread if spread > 0 else 1.0
    return LineFit(float(slope), float(intercept), float(r_squared))
