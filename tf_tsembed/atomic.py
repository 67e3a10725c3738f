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

SAVED_MODEL_FILE = "saved_model.pb"  # what an earlier SavedModel export holds


@contextlib.contextmanager
def replacing(path, *, directory=False, overwrite=False, earlier=None):
    """Yields a temporary sibling of `path` to write (a new empty directory, or with
    `directory=False` a path to create); when the block ends without an exception the sibling
    is renamed to `path`, else it is removed and `path` is left as it was. A directory gets the
    permissions the umask gives a new one.

    `earlier`: for a directory, the name of a file an existing `path` must hold to be replaced
    (e.g. "saved_model.pb": only an earlier export, or an empty directory, is replaced), so
    that `--export_dir .` cannot delete a folder of other files.

    Raises FileExistsError (the temporary removed) when `path` exists and `overwrite` is False,
    also when it appeared while the block ran; or, with `earlier`, when an existing `path` is
    not a directory holding it (checked before the block and again before the rename).
    """
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    check_replaceable(path, directory=directory, overwrite=overwrite, earlier=earlier)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f".{name}.partial-", dir=parent)
    if directory:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o777 & ~umask)  # mkdtemp's 0700 would hide it from other users
    target = temporary if directory else os.path.join(temporary, name)
    try:
        yield target
        if not directory:
            with open(target, "rb") as written:
                os.fsync(written.fileno())
        check_replaceable(path, directory=directory, overwrite=overwrite, earlier=earlier)
        _move_into_place(target, path, directory, overwrite)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)  # after a move, only the empty holder


@contextlib.contextmanager
def replacing_file(path, *, overwrite=False, mode="w", **open_args):
    """`replacing` for a file: yields it open for writing (`open`'s `mode` and arguments)."""
    with replacing(path, overwrite=overwrite) as temporary:
        with open(temporary, mode, **open_args) as file:
            yield file


def check_replaceable(path, *, directory=False, overwrite=False, earlier=None):
    """Raises FileExistsError unless `replacing` may write `path`: it does not exist, or
    `overwrite` is True and it is of the same kind (a file for a file; for a directory, one
    that is empty or holds `earlier`)."""
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise FileExistsError(f"{path!r} exists; pass overwrite=True to replace it.")
    if directory != os.path.isdir(path) or os.path.islink(path):
        kind = "directory" if directory else "file"
        raise FileExistsError(f"{path!r} exists and is not a {kind}; it was not replaced.")
    if (
        directory
        and earlier
        and os.listdir(path)
        and not os.path.exists(os.path.join(path, earlier))
    ):
        raise FileExistsError(
            f"{path!r} is a directory of other files, not an earlier output (it has no "
            f"{earlier}); it was not replaced."
        )


def check_writable(path, *, directory=False, name=None):
    """Raises ValueError unless `path` can be written by `replacing`: a file, or with
    `directory=True` a directory (created if missing); `name` is how messages call it."""
    name = name or repr(os.fspath(path))
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path) and not directory:
        raise ValueError(f"{name} is a directory; give a file path.")
    if os.path.exists(path) and not os.path.isdir(path) and directory:
        raise ValueError(f"{name} is a file; give a directory path.")
    # The output is written beside itself and renamed: its parent must take a new entry. The
    # nearest existing ancestor is where the first directory would be created.
    ancestor = os.path.dirname(path)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(f"{name} cannot be written: {ancestor!r} is not a directory.")
    try:
        # Creating a file is the only test that root and read-only file systems both answer.
        tempfile.TemporaryFile(dir=ancestor).close()
    except OSError as error:
        raise ValueError(f"{name} cannot be written: {error.strerror}.") from None


def same_file(a, b):
    """Whether paths `a` and `b` name one file: the same real path, or the same device and
    inode (a symbolic or a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def inside(path, directory):
    """Whether `path` lies under `directory` (real paths)."""
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory and path != directory


def _move_into_place(source, path, directory, overwrite):
    exists = os.path.lexists(path)
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
