"""Residual and Bottleneck in every ordering against references that share no code with them."""
from __future__ import annotations

import zlib

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import gluon_resnet  # noqa: F401  (numpy mode, threads)
import mxnet as mx
from mxnet import autograd, gluon
from d2l import mxnet as d2l

from gluon_resnet.blocks import Bottleneck, Residual, ZeroPadShortcut
from gluon_resnet.orderings import ORDERINGS, PREACT, check_ordering

EPS = 1e-5  # gluon BatchNorm's default epsilon


# ----- independent numpy reference (float64) -----

def np_conv(x, wb, stride):
    w, b = wb
    k = w.shape[-1]
    pad = k // 2
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", win, w) + b[None, :, None, None]


def np_bn(x, params, train):
    gamma, beta, mean, var = params
    if train:  # batch statistics, biased variance
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    c = lambda v: v[None, :, None, None]  # noqa: E731
    return (x - c(mean)) / np.sqrt(c(var) + EPS) * c(gamma) + c(beta)


def relu(v):
    return np.maximum(v, 0)


def ref_basic(ordering, x, p, stride, train):
    """He et al. 2016 Fig. 4 for 3x3 -> 3x3, written out per ordering."""
    w1 = lambda v: np_conv(v, p["conv1"], stride)  # noqa: E731
    w2 = lambda v: np_conv(v, p["conv2"], 1)  # noqa: E731
    bn1 = lambda v: np_bn(v, p["bn1"], train)  # noqa: E731
    bn2 = lambda v: np_bn(v, p["bn2"], train)  # noqa: E731
    s = lambda a: np_conv(a, p["conv3"], stride) if "conv3" in p else x  # noqa: E731
    refs = {
        "conv_bn_relu": lambda: relu(bn2(w2(relu(bn1(w1(x))))) + s(x)),
        "bn_after_add": lambda: relu(bn2(w2(relu(bn1(w1(x)))) + s(x))),
        "relu_before_add": lambda: relu(bn2(w2(relu(bn1(w1(x)))))) + s(x),
        "relu_preact": lambda: bn2(w2(relu(bn1(w1(relu(x)))))) + s(relu(x)),
        "bn_relu_conv": lambda: w2(relu(bn2(w1(relu(bn1(x)))))) + s(relu(bn1(x))),
    }
    assert ordering in refs, f"no reference for ordering {ordering!r}: add one here"
    return refs[ordering]()


def ref_bottleneck(ordering, x, p, stride, train):
    """The same five orderings for 1x1 -> 3x3 (stride) -> 1x1."""
    w1 = lambda v: np_conv(v, p["conv1"], 1)  # noqa: E731
    w2 = lambda v: np_conv(v, p["conv2"], stride)  # noqa: E731
    w3 = lambda v: np_conv(v, p["conv3"], 1)  # noqa: E731
    bn1, bn2, bn3 = (lambda v, k=k: np_bn(v, p[k], train) for k in ("bn1", "bn2", "bn3"))
    s = lambda a: np_conv(a, p["conv4"], stride) if "conv4" in p else x  # noqa: E731
    post = lambda v: bn3(w3(relu(bn2(w2(relu(bn1(w1(v))))))))  # noqa: E731
    refs = {
        "conv_bn_relu": lambda: relu(post(x) + s(x)),
        "bn_after_add": lambda: relu(bn3(w3(relu(bn2(w2(relu(bn1(w1(x))))))) + s(x))),
        "relu_before_add": lambda: relu(post(x)) + s(x),
        "relu_preact": lambda: post(relu(x)) + s(relu(x)),
        "bn_relu_conv": lambda: (w3(relu(bn3(w2(relu(bn2(w1(relu(bn1(x)))))))))
                                 + s(relu(bn1(x)))),
    }
    assert ordering in refs, f"no reference for ordering {ordering!r}: add one here"
    return refs[ordering]()


# ----- helpers -----

