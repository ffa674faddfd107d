"""Fashion-MNIST: find, read and verify the four IDX files; batch, resize and shuffle them.

MXNet's own `gluon.data.vision.FashionMNIST` checks sha1 sums of its mirror's gzip files
and otherwise downloads, so it rejects Debian's copy; this module reads the IDX files
itself and verifies the *decompressed* content (DESIGN.md section 4).
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

import mxnet as mx
import numpy as np

PathLike = Union[str, Path]

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
SIDE = 28
NUM_CLASSES = 10


@dataclass(frozen=True)
class IdxSpec:
    """What one of the four files must hold."""

    name: str
    magic: int
    count: int
    sha256: str  # of the decompressed content

    @property
    def header_bytes(self) -> int:
        return 16 if self.magic == IMAGE_MAGIC else 8

    @property
    def total_bytes(self) -> int:
        per_item = SIDE * SIDE if self.magic == IMAGE_MAGIC else 1
        return self.header_bytes + self.count * per_item


# Cheap files first: a broken labels file is reported before 26 MB are decompressed.
FILES = (
    IdxSpec("train-labels-idx1-ubyte", LABEL_MAGIC, 60000,
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    IdxSpec("t10k-labels-idx1-ubyte", LABEL_MAGIC, 10000,
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    IdxSpec("t10k-images-idx3-ubyte", IMAGE_MAGIC, 10000,
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    IdxSpec("train-images-idx3-ubyte", IMAGE_MAGIC, 60000,
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
)

GET_DATA_HINT = (
    "Get it either way:\n"
    "  - Debian/Ubuntu: apt-get install dataset-fashion-mnist  (as root; puts the files in "
    f"{SYSTEM_DIR})\n"
    "  - or download the four files " + ", ".join(f"{s.name}.gz" for s in FILES) + "\n"
    "    from the Fashion-MNIST project (https://github.com/zalandoresearch/fashion-mnist,\n"
    "    folder data/fashion) into one folder and pass it as --data-dir DIR or set\n"
    "    FASHION_MNIST_DIR=DIR."
)


class DatasetError(RuntimeError):
    """The Fashion-MNIST files are missing, unreadable or not what they should be."""


class DatasetNotFound(DatasetError):
    """No searched folder holds the four Fashion-MNIST files."""


# ---------------------------------------------------------------- finding the folder


def _file_in(folder: Path, name: str) -> Optional[Path]:
    """The file `name` or `name.gz` in folder (decompressed first: it reads faster)."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(folder: Path) -> list[str]:
    return [f"{s.name}[.gz]" for s in FILES if _file_in(folder, s.name) is None]


def _describe(folder: Path) -> str:
    if not folder.is_dir():
        return f"{folder} (no such folder)"
    missing = _missing(folder)
    return f"{folder} (missing {', '.join(missing)})" if missing else f"{folder} (complete)"


def _mxnet_dir() -> tuple[str, Path]:
    home = os.environ.get("MXNET_HOME")
    label = "$MXNET_HOME/datasets/fashion-mnist" if home else "~/.mxnet/datasets/fashion-mnist"
    base = Path(home).expanduser() if home else Path.home() / ".mxnet"
    return label, base / "datasets" / "fashion-mnist"


def _candidates() -> list[tuple[str, Optional[Path]]]:
    env = os.environ.get("FASHION_MNIST_DIR")
    return [
        ("$FASHION_MNIST_DIR", Path(env).expanduser() if env else None),
        _mxnet_dir(),
        ("system folder", SYSTEM_DIR),
    ]


def find_data_dir(data_dir: Optional[PathLike] = None) -> Path:
    """First folder holding the four files: data_dir, $FASHION_MNIST_DIR, MXNet's, Debian's."""
    if data_dir is not None:
        # An explicit folder is never silently replaced by another one.
        folder = Path(data_dir).expanduser()
        if folder.is_dir() and not _missing(folder):
            return folder
        raise DatasetNotFound(
            f"Fashion-MNIST not found in the folder given: {_describe(folder)}.\n{GET_DATA_HINT}")
    searched = []
    for label, folder in _candidates():
        if folder is not None and folder.is_dir() and not _missing(folder):
            return folder
        searched.append(f"  {label}: {_describe(folder) if folder else '(not set)'}")
    raise DatasetNotFound(
        "Fashion-MNIST not found. Looked in, in this order:\n  data_dir / --data-dir: "
        "(not given)\n" + "\n".join(searched) + "\n" + GET_DATA_HINT)


# ---------------------------------------------------------------- reading one file


def _fail(path: Path, problem: str, expected: str, found: str) -> DatasetError:
    return DatasetError(
        f"{path}: {problem}: expected {expected}, found {found}. Replace the file "
        "(re-download it, or apt-get install --reinstall dataset-fashion-mnist).")


