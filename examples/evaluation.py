"""How the examples score forecasts and check an exported model."""

import numpy as np
import tensorflow as tf


def baselines(target, starts, seq_len, pred_len, season):
    """Repeat-last-value and (unless `season` is None) seasonal-naive forecasts
    `(windows, pred_len)` from each window."""
    last = target[starts + seq_len - 1]
    forecasts = {"repeat-last": np.repeat(last[:, None], pred_len, axis=1)}
    if season is not None:
        # Step h of the horizon repeats the same phase of the last season in the input window.
        lags = season - np.arange(pred_len) % season
        forecasts[f"seasonal-naive ({season})"] = target[starts[:, None] + seq_len - lags[None, :]]
    return forecasts


def errors(forecast, truth):
    """(MSE, MAE) over all windows, steps and series, in float64."""
    difference = np.asarray(forecast, np.float64) - truth
    return float(np.mean(difference**2)), float(np.mean(np.abs(difference)))


def export_and_check(model, export_dir, sample_inputs):
    """Writes a SavedModel, reloads it, checks its forecasts; returns the max abs difference."""
    model.export(export_dir, verbose=False)
    reloaded = tf.saved_model.load(export_dir)
    # The models take a list of inputs: [values] or [values, time features, ...].
    sample_inputs = list(sample_inputs) if isinstance(sample_inputs, tuple) else [sample_inputs]
    expected = model(sample_inputs, training=False).numpy()
    actual = reloaded.serve(sample_inputs).numpy()
    # The reloaded graph is optimised on its own, so float32 rounding may differ in the last bits.
    np.testing.assert_allclose(
        actual, expected, rtol=1e-5, atol=1e-5, err_msg="reloaded vs trained model"
    )
    return float(np.max(np.abs(actual - expected)))
