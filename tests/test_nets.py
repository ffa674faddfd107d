"""Every spec-table network and ordering: shapes, parameter counts, gradients, hybridization."""
from __future__ import annotations

import re

import numpy as np
import pytest

import gluon_resnet  # noqa: F401  (numpy mode, threads)
import mxnet as mx
from mxnet import autograd, gluon
from mxnet.gluon import nn
from d2l import mxnet as d2l

from gluon_resnet.blocks import Bottleneck
from gluon_resnet.nets import ARCHS, layer_summary, named_parts, resnet, resnet_block
from gluon_resnet.orderings import ORDERINGS, PREACT

CASES = [(arch, ordering) for arch in ARCHS for ordering in ORDERINGS]


def input_size(arch: str) -> int:
    return 28 if ARCHS[arch].stem == "cifar" else 96


def small_width(arch: str) -> float:
    return 0.25 if ARCHS[arch].stem == "cifar" else 0.125


# ----- expected parameter counts, by formula from the architecture definition -----

def expected_params(arch, ordering, width=1.0, in_channels=1, num_classes=10, final=None):
    """(trainable, all) parameters: conv k*k*cin*cout + cout (bias kept), BN 2c (+2c running)."""
    spec = ARCHS[arch]
    scale = lambda c: max(1, round(c * width))  # noqa: E731
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    c = scale(spec.stem_channels)
    weights = conv(7 if spec.stem == "imagenet" else 3, in_channels, c)
    bn_channels = [c]
    for i, (num_residuals, channels) in enumerate(spec.stages):
        inner = scale(channels)
        for j in range(num_residuals):
            cout = inner * (4 if spec.block == "bottleneck" else 1)
            stride = 2 if i > 0 and j == 0 else 1
            # the shortcut needs a 1x1 projection exactly when the block changes the shape
            needs_proj = c != cout or stride != 1
            if spec.block == "basic":
                weights += conv(3, c, inner) + conv(3, inner, inner)
                # full pre-activation normalises the input of each convolution
                bn_channels += [c, inner] if ordering == "bn_relu_conv" else [inner, inner]
            else:
                weights += conv(1, c, inner) + conv(3, inner, inner) + conv(1, inner, cout)
                bn_channels += ([c, inner, inner] if ordering == "bn_relu_conv"
                                else [inner, inner, cout])
            if needs_proj:
                weights += conv(1, c, cout)
            c = cout
    if (ordering in PREACT) if final is None else final:  # BN -> ReLU before pooling
        bn_channels.append(c)
    weights += c * num_classes + num_classes
    return weights + 2 * sum(bn_channels), weights + 4 * sum(bn_channels)


def expected_shapes(arch, width, size, batch):
    """Output shape of stem, each stage and head: 3x3/2 and 1x1/2 ops give ceil(n / 2)."""
    spec = ARCHS[arch]
    half = lambda n: (n + 1) // 2  # noqa: E731
    scale = lambda c: max(1, round(c * width))  # noqa: E731
    n = half(half(size)) if spec.stem == "imagenet" else size
    shapes = [(batch, scale(spec.stem_channels), n, n)]
    for i, (_, channels) in enumerate(spec.stages):
        n = n if i == 0 else half(n)
        shapes.append((batch, scale(channels) * (4 if spec.block == "bottleneck" else 1), n, n))
    return shapes + [(batch, 10)]


def count(net, trainable_only):
    return sum(int(np.prod(p.shape)) for p in net.collect_params().values()
               if not (trainable_only and p.grad_req == "null"))


def test_golden_counts():
    """The formula agrees with counts derived outside this project."""
    # torchvision's resnet18 has 11,689,512 parameters and resnet50 25,557,032 (3 input
    # channels, 1000 classes, no conv bias, BN in the projection). d2l18: -6,272 (1 input
    # channel) -507,870 (10 classes) +4,800 conv biases -1,792 projection BNs = 11,178,378.
    # resnet50: -6,272 -2,028,510 +26,560 -7,680 = 23,541,130. The seed notebook's net by
    # hand: 1,664 stem + 37,248 + 131,904 + 525,952 stages + 1,290 head = 698,058.
    assert expected_params("d2l18", "conv_bn_relu")[0] == 11_178_378
    assert expected_params("resnet50", "conv_bn_relu")[0] == 23_541_130
    assert expected_params("gluonbook", "conv_bn_relu")[0] == 698_058


