"""Benchmarks of tf_tsembed against the cheapest possible op and what a user would write without it.

`python -m benchmarks.forward` times forward passes of every public layer; `python -m
benchmarks.train_step` times one training step of a small Informer-style encoder. Both print a
markdown table and take `--help`.
"""
