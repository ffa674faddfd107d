"""The null simulations kept on disk between processes: each takes 1-6 s of CPU and every
process that decides or plans needs it (a report rebuild, a `--list`, each round's look), so a
process reads the tables an earlier one computed instead of simulating them again.

A table is used only where its file is whole and was computed from the same inputs: the
simulation's arguments, the source code of the functions that compute it, and the numpy and
scipy versions. Anything else (a missing, damaged or foreign file) is simulated afresh; a
folder that cannot be written only costs the time. The folder: $GLUON_RESNET_CACHE, else
~/.cache/gluon-resnet-orderings/simulations (gluon_resnet/cache.py)."""
from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy

from ..atomic import write_atomic
from ..cache import cache_root

CACHE_ENV = "GLUON_RESNET_CACHE"


def cache_dir() -> Path:
    """Where the tables are kept."""
    return Path(os.environ.get(CACHE_ENV) or cache_root() / "simulations")


def _key(name: str, arguments: Sequence, code: Sequence[Callable]) -> str:
    source = [inspect.getsource(f) for f in code]
    blob = json.dumps([name, list(arguments), source, np.__version__, scipy.__version__])
    return hashlib.sha256(blob.encode()).hexdigest()


def _digest(arrays: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(repr((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _read(path: Path, key: str) -> tuple[np.ndarray, ...] | None:
    """The file's tables if it is whole and was computed from `key`'s inputs, else None."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) != key:
                return None
            arrays = tuple(f[f"a{i}"] for i in range(int(f["count"])))
            if str(f["digest"]) != _digest(arrays):
                return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # missing, or not the file we write
        return None
    if not all(a.dtype == np.float64 and np.all((a >= 0) & (a <= 1)) for a in arrays):
        return None  # p-values, every one
    return arrays


def _write(path: Path, key: str, arrays: tuple[np.ndarray, ...]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, key=key, count=len(arrays), digest=_digest(arrays),
             **{f"a{i}": a for i, a in enumerate(arrays)})
    write_atomic(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))


def kept(name: str, arguments: Sequence, code: Sequence[Callable],
         simulate: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """simulate()'s tables, read from the cache where an earlier process left them."""
    key = _key(name, arguments, code)
    path = cache_dir() / f"{name}-{key[:24]}.npz"
    found = _read(path, key)
    if found is not None:
        return found
    arrays = tuple(np.asarray(a, dtype=np.float64) for a in simulate())
    try:
        _write(path, key, arrays)
    except OSError:
        pass  # a cache that cannot be written only costs the next process the time
    return arrays
