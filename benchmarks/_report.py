"""What the benchmarks print and write: machine description, markdown table, JSON, plot."""

import json
import os
import platform

import tensorflow as tf
from absl import app


def machine_info():
    """CPU model, core count and library versions, for the heading of every report."""
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as cpuinfo:
            models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        cpu = models[0] if models else cpu
    keras_version = getattr(tf.keras, "version", lambda: tf.keras.__version__)()
    accelerators = [d.name for d in tf.config.list_logical_devices() if d.device_type != "CPU"]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras_version,
        "python": platform.python_version(),
        "accelerators": accelerators,
    }


def machine_line(info):
    accelerators = ", ".join(info["accelerators"]) or "none"
    return (
        f"{info['cpu']}, {info['cores']} cores; TensorFlow {info['tensorflow']}, Keras "
        f"{info['keras']}, Python {info['python']}; accelerators: {accelerators}"
    )


def ratio(numerator, denominator):
    """`numerator / denominator`, or None when either is missing."""
    if numerator is None or denominator is None:
        return None
    return numerator / denominator


def cell(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header, rows):
    """A markdown table; None cells print as '-' and floats with two decimals."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path, records):
    with open(path, "w") as output:
        json.dump(records, output, indent=1)


def check_plot_available(path):
    """Fails before any timing when `--plot` is asked for without matplotlib."""
    if path is None:
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise SystemExit(f"--plot={path} needs matplotlib (pip install 'tf_tsembed[bench]'): {error}")


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


def check_choices(flag, values, choices):
    """Raises absl's UsageError naming `--flag` for the first of `values` not in `choices`."""
    for value in values:
        if value not in choices:
            raise app.UsageError(f"--{flag}: {value!r} is not one of {list(choices)}.")


def timing_cells(record, jit_labels):
    """The cells every results table shows for a record: jit mode (and device off CPU), median, range."""
    device = "" if record["device"] == "CPU" else f" ({record['device']})"
    return [
        jit_labels[record["mode"]] + device,
        record["median_ms"],
        f"{record['min_ms']:.2f}-{record['max_ms']:.2f}",
    ]
