"""A stop (Ctrl-C, or SIGTERM) becomes a KeyboardInterrupt, never lost.

MXNet frees every NDArray in its __del__. An exception raised inside a finaliser is
printed ("Exception ignored in ... Traceback") and dropped, so a stop that lands there
would be lost: the user sees a traceback and the training goes on. A stop that lands in
NDArray's __init__ before the array holds its handle leaves an object whose __del__ then
fails the same way ("no attribute 'handle'"). Where the signal arrives inside a finaliser
or that constructor, it is sent again once it has returned."""
from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Optional

RESEND_SECONDS = 0.05


_NDARRAY_BASE = os.path.join("mxnet", "_ctypes", "ndarray.py")  # NDArrayBase's own file


def _in_finaliser_or_constructor(frame: Optional[FrameType]) -> bool:
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or (code.co_name == "__init__"
                                         and code.co_filename.endswith(_NDARRAY_BASE)):
            return True
        frame = frame.f_back
    return False


def deferred(signum: int, frame: Optional[FrameType]) -> bool:
    """True when the signal arrived inside a finaliser (or NDArray's constructor), and is
    sent again shortly."""
    if not _in_finaliser_or_constructor(frame):
        return False
    threading.Timer(RESEND_SECONDS, os.kill, (os.getpid(), signum)).start()
    return True


def interrupt(signum: int, frame: Optional[FrameType]) -> None:
    """Python's default Ctrl-C handler, except inside a finaliser (see above)."""
    if not deferred(signum, frame):
        raise KeyboardInterrupt


def stop_on_ctrl_c() -> None:
    """Install `interrupt` for SIGINT and SIGTERM: for the process that trains runs itself
    (a `kill`, or the end of a session, sends SIGTERM: without this the process died with its
    record still saying "running")."""
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
