"""The layers under tf.distribute: MirroredStrategy on two CPUs, MultiWorkerMirroredStrategy in
two processes."""

import json
import os
import socket
import subprocess
import sys

import _models
import numpy as np
import pytest
import tensorflow as tf

keras = tf.keras
C_IN, D_MODEL, LENGTH, GLOBAL_BATCH, STEPS = 3, 8, 12, 8, 3
TESTS = os.path.dirname(os.path.abspath(__file__))


def _model():
    """Our layers at their default arguments, but dropout off for a deterministic comparison."""
    return _models.default_layers_model(C_IN, LENGTH, D_MODEL, 2, dropout=0.0)


def _data():
    rng = np.random.default_rng(0)
    size = GLOBAL_BATCH * STEPS
    values = rng.normal(size=(size, LENGTH, C_IN)).astype("float32")
    upper = np.array([13, 32, 7, 24])  # month, day, weekday, hour
    lower = np.array([1, 1, 0, 0])
    marks = rng.integers(lower, upper, size=(size, LENGTH, 4)).astype("int32")
    targets = rng.normal(size=(size, 2)).astype("float32")
    return [values, marks], targets


def _loss(model, inputs, targets):
    """Mean squared error over the whole data set, at the model's current weights."""
    return float(np.mean((np.asarray(model(inputs, training=False)) - targets) ** 2))


def _fit(model, inputs, targets):
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    return model.fit(inputs, targets, batch_size=GLOBAL_BATCH, epochs=2, shuffle=False, verbose=0)


def test_mirrored_fit_on_two_cpus_matches_one_device():
    inputs, targets = _data()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    keras.utils.set_random_seed(0)  # the initial weights: unseeded, 1 fit in 30 made no progress
    with strategy.scope():
        mirrored = _model()
    initial = [w.copy() for w in mirrored.get_weights()]
    loss_before = _loss(mirrored, inputs, targets)
    with strategy.scope():
        history = _fit(mirrored, inputs, targets)
    single = _model()
    single.set_weights(initial)
    _fit(single, inputs, targets)

    # The whole data set's loss, not the epoch averages of `history` (each taken over weights that
    # change during the epoch): it halves at seeds 0..11; 0.75 leaves a margin.
    assert np.all(np.isfinite(history.history["loss"]))
    assert _loss(mirrored, inputs, targets) < 0.75 * loss_before
    for variable in mirrored.weights:
        replicas = variable.value.values  # the per-device copies of Keras' MirroredVariable
        assert [v.device.split(":")[-2:] for v in replicas] == [["CPU", "0"], ["CPU", "1"]]
        np.testing.assert_array_equal(np.asarray(replicas[0]), np.asarray(replicas[1]))
    # Each global batch is split 4 + 4 over the replicas and the gradients are summed: the result is
    # one-device training on the whole batch. A replica left out would change the weights.
    for before, after, reference in zip(initial, mirrored.get_weights(), single.get_weights()):
        assert not np.array_equal(after, before)
        np.testing.assert_allclose(after, reference, rtol=1e-5, atol=1e-6)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multiworker_training_leaves_identical_weights_on_both_workers(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    outputs = [os.path.join(str(tmp_path), f"worker_{i}.npz") for i in range(2)]
    repo = os.path.dirname(TESTS)
    processes = []
    for index, output in enumerate(outputs):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(tf_config),
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONPATH=repo,
            CUDA_VISIBLE_DEVICES="",
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, os.path.join(TESTS, "_worker.py"), output],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        results = [process.communicate(timeout=240) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for process, (stdout, stderr) in zip(processes, results):
        assert process.returncode == 0, stdout[-2000:] + stderr[-3000:]

    first, second = (np.load(path) for path in outputs)
    assert int(first["num_replicas"]) == int(second["num_replicas"]) == 2
    num_weights = len([key for key in first.files if key.startswith("final_")])
    assert num_weights > 0
    changed = 0
    for i in range(num_weights):
        np.testing.assert_array_equal(first[f"final_{i}"], second[f"final_{i}"])
        np.testing.assert_array_equal(first[f"initial_{i}"], second[f"initial_{i}"])
        changed += not np.array_equal(first[f"final_{i}"], first[f"initial_{i}"])
    assert changed == num_weights
