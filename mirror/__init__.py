"""airgap-mirror: carry container images, Helm charts and Palette packs across an air gap."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__version__ = "0.1.0"


def lazy_import(name: str) -> ModuleType:
    """Module `name`, executed on first attribute access (importlib's LazyLoader).

    For PyYAML: importing it (and the expressions it compiles) costs ~20 ms, a tenth of a repeated
    import, which never reads YAML.
    """
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
