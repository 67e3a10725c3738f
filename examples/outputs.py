"""Where the scripts' outputs go: checked before any training, written whole or not at all.

Before training, `check` refuses an output that exists (unless `--overwrite`), one that cannot be
written, one that is an input, holds one or lies inside an input directory, and two outputs of
the same path. After it, `replacing` writes through
`tf_tsembed.atomic` (a temporary sibling renamed into place once complete and checked): a
failed or interrupted run (an exception, SIGINT, SIGTERM turned into one by `cli.run`) removes
its temporary and leaves a previous output as it was.

No TensorFlow at import: the checks run before it is needed (`tf_tsembed` is imported when an
output is written).
"""

import contextlib
import json
import os


def check(*, files=(), directories=(), inputs=(), overwrite=False):
    """Raises ValueError, before any training, unless every output can be written as asked.

    `files` and `directories` map a flag name to its output path, `inputs` a flag name to an
    input path (None values are skipped). An output is refused when it exists and `overwrite`
    is False, when it is an input (same real path, or same device and inode: a symlink or a
    hardlink), when it would hold an input or lies inside an input directory (writing it would
    change the input: a file inside a SavedModel read), when it is another output or would hold
    one, or when it cannot be written.
    """
    from tf_tsembed import atomic

    outputs = [(flag, path, False) for flag, path in dict(files).items() if path]
    outputs += [(flag, path, True) for flag, path in dict(directories).items() if path]
    inputs = [(flag, path) for flag, path in dict(inputs).items() if path]
    for flag, path, directory in outputs:
        for input_flag, input_path in inputs:
            if atomic.same_file(path, input_path):
                raise ValueError(
                    f"--{flag}={path!r} is the input --{input_flag}={input_path!r}: writing it "
                    f"would destroy the input; give another path."
                )
            if atomic.inside(input_path, path):
                raise ValueError(
                    f"--{flag}={path!r} holds the input --{input_flag}={input_path!r}, which "
                    f"replacing the directory would delete; give another path."
                )
            if atomic.inside(path, input_path):
                raise ValueError(
                    f"--{flag}={path!r} lies inside the input --{input_flag}={input_path!r}: "
                    f"writing it would change the input; give a path outside it."
                )
        for other_flag, other_path, _ in outputs:
            if other_flag != flag and atomic.same_file(path, other_path):
                raise ValueError(
                    f"--{flag}={path!r} and --{other_flag}={other_path!r} are the same path: "
                    f"one output would replace the other; give two paths."
                )
            if other_flag != flag and directory and atomic.inside(other_path, path):
                raise ValueError(
                    f"--{other_flag}={other_path!r} is inside --{flag}={path!r}; give paths "
                    f"outside each other."
                )
        check_writable(flag, path, directory=directory)
        if os.path.lexists(path) and not overwrite:
            raise ValueError(
                f"--{flag}={path!r} exists; give --overwrite to replace it (it is kept until the "
                f"new one is written and checked), or another path."
            )
        if directory:
            try:  # a folder of other files is never replaced, --overwrite or not
                atomic.check_replaceable(
                    path, directory=True, overwrite=True, earlier=atomic.SAVED_MODEL_FILE
                )
            except FileExistsError as error:
                raise ValueError(f"--{flag}: {error} Give another path.") from None


def check_writable(flag, path, directory=False):
    """Raises ValueError, before any training, unless the run can write `path` (`--flag`): a
    file, or with `directory=True` a directory (created if missing)."""
    from tf_tsembed import atomic

    atomic.check_writable(path, directory=directory, name=f"--{flag}={os.path.abspath(path)!r}")


@contextlib.contextmanager
def replacing(path, *, directory=False, overwrite=False):
    """`tf_tsembed.atomic.replacing`, an output that appeared during the run refused in the
    scripts' words: `check` refused an existing one before training, this one that appeared
    since (ValueError). A directory output is a SavedModel: only an earlier one is replaced."""
    from tf_tsembed import atomic

    earlier = atomic.SAVED_MODEL_FILE if directory else None
    try:
        with atomic.replacing(
            path, directory=directory, overwrite=overwrite, earlier=earlier
        ) as temporary:
            yield temporary
    except FileExistsError:
        if overwrite or not os.path.lexists(path):
            raise
        raise ValueError(
            f"{path!r} appeared during the run; give --overwrite to replace it."
        ) from None


@contextlib.contextmanager
def replacing_file(path, *, overwrite=False, mode="w", **open_args):
    """`replacing` for a file: yields it open for writing (CSV or text outputs too)."""
    with replacing(path, overwrite=overwrite) as temporary:
        with open(temporary, mode, **open_args) as file:
            yield file


def write_json(path, value, *, overwrite=False):
    """Writes `value` as strict JSON (NaN and infinities refused, before anything is written)."""
    text = json.dumps(value, indent=2, allow_nan=False) + "\n"
    with replacing_file(path, overwrite=overwrite) as file:
        file.write(text)
