"""Experiment definitions (data, not code paths): name -> Experiment."""
from . import depth, orderings, seed_notebook

EXPERIMENTS = {
    e.name: e for e in (orderings.EXPERIMENT, seed_notebook.EXPERIMENT, depth.EXPERIMENT)
}
