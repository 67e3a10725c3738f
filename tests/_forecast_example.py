"""`examples/forecast.py` imported as a module, once per process (it defines absl flags)."""

import importlib.util
import os
import sys

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
PATH = os.path.join(EXAMPLES, "forecast.py")
_NAME = "forecast_example"
if EXAMPLES not in sys.path:
    sys.path.insert(0, EXAMPLES)  # the examples' shared modules: `import _data`


def load():
    """The example's module; a second import would redefine its flags and fail."""
    if _NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(_NAME, PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[_NAME]