def _read_bytes(path: Path, limit: int) -> tuple[bytes, int]:
    """The first limit bytes of path's content (gunzipped when named .gz) and its full size."""
    try:
        with open(path, "rb") as raw:
            is_gzip = raw.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise _fail(path, "unreadable file", "a readable file", str(exc)) from exc
    if path.suffix == ".gz" and not is_gzip:
        raise _fail(path, "named .gz but not gzip data", "gzip magic 1f 8b",
                    "other bytes (an uncompressed file? drop the .gz suffix)")
    if path.suffix != ".gz" and is_gzip:
        raise _fail(path, "gzip data without the .gz suffix", "uncompressed IDX data",
                    "gzip magic 1f 8b (rename it to end in .gz)")
    try:
        with (gzip.open(path, "rb") if is_gzip else open(path, "rb")) as f:
            content = f.read(limit)
            # Read on to the end: it sizes an overlong file and makes gzip check its CRC.
            rest = sum(len(chunk) for chunk in iter(lambda: f.read(1 << 20), b""))
            return content, len(content) + rest
    except (OSError, EOFError, zlib.error) as exc:
        raise _fail(path, "corrupt gzip data", "a complete gzip stream",
                    f"{type(exc).__name__}: {exc}") from exc


def _check_header(path: Path, content: bytes, spec: IdxSpec) -> None:
    if len(content) < spec.header_bytes:
        raise _fail(path, "truncated file", f"an IDX header of {spec.header_bytes} bytes",
                    f"{len(content)} bytes in all")
    magic, count = struct.unpack(">II", content[:8])
    kind = {IMAGE_MAGIC: "images", LABEL_MAGIC: "labels"}
    if magic != spec.magic:
        what = f"the magic of a {kind[magic]} file" if magic in kind else "not an IDX magic"
        raise _fail(path, "wrong magic number", f"{spec.magic} ({kind[spec.magic]})",
                    f"{magic} ({what})")
    if count != spec.count:
        raise _fail(path, "wrong item count in header", f"{spec.count} {kind[magic]}", str(count))
    if magic == IMAGE_MAGIC:
        shape = struct.unpack(">II", content[8:16])
        if shape != (SIDE, SIDE):
            raise _fail(path, "wrong image shape in header", f"{SIDE}x{SIDE}",
                        "x".join(map(str, shape)))


def _check_length(path: Path, size: int, spec: IdxSpec) -> None:
    if size != spec.total_bytes:
        problem = "truncated file" if size < spec.total_bytes else "trailing data after the end"
        raise _fail(path, problem, f"{spec.total_bytes} bytes of content", f"{size}")


def read_idx(path: PathLike, spec: IdxSpec, cache: Optional[dict] = None) -> np.ndarray:
    """Read and verify one IDX file (gz or not): images (n, 28, 28) uint8 or labels (n,)."""
    path = Path(path)
    content, size = _read_bytes(path, spec.total_bytes)
    _check_header(path, content, spec)
    _check_length(path, size, spec)
    digest = _cached_digest(cache, path) if cache is not None else None
    if digest is None:
        digest = hashlib.sha256(content).hexdigest()
    if digest != spec.sha256:
        raise _fail(path, "checksum mismatch (sha256 of the decompressed content)",
                    spec.sha256, digest)
    if cache is not None:
        _remember(cache, path, digest)
    array = np.frombuffer(content, np.uint8, offset=spec.header_bytes)
    return array.reshape(-1, SIDE, SIDE) if spec.magic == IMAGE_MAGIC else array


# ---------------------------------------------------------------- verification cache


def cache_path() -> Path:
    """JSON file remembering verified files by (resolved path, size, mtime_ns)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "gluon-resnet-orderings" / "verified.json"


def _stat_key(path: Path) -> tuple[str, dict]:
    st = path.stat()  # follows symlinks: the target's size and mtime
    return str(path.resolve()), {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cached_digest(cache: dict, path: Path) -> Optional[str]:
    key, stamp = _stat_key(path)
    entry = cache.get(key)
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()):
        return entry.get("sha256")
    return None


def _remember(cache: dict, path: Path, digest: str) -> None:
    key, stamp = _stat_key(path)
    cache[key] = {**stamp, "sha256": digest}


def _load_cache() -> dict:
    try:
        data = json.loads(cache_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # absent or damaged: verify again from scratch


def _save_cache(cache: dict) -> None:
    path = cache_path()
    for gone in [key for key in cache if not os.path.exists(key)]:
        del cache[gone]  # deleted files (e.g. test folders) would otherwise pile up
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # read-only home: verification still happened, it just is not remembered


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
    cache = _load_cache()
    arrays = {spec.name: read_idx(_file_in(folder, spec.name), spec, cache) for spec in FILES}
    _save_cache(cache)
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
