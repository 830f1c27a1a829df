"""What a run writes for people: results.npz, the figures and report.md."""

import json

import numpy as np

from sklandscapes._io import atomic_write
from sklandscapes.stats import landscape_curve_projection


def save_results(result):
    arrays = dict(
        landscapes=result.landscapes,
        thresholds=result.thresholds,
        networks=result.networks,
        shape=np.asarray(result.shape),
        grid=result.grid,
        norms=result.norms,
        groups=result.test.groups_,
        pvalues=result.test.pvalues_,
        statistics=result.test.statistics_,
        config=np.asarray(json.dumps(result.config.to_dict())),
        observations=np.asarray(json.dumps(result.observations)),
        timings=np.asarray(json.dumps(result.timings)),
    )
    atomic_write(
        result.out / "results.npz", lambda handle: np.savez_compressed(handle, **arrays)
    )


def write_report(result, training, data):
    from sklandscapes.activations import ActivationExtractor
    from sklandscapes.plotting import (
        plot_activations,
        plot_complexity,
        plot_landscape_curves,
        plot_landscapes,
        plot_pvalues,
    )

    out, config = result.out, result.config
    figures = {}
    last = len(config.thresholds) - 1
    reached_last = np.flatnonzero(training.reached[:, last])
    if len(reached_last):
        network = training.snapshots[last][reached_last[0]]
        extractor = ActivationExtractor(inputs=data.batches[0], device="cpu")
        activations = extractor.transform([network])[0]
        labels = data.batch_labels[0]
        n_layers = activations.shape[0]
        layers = sorted({0, 1, n_layers // 2, n_layers - 1})
        figures["activations"] = plot_activations(activations, labels, layers=layers)
    groups = result.test.groups_
    shown = sorted({groups[0], groups[len(groups) // 2], groups[-1]})
    figures["landscapes"] = plot_landscapes(
        result.landscapes,
        result.thresholds,
        result.shape,
        grid=result.grid,
        groups=shown,
    )
    projection = landscape_curve_projection(
        result.landscapes, result.thresholds, result.shape, grid=result.grid
    )
    figures["curves"] = plot_landscape_curves(projection)
    figures["complexity"] = plot_complexity(result.norms, result.thresholds)
    figures["pvalues"] = plot_pvalues(result.test)
    for name, fig in figures.items():
        atomic_write(
            out / f"{name}.png",
            lambda handle, f=fig: f.savefig(handle, format="png", dpi=110),
        )
    text = _report_text(result, figures, projection, training).encode()
    atomic_write(out / "report.md", lambda handle: handle.write(text))


def _report_text(result, figures, projection, training):
    config, obs, test = result.config, result.observations, result.test
    reached = training.reached.sum(axis=0)
    lines = [
        f"# Activation landscapes: {config.experiment} ({config.preset} preset)",
        "",
        f"{config.n_networks} networks of widths {list(config.widths)}, snapshotted at "
        f"training accuracies {list(config.thresholds)}; {config.method} "
        f"normalization, homology in degree(s) {list(config.homology_dimensions)}"
        + (" (local homology)" if config.method == "local" else "")
        + f"; {config.n_landscapes} landscapes on {config.resolution} grid points.",
        "",
        "Networks that reached each threshold within "
        f"{config.max_epochs} epochs: "
        + ", ".join(
            f"{t}: {n}/{config.n_networks}" for t, n in zip(config.thresholds, reached)
        )
        + ".",
        "",
        "## The paper's observations, checked",
        "",
    ]
    if config.experiment == "synthetic":
        lines.append(
            f"1. **Holes of the input.** The input batch has "
            f"{obs['input_h1_features']} long H1 bars (the nine-disks complement "
            "has nine holes); the first layers keep landscape norms "
            + ", ".join(f"{v:.3g}" for v in obs["first_layers_mean_norm"])
            + "."
        )
    else:
        lines.append(
            f"1. **Features of the input.** The input batch has "
            f"{obs['input_h1_features']} H1 bars that stand out; first-layer norms "
            + ", ".join(f"{v:.3g}" for v in obs["first_layers_mean_norm"])
            + "."
        )
    if obs["monotone_decreasing"]:
        lines.append(
            f"2. **Complexity across layers.** At threshold {np.max(test.groups_)} "
            "the mean norm decreases at every layer here (the paper reports it "
            "does not)."
        )
    else:
        lines.append(
            "2. **Complexity across layers is not monotonically decreasing**: at "
            f"threshold {np.max(test.groups_)} the mean norm increases at layer(s) "
            + ", ".join(map(str, obs["layers_where_complexity_increases"]))
            + "."
        )
    totals = obs["mean_total_norm_by_threshold"]
    lines.append(
        "3. **Complexity changes with training.** Mean total norm by threshold: "
        + ", ".join(f"{k}: {v:.3g}" for k, v in totals.items())
        + f"; {obs['share_of_significant_pairs']:.0%} of the pairs of thresholds "
        "differ at the 0.05 level."
    )
    lines += ["", "## Topological complexity per layer (mean landscape norm)", ""]
    n_layers = result.norms.shape[1]
    lines.append(
        "| threshold | " + " | ".join(f"layer {i}" for i in range(n_layers)) + " |"
    )
    lines.append("|---" * (n_layers + 1) + "|")
    for group in test.groups_:
        mean = result.norms[result.thresholds == group].mean(axis=0)
        lines.append(f"| {group} | " + " | ".join(f"{v:.3g}" for v in mean) + " |")
    lines += ["", f"## Permutation tests ({config.n_permutations} permutations)", ""]
    lines.append("| | " + " | ".join(str(g) for g in test.groups_) + " |")
    lines.append("|---" * (len(test.groups_) + 1) + "|")
    for i, group in enumerate(test.groups_):
        cells = [
            "—" if i == j else f"{test.pvalues_[i, j]:.3g}"
            for j in range(len(test.groups_))
        ]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    n_diagrams = len(result.thresholds) * result.shape[0] * result.shape[1]
    lines += [
        "",
        "## Where the time went (this call; stages stored earlier are only loaded)",
        "",
        "| stage | seconds |",
        "|---|---|",
    ]
    lines += [f"| {stage} | {secs:.1f} |" for stage, secs in result.timings.items()]
    lines.append(
        f"| persistence per diagram ({n_diagrams} diagrams) | "
        f"{result.timings['persistence'] / max(n_diagrams, 1):.3g} |"
    )
    lines += ["", "## Figures", ""]
    captions = {
        "activations": "Activations of some layers of one trained network (PCA).",
        "landscapes": "Average activation landscapes per threshold (rows) and layer.",
        "curves": "2-D projection of the activation landscape curves "
        f"(explained variance {projection.explained_variance_ratio.sum():.0%}).",
        "complexity": "Landscape norm per layer, one line per threshold.",
        "pvalues": "Pairwise permutation-test p-values between thresholds.",
    }
    for name in figures:
        lines += [f"![{captions[name]}]({name}.png)", "", captions[name], ""]
    return "\n".join(lines)