@pytest.mark.parametrize("arch,ordering", CASES)
def test_param_count_at_full_width(arch, ordering):
    net = resnet(arch, ordering)
    size = input_size(arch)
    net.infer_shape(mx.np.zeros((1, 1, size, size)))  # shapes without allocating weights
    expected = expected_params(arch, ordering)
    assert (count(net, True), count(net, False)) == expected


def test_names_in_arch_table_match_depth():
    """resnetN / cifarN / d2l18 count N weighted layers (stem conv + block convs + Dense)."""
    for name, spec in ARCHS.items():
        depth = re.search(r"(\d+)$", name)
        if depth:
            per_block = 2 if spec.block == "basic" else 3
            assert 2 + per_block * sum(n for n, _ in spec.stages) == int(depth.group(1)), name


# ----- forward, backward, hybridization -----

# Every ordering on the mission's network, every arch at least once: deep nets cost seconds
# each on a busy 2-core CPU, so their orderings rotate (the block tests cover every ordering
# of both block types, and test_param_count_at_full_width every arch x ordering).
FULL_ARCHS = ("d2l18",)
NAMES = list(ORDERINGS)
RUN_CASES = [(a, o) for a in FULL_ARCHS for o in NAMES] + [
    (a, NAMES[i % len(NAMES)]) for i, a in enumerate(ARCHS) if a not in FULL_ARCHS]


@pytest.mark.parametrize("arch,ordering", RUN_CASES)
def test_forward_backward_hybridize(arch, ordering):
    width, size = small_width(arch), input_size(arch)
    net = resnet(arch, ordering, width=width)
    net.initialize(mx.init.Xavier())
    x = mx.np.random.uniform(size=(2, 1, size, size))
    with autograd.record(train_mode=True):
        y = net(x)
        loss = (y * mx.np.random.normal(size=(2, 10))).sum()
    loss.backward()
    assert y.shape == (2, 10) and np.isfinite(y.asnumpy()).all()
    params = [p for p in net.collect_params().values() if p.grad_req != "null"]
    grads = {p.name: p.grad().asnumpy() for p in params}
    assert all(np.isfinite(g).all() for g in grads.values())
    # Biases are left out: a batch-statistics BN after a conv cancels its bias gradient
    # exactly, and a bias shares its op with its weight, so the weights find dead branches.
    dead = [n for n, g in grads.items() if not n.endswith("_bias") and not np.abs(g).max() > 0]
    assert not dead, f"no gradient reaches {dead}"
    assert (count(net, True), count(net, False)) == expected_params(arch, ordering, width)
    y, shapes = x, []
    for _, part in named_parts(net):  # the engine's per-part walk
        y = part(y)
        shapes.append(y.shape)
    assert shapes == expected_shapes(arch, width, size, batch=2)
    net.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(net(x).asnumpy(), y.asnumpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ["d2l18", "resnet50"])
def test_hybridized_parts_run_one_after_another(arch):
    net = resnet(arch, "bn_relu_conv", width=small_width(arch))
    net.initialize()
    net.hybridize(static_alloc=True, static_shape=True)
    size = input_size(arch)
    x = mx.np.random.uniform(size=(1, 1, size, size))
    parts = named_parts(net)
    names = [name for name, _ in parts]
    stages = [f"stage{i}" for i in range(1, len(ARCHS[arch].stages) + 1)]
    assert names == ["stem", *stages, "head"]
    y = x
    for _, part in parts:
        y = part(y)
    np.testing.assert_allclose(y.asnumpy(), net(x).asnumpy(), rtol=1e-5, atol=1e-6)


