"""Training-step benchmark: a small Informer-style encoder built from tf_tsembed layers.

    python -m benchmarks.train_step
    python -m benchmarks.train_step --batch=64 --d_model=256 --encoder_layers=3 --reps=50

The model: DataEmbedding (value + calendar + position embedding of `(B, L, C)` series and
`(B, L, 4)` hourly marks), `--encoder_layers` post-norm Transformer encoder blocks
(MultiHeadAttention, LayerNorm, a 4x feed-forward, as in Informer without its distillation),
and a Dense head back to C channels; MSE loss, Adam. One step is forward, gradients and update,
in a `tf.function` with jit_compile off and on, timed side by side with the same model whose
embedding is what a user would write without tf_tsembed: `keras.layers.Conv1D(padding="same")`,
calendar tables gathered and summed, a constant positional table, and the same dropout.
`--dropout=0` leaves out Keras' dropout, whose random numbers are slow under XLA on CPU.
"""

import numpy as np
import tensorflow as tf
from absl import app, flags

import tf_tsembed
from benchmarks import _cases, _report
from benchmarks._devices import JIT_LABELS, find_devices
from benchmarks._timing import Timing, time_side_by_side

keras = tf.keras
FLAGS = flags.FLAGS
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
TRAIN_MODES = ("function", "xla")

flags.DEFINE_integer("batch", 32, "Batch size B.", lower_bound=1)
flags.DEFINE_integer("length", 96, "Sequence length L.", lower_bound=1)
flags.DEFINE_integer("channels", 7, "Input channels C.", lower_bound=1)
flags.DEFINE_integer("d_model", 128, "Model width D.", lower_bound=2)
flags.DEFINE_integer("heads", 4, "Attention heads; must divide d_model.", lower_bound=1)
flags.DEFINE_integer("encoder_layers", 2, "Encoder blocks.", lower_bound=0)
flags.DEFINE_float("dropout", 0.1, "Dropout rate after the embedding and in attention, for both models.", lower_bound=0, upper_bound=0.9)
flags.DEFINE_list("dtypes", ["float32", "bfloat16"], f"Compute dtypes, from {list(POLICIES)}.")
flags.DEFINE_list("jit", list(TRAIN_MODES), "Modes: function (tf.function, jit off), xla (jit on).")
flags.DEFINE_integer("reps", 10, "Timed rounds, after the warm-up.", lower_bound=1)
flags.DEFINE_integer("warmup", 2, "Untimed steps per model before timing.", lower_bound=1)
flags.DEFINE_enum("device", "auto", ["auto", "cpu", "gpu", "tpu"], "auto: CPU, plus GPU and TPU when found.")
flags.DEFINE_string("json", None, "Write the records as a JSON list to this path.")


