"""Figures of the paper, as functions that return a matplotlib ``Figure``.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through
``pyplot``'s global state, so they work headless and in threads; save them with
``fig.savefig(path)`` or display them in a notebook by evaluating ``fig``.
"""

import numpy as np

from sklandscapes.stats import CurveProjection, _check_vectors, mean_landscapes

__all__ = [
    "plot_activations",
    "plot_complexity",
    "plot_landscape_curves",
    "plot_landscapes",
    "plot_pvalues",
]


def _figure(**kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "sklandscapes.plotting needs matplotlib: pip install 'sklandscapes[plot]'"
        ) from exc
    return Figure(**kwargs)


def _layer_list(activations):
    """One sample's layers as a list of 2-D arrays."""
    if isinstance(activations, np.ndarray) and activations.dtype == object:
        if activations.ndim == 2 and activations.shape[0] == 1:
            activations = activations[0]
        if activations.ndim != 1:
            raise ValueError(
                "activations must be one sample's layers: an object array of shape "
                f"(n_layers,) or (1, n_layers), got shape {activations.shape}."
            )
    layers = [np.asarray(a, dtype=np.float64) for a in activations]
    for i, layer in enumerate(layers):
        if layer.ndim != 2:
            raise ValueError(
                f"layer {i}: expected a 2-D array, got shape {layer.shape}."
            )
    return layers


def plot_activations(activations, labels=None, layers=None, n_components=2):
    """Scatter the activations of some layers on their principal axes (Fig. 1).

    Parameters
    ----------
    activations : object array of shape (n_layers,) or (1, n_layers), or list
        One sample's activations, e.g. ``ActivationExtractor(...).transform([net])[0]``.
    labels : array-like of shape (n_points,), default=None
        Class of each input point, for the colours.
    layers : sequence of int, default=None
        Layers to show; ``None`` shows all.
    n_components : {2, 3}, default=2
        Dimension of the PCA projection of each layer.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes per layer.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.plotting import plot_activations
    >>> rng = np.random.default_rng(0)
    >>> fig = plot_activations([rng.normal(size=(50, 2)), rng.normal(size=(50, 5))],
    ...                        labels=rng.integers(0, 2, 50))
    >>> len(fig.axes)
    2
    """
    from sklearn.decomposition import PCA

    if n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3, got {n_components!r}.")
    all_layers = _layer_list(activations)
    layers = range(len(all_layers)) if layers is None else list(layers)
    for layer in layers:
        if not 0 <= layer < len(all_layers):
            raise ValueError(
                f"layer {layer!r} does not exist; there are {len(all_layers)} layers."
            )
    fig = _figure(figsize=(3.2 * len(layers), 3.2), layout="constrained")
    projection = "3d" if n_components == 3 else None
    for position, layer in enumerate(layers, start=1):
        points = all_layers[layer]
        ax = fig.add_subplot(1, len(layers), position, projection=projection)
        if points.shape[1] > n_components:
            coords = PCA(n_components=n_components).fit_transform(points)
        else:
            coords = np.zeros((len(points), n_components))
            coords[:, : points.shape[1]] = points
        ax.scatter(*coords.T, c=labels, s=4, cmap="coolwarm")
        ax.set_title(f"layer {layer}")
    return fig