def test_stage_shapes_d2l18():
    net = resnet("d2l18", width=0.125)
    net.initialize()
    y, shapes = mx.np.zeros((1, 1, 96, 96)), []
    for _, part in named_parts(net):
        y = part(y)
        shapes.append(y.shape)
    assert shapes == [(1, 8, 24, 24), (1, 8, 24, 24), (1, 16, 12, 12), (1, 32, 6, 6),
                      (1, 64, 3, 3), (1, 10)]


def test_final_bn_relu_rule_and_override():
    for ordering in ORDERINGS:
        head = named_parts(resnet("gluonbook", ordering))[-1][1]
        layers = [type(b).__name__ for b in head]
        final = ["BatchNorm", "Activation"] if ordering in PREACT else []
        assert layers == final + ["GlobalAvgPool2D", "Dense"], ordering
        assert all(b._act_type == "relu" for b in head if isinstance(b, nn.Activation))
    for flag in (True, False):
        head = named_parts(resnet("gluonbook", "bn_relu_conv", final_bn_relu=flag))[-1][1]
        assert isinstance(head[0], nn.BatchNorm) == flag
        assert isinstance(head[-2], nn.GlobalAvgPool2D) and isinstance(head[-1], nn.Dense)
    net = resnet("gluonbook", "conv_bn_relu", final_bn_relu=True)
    net.infer_shape(mx.np.zeros((1, 1, 96, 96)))
    assert count(net, True) == 698_058 + 2 * 128


def test_stem_and_head_identical_across_orderings():
    def layout(ordering, index):
        part = named_parts(resnet("d2l18", ordering, final_bn_relu=False))[index][1]
        return [(type(b).__name__, b._kwargs if hasattr(b, "_kwargs") else None) for b in part]
    for ordering in ORDERINGS:
        assert layout(ordering, 0) == layout("conv_bn_relu", 0)
        assert layout(ordering, -1) == layout("conv_bn_relu", -1)


def test_readable_parameter_names():
    names = list(resnet("d2l18").collect_params())
    assert "d2l18_stage2_residual0_conv3_weight" in names
    assert "d2l18_stage1_residual1_bn2_gamma" in names
    assert all(re.match(r"d2l18_(stem|stage[1-4]|head)_", n) for n in names)
    assert "resnet50_stage1_bottleneck0_conv4_weight" in resnet("resnet50").collect_params()


def test_bottleneck_stage_one_projects_without_stride():
    stage = resnet_block(4, 2, first_block=True, block=Bottleneck)
    stage.initialize()
    y = stage(mx.np.zeros((1, 4, 6, 6)))
    assert y.shape == (1, 16, 6, 6)
    assert stage[0].conv4 is not None and stage[1].conv4 is None


def test_resnet_block_is_d2ls_rule():
    stage = resnet_block(8, 3, ordering="relu_preact")
    assert [(b.conv3 is not None, b.conv1._kwargs["stride"]) for b in stage] == \
        [(True, (2, 2)), (False, (1, 1)), (False, (1, 1))]
    assert all(b.ordering == "relu_preact" for b in stage)
    first = resnet_block(8, 2, first_block=True)
    assert all(b.conv3 is None and b.conv1._kwargs["stride"] == (1, 1) for b in first)


def test_width_multiplier_rounds_and_keeps_one_channel():
    net = resnet("cifar20", width=0.01)
    net.initialize()
    net(mx.np.zeros((1, 1, 28, 28)))
    assert net[0][0].weight.shape[0] == 1
    assert count(net, True) == expected_params("cifar20", "conv_bn_relu", 0.01)[0]


def test_unknown_names_raise_listing_valid_ones():
    with pytest.raises(ValueError, match="cifar110"):
        resnet("resnet18")
    with pytest.raises(ValueError, match="bn_relu_conv"):
        resnet("d2l18", "preact")
    with pytest.raises(ValueError):
        resnet("d2l18", width=0)


def test_layer_summary_lists_parts_and_total():
    net = resnet("gluonbook")
    net.initialize()
    text = layer_summary(net)
    for name in ("stem", "stage1", "stage2", "stage3", "head"):
        assert name in text
    assert "(1, 128, 6, 6)" in text and "698,058" in text


# ----- parity with the d2l book's ResNet-18, assembled from d2l.Residual -----

