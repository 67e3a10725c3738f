"""Serving many batch sizes: what each new input shape costs an exported SavedModel.

    python -m benchmarks.serving
    python -m benchmarks.serving --batch_sizes=30 --pad_to=8,16,32

Exports one model (DataEmbedding -> pooling -> Dense head) with `jit_compile=True` and with
`jit_compile=False`, then serves `--batch_sizes` batch sizes (1, 2, ...) from `serving_default`,
each model in a fresh process. With XLA every new batch size is compiled on its first call, and
TensorFlow keeps every compiled program for the life of the process; padding each batch up to
one of a few sizes (`--pad_to`) compiles only those. Reports the first call per size (compile
included), a second call (warm) and the process' memory growth.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

import tf_tsembed

keras = tf.keras
FLAGS = flags.FLAGS
LENGTH, CHANNELS, D_MODEL, HORIZON = 96, 7, 64, 24

flags.DEFINE_integer("batch_sizes", 30, "Serve batch sizes 1..N.", lower_bound=1)
flags.DEFINE_list("pad_to", ["8", "16", "32"], "Sizes the padded variant rounds batches up to.")
flags.DEFINE_string("json", None, "Write the rows as a JSON list to this path.")
flags.DEFINE_string("serve", None, "Internal: serve this SavedModel and print one JSON row.")
flags.DEFINE_boolean("pad", False, "Internal: pad batches up to --pad_to sizes.")


def _export(path, jit_compile):
    x = keras.Input((LENGTH, CHANNELS), name="x")
    marks = keras.Input((LENGTH, 4), dtype="int32", name="x_mark")
    embedded = tf_tsembed.DataEmbedding(CHANNELS, D_MODEL, dropout=0.0, jit_compile=jit_compile)(
        x, marks
    )
    outputs = keras.layers.Dense(HORIZON)(keras.layers.GlobalAveragePooling1D()(embedded))
    keras.Model([x, marks], outputs).export(path, verbose=False)


def _rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _serve(path, batch_sizes, pad_to):
    serve = tf.saved_model.load(path).signatures["serving_default"]
    rng = np.random.default_rng(0)

    def call(batch):
        rows = min((size for size in pad_to if size >= batch), default=batch) if pad_to else batch
        x = tf.constant(rng.normal(size=(rows, LENGTH, CHANNELS)).astype("float32"))
        marks = tf.constant(np.tile(np.array([7, 1, 4, 0], "int32"), (rows, LENGTH, 1)))
        start = time.perf_counter()
        next(iter(serve(x=x, x_mark=marks).values())).numpy()
        return (time.perf_counter() - start) * 1e3

    call(1)  # loading and the first trace are not what is measured
    memory = _rss_mb()
    first = [call(batch) for batch in range(1, batch_sizes + 1)]
    warm = [call(batch) for batch in range(1, batch_sizes + 1)]
    return {
        "first_pass_s": sum(first) / 1e3,
        "first_call_median_ms": float(np.median(first)),
        "warm_call_median_ms": float(np.median(warm)),
        "memory_growth_mb": _rss_mb() - memory,
    }


def _row(label, path, pad):
    args = [
        sys.executable,
        "-m",
        "benchmarks.serving",
        f"--serve={path}",
        f"--batch_sizes={FLAGS.batch_sizes}",
    ]
    args += [f"--pad_to={','.join(FLAGS.pad_to)}", "--pad" if pad else "--nopad"]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    return {"model": label, **json.loads(result.stdout.strip().splitlines()[-1])}


def main(argv):
    del argv
    pad_to = sorted(int(size) for size in FLAGS.pad_to)
    if FLAGS.serve:
        print(json.dumps(_serve(FLAGS.serve, FLAGS.batch_sizes, pad_to if FLAGS.pad else None)))
        return
    with tempfile.TemporaryDirectory() as folder:
        jit_on, jit_off = os.path.join(folder, "jit_on"), os.path.join(folder, "jit_off")
        _export(jit_on, True)
        _export(jit_off, False)
        rows = [
            _row("jit_compile=True", jit_on, pad=False),
            _row(f"jit_compile=True, padded to {pad_to}", jit_on, pad=True),
            _row("jit_compile=False", jit_off, pad=False),
        ]
    print(
        f"Serving batch sizes 1..{FLAGS.batch_sizes}, "
        f"DataEmbedding({CHANNELS} -> {D_MODEL}), L={LENGTH}:\n"
    )
    print(
        "| model | first pass, all sizes (s) | first call median (ms) "
        "| warm call median (ms) | memory growth (MB) |"
    )
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['model']} | {row['first_pass_s']:.2f} | {row['first_call_median_ms']:.1f} | "
            f"{row['warm_call_median_ms']:.2f} | {row['memory_growth_mb']:.0f} |"
        )
    if FLAGS.json:
        with open(FLAGS.json, "w") as out:
            json.dump(rows, out, indent=1)


if __name__ == "__main__":
    app.run(main)
