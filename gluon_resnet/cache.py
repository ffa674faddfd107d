"""The project's folder in the user's cache: what is kept between processes to save time and
can always be made again (the data files' verification, the null simulations, the figures, Ray
workers' checkpoints). $XDG_CACHE_HOME where it is an absolute path (the XDG rule), else ~/.cache."""
from __future__ import annotations

import os
from pathlib import Path

NAME = "gluon-resnet-orderings"
FIGURE_CACHE_ENV = "GLUON_RESNET_FIGURE_CACHE"  # moves the figures kept (reporting/_drawn)


def cache_root() -> Path:
    """~/.cache/gluon-resnet-orderings, or its $XDG_CACHE_HOME equivalent."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / NAME