def d2l_resnet18(num_classes=10):
    """d2l's ResNet (ResNet chapter, MXNet): b1 + four stages of d2l.Residual + pool + Dense."""
    net = nn.Sequential()
    b1 = nn.Sequential()
    b1.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3), nn.BatchNorm(),
           nn.Activation("relu"), nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    net.add(b1)
    for i, (num_residuals, num_channels) in enumerate(((2, 64), (2, 128), (2, 256), (2, 512))):
        blk = nn.Sequential()
        for j in range(num_residuals):
            if j == 0 and i != 0:
                blk.add(d2l.Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.add(d2l.Residual(num_channels))
        net.add(blk)
    net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return net


def test_d2l18_matches_d2l_resnet18():
    x = mx.np.random.uniform(size=(2, 1, 96, 96))
    theirs, ours = d2l_resnet18(), resnet("d2l18")
    for net in (theirs, ours):
        net.initialize(mx.init.Xavier())
        net(x)
    src, dst = list(theirs.collect_params().values()), list(ours.collect_params().values())
    assert len(src) == len(dst)
    for s, d in zip(src, dst):  # same structure, same creation order
        assert s.name.rsplit("_", 1)[-1] == d.name.rsplit("_", 1)[-1] and s.shape == d.shape
        d.set_data(s.data())
    expected = theirs(x).asnumpy()
    np.testing.assert_allclose(ours(x).asnumpy(), expected, rtol=1e-4, atol=1e-5)
    with autograd.record(train_mode=True):
        expected_train = theirs(x).asnumpy()
        np.testing.assert_allclose(ours(x).asnumpy(), expected_train, rtol=1e-4, atol=1e-5)
    # A real training step on both: weights and BN running statistics must move the same way.
    stat = next(k for k in ours.collect_params() if k.endswith("running_mean") and "stage4" in k)
    copied = ours.collect_params()[stat].data().asnumpy().copy()
    for net in (theirs, ours):
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
        with autograd.record():
            loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), mx.np.array([1, 7]))
        loss.backward()
        trainer.step(2)
    moved = ours.collect_params()[stat].data().asnumpy()
    assert np.abs(moved - copied).max() > 1e-4
    for s, d in zip(theirs.collect_params().values(), ours.collect_params().values()):
        np.testing.assert_allclose(d.data().asnumpy(), s.data().asnumpy(), rtol=1e-3, atol=1e-5)
    ours.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(ours(x).asnumpy(), theirs(x).asnumpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ordering", ["conv_bn_relu", "bn_relu_conv"])
def test_zero_pad_nets_drop_exactly_the_projections(ordering):
    """shortcut="zero_pad" (He et al.'s CIFAR option A) is the same net without the two 1x1
    projections (stages 2 and 3), forward and backward, hybridized."""
    nets = {}
    for shortcut in ("projection", "zero_pad"):
        net = resnet("cifar20", ordering, width=0.25, shortcut=shortcut)
        net.initialize(mx.init.Xavier())
        net.hybridize()
        x = mx.np.random.uniform(size=(2, 1, 28, 28))
        with autograd.record():
            loss = net(x).sum()
        loss.backward()
        assert net(x).shape == (2, 10)
        nets[shortcut] = count(net, True)
    projections = (4 * 8 + 8) + (8 * 16 + 16)  # 1x1 convs with bias: 4 -> 8 and 8 -> 16
    assert nets["projection"] - nets["zero_pad"] == projections


def test_zero_pad_refuses_nets_whose_stages_do_not_double():
    from gluon_resnet.config import RunConfig

    with pytest.raises(ValueError, match="shortcut='zero_pad' needs basic blocks"):
        resnet("resnet50", shortcut="zero_pad")
    with pytest.raises(ValueError, match=r"widths \[5, 5, 10, 19\]"):
        RunConfig(arch="cifar20", width=0.3, shortcut="zero_pad")
    with pytest.raises(ValueError, match="valid shortcuts: projection, zero_pad"):
        RunConfig(shortcut="A")
    assert RunConfig(arch="gluonbook", shortcut="zero_pad").shortcut == "zero_pad"