def plot_landscapes(
    X, y, shape, grid=None, groups=None, layers=None, homology_dimension=0
):
    """Average landscapes on a grid of groups (rows) by layers (columns) (Fig. 2).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Landscape vectors.
    y : array-like of shape (n_samples,)
        Group of each sample, e.g. the training threshold.
    shape : tuple of 4 ints
        ``(n_layers, n_homology_dimensions, n_landscapes, n_bins)`` of ``X``.
    grid : array-like of shape (n_bins,), default=None
        The x values (the vectorizer's ``grid_``); ``None`` uses grid indices.
    groups : sequence, default=None
        Groups to show, in order; ``None`` shows all.
    layers : sequence of int, default=None
        Layers to show; ``None`` shows all.
    homology_dimension : int, default=0
        Position on the homology-dimension axis of the landscapes to show.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``len(groups) * len(layers)`` axes, each with one line per landscape
        function ``lambda_1 .. lambda_K``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.plotting import plot_landscapes
    >>> X = np.random.default_rng(0).random((4, 3 * 1 * 2 * 10))
    >>> fig = plot_landscapes(X, [0, 0, 1, 1], shape=(3, 1, 2, 10))
    >>> len(fig.axes), len(fig.axes[0].lines)
    (6, 2)
    """
    X, shape = _check_vectors(X, shape)
    all_groups, means = mean_landscapes(X, y)
    cube = means.reshape((len(all_groups),) + shape)
    group_rows = _positions(all_groups, groups, "groups")
    layers = range(shape[0]) if layers is None else list(layers)
    x = np.arange(shape[3]) if grid is None else np.asarray(grid)
    fig = _figure(
        figsize=(2.2 * len(layers), 1.8 * len(group_rows)), layout="constrained"
    )
    axes = fig.subplots(
        len(group_rows), len(layers), sharex=True, sharey=True, squeeze=False
    )
    for row, g in enumerate(group_rows):
        for column, layer in enumerate(layers):
            ax = axes[row, column]
            for k, curve in enumerate(cube[g, layer, homology_dimension], start=1):
                ax.plot(x, curve, lw=1, label=f"$\\lambda_{{{k}}}$")
            if row == 0:
                ax.set_title(f"layer {layer}")
            if column == 0:
                ax.set_ylabel(f"{all_groups[g]}")
    axes[0, -1].legend(fontsize="small")
    return fig


def _positions(all_groups, groups, name):
    if groups is None:
        return list(range(len(all_groups)))
    positions = []
    for g in groups:
        found = np.flatnonzero(all_groups == g)
        if not len(found):
            raise ValueError(
                f"{name}: {g!r} is not a label of y; labels are "
                f"{all_groups.tolist()!r}."
            )
        positions.append(int(found[0]))
    return positions


