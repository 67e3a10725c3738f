"""Exports a small model over an existing SavedModel (argv[1]) as the scripts do, and stops
between writing the temporary copy and moving it into place: prints `EXPORTED <temporary>` and
sleeps, for test_outputs.py to send a real SIGTERM or SIGINT there.

Exits 128 + the signal's number when interrupted, as `cli.run` does.
"""

import sys
import time

import numpy as np
import tensorflow as tf

from examples import cli, evaluation

INPUTS = np.linspace(-1, 1, 2 * 8 * 3, dtype="float32").reshape(2, 8, 3)


def tiny_model(seed):
    """`[(B, 8, 3)] -> (B, 4)`, its weights drawn from `seed`."""
    tf.keras.utils.set_random_seed(seed)
    values = tf.keras.Input((8, 3))
    head = tf.keras.layers.Dense(4)(tf.keras.layers.Flatten()(values))
    return tf.keras.Model([values], head)  # a list of inputs, as the scripts' models


def main(export_dir):
    cli.stop_on_signals()
    model = tiny_model(seed=7)  # other weights than the SavedModel already there
    export = model.export

    def export_then_wait(path, **kwargs):
        export(path, **kwargs)
        print(f"EXPORTED {path}", flush=True)
        time.sleep(120)

    model.export = export_then_wait
    try:
        evaluation.export_and_check(model, export_dir, INPUTS, overwrite=True)
    except cli.Interrupted as interrupted:
        sys.exit(128 + interrupted.signum)
    sys.exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
