"""Residual blocks: the layers only; the forward pass is the ordering's (orderings.py)."""
from __future__ import annotations

from mxnet.gluon import nn

from .names import pick
from .orderings import ORDERINGS, PROJECTION_INPUTS, check_ordering

# How a block that changes size or width reaches the sum: a 1x1 convolution (d2l, He et al.'s
# option B) or, as He et al. did for CIFAR (2015, Sec. 4.2, option A), the input subsampled
# by the stride with zero channels appended: no parameters, so the shortcut passes the signal
# through at the scale it has, as an identity shortcut does.
SHORTCUTS = ("projection", "zero_pad")


class ZeroPadShortcut(nn.HybridBlock):
    """Option A: x[:, :, ::s, ::s] with as many zero channels appended (doubles the width)."""

    def __init__(self, strides: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.subsample = nn.AvgPool2D(pool_size=1, strides=strides)  # a 1x1 pool picks

    def hybrid_forward(self, F, x):
        y = self.subsample(x)
        return F.np.concatenate([y, F.np.zeros_like(y)], axis=1)


def check_shortcut(name: str) -> str:
    return pick(SHORTCUTS, name, "shortcut")


class _OrderedBlock(nn.HybridBlock):
    """Shared by Residual and Bottleneck: named layers, forward delegated to the ordering."""

    _conv_names: tuple[str, ...] = ()  # residual branch, in order
    _bn_names: tuple[str, ...] = ()  # one BN per branch convolution, in order
    _proj_name: str = ""  # the 1x1 projection shortcut (None when the shortcut is identity)
    zero_pad = None  # a ZeroPadShortcut instead of the projection (shortcut="zero_pad")
    # Whether a stage's first block needs a projection even without a stride (the block
    # widens its input, as the bottleneck does from the stem's c to 4c channels).
    projects_first_block = False

    def __init__(self, ordering: str, projection_input: str = "preact", **kwargs) -> None:
        super().__init__(**kwargs)
        self.ordering = check_ordering(ordering)
        self._ordering_fn = ORDERINGS[self.ordering]
        self.projection_input = pick(PROJECTION_INPUTS, projection_input, "projection_input",
                                     plural="projection inputs")

    @property
    def convs(self) -> tuple:
        return tuple(getattr(self, name) for name in self._conv_names)

    @property
    def bns(self) -> tuple:
        return tuple(getattr(self, name) for name in self._bn_names)

    def shortcut(self, a, x):
        """s: the projection of `a` if the block has one, else the raw input `x` (zero-padded
        to the new shape by a zero_pad shortcut, which, like the identity, reads raw x)."""
        if self.zero_pad is not None:
            return self.zero_pad(x)
        proj = getattr(self, self._proj_name)
        return x if proj is None else proj(a)

    def hybrid_forward(self, F, x):
        return self._ordering_fn(self, F, x)


def _conv(channels: int, kernel: int, strides: int, name: str) -> nn.Conv2D:
    # Convolutions keep their bias, as d2l's do, in every ordering (docs/DESIGN.md section 2).
    return nn.Conv2D(channels, kernel_size=kernel, strides=strides, padding=kernel // 2,
                     prefix=f"{name}_")


class Residual(_OrderedBlock):
    """Basic block 3x3 -> 3x3 in ordering (a)-(e) of He et al. 2016 Fig. 4; d2l's layer names."""

    _conv_names = ("conv1", "conv2")
    _bn_names = ("bn1", "bn2")
    _proj_name = "conv3"

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1,
                 ordering: str = "conv_bn_relu", projection_input: str = "preact",
                 shortcut: str = "projection", **kwargs) -> None:
        """use_1x1conv: the block changes shape, so its shortcut is `shortcut`'s kind (with
        zero_pad, num_channels must be twice the input's: He et al.'s CIFAR stages double)."""
        super().__init__(ordering, projection_input, **kwargs)
        pad = use_1x1conv and check_shortcut(shortcut) == "zero_pad"
        with self.name_scope():
            self.conv1 = _conv(num_channels, 3, strides, "conv1")
            self.conv2 = _conv(num_channels, 3, 1, "conv2")
            project = use_1x1conv and not pad
            self.conv3 = _conv(num_channels, 1, strides, "conv3") if project else None
            self.zero_pad = ZeroPadShortcut(strides, prefix="pad_") if pad else None
            # In bn_relu_conv (e), bn1 normalises the block input: Gluon infers its width.
            self.bn1 = nn.BatchNorm(prefix="bn1_")
            self.bn2 = nn.BatchNorm(prefix="bn2_")


class Bottleneck(_OrderedBlock):
    """Bottleneck 1x1 -> 3x3 -> 1x1 (x expansion) in ordering (a)-(e) of He et al. 2016 Fig. 4."""

    _conv_names = ("conv1", "conv2", "conv3")
    _bn_names = ("bn1", "bn2", "bn3")
    _proj_name = "conv4"  # d2l's ResNeXtBlock names its projection conv4 too
    projects_first_block = True

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1,
                 ordering: str = "conv_bn_relu", expansion: int = 4,
                 projection_input: str = "preact", **kwargs) -> None:
        """num_channels is the inner (3x3) width; the block outputs num_channels * expansion."""
        super().__init__(ordering, projection_input, **kwargs)
        out_channels = num_channels * expansion
        with self.name_scope():
            self.conv1 = _conv(num_channels, 1, 1, "conv1")
            # Stride on the 3x3, not the first 1x1 (torchvision's "ResNet v1.5", GluonCV V1b).
            self.conv2 = _conv(num_channels, 3, strides, "conv2")
            self.conv3 = _conv(out_channels, 1, 1, "conv3")
            self.conv4 = _conv(out_channels, 1, strides, "conv4") if use_1x1conv else None
            self.bn1 = nn.BatchNorm(prefix="bn1_")
            self.bn2 = nn.BatchNorm(prefix="bn2_")
            self.bn3 = nn.BatchNorm(prefix="bn3_")
