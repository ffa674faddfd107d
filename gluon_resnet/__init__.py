"""ResNet residual-block orderings (He et al. 2016) in MXNet Gluon, numpy mode.

Importing the package configures threads and the allocator (see runtime.py) before
MXNet loads, and MXNet runs in numpy mode (`npx.set_np()`), as d2l 1.0.3 does.

MXNet itself is loaded lazily: the statistics (gluon_resnet.reporting.decide, stats, ...)
import without it. The names below (`gr.resnet`, `gr.ORDERINGS`, ...) load their module on
first use, and numpy mode is switched on the moment MXNet is imported, by this package or by
anyone else after `import gluon_resnet`, as the eager import did.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from . import runtime  # noqa: F401  (must run before mxnet is imported)


def _numpy_mode() -> None:
    from mxnet import npx

    npx.set_np()


class _NumpyModeOnImport(importlib.abc.MetaPathFinder):
    """Finds `mxnet` through the other finders and switches numpy mode on right after it has
    loaded; removes itself on first use."""

    def find_spec(self, name, path=None, target=None):
        if name != "mxnet":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_numpy_mode(module):
            exec_module(module)
            _numpy_mode()
        spec.loader.exec_module = exec_then_numpy_mode  # this spec's own loader instance
        return spec


if sys.modules.get("mxnet") is not None:  # loaded already (None: blocked)
    _numpy_mode()
elif not any(isinstance(f, _NumpyModeOnImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _NumpyModeOnImport())

_EXPORTS = {
    "Bottleneck": "blocks", "Residual": "blocks",
    "RunConfig": "config",
    "ARCHS": "nets", "layer_summary": "nets", "named_parts": "nets", "resnet": "nets",
    "resnet_block": "nets",
    "ORDERINGS": "orderings", "PREACT": "orderings",
}

__version__ = "0.1.0"
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """The exported names and the submodules (`gr.nets`), imported on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
