"""One MultiWorkerMirroredStrategy worker (TF_CONFIG from the environment) for test_distribute.py.

Trains a small model with the package's layers at their default arguments for a few steps on
this worker's own data, through the example's multi-worker loop, and saves the weights before
and after to the .npz file named by argv[1].
"""

import sys

import _models
import numpy as np
import tensorflow as tf

from examples import data, training
from tf_tsembed.timefeatures import time_marks

keras = tf.keras
SEQ_LEN, PRED_LEN, D_MODEL, BATCH_PER_WORKER, STEPS = 24, 6, 8, 4, 3


def main(output_path):
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = strategy.cluster_resolver.task_id
    # Different seeds and data on each worker: equal weights can only come from the strategy.
    keras.utils.set_random_seed(100 + task)
    dates, names, values = data.synthetic_series(days=10, seed=task)
    series = (values - values.mean(axis=0)) / values.std(axis=0)
    global_batch = BATCH_PER_WORKER * strategy.num_replicas_in_sync
    starts = np.arange(STEPS * global_batch)
    window = dict(
        inputs=series,
        targets=series[:, names.index("OT")],
        marks=time_marks(dates, "h"),
        seq_len=SEQ_LEN,
        pred_len=PRED_LEN,
        batch_size=global_batch,
        drop_remainder=True,
    )
    train_data = data.make_dataset(starts=starts, shuffle_seed=task, **window)
    val_data = data.make_dataset(starts=starts[:global_batch], **window)
    with strategy.scope():
        model = _models.default_layers_model(len(names), SEQ_LEN, D_MODEL, PRED_LEN)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    initial = [w.copy() for w in model.get_weights()]
    training.train_model(model, strategy, train_data, val_data, epochs=1, global_batch=global_batch)
    final = model.get_weights()
    arrays = {f"initial_{i}": w for i, w in enumerate(initial)}
    arrays.update({f"final_{i}": w for i, w in enumerate(final)})
    np.savez(output_path, num_replicas=strategy.num_replicas_in_sync, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
