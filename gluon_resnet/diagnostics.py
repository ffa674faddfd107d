"""What a run measures besides loss and accuracy: per-part gradient norms and activation
statistics (how signal and gradient propagate), and the environment it ran in.

Norms and statistics are keyed by `nets.named_parts` names (stem, stage1, ..., head).
Gradient norms are accumulated on the device with four array operations per step and no
synchronisation: under 1 % of a d2l ResNet-18 training step on the CPU.
"""
from __future__ import annotations

import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Optional

import mxnet as mx
import numpy as np
from mxnet import autograd

from . import runtime


def finite(value: float) -> Optional[float]:
    """value as a float, or None when NaN/inf (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


class GradNorms:
    """Mean over steps of each part's L2 gradient norm (gradient of the mean batch loss)."""

    def __init__(self, parts: list[tuple[str, mx.gluon.Block]], ctx: mx.Context):
        self.names = [name for name, _ in parts]
        self.params, owner = [], []
        for k, (_, part) in enumerate(parts):
            for p in part.collect_params().values():
                if p.grad_req != "null":
                    self.params.append(p)
                    owner.append(k)
        # (params x parts) 0/1 matrix: one dot turns per-array sums of squares into per-part sums.
        member = np.zeros((len(owner), len(parts)), np.float32)
        member[np.arange(len(owner)), owner] = 1
        self._member = mx.nd.array(member, ctx=ctx)
        self._ctx = ctx
        self.reset()

    def reset(self) -> None:
        self._sum = mx.nd.zeros(len(self.names), ctx=self._ctx)
        self.steps = 0

    def add(self, batch_size: float) -> None:
        """Record this step's gradients (call after backward; with several devices, after
        trainer.step, which sums the devices' gradients into each). With a loss scale
        (mixed precision), pass batch_size x scale."""
        grads = [p.grad(self._ctx).as_nd_ndarray() for p in self.params]
        sq = mx.nd.multi_sum_sq(*grads, num_arrays=len(grads))
        # Gluon losses are per-example sums: divide by the batch to get the mean loss's gradient.
        self._sum = self._sum + mx.nd.sqrt(mx.nd.dot(sq, self._member)) / batch_size
        self.steps += 1

    def means(self) -> dict[str, Optional[float]]:
        """Per-part mean norm over the steps since reset (synchronises once)."""
        values = self._sum.asnumpy() / max(self.steps, 1)
        return {name: finite(v) for name, v in zip(self.names, values)}


def activation_stats(parts: list[tuple[str, mx.gluon.Block]], x: mx.np.ndarray
                     ) -> tuple[dict[str, Optional[float]], dict[str, Optional[float]]]:
    """Mean and std of every part's output on batch x, parts called one after another in
    inference mode (BN uses its running statistics)."""
    means, stds = {}, {}
    with autograd.predict_mode():
        for name, part in parts:
            x = part(x)
            means[name], stds[name] = x.mean(), x.std()
    return ({k: finite(v.item()) for k, v in means.items()},
            {k: finite(v.item()) for k, v in stds.items()})


def environment(ctx: list) -> dict:
    """What the run ran on and with: enough to tell two records' machines apart."""
    gpu = ctx[0].device_type == "gpu"
    return {"mxnet_version": mx.__version__,
            "mxnet_build": "cuda" if mx.runtime.Features().is_enabled("CUDA") else "cpu",
            "device": "gpu" if gpu else "cpu",
            "device_name": _gpu_name(ctx[0].device_id) if gpu else _cpu_name(),
            "cpu_isa": _cpu_isa(),
            "contexts": [str(c) for c in ctx],
            "python": platform.python_version(), "platform": platform.platform(),
            "git_commit": _git_commit(), "threads": runtime.THREADS,
            "cpu_count": os.cpu_count(), "usable_cores": runtime.usable_cores(),
            "heap_kept": runtime.HEAP_KEPT}


# Widest first: MXNet's CPU kernels differ by these, so two machines that both say "AMD EPYC"
# can train one config to different numbers (docs/DESIGN.md section 7).
CPU_ISAS = ("avx512f", "avx2", "avx", "sse4_2", "sse4_1")
# oneDNN's cap on the instructions it uses (DNNL_MAX_CPU_ISA, MKLDNN_MAX_CPU_ISA before it):
# its values' prefixes, widest first, as CPU_ISAS names them
ISA_CAPS = (("AVX512", "avx512f"), ("AVX2", "avx2"), ("AVX", "avx"), ("SSE41", "sse4_1"))


def cpu_kind() -> tuple[str, str]:
    """This machine's CPU as records name it: (environment's device_name, cpu_isa)."""
    return _cpu_name(), _cpu_isa()


def _cpuinfo(field: str) -> Optional[str]:
    """The first value of a /proc/cpuinfo field; None where there is no such file or field."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or "unknown CPU"


def _cpu_isa() -> str:
    """The widest vector instructions of CPU_ISAS that oneDNN runs with: those the CPU offers
    ("other" if none), or the narrower that DNNL_MAX_CPU_ISA or MKLDNN_MAX_CPU_ISA allow."""
    flags = _cpuinfo("flags")
    if flags is None:
        return platform.machine() or "unknown"
    offered = next((isa for isa in CPU_ISAS if isa in flags.split()), "other")
    caps = [_isa_cap(os.environ.get(name, "")) for name in ("DNNL_MAX_CPU_ISA",
                                                             "MKLDNN_MAX_CPU_ISA")]
    return max([offered, *filter(None, caps)],
               key=lambda isa: CPU_ISAS.index(isa) if isa in CPU_ISAS else -1)


def _isa_cap(value: str) -> Optional[str]:
    """The CPU_ISAS name of a oneDNN cap ("AVX2", "avx512_core", ...); None for none (ALL,
    unset, a value oneDNN does not know)."""
    value = value.strip().upper()
    return next((isa for prefix, isa in ISA_CAPS if value.startswith(prefix)), None)


def _gpu_name(index: int) -> str:
    out = _command(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", str(index)])
    return out or f"GPU {index}"


def _git_commit(root: Path = Path(__file__).resolve().parents[1]) -> Optional[str]:
    """The project's commit, with "-dirty" when tracked files changed; None outside git.
    Changes under results/ do not count: they are this suite's own output (every round of
    --until-decided rewrites the reports), not code that could change what a run trains."""
    commit = _command(["git", "-C", str(root), "rev-parse", "HEAD"])
    changed = ["git", "-C", str(root), "status", "--porcelain", "-uno", "--", ".",
               ":(exclude)results"]
    if commit and _command(changed):
        commit += "-dirty"
    return commit


def _command(args: list[str]) -> Optional[str]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None
