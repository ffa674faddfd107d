#!/usr/bin/env python
"""Train every run of an experiment grid that is not on disk yet, then write its report.

    python run_all.py                          # experiment `orderings`, profile auto
    python run_all.py --profile smoke          # seconds, to check the set-up
    python run_all.py --list                   # what would run, with estimated times
    python run_all.py --report-only            # rebuild report.md from the run files
    python run_all.py --gpus 0,1,2,3 --parallel   # independent runs side by side, one per GPU
    python run_all.py --workers 2              # ... or N processes on the CPU
    python run_all.py --executor ray --ray-address auto   # each run a task on a Ray cluster
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import gluon_resnet  # noqa: F401  (threads + allocator set-up before MXNet loads)
from experiments import EXPERIMENTS  # noqa: E402
from gluon_resnet.executors.ray_executor import RayMissing  # noqa: E402  (Ray itself: lazily)
from gluon_resnet.executors.ray_task import check_uri  # noqa: E402
from gluon_resnet.data import DatasetError  # noqa: E402
from gluon_resnet.experiment import PROFILES, expand  # noqa: E402
from gluon_resnet.nets import ARCHS  # noqa: E402
from gluon_resnet.orderings import ORDERINGS  # noqa: E402
from gluon_resnet.store import RunStore  # noqa: E402


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0-4' or '0,2,7' or '0-2,9'."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            seeds.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad seeds {text!r}: use a range like 0-4, a list like 0,2,7, or both") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"bad seeds {text!r}: seeds are integers >= 0")
    return tuple(dict.fromkeys(seeds))


def names(kind: str, valid) -> callable:
    """An argparse type: comma-separated names, each one of `valid`."""
    def parse(text: str) -> tuple[str, ...]:
        got = tuple(t.strip() for t in text.split(",") if t.strip())
        bad = [g for g in got if g not in valid]
        if bad or not got:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(bad) or repr(text)}; valid {kind}s: {', '.join(valid)}")
        return got
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=("orderings",),
                   type=names("experiment", (*EXPERIMENTS, "all")),
                   help=f"comma-separated, or all: {', '.join(EXPERIMENTS)} (default orderings)")
    p.add_argument("--profile", default="auto", choices=("auto", *PROFILES),
                   help="auto (default): full with a GPU, quick on a CPU")
    p.add_argument("--orderings", type=names("ordering", tuple(ORDERINGS)),
                   help=f"subset of: {', '.join(ORDERINGS)}")
    p.add_argument("--archs", type=names("arch", tuple(ARCHS)), help=f"any of: {', '.join(ARCHS)}")
    p.add_argument("--seeds", type=parse_seeds, help="e.g. 0-9 or 0,3,5 (replaces the grid's seeds)")
    p.add_argument("--epochs", type=int, help="replace the profile's number of epochs")
    p.add_argument("--data-dir", help="folder with the four Fashion-MNIST IDX files (.gz or not)")
    p.add_argument("--results-dir", default="results", type=Path, help="default: results")
    p.add_argument("--gpus", help="GPU ids, e.g. 0 or 0,1 (data-parallel); default: all MXNet sees")
    p.add_argument("--report-only", action="store_true", help="rebuild the reports from disk, train nothing")
    p.add_argument("--list", action="store_true", help="show the runs and their estimated time, train nothing")
    p.add_argument("--fresh", action="store_true", help="delete these runs' records and checkpoints first")
    add_executor_arguments(p)
    return p


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("running runs side by side (default: one after another, in this process)")
    g.add_argument("--executor", choices=EXECUTORS,
                   help="sequential (default), local (worker processes on this machine: "
                        "--parallel/--workers), or ray (tasks on a Ray cluster)")
    g.add_argument("--parallel", action="store_true",
                   help="one worker process per GPU (--gpus, default all MXNet sees); "
                        "on a CPU-only machine, one per core (or --workers N)")
    g.add_argument("--workers", type=int,
                   help="number of local worker processes (implies --parallel); with GPUs, "
                        "spread round-robin over them")
    g.add_argument("--ray-address", help="Ray cluster to join: auto, host:port or ray://host:10001 "
                   "(default: $RAY_ADDRESS, else a new local Ray instance)")
    g.add_argument("--checkpoint-uri", help="Ray: worker-side folder (path or file:// URI) for "
                   "records and checkpoints of running tasks (default: "
                   "~/.cache/gluon-resnet-orderings/ray-checkpoints on each worker)")
    g.add_argument("--ray-num-cpus", type=float, help="Ray: CPUs per run's task (default 1)")
    g.add_argument("--ray-num-gpus", type=float,
                   help="Ray: GPUs per run's task (default 1 if the cluster has GPUs, else 0)")
    g.add_argument("--ray-max-retries", type=int,
                   help="Ray: re-runs of a task whose worker died, each resuming (default 3)")


EXECUTORS = ("sequential", "local", "ray")
RAY_FLAGS = ("ray_address", "checkpoint_uri", "ray_num_cpus", "ray_num_gpus", "ray_max_retries")


def check_executor(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The executor the flags ask for; contradictions exit with status 2."""
    local = args.parallel or args.workers is not None
    executor = args.executor or ("local" if local else "sequential")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    if local and executor != "local":
        why = " (Ray decides how many runs fit the cluster)" if executor == "ray" else ""
        parser.error(f"--parallel/--workers run local worker processes; not with --executor "
                     f"{executor}{why}")
    if executor == "ray" and args.gpus:
        parser.error("--gpus picks this machine's GPUs; with --executor ray, Ray assigns them "
                     "(--ray-num-gpus per run)")
    used = [f"--{f.replace('_', '-')}" for f in RAY_FLAGS if getattr(args, f) is not None]
    if used and executor != "ray":
        parser.error(f"{', '.join(used)} only apply to --executor ray")
    for flag, value, low in (("--ray-max-retries", args.ray_max_retries, 0),
                             ("--ray-num-gpus", args.ray_num_gpus, 0)):
        if value is not None and value < low:
            parser.error(f"{flag} must be >= {low}")
    if args.ray_num_cpus is not None and args.ray_num_cpus <= 0:
        parser.error("--ray-num-cpus must be > 0")
    try:
        check_uri(args.checkpoint_uri)
    except ValueError as e:
        parser.error(str(e))
    return executor


