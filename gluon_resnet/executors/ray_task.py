"""The Ray task: train one run on whichever node Ray chose, into a store local to that node.

No shared file system is assumed. The task trains into a worker-side store (records,
checkpoints, locks) under a configurable path, by default the node's
~/.cache/gluon-resnet-orderings/ray-checkpoints/<experiment>/<profile>, and returns the
finished record to the driver. When the worker process dies, Ray runs the task again;
if it lands on the same node (or the path is a shared mount), the run resumes from its
last checkpoint there. This module does not import Ray: it is plain training code.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

from ..config import RunConfig
from ..store import CorruptRecord, RunStore
from .faults import store_for

CACHE_SUBDIR = Path("gluon-resnet-orderings") / "ray-checkpoints"
_DATA: dict = {}  # data_dir -> FashionMNIST: Ray reuses worker processes across tasks


def check_uri(uri: Optional[str]) -> Optional[str]:
    """Refuse, on the driver, what a worker could not open: only paths and file:// URIs."""
    if uri and urlparse(uri).scheme not in ("", "file"):
        raise ValueError(
            f"--checkpoint-uri {uri!r}: only a path or a file:// URI is supported (a path on "
            "each worker; for object storage, mount it on the workers, e.g. with s3fs or "
            "gcsfuse, and pass the mount point)")
    return uri


def local_root(uri: Optional[str], experiment: str, profile: str) -> Path:
    """The worker-side store of this experiment x profile; `~` expands on the worker."""
    if not uri:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        base = Path(cache) / CACHE_SUBDIR
    elif urlparse(uri).scheme == "file":
        base = Path(unquote(urlparse(uri).path))
    else:
        base = Path(uri).expanduser()
    return base / experiment / profile


def train_task(config: dict, experiment: str, profile: str, *, checkpoint_uri: Optional[str],
               data_dir: Optional[str], use_gpu: bool, fresh_token: Optional[str] = None
               ) -> dict:
    """Train (or resume, or return the finished) run in the worker-side store; its record."""
    from ..train import train_run

    cfg = RunConfig.from_dict(config)
    store = store_for(local_root(checkpoint_uri, experiment, profile))

    def log(line: str) -> None:
        print(line, flush=True)

    with store.lock(cfg.run_id):
        if fresh_token:
            _fresh_once(store, cfg.run_id, fresh_token)
        _set_aside_corrupt(store, cfg.run_id, log)
        attempt = _note_attempt(store, cfg)
        record = train_run(cfg, store, _data(data_dir), experiment=experiment, profile=profile,
                           ctx=_contexts(use_gpu, log), progress=False, log=log)
    record["environment"] = {**record["environment"], "executor": "ray",
                             "host": socket.gethostname(), "attempt": attempt,
                             "worker_store": str(store.root)}
    return record


def _fresh_once(store: RunStore, run_id: str, token: str) -> None:
    """--fresh clears the worker-side run once per submission, not again on Ray's retry."""
    from ..runner import forget

    mark = store.root / "fresh" / run_id
    if mark.is_file() and mark.read_text() == token:
        return
    forget(store, run_id)
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text(token)


def _set_aside_corrupt(store: RunStore, run_id: str, log) -> None:
    from ..runner import quarantine

    try:
        store.load(run_id)
    except CorruptRecord:
        quarantine(store, run_id, log)


def _note_attempt(store: RunStore, cfg: RunConfig) -> int:
    """Append this attempt (pid, host, epoch it resumes after) to attempts/<run_id>.jsonl;
    its number, 1-based."""
    from .. import checkpoint

    existing = store.load(cfg.run_id)
    meta = checkpoint.load_meta(store.checkpoint_dir(cfg.run_id))
    resumable = existing is not None and existing["status"] not in ("completed", "diverged")
    usable = resumable and checkpoint.usable(meta, {"config": cfg.to_dict()}, existing)
    path = store.root / "attempts" / f"{cfg.run_id}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    attempt = (len(path.read_text().splitlines()) if path.exists() else 0) + 1
    line = {"attempt": attempt, "pid": os.getpid(), "host": socket.gethostname(),
            "time": time.time(), "resume_after_epoch": meta["epoch"] if usable else 0}
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")
    return attempt


def _data(data_dir: Optional[str]):
    from ..data import load_fashion_mnist

    if data_dir not in _DATA:
        _DATA[data_dir] = load_fashion_mnist(data_dir)  # finds the data on this node
    return _DATA[data_dir]


def _contexts(use_gpu: bool, log) -> list:
    """The GPU Ray assigned (CUDA_VISIBLE_DEVICES makes it gpu(0)), or the CPU."""
    import mxnet as mx

    from ..train import contexts

    if not use_gpu:
        return [mx.cpu()]
    ctx = contexts()
    if ctx[0].device_type != "gpu":
        log("this task was given a GPU but MXNet sees none (CPU build of mxnet?): using the CPU")
    return ctx
