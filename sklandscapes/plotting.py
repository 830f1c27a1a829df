"""Figures of the paper, as functions that return a matplotlib ``Figure``.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through
``pyplot``'s global state, so they work headless and in threads; save them with
``fig.savefig(path)`` or display them in a notebook by evaluating ``fig``.
"""

import numpy as np

from sklandscapes._distances import LayerDistances
from sklandscapes._validation import check_landscape_vectors
from sklandscapes.landscapes import quadrature_weights
from sklandscapes.stats import (
    CurveProjection,
    confidence_band,
    mean_landscapes,
    unit_means,
)

__all__ = [
    "plot_activations",
    "plot_complexity",
    "plot_landscape_curves",
    "plot_landscapes",
    "plot_layer_pvalues",
    "plot_pvalues",
    "plot_training_complexity",
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
    activations = list(activations)
    for i, layer in enumerate(activations):
        if isinstance(layer, LayerDistances):
            raise ValueError(
                f"layer {i} is a LayerDistances (distances and norms, no "
                "coordinates to plot); plot the clouds of "
                "ActivationExtractor(output='clouds') instead."
            )
    layers = [np.asarray(a, dtype=np.float64) for a in activations]
    for i, layer in enumerate(layers):
        if layer.ndim != 2:
            raise ValueError(
                f"layer {i}: expected a 2-D array, got shape {layer.shape}."
            )
    return layers


# A qualitative colour map keeps every class distinct; past 20 classes no
# qualitative map has enough colours and a continuous one with a colour bar
# reads better than repeated colours.
_MAX_LEGEND_CLASSES = 20


def _distinct_in_order(values):
    """The distinct values of ``values`` in order of first appearance."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(
            f"expected a 1-D sequence of labels, got shape {values.shape}."
        )
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


def _group_text(group):
    """A label as text: ``0.9`` rather than ``0.9000000000000001``."""
    if isinstance(group, (float, np.floating)):
        return f"{group:.6g}"
    return str(group)


def _is_numeric(values):
    return np.asarray(values).dtype.kind in "biuf"


def _axis_names(points, n_components):
    """Project a layer on its principal axes; name the axes by what they show."""
    from sklearn.decomposition import PCA

    width = points.shape[1]
    if width > n_components:
        pca = PCA(n_components=n_components).fit(points)
        names = [
            f"PC {i} ({ratio:.0%} var.)"
            for i, ratio in enumerate(pca.explained_variance_ratio_, start=1)
        ]
        return pca.transform(points), names
    # A layer this narrow is shown as is: its axes are its units.
    coords = np.zeros((len(points), n_components))
    coords[:, :width] = points
    names = [f"unit {i}" for i in range(1, width + 1)]
    names += [f"(none: {width} unit{'s' if width > 1 else ''})"] * (
        n_components - width
    )
    return coords, names


def plot_activations(
    activations, labels=None, layers=None, n_components=2, *, label_name="class"
):
    """Scatter the activations of some layers on their principal axes (Fig. 1).

    Each axis is labelled with its principal component and the share of the
    layer's variance it keeps (``PC 1 (62% var.)``); a layer with at most
    ``n_components`` units is shown as is, on axes named by its units.

    Parameters
    ----------
    activations : object array of shape (n_layers,) or (1, n_layers), or list
        One sample's activations, e.g. ``ActivationExtractor(...).transform([net])[0]``.
    labels : array-like of shape (n_points,), default=None
        Class of each input point, for the colours. Up to 20 distinct classes
        get the qualitative colour map ``tab10`` (``tab20`` past 10) and a
        legend, in sorted order; more classes, or many distinct float values,
        get the continuous ``viridis`` and a colour bar.
    layers : sequence of int, default=None
        Layers to show; ``None`` shows all.
    n_components : {2, 3}, default=2
        Dimension of the PCA projection of each layer.
    label_name : str, default="class"
        What ``labels`` are: the title of the legend or colour bar.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes per layer (and one for the colour bar, if any).

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.plotting import plot_activations
    >>> rng = np.random.default_rng(0)
    >>> fig = plot_activations([rng.normal(size=(50, 2)), rng.normal(size=(50, 5))],
    ...                        labels=rng.integers(0, 2, 50), label_name="digit")
    >>> len(fig.axes), fig.axes[1].get_xlabel()[:4]
    (2, 'PC 1')
    >>> fig.legends[0].get_title().get_text()
    'digit'
    """
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    if n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3, got {n_components!r}.")
    all_layers = _layer_list(activations)
    layers = range(len(all_layers)) if layers is None else list(layers)
    for layer in layers:
        if not 0 <= layer < len(all_layers):
            raise ValueError(
                f"layer {layer!r} does not exist; there are {len(all_layers)} layers."
            )
    colour, classes, palette = None, None, None
    if labels is not None:
        labels = np.asarray(labels)
        n_points = len(all_layers[layers[0]]) if len(layers) else 0
        if labels.shape != (n_points,):
            raise ValueError(
                f"labels must have shape ({n_points},), one class per point, "
                f"got shape {labels.shape}."
            )
        classes, codes = np.unique(labels, return_inverse=True)
        categorical = len(classes) <= _MAX_LEGEND_CLASSES
        if categorical:
            palette = colormaps["tab10" if len(classes) <= 10 else "tab20"]
            colour = palette(codes)
        else:
            colour = labels if _is_numeric(labels) else codes
    fig = _figure(figsize=(3.2 * len(layers) + 1, 3.4), layout="constrained")
    projection = "3d" if n_components == 3 else None
    scatter = None
    for position, layer in enumerate(layers, start=1):
        ax = fig.add_subplot(1, len(layers), position, projection=projection)
        coords, names = _axis_names(all_layers[layer], n_components)
        continuous = colour is not None and palette is None
        scatter = ax.scatter(
            *coords.T, c=colour, s=4, cmap="viridis" if continuous else None
        )
        ax.set_title(f"layer {layer}")
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        if n_components == 3:
            ax.set_zlabel(names[2])
    if palette is not None:
        handles = [
            Line2D([], [], ls="", marker="o", ms=5, color=palette(i))
            for i in range(len(classes))
        ]
        fig.legend(
            handles,
            [_group_text(c) for c in classes],
            title=label_name,
            loc="outside right upper",
            fontsize="small",
        )
    elif labels is not None and scatter is not None:
        fig.colorbar(scatter, ax=fig.axes, label=label_name)
    return fig


def _check_sharey(sharey):
    if sharey is True:
        return "all"
    if sharey is False:
        return "none"
    if sharey not in ("all", "row", "col", "none"):
        raise ValueError(
            "sharey must be 'all', 'row', 'col', 'none', True or False, "
            f"got {sharey!r}."
        )
    return sharey


def _row_label_function(row_label, y_name, numeric):
    if callable(row_label):
        return row_label
    if isinstance(row_label, str):
        return row_label.format
    if row_label is not None:
        raise ValueError(
            "row_label must be None, a format string such as "
            f"'training accuracy ≥ {{:.0%}}' or a callable, got {row_label!r}."
        )
    if numeric:
        return lambda group: f"{y_name} = {_group_text(group)}"
    return _group_text


# Above this many landscape levels, plot_landscapes colours them on a ramp.
_MAX_LISTED_LEVELS = 6


def plot_landscapes(
    X,
    y,
    shape,
    grid=None,
    groups=None,
    layers=None,
    homology_dimension=0,
    *,
    sharey="col",
    y_name="threshold",
    row_label=None,
    title=None,
    layer_names=None,
    weighting=None,
    scale=1.0,
    xlim="data",
    confidence=None,
    simultaneous=True,
    n_bootstrap=1000,
    random_state=None,
):
    """Average landscapes on a grid of groups (rows) by layers (columns) (Fig. 2).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Landscape vectors, as :class:`~sklandscapes.LandscapeVectorizer` made
        them (with the ``weighting`` given below).
    y : array-like of shape (n_samples,)
        Group of each sample, e.g. the training threshold.
    shape : tuple of 4 ints
        ``(n_layers, n_homology_dimensions, n_landscapes, n_bins)`` of ``X``.
    grid : array-like of shape (n_bins,), default=None
        The x values (the vectorizer's ``grid_``); ``None`` uses grid indices.
    groups : sequence, default=None
        Groups to show, in order from top to bottom; ``None`` shows all, in
        order of first appearance in ``y`` (not sorted).
    layers : sequence of int, default=None
        Layers to show; ``None`` shows all.
    homology_dimension : int, default=0
        Position on the homology-dimension axis of the landscapes to show.
    sharey : {"col", "row", "all", "none"} or bool, default="col"
        Which axes share their y-scale. ``"col"`` gives every layer its own
        scale, shared by the groups, so that layers whose landscapes are small
        are not flat lines and groups stay comparable within a layer;
        ``"all"`` (or ``True``) puts every axes on one scale; ``"none"`` (or
        ``False``) scales each axes on its own.
    y_name : str, default="threshold"
        What ``y`` is (the paper's groups are training thresholds); names the
        rows when ``row_label`` is ``None``, and the title.
    row_label : str or callable, default=None
        Text of each row from its group: a format string with one field, such
        as ``"training accuracy ≥ {:.0%}"``, or a function of the group.
        ``None`` writes ``"{y_name} = {group}"`` for numeric groups and the
        group as given otherwise.
    title : str, default=None
        The figure's title; ``None`` writes what the grid shows.
    layer_names : sequence of str, default=None
        A name per layer of ``X`` (``shape[0]`` names, whatever ``layers``
        shows), for the column titles; ``None`` titles them "layer 0",
        "layer 1", ...
    weighting : {None, "l2"}, default=None
        The ``weighting`` of the :class:`~sklandscapes.LandscapeVectorizer`
        that made ``X``: pass ``vectorizer.weighting``. ``"l2"`` vectors carry
        the square roots of the trapezoid weights (a factor of about
        ``sqrt(grid step)``, 1/14 on the default grid) and the vectorizer's
        ``scale_``; both are divided out, so that the lines are the landscape
        values. Needs ``grid`` and ``scale``. Vectors that rise faster than
        slope 1 once divided (no landscape does) are refused: they were not
        weighted, or ``scale`` is not the vectorizer's.
    scale : float, default=1.0
        With ``weighting="l2"``: the ``scale_`` of the vectorizer that made
        ``X`` (``scale="auto"`` learns it in ``fit``).
    xlim : {"data", "grid"}, default="data"
        The x range: ``"data"`` fits where the drawn landscapes (and bands)
        are non-zero, with a margin of 5% of that range on each side, within
        the grid; ``"grid"`` shows the whole grid.
    confidence : float, default=None
        Shade a confidence band of this level around every average landscape
        (:func:`~sklandscapes.stats.confidence_band`, bootstrap over the
        samples of each group); ``None`` draws none. The band's kind and level
        are written under the title.
    simultaneous : bool, default=True
        With ``confidence``: one band for the whole landscape vector of a
        group, all layers and levels at once, or a pointwise band.
    n_bootstrap : int, default=1000
        With ``confidence``: bootstrap resamples per group.
    random_state : int, RandomState instance or None, default=None
        With ``confidence``: seeds the resamples.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``len(groups) * len(layers)`` axes, each with one line per landscape
        function ``lambda_1 .. lambda_K``; the x-axis is the filtration value
        ``t`` and the y-axis ``lambda_k(t)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.plotting import plot_landscapes
    >>> X = np.random.default_rng(0).random((4, 3 * 1 * 2 * 10))
    >>> fig = plot_landscapes(X, [0.9, 0.9, 0.5, 0.5], shape=(3, 1, 2, 10),
    ...                       row_label="training accuracy ≥ {:.0%}")
    >>> len(fig.axes), len(fig.axes[0].lines)
    (6, 2)
    >>> fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()
    ('training accuracy ≥ 90%', 'training accuracy ≥ 50%')
    >>> fig = plot_landscapes(X, ["lr 0.1", "lr 0.1", "lr 1", "lr 1"],
    ...                       shape=(3, 1, 2, 10), y_name="learning rate",
    ...                       layer_names=["input", "hidden", "output"],
    ...                       confidence=0.9, random_state=0)
    >>> len(fig.axes[0].collections)  # one band per level
    2
    >>> fig.axes[1].get_title(), fig.get_suptitle().splitlines()[0][-24:]
    ('hidden', 'and learning rate (rows)')
    """
    X, shape = check_landscape_vectors(X, shape)
    sharey = _check_sharey(sharey)
    layer_names = _check_layer_names(layer_names, shape[0], "layer {}")
    X = _unweighted(X, shape, grid, weighting, scale)
    all_groups, curves, band_text = _group_curves(
        X, y, shape, confidence, simultaneous, n_bootstrap, random_state
    )
    if groups is None:
        groups = _distinct_in_order(y)
    group_rows = _positions(all_groups, groups, "groups")
    label_of = _row_label_function(row_label, y_name, _is_numeric(all_groups))
    layers = _check_layers(layers, shape[0])
    x = np.arange(shape[3]) if grid is None else np.asarray(grid, dtype=np.float64)
    fig = _figure(
        figsize=(2.2 * len(layers) + 0.6, 1.8 * len(group_rows) + 0.8),
        layout="constrained",
    )
    axes = fig.subplots(
        len(group_rows), len(layers), sharex=True, sharey=sharey, squeeze=False
    )
    colors, ramp = _level_colours(shape[2])
    for row, g in enumerate(group_rows):
        for column, layer in enumerate(layers):
            ax = axes[row, column]
            _draw_levels(ax, x, curves[:, g, layer, homology_dimension], colors, ramp)
            if row == 0:
                ax.set_title(layer_names[layer])
            if column == 0:
                ax.set_ylabel(label_of(all_groups[g]), fontweight="bold")
    shown = curves[:, group_rows][:, :, layers, homology_dimension]
    axes[0, 0].set_xlim(_x_range(x, shown, xlim))  # the axes share x
    _level_legend(fig, axes, shape[2], ramp)
    fig.supxlabel("filtration value t" if grid is not None else "grid index of t")
    fig.supylabel("$\\lambda_k(t)$")
    if title is None:
        title = f"Average persistence landscapes by layer (columns) and {y_name} (rows)"
    if band_text is not None:
        title += f"\nshaded: {band_text} of the average"
    fig.suptitle(title)
    return fig


def _check_layer_names(layer_names, n_layers, numbered="{}"):
    """The text of each layer: its name, or ``numbered`` with its number from 0."""
    if layer_names is None:
        return [numbered.format(layer) for layer in range(n_layers)]
    if isinstance(layer_names, str) or not hasattr(layer_names, "__len__"):
        raise ValueError(
            "layer_names must be a sequence of one name per layer, got "
            f"{layer_names!r}."
        )
    if len(layer_names) != n_layers:
        raise ValueError(
            f"layer_names has {len(layer_names)} names for {n_layers} layers; "
            "pass one name per layer, or None to number them from 0."
        )
    return [str(name) for name in layer_names]


def _check_layers(layers, n_layers):
    layers = range(n_layers) if layers is None else list(layers)
    for layer in layers:
        if not 0 <= layer < n_layers:
            raise ValueError(
                f"layers: {layer!r} does not exist; there are {n_layers} layers."
            )
    return layers


def _unweighted(X, shape, grid, weighting, scale):
    """The landscape values of vectors made with ``weighting`` and ``scale``."""
    if weighting is None:
        return X
    if weighting != "l2":
        raise ValueError(
            "weighting must be None or 'l2', the weighting of the "
            f"LandscapeVectorizer that made X, got {weighting!r}."
        )
    if grid is None:
        raise ValueError(
            "weighting='l2' needs the grid its weights come from: pass "
            "grid=vectorizer.grid_."
        )
    grid = np.asarray(grid, dtype=np.float64)
    if grid.shape != (shape[3],):
        raise ValueError(
            f"grid must have one value per grid point ({shape[3]}), got shape "
            f"{grid.shape}."
        )
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(
            f"scale must be the vectorizer's positive scale_, got {scale!r}."
        )
    curves = X.reshape(-1, shape[3]) / (np.sqrt(quadrature_weights(grid)) * scale)
    # A landscape is 1-Lipschitz; the values are exact at the grid points, so
    # a rise beyond the step by more than rounding (1e-9 of the grid's
    # extent) means the vectors were not weighted and are now ~14x too large.
    rise = np.abs(np.diff(curves, axis=1)) - np.diff(grid)
    if (rise > 1e-9 * (grid[-1] - grid[0])).any():
        raise ValueError(
            "X rises faster than slope 1 between grid points once the l2 weights "
            "and the scale are divided out, which no landscape does: X is not "
            "LandscapeVectorizer(weighting='l2') output on this grid with this "
            "scale. Pass weighting=None for unweighted vectors, and "
            "scale=vectorizer.scale_ for weighted ones."
        )
    return curves.reshape(X.shape)


def _group_curves(X, y, shape, confidence, simultaneous, n_bootstrap, random_state):
    """The mean of each group, then the band's lower and upper ends if any,
    as (1 or 3, n_groups) + shape, and the band's description."""
    all_groups, means = mean_landscapes(X, y)
    curves = [means]
    description = None
    if confidence is not None:
        band = confidence_band(
            X,
            y,
            confidence=confidence,
            simultaneous=simultaneous,
            n_bootstrap=n_bootstrap,
            random_state=random_state,
        )
        curves += [band.lower, band.upper]
        description = band.description
    curves = np.stack(curves).reshape((len(curves), len(all_groups)) + shape)
    return all_groups, curves, description


def _x_range(x, curves, xlim):
    """The x limits: the grid's ends, or where ``curves`` (last axis on ``x``)
    are non-zero, with a margin."""
    if xlim not in ("data", "grid"):
        raise ValueError(f"xlim must be 'data' or 'grid', got {xlim!r}.")
    nonzero = np.flatnonzero((curves != 0).reshape(-1, len(x)).any(axis=0))
    if xlim == "grid" or not len(nonzero):
        return x[0], x[-1]
    # A landscape leaves 0 after the grid point before its first non-zero
    # value and comes back to 0 before the point after its last.
    first = x[max(nonzero[0] - 1, 0)]
    last = x[min(nonzero[-1] + 1, len(x) - 1)]
    margin = 0.05 * (last - first)
    return max(first - margin, x[0]), min(last + margin, x[-1])


def _level_colours(n_levels):
    """A colour per level (``None``: the default cycle) and whether they ramp."""
    from matplotlib import colormaps

    # Many levels: one colour ramp and a legend of its two ends, so that the
    # legend stays small whatever n_landscapes="auto" chose.
    if n_levels <= _MAX_LISTED_LEVELS:
        return [None] * n_levels, False
    ramp = colormaps["viridis"]
    return [ramp(0.9 * k / (n_levels - 1)) for k in range(n_levels)], True


def _level_legend(fig, axes, n_levels, ramp):
    if ramp:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            title=f"level (of {n_levels})",
            loc="outside right upper",
            fontsize="small",
        )
    else:
        axes[0, -1].legend(fontsize="small", title="level")


def _draw_levels(ax, x, curves, colors, ramp):
    """One line per landscape level (``curves[0]``), shaded by its band
    (``curves[1]`` to ``curves[2]``, if given); with a colour ramp, only the
    first and last levels are named in the legend."""
    n_levels = curves.shape[1]
    for k, curve in enumerate(curves[0], start=1):
        listed = not ramp or k in (1, n_levels)
        (line,) = ax.plot(
            x,
            curve,
            lw=1,
            color=colors[k - 1],
            label=f"$\\lambda_{{{k}}}$" if listed else "_nolegend_",
        )
        if len(curves) == 3:
            ax.fill_between(
                x,
                curves[1, k - 1],
                curves[2, k - 1],
                color=line.get_color(),
                alpha=0.25,
                lw=0,
            )


def _positions(all_groups, groups, name, source="a label of y"):
    if groups is None:
        return list(range(len(all_groups)))
    positions = []
    for g in groups:
        found = np.flatnonzero(all_groups == g)
        if not len(found):
            g = g.item() if isinstance(g, np.generic) else g
            raise ValueError(
                f"{name}: {g!r} is not {source}; the groups are "
                f"{all_groups.tolist()!r}."
            )
        positions.append(int(found[0]))
    return positions


# Offsets tried for a label, in points from its marker: nearest first, in
# eight directions, so that a label moves only as far as it must.
_LABEL_RADII = (4, 10, 17, 25, 34)
_LABEL_DIRECTIONS = [
    (np.cos(a), np.sin(a)) for a in np.deg2rad([45, 135, 315, 225, 0, 90, 180, 270])
]


def _place_labels(ax, anchors, texts, colours, fontsize=7):
    """Annotate each anchor (data coordinates) with a text that overlaps no other.

    Every candidate offset is measured on the drawn figure; a label takes the
    nearest offset whose box overlaps no label placed before, no marker and
    stays inside the axes. Far offsets get a leader line to their marker. A
    label with no free offset keeps the nearest one rather than disappearing.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.draw_without_rendering()  # fixes the layout and the axis limits
    frame = ax.get_window_extent()
    scale = fig.dpi / 72
    markers = [
        Bbox.from_bounds(px - 3 * scale, py - 3 * scale, 6 * scale, 6 * scale)
        for px, py in ax.transData.transform(anchors)
    ]
    placed = []
    annotations = []
    for anchor, text, colour in zip(anchors, texts, colours):
        style = dict(
            textcoords="offset points",
            fontsize=fontsize,
            color=colour,
            ha="center",
            va="center",
        )
        probe = ax.annotate(text, anchor, xytext=(0, 0), **style)
        offset = None
        for radius in _LABEL_RADII:
            for dx, dy in _LABEL_DIRECTIONS:
                probe.xyann = (radius * dx, radius * dy)
                box = probe.get_window_extent()
                inside = frame.contains(box.x0, box.y0) and frame.contains(
                    box.x1, box.y1
                )
                if inside and not any(box.overlaps(b) for b in placed + markers):
                    offset = probe.xyann
                    break
            if offset is not None:
                break
        probe.remove()
        if offset is None:
            dx, dy = _LABEL_DIRECTIONS[0]
            offset = (_LABEL_RADII[0] * dx, _LABEL_RADII[0] * dy)
        if np.hypot(*offset) > _LABEL_RADII[1]:
            # A label moved away from its marker points back to it.
            style["arrowprops"] = dict(arrowstyle="-", lw=0.5, color=colour)
        annotation = ax.annotate(text, anchor, xytext=offset, **style)
        placed.append(annotation.get_window_extent())
        annotations.append(annotation)
    return annotations


def _merge_coincident(points, tolerance):
    """Group the indices of points closer than ``tolerance`` (display units)."""
    clusters = []
    for i, p in enumerate(points):
        for cluster in clusters:
            if np.hypot(*(points[cluster[0]] - p)) < tolerance:
                cluster.append(i)
                break
        else:
            clusters.append([i])
    return clusters


def plot_landscape_curves(
    projection, ax=None, *, y_name="threshold", order=None, layer_labels="ends"
):
    """The projected activation landscape curves, one per group (Fig. 3).

    Parameters
    ----------
    projection : CurveProjection
        From :func:`~sklandscapes.stats.landscape_curve_projection`.
    ax : matplotlib Axes, default=None
        Axes to draw on; ``None`` makes a new figure.
    y_name : str, default="threshold"
        What the groups are (the paper's are training thresholds): the title
        of the legend.
    order : array-like, default=None
        Order of the groups in the legend: their first appearance in
        ``order`` (so the ``y`` of the projection can be passed as is);
        ``None`` keeps the projection's order.
    layer_labels : {"ends", "all"}, default="ends"
        Which layers are numbered on the curves: the first and the last
        (where the curves start and end) or every layer. Labels are placed
        where they overlap neither each other nor a marker; where curves
        meet in one point (every group's layer 0 when it is the shared input
        batch) the point gets one label, in grey.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One line per group through its layers, each layer marked.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.stats import landscape_curve_projection
    >>> from sklandscapes.plotting import plot_landscape_curves
    >>> X = np.random.default_rng(0).random((6, 4 * 1 * 1 * 5))
    >>> proj = landscape_curve_projection(X, [0, 0, 1, 1, 2, 2], shape=(4, 1, 1, 5))
    >>> fig = plot_landscape_curves(proj)
    >>> len(fig.axes[0].lines), fig.axes[0].get_legend().get_title().get_text()
    (3, 'threshold')
    """
    if not isinstance(projection, CurveProjection):
        raise ValueError(
            "projection must be a CurveProjection from landscape_curve_projection, "
            f"got {type(projection).__name__}."
        )
    if layer_labels not in ("ends", "all"):
        raise ValueError(f"layer_labels must be 'ends' or 'all', got {layer_labels!r}.")
    rows = _positions(
        np.asarray(projection.groups),
        None if order is None else _distinct_in_order(order),
        "order",
        "a group of the projection",
    )
    if ax is None:
        fig = _figure(figsize=(6, 4.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    coordinates = projection.coordinates
    n_layers = coordinates.shape[1]
    colours, lines = {}, {}
    for g in rows:
        curve = coordinates[g]
        (line,) = ax.plot(
            curve[:, 0],
            curve[:, 1] if curve.shape[1] > 1 else np.zeros(n_layers),
            marker="o",
            ms=3,
            label=_group_text(projection.groups[g]),
        )
        colours[g], lines[g] = line.get_color(), line
    ratio = projection.explained_variance_ratio
    ax.set_xlabel(f"PC 1 ({ratio[0]:.0%} var.)")
    if len(ratio) > 1:
        ax.set_ylabel(f"PC 2 ({ratio[1]:.0%} var.)")
    ax.set_title("Activation landscape curves (numbers: layers)")
    ax.legend(
        title=y_name,
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        borderaxespad=0,
    )
    ax.margins(0.12)  # room for the labels inside the axes
    shown = [0, n_layers - 1] if layer_labels == "ends" else range(n_layers)
    fig.draw_without_rendering()  # the axis limits, to find coincident points
    anchors, texts, label_colours = [], [], []
    for layer in sorted(set(shown)):
        xy = np.column_stack([lines[g].get_xydata()[layer] for g in rows]).T
        display = ax.transData.transform(xy)
        # Points closer than a marker's size share one label.
        for cluster in _merge_coincident(display, tolerance=3 * fig.dpi / 72):
            anchors.append(xy[cluster[0]])
            texts.append(str(layer))
            label_colours.append(
                colours[rows[cluster[0]]] if len(cluster) == 1 else "0.25"
            )
    _place_labels(ax, np.array(anchors), texts, label_colours)
    return fig


def plot_complexity(
    norms,
    y,
    band="confidence",
    ax=None,
    *,
    groups=None,
    y_name="threshold",
    layer_names=None,
    confidence=0.95,
    simultaneous=True,
    n_bootstrap=1000,
    random_state=None,
):
    """Topological complexity against layer, one line per group (Fig. 4).

    Parameters
    ----------
    norms : ndarray of shape (n_samples, n_layers)
        Topological complexity of each sample and layer: the exact norm of
        all its landscapes (:func:`~sklandscapes.stats.topological_complexity`,
        as the experiments store it) or the norm of the kept levels on the
        grid (:func:`~sklandscapes.stats.landscape_norms`).
    y : array-like of shape (n_samples,)
        Group of each sample, e.g. the training threshold.
    band : {"confidence", "std", "quartiles", None}, default="confidence"
        Band around each group's mean: a ``confidence`` band of the mean
        (:func:`~sklandscapes.stats.confidence_band`, bootstrap over the
        samples of the group), the spread of the samples (mean ± one standard
        deviation, cut at 0 when no norm is negative; or the interquartile
        range), or none. The legend says which. A confidence band that
        reaches below 0 is cut at 0 when no norm is negative (the legend
        says so): a mean of norms cannot be negative.
    ax : matplotlib Axes, default=None
        Axes to draw on; ``None`` makes a new figure.
    groups : array-like of shape (n_samples,), default=None
        The unit (network) of each sample. The samples of a unit at one
        label (its input subsamples) are averaged first
        (:func:`~sklandscapes.stats.unit_means`), so that the lines are
        means over units and the bands resample units (or show their
        spread), not the samples of one network.
    y_name : str, default="threshold"
        What ``y`` is (the paper's groups are training thresholds): the title
        of the legend, and named in the title.
    layer_names : sequence of str, default=None
        A name per layer, for the ticks of the x-axis; ``None`` numbers them
        from 0 (the input).
    confidence : float, default=0.95
        Level of the confidence band.
    simultaneous : bool, default=True
        Confidence band for the whole curve (all layers at once) or for each
        layer alone (pointwise).
    n_bootstrap : int, default=1000
        Bootstrap resamples per group for the confidence band.
    random_state : int, RandomState instance or None, default=None
        Seeds the resamples of the confidence band.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One line (the group mean) and one band per group, in order of first
        appearance in ``y``.

    Notes
    -----
    The bootstrap takes the rows of a group as independent: with several
    input subsamples per network, pass ``groups`` for a band of the spread
    between networks.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.plotting import plot_complexity
    >>> fig = plot_complexity(np.random.default_rng(0).random((6, 11)),
    ...                       [0.5, 0.5, 0.9, 0.9, 1.0, 1.0], random_state=0)
    >>> len(fig.axes[0].lines)
    3
    >>> fig.axes[0].get_legend().get_texts()[-1].get_text()
    '95% simultaneous bootstrap band of the mean, cut at 0'
    """
    from matplotlib.patches import Patch

    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 2:
        raise ValueError(
            f"norms must have shape (n_samples, n_layers), got {norms.shape}."
        )
    if band not in ("confidence", "std", "quartiles", None):
        raise ValueError(
            f"band must be 'confidence', 'std', 'quartiles' or None, got {band!r}."
        )
    tick_names = _check_layer_names(layer_names, norms.shape[1])
    if groups is not None:
        norms, y, _ = unit_means(norms, y, groups)
    groups, means = mean_landscapes(norms, y)
    y = np.asarray(y)
    if band == "confidence":
        names, sizes = np.unique(y, return_counts=True)
        if sizes.min() < 2:
            raise ValueError(
                "band='confidence' needs at least 2 samples (units, with groups) "
                "per group; group "
                f"{names[sizes.argmin()]!r} has 1. Pass band=None, or 'std' for "
                "the spread of the samples."
            )
        bands = confidence_band(
            norms,
            y,
            confidence=confidence,
            simultaneous=simultaneous,
            n_bootstrap=n_bootstrap,
            random_state=random_state,
        )
        band_label = f"{bands.description} of the mean"
        # A mean of norms is never negative: a band reaching below 0 (few
        # units, a wide studentized band) is cut there, as the std band is.
        lower = bands.lower
        if np.nanmin(norms) >= 0 and (lower < 0).any():
            lower = np.maximum(lower, 0.0)
            band_label += ", cut at 0"
    else:
        nonnegative = bool(np.nanmin(norms) >= 0)
        band_label = {
            "std": "mean ± 1 std" + (", cut at 0" * nonnegative),
            "quartiles": "interquartile range",
        }.get(band)
    if ax is None:
        fig = _figure(figsize=(5, 3.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    layers = np.arange(norms.shape[1])
    for g in _positions(groups, _distinct_in_order(y), "y"):
        group, mean = groups[g], means[g]
        (line,) = ax.plot(layers, mean, marker="o", ms=3, label=_group_text(group))
        members = norms[y == group]
        if band == "confidence":
            low, high = lower[g], bands.upper[g]
        elif band == "std":
            low, high = _std_band(mean, members.std(0), nonnegative)
        elif band == "quartiles":
            low, high = np.percentile(members, [25, 75], axis=0)
        if band is not None:
            ax.fill_between(layers, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("layer (0: input)" if layer_names is None else "layer")
    ax.set_ylabel("topological complexity $\\|\\lambda\\|$")
    if layer_names is None:
        ax.set_xticks(layers, tick_names)
    else:
        ax.set_xticks(layers, tick_names, rotation=30, ha="right")
    handles, labels = ax.get_legend_handles_labels()
    if band is not None:
        handles.append(Patch(color="0.5", alpha=0.3))
        labels.append(band_label)
    ax.legend(handles, labels, title=y_name, fontsize="small")
    ax.set_title(f"Topological complexity per layer, by {y_name}")
    return fig


def _floor_text(floor):
    """``floor`` rounded up to one significant digit, as short text.

    Rounding up keeps "p ≤ text" true: 1/3000 is written "4e-4", not "3e-4".
    """
    exponent = int(np.floor(np.log10(floor)))
    # round() absorbs the error of the division (0.001 / 1e-3 is 1.0000000000000002).
    mantissa = int(np.ceil(round(floor / 10.0**exponent, 9)))
    if mantissa == 10:
        mantissa, exponent = 1, exponent + 1
    if exponent >= -3:
        return f"{mantissa * 10.0**exponent:.{max(-exponent, 0)}f}"
    return f"{mantissa}e{exponent}"


def _relabelings_text(test):
    """What the null distributions of a fitted test were made of, in words."""
    paired = getattr(test, "unit_", "sample") == "group"
    exhaustive = [record.get("exhaustive", False) for record in test.table_]
    if all(exhaustive):
        if paired:
            return "every sign flip within groups, for each pair"
        return "every permutation of each pair"
    kind = "sign flips within groups" if paired else "permutations"
    text = f"{test.n_permutations} {kind} per pair"
    return text + (", all where fewer" if any(exhaustive) else "")


def plot_pvalues(test, ax=None, alpha=0.05, *, y_name="threshold", order=None):
    """Pairwise p-values as an annotated heat map (Table I).

    A p-value at the floor of the test, ``1 / (n_permutations + 1)`` (no
    relabeling was as extreme as the data), is written as a bound: "≤ 1e-4"
    for 9 999 permutations.

    Parameters
    ----------
    test : PermutationTest
        A fitted :class:`~sklandscapes.PermutationTest`.
    ax : matplotlib Axes, default=None
        Axes to draw on; ``None`` makes a new figure.
    alpha : float, default=0.05
        Cells with p-value at most ``alpha`` are annotated in bold.
    y_name : str, default="threshold"
        What the groups are (the paper's are training thresholds): the label
        of both axes.
    order : array-like, default=None
        Order of the rows and columns: the groups in order of first
        appearance in ``order``, so the ``y`` given to the test can be passed
        as is; ``None`` keeps ``test.groups_`` (sorted).

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes import PermutationTest
    >>> from sklandscapes.plotting import plot_pvalues
    >>> X = np.random.default_rng(0).normal(size=(12, 4))
    >>> X[:4] += 10
    >>> y = ["untrained", "trained (95%)", "trained (99%)"] * 4
    >>> test = PermutationTest(n_permutations=99, random_state=0).fit(X, y)
    >>> fig = plot_pvalues(test, y_name="stage", order=y)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['untrained', 'trained (95%)', 'trained (99%)']
    >>> len(fig.axes[0].texts)
    9
    """
    pvalues = getattr(test, "pvalues_", None)
    if pvalues is None:
        raise ValueError(
            "test must be a fitted PermutationTest (it has no pvalues_); "
            "call fit first."
        )
    rows = _positions(
        np.asarray(test.groups_),
        None if order is None else _distinct_in_order(order),
        "order",
        "a group of the test",
    )
    pvalues = pvalues[np.ix_(rows, rows)]
    groups = [_group_text(test.groups_[g]) for g in rows]
    floor = 1 / (test.n_permutations + 1)
    if ax is None:
        fig = _figure(
            figsize=(1.2 * len(groups) + 2.4, 1.1 * len(groups) + 1.4),
            layout="constrained",
        )
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    image = ax.imshow(pvalues, cmap="viridis_r", vmin=0, vmax=1)
    for (i, j), p in np.ndenumerate(pvalues):
        if i == j:
            text = "—"
        elif p <= floor * (1 + 1e-9):
            text = f"≤ {_floor_text(floor)}"
        else:
            text = f"{p:.3g}"
        ax.text(
            j,
            i,
            text,
            ha="center",
            va="center",
            fontsize=8,
            fontweight="bold" if (i != j and p <= alpha) else None,
            # viridis_r is dark for large p-values, bright yellow for small ones.
            color="white" if p > 0.5 else "black",
        )
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right")
    ax.set_yticks(range(len(groups)), groups)
    ax.set_xlabel(y_name)
    ax.set_ylabel(y_name)
    ax.set_title(f"permutation test p-values\n({_relabelings_text(test)})")
    fig.colorbar(image, ax=ax, label="p-value")
    return fig


def plot_layer_pvalues(
    test, ax=None, alpha=0.05, *, y_name="threshold", order=None, layer_names=None
):
    """Which layers differ: adjusted per-layer p-values, layers by pairs of groups.

    One column per pair of groups and one row per layer; each cell is the
    Westfall-Young adjusted p-value of that layer
    (``test.layer_pvalues_adjusted_``), so that the significant cells of a
    column are the layers that differ between the two groups with the
    family-wise error rate over the layers at most ``alpha``. Significant
    cells are framed and their values starred and bold. A p-value at the
    test's floor ``1 / (n_permutations + 1)`` is written as a bound.

    Parameters
    ----------
    test : PermutationTest
        A :class:`~sklandscapes.PermutationTest` fitted with ``n_layers``.
    ax : matplotlib Axes, default=None
        Axes to draw on; ``None`` makes a new figure.
    alpha : float, default=0.05
        Cells with adjusted p-value at most ``alpha`` are marked.
    y_name : str, default="threshold"
        What the groups are (the paper's are training thresholds), for the
        label of the x-axis: "pair of groups ({y_name})".
    order : array-like, default=None
        Order of the groups in the pairs: their first appearance in
        ``order``; ``None`` keeps ``test.groups_`` (sorted).
    layer_names : sequence of str, default=None
        A name per layer (``test.n_layers`` names), for the rows; ``None``
        numbers them from 0 (the input).

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes import PermutationTest
    >>> from sklandscapes.plotting import plot_layer_pvalues
    >>> X = np.random.default_rng(0).normal(size=(30, 6))
    >>> X[20:, 4:] += 3.0  # layer 2 of group "c" moves
    >>> y = np.repeat(["a", "b", "c"], 10)
    >>> test = PermutationTest(n_permutations=199, n_layers=3, random_state=0)
    >>> fig = plot_layer_pvalues(test.fit(X, y))
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['a vs b', 'a vs c', 'b vs c']
    >>> sum(t.get_text().endswith("*") for t in fig.axes[0].texts)
    2
    """
    from matplotlib.patches import Rectangle

    adjusted = getattr(test, "layer_pvalues_adjusted_", None)
    if adjusted is None:
        raise ValueError(
            "test must be a PermutationTest fitted with n_layers (it has no "
            "layer_pvalues_adjusted_); e.g. PermutationTest(n_layers="
            "vectorizer.shape_[0]).fit(X, y)."
        )
    rows = _positions(
        np.asarray(test.groups_),
        None if order is None else _distinct_in_order(order),
        "order",
        "a group of the test",
    )
    pairs = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1 :]]
    values = np.array([adjusted[a, b] for a, b in pairs]).T  # (n_layers, n_pairs)
    names = [
        f"{_group_text(test.groups_[a])} vs {_group_text(test.groups_[b])}"
        for a, b in pairs
    ]
    n_layers = values.shape[0]
    row_names = _check_layer_names(layer_names, n_layers)
    floor = 1 / (test.n_permutations + 1)
    if ax is None:
        fig = _figure(
            figsize=(1.1 * len(pairs) + 2.6, 0.38 * n_layers + 1.8),
            layout="constrained",
        )
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    image = ax.imshow(values, cmap="viridis_r", vmin=0, vmax=1, aspect="auto")
    for (layer, column), p in np.ndenumerate(values):
        significant = p <= alpha
        text = f"≤ {_floor_text(floor)}" if p <= floor * (1 + 1e-9) else f"{p:.2g}"
        ax.text(
            column,
            layer,
            text + ("*" if significant else ""),
            ha="center",
            va="center",
            fontsize=7,
            fontweight="bold" if significant else None,
            color="white" if p > 0.5 else "black",
        )
        if significant:
            ax.add_patch(
                Rectangle(
                    (column - 0.5, layer - 0.5), 1, 1, fill=False, lw=1.5, ec="red"
                )
            )
    ax.set_xticks(range(len(pairs)), names, rotation=30, ha="right")
    ax.set_yticks(range(n_layers), row_names)
    # "pair of {y_name}s" pluralises "learning rate" and "batch" alike badly.
    ax.set_xlabel(f"pair of groups ({y_name})")
    ax.set_ylabel("layer (0: input)" if layer_names is None else "layer")
    ax.set_title(
        f"Which layers differ (framed, *: adjusted p ≤ {alpha:g})\n"
        f"{_relabelings_text(test)}"
    )
    fig.colorbar(image, ax=ax, label="Westfall-Young adjusted p-value")
    return fig


def plot_training_complexity(
    complexity,
    epochs=None,
    *,
    accuracy=None,
    layer_names=None,
    band="std",
    x_name="epoch",
    fig=None,
):
    """Topological complexity of every layer as training goes on.

    Two panels: a heat map of the complexity of each layer (rows) after each
    recorded epoch (columns), averaged over the networks, and one line per
    layer against the epochs with a band across the networks. With
    ``accuracy``, the second panel puts the training accuracy on the x axis
    instead, as points: accuracy can go down during training, and a line
    through the records in order would double back.

    Parameters
    ----------
    complexity : ndarray of shape (n_networks, n_records, n_layers) \
            or (n_records, n_layers)
        As recorded by :class:`~sklandscapes.nets.TopologicalComplexity`
        (:func:`~sklandscapes.nets.history_complexity`) or in
        :attr:`TrainingResult.topology <sklandscapes.nets.TopologyRecord>`.
        NaN marks a network that no longer trained at that record; it is left
        out of the mean and band there.
    epochs : array-like of shape (n_records,), default=None
        The epoch of each record, strictly increasing (the ``epochs`` that
        :func:`~sklandscapes.nets.history_complexity` and ``TopologyRecord``
        give, 0 being the network before training). ``None``: 0, 1, 2, ...,
        the records of a monitor with ``every=1``.
    accuracy : array-like of shape (n_records,) or (n_networks, n_records), \
            default=None
        The training accuracy at each record (of each network), to draw the
        second panel against it; a record's point is at the mean accuracy of
        the networks measured there. NaN where it is unknown (skorch records
        none before the first epoch): those records are left out of that
        panel. ``None`` draws both panels against the epochs.
    layer_names : sequence of str, default=None
        A name per layer; ``None`` numbers them from 0.
    band : {"std", "range", None}, default="std"
        Band of the lines across networks (error bars of the points with
        ``accuracy``): mean ± one standard deviation (cut at 0 when no value
        is negative, as for complexities, and titled so), or the minimum to
        maximum; ``None`` draws none. Needs several networks.
    x_name : str, default="epoch"
        The label of the epochs' axis (of both panels without ``accuracy``).
    fig : matplotlib Figure, default=None
        Figure to draw on (it gets two axes); ``None`` makes a new one.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The heat map (with its colour bar) and the lines.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.plotting import plot_training_complexity
    >>> complexity = np.random.default_rng(0).random((4, 11, 3))
    >>> fig = plot_training_complexity(complexity, np.arange(11))
    >>> len(fig.axes[1].lines)  # one line per layer
    3
    >>> fig.axes[1].get_xlabel()
    'epoch'

    Against a training accuracy that goes down at epoch 6, as points:

    >>> accuracy = [np.nan, .5, .6, .7, .8, .9, .85, .9, .95, .97, 1.0]
    >>> fig = plot_training_complexity(complexity, np.arange(11),
    ...                                accuracy=accuracy)
    >>> fig.axes[1].get_xlabel(), fig.axes[1].lines[0].get_linestyle()
    ('training accuracy', 'None')
    """
    values, epochs, layer_names = _check_training_complexity(
        complexity, epochs, layer_names, band
    )
    n_networks, _, n_layers = values.shape
    mean, spread = _mean_over_networks(values)
    x_values = None
    if accuracy is not None:
        x_values = _record_accuracy(accuracy, values)
    if fig is None:
        fig = _figure(figsize=(11, 4), layout="constrained")
    heat_ax, line_ax = fig.subplots(1, 2, width_ratios=(1.1, 1))
    how = f"mean of {n_networks} networks" if n_networks > 1 else "one network"
    image = heat_ax.pcolormesh(
        _edges(epochs), np.arange(n_layers + 1) - 0.5, mean.T, cmap="viridis"
    )
    heat_ax.set_yticks(np.arange(n_layers), layer_names, fontsize="small")
    heat_ax.set_xlabel(x_name)
    heat_ax.set_ylabel("layer")
    heat_ax.set_title(f"Complexity per layer ({how})")
    bar = fig.colorbar(image, ax=heat_ax)
    bar.set_label("mean complexity (landscape norm)")
    if x_values is None:
        _complexity_lines(
            line_ax, values, epochs, (mean, spread), layer_names, band, x_name
        )
    else:
        _complexity_points(line_ax, values, x_values, (mean, spread), layer_names, band)
    return fig


def _check_training_complexity(complexity, epochs, layer_names, band):
    """The records as (n_networks, n_records, n_layers), their epochs, names."""
    values = np.asarray(complexity, dtype=np.float64)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3 or 0 in values.shape:
        raise ValueError(
            "complexity must have shape (n_networks, n_records, n_layers) or "
            f"(n_records, n_layers), got {np.shape(complexity)}."
        )
    _, n_records, n_layers = values.shape
    epochs = np.arange(n_records) if epochs is None else np.asarray(epochs, float)
    if epochs.shape != (n_records,):
        raise ValueError(
            f"epochs must have one value per record ({n_records}), got shape "
            f"{epochs.shape}."
        )
    if not (np.isfinite(epochs).all() and (np.diff(epochs) > 0).all()):
        raise ValueError(
            f"epochs must be finite and strictly increasing, got {epochs!r}; "
            "to draw against a training accuracy, which can go down, pass it "
            "as accuracy=."
        )
    layer_names = _check_layer_names(layer_names, n_layers)
    if band not in ("std", "range", None):
        raise ValueError(f"band must be 'std', 'range' or None, got {band!r}.")
    measured = np.isfinite(values).any(axis=2)
    if not measured.any(axis=0).all():
        raise ValueError(
            "every record needs at least one network with finite values; "
            "drop the records where no network was measured."
        )
    return values, epochs, layer_names


def _record_accuracy(accuracy, values):
    """Each record's accuracy: the mean over the networks measured there."""
    n_networks, n_records, _ = values.shape
    accuracy = np.asarray(accuracy, dtype=np.float64)
    if accuracy.shape == (n_records,):
        return accuracy
    if accuracy.shape != (n_networks, n_records):
        raise ValueError(
            f"accuracy must have shape ({n_records},) or ({n_networks}, "
            f"{n_records}), one value per record (and network), got "
            f"{accuracy.shape}."
        )
    measured = np.isfinite(values).any(axis=2) & np.isfinite(accuracy)
    count = measured.sum(axis=0)
    total = np.where(measured, accuracy, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(n_records, np.nan), where=count > 0)


def _mean_over_networks(values):
    """Mean and standard deviation over the networks measured (finite) at each
    record: a stopped network (NaN) counts in none of them."""
    measured = np.isfinite(values).any(axis=2)
    count = measured.sum(axis=0)
    filled = np.where(np.isfinite(values), values, 0.0)
    mean = filled.sum(axis=0) / count[:, None]
    spread = np.sqrt(
        (np.where(np.isfinite(values), values - mean, 0.0) ** 2).sum(axis=0)
        / count[:, None]
    )
    return mean, spread


def _complexity_lines(ax, values, epochs, moments, layer_names, band, x_name):
    """One line per layer against the epochs, with its band across networks."""
    mean, spread = moments
    n_networks, _, n_layers = values.shape
    nonnegative = bool(np.nanmin(values) >= 0)
    colours = _layer_colours(n_layers)
    for layer in range(n_layers):
        ax.plot(epochs, mean[:, layer], color=colours[layer], label=layer_names[layer])
        if band is not None and n_networks > 1:
            low, high = _network_band(
                values, (mean, spread), layer, slice(None), band, nonnegative
            )
            ax.fill_between(epochs, low, high, color=colours[layer], alpha=0.15)
    title = f"Complexity against {x_name}"
    if band is not None and n_networks > 1:
        title += f"\n(bands: {_network_band_text(band, nonnegative)})"
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel(x_name)
    _layer_legend(ax, n_layers)


def _complexity_points(ax, values, accuracy, moments, layer_names, band):
    """One series of points per layer against the records' accuracy."""
    mean, spread = moments
    n_networks, _, n_layers = values.shape
    known = np.isfinite(accuracy)
    if not known.any():
        raise ValueError("accuracy has no finite value; nothing to draw.")
    nonnegative = bool(np.nanmin(values) >= 0)
    colours = _layer_colours(n_layers)
    for layer in range(n_layers):
        centre = mean[known, layer]
        ax.plot(
            accuracy[known],
            centre,
            linestyle="none",
            marker="o",
            markersize=3,
            color=colours[layer],
            label=layer_names[layer],
        )
        if band is not None and n_networks > 1:
            low, high = _network_band(
                values, (mean, spread), layer, known, band, nonnegative
            )
            ax.errorbar(
                accuracy[known],
                centre,
                yerr=[centre - low, high - centre],
                fmt="none",
                ecolor=colours[layer],
                alpha=0.3,
            )
    title = "Complexity against training accuracy\n(one point per record"
    if band is not None and n_networks > 1:
        title += f"; bars: {_network_band_text(band, nonnegative)}"
    ax.set_title(title + ")", fontsize="medium")
    ax.set_xlabel("training accuracy")
    _layer_legend(ax, n_layers)


def _network_band(values, moments, layer, records, band, nonnegative):
    """Low and high ends of one layer's band across networks, at ``records``."""
    if band == "std":
        mean, spread = moments
        return _std_band(mean[records, layer], spread[records, layer], nonnegative)
    return (
        np.nanmin(values[:, records, layer], axis=0),
        np.nanmax(values[:, records, layer], axis=0),
    )


def _network_band_text(band, nonnegative):
    if band == "std":
        return "± 1 std. across networks" + (", cut at 0" * nonnegative)
    return "min to max across networks"


def _layer_legend(ax, n_layers):
    """The complexity axis's label and its legend of layers."""
    ax.set_ylabel("topological complexity (landscape norm)")
    # Outside the axes: the lines of all layers span the whole height.
    ax.legend(
        title="layer",
        fontsize="x-small",
        ncols=2 if n_layers > 12 else 1,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )


def _std_band(mean, std, nonnegative):
    """Mean ± one std; values that are never negative get a band cut at 0."""
    low = mean - std
    if nonnegative:
        low = np.maximum(low, 0.0)
    return low, mean + std


def _edges(centres):
    """Cell edges around increasing centres, for pcolormesh."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middles = (centres[1:] + centres[:-1]) / 2
    return np.r_[2 * centres[0] - middles[0], middles, 2 * centres[-1] - middles[-1]]


def _layer_colours(n_layers):
    from matplotlib import colormaps

    # Shallow to deep along one colour map, so the order reads at a glance.
    return colormaps["plasma"](np.linspace(0.0, 0.85, n_layers))
