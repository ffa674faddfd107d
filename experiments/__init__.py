"""Experiment definitions (data, not code paths): name -> Experiment; and `find`, which also
loads an experiment from a TOML file (see README.md here for the format)."""
from gluon_resnet.names import pick
from gluon_resnet.runs.experiment import Experiment
from gluon_resnet.runs.experiment_file import load_experiment_file

from . import depth, orderings, orderings_confirm, seed_notebook, seed_notebook_final

EXPERIMENTS = {
    e.name: e for e in (orderings.EXPERIMENT, seed_notebook.EXPERIMENT, depth.EXPERIMENT,
                        orderings_confirm.EXPERIMENT, seed_notebook_final.EXPERIMENT)
}


def find(name: str) -> Experiment:
    """A built-in experiment by name, or the one a .toml file defines; ValueError otherwise."""
    if name.endswith(".toml"):
        return load_experiment_file(name, reserved=EXPERIMENTS)
    return pick(EXPERIMENTS, name, "experiment", extra=", all, or a path to a .toml file")
