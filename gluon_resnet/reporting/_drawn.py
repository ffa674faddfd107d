"""Each distinct figure drawn once: a figure is a pure function of its data, the code that
draws it and matplotlib's settings, and drawing one takes a quarter to half a second of CPU.
So a report rebuilt from unchanged records writes the bytes drawn before instead of drawing
them again: from this process's memory, else from a folder in the user's cache that every
process shares (another `--report-only`, a notebook's kernel, the next round's report, a test
suite's commands).

A kept figure is used only if its file is whole and was drawn from the same inputs: its
name is the inputs' digest (the function, its arguments but the file it goes to, the source
of the module that draws it, matplotlib's settings and version), and it ends with a digest
of that name and the PNG's bytes. Anything else is drawn afresh; a folder that cannot be
written only costs the time. The folder keeps the newest _KEEP_ON_DISK figures (about 15 MB):
$GLUON_RESNET_FIGURE_CACHE, else ~/.cache/gluon-resnet-orderings/figures. Deleting it is safe."""
from __future__ import annotations

import functools
import hashlib
import inspect
import os
import pickle
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional

import matplotlib

from ..atomic import write_atomic
from ..cache import FIGURE_CACHE_ENV, cache_root

_KEEP = 64  # figures kept in memory (tens of kB each)
_KEEP_ON_DISK = 256
_PNG = b"\x89PNG\r\n\x1a\n"
_TAG = 32  # bytes of the sha256 digest that ends each kept file
_drawn: OrderedDict[str, bytes] = OrderedDict()


def cache_dir() -> Path:
    """Where figures are kept between processes."""
    return Path(os.environ.get(FIGURE_CACHE_ENV) or cache_root() / "figures")


def _key(name: str, code: Optional[str], arguments: dict) -> str:
    """The figure's identity. Pickled, not repr'd: numpy elides long arrays in repr, and
    equal pickles unpickle to equal data, so two different figures never share one."""
    settings = repr(sorted(matplotlib.rcParams.items()))
    blob = pickle.dumps((name, code, sorted(arguments.items()), settings,
                         matplotlib.__version__), protocol=5)
    return hashlib.sha256(blob).hexdigest()


def _tag(key: str, png: bytes) -> bytes:
    return hashlib.sha256(key.encode() + png).digest()


def _read_kept(key: str) -> Optional[bytes]:
    """The kept figure for `key` if its file is whole and its own, else None."""
    path = cache_dir() / f"{key}.kept"
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    png, tag = blob[:-_TAG], blob[-_TAG:]
    if not png.startswith(_PNG) or _tag(key, png) != tag:
        return None
    try:
        os.utime(path)  # recently used: pruned last
    except OSError:
        pass
    return png


def _keep(key: str, png: bytes) -> None:
    """Keep a figure for other processes, and only the newest _KEEP_ON_DISK of them."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{key}.kept", lambda tmp: Path(tmp).write_bytes(png + _tag(key, png)))
        kept = list(folder.glob("*.kept"))
        if len(kept) > _KEEP_ON_DISK:
            kept.sort(key=lambda p: p.stat().st_mtime)
            for old in kept[:len(kept) - _KEEP_ON_DISK]:
                old.unlink(missing_ok=True)
    except OSError:  # read-only, full or vanished: drawing again is the price
        pass


def _remember(key: str, png: bytes) -> None:
    _drawn[key] = png
    _drawn.move_to_end(key)
    while len(_drawn) > _KEEP:
        _drawn.popitem(last=False)


def drawn_once(draw: Callable[..., Path]) -> Callable[..., Path]:
    """Wrap a figure function whose argument `path` is the PNG it writes."""
    signature = inspect.signature(draw)
    try:  # the drawing module's source, as a digest: read once, not pickled at every call
        source = inspect.getsource(sys.modules[draw.__module__])
        code: Optional[str] = hashlib.sha256(source.encode()).hexdigest()
    except (OSError, TypeError):  # no source to read (e.g. bytecode only): memory alone
        code = None

    @functools.wraps(draw)
    def wrapper(*args, **kwargs) -> Path:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        path = Path(arguments.pop("path"))
        try:
            key = _key(draw.__name__, code, arguments)
        except (pickle.PicklingError, TypeError, AttributeError):  # data that cannot be keyed
            return draw(*args, **kwargs)
        png = _drawn.get(key) or (_read_kept(key) if code is not None else None)
        if png is None:
            out = draw(*args, **kwargs)
            png = Path(out).read_bytes()
            if code is not None:
                _keep(key, png)
            _remember(key, png)
            return out
        _remember(key, png)
        write_atomic(path, lambda tmp: Path(tmp).write_bytes(png))
        return path
    return wrapper
