"""Networks: one spec table (ARCHS), d2l's stage builder, and the `resnet` factory."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import mxnet as mx
from mxnet.gluon import nn

from .blocks import Bottleneck, Residual, check_shortcut
from .names import pick
from .orderings import PREACT

STEMS = ("imagenet", "cifar")
BLOCKS = {"basic": Residual, "bottleneck": Bottleneck}


@dataclass(frozen=True)
class ArchSpec:
    """One network: stem, stages as (num_residuals, num_channels) like d2l's ResNet(arch), block."""

    stem: str  # "imagenet": 7x7/2 conv, BN, ReLU, 3x3/2 max-pool | "cifar": 3x3/1 conv, BN, ReLU
    stem_channels: int
    stages: tuple[tuple[int, int], ...]  # bottleneck: num_channels is the inner width (out x4)
    block: str = "basic"

    def __post_init__(self) -> None:
        pick(STEMS, self.stem, "stem")
        pick(sorted(BLOCKS), self.block, "block")


def _imagenet(depths: tuple[int, ...], block: str = "basic") -> ArchSpec:
    """He et al. 2015 Table 1 depths on d2l's stem, 64-128-256-512 channels."""
    return ArchSpec("imagenet", 64, tuple(zip(depths, (64, 128, 256, 512))), block)


def _cifar(depth: int, block: str = "basic") -> ArchSpec:
    """He et al.'s CIFAR nets: 3x3 stem, three stages of 16-32-64 channels, depth 6n+2 (9n+2)."""
    layers_per_block = 2 if block == "basic" else 3
    n, rest = divmod(depth - 2, 3 * layers_per_block)
    if rest or n < 1:
        raise ValueError(f"CIFAR depth must be {3 * layers_per_block}n+2, got {depth}")
    return ArchSpec("cifar", 16, ((n, 16), (n, 32), (n, 64)), block)


ARCHS: dict[str, ArchSpec] = {
    "d2l18": _imagenet((2, 2, 2, 2)),  # the mission's network (d2l's ResNet-18)
    "gluonbook": ArchSpec("imagenet", 32, ((2, 32), (2, 64), (2, 128))),  # the seed notebook's
    "resnet34": _imagenet((3, 4, 6, 3)),
    "resnet50": _imagenet((3, 4, 6, 3), "bottleneck"),
    "resnet101": _imagenet((3, 4, 23, 3), "bottleneck"),
    "resnet152": _imagenet((3, 8, 36, 3), "bottleneck"),
    "cifar20": _cifar(20),
    "cifar56": _cifar(56),
    "cifar110": _cifar(110),  # He et al. 2016 Table 2, left column
    "cifar164": _cifar(164, "bottleneck"),  # He et al. 2016 Table 2, right column
}


def check_arch(name: str) -> ArchSpec:
    """The spec of arch `name`, or ValueError listing the valid names."""
    return pick(ARCHS, name, "arch")


def resnet_block(num_channels: int, num_residuals: int, first_block: bool = False,
                 ordering: str = "conv_bn_relu", block: type = Residual,
                 projection_input: str = "preact", shortcut: str = "projection",
                 **kwargs) -> nn.HybridSequential:
    """d2l's stage: the first block of every stage but the first halves the size (stride 2)."""
    # Only the basic block takes a zero_pad shortcut (resnet() checks), so only it is told.
    extra = {} if shortcut == "projection" else {"shortcut": shortcut}
    stage = nn.HybridSequential(**kwargs)
    with stage.name_scope():
        for i in range(num_residuals):
            downsample = i == 0 and not first_block
            project = downsample or (i == 0 and block.projects_first_block)
            stage.add(block(num_channels, use_1x1conv=project, strides=2 if downsample else 1,
                            ordering=ordering, projection_input=projection_input, **extra))
    return stage


