"""Run an experiment from Python, the one path `run_all.py` takes too: declare it (an
`Experiment`, or a dict or TOML text in the experiment-file format, or a .toml file), train
what its results folder lacks (resuming what was interrupted; `until_decided` adds seeds under
the plan locked at the first look), and read back the report's own tables.

    from gluon_resnet.runs import api
    results = api.run("experiments/lr_ablation.toml", profile="smoke")
    results.summary, results.per_seed, results.verdicts, results.figures

A usage mistake raises `ExperimentError` before anything is written (the command line exits
with status 2), `Refused` (a subclass) where the folder's locked plan or a missing Ray stops a
well-formed call; a stop (Ctrl-C, a kernel's interrupt, SIGTERM) raises `Interrupted`, with
every finished epoch kept: the same call resumes. Examples: docs/layout.md.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from ..analysis.plan import PlanChanged
from ..config import check_field, coerce
from ..names import pick
from ..store import RunStore
from ._watch import counting, stoppable
from .executors import RAY_KEYS, ExecutorOptions, executor_kind, gpu_count, make_executor
from .executors.ray_executor import RayMissing
from .experiment import PROFILES, Experiment, expand
from .experiment_file import experiment_from_dict, load_experiment_file, load_experiment_text
from .results import Results

__all__ = ["ExperimentError", "Refused", "Interrupted", "Declared", "Results", "load", "run",
           "run_many"]

ROOT = Path(__file__).resolve().parents[2]  # the checkout: results/ by default
ACTIONS = ("train", "list", "report")
Spec = Union[Experiment, Mapping[str, Any], str, os.PathLike]


class ExperimentError(ValueError):
    """A usage mistake (a definition, name, value or option that cannot run), raised before
    anything is written; the message says what was expected."""


class Refused(ExperimentError):
    """A well-formed call the folder or the machine refuses: the folder locked another plan
    at its first look, or Ray is asked for and not installed; the message says how to go on."""


class Interrupted(KeyboardInterrupt):
    """Stopped by Ctrl-C, a kernel's interrupt or SIGTERM: every finished epoch is kept, and
    the same call resumes."""


@dataclass(frozen=True)
class Declared:
    """An experiment, how a command names it (`source`: a built-in name or a .toml path, for
    the report's command to reproduce), and the TOML text it was declared with, if any (saved
    beside its results as experiment.toml, which becomes its source)."""

    experiment: Experiment
    source: str
    text: Optional[str] = None


def load(spec: Spec, reserved: Sequence[str] = ()) -> Experiment:
    """The Experiment `spec` declares: an Experiment as is; a dict or TOML text in the
    experiment-file format (experiments/README.md); a path to a .toml file."""
    return _declare(spec, reserved).experiment


def _declare(spec: Spec, reserved: Sequence[str] = ()) -> Declared:
    """`spec` as a Declared; ExperimentError where it is not an experiment."""
    try:
        if isinstance(spec, Experiment):
            return Declared(spec, spec.name)
        if isinstance(spec, Mapping):
            return Declared(experiment_from_dict(spec, "<dict>", reserved), str(spec.get("name")))
        if isinstance(spec, os.PathLike) or (isinstance(spec, str) and "\n" not in spec
                                             and spec.strip().endswith(".toml")):
            return Declared(load_experiment_file(Path(spec).expanduser(), reserved), str(spec))
        if isinstance(spec, str) and "=" in spec:
            exp = load_experiment_text(spec, "<TOML text>", reserved)
            return Declared(exp, exp.name, spec)
    except ValueError as e:
        raise ExperimentError(str(e)) from None
    raise ExperimentError(
        f"{spec!r} is not an experiment: give an Experiment, a dict or TOML text with the keys "
        "of an experiment file (experiments/README.md), or a path to a .toml file (a built-in "
        "one is an object: `from experiments import EXPERIMENTS; EXPERIMENTS['orderings']`)")


def run(experiment: Spec, *, profile: str = "auto", results_dir: Union[str, Path, None] = None,
        until_decided: bool = False, max_seeds: Optional[int] = None,
        axes: Optional[Mapping[str, Sequence]] = None,
        overrides: Optional[Mapping[str, Any]] = None, fresh: bool = False,
        data_dir: Optional[str] = None, executor: Optional[str] = None,
        workers: Optional[int] = None, parallel: bool = False,
        gpus: Optional[Sequence[int]] = None, ray: Optional[Mapping[str, Any]] = None,
        progress: bool = True) -> Results:
    """Train what `experiment`'s results folder lacks under `profile` and rebuild its report;
    the folder's Results. `axes` replace grid axes ({"seed": range(3)}, like --seeds/--grid),
    `overrides` set fields for every run (like --set); `until_decided` trains seeds 0, 1, ...
    until every comparison has a verdict or `max_seeds`; executor/workers/parallel/gpus/ray
    as --executor/--workers/--parallel/--gpus/--ray-*; `progress`: a bar of finished runs."""
    if max_seeds is not None and not until_decided:
        raise ExperimentError("max_seeds caps until_decided: pass until_decided=True")
    try:  # each value as its field's type (momentum=0 is 0.0: the same run id as 0.0)
        axes = {k: tuple(coerce(check_field(k), v) for v in vals)
                for k, vals in (axes or {}).items()}
        overrides = {k: coerce(check_field(k), v) for k, v in (overrides or {}).items()}
    except ValueError as e:
        raise ExperimentError(str(e)) from None
    both = sorted(set(axes) & set(overrides or {}))
    if both:
        raise ExperimentError(f"axes and overrides both set {both[0]}: use one")
    if until_decided and ("seed" in axes or "seed" in (overrides or {})):
        raise ExperimentError("until_decided chooses the seeds itself (0, 1, ... until "
                              "decided): not with a seed axis or override")
    for key in ray or {}:  # the command line's --ray-* options, by their RayOptions names
        pick(RAY_KEYS, key, "ray option", error=ExperimentError)
    # an override is an axis of one value: it replaces the experiment's axis of that name
    axes.update({k: (v,) for k, v in (overrides or {}).items()})
    options = ExecutorOptions(kind=executor, gpus=list(gpus) if gpus is not None else None,
                              parallel=parallel, workers=workers, progress=False,
                              ray=dict(ray or {}))
    declared = _declare(experiment)
    (results,) = run_many({declared.experiment.name: declared}, profile=profile,
                          results_dir=results_dir, axes=axes, until_decided=until_decided,
                          max_seeds=max_seeds, fresh=fresh, data_dir=data_dir, options=options,
                          progress=progress)
    return results


def run_many(experiments: Mapping[str, Declared], *, profile: str = "auto",
             results_dir: Union[str, Path, None] = None,
             axes: Optional[Mapping[str, Sequence]] = None,
             overrides: Optional[Mapping[str, Any]] = None, action: str = "train",
             until_decided: bool = False, max_seeds: Optional[int] = None, fresh: bool = False,
             data_dir: Optional[str] = None, options: ExecutorOptions = ExecutorOptions(),
             progress: bool = False,
             continue_command: Optional[Callable[[str, str], str]] = None) -> list[Results]:
    """Each experiment x profile, as run_all.py does it: `action` "train" (train what is
    missing, or `until_decided`), "list" (what would run, its cost, the seeds needed) or
    "report" (rebuild the reports). Chooses the executor where `options` name none, resolves
    `profile` ("auto": full with GPUs), expands every grid before anything is written.
    `continue_command(source, profile)`: the call that continues a folder, for "list"."""
    from .choose import choose_executor
    from .runner import resolve_profile

    results_dir = Path(results_dir or ROOT / "results").expanduser()
    if results_dir.exists() and not results_dir.is_dir():
        raise ExperimentError(f"results folder {results_dir} is a file, not a folder: name a "
                              "folder (it is created if missing)")
    exps = {n: d.experiment for n, d in experiments.items()}
    executor = None
    with stoppable():
        try:
            try:
                pick(("auto", *PROFILES), profile, "profile")
                pick(ACTIONS, action, "action")
                kind = executor_kind(options)
                check_gpus(options.gpus, kind)
                if kind == "sequential" and options.kind is None and action == "train":
                    options, kind = choose_executor(options, exps, profile, results_dir,
                                                    axes or {}, overrides or {}, until_decided,
                                                    max_seeds)
                # --list needs a local pool's size, never a Ray connection; a report neither
                wanted = action != "report" and (kind == "local" or action != "list")
                executor = make_executor(kind, options) if wanted else None
                profile, device_note = resolve_profile(profile, executor, options.gpus)
                grids = {n: expand(e, profile, axes=axes, overrides=overrides)
                         for n, e in exps.items()}
            except ValueError as e:  # a name or value the definitions or RunConfig reject
                raise ExperimentError(str(e)) from None
            print(device_note, flush=True)
            if progress and executor is not None:
                executor = counting(executor)
            return [_one(experiments[n], profile, runs, results_dir, executor, action=action,
                         until_decided=until_decided, max_seeds=max_seeds, axes=axes,
                         overrides=overrides, fresh=fresh, data_dir=data_dir,
                         continue_command=continue_command) for n, runs in grids.items()]
        except (PlanChanged, RayMissing) as e:  # a locked plan, a missing Ray: what to do
            raise Refused(str(e)) from None
        except KeyboardInterrupt:
            raise Interrupted("every finished epoch is kept; run the same call again to "
                              "resume") from None
        finally:
            if executor is not None and hasattr(executor, "close"):
                executor.close()


def _one(declared: Declared, profile: str, runs: list, results_dir: Path, executor, *,
         action: str, until_decided: bool, max_seeds: Optional[int], axes, overrides,
         fresh: bool, data_dir: Optional[str],
         continue_command: Optional[Callable[[str, str], str]]) -> Results:
    """One experiment x profile through the runner; its Results."""
    from .runner import planned_analysis, run_experiment, run_until_decided

    exp = declared.experiment
    store = RunStore(results_dir / exp.name / profile)
    source = declared.source
    if declared.text is not None:  # declared in code: its file beside the runs reproduces it
        if action == "train":  # a plan locked with other settings refuses before the file changes
            planned_analysis(exp, profile, store, max_seeds if until_decided else None)
        source = _save_text(declared.text, results_dir / exp.name / "experiment.toml",
                            write=action == "train")
    common = dict(results_dir=results_dir, source=source, data_dir=data_dir, fresh=fresh)
    if until_decided and action == "train":
        ok = run_until_decided(exp, profile, store, executor, max_seeds=max_seeds, axes=axes,
                               overrides=overrides, **common)[1]
    else:
        command = (continue_command or _continue)(source, profile)
        ok = run_experiment(exp, profile, runs, store, executor=executor,
                            list_only=action == "list", report_only=action == "report",
                            until_decided=command, **common)
    return Results(exp.name, profile, store.root, ok)


def _save_text(text: str, path: Path, write: bool) -> str:
    """Write the TOML text to `path` (when it changed) and return the path as a command
    names it: relative to the checkout when inside it, so a committed report names no
    machine's folders."""
    if write and (not path.exists() or path.read_text() != text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _continue(source: str, profile: str) -> str:
    """The command that continues a folder with --until-decided."""
    return shlex.join(["python", "run_all.py", "--experiment", source, "--profile", profile,
                       "--until-decided"])


def check_gpus(gpus: Optional[list[int]], kind: str) -> None:
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