def make_executor(kind: str, args: argparse.Namespace, gpus: list[int] | None):
    """None for the default in-process executor, else a LocalPool or a connected RayExecutor."""
    if kind == "local":
        from gluon_resnet.executors.local import LocalPool, local_slots

        devices = gpus if gpus is not None else list(range(gpu_count())) or None
        workers = args.workers
        if devices is None and workers is None:
            from gluon_resnet.runtime import usable_cores
            workers = usable_cores()
        user = gluon_resnet.runtime.USER_THREADS
        threads = int(user) if user and user.isdigit() else None
        return LocalPool(local_slots(workers, devices), threads=threads)
    if kind == "ray":
        from gluon_resnet.executors.ray_executor import RayExecutor, RayOptions

        given = {k: getattr(args, f"ray_{k}") for k in ("num_cpus", "num_gpus", "max_retries")
                 if getattr(args, f"ray_{k}") is not None}
        return RayExecutor(RayOptions(address=args.ray_address,
                                      checkpoint_uri=args.checkpoint_uri, **given)).connect()
    return None


def gpu_count() -> int:
    import mxnet as mx

    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:
        return 0


def resolve_profile(profile: str, gpus: list[int] | None, executor=None) -> tuple[str, str]:
    """The profile to use and a sentence saying why (a Ray executor: the cluster's GPUs)."""
    if executor is not None and hasattr(executor, "cluster_gpus"):
        n = int(executor.cluster_gpus())
        device = f"Ray cluster with {n} GPU(s)" if n else "Ray cluster without GPUs: CPU"
    else:
        n = len(gpus) if gpus is not None else gpu_count()
        device = f"{n} GPU(s)" if n else "no GPU visible to MXNet: CPU"
    if profile != "auto":
        return profile, f"profile {profile} (chosen); {device}"
    chosen = "full" if n else "quick"
    return chosen, f"profile auto -> {chosen} ({device})"


