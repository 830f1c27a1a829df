"""The paper's observations, checked with numbers from the run's results."""

import numpy as np

from sklandscapes.stats import holm_adjust, unit_means

# A threshold counts as reached when at least this share of the networks
# reached it; observations drawn from others are marked.
WELL_REACHED = 0.9
# Observation 1: an H1 bar of a globally normalized layer (diameter 1) longer
# than this is a hole. The nine holes of the input batch have bars of about
# 0.1; sampling noise on the lattice stays below 0.02.
HOLE_LENGTH = 0.05
HOLE_LAYERS = 4  # layers 0 (the input) to 3


def observations(config, diagrams, keys, training, norms, test, paper_test):
    """The paper's observations, checked with numbers from the report's tables.

    ``norms`` are the exact complexities (n_samples, n_layers). Every number
    returned is computed here from the diagrams, the norms and the tests.
    ``test`` has the network as the unit and gives the verdict of Table I;
    ``paper_test`` relabels single samples, as the paper did.
    """
    reached = training.reached.sum(axis=0) / config.n_networks
    well = [t for t, share in zip(config.thresholds, reached) if share >= WELL_REACHED]
    groups_of = np.asarray([config.thresholds[j] for j, _, _ in keys])
    networks = np.asarray([k for _, k, _ in keys])
    thresholds = np.unique(groups_of).tolist()
    means = {t: norms[groups_of == t].mean(axis=0) for t in thresholds}
    # 2. Complexity across layers, at every threshold.
    increases = {
        t: [int(i) + 1 for i in np.flatnonzero(np.diff(means[t]) > 0)]
        for t in thresholds
    }
    rises = {t: float(np.clip(np.diff(means[t]), 0, None).sum()) for t in thresholds}
    # 3. Complexity against training: totals per threshold and, network by
    # network, the first against the last well-reached threshold.
    totals = {t: float(norms[groups_of == t].sum(axis=1).mean()) for t in thresholds}
    first, last = (well[0], well[-1]) if len(well) >= 2 else (None, None)
    grows = None
    if first is not None:
        grows = _share_growing(norms.sum(axis=1), groups_of, networks, first, last)
    result = {
        "well_reached_thresholds": [float(t) for t in well],
        "reached_share": dict(zip(map(str, config.thresholds), map(float, reached))),
        "mean_complexity": {str(t): [float(v) for v in means[t]] for t in thresholds},
        "layers_where_complexity_increases": {str(t): increases[t] for t in thresholds},
        "thresholds_not_monotone": [float(t) for t in thresholds if increases[t]],
        "total_rise": {str(t): rises[t] for t in thresholds},
        "mean_total_complexity": {str(t): totals[t] for t in thresholds},
        "grows_first_last": [first, last] if first is not None else None,
        "share_of_networks_growing": grows,
        "untested_thresholds": [
            float(t) for t in thresholds if t not in test.groups_.tolist()
        ],
        **_significance(test),
        **{f"paper_{k}": v for k, v in _significance(paper_test).items()},
    }
    if config.experiment == "synthetic":
        result["holes"] = hole_counts(config, diagrams, groups_of, well)
    return result


def _share_growing(total, groups_of, networks, first, last):
    """Share of the networks whose total complexity, averaged over their input
    subsamples, is larger at ``last`` than at ``first``."""
    means, labels, units = unit_means(total[:, None], groups_of, networks)
    at = {
        t: dict(zip(units[labels == t], means[labels == t, 0])) for t in (first, last)
    }
    common = sorted(set(at[first]) & set(at[last]))
    return float(np.mean([at[last][k] > at[first][k] for k in common]))


def _significance(test):
    """Share of significant pairs, raw and Holm-corrected, and the largest p."""
    upper = np.triu_indices(len(test.groups_), 1)
    holm = holm_adjust(test.pvalues_[upper])
    return {
        "share_of_significant_pairs": float((test.pvalues_[upper] < 0.05).mean()),
        "share_of_significant_pairs_holm": float((holm < 0.05).mean()),
        "largest_pvalue": float(test.pvalues_[upper].max()),
        "largest_pvalue_holm": float(holm.max()),
    }


def hole_counts(config, diagrams, groups_of, well):
    """H1 bars longer than HOLE_LENGTH in the first layers, per network.

    At the highest well-reached threshold (the last threshold when none is):
    the mean count per layer and the share of networks with exactly nine.
    """
    h1 = list(config.homology_dimensions).index(1)
    threshold = well[-1] if well else config.thresholds[-1]
    rows = [d for d, t in zip(diagrams, groups_of) if t == threshold]
    n_layers = min(HOLE_LAYERS, rows[0].shape[0]) if rows else 0
    counts = np.array(
        [
            [
                int((np.diff(d[layer, h1], axis=1) > HOLE_LENGTH).sum())
                for layer in range(n_layers)
            ]
            for d in rows
        ]
    ).reshape(len(rows), n_layers)
    return {
        "threshold": float(threshold),
        "n_networks": len(rows),
        "mean": [float(v) for v in counts.mean(axis=0)],
        "share_exactly_nine": [float(v) for v in (counts == 9).mean(axis=0)],
    }


def ray_alignment(activations, labels, seed):
    """How well each class lies on a ray from the origin, per layer.

    The mean cosine between a point and the mean direction of its class
    (1: every class on one ray), and the same with shuffled labels as a
    baseline. Observation 5 of the paper (digits, ending layers).
    """
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(labels)

    def score(cloud, y):
        norms = np.linalg.norm(cloud, axis=1)
        units = cloud[norms > 0] / norms[norms > 0, None]
        y = y[norms > 0]
        total = 0.0
        for c in np.unique(y):
            mean = units[y == c].mean(axis=0)
            size = np.linalg.norm(mean)
            if size > 0:
                total += float((units[y == c] @ (mean / size)).sum())
        return total / max(len(y), 1)

    return (
        [score(cloud, labels) for cloud in activations],
        [score(cloud, shuffled) for cloud in activations],
    )