def plot_landscape_curves(projection, ax=None):
    """The projected activation landscape curves, one per group (Fig. 3).

    Parameters
    ----------
    projection : CurveProjection
        From :func:`~sklandscapes.stats.landscape_curve_projection`.
    ax : matplotlib Axes, default=None
        Axes to draw on; ``None`` makes a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One line per group through its layers, each layer marked and numbered.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.stats import landscape_curve_projection
    >>> from sklandscapes.plotting import plot_landscape_curves
    >>> X = np.random.default_rng(0).random((6, 4 * 1 * 1 * 5))
    >>> proj = landscape_curve_projection(X, [0, 0, 1, 1, 2, 2], shape=(4, 1, 1, 5))
    >>> fig = plot_landscape_curves(proj)
    >>> len(fig.axes[0].lines)
    3
    """
    if not isinstance(projection, CurveProjection):
        raise ValueError(
            "projection must be a CurveProjection from landscape_curve_projection, "
            f"got {type(projection).__name__}."
        )
    if ax is None:
        fig = _figure(figsize=(5, 4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    for group, curve in zip(projection.groups, projection.coordinates):
        (line,) = ax.plot(curve[:, 0], curve[:, 1], marker="o", ms=3, label=str(group))
        for layer, (x, y) in enumerate(curve[:, :2]):
            ax.annotate(
                str(layer),
                (x, y),
                fontsize=6,
                color=line.get_color(),
                xytext=(2, 2),
                textcoords="offset points",
            )
    ratio = projection.explained_variance_ratio
    ax.set_xlabel(f"PC 1 ({ratio[0]:.0%})")
    if len(ratio) > 1:
        ax.set_ylabel(f"PC 2 ({ratio[1]:.0%})")
    ax.legend(title="group", fontsize="small")
    return fig


def plot_complexity(norms, y, band="std", ax=None):
    """Topological complexity against layer, one line per group (Fig. 4).

    Parameters
    ----------
    norms : ndarray of shape (n_samples, n_layers)
        From :func:`~sklandscapes.stats.landscape_norms`.
    y : array-like of shape (n_samples,)
        Group of each sample, e.g. the training threshold.
    band : {"std", "quartiles", None}, default="std"
        Band across the samples of a group: mean ± one standard deviation, or
        the interquartile range; ``None`` draws no band.
    ax : matplotlib Axes, default=None
        Axes to draw on; ``None`` makes a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One line (the group mean) and one band per group.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.plotting import plot_complexity
    >>> fig = plot_complexity(np.random.default_rng(0).random((6, 11)),
    ...                       [0.5, 0.5, 0.9, 0.9, 1.0, 1.0])
    >>> len(fig.axes[0].lines)
    3
    """
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 2:
        raise ValueError(
            f"norms must have shape (n_samples, n_layers), got {norms.shape}."
        )
    if band not in ("std", "quartiles", None):
        raise ValueError(f"band must be 'std', 'quartiles' or None, got {band!r}.")
    groups, means = mean_landscapes(norms, y)
    y = np.asarray(y)
    if ax is None:
        fig = _figure(figsize=(5, 3.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    layers = np.arange(norms.shape[1])
    for group, mean in zip(groups, means):
        (line,) = ax.plot(layers, mean, marker="o", ms=3, label=str(group))
        members = norms[y == group]
        if band == "std":
            low, high = mean - members.std(0), mean + members.std(0)
        elif band == "quartiles":
            low, high = np.percentile(members, [25, 75], axis=0)
        if band is not None:
            ax.fill_between(layers, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("layer")
    ax.set_ylabel("landscape norm")
    ax.set_xticks(layers)
    ax.legend(title="group", fontsize="small")
    return fig


def plot_pvalues(test, ax=None, alpha=0.05):
    """Pairwise p-values as an annotated heat map (Table I).

    Parameters
    ----------
    test : PermutationTest
        A fitted :class:`~sklandscapes.PermutationTest`.
    ax : matplotlib Axes, default=None
        Axes to draw on; ``None`` makes a new figure.
    alpha : float, default=0.05
        Cells with p-value at most ``alpha`` are annotated in bold.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes import PermutationTest
    >>> from sklandscapes.plotting import plot_pvalues
    >>> X = np.random.default_rng(0).normal(size=(12, 4))
    >>> test = PermutationTest(n_permutations=99, random_state=0).fit(X, [0, 1, 2] * 4)
    >>> fig = plot_pvalues(test)
    >>> len(fig.axes[0].texts)
    9
    """
    pvalues = getattr(test, "pvalues_", None)
    if pvalues is None:
        raise ValueError(
            "test must be a fitted PermutationTest (it has no pvalues_); "
            "call fit first."
        )
    groups = [str(g) for g in test.groups_]
    if ax is None:
        fig = _figure(
            figsize=(1.2 * len(groups) + 2, 1.1 * len(groups) + 1), layout="constrained"
        )
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    image = ax.imshow(pvalues, cmap="viridis_r", vmin=0, vmax=1)
    for (i, j), p in np.ndenumerate(pvalues):
        ax.text(
            j,
            i,
            "—" if i == j else f"{p:.3g}",
            ha="center",
            va="center",
            fontsize=8,
            fontweight="bold" if (i != j and p <= alpha) else None,
            # viridis_r is dark for large p-values, bright yellow for small ones.
            color="white" if p > 0.5 else "black",
        )
    ax.set_xticks(range(len(groups)), groups)
    ax.set_yticks(range(len(groups)), groups)
    ax.set_title("permutation test p-values")
    fig.colorbar(image, ax=ax, label="p-value")
    return fig