def randomize(blk, rng):
    """Random conv weights/biases and BN gamma/beta/running stats; returns them as numpy."""
    out = {}
    for name, layer in blk._children.items():
        if layer is None:
            continue
        values = []
        for p in layer.params.values():
            shape = p.shape
            if p.name.endswith("running_var"):
                v = rng.uniform(0.5, 2.0, shape)
            elif p.name.endswith("gamma"):
                v = rng.uniform(0.5, 1.5, shape)
            else:
                v = rng.normal(0, 0.3, shape)
            p.set_data(mx.np.array(v, dtype="float32"))
            values.append(v.astype("float32").astype("float64"))
        out[name] = tuple(values)
    return out


def run(blk, x, train):
    with autograd.record(train_mode=train):
        return blk(mx.np.array(x, dtype="float32")).asnumpy()


BLOCK_CASES = {  # (block class, reference, inner channels, channels of an identity input)
    "basic": (Residual, ref_basic, 4, 4),
    "bottleneck": (Bottleneck, ref_bottleneck, 2, 8),
}
SHORTCUTS = {  # (use_1x1conv, stride, input channels: None = identity-compatible)
    "identity": (False, 1, None),
    "proj_s1": (True, 1, 3),
    "proj_s2": (True, 2, 3),
}


def make_block(kind, shortcut, ordering, rng):
    cls, ref, channels, same = BLOCK_CASES[kind]
    use_1x1conv, stride, cin = SHORTCUTS[shortcut]
    blk = cls(channels, use_1x1conv=use_1x1conv, strides=stride, ordering=ordering)
    blk.initialize()
    x = rng.normal(0, 1, (2, cin or same, 6, 6)).astype("float32")
    blk(mx.np.array(x))  # finish deferred initialisation
    return blk, ref, x, stride


# ----- tests -----

@pytest.mark.parametrize("shortcut", sorted(SHORTCUTS))
@pytest.mark.parametrize("kind", sorted(BLOCK_CASES))
@pytest.mark.parametrize("ordering", list(ORDERINGS))
def test_block_matches_reference(ordering, kind, shortcut):
    rng = np.random.default_rng(zlib.crc32(f"{ordering}-{kind}-{shortcut}".encode()))
    blk, ref, x, stride = make_block(kind, shortcut, ordering, rng)
    p = randomize(blk, rng)
    for train in (False, True):
        expected = ref(ordering, x.astype("float64"), p, stride, train)
        imperative = run(blk, x, train)
        assert imperative.shape == expected.shape
        np.testing.assert_allclose(imperative, expected, rtol=1e-4, atol=1e-4,
                                   err_msg=f"train={train}")
    blk.hybridize(static_alloc=True, static_shape=True)
    for train in (False, True):
        expected = ref(ordering, x.astype("float64"), p, stride, train)
        np.testing.assert_allclose(run(blk, x, train), expected,
                                   rtol=1e-4, atol=1e-4, err_msg=f"hybridized, train={train}")


# The paper's point about (c), (d), (e): with the residual branch silenced the block is an
# identity map; (a) and (b) still apply ReLU (and BN) to the sum.
PASSES_IDENTITY = {"conv_bn_relu": False, "bn_after_add": False, "relu_before_add": True,
                   "relu_preact": True, "bn_relu_conv": True}


@pytest.mark.parametrize("kind", sorted(BLOCK_CASES))
@pytest.mark.parametrize("ordering", list(ORDERINGS))
def test_identity_property(ordering, kind):
    assert ordering in PASSES_IDENTITY, f"say whether {ordering!r} passes x through"
    rng = np.random.default_rng(1)
    blk, _, x, _ = make_block(kind, "identity", ordering, rng)
    for name in blk._conv_names:
        for p in getattr(blk, name).params.values():
            p.set_data(mx.np.zeros(p.shape))
    for train in (False, True):
        y = run(blk, x, train)
        if PASSES_IDENTITY[ordering]:
            np.testing.assert_array_equal(y, x)
        else:
            assert np.abs(y - x).max() > 0.1, f"train={train}"


