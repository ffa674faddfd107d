#!/usr/bin/env python
"""Train every run of an experiment grid that is not on disk yet, then write its report.

    python run_all.py                          # experiment `orderings`, profile auto
    python run_all.py --profile smoke          # seconds, to check the set-up
    python run_all.py --list                   # what would run, with estimated times
    python run_all.py --report-only            # rebuild report.md from the run files
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import gluon_resnet  # noqa: F401  (threads + allocator set-up before MXNet loads)
from experiments import EXPERIMENTS
from gluon_resnet.experiment import PROFILES, expand
from gluon_resnet.nets import ARCHS
from gluon_resnet.orderings import ORDERINGS
from gluon_resnet.store import RunStore


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
    return p


def gpu_count() -> int:
    import mxnet as mx

    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:
        return 0


def resolve_profile(profile: str, gpus: list[int] | None) -> tuple[str, str]:
    """The profile to use and a sentence saying why."""
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
    experiments = tuple(EXPERIMENTS) if "all" in args.experiment else args.experiment
    profile, device_note = resolve_profile(args.profile, gpus)
    print(device_note, flush=True)
    axes = {k: v for k, v in (("ordering", args.orderings), ("arch", args.archs),
                              ("seed", args.seeds)) if v}
    overrides = {"epochs": args.epochs} if args.epochs else {}
    for name in experiments:
        exp = EXPERIMENTS[name]
        store = RunStore(args.results_dir / name / profile)
        runs = expand(exp, profile, axes=axes, overrides=overrides)
        if args.list:
            list_runs(exp.name, profile, runs, store, args.results_dir, gpus)
            continue
        from gluon_resnet.runner import refresh_reports, run_all, write_experiment_info

        if not args.report_only:
            write_experiment_info(store, exp, profile, command_line(args, name, profile), device_note)
            print(f"{name}/{profile}: {len(runs)} runs -> {store.root}", flush=True)
            run_all(exp, profile, runs, store, results_dir=args.results_dir,
                    data_dir=args.data_dir, gpus=gpus, fresh=args.fresh,
                    progress=sys.stderr.isatty())
        if not store.runs_dir.exists():
            print(f"{name}/{profile}: no runs on disk under {store.root}, no report")
            continue
        refresh_reports(store, args.results_dir, print)
    return 0


def list_runs(name: str, profile: str, runs, store: RunStore, results_dir: Path, gpus) -> None:
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


if __name__ == "__main__":
    sys.exit(main())
