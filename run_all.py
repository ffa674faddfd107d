#!/usr/bin/env python
"""The command line: parse (gluon_resnet/runs/cli.py), validate, dispatch. `--help` lists
every option with examples."""
from __future__ import annotations

import argparse
import shlex
import signal
import sys
from dataclasses import replace
from pathlib import Path

import gluon_resnet  # noqa: F401  (threads + allocator set-up before MXNet loads)
from gluon_resnet import runtime  # noqa: E402
from experiments import EXPERIMENTS, find  # noqa: E402
from gluon_resnet.idx import DatasetError  # noqa: E402
from gluon_resnet.analysis.decide import MAX_CAP  # noqa: E402
from gluon_resnet.analysis.plan_lock import PlanChanged  # noqa: E402
from gluon_resnet.runs.cli import (RAY_FLAGS, STORAGE_HINTS, build_parser,  # noqa: E402
                                   storage_message)
from gluon_resnet.runs.executors import (ExecutorOptions, UsageError,  # noqa: E402
                                         executor_kind, gpu_count, make_executor)
from gluon_resnet.runs.executors.ray_executor import RayMissing  # noqa: E402  (Ray: lazily)
from gluon_resnet.runs.experiment import Experiment, expand  # noqa: E402
from gluon_resnet.runs.overrides import axes_of, overrides_of  # noqa: E402
from gluon_resnet.runs.plan import default_workers  # noqa: E402
from gluon_resnet.runs.runner import (resolve_profile, run_experiment,  # noqa: E402
                                      run_until_decided)
from gluon_resnet.runs.stop import stop_on_ctrl_c  # noqa: E402
from gluon_resnet.store import RunStore  # noqa: E402

ROOT = Path(__file__).resolve().parent
# Options that set a grid axis, and the --set/--grid field each would collide with.
AXIS_FLAGS = (("orderings", "ordering"), ("archs", "arch"), ("seeds", "seed"), ("epochs", "epochs"))


def check_flags(args: argparse.Namespace) -> None:
    """Contradictory or out-of-range flags: ValueError saying which."""
    if args.epochs is not None and args.epochs < 1:
        raise ValueError("--epochs must be >= 1")
    if args.max_seeds is not None and not args.until_decided:
        raise ValueError("--max-seeds caps --until-decided; add --until-decided")
    if args.until_decided and (args.seeds or args.report_only or args.list):
        raise ValueError("--until-decided chooses the seeds itself (0, 1, ... until decided): "
                         "not with --seeds, --list or --report-only")
    if args.max_seeds is not None and not 2 <= args.max_seeds <= MAX_CAP:
        raise ValueError(f"--max-seeds must be between 2 and {MAX_CAP} (the plan looks at "
                         f"3 seeds first by default), got {args.max_seeds}")
    results = Path(args.results_dir or ROOT / "results").expanduser()
    if results.exists() and not results.is_dir():
        raise ValueError(f"--results-dir {results} is a file, not a folder: name a folder "
                         "(it is created if missing)")
    args.results_dir = results


def check_gpus(gpus: list[int] | None, kind: str) -> None:
    """GPUs named with --gpus must exist here (Ray assigns its own: --gpus is refused there)."""
    if gpus is None or kind == "ray":
        return
    available = gpu_count()
    missing = [g for g in gpus if not 0 <= g < available]
    if missing:
        raise ValueError(f"--gpus {','.join(map(str, gpus))}: GPU {missing} not available, "
                         f"MXNet sees {available} GPU(s)" + (
                             " (the CPU build of mxnet sees none: make run GPU=1 installs the "
                             "CUDA build)" if available == 0 else ""))


def experiments_of(args: argparse.Namespace) -> dict[str, tuple[Experiment, str]]:
    """name -> (Experiment, how --experiment named it: a name or a .toml path)."""
    if not args.experiment:
        raise ValueError("--experiment needs a name or a .toml file")
    if "all" in args.experiment:
        return {name: (exp, name) for name, exp in EXPERIMENTS.items()}
    return {exp.name: (exp, given) for given in args.experiment for exp in [find(given)]}


def grid_of(args: argparse.Namespace) -> tuple[dict, dict, dict, dict]:
    """(axes, overrides) for expand(), and the --set / --grid fields for the command line."""
    sets, grids = overrides_of(args.set), axes_of(args.grid)
    for flag, field in AXIS_FLAGS:
        if getattr(args, flag) and (field in sets or field in grids):
            raise ValueError(f"--{flag} and --set/--grid {field}=... both set {field}: use one")
    if args.until_decided and "seed" in {**sets, **grids}:
        raise ValueError("--until-decided chooses the seeds itself (0, 1, ... until decided): "
                         "not with --set/--grid seed=...")
    both = sorted(set(sets) & set(grids))
    if both:
        raise ValueError(f"--set and --grid both set {both[0]}: use one")
    axes = {k: v for k, v in (("ordering", args.orderings), ("arch", args.archs),
                              ("seed", args.seeds)) if v}
    # a --set field is an axis of one value: it replaces the experiment's axis of that name
    axes.update({k: (v,) for k, v in sets.items()}, **grids)
    overrides = {"epochs": args.epochs} if args.epochs else {}
    return axes, overrides, sets, grids


