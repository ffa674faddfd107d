"""Each distinct figure drawn once per process: a figure is a pure function of its data and
matplotlib's settings, and drawing one takes about half a second of CPU, so a report rebuilt
from unchanged records (a notebook cell run again, a rebuild of every report, a test suite)
writes the bytes drawn before instead of drawing them again."""
from __future__ import annotations

import functools
import hashlib
import inspect
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import matplotlib

from ..atomic import write_atomic

_KEEP = 64  # figures kept (tens of kB each)
_drawn: OrderedDict[str, bytes] = OrderedDict()


def _key(name: str, arguments: dict) -> str:
    """The figure's identity: its function, its arguments but the file it goes to, and the
    matplotlib settings it is drawn under. Pickled, not repr'd: numpy elides long arrays in
    repr, and equal pickles unpickle to equal data, so two different figures never share one."""
    settings = repr(sorted(matplotlib.rcParams.items()))
    blob = pickle.dumps((name, sorted(arguments.items()), settings, matplotlib.__version__),
                        protocol=5)
    return hashlib.sha256(blob).hexdigest()


def drawn_once(draw: Callable[..., Path]) -> Callable[..., Path]:
    """Wrap a figure function whose argument `path` is the PNG it writes."""
    signature = inspect.signature(draw)

    @functools.wraps(draw)
    def wrapper(*args, **kwargs) -> Path:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        path = Path(arguments.pop("path"))
        try:
            key = _key(draw.__name__, arguments)
        except (pickle.PicklingError, TypeError, AttributeError):  # data that cannot be keyed
            return draw(*args, **kwargs)
        png = _drawn.get(key)
        if png is None:
            out = draw(*args, **kwargs)
            _drawn[key] = Path(out).read_bytes()
            while len(_drawn) > _KEEP:
                _drawn.popitem(last=False)
            return out
        _drawn.move_to_end(key)
        write_atomic(path, lambda tmp: Path(tmp).write_bytes(png))
        return path
    return wrapper
