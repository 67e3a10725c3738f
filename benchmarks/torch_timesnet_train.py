"""TSLib's TimesNet trained in PyTorch under TSLib's 2023 protocol, on our windows: the control
for `python -m examples.long_term_forecast --model timesnet` (a gap that both show is not ours).

    python -m benchmarks.torch_timesnet_train --csv ETTh1.csv --seed 2021 --pred_len 96

The windows, scaling and time features come from `examples.data.load_benchmark`, the sizes from
the authors' script (`examples.recipes`); the rest is TSLib's loop written in PyTorch: Adam, MSE,
training and validation batches shuffled with the last incomplete one dropped, validation loss
the mean of batch losses, the rate halved after every epoch from the second on, early stopping
after `patience` epochs, the best weights restored, the test windows forecast one at a time.
Each Inception block runs as one convolution (`torch_timesnet`'s `one_convolution`, the same
math as six). `--checkpoint` saves the best weights as TSLib's `checkpoint.pth` (TSLib's keys,
`torch_timesnet.tslib_state_dict`), which `python -m tf_tsembed.tslib` converts; `--json` writes
the test MSE and MAE unrounded. Needs torch.
"""

import random
import time

import numpy as np
from absl import app, flags

from examples import cli, data, outputs, recipes

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("csv", None, "A long-horizon benchmark CSV.", required=True)
    flags.DEFINE_string("target", "OT", "The column moved last, as TSLib's loaders do.")
    flags.DEFINE_integer("pred_len", 96, "Horizon.", lower_bound=1)
    flags.DEFINE_integer("seq_len", 96, "Input length.", lower_bound=2)
    cli.define_seed("Seed of Python, NumPy and torch.")
    flags.DEFINE_integer("epochs", None, "Epochs; default: the authors' script.", lower_bound=1)
    flags.DEFINE_integer("d_model", None, "Width; default: the authors' script.", lower_bound=1)
    flags.DEFINE_integer("d_ff", None, "Inception width; default: the script's.", lower_bound=1)
    flags.DEFINE_integer("steps_per_epoch", None, "Cap on steps per epoch (tests).", lower_bound=1)
    flags.DEFINE_integer(
        "test_windows",
        None,
        "Forecast only the first this many test windows (tests).",
        lower_bound=1,
    )
    flags.DEFINE_integer("patience", 3, "Epochs without a lower validation loss.", lower_bound=1)
    flags.DEFINE_string("checkpoint", None, "Save the best weights here as TSLib's checkpoint.")
    flags.DEFINE_string("json", None, "Write the test MSE and MAE here as JSON.")
    cli.define_overwrite()


def main(argv):
    del argv
    import torch

    from benchmarks import torch_timesnet

    outputs.check(
        files={"checkpoint": FLAGS.checkpoint, "json": FLAGS.json},
        inputs={"csv": FLAGS.csv},
        overwrite=FLAGS.overwrite,
    )
    random.seed(FLAGS.seed)
    np.random.seed(FLAGS.seed)
    torch.manual_seed(FLAGS.seed)
    name = recipes.data_name(FLAGS.csv)
    overrides = {name: FLAGS[name].value for name in ("epochs", "d_model", "d_ff")}
    chosen = recipes.settings("timesnet", name, FLAGS.pred_len, overrides)
    loaded = data.load_benchmark(
        FLAGS.csv, None, "M", FLAGS.target, None, FLAGS.seq_len, FLAGS.pred_len
    )
    series, marks = loaded["series"].astype("float32"), loaded["marks"].astype("float32")
    train, val, test = loaded["starts"]
    test = test[: FLAGS.test_windows]
    seq_len, pred_len, batch = FLAGS.seq_len, FLAGS.pred_len, chosen["batch_size"]

    def windows(starts):
        past = starts[:, None] + np.arange(seq_len)
        future = starts[:, None] + np.arange(seq_len, seq_len + pred_len)
        return (torch.tensor(a) for a in (series[past], marks[past], series[future]))

    def shuffled_batches(starts):
        order = np.random.permutation(starts)
        count = len(order) // batch
        if FLAGS.steps_per_epoch:
            count = min(count, FLAGS.steps_per_epoch)
        return [order[i * batch : (i + 1) * batch] for i in range(count)]

    model = torch_timesnet.TimesNet(
        seq_len,
        pred_len,
        series.shape[1],
        marks.shape[1],
        d_model=chosen["d_model"],
        d_ff=chosen["d_ff"],
        e_layers=chosen["e_layers"],
        dropout=chosen["dropout"],
        top_k=chosen["top_k"],
        one_convolution=True,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=chosen["learning_rate"])
    best, best_state, waited, started = np.inf, None, 0, time.time()
    for epoch in range(chosen["epochs"]):
        epoch_started, losses = time.time(), []
        model.train()
        for starts in shuffled_batches(train):
            x, x_marks, y = windows(starts)
            optimizer.zero_grad()
            loss = torch.mean((model(x, x_marks) - y) ** 2)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val_loss = float(
                np.mean(
                    [
                        torch.mean((model(x, m) - y) ** 2).item()
                        for x, m, y in map(windows, shuffled_batches(val))
                    ]
                )
            )
        print(
            f"epoch {epoch + 1}: {time.time() - epoch_started:.0f} s, "
            f"train loss {np.mean(losses):.4f}, val loss {val_loss:.4f}",
            flush=True,
        )
        if val_loss < best:
            best, waited = val_loss, 0
            best_state = {key: value.clone() for key, value in model.state_dict().items()}
        else:
            waited += 1
            if waited >= FLAGS.patience:
                break
        for group in optimizer.param_groups:  # TSLib's adjust_learning_rate(epoch + 1), type1
            group["lr"] = chosen["learning_rate"] * 0.5**epoch
    model.load_state_dict(best_state)
    squared = absolute = 0.0
    with torch.no_grad():
        for start in test:
            x, x_marks, y = windows(np.array([start]))
            error = model(x, x_marks) - y
            squared += torch.sum(error**2).item()
            absolute += torch.sum(torch.abs(error)).item()
    count = len(test) * pred_len * series.shape[1]
    mse, mae = squared / count, absolute / count
    print(
        f"test ({len(test)} windows): MSE {mse:.4f}, MAE {mae:.4f}; "
        f"done in {time.time() - started:.0f} s",
        flush=True,
    )
    if FLAGS.checkpoint:
        with outputs.replacing(FLAGS.checkpoint, overwrite=FLAGS.overwrite) as temporary:
            torch.save(torch_timesnet.tslib_state_dict(model), temporary)
    if FLAGS.json:
        settings = {key: chosen[key] for key in ("d_model", "d_ff", "e_layers", "top_k")}
        result = dict(mse=mse, mae=mae, seq_len=seq_len, pred_len=pred_len, **settings)
        outputs.write_json(FLAGS.json, result, overwrite=FLAGS.overwrite)


if __name__ == "__main__":
    define_flags()
    app.run(main)
