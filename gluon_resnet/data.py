"""Fashion-MNIST in memory (verified by idx.py), class-balanced subsets, and the batches a
run trains on: shuffled and augmented as pure functions of (seed, epoch), resized 28 -> 96
in one MXNet call per batch."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import mxnet as mx
import numpy as np

from .idx import FILES, NUM_CLASSES, SIDE, DatasetError, DatasetNotFound, PathLike, file_in, find_data_dir  # noqa: F401
from .idx import load_cache, read_idx, save_cache


# ---------------------------------------------------------------- the data set


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == is ambiguous
class FashionMNIST:
    """The verified data set in memory: uint8 28x28 images, int32 labels 0-9."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    data_dir: Path

    def subset(self, train_per_class: Optional[int],
               test_per_class: Optional[int]) -> "FashionMNIST":
        """First N images of each class (None: all), in their original order."""
        train = _first_per_class(self.train_labels, train_per_class)
        test = _first_per_class(self.test_labels, test_per_class)
        return dataclasses.replace(
            self, train_images=self.train_images[train], train_labels=self.train_labels[train],
            test_images=self.test_images[test], test_labels=self.test_labels[test])


def _first_per_class(labels: np.ndarray, per_class: Optional[int]) -> np.ndarray:
    if per_class is None:
        return np.arange(len(labels))
    keep = []
    for c in range(NUM_CLASSES):
        members = np.flatnonzero(labels == c)
        if not 0 < per_class <= len(members):
            raise ValueError(f"per_class must be in 1..{len(members)} for class {c}, "
                             f"got {per_class}")
        keep.append(members[:per_class])
    return np.sort(np.concatenate(keep))


def load_fashion_mnist(data_dir: Optional[PathLike] = None) -> FashionMNIST:
    """Find, read and verify the four files (see find_data_dir for where it looks)."""
    folder = find_data_dir(data_dir)
    cache = load_cache()
    arrays = {spec.name: read_idx(file_in(folder, spec.name), spec, cache) for spec in FILES}
    save_cache(cache)
    return FashionMNIST(
        train_images=arrays["train-images-idx3-ubyte"],
        train_labels=arrays["train-labels-idx1-ubyte"].astype(np.int32),
        test_images=arrays["t10k-images-idx3-ubyte"],
        test_labels=arrays["t10k-labels-idx1-ubyte"].astype(np.int32),
        data_dir=folder)


# ---------------------------------------------------------------- order, augmentation, batches

_ORDER_STREAM, _AUGMENT_STREAM = 0, 1  # independent random streams of one (seed, epoch)


def _rng(seed: int, epoch: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch), stream])


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The shuffle of epoch `epoch` of a run seeded `seed`: a pure function of both."""
    return _rng(seed, epoch, _ORDER_STREAM).permutation(n)


def augment_params(seed: int, epoch: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per position of the epoch: flip (n,) bool and crop offsets (n, 2) in 0..8."""
    rng = _rng(seed, epoch, _AUGMENT_STREAM)
    return rng.random(n) < 0.5, rng.integers(0, 2 * 4 + 1, size=(n, 2))


def flip_and_crop(images: np.ndarray, flip: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """He et al.'s CIFAR augmentation on a uint8 (B, 28, 28) batch: pad 4, crop, maybe flip."""
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4)))
    steps = np.arange(SIDE)
    rows = offsets[:, :1] + steps
    # A flipped crop reads its columns right to left: flip and crop in one gather.
    cols = offsets[:, 1:] + np.where(flip[:, None], SIDE - 1 - steps, steps)
    return padded[np.arange(len(images))[:, None, None], rows[:, :, None], cols[:, None, :]]


def to_batch(images: np.ndarray, size: int = 96,
             ctx: Optional[mx.Context] = None) -> mx.np.ndarray:
    """uint8 (B, 28, 28) -> float32 (B, 1, size, size) in [0, 1] on ctx, as d2l's transforms."""
    x = mx.nd.array(images[..., None], ctx=ctx, dtype=np.uint8)  # NHWC, C = 1
    if size != SIDE:
        x = mx.nd.image.resize(x, size=size)  # bilinear, as transforms.Resize
    # With one channel NHWC -> NCHW is a reshape; "/ 255" matches ToTensor bit for bit.
    return x.as_np_ndarray().reshape(-1, 1, size, size).astype(np.float32) / 255


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, size: int = 96,
            ctx: Optional[mx.Context] = None, seed: Optional[int] = None, epoch: int = 1,
            augment: bool = False) -> Iterator[tuple[mx.np.ndarray, mx.np.ndarray]]:
    """(X, y) batches; seed None keeps the original order; the last batch may be short."""
    n = len(images)
    if len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    if augment and seed is None:
        raise ValueError("augment=True needs a seed (augmentation is drawn from (seed, epoch))")
    order = np.arange(n) if seed is None else epoch_order(seed, epoch, n)
    if augment:
        flip, offsets = augment_params(seed, epoch, n)
    for start in range(0, n, batch_size):
        part = slice(start, start + batch_size)
        idx = order[part]
        x = images[idx]
        if augment:
            x = flip_and_crop(x, flip[part], offsets[part])
        y = mx.np.array(labels[idx], dtype=np.int32, ctx=ctx)
        yield to_batch(x, size, ctx), y
