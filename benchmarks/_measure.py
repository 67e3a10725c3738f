"""One case timed side by side with its floor, baseline and references: the records every
benchmark report is made of."""

import numpy as np
import tensorflow as tf

from benchmarks import _cases
from benchmarks._timing import time_side_by_side

# Compute dtypes, each as the policy a user would set (16-bit ones as mixed policies).
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def _compiled(device, reference, mode):
    """`reference` as a zero-argument callable for `mode`, or None when it is not timed there."""
    if mode not in reference.modes:
        return None
    function = reference.function if reference.native else device.compile(reference.function, mode)
    return lambda: function(*reference.inputs)


def _floor(device, output):
    """A jit-compiled fill of `output`'s shape and dtype: no op that writes it can be cheaper."""
    shape, value = output.shape, tf.zeros((), output.dtype)
    fill = device.compile(lambda value: tf.broadcast_to(value, shape), "xla")
    return lambda: fill(value)


def _record(layer, shape, dtype, mode, device, stats, baseline_name, references, sweep=None):
    layer_stats = stats["layer"]
    baseline = stats.get("baseline")
    return {
        "layer": layer,
        "shape": shape.as_list(),
        "dtype": dtype,
        "jit": mode == "xla",
        "mode": mode,
        "device": device.kind,
        "median_ms": layer_stats.median_ms,
        "min_ms": layer_stats.min_ms,
        "max_ms": layer_stats.max_ms,
        "reps": layer_stats.reps,
        "floor_ms": stats["floor"].median_ms,
        "baseline_ms": baseline.median_ms if baseline else None,
        "baseline": baseline_name,
        "references": {name: stats[name].median_ms for name in references},
        "sweep": sweep,
    }


def time_case(name, shape, dtype, device, modes, timing, sweep=None, only_references=None):
    """Records for one layer, shape and dtype in each mode; the layer built once for all modes.

    `only_references`: labels of the case's references to time; None times them all. Every
    extra function in a round can disturb the others (PyTorch's threads, for one).
    """
    rng = np.random.default_rng(0)
    with device.scope():
        case = _cases.BUILDERS[name](shape, POLICIES[dtype], rng, device)
        floor = _floor(device, tf.nest.flatten(case.forward(*case.inputs))[0])
        records = []
        for mode in modes:
            layer = device.compile(case.forward, mode)
            functions = {"layer": lambda: layer(*case.inputs), "floor": floor}
            baseline = _compiled(device, case.baseline, mode)
            if baseline is not None:
                functions["baseline"] = baseline
            references = {}
            for label, reference in case.references.items():
                if only_references is not None and label not in only_references:
                    continue
                function = _compiled(device, reference, mode)
                if function is not None:
                    references[label] = functions[label] = function
            stats = time_side_by_side(functions, timing, device.sync)
            records.append(_record(name, shape, dtype, mode, device, stats, case.baseline_name, references, sweep))
    return records
