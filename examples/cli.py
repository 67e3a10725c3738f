"""What the example scripts share as programs: `--help` without TensorFlow, quiet start-up."""

import math
import os
import re
import signal
import sys
import tempfile

from absl import app, flags, logging

_HELP_FLAGS = ("-h", "--help", "-help", "--helpshort", "--helpfull", "-?")


def run(main, define_flags, describe_defaults=None):
    """Defines the script's flags and runs `main(argv)` under absl.

    `--help` prints the flags (required ones marked) and, from `describe_defaults(FLAGS)` when
    given, what the defaults resolve to, then exits 0 before TensorFlow is imported (absl's own
    `--help` exits 1); into a closed pipe (`--help | head`) it ends quietly. A flag absl
    refuses (with `--help` too), and a ValueError, RuntimeError or OSError (the scripts'
    refusals of flags, data, devices and outputs), print as one `error:` line and exit 2; with
    `--verbosity` given, the errors raised in `main` keep their traceback. SIGINT and SIGTERM
    raise `Interrupted` in `main`, so that outputs being written are removed (`outputs`), then
    print one `error:` line and exit 128 + the signal's number, as a shell reports it.
    """
    # Level 3: level 2 still prints cuInit's error on every CPU-only machine; errors still surface.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    define_flags()
    argv = sys.argv
    if any(arg in _HELP_FLAGS for arg in argv[1:]):
        try:
            text = _help_text(argv, describe_defaults)
        except flags.Error as error:
            _refuse(error)
        try:
            print(text, flush=True)
        except BrokenPipeError:
            _discard_stdout()
        sys.exit(0)

    import_tensorflow()  # before the flags are parsed: some validators import it too
    stop_on_signals()

    def quiet_main(argv):
        if flags.FLAGS["verbosity"].present:
            return _stopping(main, argv)
        logging.set_verbosity(logging.WARNING)  # absl's INFO lines from SavedModel writing
        try:
            return _stopping(main, argv)
        except BrokenPipeError:
            _discard_stdout()
            _refuse("standard output was closed (broken pipe); the run stopped.")
        except (ValueError, RuntimeError, OSError) as error:
            _refuse(error)

    def parse(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as error:
            _refuse(error)

    app.run(quiet_main, argv=argv, flags_parser=parse)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised where the script is (see `stop_on_signals`)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_on_signals():
    """Makes SIGINT and SIGTERM raise `Interrupted` (SIGTERM would otherwise end the process
    without running `finally` blocks, leaving a half-written output's temporary behind)."""

    def interrupt(signum, frame):
        raise Interrupted(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


def _stopping(main, argv):
    try:
        return main(argv)
    except Interrupted as interrupted:
        print(
            f"error: stopped by {interrupted}; outputs not yet in place were removed, "
            f"earlier ones left as they were.",
            file=sys.stderr,
        )
        sys.exit(128 + interrupted.signum)


def _refuse(error):
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


def _discard_stdout():
    """Points stdout at /dev/null, so that exiting (which flushes it) raises nothing more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


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


def define_overwrite():
    """`--overwrite`: without it an existing output (`--json`, `--export_dir`) is refused."""
    flags.DEFINE_boolean(
        "overwrite",
        False,
        "Replace existing outputs (each only once its replacement is written and checked); "
        "without it an existing output is refused before training.",
    )


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
