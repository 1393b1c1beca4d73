"""PyYAML, loaded on first attribute access (importlib's LazyLoader): importing it, and the expressions
it compiles, costs ~20 ms, a tenth of a repeated import, which never reads YAML. Modules that read or
write YAML take it from here: `from ._yaml import yaml`."""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import yaml as yaml
else:
    def _lazy(name: str):
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"no module named {name!r}")
        loader = importlib.util.LazyLoader(spec.loader)
        spec.loader = loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
        return module

    yaml = _lazy("yaml")
