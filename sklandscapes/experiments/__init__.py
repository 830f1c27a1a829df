"""The paper's two experiments as plain functions, resumable and scalable.

An experiment is described by an :class:`ExperimentConfig` (everything that
changes the results) and run by :func:`run_experiment` with runtime options
(jobs, device, Dask) that do not. Every expensive result is written to the
output folder as soon as it exists: the training snapshots and log, then the
persistence diagrams of every (threshold, network, input subsample). A run that
is interrupted continues with ``resume=True`` and recomputes nothing stored.

Stages: data -> train the networks at once with threshold snapshots ->
activations -> normalization -> Rips persistence -> landscapes -> averages per
(threshold, layer), norms per layer, the 2-D curve projection and pairwise
permutation tests across thresholds -> ``results.npz`` and ``landscapes.npy``
(read back by :func:`load_results`), figures and a report. The landscape
vectors are written and read in chunks, never held all at once.
"""

from sklandscapes.experiments._config import (
    EXPERIMENTS,
    PRESETS,
    ExperimentConfig,
    ExperimentError,
    make_config,
)
from sklandscapes.experiments._run import ExperimentResult, run_experiment
from sklandscapes.experiments._vectors import load_results

# Public names say where users import them from (tracebacks, docs, pickles).
for _public in (
    ExperimentConfig,
    ExperimentError,
    ExperimentResult,
    load_results,
    make_config,
    run_experiment,
):
    _public.__module__ = __name__
del _public

__all__ = [
    "EXPERIMENTS",
    "PRESETS",
    "ExperimentConfig",
    "ExperimentError",
    "ExperimentResult",
    "load_results",
    "make_config",
    "run_experiment",
]
