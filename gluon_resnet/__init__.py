"""ResNet residual-block orderings (He et al. 2016) in MXNet Gluon, numpy mode.

Importing the package configures threads and the allocator (see runtime.py) before
MXNet loads, and switches MXNet to numpy mode (`npx.set_np()`), as d2l 1.0.3 does.
"""
from . import runtime  # noqa: F401  (must run before mxnet is imported)

from mxnet import npx

npx.set_np()

from .blocks import Bottleneck, Residual  # noqa: E402
from .config import RunConfig  # noqa: E402
from .nets import ARCHS, layer_summary, named_parts, resnet, resnet_block  # noqa: E402
from .orderings import ORDERINGS, PREACT  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ARCHS", "Bottleneck", "ORDERINGS", "PREACT", "Residual", "RunConfig",
           "layer_summary", "named_parts", "resnet", "resnet_block"]
