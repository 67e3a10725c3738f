"""The package as users meet it: public API, registration, docstring examples, README, BUILD."""

import ast
import configparser
import doctest
import importlib
import importlib.util
import json
import os
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest
import reference
import tensorflow as tf

import tf_tsembed

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULES = sorted(m.name for m in pkgutil.walk_packages(tf_tsembed.__path__, "tf_tsembed."))


def test_version_and_public_layers_are_registered():
    assert re.fullmatch(r"\d+\.\d+\.\d+", tf_tsembed.__version__)
    for name in tf_tsembed.__all__:
        obj = getattr(tf_tsembed, name)
        if isinstance(obj, type) and issubclass(obj, tf.keras.layers.Layer):
            assert tf.keras.utils.get_registered_object(f"tf_tsembed>{name}") is obj


PUBLIC_MODULES = [name for name in MODULES if not name.split(".")[-1].startswith("_")]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module_name} has no docstring example"
    assert result.failed == 0


def test_every_public_name_has_a_docstring_example():
    missing = [
        name
        for name in tf_tsembed.__all__
        if name != "__version__" and ">>>" not in (getattr(tf_tsembed, name).__doc__ or "")
    ]
    assert not missing, missing


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "ARCHITECTURE.md"]


def _blocks(language):
    """`[(document name, block)]` of every ```language block of the README and docs/."""
    return [
        (path.name, block)
        for path in DOCUMENTS
        for block in re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)
    ]


_RUN_BLOCKS = """
import json, sys, traceback
for name, block in json.load(sys.stdin):
    try:
        exec(compile(block, name, "exec"), {"__name__": "__main__"})
    except BaseException:
        sys.exit(f"a python block of {name} failed:\\n{block}\\n{traceback.format_exc()}")
"""


@pytest.mark.slow
def test_every_python_block_of_the_readme_and_docs_runs(tmp_path):
    """Each block runs in a namespace of its own, all in one fresh process (one TF import)."""
    blocks = _blocks("python")
    assert {name for name, _ in blocks} >= {"README.md", "layers.md"}
    result = subprocess.run(
        [sys.executable, "-c", _RUN_BLOCKS],
        input=json.dumps(blocks),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]


def test_every_example_command_of_the_readme_and_docs_names_real_flags():
    """Each `python -m examples.<script> ...` line of a bash block, run with --help (which
    answers without TensorFlow): the script exists and knows every flag the line passes."""
    commands = [
        line.strip()
        for _, block in _blocks("bash")
        for line in block.splitlines()
        if "-m examples." in line
    ]
    assert len(commands) >= 4
    for command in commands:
        script, args = re.search(r"-m (examples\.\w+)(.*)", command).groups()
        flags = [arg.split("=")[0] for arg in args.split() if arg.startswith("--")]
        result = subprocess.run(
            [sys.executable, "-m", script, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (command, result.stderr[-2000:])
        for flag in flags:
            assert f"  {flag}" in result.stdout, (command, flag)


def test_no_document_points_outside_the_repository():
    for path in [*DOCUMENTS, ROOT / "CHANGELOG.md"]:
        text = path.read_text()
        assert "SPEC.md" not in text, path.name
        for target in re.findall(r"\]\(([^)#]+)", text):
            if not target.startswith("http"):
                assert (path.parent / target).exists(), (path.name, target)


def test_build_lists_every_module_and_test_file():
    build = (ROOT / "BUILD").read_text()
    listed = set(re.findall(r'"([\w/]+\.py)"', build))
    tested = {f"tests/{p.stem}.py" for p in (ROOT / "tests").glob("test_*.py")}
    modules = {
        str(p.relative_to(ROOT))
        for folder in ("tf_tsembed", "benchmarks", "examples")
        for p in (ROOT / folder).rglob("*.py")
    }
    assert modules <= listed, sorted(modules - listed)
    test_names = set(re.findall(r'"(test_\w+)"', build))
    assert {pathlib.Path(t).stem for t in tested} <= test_names, sorted(
        {pathlib.Path(t).stem for t in tested} - test_names
    )
    support = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").glob("*.py")
        if not p.name.startswith("test_")
    }
    assert support <= listed, sorted(support - listed)


def test_no_tensorflow_addons_dependency():
    setup_cfg = (ROOT / "setup.cfg").read_text()
    assert "tensorflow-addons" not in setup_cfg and "tensorflow_addons" not in setup_cfg


def _requirement_names(lines):
    """`{name}` of the requirements in a setup.cfg value, one a line, versions and extras cut."""
    names = (re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0] for line in lines.splitlines())
    return {name.lower() for name in names if name}


def test_setup_cfg_declares_what_the_package_and_its_tests_import():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    install = _requirement_names(config["options"]["install_requires"])
    assert {"tensorflow", "absl-py", "numpy"} <= install
    test = _requirement_names(config["options.extras_require"]["test"])
    assert {
        "pytest",
        "hypothesis",
        "pandas",
        "ruff",
        "tf-keras",
    } <= test  # pandas: the pandas date tests


_RUN_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # import torch now raises ImportError, as where it is not installed
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_torch_tests_report_their_skip_and_why_in_the_summary():
    """The default options (pyproject's addopts) list skipped tests and why in the summary."""
    test = "tests/test_token_embedding.py::test_matches_pytorch_conv1d_circular_when_installed"
    result = subprocess.run(
        [sys.executable, "-c", _RUN_WITHOUT_TORCH, "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.split("short test summary info", 1)[-1]
    assert "SKIPPED [1]" in summary, result.stdout[-3000:]
    assert reference.TORCH_SKIP_REASON in summary, result.stdout[-3000:]


def _private_accesses(path):
    """`obj._name` in `path` where obj is not self or cls: reaching into another object."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__") or (
            isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        ):
            continue
        found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return found


def test_package_composes_through_public_calls_only():
    accesses = [a for p in sorted((ROOT / "tf_tsembed").glob("*.py")) for a in _private_accesses(p)]
    assert accesses == []


@pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None,
    reason="ruff is not installed; `pip install .[test]` installs it",
)
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_tree_is_ruff_clean(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
