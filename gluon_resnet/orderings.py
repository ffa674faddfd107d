"""The five orderings of He et al. 2016 ("Identity Mappings in Deep Residual Networks", Fig. 4).

One function per ordering, looked up by name in `ORDERINGS`. Each takes the block `blk`,
the array namespace `F` (ndarray or symbol, so blocks hybridize) and the block input `x`.
A block offers `blk.convs` and `blk.bns` (one BN per convolution, in branch order: two for
the basic block, three for the bottleneck) and `blk.shortcut(a, x)`, which projects `a`
when the block has a 1x1 projection and returns the raw `x` otherwise. So one function
serves both block types, and adding an ordering is one function plus one table entry here.
"""
from __future__ import annotations

from typing import Any, Callable

from .names import pick

OrderingFn = Callable[[Any, Any, Any], Any]


def _weight_bn_relu(blk, F, x, relu_last: bool):
    """w1 -> BN1 -> ReLU -> ... -> wk -> BNk, with a ReLU after BNk only if relu_last."""
    y = x
    last = len(blk.convs) - 1
    for i, (conv, bn) in enumerate(zip(blk.convs, blk.bns)):
        y = bn(conv(y))
        if i < last or relu_last:
            y = F.npx.relu(y)
    return y


def conv_bn_relu(blk, F, x):
    """(a) original (He 2015, d2l, v1): w1 -> BN1 -> ReLU -> w2 -> BN2; out = ReLU(F(x) + s(x))."""
    return F.npx.relu(_weight_bn_relu(blk, F, x, relu_last=False) + blk.shortcut(x, x))


def bn_after_add(blk, F, x):
    """(b) BN after addition: w1 -> BN1 -> ReLU -> w2; out = ReLU(BN2(F(x) + s(x)))."""
    *inner, bn_last = blk.bns
    y = x
    for conv, bn in zip(blk.convs[:-1], inner):
        y = F.npx.relu(bn(conv(y)))
    y = blk.convs[-1](y)
    return F.npx.relu(bn_last(y + blk.shortcut(x, x)))


def relu_before_add(blk, F, x):
    """(c) ReLU before addition: w1 -> BN1 -> ReLU -> w2 -> BN2 -> ReLU; out = F(x) + s(x)."""
    return _weight_bn_relu(blk, F, x, relu_last=True) + blk.shortcut(x, x)


def relu_preact(blk, F, x):
    """(d) ReLU-only pre-activation: ReLU -> w1 -> BN1 -> ReLU -> w2 -> BN2; out = F(x) + s(x)."""
    # A projection shortcut reads the pre-activated input, as in He et al.'s pre-activation
    # code (and GluonCV/BiT V2 blocks); an identity shortcut still carries the raw x.
    x_preact = F.npx.relu(x)
    return _weight_bn_relu(blk, F, x_preact, relu_last=False) + blk.shortcut(x_preact, x)


def bn_relu_conv(blk, F, x):
    """(e) full pre-activation ("v2"): BN1 -> ReLU -> w1 -> BN2 -> ReLU -> w2; out = F(x) + s(x)."""
    # A projection reads the pre-activation ReLU(BN1(x)), as in He et al.'s code and (d);
    # projection_input="relu" reads ReLU(x) without BN, as the seed notebook's block did.
    x_preact = F.npx.relu(blk.bns[0](x))
    y = blk.convs[0](x_preact)
    for bn, conv in zip(blk.bns[1:], blk.convs[1:]):
        y = conv(F.npx.relu(bn(y)))
    projected = x_preact if blk.projection_input == "preact" else F.npx.relu(x)
    return y + blk.shortcut(projected, x)


ORDERINGS: dict[str, OrderingFn] = {
    "conv_bn_relu": conv_bn_relu,
    "bn_after_add": bn_after_add,
    "relu_before_add": relu_before_add,
    "relu_preact": relu_preact,
    "bn_relu_conv": bn_relu_conv,
}

# The ordering every other is compared with unless an experiment says otherwise: (a), the
# original block of He et al. 2015 and d2l.
DEFAULT_BASELINE = "conv_bn_relu"

# Orderings whose blocks end without an activation on the sum: networks built from them end
# with BN -> ReLU before pooling (He et al.'s rule), see nets.resnet(final_bn_relu=None).
PREACT = frozenset({"relu_preact", "bn_relu_conv"})


# What a projection shortcut of a pre-activation block reads: the pre-activated input
# (He et al.; GluonCV V2) or ReLU(x) alone (the seed notebook's bn_relu_conv block).
PROJECTION_INPUTS = ("preact", "relu")


def check_ordering(name: str) -> str:
    """Return `name` if it is a known ordering, else raise ValueError listing the valid ones."""
    pick(ORDERINGS, name, "ordering")  # listed in the paper's order, (a) to (e)
    return name