def command_line(args: argparse.Namespace, experiment: str, profile: str) -> str:
    """The exact command that reproduces this experiment x profile."""
    parts = ["python", "run_all.py", "--experiment", experiment, "--profile", profile]
    for flag in ("orderings", "archs"):
        if getattr(args, flag):
            parts += [f"--{flag}", ",".join(getattr(args, flag))]
    if args.seeds:
        parts += ["--seeds", ",".join(map(str, args.seeds))]
    if args.epochs:
        parts += ["--epochs", str(args.epochs)]
    return shlex.join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    gpus = None
    if args.gpus:
        try:
            gpus = [int(g) for g in args.gpus.split(",")]
        except ValueError:
            parser.error(f"bad --gpus {args.gpus!r}: use GPU ids like 0 or 0,1")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    kind = check_executor(args, parser)
    # --list needs a local pool's size, never a Ray connection; --report-only needs neither.
    wanted = not args.report_only and (kind == "local" or not args.list)
    try:
        executor = make_executor(kind, args, gpus) if wanted else None
    except RayMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ConnectionError as e:  # ray.init could not reach the cluster
        print(f"error: cannot connect to the Ray cluster ({args.ray_address or 'RAY_ADDRESS'}): "
              f"{e}", file=sys.stderr)
        return 1
    try:
        return run_experiments(args, gpus, executor)
    except DatasetError as e:  # missing or broken Fashion-MNIST: the message says how to fix it
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if executor is not None and hasattr(executor, "close"):
            executor.close()


def run_experiments(args: argparse.Namespace, gpus: list[int] | None, executor) -> int:
    experiments = tuple(EXPERIMENTS) if "all" in args.experiment else args.experiment
    profile, device_note = resolve_profile(args.profile, gpus, executor)
    print(device_note, flush=True)
    axes = {k: v for k, v in (("ordering", args.orderings), ("arch", args.archs),
                              ("seed", args.seeds)) if v}
    overrides = {"epochs": args.epochs} if args.epochs else {}
    for name in experiments:
        exp = EXPERIMENTS[name]
        store = RunStore(args.results_dir / name / profile)
        runs = expand(exp, profile, axes=axes, overrides=overrides)
        if args.list:
            list_runs(exp.name, profile, runs, store, args.results_dir, gpus,
                      workers=len(executor.slots) if executor is not None else 1)
            continue
        from gluon_resnet.runner import refresh_reports, run_all, write_experiment_info

        if not args.report_only:
            write_experiment_info(store, exp, profile, command_line(args, name, profile), device_note)
            print(f"{name}/{profile}: {len(runs)} runs -> {store.root}", flush=True)
            run_all(exp, profile, runs, store, results_dir=args.results_dir,
                    data_dir=args.data_dir, gpus=gpus, fresh=args.fresh,
                    progress=sys.stderr.isatty(), executor=executor)
        if not store.runs_dir.exists():
            print(f"{name}/{profile}: no runs on disk under {store.root}, no report")
            continue
        refresh_reports(store, args.results_dir, print)
    return 0


def list_runs(name: str, profile: str, runs, store: RunStore, results_dir: Path, gpus,
              workers: int = 1) -> None:
    from gluon_resnet.estimate import bench_gflops, estimate_seconds, measured_rates
    from gluon_resnet.runner import plan

    device = "gpu" if (gpus if gpus is not None else gpu_count()) else "cpu"
    rates, gflops = measured_rates(results_dir), bench_gflops(results_dir)
    total = 0.0
    print(f"{name}/{profile}: {len(runs)} runs ({store.root})")
    for item in plan(store, runs):
        seconds, source = estimate_seconds(item.cfg, rates, gflops, device)
        todo = item.state != "done"
        total += seconds * (1 - item.epochs_done / item.cfg.epochs) if todo else 0
        print(f"  {item.cfg.run_id:<48} {item.state:<8} ~{seconds / 60:6.1f} min ({source})")
    print(f"  estimated time left: {total / 60:.1f} min on {device}")
    if workers > 1:  # runs are independent: the grid divides among the workers
        print(f"  with {workers} parallel workers: about {total / 60 / workers:.1f} min "
              "(less where the workers share CPU cores)")


if __name__ == "__main__":
    sys.exit(main())
