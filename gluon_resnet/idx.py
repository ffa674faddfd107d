"""The four Fashion-MNIST IDX files: where they are, what they must hold, and proof that
they hold it (sha256 of the decompressed content, remembered in a small cache).

MXNet's own `gluon.data.vision.FashionMNIST` checks sha1 sums of its mirror's gzip files
and otherwise downloads, so it rejects Debian's copy; this module reads the IDX files
itself and verifies the *decompressed* content (docs/DESIGN.md section 4).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .atomic import write_json_atomic
from .cache import cache_root

PathLike = Union[str, Path]

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
SIDE = 28
NUM_CLASSES = 10
TRAIN_IMAGES, TEST_IMAGES = 60000, 10000  # balanced: a tenth of each per class
TRAIN_PER_CLASS, TEST_PER_CLASS = TRAIN_IMAGES // NUM_CLASSES, TEST_IMAGES // NUM_CLASSES


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
    IdxSpec("train-labels-idx1-ubyte", LABEL_MAGIC, TRAIN_IMAGES,
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    IdxSpec("t10k-labels-idx1-ubyte", LABEL_MAGIC, TEST_IMAGES,
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    IdxSpec("t10k-images-idx3-ubyte", IMAGE_MAGIC, TEST_IMAGES,
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    IdxSpec("train-images-idx3-ubyte", IMAGE_MAGIC, TRAIN_IMAGES,
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


def file_in(folder: Path, name: str) -> Optional[Path]:
    """The file `name` or `name.gz` in folder (decompressed first: it reads faster)."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(folder: Path) -> list[str]:
    return [f"{s.name}[.gz]" for s in FILES if file_in(folder, s.name) is None]


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
            if searched and label != "$FASHION_MNIST_DIR" and os.environ.get("FASHION_MNIST_DIR"):
                # the user pointed somewhere on purpose: never pass over it in silence
                print(f"note: $FASHION_MNIST_DIR is {searched[0].split(': ', 1)[1]}; "
                      f"using {folder} instead", file=sys.stderr, flush=True)
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
    """JSON file remembering verified files by resolved path, size, mtime, inode and ctime."""
    return cache_root() / "verified.json"


def _stat_key(path: Path) -> tuple[str, dict]:
    """The file's identity: size and mtime, which tools can restore after an edit, and inode
    and ctime, which they cannot (any write or utime moves ctime): an edited file is hashed
    again."""
    st = path.stat()  # follows symlinks: the target's
    return str(path.resolve()), {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                 "inode": st.st_ino, "ctime_ns": st.st_ctime_ns}


def _cached_digest(cache: dict, path: Path) -> Optional[str]:
    key, stamp = _stat_key(path)
    entry = cache.get(key)
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()):
        return entry.get("sha256")
    return None


def _remember(cache: dict, path: Path, digest: str) -> None:
    key, stamp = _stat_key(path)
    cache[key] = {**stamp, "sha256": digest}


def load_cache() -> dict:
    try:
        data = json.loads(cache_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # absent or damaged: verify again from scratch


def save_cache(cache: dict) -> None:
    path = cache_path()
    for gone in [key for key in cache if not os.path.exists(key)]:
        del cache[gone]  # deleted files (e.g. test folders) would otherwise pile up
    try:
        write_json_atomic(path, cache)
    except OSError:
        pass  # read-only home: verification still happened, it just is not remembered
