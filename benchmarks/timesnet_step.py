"""TimesNet training step: ours beside PyTorch's TSLib TimesNet, and where our step's time goes.

    python -m benchmarks.timesnet_step                # ETTh1-96 sizes, batch 32
    python -m benchmarks.timesnet_step --profile      # also the parts of one step, timed apart

Timed side by side in interleaved rounds, one Adam step each (forward with dropout, MSE,
gradients, update) on the same batch: tf_tsembed.models.TimesNet with the reference's reshape
(graph mode, as `fit` runs on CPU), with the static-shape taps in graph mode and under XLA, and,
when torch is installed, `benchmarks/torch_timesnet.py` (TSLib's six convolutions per Inception
block, and the same with each block as one convolution, as ours). `x PyTorch` is a median over
the median of TSLib's form.
"""

import os

import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks import _report
from benchmarks._measure import Timing, time_side_by_side
from tf_tsembed.models import ForecastConfig, timesnet

keras = tf.keras
FLAGS = flags.FLAGS
HEADER = ["TimesNet train step", "median ms", "min-max ms", "x PyTorch"]

flags.DEFINE_integer("batch", 32, "Batch size.", lower_bound=1)
flags.DEFINE_integer("seq_len", 96, "Input length.", lower_bound=4)
flags.DEFINE_integer("pred_len", 96, "Horizon.", lower_bound=1)
flags.DEFINE_integer("channels", 7, "Series.", lower_bound=1)
flags.DEFINE_integer("d_model", 16, "Model width (TSLib's ETTh1 script: 16).", lower_bound=1)
flags.DEFINE_integer("d_ff", 32, "Inception width (TSLib's ETTh1 script: 32).", lower_bound=1)
flags.DEFINE_integer("e_layers", 2, "TimesBlocks.", lower_bound=1)
flags.DEFINE_integer("top_k", 5, "Periods per block.", lower_bound=1)
flags.DEFINE_integer("reps", 10, "Timed rounds, after the warm-up.", lower_bound=1)
flags.DEFINE_integer("warmup", 2, "Untimed steps per variant before timing.", lower_bound=1)
flags.DEFINE_bool("profile", False, "Also time the parts of one step of ours.")
flags.DEFINE_string("json", None, "Write the medians as JSON to this path.")

FEATURES = 4  # timeF, freq 'h'
TORCH = "PyTorch, TSLib's TimesNet (six convolutions)"


def _sizes():
    return dict(
        d_model=FLAGS.d_model,
        d_ff=FLAGS.d_ff,
        e_layers=FLAGS.e_layers,
        dropout=0.1,
        top_k=FLAGS.top_k,
    )


def _batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(FLAGS.batch, FLAGS.seq_len, FLAGS.channels)).astype("float32")
    marks = rng.uniform(-0.5, 0.5, (FLAGS.batch, FLAGS.seq_len, FEATURES)).astype("float32")
    y = rng.normal(size=(FLAGS.batch, FLAGS.pred_len, FLAGS.channels)).astype("float32")
    return x, marks, y


def _four(x, marks):
    """The model's four inputs; with label_len 0 the unused decoder ones are pred_len zeros."""
    decoder = tf.zeros((x.shape[0], FLAGS.pred_len, x.shape[2] + marks.shape[2]))
    return [x, marks, decoder[..., : x.shape[2]], decoder[..., x.shape[2] :]]


def keras_step(static_shapes, jit_compile):
    """A compiled Adam step of our TimesNet, as `fit` runs it."""
    channels = FLAGS.channels
    config = ForecastConfig(
        seq_len=FLAGS.seq_len, label_len=0, pred_len=FLAGS.pred_len, enc_in=channels,
        dec_in=channels, c_out=channels, freq="h", **_sizes(),
    )  # fmt: skip
    model = timesnet.TimesNet(config, padding="last_rows", static_shapes=static_shapes)
    optimizer = keras.optimizers.Adam(1e-4, epsilon=1e-8)
    optimizer.build(model.trainable_variables)

    @tf.function(jit_compile=jit_compile)
    def step(x, marks, y):
        with tf.GradientTape() as tape:
            forecast = model(_four(x, marks), training=True)
            loss = tf.reduce_mean(tf.square(forecast - y))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    inputs = [tf.constant(a) for a in _batch()]
    return model, lambda: step(*inputs).numpy()


