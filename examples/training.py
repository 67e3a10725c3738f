"""How the examples train: TSLib's schedule for the reproductions, `fit` (or, under
MultiWorkerMirroredStrategy, its loop written out) for the main job."""

import math
import sys
import time

import numpy as np
import tensorflow as tf

from examples.distribute import is_chief
from examples.evaluation import errors

keras = tf.keras


class TorchAdam(keras.optimizers.Optimizer):
    """Adam as `torch.optim.Adam` computes it, the optimizer of TSLib's runs.

    `variable -= lr / (1 - beta_1**t) * m / (sqrt(v) / sqrt(1 - beta_2**t) + epsilon)`: epsilon
    is added to the bias-corrected root of v. Keras' Adam adds it before the correction, so a
    gradient below about 1e-6 moves its weight differently there in the first steps.
    """

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        name="torch_adam",
        **kwargs,
    ):
        # `name` is an argument, not fixed: `get_config()` holds it, so `from_config` passes it.
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.moments, self.velocities = self.add_optimizer_variables(
            var_list, ["moment", "velocity"]
        )

    def update_step(self, gradient, variable, learning_rate):
        ops = keras.ops
        dtype = variable.dtype
        lr, gradient = ops.cast(learning_rate, dtype), ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v = self.moments[index], self.velocities[index]
        self.assign(m, self.beta_1 * m + (1 - self.beta_1) * gradient)
        self.assign(v, self.beta_2 * v + (1 - self.beta_2) * ops.square(gradient))
        beta_1, beta_2 = (ops.convert_to_tensor(b, dtype) for b in (self.beta_1, self.beta_2))
        corrected_root = ops.sqrt(v) / ops.sqrt(1 - ops.power(beta_2, step))
        size = lr / (1 - ops.power(beta_1, step))
        self.assign_sub(variable, size * m / (corrected_root + self.epsilon))

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config


def refuse_non_finite(what, value, epoch, model, step=None):
    """Raises ValueError unless `value` (a loss) is finite: a diverged run stops at once, with
    the epoch (1-based), the likely cause and nothing written."""
    value = float(value)
    if math.isfinite(value):
        return
    where = f"epoch {epoch + 1}" + (f", step {step + 1}" if step is not None else "")
    raise ValueError(
        f"{where}: the {what} is {value}: training diverged; give a smaller --learning_rate "
        f"(this run: {_learning_rate(model):.3g}), or check the data for values too large. "
        f"Nothing was written."
    )


def _learning_rate(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class FiniteLosses(keras.callbacks.Callback):
    """Stops `fit` with ValueError (`refuse_non_finite`) when the training loss (checked after
    every step) or the validation loss (after every epoch) is NaN or infinite."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            refuse_non_finite("training loss", logs["loss"], self.epoch, self.model, batch)

    def on_epoch_end(self, epoch, logs=None):
        for key, what in (("loss", "training loss"), ("val_loss", "validation loss")):
            if logs and key in logs:
                refuse_non_finite(what, logs[key], epoch, self.model)


def tslib_learning_rate(initial, epoch):
    """TSLib's `lradj=type1` for 0-based `epoch`: `adjust_learning_rate(optimizer, epoch + 1)`
    runs after each epoch and sets `initial * 0.5 ** epoch`, so epochs 0 and 1 both train at
    `initial`, then every epoch halves it."""
    return initial * 0.5 ** max(0, epoch - 1)


def tslib_validation_loss(forward, dataset):
    """TSLib's `vali`: the mean over batches of each batch's MSE (a smaller last batch weighs
    as much as a full one)."""
    losses = [
        float(tf.reduce_mean(tf.square(forward(inputs) - truth))) for inputs, truth in dataset
    ]
    return float(np.mean(losses))


class EpochReport(keras.callbacks.Callback):
    """TSLib's validation, early stopping and best weights: one line per epoch.

    After each epoch the validation loss is TSLib's (`tslib_validation_loss`, dropout off); a
    loss counts as better when strictly lower (TSLib's EarlyStopping, delta 0, also counts an
    equal one). Training stops after `patience` epochs without a better one, and the best
    epoch's weights are restored at the end.
    """

    def __init__(self, val_data, patience, log_every=0):
        super().__init__()
        self.val_data, self.patience, self.log_every = val_data, patience, log_every
        self.best_loss, self.best_weights, self.wait, self.epochs_run = np.inf, None, 0, 0

    def on_train_begin(self, logs=None):
        model = self.model
        self.forward = tf.function(lambda inputs: model(inputs, training=False))

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.epoch = time.time(), epoch

    def on_train_batch_end(self, batch, logs=None):
        refuse_non_finite("training loss", logs["loss"], self.epoch, self.model, batch)
        if self.log_every and (batch + 1) % self.log_every == 0:
            seconds = time.time() - self.started
            print(
                f"  step {batch + 1}: {seconds / (batch + 1):.2f} s per step, running train loss "
                f"{float(logs['loss']):.4f}",
                flush=True,
            )

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run = epoch + 1
        refuse_non_finite("training loss", logs["loss"], epoch, self.model)
        val_loss = tslib_validation_loss(self.forward, self.val_data)
        refuse_non_finite("validation loss", val_loss, epoch, self.model)
        improved = val_loss < self.best_loss
        lr = _learning_rate(self.model)
        print(
            f"epoch {epoch + 1}: {time.time() - self.started:.1f} s, lr {lr:.3g}, train loss "
            f"{logs['loss']:.4f}, val loss {val_loss:.4f}{' (best)' if improved else ''}",
            flush=True,
        )
        if improved:
            self.best_loss, self.best_weights, self.wait = val_loss, self.model.get_weights(), 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                print(
                    f"early stopping: no lower validation loss for {self.patience} epochs",
                    flush=True,
                )
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def train_tslib(
    model, train_data, val_data, *, epochs, learning_rate, patience, steps_per_epoch=0, log_every=0
):
    """TSLib's training: PyTorch's Adam, MSE, `lradj=type1`, early stopping on its validation
    loss, the best epoch's weights restored. Returns the number of epochs run."""
    model.compile(optimizer=TorchAdam(learning_rate), loss="mse")
    report = EpochReport(val_data, patience, log_every)
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch: tslib_learning_rate(learning_rate, epoch)
    )
    if steps_per_epoch:
        train_data = train_data.repeat()  # so that every epoch gets its steps_per_epoch batches
    model.fit(
        train_data,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch or None,
        callbacks=[schedule, report],
        shuffle=False,  # the dataset shuffles
        verbose=0,
    )
    return report.epochs_run