def copy_layer(src, dst):
    src_params, dst_params = list(src.params.values()), list(dst.params.values())
    assert len(src_params) == len(dst_params)
    for s, d in zip(src_params, dst_params):
        assert s.name.rsplit("_", 1)[-1] == d.name.rsplit("_", 1)[-1] and s.shape == d.shape
        d.set_data(s.data())


@pytest.mark.parametrize("use_1x1conv,strides", [(False, 1), (True, 1), (True, 2)])
def test_default_ordering_is_d2l_residual(use_1x1conv, strides):
    x = mx.np.random.normal(0, 1, (3, 4 if not use_1x1conv else 3, 8, 8))
    theirs = d2l.Residual(4, use_1x1conv=use_1x1conv, strides=strides)
    ours = Residual(4, use_1x1conv=use_1x1conv, strides=strides)
    for blk in (theirs, ours):
        blk.initialize(mx.init.Xavier())
        blk(x)
    for name in ("conv1", "conv2", "conv3", "bn1", "bn2"):
        if getattr(theirs, name) is not None:
            copy_layer(getattr(theirs, name), getattr(ours, name))
    copied = ours.bn2.running_mean.data().asnumpy().copy()
    for train in (True, False):
        np.testing.assert_allclose(run(ours, x.asnumpy(), train), run(theirs, x.asnumpy(), train),
                                   rtol=1e-5, atol=1e-5)
    # A real training step (forward in training mode, backward, SGD) on both: the weights and
    # the BN running statistics must move, and move the same way.
    for blk in (theirs, ours):
        trainer = gluon.Trainer(blk.collect_params(), "sgd", {"learning_rate": 0.5})
        with autograd.record():
            loss = (blk(x) ** 2).mean()
        loss.backward()
        trainer.step(1)
    moved = ours.bn2.running_mean.data().asnumpy()
    assert np.abs(moved - copied).max() > 1e-3  # the statistics did move from the copy
    np.testing.assert_allclose(moved, theirs.bn2.running_mean.data().asnumpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(ours.conv1.weight.data().asnumpy(),
                               theirs.conv1.weight.data().asnumpy(), rtol=1e-5, atol=1e-6)


def test_block_layer_names_are_d2ls():
    blk = Residual(8, use_1x1conv=True, strides=2)
    assert list(blk._children) == ["conv1", "conv2", "conv3", "bn1", "bn2"]
    assert all(n.split("_", 1)[1].startswith(("conv1_", "conv2_", "conv3_", "bn1_", "bn2_"))
               for n in blk.collect_params())
    assert Residual(8).conv3 is None
    assert Bottleneck(8).conv4 is None


def test_bottleneck_shapes_and_expansion():
    blk = Bottleneck(3, use_1x1conv=True, strides=2, expansion=2)
    blk.initialize()
    y = blk(mx.np.zeros((1, 5, 9, 9)))
    assert y.shape == (1, 6, 5, 5)
    assert blk.conv1.weight.shape == (3, 5, 1, 1)
    assert blk.conv2.weight.shape == (3, 3, 3, 3)  # the stride sits on the 3x3
    assert blk.conv2._kwargs["stride"] == (2, 2) and blk.conv1._kwargs["stride"] == (1, 1)


def test_bn_relu_conv_normalises_the_block_input():
    blk = Residual(6, use_1x1conv=True, strides=2, ordering="bn_relu_conv")
    blk.initialize()
    blk(mx.np.zeros((1, 3, 8, 8)))
    assert blk.bn1.gamma.shape == (3,) and blk.bn2.gamma.shape == (6,)


def test_unknown_ordering_lists_valid_names():
    with pytest.raises(ValueError) as err:
        Residual(4, ordering="conv_relu_bn")
    assert ", ".join(ORDERINGS) in str(err.value)  # the paper's order, (a) to (e)
    with pytest.raises(ValueError):
        check_ordering("v2")
    assert check_ordering("bn_relu_conv") == "bn_relu_conv"


def test_tables():
    assert {"conv_bn_relu", "bn_after_add", "relu_before_add", "relu_preact",
            "bn_relu_conv"} <= set(ORDERINGS)
    assert PREACT == {"relu_preact", "bn_relu_conv"} and PREACT <= set(ORDERINGS)


def test_projection_input_relu_reads_relu_x_without_bn():
    """The seed notebook's bn_relu_conv block: its projection reads ReLU(x), not ReLU(BN1(x));
    identity shortcuts and the residual branch are the same either way."""
    x = mx.np.random.normal(0, 1, (2, 3, 8, 8))
    he = Residual(4, use_1x1conv=True, strides=2, ordering="bn_relu_conv")
    notebook = Residual(4, use_1x1conv=True, strides=2, ordering="bn_relu_conv",
                        projection_input="relu")
    for blk in (he, notebook):
        blk.initialize(mx.init.Xavier())
        blk(x)
    he.bn1.gamma.set_data(mx.np.full((3,), 1.5))  # a fresh BN is nearly the identity:
    he.bn1.beta.set_data(mx.np.full((3,), -0.4))  # make relu(bn1(x)) differ from relu(x)
    for name in ("conv1", "conv2", "conv3", "bn1", "bn2"):
        copy_layer(getattr(he, name), getattr(notebook, name))
    with autograd.predict_mode():
        a, b = he(x).asnumpy(), notebook(x).asnumpy()
        proj = he.conv3
        expected = b - a  # only the shortcut differs: conv3(relu(x)) - conv3(relu(bn1(x)))
        shift = (proj(mx.npx.relu(x)) - proj(mx.npx.relu(he.bn1(x)))).asnumpy()
    np.testing.assert_allclose(expected, shift, rtol=1e-4, atol=1e-5)
    assert np.abs(shift).max() > 1e-3
    ident = [Residual(3, ordering="bn_relu_conv", projection_input=p) for p in ("preact", "relu")]
    for blk in ident:
        blk.initialize(mx.init.Xavier())
        blk(x)
    for name in ("conv1", "conv2", "bn1", "bn2"):
        copy_layer(getattr(ident[0], name), getattr(ident[1], name))
    np.testing.assert_allclose(run(ident[0], x.asnumpy(), False), run(ident[1], x.asnumpy(), False))
    with pytest.raises(ValueError, match="unknown projection_input 'bn'"):
        Residual(4, ordering="bn_relu_conv", projection_input="bn")


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels():
    """He et al.'s CIFAR option A: x[:, :, ::2, ::2], then as many zero channels; no weights."""
    x = mx.np.random.normal(0, 1, (2, 3, 8, 8))
    pad = ZeroPadShortcut(2)
    pad.initialize()
    out = pad(x).asnumpy()
    assert out.shape == (2, 6, 4, 4)
    np.testing.assert_array_equal(out[:, :3], x.asnumpy()[:, :, ::2, ::2])
    assert not out[:, 3:].any()
    assert not list(pad.collect_params().values())


@pytest.mark.parametrize("ordering", sorted(ORDERINGS))
def test_zero_pad_block_adds_the_padded_raw_input(ordering):
    """A downsampling block with shortcut="zero_pad" has no projection: its shortcut is the
    zero-padded raw input (in every ordering, like an identity shortcut), at the block's shape."""
    x = mx.np.random.normal(0, 1, (2, 3, 8, 8))
    blk = Residual(6, use_1x1conv=True, strides=2, ordering=ordering, shortcut="zero_pad")
    blk.initialize(mx.init.Xavier())
    with autograd.predict_mode():
        out = blk(x)
        shortcut = blk.shortcut(x, x).asnumpy()
    assert blk.conv3 is None and out.shape == (2, 6, 4, 4)
    np.testing.assert_array_equal(shortcut[:, :3], x.asnumpy()[:, :, ::2, ::2])
    with pytest.raises(ValueError, match="unknown shortcut 'option_a'"):
        Residual(6, use_1x1conv=True, strides=2, shortcut="option_a")
