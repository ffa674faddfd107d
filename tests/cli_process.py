"""`python run_all.py ARGS` as a process of its own, without its seconds of imports.

Each command is forked from a server process (multiprocessing's forkserver) that imported
run_all.py's modules once (MXNet, matplotlib: about 2 s of CPU a process on the machines
this suite runs on, most of a short command). The child runs run_all.py as __main__ (runpy),
with the caller's arguments, environment, working folder and pipes, so its exit status,
output, signals, child processes and files are those of the command; what it does not
repeat is only the interpreter's start and the imports.

What is read at import (thread counts, the allocator, oneDNN's ISA cap: gluon_resnet.runtime,
MXNet) is the server's, so a call whose environment differs there is run as a fresh
`python run_all.py` instead, as are calls that ask for it (`fresh`). The session's smoke
grid (conftest.smoke_grid, which the golden check reads) comes from a fresh interpreter.
"""
from __future__ import annotations

import io
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Optional, Union

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "run_all.py")
# Read when the server imports gluon_resnet and MXNet: a call must agree with the server on
# these to be forked (prefixes).
_AT_IMPORT = ("OMP_", "KMP_", "MXNET_", "DNNL_", "ONEDNN_", "GLIBC_", "LD_", "MALLOC_",
              "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS")
_PRELOAD = ["cli_process", "run_all", "gluon_resnet.nets", "gluon_resnet.train",
            "gluon_resnet.reporting.report", "gluon_resnet.runs.executors.local",
            "matplotlib.backends.backend_agg"]
_context: Optional[mp.context.BaseContext] = None
_server_env: dict[str, str] = {}


def _at_import(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(_AT_IMPORT)}


def _forkserver() -> mp.context.BaseContext:
    """The forkserver context, its server started (once a test process) with the modules."""
    global _context, _server_env
    if _context is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        # The server imports _PRELOAD from PYTHONPATH (its start does not apply this
        # process's sys.path, which each child does)
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
        try:
            from multiprocessing import forkserver
            forkserver.ensure_running()
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH")
            else:
                os.environ["PYTHONPATH"] = saved
        _server_env = _at_import(dict(os.environ))
        _context = ctx
    return _context


def _child(script: str, argv: list[str], env: dict[str, str], cwd: str, out: Connection,
           err: Connection, unbuffered: bool) -> None:
    """In the forked process: become `python script argv` and exit as it would."""
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    out.close()
    err.close()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    # a terminal's Ctrl-C, as Python installs it when SIGINT is not ignored at start
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  write_through=unbuffered)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)
    sys.argv = [script, *argv]
    import atexit
    import runpy

    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt as e:  # as Python ends on one: the traceback, then death by SIGINT
        _print_traceback(e, script)
        code = -signal.SIGINT
    except BaseException as e:
        _print_traceback(e, script)
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    if code == -signal.SIGINT:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _print_traceback(e: BaseException, script: str) -> None:
    """The traceback Python prints for an exception out of `script`: from its frames on."""
    import traceback

    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb or e.__traceback__)


class Process:
    """The part of subprocess.Popen the tests use, for a forked script (text pipes)."""

    def __init__(self, script: str, args: list[str], env: dict[str, str], cwd: Path,
                 merge_stderr: bool):
        ctx = _forkserver()
        out_r, out_w = os.pipe()
        err_r, err_w = (out_r, out_w) if merge_stderr else os.pipe()
        out = Connection(out_w, readable=False)
        err = out if merge_stderr else Connection(err_w, readable=False)
        self._proc = ctx.Process(target=_child, args=(
            script, list(args), env, str(cwd), out, err, env.get("PYTHONUNBUFFERED", "") != ""))
        try:
            self._proc.start()  # the child has its own copies of the write ends now
        finally:
            out.close()
            err.close()
        self.pid, self.args = self._proc.pid, [sys.executable, script, *args]
        self.stdout = open(out_r, encoding="utf-8")
        self.stderr = None if merge_stderr else open(err_r, encoding="utf-8")
        self.returncode: Optional[int] = None

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def poll(self) -> Optional[int]:
        if self.returncode is None and not self._proc.is_alive():
            self._proc.join()
            self.returncode = self._proc.exitcode
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        self._proc.join(timeout)
        if self._proc.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        self.returncode = self._proc.exitcode
        return self.returncode

    def communicate(self, timeout: Optional[float] = None) -> tuple[str, Optional[str]]:
        """Everything the process writes until it ends, and its exit status."""
        texts: dict[str, str] = {}
        readers = [threading.Thread(target=lambda n=n, f=f: texts.__setitem__(n, f.read()))
                   for n, f in (("out", self.stdout), ("err", self.stderr)) if f is not None]
        for t in readers:
            t.start()
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()
            raise
        finally:
            for t in readers:
                t.join()
            for f in (self.stdout, self.stderr):
                if f is not None:
                    f.close()
        return texts.get("out", ""), texts.get("err")


def environment(env: Optional[dict[str, str]]) -> dict[str, str]:
    """The command's whole environment: this process's, the checkout on PYTHONPATH, one
    OpenMP thread, then `env` ("" unsets a variable)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return {k: v for k, v in full.items() if v != ""}  # "" = unset it


def can_fork(env: dict[str, str]) -> bool:
    """Whether a call with this environment may be forked from the server (see module doc)."""
    _forkserver()
    return _at_import(env) == _server_env


def popen(args: list[str], env: Optional[dict[str, str]] = None, cwd: Path = ROOT,
          merge_stderr: bool = False, fresh: bool = False, script: str = SCRIPT
          ) -> Union[Process, subprocess.Popen]:
    """`python script args` (run_all.py by default), started: a Process (or a
    subprocess.Popen where it cannot be forked)."""
    full = environment(env)
    if fresh or not can_fork(full):
        return subprocess.Popen([sys.executable, script, *args], cwd=cwd, env=full, text=True,
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return Process(str(script), args, full, cwd, merge_stderr)


def run(args: list[str], env: Optional[dict[str, str]] = None, cwd: Path = ROOT,
        timeout: float = 600, fresh: bool = False, script: str = SCRIPT
        ) -> subprocess.CompletedProcess:
    """`python script args` to its end, as subprocess.run(..., capture_output=True, text=True)."""
    proc = popen(args, env, cwd, fresh=fresh, script=script)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # as subprocess.run: killed, then the error
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
