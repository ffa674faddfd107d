"""Plumbing of the Python API (api.py) around a call: stops become KeyboardInterrupt for the
call's duration, and a progress bar counts the runs its executor finishes."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from .stop import stop_on_ctrl_c


@contextmanager
def stoppable() -> Iterator[None]:
    """Ctrl-C, a Jupyter kernel's interrupt and SIGTERM raise KeyboardInterrupt (stop.py: never
    lost in a finaliser) while the call trains; the caller's handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only: nothing to install from here
        return
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stop_on_ctrl_c()
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


class _CountingTally:
    """The runner's Tally, with each finished job also counted on the bar."""

    def __init__(self, tally: Any, bar: Any):
        self._tally, self._bar = tally, bar

    def add(self, job: Any, outcome: Any) -> None:
        self._tally.add(job, outcome)
        self._bar.update(1)
        self._bar.set_postfix_str(f"last: {job.cfg.run_id} {outcome.status or outcome.state}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tally, name)


class _Counting:
    """An executor whose finished runs move a tqdm.auto bar (a widget in Jupyter, text in a
    terminal); the total grows as the runner hands out each round's runs."""

    def __init__(self, executor: Any):
        self._executor, self._bar = executor, None

    def run(self, jobs: list, store: Any, data_dir: Optional[str], tally: Any) -> None:
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(total=0, unit="run")
        self._bar.set_description(f"{store.experiment}/{store.profile}", refresh=False)
        self._bar.total += len(jobs)
        self._bar.refresh()
        self._executor.run(jobs, store, data_dir, _CountingTally(tally, self._bar))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if hasattr(self._executor, "close"):
            self._executor.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._executor, name)


def counting(executor: Any) -> Any:
    """`executor` with a bar of finished runs."""
    return _Counting(executor)
