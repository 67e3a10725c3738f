"""What the benchmarks print and write: machine line, markdown table, JSON, plot, flag checks."""

import json
import os
import platform

import tensorflow as tf
from absl import app

from benchmarks._cases import Shape


def machine_line():
    """CPU model, core count, library versions and accelerators: the heading of every report."""
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as cpuinfo:
            models = [line.split(":", 1)[1] for line in cpuinfo if line.startswith("model name")]
        cpu = models[0].strip() if models else cpu
    keras_version = getattr(tf.keras, "version", lambda: tf.keras.__version__)()
    devices = tf.config.list_logical_devices()
    accelerators = ", ".join(d.name for d in devices if d.device_type != "CPU") or "none"
    return (
        f"{cpu}, {os.cpu_count()} cores; TensorFlow {tf.__version__}, Keras {keras_version}, "
        f"Python {platform.python_version()}; accelerators: {accelerators}"
    )


def ratio(numerator, denominator):
    """`numerator / denominator`, or None when either is missing."""
    return None if numerator is None or denominator is None else numerator / denominator


def cell(value):
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown_table(header, rows):
    """A markdown table; None cells print as '-' and floats with two decimals."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(map(cell, row)) + " |" for row in rows])


def write_json(path, rows):
    with open(path, "w") as output:
        json.dump(rows, output, indent=1)


def check_choices(flag, values, choices):
    """Raises absl's UsageError naming `--flag` for the first of `values` not in `choices`."""
    for value in values:
        if value not in choices:
            raise app.UsageError(f"--{flag}: {value!r} is not one of {list(choices)}.")


def parse_shape(flag, text):
    """`Shape.parse(text)`, a bad shape raised as absl's UsageError naming `--flag`."""
    try:
        return Shape.parse(text)
    except ValueError as error:
        raise app.UsageError(f"--{flag}: {error}") from None


def plot_ratios(path, labels, series):
    """A PNG of horizontal bars: one group per label, one bar per `{name: values}` series."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    height = 0.8 / len(series)
    figure, axes = pyplot.subplots(figsize=(9, 1.0 + 0.25 * len(labels) * len(series)))
    for number, (name, values) in enumerate(series.items()):
        positions = [row + number * height for row in range(len(labels))]
        axes.barh(positions, [v if v is not None else 0.0 for v in values], height, label=name)
    axes.set_yticks([row + 0.4 - height / 2 for row in range(len(labels))])
    axes.set_yticklabels(labels, fontsize=7)
    axes.invert_yaxis()
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_xlabel("time ratio (lower is better)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
