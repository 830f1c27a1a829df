"""What a run writes for people: results.npz, the figures and report.md."""

import json

import numpy as np

from sklandscapes._io import atomic_write
from sklandscapes.stats import holm_adjust, landscape_curve_projection, unit_means


def save_results(result):
    # The landscape vectors are in landscapes.npy beside it, stored chunk by
    # chunk: in here they would have to be in memory whole.
    arrays = dict(
        thresholds=result.thresholds,
        networks=result.networks,
        shape=np.asarray(result.shape),
        grid=result.grid,
        norms=result.norms,
        groups=result.test.groups_,
        pvalues=result.test.pvalues_,
        statistics=result.test.statistics_,
        layer_pvalues=result.test.layer_pvalues_,
        layer_pvalues_adjusted=result.test.layer_pvalues_adjusted_,
        layer_statistics=result.test.layer_statistics_,
        unit=np.asarray("network"),
        paper_pvalues=result.paper_test.pvalues_,
        paper_statistics=result.paper_test.statistics_,
        config=np.asarray(json.dumps(result.config.to_dict())),
        observations=np.asarray(json.dumps(result.observations)),
        timings=np.asarray(json.dumps(result.timings)),
        timing_history=np.asarray(json.dumps(result.timing_history)),
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
        plot_layer_pvalues,
        plot_pvalues,
    )

    out, config = result.out, result.config
    figures = {}
    # Fig. 1 at the highest threshold that some network reached.
    reached = np.flatnonzero(training.reached.any(axis=0))
    if len(reached):
        top = reached[-1]
        network = next(n for n in training.snapshots[top] if n is not None)
        extractor = ActivationExtractor(inputs=data.batches[0], device="cpu")
        activations = extractor.transform([network])[0]
        labels = data.batch_labels[0]
        n_layers = activations.shape[0]
        layers = sorted({0, 1, n_layers // 2, n_layers - 1})
        figures["activations"] = plot_activations(activations, labels, layers=layers)
        result.observations["activations_threshold"] = float(config.thresholds[top])
    groups = result.test.groups_
    shown = sorted({groups[0], groups[len(groups) // 2], groups[-1]})
    # From the thresholds' means: the mean of one row is that row, so the
    # figures are those of the whole matrix, which is never loaded.
    labels = np.unique(result.thresholds)
    figures["landscapes"] = plot_landscapes(
        result.mean_landscapes,
        labels,
        result.shape,
        grid=result.grid,
        groups=shown,
    )
    projection = landscape_curve_projection(
        result.mean_landscapes, labels, result.shape, grid=result.grid
    )
    figures["curves"] = plot_landscape_curves(projection)
    figures["complexity"] = plot_complexity(
        result.norms,
        result.thresholds,
        groups=result.networks,
        band="confidence" if _banded(result) else None,
        random_state=config.seed,
    )
    figures["pvalues"] = plot_pvalues(result.test)
    figures["layers"] = plot_layer_pvalues(result.test)
    if getattr(training, "topology", None) is not None:
        figures["dynamics"] = _dynamics(out, training.topology)
    for name, fig in figures.items():
        atomic_write(
            out / f"{name}.png",
            lambda handle, f=fig: f.savefig(handle, format="png", dpi=110),
        )
    text = _report_text(result, figures, projection, training).encode()
    atomic_write(out / "report.md", lambda handle: handle.write(text))


def _num(value):
    """Every non-integer number of the report, in one format."""
    return f"{value:.3g}"


def _pvalue(value, floor):
    """A p-value; at the permutation test's floor, as an upper bound."""
    return f"≤ {floor:.1g}" if value <= floor * (1 + 1e-9) else _num(value)


def _report_text(result, figures, projection, training):
    config, test = result.config, result.test
    label = _labeler(result.observations["well_reached_thresholds"])
    thresholds = [float(t) for t in np.unique(result.thresholds)]
    floor = 1 / (config.n_permutations + 1)
    lines = _header_lines(result)
    lines += _training_lines(config, training, label)
    lines += ["", "## The paper's observations, checked", ""]
    lines += _observation_lines(config, result.observations, thresholds, label)
    lines += _complexity_lines(result, thresholds, label)
    lines += _grid_lines(result)
    lines += _test_lines(result, label, floor)
    lines += _layer_lines(result, [float(t) for t in test.groups_], label, floor)
    lines += _timing_lines(result)
    lines += _figure_lines(result, figures, projection)
    return "\n".join(lines)


def _labeler(well):
    """A threshold's label; those that fewer than 90% of the networks reached
    are marked."""

    def label(t):
        return f"{t:g}" if t in well else f"{t:g}†"

    return label


def _header_lines(result):
    """The title and the run's settings in one sentence."""
    config, grid = result.config, result.observations["grid"]
    levels = (
        f"{grid['n_landscapes']} landscape levels (chosen from the data: in every "
        "layer, 99% of the squared norm, or until one more level adds less than "
        "0.1% of it)"
        if config.n_landscapes == "auto"
        else f"{grid['n_landscapes']} landscape levels"
    )
    return [
        f"# Activation landscapes: {config.experiment} ({config.preset} preset)",
        "",
        f"{config.n_networks} networks of widths {list(config.widths)}, trained "
        f"with Adam (step {config.lr:g}, batches of {config.batch_size}, at most "
        f"{config.max_epochs} epochs) and snapshotted at training accuracies "
        f"{list(config.thresholds)}; {config.method} normalization, homology in "
        f"degree(s) {list(config.homology_dimensions)}"
        + (" (local homology)" if config.method == "local" else "")
        + f"; {levels} on {config.resolution} grid points of "
        f"{list(config.sample_range)}.",
    ]


def _training_lines(config, training, label):
    """Table: the networks that reached each threshold, and when."""
    n = config.n_networks
    reached = training.reached.sum(axis=0)
    lines = [
        "",
        "## Training",
        "",
        "| threshold | networks that reached it | median epoch | snapshots equal to "
        "the previous threshold's |",
        "|---|---|---|---|",
    ]
    epochs = training.snapshot_epoch
    for j, t in enumerate(config.thresholds):
        hit = epochs[:, j] >= 0
        median = f"{np.median(epochs[hit, j]):g}" if hit.any() else "—"
        same = int((hit & (epochs[:, j] == epochs[:, j - 1])).sum()) if j > 0 else 0
        lines.append(f"| {label(float(t))} | {reached[j]}/{n} | {median} | {same} |")
    return lines + [
        "",
        "† reached by fewer than 90% of the networks: observations drawn from it "
        "rest on fewer networks. A snapshot equal to the previous threshold's is "
        "a network that crossed both thresholds in the same epoch.",
    ]


def _complexity_lines(result, thresholds, label):
    """Table: mean exact complexity per threshold and layer."""
    complexity = result.observations["mean_complexity"]
    n_layers = result.norms.shape[1]
    lines = [
        "",
        "## Topological complexity per layer",
        "",
        "Mean over the networks of the exact norm of all landscape levels "
        "(closed form from the pairs, no grid).",
        "",
        "| threshold | " + " | ".join(f"layer {i}" for i in range(n_layers)) + " |",
        "|---" * (n_layers + 1) + "|",
    ]
    for t in thresholds:
        lines.append(
            f"| {label(t)} | " + " | ".join(_num(v) for v in complexity[str(t)]) + " |"
        )
    return lines


def _grid_lines(result):
    """Table: per layer, the kept levels' share and the grid's resolution."""
    grid = result.observations["grid"]
    lines = [
        "",
        "## Landscape levels and grid",
        "",
        "Share of the squared norm (all levels, on the grid) that the kept levels "
        "carry, and the grid's squared norm of all levels over the exact one: far "
        "from 1, the layer's bars are narrower than the grid step, so its "
        "landscape vectors (plots, kernels, tests) see them only roughly.",
        "",
        "| layer | kept levels' share | grid / exact | grid resolves the bars |",
        "|---|---|---|---|",
    ]
    for i in range(result.norms.shape[1]):
        ok = "no" if i in grid["unresolved_layers"] else "yes"
        lines.append(
            f"| {i} | {grid['kept_share'][i]:.1%} | "
            f"{_num(grid['grid_over_exact'][i])} | {ok} |"
        )
    return lines


def _figure_lines(result, figures, projection):
    """Every figure drawn, with its caption."""
    config = result.config
    top = result.observations.get("activations_threshold")
    captions = {
        "activations": "Activations of some layers of one network at training "
        f"accuracy {top} (the highest threshold reached), first two principal "
        "components.",
        "landscapes": "Average activation landscapes per threshold (rows) and layer.",
        "curves": "2-D projection of the activation landscape curves "
        f"(explained variance {projection.explained_variance_ratio.sum():.0%}).",
        "complexity": "Exact topological complexity per layer, one line per "
        "threshold (mean over the networks, each averaged over its input "
        "subsamples)"
        + (
            "; shaded: 95% simultaneous bootstrap band of the mean, resampling "
            "networks."
            if _banded(result)
            else "; no band: a threshold was reached by one network only."
        ),
        "pvalues": "Pairwise permutation-test p-values between thresholds, "
        "with the network as the unit.",
        "layers": "Which layers differ: Westfall-Young adjusted p-values per "
        "layer (rows) and pair of thresholds (columns); framed cells are "
        "significant at 0.05.",
        "dynamics": "Topological complexity of every layer during training, "
        f"every {config.monitor_every} epochs, on {config.monitor_points} points "
        "of the batch (at most), mean of the networks still training (curves "
        "in dynamics.npz).",
    }
    lines = ["", "## Figures", ""]
    for name in figures:
        lines += [f"![{captions[name]}]({name}.png)", "", captions[name], ""]
    return lines


def _test_lines(result, label, floor):
    """Table I with the network as the unit, then the paper's test beside it."""
    test, config = result.test, result.config
    thresholds = [float(t) for t in test.groups_]
    n_pairs = len(thresholds) * (len(thresholds) - 1) // 2
    units = sorted({r["n_units"] for r in test.table_})
    lines = [
        "",
        "## Permutation tests",
        "",
        "**The unit is the network.** "
        + (
            f"The {config.n_subsamples} input subsamples of a snapshot are "
            "averaged, each"
            if config.n_subsamples > 1
            else "Each"
        )
        + " pair of thresholds is tested on the networks that reached "
        f"both ({_range_text(units)} networks per pair), and a relabeling swaps "
        "a network's two snapshots or not. p-values of the pairwise tests between "
        "thresholds (Table I): raw above the diagonal, Holm-corrected over the "
        f"{n_pairs} pairs below it. " + _relabeling_sentence(test, floor),
        "",
    ]
    untested = result.observations.get("untested_thresholds", [])
    if untested:
        lines += [
            "Not tested (reached by fewer than 2 networks): "
            + ", ".join(f"{t:g}" for t in untested)
            + ".",
            "",
        ]
    lines += _pvalue_table(test, thresholds, label, floor)
    paper = result.paper_test
    replicated = config.n_subsamples > 1
    lines += [
        "",
        "### The paper's test, for comparison",
        "",
        "The paper relabels every sample on its own, as if all were independent. "
        + (
            "With several input subsamples per network it finds differences that "
            "are not there: in simulations of this design its rejection rate under "
            "no difference is far above 0.05 (user guide, *What is the unit of a "
            "test?*)."
            if replicated
            else "With one sample per network and threshold it mixes networks, "
            "whose own differences hide those between thresholds: in simulations "
            "of this design it almost never rejects at 0.05 when nothing differs, "
            "and misses differences that are there (user guide, *What is the unit "
            "of a test?*)."
        )
        + " Same samples; raw above the diagonal, Holm-corrected below. "
        + _relabeling_sentence(paper, floor),
        "",
    ]
    return lines + _pvalue_table(paper, thresholds, label, floor)


def _relabeling_sentence(test, floor):
    """How the null distributions were made, and the smallest p-value."""
    exhaustive = [r for r in test.table_ if r["exhaustive"]]
    random = (
        f"{test.n_permutations} random relabelings per pair, so the smallest "
        f"p-value is {floor:.1g}"
    )
    if not exhaustive:
        return random[0].upper() + random[1:] + "."
    smallest = min(exhaustive, key=lambda r: r["n_relabelings"])
    # A relabeling and its mirror image (every sign flipped, or the two
    # groups swapped when they are as large) give the same statistic.
    mirrored = test.unit_ == "group" or smallest["n_a"] == smallest["n_b"]
    n = smallest["n_relabelings"]
    enumerated = (
        "every relabeling was enumerated, so the p-values are exact; with "
        f"{n} relabelings the smallest possible is {(1 + mirrored) / n:.2g}"
    )
    if len(exhaustive) == len(test.table_):
        return enumerated[0].upper() + enumerated[1:] + "."
    return (
        f"For {len(exhaustive)} of the {len(test.table_)} pairs {enumerated}; the "
        f"others used {random}."
    )


def _range_text(values):
    return f"{values[0]}" if values[0] == values[-1] else f"{values[0]}-{values[-1]}"


def _pvalue_table(test, thresholds, label, floor):
    """Markdown table: raw p-values above the diagonal, Holm's below."""
    adjusted = np.zeros_like(test.pvalues_)
    upper = np.triu_indices(len(thresholds), 1)
    adjusted[upper] = holm_adjust(test.pvalues_[upper])
    lines = [
        "| | " + " | ".join(label(t) for t in thresholds) + " |",
        "|---" * (len(thresholds) + 1) + "|",
    ]
    for i, t in enumerate(thresholds):
        cells = [
            "—"
            if i == j
            else _pvalue(test.pvalues_[i, j] if i < j else adjusted[j, i], floor)
            for j in range(len(thresholds))
        ]
        lines.append(f"| {label(t)} | " + " | ".join(cells) + " |")
    return lines


def _layer_lines(result, thresholds, label, floor):
    """Table: layers by pairs of thresholds, Westfall-Young adjusted p-values."""
    test = result.test
    adjusted = test.layer_pvalues_adjusted_
    pairs = [
        (a, b) for a in range(len(thresholds)) for b in range(a + 1, len(thresholds))
    ]
    lines = [
        "",
        "## Which layers differ",
        "",
        "Each layer tested on its own between every pair of thresholds, on the "
        "same permutations as the table above; p-values adjusted over the "
        f"{adjusted.shape[2]} layers of each pair by Westfall and Young's "
        "step-down maxT, which keeps the family-wise error rate (the chance of "
        "declaring any layer different when none of them differs) at most "
        "the chosen level within a pair; **bold**: at most 0.05. Across pairs "
        "the p-values are not corrected.",
        "",
        "| layer | "
        + " | ".join(
            f"{label(thresholds[a])} vs {label(thresholds[b])}" for a, b in pairs
        )
        + " |",
        "|---" * (len(pairs) + 1) + "|",
    ]
    for layer in range(adjusted.shape[2]):
        cells = []
        for a, b in pairs:
            p = adjusted[a, b, layer]
            text = _pvalue(p, floor)
            cells.append(f"**{text}**" if p <= 0.05 else text)
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return lines


def _verdict(holds):
    return "**holds**" if holds else "**does not hold**"


def _observation_lines(config, obs, thresholds, label):
    """The paper's observations, one numbered line each, with the numbers."""
    lines = [_holes_line(obs["holes"], label)] if "holes" in obs else []
    lines += [
        _layers_line(obs, thresholds, label),
        _growth_line(obs, thresholds, label),
        _tables_line(obs),
    ]
    if "rays" in obs:
        lines.append(_rays_line(obs["rays"], label))
    # Numbered here: the digits have no observation of the nine holes.
    return [f"{number}. {line}" for number, line in enumerate(lines, 1)]


def _holes_line(holes, label):
    """Observation 1 (synthetic): the first layers see the nine holes."""
    counts = ", ".join(
        f"layer {i}: {_num(m)} ({s:.0%} exactly 9)"
        for i, (m, s) in enumerate(zip(holes["mean"], holes["share_exactly_nine"]))
    )
    first = holes["share_exactly_nine"][1] if len(holes["mean"]) > 1 else 0
    return (
        "**The first layers see the input's nine holes**: "
        f"{_verdict(first >= 0.5)} at threshold {label(holes['threshold'])} "
        f"({holes['n_networks']} networks). Mean number of H1 bars longer "
        f"than 0.05 per network (share of networks with exactly nine): "
        f"{counts}."
    )


def _layers_line(obs, thresholds, label):
    """Observation 2: complexity is not monotone across layers."""
    not_monotone = obs["thresholds_not_monotone"]
    increases = obs["layers_where_complexity_increases"]
    rises = obs["total_rise"]
    rise_text = ", ".join(f"{label(t)}: {_num(rises[str(t)])}" for t in thresholds)
    first_rise, last_rise = rises[str(thresholds[0])], rises[str(thresholds[-1])]
    per_threshold = "; ".join(
        f"{label(t)}: "
        + (
            "layers " + ", ".join(map(str, increases[str(t)]))
            if increases[str(t)]
            else "none"
        )
        for t in thresholds
    )
    return (
        "**Complexity is not monotonically decreasing across layers**: "
        f"{_verdict(thresholds[-1] in not_monotone)} at the highest threshold; "
        "the mean complexity "
        f"increases from one layer to the next at {len(not_monotone)} of "
        f"{len(thresholds)} thresholds ({per_threshold}). **The effect increases "
        f"with training**: {_verdict(last_rise > first_rise)}: the sum of these "
        f"increases is {rise_text}."
    )


def _growth_line(obs, thresholds, label):
    """Observation 3: complexity grows with training."""
    totals = obs["mean_total_complexity"]
    total_text = ", ".join(f"{label(t)}: {_num(totals[str(t)])}" for t in thresholds)
    if not obs["grows_first_last"]:
        return (
            "**Complexity grows with training**: not checked, fewer than two "
            f"thresholds were reached by 90% of the networks (totals: {total_text})."
        )
    a, b = obs["grows_first_last"]
    share = obs["share_of_networks_growing"]
    holds = share > 0.5 and totals[str(b)] > totals[str(a)]
    return (
        f"**Complexity grows with training**: {_verdict(holds)}: the mean "
        f"total complexity (sum over layers) is {total_text}; from threshold "
        f"{a:g} to {b:g} it grows in {share:.0%} of the networks."
    )


def _tables_line(obs):
    """Observation 4: the thresholds' landscapes differ (Table I)."""
    return (
        "**The thresholds' landscapes differ (Table I)**: "
        f"{_verdict(obs['share_of_significant_pairs_holm'] == 1)}: "
        f"{obs['share_of_significant_pairs']:.0%} of the pairs of thresholds differ "
        f"at the 0.05 level ({obs['share_of_significant_pairs_holm']:.0%} after "
        f"Holm's correction; largest p-value {_num(obs['largest_pvalue'])}, "
        f"{_num(obs['largest_pvalue_holm'])} corrected), with the network as the "
        "unit. The paper's test, which relabels single samples, gives "
        f"{obs['paper_share_of_significant_pairs']:.0%} "
        f"({obs['paper_share_of_significant_pairs_holm']:.0%} after Holm)."
    )


def _rays_line(rays, label):
    """Observation 5 (digits): classes lie on rays in the ending layers."""
    scores, shuffled = rays["alignment"], rays["shuffled"]
    n_layers = len(scores)
    hidden = range(1, n_layers - 1)
    ending = max(scores[-2:])
    best_hidden = max(scores[i] for i in hidden) if n_layers > 2 else 0.0
    table = ", ".join(
        f"layer {i}: {_num(a)} (shuffled {_num(b)})"
        for i, (a, b) in enumerate(zip(scores, shuffled))
    )
    return (
        "**Classes lie on rays from the origin in the ending layers**: "
        f"mean cosine between a point and its class's mean direction, at "
        f"threshold {label(rays['threshold'])} ({rays['n_networks']} networks): "
        f"{table}. "
        + (
            "Every layer scores above its shuffled-label baseline; "
            if all(a > b for a, b in zip(scores, shuffled))
            else "Layers at or below their shuffled-label baseline: "
            + ", ".join(
                str(i) for i, (a, b) in enumerate(zip(scores, shuffled)) if a <= b
            )
            + "; "
        )
        + "specific to the ending layers "
        f"{_verdict(ending > best_hidden)} (ending {_num(ending)}, best hidden "
        f"layer {_num(best_hidden)})."
    )


def _timing_lines(result):
    """Where the time went: seconds per stage, then the work not done twice."""
    history = result.timing_history or [
        {"timings": result.timings, "diagrams_computed": 0}
    ]
    stages = list(result.timings)
    total = {s: sum(c["timings"].get(s, 0.0) for c in history) for s in stages}
    lines = [
        "",
        "## Where the time went",
        "",
        f"Seconds per stage, in this call and over all {len(history)} call(s) on "
        "this folder (a resumed call only reloads the stages stored before). "
        "With more than one job, extraction and persistence start while the "
        "networks train, on the snapshots already taken, so the stages can add "
        "up to more than the wall time.",
        "",
        "| stage | this call | all calls |",
        "|---|---|---|",
    ]
    lines += [
        f"| {stage} | {result.timings[stage]:.1f} | {total[stage]:.1f} |"
        for stage in stages
    ]
    lines.append(_per_cloud_row(result, history, total["persistence"]))
    return lines + ["", _reuse_text(result, history)]


def _per_cloud_row(result, history, total_persistence):
    """Table row: persistence seconds per cloud, in this call and in all."""

    def clouds(call):
        # A call recorded without work counts: every stored sample's clouds.
        work = call.get("work") or {}
        return work.get("clouds", call["diagrams_computed"] * result.shape[0])

    def per(seconds, n):
        return _num(seconds / n) if n else "—"

    now, every = clouds(history[-1]), sum(clouds(c) for c in history)
    return (
        f"| persistence per cloud computed ({now} in this call, {every} in all; "
        f"each gives {result.shape[1]} diagram(s)) | "
        f"{per(result.timings['persistence'], now)} "
        f"| {per(total_persistence, every)} |"
    )


def _reuse_text(result, history):
    """The samples stored, and the work that sharing spared."""
    per_sample = result.shape[0] * result.shape[1]
    stored = sum(c["diagrams_computed"] for c in history)
    reused = {
        name: sum((c.get("work") or {}).get(name, 0) for c in history)
        for name in ("input_reused", "snapshot_reused", "during_training")
    }
    text = (
        f"{stored} samples stored ({stored * per_sample} diagrams). Not computed "
        f"again: {reused['input_reused']} input-layer clouds (the input layer "
        "is the same subsample for every network and threshold) and "
        f"{reused['snapshot_reused']} whole samples of snapshots taken in the "
        "same epoch as an earlier threshold's (the same weights)."
    )
    if reused["during_training"]:
        text += (
            f" {reused['during_training']} samples' diagrams were computed while "
            "the networks trained, in a second process."
        )
    return text


def _dynamics(out, topology):
    """The monitor's figure; its curves go to ``dynamics.npz``."""
    from sklandscapes.plotting import plot_training_complexity

    arrays = dict(
        epochs=topology.epochs,
        complexity=topology.complexity,
        layer_names=np.asarray(topology.layer_names),
    )
    atomic_write(
        out / "dynamics.npz", lambda handle: np.savez_compressed(handle, **arrays)
    )
    return plot_training_complexity(
        topology.complexity, topology.epochs, layer_names=topology.layer_names
    )


def _banded(result):
    """Whether every threshold has the two networks a confidence band needs."""
    _, thresholds, _ = unit_means(result.norms, result.thresholds, result.networks)
    return np.unique(thresholds, return_counts=True)[1].min() >= 2
