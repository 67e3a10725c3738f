"""Training-step benchmark: a small Informer-style encoder built from tf_tsembed layers.

    python -m benchmarks.train_step
    python -m benchmarks.train_step --batch=64 --d_model=256 --encoder_layers=3 --reps=50

DataEmbedding (values, hourly calendar marks, positions), `--encoder_layers` post-norm Transformer
blocks and a Dense head; MSE loss, Adam. One step (forward, gradients, update) is timed with jit
off and on beside the same model whose embedding is what a user would write without tf_tsembed:
`Conv1D(padding="same")`, gathered calendar tables, a constant position table and the same dropout.
`--dropout=0` leaves out Keras' dropout, whose random numbers are slow under XLA on CPU.
"""

import numpy as np
import tensorflow as tf
from absl import app, flags

import tf_tsembed
from benchmarks import _cases, _report
from benchmarks._devices import find_devices
from benchmarks._measure import POLICIES, Record, Timing, time_side_by_side

keras = tf.keras
FLAGS = flags.FLAGS
TRAIN_MODES = ("function", "xla")
HEADER = "model|shape|dtype|jit|median ms|min-max ms|x baseline|baseline median ms".split("|")

flags.DEFINE_integer("batch", 32, "Batch size B.", lower_bound=1)
flags.DEFINE_integer("length", 96, "Sequence length L.", lower_bound=1)
flags.DEFINE_integer("channels", 7, "Input channels C.", lower_bound=1)
flags.DEFINE_integer("d_model", 128, "Model width D.", lower_bound=2)
flags.DEFINE_integer("heads", 4, "Attention heads; must divide d_model.", lower_bound=1)
flags.DEFINE_integer("encoder_layers", 2, "Encoder blocks.", lower_bound=0)
flags.DEFINE_float("dropout", 0.1, "Dropout rate, in both models.", lower_bound=0, upper_bound=0.9)
flags.DEFINE_list("dtypes", ["float32", "bfloat16"], f"Compute dtypes, from {list(POLICIES)}.")
flags.DEFINE_list("jit", list(TRAIN_MODES), "Modes: function (tf.function, jit off), xla (jit on).")
flags.DEFINE_integer("reps", 10, "Timed rounds, after the warm-up.", lower_bound=1)
flags.DEFINE_integer("warmup", 2, "Untimed steps per model before timing.", lower_bound=1)
flags.DEFINE_enum("device", "auto", ["auto", "cpu", "gpu", "tpu"], "auto: every device found.")
flags.DEFINE_string("json", None, "Write the records as a JSON list to this path.")


class UserEmbedding(keras.layers.Layer):
    """The baseline embedding: zero-padded Conv1D + gathered calendar tables + constant positions,
    then dropout, as DataEmbedding."""

    def __init__(self, shape, dropout, **kwargs):
        super().__init__(**kwargs)
        policy, dtype = self.dtype_policy, self.compute_dtype
        self.conv = keras.layers.Conv1D(
            shape.d_model, 3, padding="same", use_bias=False, dtype=policy
        )
        self.dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.calendar = _cases.user_calendar(shape.d_model, dtype)
        self.positions = _cases.user_sinusoid(shape.length, shape.d_model, dtype)

    def build(self, x_shape, marks_shape):
        self.conv.build(x_shape)
        self.built = True

    def call(self, x, marks, training=None):
        outputs = self.conv(x) + self.calendar(marks) + self.positions[None, : x.shape[1]]
        return self.dropout(outputs, training=training)


def encoder_model(shape, policy, embedding):
    """`embedding(x, marks)`, then the encoder blocks and a Dense head: `(B, L, C)` out."""
    x = keras.Input((shape.length, shape.channels), batch_size=shape.batch)
    marks = keras.Input((shape.length, len(_cases.MARK_LOW)), batch_size=shape.batch, dtype="int32")
    h = embedding(x, marks)
    for _ in range(FLAGS.encoder_layers):
        attention = keras.layers.MultiHeadAttention(
            FLAGS.heads, shape.d_model // FLAGS.heads, dropout=FLAGS.dropout, dtype=policy
        )
        h = keras.layers.LayerNormalization(dtype=policy)(h + attention(h, h))
        feed_forward = keras.layers.Dense(4 * shape.d_model, activation="gelu", dtype=policy)(h)
        feed_forward = keras.layers.Dense(shape.d_model, dtype=policy)(feed_forward)
        h = keras.layers.LayerNormalization(dtype=policy)(h + feed_forward)
    outputs = keras.layers.Dense(shape.channels, dtype="float32")(h)
    return keras.Model([x, marks], outputs)


def _train_step(model):
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)

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
    name = f"Informer encoder ({FLAGS.encoder_layers} blocks) train step"
    baseline_name = "same encoder, Conv1D same + gathers + slice + Dropout as embedding"
    records = []
    with device.scope():
        size = (shape.batch, shape.length, shape.channels)
        x = tf.constant(rng.normal(size=size).astype(np.float32))
        marks = _cases.calendar_marks(rng, shape)
        y = tf.constant(rng.normal(size=size).astype(np.float32))
        ours = tf_tsembed.DataEmbedding(
            shape.channels, shape.d_model, embed_type="fixed", freq="h", dropout=FLAGS.dropout,
            dtype=policy,
        )  # fmt: skip
        embeddings = {"layer": ours, "baseline": UserEmbedding(shape, FLAGS.dropout, dtype=policy)}
        models = {key: encoder_model(shape, policy, e) for key, e in embeddings.items()}
        for mode in modes:
            steps = {key: device.compile(_train_step(m), mode) for key, m in models.items()}
            functions = {key: lambda step=step: step(x, marks, y) for key, step in steps.items()}
            samples = time_side_by_side(functions, Timing(FLAGS.reps, FLAGS.warmup), device.sync)
            records.append(Record.of(samples, baseline_name, name, shape, dtype, mode, device))
    return records


def main(argv):
    del argv
    if FLAGS.d_model % FLAGS.heads:
        raise app.UsageError(f"--heads={FLAGS.heads} must divide --d_model={FLAGS.d_model}.")
    _report.check_choices("dtypes", FLAGS.dtypes, POLICIES)
    _report.check_choices("jit", FLAGS.jit, TRAIN_MODES)
    shape = _cases.Shape(FLAGS.batch, FLAGS.length, FLAGS.channels, FLAGS.d_model)
    print(f"tf_tsembed {tf_tsembed.__version__} train-step benchmark on {_report.machine_line()}")
    records = []
    for device in find_devices(FLAGS.device):
        modes = [mode for mode in FLAGS.jit if mode in device.modes]
        for dtype in FLAGS.dtypes:
            records += time_training(shape, dtype, device, modes)
    rows = [[*r.cells(), _report.ratio(r.median_ms, r.baseline_ms), r.baseline_ms] for r in records]
    print()
    print(_report.markdown_table(HEADER, rows))
    if FLAGS.json:
        _report.write_json(FLAGS.json, [r.as_json() for r in records])


if __name__ == "__main__":
    app.run(main)
