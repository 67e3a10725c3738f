"""Outputs written whole or not at all: a temporary sibling, renamed into place once complete.

`replacing(path)` yields a temporary sibling of `path` (same directory, so renaming it is atomic)
to write and check; only when the block ends without an exception is it renamed to `path`. A
failed or interrupted write (an exception, or SIGINT/SIGTERM turned into one) removes the
temporary and leaves a previous output as it was. An existing `path` is replaced only when
asked (`overwrite=True`).

Replacing a directory takes two renames (POSIX has no atomic swap of directories): the old one
to a backup sibling `.NAME.old-*`, the new one into place, then the backup is deleted. Between
the two renames (microseconds) NAME does not exist; a process killed with SIGKILL exactly then
leaves the old output in the backup. A SIGKILL while writing leaves a `.NAME.partial-*` sibling
behind (and the old output in place).

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "result.txt")
>>> with replacing_file(path) as file:
...     _ = file.write("complete")
>>> open(path).read()
'complete'
>>> try:
...     with replacing_file(path, overwrite=True) as file:
...         _ = file.write("half")
...         raise RuntimeError("interrupted")
... except RuntimeError:
...     pass
>>> open(path).read()  # the earlier output, as it was
'complete'
"""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def replacing(path, *, directory=False, overwrite=False):
    """Yields a temporary sibling of `path` to write (a new empty directory, or with
    `directory=False` a path to create); when the block ends without an exception the sibling
    is renamed to `path`, else it is removed and `path` is left as it was.

    Raises FileExistsError (the temporary removed) when `path` exists and `overwrite` is False,
    also when it appeared while the block ran.
    """
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f".{name}.partial-", dir=parent)
    target = temporary if directory else os.path.join(temporary, name)
    try:
        yield target
        if not directory:
            with open(target, "rb") as written:
                os.fsync(written.fileno())
        _move_into_place(target, path, directory, overwrite)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)  # after a move, only the empty holder


@contextlib.contextmanager
def replacing_file(path, *, overwrite=False, mode="w", **open_args):
    """`replacing` for a file: yields it open for writing (`open`'s `mode` and arguments)."""
    with replacing(path, overwrite=overwrite) as temporary:
        with open(temporary, mode, **open_args) as file:
            yield file


def _move_into_place(source, path, directory, overwrite):
    exists = os.path.lexists(path)
    if exists and not overwrite:
        raise FileExistsError(f"{path!r} exists (or appeared meanwhile); it was not replaced.")
    if not directory:
        os.replace(source, path)  # atomic: readers see the old file or the new one
        return
    if not exists:
        os.rename(source, path)
        return
    parent, name = os.path.split(path)
    backup = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
    os.rename(path, os.path.join(backup, name))
    try:
        os.rename(source, path)
    except BaseException:
        os.rename(os.path.join(backup, name), path)
        os.rmdir(backup)
        raise
    shutil.rmtree(backup, ignore_errors=True)
