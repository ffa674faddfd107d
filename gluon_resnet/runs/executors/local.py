"""Independent runs side by side on one machine: one worker process per GPU, or N on CPU.

Workers are started with multiprocessing's "spawn" method and the environment they need
(OMP_NUM_THREADS = cores // workers unless the user chose it) already in place, so MXNet
reads it when it loads in the child. The parent hands out one job at a time, so it always
knows which run a worker holds: when a worker dies (OOM killer, SIGKILL), its run is handed
out again, once, to a fresh worker, and resumes from its checkpoint. Each worker takes the
run's lock in the shared store, exactly as a sequential runner would; the parent logs each
finished run and rebuilds the report.
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Iterator, Optional

from ...runtime import usable_cores
from ...store import RunStore
from ..jobs import Job, Outcome, Tally, longest_first
from ..stop import deferred
from .faults import stop_grace, store_for

POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# A stopped worker records its run as interrupted within a second; if it has not exited this
# long after being told to stop (MXNet's engine can hang in C code, where no Python signal
# handler runs), the kernel's SIGALRM ends it: the record then says "running", which the
# next call resumes from the last checkpoint like any lost run.
STOP_GRACE_SECONDS = 10


class WorkerError(RuntimeError):
    """A worker could not start (for example: the data set is missing)."""


@dataclass(frozen=True)
class Slot:
    """One worker process: its name and the GPU ids it trains on (None: the CPU)."""

    name: str
    gpus: Optional[tuple[int, ...]] = None


def local_slots(workers: Optional[int], gpus: Optional[list[int]]) -> list[Slot]:
    """One slot per GPU (or `workers` slots spread round-robin over them); without GPUs,
    `workers` CPU slots."""
    if gpus:
        n = workers or len(gpus)
        return [Slot(f"w{k + 1}", (gpus[k % len(gpus)],)) for k in range(n)]
    if not workers or workers < 1:
        raise ValueError("CPU workers need a count: --workers N")
    return [Slot(f"w{k + 1}") for k in range(workers)]


def threads_per_worker(workers: int, user_threads: Optional[int] = None) -> int:
    """The user's OMP_NUM_THREADS if given, else the usable cores shared out (at least 1)."""
    return user_threads if user_threads else max(1, usable_cores() // workers)


@contextlib.contextmanager
def environ(changes: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the children started inside, then restore ours."""
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the parent dies (SIGKILL, OOM killer included), so no
    worker trains on under PID 1; SIGTERM and Ctrl-C then stop the run as an interruption
    (its record stays resumable). Ctrl-C reaches the parent, which stops the workers. A
    watcher thread notices the parent's death too, for when the signal cannot be delivered
    to Python code (no prctl, or a main thread stuck in C): either way the stop is bounded
    by STOP_GRACE_SECONDS."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux/glibc: the watcher below still sees it
        pass
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watcher",
                     daemon=True).start()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    _end_within_grace()
    os.kill(os.getpid(), signal.SIGTERM)  # where prctl did the same, the second is ignored


def _end_within_grace() -> None:
    """Arm the kernel's alarm (default action: terminate) unless it is already armed."""
    left = signal.alarm(stop_grace(STOP_GRACE_SECONDS))
    if left:
        signal.alarm(left)


def _interrupt(signum, frame) -> None:
    _end_within_grace()
    if deferred(signum, frame):  # inside MXNet's NDArray.__del__: ask again after it
        return
    # one clean stop: a parent's death can send SIGTERM more than once (once per reparenting)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def worker_main(slot: Slot, store_root: str, data_dir: Optional[str], inbox, results,
                parent: int = 0) -> None:
    """A worker's life: load the data once, then train the jobs it is handed until None.

    Unpickling this function imported gluon_resnet, so runtime.py has already read the
    OMP_NUM_THREADS the parent put in our environment, before MXNet loaded."""
    try:
        die_with_parent(parent or os.getppid())
        _work(slot, store_root, data_dir, inbox, results)
    except KeyboardInterrupt:  # stopped: the run's record says "interrupted", quietly
        # Leave at once: the record is written, and the interpreter's and MXNet's clean-up
        # at exit is where a stopped process can hang.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _work(slot: Slot, store_root: str, data_dir: Optional[str], inbox, results) -> None:
    def log(line: str) -> None:
        print(f"({slot.name}) {line}", flush=True)

    try:
        import mxnet as mx

        from ...devices import contexts
        from .worker import load_data, train_job

        store = store_for(store_root)
        data = load_data(data_dir)
        ctx = contexts(list(slot.gpus)) if slot.gpus else [mx.cpu()]
    except Exception as e:  # noqa: BLE001 - reported by the parent, which stops
        results.put((slot.name, None, None, f"{type(e).__name__}: {e}"))
        return
    while (job := inbox.get()) is not None:
        # progress=False: several bars on one terminal would garble it
        outcome, _ = train_job(job, store, data, ctx, log=log, progress=False)
        results.put((slot.name, job.index, outcome, None))


class _Worker:
    def __init__(self, mpc, slot: Slot, args: tuple, results):
        self.slot, self.inbox = slot, mpc.Queue()
        self.process = mpc.Process(target=worker_main, name=f"gluon-resnet-{slot.name}",
                                   args=(slot, *args, self.inbox, results, os.getpid()),
                                   daemon=True)
        self.process.start()
        self.job: Optional[Job] = None


class LocalPool:
    """Train independent runs in parallel worker processes on this machine."""

    def __init__(self, slots: list[Slot], threads: Optional[int] = None, retries: int = 1):
        self.slots, self.retries = slots, retries
        self.threads = threads or threads_per_worker(len(slots))

    @property
    def workers(self) -> int:
        return len(self.slots)

    def gpu_count(self) -> int:
        return len({g for s in self.slots for g in (s.gpus or ())})

    def describe(self, slots: list[Slot]) -> str:
        where = ", ".join(f"{s.name} on " + (f"gpu{s.gpus[0]}" if s.gpus else "cpu")
                          for s in slots)
        return f"{len(slots)} worker processes ({where}), {self.threads} threads each"

    def run(self, jobs: list[Job], store: RunStore, data_dir: Optional[str], tally: Tally) -> None:
        from ...idx import find_data_dir

        find_data_dir(data_dir)  # a missing data set fails here, as in the sequential runner
        mpc = mp.get_context("spawn")
        results = mpc.Queue()
        args = (str(store.root), data_dir)
        slots = self.slots[:max(1, len(jobs))]
        tally.log(self.describe(slots))
        with environ({"OMP_NUM_THREADS": str(self.threads)}):
            workers = {s.name: _Worker(mpc, s, args, results) for s in slots}
        try:
            self._dispatch(deque(longest_first(jobs)), workers, results, tally, lambda s: _Worker(
                mpc, s, args, results))
        except BaseException:  # Ctrl-C, or a worker that could not start: stop them now
            self._terminate(workers.values())
            raise
        self._stop(workers.values())

    def _dispatch(self, todo: deque, workers: dict, results, tally: Tally, respawn) -> None:
        tries: dict[str, int] = {}
        while todo or any(w.job for w in workers.values()):
            for w in workers.values():
                if w.job is None and todo:
                    w.job = todo.popleft()
                    w.inbox.put(w.job)
            self._replace_dead(workers, todo, tries, tally, respawn)
            try:
                name, index, outcome, fatal = results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if fatal:
                raise WorkerError(f"worker {name} could not start: {fatal}")
            job = workers[name].job
            if job is None or job.index != index:
                continue  # sent just before its worker died: the run was handed out again
            workers[name].job = None
            tally.add(job, outcome)

    def _replace_dead(self, workers: dict, todo: deque, tries: dict, tally: Tally,
                      respawn) -> None:
        """A dead worker's run goes back to the front of the queue (once), and a new
        worker takes the dead one's slot; the run resumes from its checkpoint."""
        for name, w in list(workers.items()):
            if w.process.is_alive() or w.job is None:
                continue
            job, code = w.job, w.process.exitcode
            tries[job.cfg.run_id] = tries.get(job.cfg.run_id, 0) + 1
            if tries[job.cfg.run_id] <= self.retries:
                tally.log(f"{job.head}: worker {name} died (exit code {code}); trying again")
                todo.appendleft(replace(job, fresh=False))  # --fresh is done: resume
            else:
                tally.add(job, Outcome("lost", error=f"worker {name} died, exit code {code}"))
            with environ({"OMP_NUM_THREADS": str(self.threads)}):
                workers[name] = respawn(w.slot)

    @staticmethod
    def _terminate(workers) -> None:
        """SIGTERM: each worker records its run as interrupted (resumable) and exits."""
        for w in workers:
            if w.process.is_alive():
                w.process.terminate()
        for w in workers:
            w.process.join(timeout=30)
            if w.process.is_alive():
                w.process.kill()

    @classmethod
    def _stop(cls, workers) -> None:
        """None in each inbox: the workers exit; any still there after 30 s is terminated."""
        for w in workers:
            if w.process.is_alive():
                with contextlib.suppress(Exception):
                    w.inbox.put(None)
        for w in workers:
            w.process.join(timeout=30)
        cls._terminate([w for w in workers if w.process.is_alive()])
