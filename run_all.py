#!/usr/bin/env python
"""The command line: parse (gluon_resnet/runs/cli.py), validate, dispatch. `--help` lists
every option with examples."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import gluon_resnet  # noqa: F401  (threads + allocator set-up before MXNet loads)
from experiments import EXPERIMENTS, find  # noqa: E402
from gluon_resnet.analysis.plan import PlanChanged  # noqa: E402
from gluon_resnet.idx import DatasetError  # noqa: E402
from gluon_resnet.runs.choose import choose_executor  # noqa: E402
from gluon_resnet.runs.cli import (RAY_FLAGS, STORAGE_HINTS, build_parser,  # noqa: E402
                                   check_flags, check_gpus, continue_command, grid_of,
                                   storage_message)
from gluon_resnet.runs.executors import (ExecutorOptions, UsageError,  # noqa: E402
                                         executor_kind, make_executor)
from gluon_resnet.runs.executors.ray_executor import RayMissing  # noqa: E402  (Ray: lazily)
from gluon_resnet.runs.experiment import Experiment, expand  # noqa: E402
from gluon_resnet.runs.runner import (resolve_profile, run_experiment,  # noqa: E402
                                      run_until_decided)
from gluon_resnet.runs.stop import stop_on_ctrl_c  # noqa: E402
from gluon_resnet.store import RunStore  # noqa: E402

ROOT = Path(__file__).resolve().parent


def experiments_of(args: argparse.Namespace) -> dict[str, tuple[Experiment, str]]:
    """name -> (Experiment, how --experiment named it: a name or a .toml path)."""
    if not args.experiment:
        raise ValueError("--experiment needs a name or a .toml file")
    if "all" in args.experiment:
        return {name: (exp, name) for name, exp in EXPERIMENTS.items()}
    return {exp.name: (exp, given) for given in args.experiment for exp in [find(given)]}


def validate(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """Every usage mistake ends here, with exit status 2 and what was expected."""
    try:
        gpus = [int(g) for g in args.gpus.split(",")] if args.gpus else None
    except ValueError:
        parser.error(f"bad --gpus {args.gpus!r}: use GPU ids like 0 or 0,1")
    try:
        check_flags(args, ROOT / "results")
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


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 all well, 1 a run failed or a file could not be written, 2 a usage
    mistake, 130 interrupted (everything finished so far is kept and resumes)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `run_all.py --list | head`: end quietly
    stop_on_ctrl_c()  # the sequential executor trains here: a Ctrl-C must not be lost
    parser = build_parser(tuple(EXPERIMENTS))
    args = parser.parse_args(argv)
    experiments, axes, overrides, sets, grids, options = validate(args, parser)
    kind, executor = executor_kind(options), None
    try:
        if kind == "sequential" and options.kind is None and not args.report_only:
            try:
                options, kind = choose_executor(
                    options, {n: e for n, (e, _) in experiments.items()}, args.profile,
                    args.results_dir, axes, overrides, args.until_decided, args.max_seeds)
            except ValueError as e:  # a name or value the definitions reject
                parser.error(str(e))
        # --list needs a local pool's size, never a Ray connection; --report-only neither.
        wanted = not args.report_only and (kind == "local" or not args.list)
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