def validate(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """Every usage mistake ends here, with exit status 2 and what was expected."""
    try:
        gpus = [int(g) for g in args.gpus.split(",")] if args.gpus else None
    except ValueError:
        parser.error(f"bad --gpus {args.gpus!r}: use GPU ids like 0 or 0,1")
    try:
        check_flags(args)
        experiments = experiments_of(args)
        axes, overrides, sets, grids = grid_of(args)
    except ValueError as e:
        parser.error(str(e))
    options = ExecutorOptions(
        kind=args.executor, gpus=gpus, parallel=args.parallel, workers=args.workers,
        progress=sys.stderr.isatty(), ray={k: getattr(args, k if k == "checkpoint_uri"
                                               else f"ray_{k}") for k in RAY_FLAGS})
    try:
        check_gpus(gpus, executor_kind(options))
    except (UsageError, ValueError) as e:
        parser.error(str(e))
    return experiments, axes, overrides, sets, grids, options


def use_both_cores(args, options, experiments, axes, overrides, parser):
    """No executor chosen on a CPU-only machine: worker processes when that is faster for
    this grid (runs/plan.py, default_workers), else the sequential executor."""
    if options.gpus is not None or gpu_count():
        return options, "sequential"
    profile, _ = resolve_profile(args.profile, None, None)
    try:
        runs = {n: expand(e, profile, axes=_seeds_to_plan(args, e, profile, axes),
                          overrides=overrides)
                for n, (e, _) in experiments.items()}
    except ValueError as e:
        parser.error(str(e))
    cores = runtime.usable_cores() if not runtime.USER_THREADS else 1
    workers = min(default_workers(r, RunStore(args.results_dir / n / profile), args.results_dir,
                                  cores) for n, r in runs.items())
    if workers < 2:
        return options, "sequential"
    print(f"{workers} worker processes x 1 thread: faster than one process for runs of "
          "minutes on this CPU (--executor sequential keeps one)", flush=True)
    return replace(options, workers=workers), "local"


def _seeds_to_plan(args, exp, profile: str, axes: dict) -> dict:
    """--until-decided trains seeds 0, 1, ... up to its cap, not the profile's seeds: the
    choice of executor must see those runs (else every profile seed is done and it stays
    sequential)."""
    if not args.until_decided:
        return axes
    cap = args.max_seeds or exp.analysis_for(profile).max_seeds
    return {**axes, "seed": tuple(range(cap))}


# Options of a --list call that the --until-decided call continuing its folder keeps.
KEPT_OPTIONS = ("--orderings", "--archs", "--epochs", "--set", "--grid", "--data-dir",
                "--results-dir")


def continue_command(argv: list[str] | None, source: str, profile: str) -> str:
    """`python run_all.py ... --until-decided` for this experiment's folder: the call's
    grid and folder options, its profile resolved (--max-seeds is added by the caller)."""
    words, given = ["python", "run_all.py", "--experiment", source, "--profile", profile], list(
        sys.argv[1:] if argv is None else argv)
    for i, word in enumerate(given):
        flag, eq, value = word.partition("=")
        if flag in KEPT_OPTIONS:
            words += [flag, value] if eq else given[i:i + 2]
    return shlex.join(words + ["--until-decided"])


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 all well, 1 a run failed or a file could not be written, 2 a usage
    mistake, 130 interrupted (everything finished so far is kept and resumes)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `run_all.py --list | head`: end quietly
    stop_on_ctrl_c()  # the sequential executor trains here: a Ctrl-C must not be lost
    parser = build_parser(tuple(EXPERIMENTS))
    args = parser.parse_args(argv)
    experiments, axes, overrides, sets, grids, options = validate(args, parser)
    kind = executor_kind(options)
    if kind == "sequential" and options.kind is None and not args.report_only:
        options, kind = use_both_cores(args, options, experiments, axes, overrides, parser)
    # --list needs a local pool's size, never a Ray connection; --report-only needs neither.
    wanted = not args.report_only and (kind == "local" or not args.list)
    executor = None
    try:
        executor = make_executor(kind, options) if wanted else None
        profile, device_note = resolve_profile(args.profile, executor, options.gpus)
        try:
            grids_of = {n: expand(e, profile, axes=axes, overrides=overrides)
                        for n, (e, _) in experiments.items()}
        except ValueError as e:  # a name or value RunConfig rejects: a usage mistake
            parser.error(str(e))
        print(device_note, flush=True)
        ok = True
        for name, runs in grids_of.items():
            (exp, source), store = experiments[name], RunStore(args.results_dir / name / profile)
            common = dict(results_dir=args.results_dir, source=source, data_dir=args.data_dir,
                          fresh=args.fresh)
            if args.until_decided:
                ok &= run_until_decided(exp, profile, store, executor, max_seeds=args.max_seeds,
                                        axes=axes,
                                        overrides=overrides, **common)[1]
            else:
                ok &= run_experiment(exp, profile, runs, store, executor=executor,
                                     list_only=args.list, report_only=args.report_only,
                                     until_decided=continue_command(argv, source, profile),
                                     **common)
        if not ok:
            print("error: some runs failed or a report could not be written (see above); "
                  "run the same command again to retry them", file=sys.stderr)
        return 0 if ok else 1
    except PlanChanged as e:  # a folder's locked analysis: the message says how to go on
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RayMissing as e:  # the message says how to install it
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ConnectionError as e:  # ray.init could not reach the cluster
        print(f"error: cannot connect to the Ray cluster ({args.ray_address or 'RAY_ADDRESS'}): "
              f"{e}", file=sys.stderr)
        return 1
    except DatasetError as e:  # missing or broken Fashion-MNIST: the message says how to fix it
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno not in STORAGE_HINTS:
            raise
        print(storage_message(e), file=sys.stderr)  # the results folder: full, read-only, ...
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: every finished epoch is kept; run the same command again to "
              "resume", file=sys.stderr)
        return 130
    finally:
        if executor is not None and hasattr(executor, "close"):
            executor.close()


if __name__ == "__main__":
    sys.exit(main())
