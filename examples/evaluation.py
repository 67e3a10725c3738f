"""How the examples score forecasts and check an exported model."""

import numpy as np
import tensorflow as tf

from tf_tsembed.serving import compare_forecasts


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


def finite_errors(forecast, truth):
    """`errors` of the model's test forecasts; raises ValueError when they are not finite (the
    weights diverged or the forecasts overflowed), so that nothing is written."""
    mse, mae = errors(forecast, truth)
    if not (np.isfinite(mse) and np.isfinite(mae)):
        bad = int(np.sum(~np.isfinite(np.asarray(forecast, np.float64))))
        raise ValueError(
            f"the test metrics are not finite (MSE {mse}, MAE {mae}; {bad} forecast values "
            f"not finite): the model diverged or its outputs overflowed; give a smaller "
            f"--learning_rate, or check the data for values too large. Nothing was written."
        )
    return mse, mae


def export_and_check(model, export_dir, sample_inputs, *, overwrite=False):
    """Writes a SavedModel to `export_dir`, reloads it, checks its forecasts; returns the max abs
    difference. It is written to a temporary sibling and moved into place only once checked
    (`outputs.replacing`): on any failure a previous `export_dir` is left as it was.

    Raises ValueError when the reloaded model's forecasts differ from the trained model's by more
    than `tf_tsembed.serving.EXPORT_TOLERANCE` (absolute plus relative), or are not finite.
    """
    from examples import outputs

    # The models take a list of inputs: [values] or [values, time features, ...].
    sample_inputs = list(sample_inputs) if isinstance(sample_inputs, tuple) else [sample_inputs]
    expected = model(sample_inputs, training=False).numpy()
    with outputs.replacing(export_dir, directory=True, overwrite=overwrite) as temporary:
        model.export(temporary, verbose=False)
        reloaded = tf.saved_model.load(temporary)  # kept: its functions use its variables
        actual = reloaded.serve(sample_inputs).numpy()
        return compare_forecasts(actual, expected)
