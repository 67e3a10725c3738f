"""Runnable examples built on tf_tsembed, run from the repository root:

    .venv/bin/python -m examples.forecast                 # the main job, on built-in data
    .venv/bin/python -m examples.long_term_forecast --csv ETTh1.csv --model timesnet

Importing a module here defines no flags and starts no TensorFlow work: each script's flags are
defined by its `define_flags()`, called when it runs.
"""