class UserEmbedding(keras.layers.Layer):
    """The baseline embedding: zero-padded Conv1D + gathered calendar tables + constant positions,
    then dropout, as DataEmbedding."""

    def __init__(self, shape, dropout, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv1D(shape.d_model, 3, padding="same", use_bias=False, dtype=self.dtype_policy)
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.calendar = _cases.user_calendar(shape, self.compute_dtype)
        self.position = _cases.user_position(shape, self.compute_dtype)

    def build(self, x_shape, marks_shape):
        self.conv.build(x_shape)
        self.built = True

    def call(self, x, marks, training=None):
        return self.dropout(self.conv(x) + self.calendar(marks) + self.position(x.shape[1]), training=training)


def encoder_model(shape, policy, embedding):
    """`embedding(x, marks)`, then the encoder blocks and a Dense head: `(B, L, C)` out."""
    x = keras.Input((shape.length, shape.channels), batch_size=shape.batch)
    marks = keras.Input((shape.length, len(_cases.MARK_LOW)), batch_size=shape.batch, dtype="int32")
    h = embedding(x, marks)
    for _ in range(FLAGS.encoder_layers):
        attention = keras.layers.MultiHeadAttention(FLAGS.heads, shape.d_model // FLAGS.heads, dropout=FLAGS.dropout, dtype=policy)
        h = keras.layers.LayerNormalization(dtype=policy)(h + attention(h, h))
        feed_forward = keras.layers.Dense(4 * shape.d_model, activation="gelu", dtype=policy)(h)
        h = keras.layers.LayerNormalization(dtype=policy)(h + keras.layers.Dense(shape.d_model, dtype=policy)(feed_forward))
    outputs = keras.layers.Dense(shape.channels, dtype="float32")(h)
    return keras.Model([x, marks], outputs)


def _train_step(model, optimizer):
    def step(x, marks, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model([x, marks], training=True) - y))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    return step


def time_training(shape, dtype, device, modes):
    """Records for one dtype: our encoder and the baseline encoder, per mode, side by side."""
    rng = np.random.default_rng(0)
    policy = POLICIES[dtype]
    records = []
    with device.scope():
        x = tf.constant(rng.normal(size=(shape.batch, shape.length, shape.channels)).astype(np.float32))
        marks = _cases.calendar_marks(rng, shape)
        y = tf.constant(rng.normal(size=(shape.batch, shape.length, shape.channels)).astype(np.float32))
        ours = tf_tsembed.DataEmbedding(
            shape.channels, shape.d_model, embed_type="fixed", freq="h", dropout=FLAGS.dropout, dtype=policy
        )
        baseline = UserEmbedding(shape, FLAGS.dropout, dtype=policy)
        models = {"ours": encoder_model(shape, policy, ours), "baseline": encoder_model(shape, policy, baseline)}
        for mode in modes:
            steps = {}
            for name, model in models.items():
                optimizer = keras.optimizers.Adam(1e-4)
                optimizer.build(model.trainable_variables)
                step = device.compile(_train_step(model, optimizer), mode)
                steps[name] = lambda step=step: step(x, marks, y)
            stats = time_side_by_side(steps, Timing(FLAGS.reps, FLAGS.warmup), device.sync)
            records.append(
                {
                    "layer": f"Informer encoder ({FLAGS.encoder_layers} blocks) train step",
                    "shape": shape.as_list(),
                    "dtype": dtype,
                    "jit": mode == "xla",
                    "mode": mode,
                    "device": device.kind,
                    "median_ms": stats["ours"].median_ms,
                    "min_ms": stats["ours"].min_ms,
                    "max_ms": stats["ours"].max_ms,
                    "floor_ms": None,
                    "baseline_ms": stats["baseline"].median_ms,
                    "baseline": "same encoder, Conv1D same + gathers + slice + Dropout as embedding",
                }
            )
    return records


def main(argv):
    del argv
    if FLAGS.d_model % FLAGS.heads:
        raise app.UsageError(f"--heads={FLAGS.heads} must divide --d_model={FLAGS.d_model}.")
    _report.check_choices("dtypes", FLAGS.dtypes, POLICIES)
    _report.check_choices("jit", FLAGS.jit, TRAIN_MODES)
    shape = _cases.Shape(FLAGS.batch, FLAGS.length, FLAGS.channels, FLAGS.d_model)
    print(f"tf_tsembed {tf_tsembed.__version__} train-step benchmark on {_report.machine_line(_report.machine_info())}")
    records = []
    for device in find_devices(FLAGS.device):
        modes = [mode for mode in FLAGS.jit if mode in device.modes]
        for dtype in FLAGS.dtypes:
            records += time_training(shape, dtype, device, modes)
    header = ["model", "shape", "dtype", "jit", "median ms", "min-max ms", "x baseline", "baseline median ms"]
    rows = [
        [
            r["layer"],
            str(shape),
            r["dtype"],
            *_report.timing_cells(r, JIT_LABELS),
            _report.ratio(r["median_ms"], r["baseline_ms"]),
            r["baseline_ms"],
        ]
        for r in records
    ]
    print()
    print(_report.markdown_table(header, rows))
    if FLAGS.json:
        _report.write_json(FLAGS.json, records)


if __name__ == "__main__":
    app.run(main)
