"""The command line's options (run_all.py): their definitions, help with examples, parsing
of seeds and comma lists, and the command that reproduces a grid. Validation of names and
values happens where they are used (RunConfig, Experiment, the executors)."""
from __future__ import annotations

import argparse
import errno
import shlex
import sys
import textwrap
from pathlib import Path

from ..analysis.declared import MAX_CAP
from ..config import FIELDS
from .executors import KINDS
from .experiment import PROFILES
from .overrides import axes_of, overrides_of

USAGE = """Train every run of an experiment grid that is not on disk yet, then write its report.

    python run_all.py                          # experiment `orderings`, profile auto
    python run_all.py --profile smoke          # seconds, to check the set-up
    python run_all.py --list                   # what would run, estimated times, seeds needed
    python run_all.py --until-decided          # add seeds until every comparison has a verdict
    python run_all.py --report-only            # rebuild report.md from the run files
    python run_all.py --gpus 0,1,2,3 --parallel   # independent runs side by side, one per GPU
    python run_all.py --workers 2              # ... or N processes on the CPU
    python run_all.py --executor ray --ray-address auto   # each run a task on a Ray cluster
"""

EXAMPLES = """ablations without editing the package:
    --set lr=0.1 --set momentum=0.9            # any RunConfig field, for every run of the grid
    --set final_bn_relu=false --set augment=true
    --grid momentum=0,0.9 --grid width=0.25,0.5   # any field as an axis of the grid
    --grid lr_steps=[3],[3,6] --orderings conv_bn_relu,bn_relu_conv
    --experiment experiments/lr_ablation.toml  # an experiment defined in a TOML file
    --experiment ~/my_ablation.toml --profile smoke --list

Fields: {fields}.
Each run's id hashes its whole config, so overridden settings make new runs (and appear in
the report's "What was run" and its command to reproduce).
""".format(fields=textwrap.fill(", ".join(FIELDS), 90, subsequent_indent=""))

MAX_SEEDS = 1000  # more is a typo, not an experiment: it would plan thousands of runs


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0-4' or '0,2,7' or '0-2,9'."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            lo, hi = int(lo), int(hi or lo)
            if hi < lo:
                raise argparse.ArgumentTypeError(
                    f"bad seeds {text!r}: reversed range {part}, write {hi}-{lo}")
            if hi - lo >= MAX_SEEDS:
                raise argparse.ArgumentTypeError(
                    f"bad seeds {text!r}: {hi - lo + 1:,} seeds in {part}; at most {MAX_SEEDS:,} "
                    "(a typo? a grid of 5 orderings would plan "
                    f"{5 * (hi - lo + 1):,} runs)")
            seeds.extend(range(lo, hi + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad seeds {text!r}: use a range like 0-4, a list like 0,2,7, or both") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"bad seeds {text!r}: seeds are integers >= 0")
    if len(set(seeds)) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"bad seeds {text!r}: at most {MAX_SEEDS:,} seeds")
    return tuple(dict.fromkeys(seeds))


def comma_list(text: str) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'); the names are checked where they are used (RunConfig)."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def build_parser(experiments: tuple[str, ...]) -> argparse.ArgumentParser:
    """The options in groups, as a reader looks for them: what to run, the grid, what to do
    with it, where files live, and who trains."""
    p = argparse.ArgumentParser(description=USAGE, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to run")
    what.add_argument("--experiment", default=("orderings",), type=comma_list,
                      help=f"comma-separated, or all: {', '.join(experiments)} (default "
                           "orderings), or a path to an experiment .toml file")
    what.add_argument("--profile", default="auto", choices=("auto", *PROFILES),
                      help="auto (default): full with a GPU, quick on a CPU")
    what.add_argument("--orderings", type=comma_list, help="subset of the orderings, e.g. a,b")
    what.add_argument("--archs", type=comma_list, help="networks (rows of gluon_resnet.ARCHS)")
    what.add_argument("--seeds", type=parse_seeds,
                      help="e.g. 0-9 or 0,3,5 (replaces the grid's seeds)")
    what.add_argument("--epochs", type=int, help="replace the profile's number of epochs")
    grid = p.add_argument_group("the grid (ablations without editing the package)")
    grid.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="override a config field for every run, e.g. --set lr=0.1 "
                           "(repeatable)")
    grid.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                      help="make a config field an axis of the grid, e.g. --grid "
                           "momentum=0,0.9")
    do = p.add_argument_group("what to do (default: train what is not on disk, then report)")
    do.add_argument("--list", action="store_true",
                    help="show the runs, their estimated time and the seeds each comparison "
                         "needs")
    do.add_argument("--report-only", action="store_true",
                    help="rebuild the reports from disk, train nothing")
    do.add_argument("--until-decided", action="store_true",
                    help="train one seed of every group per round (0, 1, ...) until every "
                         "comparison with the baseline has a verdict, or --max-seeds")
    do.add_argument("--max-seeds", type=int, help="cap of --until-decided (default: the "
                    "folder's locked cap, else the experiment's declared one)")
    do.add_argument("--fresh", action="store_true",
                    help="delete these runs' records and checkpoints first")
    files = p.add_argument_group("storage")
    files.add_argument("--data-dir",
                       help="folder with the four Fashion-MNIST IDX files (.gz or not)")
    files.add_argument("--results-dir", help="default: results/ in this checkout")
    g = p.add_argument_group("who trains (default: one run after another, in this process)")
    g.add_argument("--gpus", help="GPU ids, e.g. 0 or 0,1 (data-parallel); default: all MXNet "
                   "sees")
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


STORAGE_HINTS = {
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is exhausted: free some space",
    errno.EROFS: "the folder is on a read-only file system: choose another with --results-dir",
    errno.EACCES: "no permission to write there: choose another folder with --results-dir",
    errno.EPERM: "no permission to write there: choose another folder with --results-dir",
    errno.ENOTDIR: "a path in it is a file, not a folder: choose another with --results-dir",
}


def storage_message(e: OSError) -> str:
    """One paragraph for a results folder that cannot be written: what, why, what to do."""
    where = f" {e.filename}" if e.filename else ""
    hint = STORAGE_HINTS.get(e.errno, "check the folder")
    return (f"error: cannot write{where}: {e.strerror or e}; {hint}. Every run's record on "
            "disk is intact up to its last finished epoch: run the same command again to "
            "resume.")


# ---- checks of the flags, and what they ask of the grid ----

# Options that set a grid axis, and the --set/--grid field each would collide with.
AXIS_FLAGS = (("orderings", "ordering"), ("archs", "arch"), ("seeds", "seed"), ("epochs", "epochs"))


def check_flags(args: argparse.Namespace, default_results: Path) -> None:
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
    results = Path(args.results_dir or default_results).expanduser()
    if results.exists() and not results.is_dir():
        raise ValueError(f"--results-dir {results} is a file, not a folder: name a folder "
                         "(it is created if missing)")
    args.results_dir = results


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