def torch_step(one_convolution=False):
    """The same step of TSLib's TimesNet in PyTorch, or None without torch; `one_convolution`
    runs each Inception block as our model does, one convolution instead of six."""
    # PyTorch's OpenMP threads otherwise spin after each step and slow the next candidate.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch

        from benchmarks import torch_timesnet
    except ImportError:
        return None
    model = torch_timesnet.TimesNet(
        FLAGS.seq_len,
        FLAGS.pred_len,
        FLAGS.channels,
        FEATURES,
        **_sizes(),
        one_convolution=one_convolution,
    ).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, marks, y = (torch.tensor(a) for a in _batch())

    def step():
        optimizer.zero_grad()
        loss = torch.mean((model(x, marks) - y) ** 2)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def profile_parts(model):
    """`{part: zero-argument callable}`: the pieces of one step of `model`, each compiled apart."""
    x, marks, y = (tf.constant(a) for a in _batch())
    embed = keras.Model(model.inputs, model.get_layer("time_first").output)
    hidden = tf.constant(embed(_four(x, marks)).numpy())
    block = model.get_layer("times_block_0")
    periods, _ = timesnet.top_periods(hidden, FLAGS.top_k)

    def gradients(function, arguments, variables):
        """A compiled forward and backward pass: gradients for `arguments` and `variables`."""

        @tf.function
        def run():
            with tf.GradientTape() as tape:
                tape.watch(arguments)
                loss = tf.reduce_sum(function(*arguments))
            return tape.gradient(loss, [*arguments, *variables])

        return run

    inception = block.inception_in
    grid = tf.reshape(
        timesnet.pad_to_period(hidden, periods[0], block.padding),
        (FLAGS.batch, -1, periods[0], FLAGS.d_model),
    )

    def six_convolutions(grid):
        kernels = inception.kernels
        return tf.add_n([tf.nn.conv2d(grid, k, 1, "SAME") for k in kernels]) / len(kernels)

    first_period = int(periods[0])
    weights = model.trainable_variables
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(weights)
    fixed_gradients = [tf.zeros_like(w) + 1e-3 for w in weights]
    parts = {
        "forward": tf.function(lambda: model(_four(x, marks), training=True)),
        "forward + gradients": gradients(
            lambda a, b: model(_four(a, b), training=True), (x, marks), weights
        ),
        "Adam update alone": tf.function(
            lambda: optimizer.apply_gradients(zip(fixed_gradients, weights))
        ),
        "embedding + predict_linear, forward + gradients": gradients(
            lambda a, b: embed(_four(a, b), training=True), (x, marks), embed.trainable_variables
        ),
        "one TimesBlock, forward + gradients": gradients(
            block, (hidden,), block.trainable_variables
        ),
        "its period search (rfft, top-k), forward": tf.function(
            lambda: timesnet.top_periods(hidden, FLAGS.top_k)
        ),
        f"its first Inception, period {first_period}, one convolution, fwd + grad": gradients(
            inception, (grid,), inception.trainable_variables
        ),
        "the same as six convolutions (TSLib's form), fwd + grad": gradients(
            six_convolutions, (grid,), inception.trainable_variables
        ),
    }
    return {
        name: (lambda f=f: tf.nest.map_structure(lambda t: getattr(t, "numpy", lambda: t)(), f()))
        for name, f in parts.items()
    }


def main(argv):
    del argv
    print(f"TimesNet train-step benchmark on {_report.machine_line()}")
    print(
        f"batch {FLAGS.batch}, {FLAGS.seq_len} -> {FLAGS.pred_len}, {FLAGS.channels} series, "
        f"d_model {FLAGS.d_model}, d_ff {FLAGS.d_ff}, e_layers {FLAGS.e_layers}, "
        f"top_k {FLAGS.top_k}; torch threads: {os.cpu_count()}"
    )
    model, reshape_graph = keras_step(static_shapes=False, jit_compile=False)
    steps = {
        "ours, reshape (reference), graph": reshape_graph,
        "ours, static taps, graph": keras_step(static_shapes=True, jit_compile=False)[1],
        "ours, static taps, XLA": keras_step(static_shapes=True, jit_compile=True)[1],
    }
    torch = torch_step()
    if torch is not None:
        steps[TORCH] = torch
        steps["PyTorch, each Inception block as one convolution"] = torch_step(True)
    samples = time_side_by_side(steps, Timing(FLAGS.reps, FLAGS.warmup), sync=lambda: None)
    medians = {name: float(np.median(times)) for name, times in samples.items()}
    torch_ms = medians.get(TORCH)
    rows = [
        [name, medians[name], f"{min(t):.1f}-{max(t):.1f}", _report.ratio(medians[name], torch_ms)]
        for name, t in samples.items()
    ]
    print()
    print(_report.markdown_table(HEADER, rows))
    if FLAGS.profile:
        parts = profile_parts(model)
        part_samples = time_side_by_side(parts, Timing(FLAGS.reps, FLAGS.warmup), lambda: None)
        step_ms = medians["ours, reshape (reference), graph"]
        part_rows = [
            [name, float(np.median(t)), f"{min(t):.1f}-{max(t):.1f}", float(np.median(t)) / step_ms]
            for name, t in part_samples.items()
        ]
        print()
        print(_report.markdown_table(["part of our step (graph)", "median ms", "min-max ms",
                                      "x whole step"], part_rows))  # fmt: skip
        medians.update({name: row[1] for name, row in zip(part_samples, part_rows)})
    if FLAGS.json:
        _report.write_json(FLAGS.json, medians)


if __name__ == "__main__":
    app.run(main)
