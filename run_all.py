#!/usr/bin/env python
"""The command line: parse (gluon_resnet/runs/cli.py), validate, then the Python API
(gluon_resnet/runs/api.py, `run_many`) does the rest. `--help` lists every option with
examples."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import gluon_resnet  # noqa: F401  (threads + allocator set-up before MXNet loads)
from experiments import EXPERIMENTS, find  # noqa: E402
from gluon_resnet.idx import DatasetError  # noqa: E402
from gluon_resnet.runs.api import (Declared, ExperimentError, Interrupted,  # noqa: E402
                                   Refused, run_many)
from gluon_resnet.runs.cli import (STORAGE_HINTS, build_parser, check_flags,  # noqa: E402
                                   continue_command, grid_of, storage_message)
from gluon_resnet.runs.executors import RAY_KEYS, ExecutorOptions  # noqa: E402

ROOT = Path(__file__).resolve().parent


def experiments_of(args: argparse.Namespace) -> dict[str, Declared]:
    """name -> the experiment, with how --experiment named it (a name or a .toml path)."""
    if not args.experiment:
        raise ValueError("--experiment needs a name or a .toml file")
    if "all" in args.experiment:
        return {name: Declared(exp, name) for name, exp in EXPERIMENTS.items()}
    return {exp.name: Declared(exp, given) for given in args.experiment for exp in [find(given)]}


def validate(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The flags' own mistakes end here, with exit status 2 and what was expected (names and
    values the definitions reject: gluon_resnet.runs.api, mapped the same way in main)."""
    try:
        gpus = [int(g) for g in args.gpus.split(",")] if args.gpus else None
    except ValueError:
        parser.error(f"bad --gpus {args.gpus!r}: use GPU ids like 0 or 0,1")
    try:
        check_flags(args, ROOT / "results")
        experiments = experiments_of(args)
        axes, overrides, _, _ = grid_of(args)
    except ValueError as e:
        parser.error(str(e))
    options = ExecutorOptions(
        kind=args.executor, gpus=gpus, parallel=args.parallel, workers=args.workers,
        progress=sys.stderr.isatty(), ray={k: getattr(args, k if k == "checkpoint_uri"
                                               else f"ray_{k}") for k in RAY_KEYS})
    return experiments, axes, overrides, options


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 all well, 1 a run failed or a file could not be written, 2 a usage
    mistake, 130 interrupted (everything finished so far is kept and resumes)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `run_all.py --list | head`: end quietly
    parser = build_parser(tuple(EXPERIMENTS))
    args = parser.parse_args(argv)
    experiments, axes, overrides, options = validate(args, parser)
    action = "list" if args.list else "report" if args.report_only else "train"
    try:
        results = run_many(
            experiments, profile=args.profile, results_dir=args.results_dir, axes=axes,
            overrides=overrides, action=action, until_decided=args.until_decided,
            max_seeds=args.max_seeds, fresh=args.fresh, data_dir=args.data_dir,
            options=options,
            continue_command=lambda source, profile: continue_command(argv, source, profile))
        ok = all(r.ok for r in results)
        if not ok:
            print("error: some runs failed or a report could not be written (see above); "
                  "run the same command again to retry them", file=sys.stderr)
        return 0 if ok else 1
    except Refused as e:  # a folder's locked plan, a missing Ray: the message says how to go on
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ExperimentError as e:  # a name or value the definitions reject
        parser.error(str(e))
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
    except Interrupted:
        print("\ninterrupted: every finished epoch is kept; run the same command again to "
              "resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