def predict(model, strategy, dataset):
    """Forecasts for every batch of `dataset`, in order, as one NumPy array."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras' predict would give each worker only its shard; the weights are synchronised,
        # so every worker forecasts the whole test set locally instead.
        forward = tf.function(lambda inputs: model(inputs, training=False))
        return np.concatenate([forward(inputs).numpy() for inputs, _ in dataset])
    return model.predict(dataset, verbose=0)


def train_model(model, strategy, train_data, val_data, epochs, global_batch):
    """`model.fit` with a progress bar; under MultiWorkerMirroredStrategy, that loop written out."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # The dataset shuffles itself; fit's own shuffle would only warn for a dataset. A log file
        # gets one line per epoch: a progress bar there is one long line of control characters.
        verbose = 1 if sys.stdout.isatty() else 2
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=epochs,
            shuffle=False,
            verbose=verbose,
            callbacks=[FiniteLosses()],
        )
        return
    # Keras 3.15's fit and train_on_batch fail under this strategy: they pass a nested batch and
    # scalar metrics to `strategy.reduce`, which it rejects. The step below is fit's, minus metrics.
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)

    @tf.function
    def step(inputs, future):
        def replica_step(inputs, future):
            with tf.GradientTape() as tape:
                per_window = tf.reduce_mean(
                    tf.square(model(inputs, training=True) - future), axis=-1
                )
                loss = tf.nn.compute_average_loss(per_window, global_batch_size=global_batch)
            gradients = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

        return strategy.reduce("SUM", strategy.run(replica_step, args=(inputs, future)), axis=None)

    distributed = strategy.experimental_distribute_dataset(train_data)
    val_truth = np.concatenate([future.numpy() for _, future in val_data])
    for epoch in range(epochs):
        print(f"Epoch {epoch + 1}/{epochs}")
        progress = keras.utils.Progbar(
            int(train_data.cardinality()),
            verbose=1 if is_chief(strategy) and sys.stdout.isatty() else 2,
            stateful_metrics=["loss"],
        )
        losses = []
        for index, (inputs, future) in enumerate(distributed):
            losses.append(float(step(inputs, future)))
            progress.update(index + 1, [("loss", np.mean(losses))])
        refuse_non_finite("training loss", np.mean(losses), epoch, model)
        val_mse, val_mae = errors(predict(model, strategy, val_data), val_truth)
        refuse_non_finite("validation loss", val_mse, epoch, model)
        print(f"val_loss: {val_mse:.4f} - val_mae: {val_mae:.4f}")
