"""Benchmarks of tf_tsembed against the cheapest possible op and what a user would write without it.

`python -m benchmarks.forward` times forward passes of every public layer, `python -m
benchmarks.train_step` one training step of a small Informer-style encoder, and `python -m
benchmarks.targets` checks the speed targets. Each prints a markdown table and takes `--help`.
"""

import os

# Set before TensorFlow is imported, unless the user set it: 3, as TF 2.21 logs a CPU-only host's
# failed cuInit at ERROR level, which 2 still prints.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
