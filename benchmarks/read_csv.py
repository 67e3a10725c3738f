"""The examples' CSV reader beside pandas: time and peak extra memory on synthetic files.

    python -m benchmarks.read_csv                        # 200000x8 and 5000x1000, ~1 minute
    python -m benchmarks.read_csv --shapes=1000x4 --reps=3 --json=read_csv.json

Each shape is ROWSxCOLUMNS numeric columns after an hourly `date` column, ETT-like (`2016-07-01
00:00:00`, three decimals). pandas' side is TSLib's reading: `pd.read_csv` and `pd.to_datetime`
of the `date` column. Times are medians of `--reps` rounds timed in turn (time_side_by_side).
Memory is the peak resident memory above the process' own after its imports, each reader in a
fresh process (Linux: the peak is reset through /proc/self/clear_refs; elsewhere the growth of
ru_maxrss), so it counts what the C parsers allocate too, which tracemalloc would not see.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
READERS = ("ours", "pandas")

flags.DEFINE_list("shapes", ["200000x8", "5000x1000"], "ROWSxCOLUMNS of the synthetic files.")
flags.DEFINE_integer("reps", 5, "Timed rounds per reader and shape.", lower_bound=1)
flags.DEFINE_string("json", None, "Write the rows as a JSON list to this path.")
flags.DEFINE_enum("memory_of", None, list(READERS), "Internal: print one reader's peak MB.")
flags.DEFINE_string("csv", None, "Internal: the file --memory_of reads.")


def _shape(text):
    try:
        rows, columns = (int(part) for part in text.lower().split("x"))
    except ValueError:
        rows = columns = 0
    if rows < 2 or columns < 1:
        raise app.UsageError(f"--shapes: {text!r} is not ROWSxCOLUMNS (at least 2x1).")
    return rows, columns


def write_file(path, rows, columns, seed=0):
    """An ETT-like CSV: hourly ISO dates and `columns` numbers with three decimals."""
    dates = np.datetime64("2016-07-01T00:00:00") + np.arange(rows) * np.timedelta64(1, "h")
    values = np.random.default_rng(seed).normal(10.0, 5.0, size=(rows, columns))
    names = [f"x{i}" for i in range(columns - 1)] + ["OT"]
    with open(path, "w") as file:
        file.write(",".join(["date", *names]) + "\n")
        for date, row in zip(np.char.replace(dates.astype(str), "T", " "), values):
            file.write(date + "," + ",".join(f"{value:.3f}" for value in row) + "\n")


def _reader(name):
    """The reader `name` reads with; each imports only its own modules (a memory process of
    pandas does not load TensorFlow, which the tf_tsembed package imports)."""
    if name == "ours":
        from tf_tsembed import tslib_data

        return tslib_data.read_csv
    import pandas as pd

    def pandas(path):
        frame = pd.read_csv(path)
        return pd.to_datetime(frame["date"]), frame

    return pandas


def _rss_mb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status")


def _peak_extra_mb(read, path):
    """Peak resident memory above the current one while `read(path)` runs, in MB."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current VmRSS
        before = _rss_mb("VmRSS")
        read(path)
        return _rss_mb("VmHWM") - before
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        read(path)
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def _memory_in_fresh_process(reader, path):
    command = [sys.executable, "-m", "benchmarks.read_csv", f"--memory_of={reader}"]
    result = subprocess.run(
        command + [f"--csv={path}"], capture_output=True, text=True, check=False, timeout=600
    )
    if result.returncode != 0:
        raise RuntimeError(f"{reader} on {path} failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.split()[-1])


def measure(shapes, reps, directory):
    """One row per shape: median ms and peak extra MB of each reader, and the ratios."""
    from benchmarks import _report
    from benchmarks._measure import Timing, time_side_by_side

    readers = {name: _reader(name) for name in READERS}
    rows = []
    for text in shapes:
        num_rows, columns = _shape(text)
        path = os.path.join(directory, f"{num_rows}x{columns}.csv")
        write_file(path, num_rows, columns)
        functions = {name: lambda f=read, p=path: f(p) for name, read in readers.items()}
        samples = time_side_by_side(functions, Timing(reps, warmup=1), lambda: None)
        ms = {name: float(np.median(times)) for name, times in samples.items()}
        memory = {name: _memory_in_fresh_process(name, path) for name in READERS}
        rows.append(
            {
                "shape": f"{num_rows}x{columns}",
                "megabytes": os.path.getsize(path) / 2**20,
                "ours_ms": ms["ours"],
                "pandas_ms": ms["pandas"],
                "time_ratio": _report.ratio(ms["ours"], ms["pandas"]),
                "ours_mb": memory["ours"],
                "pandas_mb": memory["pandas"],
                "memory_ratio": _report.ratio(memory["ours"], max(memory["pandas"], 1e-9)),
                "reps": reps,
            }
        )
    return rows


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.memory_of:
        print(f"{_peak_extra_mb(_reader(FLAGS.memory_of), FLAGS.csv):.1f}")
        return
    from benchmarks import _report

    for text in FLAGS.shapes:
        _shape(text)
    with tempfile.TemporaryDirectory() as directory:
        rows = measure(FLAGS.shapes, FLAGS.reps, directory)
    print(_report.machine_line())
    header = ["rows x columns", "file MB", "ours ms", "pandas ms", "x pandas"]
    header += ["ours peak MB", "pandas peak MB", "x pandas"]
    keys = ["shape", "megabytes", "ours_ms", "pandas_ms", "time_ratio", "ours_mb", "pandas_mb"]
    keys += ["memory_ratio"]
    print(_report.markdown_table(header, [[row[key] for key in keys] for row in rows]))
    if FLAGS.json:
        with open(FLAGS.json, "w") as output:
            json.dump(rows, output, indent=1)


if __name__ == "__main__":
    app.run(main)
