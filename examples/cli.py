"""What the example scripts share as programs: `--help` without TensorFlow, quiet start-up."""

import math
import os
import re
import sys
import tempfile

from absl import app, flags, logging

_HELP_FLAGS = ("-h", "--help", "-help", "--helpshort", "--helpfull", "-?")


def run(main, define_flags, describe_defaults=None):
    """Defines the script's flags and runs `main(argv)` under absl.

    `--help` prints the flags (required ones marked) and, from `describe_defaults(FLAGS)` when
    given, what the defaults resolve to, then exits 0 before TensorFlow is imported (absl's own
    `--help` exits 1). A flag absl refuses, and a ValueError or RuntimeError (the scripts'
    refusals of flags, data and devices), print as one `error:` line and exit 2; with
    `--verbosity` given, the errors raised in `main` keep their traceback.
    """
    # Level 3: level 2 still prints cuInit's error on every CPU-only machine; errors still surface.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    define_flags()
    argv = sys.argv
    if any(arg in _HELP_FLAGS for arg in argv[1:]):
        print(_help_text(argv, describe_defaults))
        sys.exit(0)

    import_tensorflow()  # before the flags are parsed: some validators import it too

    def quiet_main(argv):
        if flags.FLAGS["verbosity"].present:
            return main(argv)
        logging.set_verbosity(logging.WARNING)  # absl's INFO lines from SavedModel writing
        try:
            return main(argv)
        except (ValueError, RuntimeError) as error:
            _refuse(error)

    def parse(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as error:
            _refuse(error)

    app.run(quiet_main, argv=argv, flags_parser=parse)


def _refuse(error):
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


def define_seed(help_text):
    """`--seed`, 2021 by default, in the range TensorFlow's and NumPy's seeds take."""
    flags.DEFINE_integer("seed", 2021, help_text, lower_bound=0, upper_bound=2**32 - 1)


def require_learning_rate():
    """Refuses a `--learning_rate` that is not a finite number > 0 (an unset None passes)."""
    flags.register_validator(
        "learning_rate",
        lambda value: value is None or (math.isfinite(value) and value > 0),
        message="must be a finite number > 0",
    )


def require_dropout():
    """Refuses a `--dropout` outside [0, 1) (an unset None passes)."""
    flags.register_validator(
        "dropout", lambda value: value is None or 0 <= value < 1, message="must be in [0, 1)"
    )


def define_choice(name, default, choices, help_text):
    """A string flag that must be one of `choices()`, a function so that the list keeps its one
    home in a module that imports TensorFlow: it is called when the flags are parsed, after
    `--help` has been answered."""
    flags.DEFINE_string(name, default, help_text)

    def check(value):
        if value not in choices():
            raise flags.ValidationError(f"must be one of {list(choices())}; got {value!r}")
        return True

    flags.register_validator(name, check)


def check_writable(flag, path, directory=False):
    """Raises ValueError, before any training, unless the run can write `path` (`--flag`): a
    file, or with `directory=True` a directory (created if missing)."""
    path = os.path.abspath(path)
    if os.path.isdir(path) and not directory:
        raise ValueError(f"--{flag}={path!r} is a directory; give a file path.")
    if os.path.exists(path) and not os.path.isdir(path) and directory:
        raise ValueError(f"--{flag}={path!r} is a file; give a directory path.")
    # The nearest existing ancestor is where the first file or directory would be created.
    ancestor = path if directory else os.path.dirname(path)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(f"--{flag}={path!r} cannot be written: {ancestor!r} is not a directory.")
    try:
        # Creating a file is the only test that root and read-only file systems both answer.
        tempfile.TemporaryFile(dir=ancestor).close()
        if os.path.isfile(path):
            open(path, "a").close()
    except OSError as error:
        raise ValueError(f"--{flag}={path!r} cannot be written: {error.strerror}.") from None


def import_tensorflow():
    """`import tensorflow`, with its start-up lines printed once at most.

    TensorFlow's libraries each print their start-up lines (oneDNN, CUDA drivers) before its
    logging reads TF_CPP_MIN_LOG_LEVEL, so every line comes twice whatever the level. They are
    shown once at level 0 and dropped at higher levels, as their `I` (info) prefix asks; any
    other line written while importing is passed on.
    """
    level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0)
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines()
    seen = set()
    for line in lines:
        # "I0000 00:00:1796254218.071228    5406 port.cc:153] ..." without its time and thread.
        key = re.sub(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ", r"\1 ", line)
        info = key.startswith("I ") or key.startswith("WARNING: All log messages before absl")
        if key not in seen and not (info and level >= 1):
            print(line, file=sys.stderr)
        seen.add(key)
    return tensorflow


def _given_values(argv):
    """Flags given with --help, parsed without running validators, for describing defaults."""
    values = flags.FLAGS
    args = [arg for arg in argv[1:] if arg not in _HELP_FLAGS]
    for index, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        name, _, value = arg[2:].partition("=")
        if name in values and not value and index + 1 < len(args):
            value = args[index + 1]
        if name in values and value:
            values[name].parse(value)
    return values


def _help_text(argv, describe_defaults):
    program = os.path.basename(argv[0])
    doc = (sys.modules["__main__"].__doc__ or "").strip()
    values = _given_values(argv)
    lines = [doc, "", f"Flags of {program} (required ones marked [required]):"]
    ours = [
        flag
        for module, module_flags in values.flags_by_module_dict().items()
        # absl files a script's own flags under its path (sys.argv[0]).
        if module in ("__main__", argv[0]) or module.startswith("examples")
        for flag in module_flags
    ]
    for flag in sorted(ours, key=lambda flag: flag.name):
        required = " [required]" if _is_required(flag) else ""
        default = "" if flag.default is None else f" (default: {flag.default_as_str})"
        lines.append(f"  --{flag.name}{required}: {flag.help}{default}")
    if describe_defaults is not None:
        lines += ["", describe_defaults(values)]
    return "\n".join(lines)


def _is_required(flag):
    # absl marks a required flag with a validator whose message starts "Flag --name must have".
    return any(
        "must have a value other than None" in str(getattr(v, "message", ""))
        for v in flag.validators
    )