def _scale(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _stem(spec: ArchSpec, channels: int, in_channels: int) -> nn.HybridSequential:
    """Identical for every ordering, so that comparisons isolate the block."""
    stem = nn.HybridSequential(prefix="stem_")
    with stem.name_scope():
        if spec.stem == "imagenet":  # d2l's b1
            stem.add(nn.Conv2D(channels, kernel_size=7, strides=2, padding=3,
                               in_channels=in_channels),
                     nn.BatchNorm(), nn.Activation("relu"),
                     nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        else:  # He et al.'s CIFAR stem: full resolution, no pooling
            stem.add(nn.Conv2D(channels, kernel_size=3, strides=1, padding=1,
                               in_channels=in_channels),
                     nn.BatchNorm(), nn.Activation("relu"))
    return stem


def _head(num_classes: int, final_bn_relu: bool) -> nn.HybridSequential:
    """[BN -> ReLU] -> global average pooling -> Dense."""
    head = nn.HybridSequential(prefix="head_")
    with head.name_scope():
        if final_bn_relu:
            # Pre-activation blocks leave the last sum un-normalised (He et al. 2016, Sec. 4.1).
            head.add(nn.BatchNorm(), nn.Activation("relu"))
        head.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return head


def resnet(arch: str = "d2l18", ordering: str = "conv_bn_relu", num_classes: int = 10,
           in_channels: int = 1, width: float = 1.0,
           final_bn_relu: Optional[bool] = None,
           projection_input: str = "preact",
           shortcut: str = "projection") -> nn.HybridSequential:
    """ARCHS[arch] with `ordering` blocks and channels x width; children stem, stage1..N, head."""
    # final_bn_relu None follows He et al.: on for the pre-activation orderings (PREACT),
    # off otherwise; True/False force it (False reproduces the seed notebook's net).
    spec = check_arch(arch)  # the ordering is checked where it is looked up: in the block
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    if final_bn_relu is None:
        final_bn_relu = ordering in PREACT
    widths = _widths(spec, width)
    if check_shortcut(shortcut) == "zero_pad":
        check_zero_pad(arch, width)
    net = nn.HybridSequential(prefix=f"{arch}_")
    with net.name_scope():
        net.add(_stem(spec, widths[0], in_channels))
        for i, (num_residuals, _) in enumerate(spec.stages, start=1):
            net.add(resnet_block(widths[i], num_residuals, first_block=i == 1,
                                 ordering=ordering, block=BLOCKS[spec.block],
                                 projection_input=projection_input, shortcut=shortcut,
                                 prefix=f"stage{i}_"))
        net.add(_head(num_classes, final_bn_relu))
    return net


def _widths(spec: ArchSpec, width: float) -> list[int]:
    """Channels of the stem and of each stage at this width."""
    return [_scale(spec.stem_channels, width)] + [_scale(c, width) for _, c in spec.stages]


def check_zero_pad(arch: str, width: float = 1.0) -> None:
    """A zero_pad shortcut appends as many zero channels as it has: every stage must double
    the width (stage 1 keeps the stem's), in basic blocks (a bottleneck's first block widens)."""
    spec = check_arch(arch)
    widths = _widths(spec, width)
    doubles = widths[1] == widths[0] and all(b == 2 * a for a, b in zip(widths[1:], widths[2:]))
    if spec.block != "basic" or not doubles:
        raise ValueError(f"shortcut='zero_pad' needs basic blocks whose stages double the width "
                         f"(He et al.'s CIFAR nets); {arch} at this width has widths {widths} "
                         f"and {spec.block} blocks: use shortcut='projection'")


def named_parts(net: nn.HybridSequential) -> list[tuple[str, nn.Block]]:
    """[("stem", ...), ("stage1", ...), ..., ("head", ...)]: callable one after another."""
    parts = [net[i] for i in range(len(net))]
    names = ["stem"] + [f"stage{i}" for i in range(1, len(parts) - 1)] + ["head"]
    return list(zip(names, parts))


def count_params(block: nn.Block, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; shapes must be known (after a forward or infer_shape)."""
    total = 0
    for p in block.collect_params().values():
        if trainable_only and p.grad_req == "null":
            continue
        if p.shape is None or any(d <= 0 for d in p.shape):
            raise ValueError(f"shape of {p.name} not known yet: run a forward pass first")
        total += math.prod(p.shape)
    return total


def layer_summary(net: nn.HybridSequential, size: int = 96, in_channels: int = 1) -> str:
    """Output shape and parameters of each part for one size x size image, and the total."""
    # The seed notebook's shape walk-through, part by part; works on hybridized nets too.
    # For a leaf-by-leaf table, Gluon's own `net.summary(x)` (initialized, not hybridized).
    ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    x = mx.np.zeros((1, in_channels, size, size), ctx=ctx)
    rows = [("input", tuple(x.shape), "")]
    for name, part in named_parts(net):
        x = part(x)
        rows.append((name, tuple(x.shape), f"{count_params(part):,}"))
    lines = [f"{'part':<8} {'output shape':>20} {'params':>12}"]
    lines += [f"{name:<8} {str(shape):>20} {n:>12}" for name, shape, n in rows]
    total = count_params(net)
    lines.append(f"total trainable parameters: {total:,} "
                 f"(all, with BN running statistics: {count_params(net, False):,})")
    return "\n".join(lines)
