#!/usr/bin/env python
"""Train every run of an experiment grid that is not on disk yet, then write its report.

    python run_all.py                          # experiment `orderings`, profile auto
    python run_all.py --profile smoke          # seconds, to check the set-up
    python run_all.py --list                   # what would run, estimated times, seeds needed
    python run_all.py --until-decided          # add seeds until every comparison has a verdict
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
from gluon_resnet.idx import DatasetError  # noqa: E402
from gluon_resnet.runs.executors import (KINDS, ExecutorOptions, UsageError,  # noqa: E402
                                         executor_kind, make_executor)
from gluon_resnet.runs.executors.ray_executor import RayMissing  # noqa: E402  (Ray: lazily)
from gluon_resnet.runs.experiment import PROFILES, expand  # noqa: E402
from gluon_resnet.runs.runner import (resolve_profile, run_experiment,  # noqa: E402
                                      run_until_decided)
from gluon_resnet.store import RunStore  # noqa: E402

RAY_FLAGS = ("address", "checkpoint_uri", "num_cpus", "num_gpus", "max_retries")


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


def comma_list(text: str) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'); the names are checked where they are used (RunConfig)."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=("orderings",), type=comma_list,
                   help=f"comma-separated, or all: {', '.join(EXPERIMENTS)} (default orderings)")
    p.add_argument("--profile", default="auto", choices=("auto", *PROFILES),
                   help="auto (default): full with a GPU, quick on a CPU")
    p.add_argument("--orderings", type=comma_list, help="subset of the orderings, e.g. a,b")
    p.add_argument("--archs", type=comma_list, help="networks (rows of gluon_resnet.ARCHS)")
    p.add_argument("--seeds", type=parse_seeds, help="e.g. 0-9 or 0,3,5 (replaces the grid's seeds)")
    p.add_argument("--epochs", type=int, help="replace the profile's number of epochs")
    p.add_argument("--data-dir", help="folder with the four Fashion-MNIST IDX files (.gz or not)")
    p.add_argument("--results-dir", default="results", type=Path, help="default: results")
    p.add_argument("--gpus", help="GPU ids, e.g. 0 or 0,1 (data-parallel); default: all MXNet sees")
    p.add_argument("--report-only", action="store_true", help="rebuild the reports from disk, train nothing")
    p.add_argument("--list", action="store_true", help="show the runs and their estimated time, train nothing")
    p.add_argument("--fresh", action="store_true", help="delete these runs' records and checkpoints first")
    p.add_argument("--until-decided", action="store_true",
                   help="train one seed of every group per round (0, 1, ...) until every "
                        "comparison with the baseline has a verdict, or --max-seeds")
    p.add_argument("--max-seeds", type=int, help="cap of --until-decided (default: the "
                   "experiment's declared cap, 10)")
    g = p.add_argument_group("running runs side by side (default: one after another, in this process)")
    g.add_argument("--executor", choices=KINDS, help="sequential (default), local (worker "
                   "processes on this machine: --parallel/--workers), or ray (tasks on a Ray cluster)")
    g.add_argument("--parallel", action="store_true", help="one worker process per GPU (--gpus, "
                   "default all MXNet sees); on a CPU-only machine, one per core (or --workers N)")
    g.add_argument("--workers", type=int, help="number of local worker processes (implies "
                   "--parallel); with GPUs, spread round-robin over them")
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
    return p


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
    if args.until_decided:
        parts += ["--until-decided"] + (["--max-seeds", str(args.max_seeds)] if args.max_seeds else [])
    return shlex.join(parts)


def validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ExecutorOptions:
    """Every usage mistake ends here, with exit status 2 and what was expected."""
    unknown = [e for e in args.experiment if e not in (*EXPERIMENTS, "all")]
    if unknown or not args.experiment:
        parser.error(f"unknown experiment {', '.join(unknown) or repr('')}; valid experiments: "
                     f"{', '.join((*EXPERIMENTS, 'all'))}")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.max_seeds is not None and not args.until_decided:
        parser.error("--max-seeds caps --until-decided; add --until-decided")
    if args.until_decided and (args.seeds or args.report_only or args.list):
        parser.error("--until-decided chooses the seeds itself (0, 1, ... until decided): "
                     "not with --seeds, --list or --report-only")
    if args.max_seeds is not None and args.max_seeds < 1:
        parser.error("--max-seeds must be >= 1")
    try:
        gpus = [int(g) for g in args.gpus.split(",")] if args.gpus else None
    except ValueError:
        parser.error(f"bad --gpus {args.gpus!r}: use GPU ids like 0 or 0,1")
    options = ExecutorOptions(
        kind=args.executor, gpus=gpus, parallel=args.parallel, workers=args.workers,
        progress=sys.stderr.isatty(), ray={k: getattr(args, k if k == "checkpoint_uri"
                                               else f"ray_{k}") for k in RAY_FLAGS})
    try:
        executor_kind(options)
    except UsageError as e:
        parser.error(str(e))
    return options


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = validate(args, parser)
    names = tuple(EXPERIMENTS) if "all" in args.experiment else args.experiment
    axes = {k: v for k, v in (("ordering", args.orderings), ("arch", args.archs),
                              ("seed", args.seeds)) if v}
    overrides = {"epochs": args.epochs} if args.epochs else {}
    kind = executor_kind(options)
    # --list needs a local pool's size, never a Ray connection; --report-only needs neither.
    wanted = not args.report_only and (kind == "local" or not args.list)
    try:
        executor = make_executor(kind, options) if wanted else None
    except RayMissing as e:  # the message says how to install it
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ConnectionError as e:  # ray.init could not reach the cluster
        print(f"error: cannot connect to the Ray cluster ({args.ray_address or 'RAY_ADDRESS'}): "
              f"{e}", file=sys.stderr)
        return 1
    try:
        profile, device_note = resolve_profile(args.profile, executor, options.gpus)
        try:
            grids = {n: expand(EXPERIMENTS[n], profile, axes=axes, overrides=overrides)
                     for n in names}
        except ValueError as e:  # a name or value RunConfig rejects: a usage mistake
            parser.error(str(e))
        print(device_note, flush=True)
        for name, runs in grids.items():
            exp, store = EXPERIMENTS[name], RunStore(args.results_dir / name / profile)
            common = dict(results_dir=args.results_dir, command=command_line(args, name, profile),
                          device_note=device_note, data_dir=args.data_dir, fresh=args.fresh)
            if args.until_decided:
                cap = args.max_seeds or exp.analysis_for(profile).max_seeds
                run_until_decided(exp, profile, store, executor, max_seeds=cap, axes=axes,
                                  overrides=overrides, **common)
                continue
            run_experiment(exp, profile, runs, store, executor=executor, list_only=args.list,
                           report_only=args.report_only, **common)
    except DatasetError as e:  # missing or broken Fashion-MNIST: the message says how to fix it
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if executor is not None and hasattr(executor, "close"):
            executor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
