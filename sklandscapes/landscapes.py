"""Persistence landscapes on a fixed grid, exact and vectorized (paper II-C)."""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sklandscapes._compat import Interval, StrOptions, _fit_context
from sklandscapes._validation import (
    binary_exponent,
    check_allocation,
    check_homology_dimensions,
    check_layered_diagrams,
    check_same_layout,
)
from sklandscapes.exceptions import GridWarning

__all__ = [
    "LandscapeVectorizer",
    "all_levels_grid_squares",
    "landscape_depth",
    "landscape_values",
    "level_shares",
    "quadrature_weights",
    "reshape_landscapes",
    "tent_squared_integrals",
]

# Diagrams are handled in blocks of about this many work entries, which bounds
# the memory of a block.
_ENTRIES_PER_BLOCK = 1 << 18
_TENTS_PER_BLOCK = 1 << 16
# (pair, grid point) entries per block of all_levels_grid_squares.
_SQUARES_PER_BLOCK = 1 << 20
_MAX_DIAGRAMS_PER_BLOCK = 64
# Two exact methods: one costs about the total number of grid points under the
# tents of a diagram (its support), the other about n_bins * n_landscapes per
# diagram. Measured here, the first is the cheaper below this ratio.
_SUPPORT_PER_CELL = 0.75
# Rows centred at a time to learn scale_ (bounds the centred copy's memory).
_ROWS_PER_SCALE_BLOCK = 1024
# A mean squared distance below (this many ulps per training row)^2 of the
# mean squared norm is rounding, not spread (as in LandscapeKernel's gamma_).
_ROUNDING_ULPS = 64


def quadrature_weights(grid):
    """Trapezoid-rule weights of a grid: the package's one quadrature.

    Every inner product, norm and distance of landscapes in sklandscapes is
    ``sum_i w_i f(t_i) g(t_i)`` with these weights, i.e. the trapezoid rule.
    Landscapes are piecewise linear, so it is exact for ``f = g`` up to the
    kinks that fall between grid points.

    Parameters
    ----------
    grid : array-like of shape (n_bins,)
        Increasing grid, at least two points.

    Returns
    -------
    weights : ndarray of shape (n_bins,)

    Examples
    --------
    >>> from sklandscapes.landscapes import quadrature_weights
    >>> quadrature_weights([0.0, 0.5, 1.0])
    array([0.25, 0.5 , 0.25])
    """
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or len(grid) < 2 or not (np.diff(grid) > 0).all():
        raise ValueError(
            f"grid must be an increasing 1-D array of at least 2 points, got {grid!r}."
        )
    steps = np.diff(grid)
    weights = np.zeros_like(grid)
    weights[:-1] += steps / 2
    weights[1:] += steps / 2
    return weights


def landscape_values(diagrams, grid, n_landscapes):
    """Exact values of the first landscapes of many diagrams on one grid.

    ``lambda_k(t)`` is the k-th largest value of ``max(0, min(t - b, d - t))``
    over the pairs ``(b, d)`` of a diagram (Bubenik 2015; no sqrt(2) factor).

    Parameters
    ----------
    diagrams : sequence of ndarray of shape (n_pairs, 2)
        Finite (birth, death) pairs; truncate infinite deaths beforehand.
    grid : ndarray of shape (n_bins,)
        Increasing evaluation points.
    n_landscapes : int
        Number of landscape functions ``lambda_1 .. lambda_K``.

    Returns
    -------
    values : ndarray of shape (n_diagrams, n_landscapes, n_bins)

    Notes
    -----
    Two exact algorithms share the work, each diagram going to the cheaper:
    one visits the grid points under every tent (its cost is the support of
    the pairs on the grid), the other sweeps the grid with running top-K of
    the deaths and births of the pairs sorted by their middles (its cost is
    about ``n_bins * n_landscapes`` per diagram). Both return the tent values
    themselves, ``t - b`` or ``d - t``, so no rounding is added.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.landscapes import landscape_values
    >>> values = landscape_values([np.array([[0.0, 2.0], [1.0, 3.0]])],
    ...                           np.arange(5.0), n_landscapes=2)
    >>> values[0]
    array([[0., 1., 1., 0., 0.],
           [0., 0., 0., 0., 0.]])
    """
    grid = np.asarray(grid, dtype=np.float64)
    n_diagrams, n_bins = len(diagrams), len(grid)
    values = np.zeros((n_diagrams, n_landscapes, n_bins))
    diagrams = [np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in diagrams]
    counts = np.array([len(d) for d in diagrams], dtype=np.intp)
    if counts.sum() == 0 or n_bins == 0:
        return values
    pairs = np.concatenate(diagrams)
    births, deaths = pairs[:, 0], pairs[:, 1]
    owner = np.repeat(np.arange(n_diagrams), counts)
    # The tent of (b, d) is positive exactly at the grid points first, ...,
    # first + length - 1 (t > b and t < d), whatever the rounding of the grid.
    first = _searchsorted(grid, births, side="right")
    lengths = _searchsorted(grid, deaths, side="left") - first
    np.maximum(lengths, 0, out=lengths)
    support = np.bincount(owner, weights=lengths, minlength=n_diagrams)
    by_tents = support < _SUPPORT_PER_CELL * n_bins * n_landscapes
    chosen = np.flatnonzero(by_tents)
    if len(chosen):
        keep = by_tents[owner]
        renumber = np.cumsum(by_tents) - 1
        _values_by_tents(
            values,
            chosen,
            births[keep],
            deaths[keep],
            renumber[owner[keep]],
            first[keep],
            lengths[keep],
            len(chosen),
            grid,
            n_landscapes,
        )
    chosen = np.flatnonzero(~by_tents)
    if len(chosen):
        _values_by_sweep(
            values, chosen, [diagrams[i] for i in chosen], counts[chosen], grid
        )
    return values


def _values_by_tents(
    values, rows, births, deaths, owner, first, lengths, n_diagrams, grid, n_landscapes
):
    """``values[rows]`` from the grid points under each tent.

    The work is proportional to the support of the pairs on the grid, which
    suits diagrams of short pairs. ``owner`` numbers the diagrams from 0, and
    diagram ``i`` is ``values[rows[i]]``.
    """
    n_bins = len(grid)
    pair_offsets = np.zeros(n_diagrams + 1, dtype=np.intp)
    np.cumsum(np.bincount(owner, minlength=n_diagrams), out=pair_offsets[1:])
    entry_offsets = np.concatenate([[0], np.cumsum(lengths)])[pair_offsets]
    tiled_grid = np.tile(grid, min(n_diagrams, _MAX_DIAGRAMS_PER_BLOCK))
    start = 0
    while start < n_diagrams:
        budget = entry_offsets[start] + _TENTS_PER_BLOCK
        stop = int(np.searchsorted(entry_offsets, budget, side="right")) - 1
        stop = min(max(stop, start + 1), start + _MAX_DIAGRAMS_PER_BLOCK, n_diagrams)
        block = slice(pair_offsets[start], pair_offsets[stop])
        top = _top_tents(
            births[block],
            deaths[block],
            first[block] + (owner[block] - start) * n_bins,
            lengths[block],
            (stop - start) * n_bins,
            tiled_grid,
            n_landscapes,
        )
        values[rows[start:stop]] = top.reshape(n_landscapes, -1, n_bins).swapaxes(0, 1)
        start = stop


def _values_by_sweep(values, rows, diagrams, counts, grid):
    """``values[rows]`` by sweeping the grid, which suits long pairs.

    The work is about ``n_bins * n_landscapes`` per diagram, whatever the
    lengths of its pairs; see :func:`_block_values`.
    """
    n_diagrams, n_bins = len(diagrams), len(grid)
    n_landscapes = values.shape[1]
    # Blocks of diagrams of similar sizes, so that padding them to a common
    # number of pairs costs little.
    by_size = np.argsort(counts, kind="stable")
    per_diagram = (n_bins + counts[by_size]) * n_landscapes
    max_rows = max(1, _ENTRIES_PER_BLOCK // (n_bins * n_landscapes))
    start = 0
    while start < n_diagrams:
        # Sizes increase along by_size, so the last diagram of a block is its
        # widest: stop before the block would exceed the budget.
        n_block = np.arange(1, min(max_rows, n_diagrams - start) + 1)
        fits = n_block * per_diagram[start : start + len(n_block)] <= _ENTRIES_PER_BLOCK
        stop = start + max(1, int(np.count_nonzero(fits)))
        chosen = by_size[start:stop]
        if counts[chosen[-1]] > 0:
            values[rows[chosen]] = _block_values(
                [diagrams[i] for i in chosen], counts[chosen], grid, n_landscapes
            )
        start = stop


def _block_values(diagrams, counts, grid, n_landscapes):
    """``landscape_values`` of a few diagrams, padded to one width.

    A tent ``min(t - b, d - t)`` is on its way down (``d - t``) at the grid
    points ``t`` right of its middle ``m = (b + d) / 2`` and on its way up
    (``t - b``) left of it. With the pairs of a diagram sorted by middle, the
    pairs with ``m <= t`` form a prefix and the others a suffix, so the K
    largest tent values at ``t`` are among the K largest deaths of the prefix
    (minus ``t``) and the K smallest births of the suffix (``t`` minus them).
    Running top-K of every prefix and suffix cost ``O(K n)`` per diagram, and
    the k-th largest of two sorted lists ``A`` and ``B`` is
    ``max_{i=0..k} min(A_i, B_{k-i})`` (with ``A_0 = B_0 = inf``). The values
    are the tent values themselves (``d - t`` or ``t - b``), not interpolated.
    """
    n_rows, n_bins = len(diagrams), len(grid)
    width = int(counts.max())
    real = np.arange(width) < counts[:, None]
    pairs = np.concatenate(diagrams)
    births = np.full((n_rows, width), np.inf)
    deaths = np.full((n_rows, width), -np.inf)
    births[real], deaths[real] = pairs[:, 0], pairs[:, 1]
    with np.errstate(invalid="ignore", over="ignore"):
        middle = births + (deaths - births) / 2
    middle[~real] = np.inf
    order = np.argsort(middle, axis=1, kind="stable")
    births = np.take_along_axis(births, order, axis=1)
    deaths = np.take_along_axis(deaths, order, axis=1)
    middle = np.take_along_axis(middle, order, axis=1)[real]
    down_top = _running_top(deaths, n_landscapes)
    up_top = -_running_top(-births[:, ::-1], n_landscapes)[:, :, ::-1]
    up_top = np.ascontiguousarray(up_top)
    # n_left[r, j]: pairs of diagram r whose middle is <= grid[j].
    cell = np.searchsorted(grid, middle, side="left")
    cell += np.repeat(np.arange(n_rows) * (n_bins + 1), counts)
    n_left = np.bincount(cell, minlength=n_rows * (n_bins + 1))
    n_left = n_left.reshape(n_rows, n_bins + 1)[:, :n_bins].cumsum(axis=1)
    row_start = (np.arange(n_rows) * width)[:, None]
    last_left = row_start + np.maximum(n_left - 1, 0)
    first_right = row_start + np.minimum(n_left, width - 1)
    no_left, no_right = n_left == 0, n_left >= counts[:, None]
    down, up = [], []
    for k in range(n_landscapes):
        value = np.take(down_top[k], last_left)
        np.subtract(value, grid, out=value)
        value[no_left] = -np.inf
        down.append(value)
        value = np.take(up_top[k], first_right)
        np.subtract(grid, value, out=value)
        value[no_right] = -np.inf
        up.append(value)
    out = np.empty((n_landscapes, n_rows, n_bins))
    scratch = np.empty((n_rows, n_bins))
    for k in range(n_landscapes):
        best = out[k]
        np.maximum(down[k], up[k], out=best)
        for i in range(k):
            np.minimum(down[i], up[k - 1 - i], out=scratch)
            np.maximum(best, scratch, out=best)
        np.maximum(best, 0.0, out=best)
    return out.swapaxes(0, 1)


def _running_top(x, n_top):
    """The ``n_top`` largest values of every prefix of each row of ``x``.

    Returns an array ``(n_top, n_rows, n_cols)``; missing ranks are ``-inf``.
    The k-th largest of a prefix is the running maximum of
    ``min(x[j], (k-1)-th largest of the prefix before j)``.
    """
    out = np.empty((n_top,) + x.shape)
    np.maximum.accumulate(x, axis=1, out=out[0])
    before = np.empty_like(x)
    for k in range(1, n_top):
        before[:, 0] = -np.inf
        before[:, 1:] = out[k - 1][:, :-1]
        np.minimum(before, x, out=before)
        np.maximum.accumulate(before, axis=1, out=out[k])
    return out


def _searchsorted(grid, x, side):
    """``np.searchsorted(grid, x, side)``, by arithmetic where the grid is even.

    On an evenly spaced grid the position is one division away. Rounding can
    put it one off, so it is moved by one step where needed and then checked
    with exact comparisons; the positions that fail the check (those of an
    uneven grid) fall back to the binary search, which is 3-4x slower.
    """
    n_bins = len(grid)
    if n_bins < 2:
        return np.searchsorted(grid, x, side=side)
    step = (grid[-1] - grid[0]) / (n_bins - 1)
    with np.errstate(invalid="ignore", over="ignore"):
        guess = np.floor((x - grid[0]) / step) + 1
    guess = np.clip(np.nan_to_num(guess), 0, n_bins).astype(np.intp)
    # edges[i] is grid[i - 1]; position i is right when x lies after edges[i]
    # and not after edges[i + 1], where "after" is >= for side="right" (equal
    # values go left of x) and > for side="left".
    edges = np.concatenate([[-np.inf], grid, [np.inf]])
    after = np.less_equal if side == "right" else np.less
    guess += after(edges[guess + 1], x)
    np.minimum(guess, n_bins, out=guess)
    guess -= ~after(edges[guess], x)
    np.maximum(guess, 0, out=guess)
    wrong = ~after(edges[guess], x) | after(edges[guess + 1], x)
    if wrong.any():
        guess[wrong] = np.searchsorted(grid, x[wrong], side=side)
    return guess


def _tent_values(births, deaths, first, lengths, grid):
    """The positive values of the tents: pair ``i`` at ``grid[first[i]]``, ...,
    ``grid[first[i] + lengths[i] - 1]``. Returns the positions in ``grid`` and
    the values ``min(t - b, d - t)``, pair after pair."""
    index = np.arange(int(lengths.sum()))
    index -= np.repeat(np.cumsum(lengths) - lengths - first, lengths)
    t = grid[index]
    value = t - np.repeat(births, lengths)
    np.minimum(value, np.repeat(deaths, lengths) - t, out=value)
    return index, value


def _top_tents(births, deaths, first_cell, lengths, n_cells, tiled_grid, n_landscapes):
    """The ``n_landscapes`` largest tent values at each cell of a block.

    A cell is a (diagram, grid point) of the block; pair ``i`` has a positive
    tent at the cells ``first_cell[i]``, ..., ``first_cell[i] + lengths[i] - 1``,
    so the work is proportional to the total support of the pairs on the grid
    rather than to ``n_pairs * n_bins``. ``tiled_grid[c]`` is the grid point of
    cell ``c``. The largest value per cell is peeled off one level at a time
    with scattered maxima.
    """
    top = np.zeros((n_landscapes, n_cells))
    n_entries = int(lengths.sum())
    if n_entries == 0:
        return top
    cell, value = _tent_values(births, deaths, first_cell, lengths, tiled_grid)
    for level, level_max in enumerate(top):
        np.maximum.at(level_max, cell, value)
        if level == n_landscapes - 1:
            break
        keep = value < level_max[cell]
        n_maxima = n_entries - np.count_nonzero(keep)
        if n_maxima > np.count_nonzero(level_max):
            # Tied maxima: peel one per cell; the others fill the next levels.
            maxima = np.flatnonzero(~keep)
            one_per_cell = np.empty(n_cells, dtype=np.intp)
            one_per_cell[cell[maxima]] = maxima
            keep[maxima] = True
            keep[one_per_cell[cell[maxima]]] = False
        cell, value = cell[keep], value[keep]
        n_entries = len(value)
        if n_entries == 0:
            break
    return top


def reshape_landscapes(X, n_layers, n_homology_dimensions, n_landscapes):
    """Reshape rows to ``(n_samples, n_layers, n_dims, n_landscapes, n_bins)``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Output of :class:`LandscapeVectorizer`.
    n_layers, n_homology_dimensions, n_landscapes : int
        The layout; ``n_bins`` is inferred.

    Returns
    -------
    landscapes : ndarray of shape (n_samples, n_layers, n_homology_dimensions, \
            n_landscapes, n_bins)
        A view of ``X`` when possible.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes import reshape_landscapes
    >>> reshape_landscapes(np.zeros((4, 2 * 1 * 3 * 5)), 2, 1, 3).shape
    (4, 2, 1, 3, 5)
    """
    X = np.asarray(X)
    per_bin = n_layers * n_homology_dimensions * n_landscapes
    if X.ndim != 2 or per_bin <= 0 or X.shape[1] % per_bin:
        raise ValueError(
            f"X of shape {X.shape} does not split into n_layers={n_layers} x "
            f"n_homology_dimensions={n_homology_dimensions} x "
            f"n_landscapes={n_landscapes} landscape functions."
        )
    return X.reshape(len(X), n_layers, n_homology_dimensions, n_landscapes, -1)


class LandscapeVectorizer(TransformerMixin, BaseEstimator):
    """Persistence landscapes of layered diagrams as one feature vector per sample.

    Each diagram gives its first ``n_landscapes`` landscape functions, evaluated
    exactly on one fixed grid; a sample's row concatenates them in the order
    (layer, homology dimension, k, grid point).

    Parameters
    ----------
    n_landscapes : int or "auto", default=5
        Number of landscape functions ``lambda_1 .. lambda_K`` per diagram.
        ``"auto"`` chooses it in ``fit`` from the training diagrams: the
        fewest levels that, in every (layer, homology dimension), carry at
        least 99% of the squared norm of the complete landscapes (all levels)
        on the grid, summed over the training samples, or beyond which one
        more level would add less than 0.1% of it; at most 128. The second
        clause stops at sampling noise: hundreds of tiny simultaneous bars
        (a lattice's small squares, say) spread a percent or two of the norm
        over hundreds of levels. ``level_share_`` says what was kept. The
        number is then fixed, so ``transform``'s output width does not depend
        on the data it is given. See :func:`level_shares`.
    sample_range : (float, float) or "auto", default=(0.0, 1.0)
        Ends of the grid, both included. After
        ``ActivationNormalizer(method="global")`` every filtration value lies in
        [0, 1]. ``"auto"`` learns the range in ``fit`` from the smallest birth to
        the largest finite death of the training diagrams. The grid must be
        finite and strictly increasing: ends whose difference overflows, or
        too close for ``resolution`` distinct floats, raise ``ValueError``.
    resolution : int, default=201
        Number of grid points (at least 2).
    weighting : {None, "l2"}, default=None
        ``None``: the landscape values themselves. ``"l2"``: each column times
        the square root of its trapezoid weight on the grid
        (:func:`quadrature_weights`), so that the plain dot product of two rows
        is the L2 inner product of their landscapes (paper eq. 1), and the
        Euclidean norm and distance those of the landscapes, at every
        ``resolution``. Every scikit-learn estimator then sees the geometry of
        the landscapes: ``LandscapeKernel()`` (with ``grid=None``),
        ``SVC(kernel="linear")``, ``PCA``. Recommended in a ``Pipeline``,
        especially under a search over ``resolution``. Plot and average
        unweighted vectors, which are the landscape values.
    scale : {"auto", "unit_variance"} or None, default="auto"
        One constant ``scale_``, learnt in ``fit`` and applied by every
        ``transform``, that multiplies every column. ``"unit_variance"``: the
        constant that gives the training rows a mean squared (Euclidean)
        distance of 1 to their mean, i.e. columns whose variances sum to 1.
        ``None``: 1.0, the values as they are. ``"auto"``:
        ``"unit_variance"`` with ``weighting="l2"``, ``None`` otherwise. The
        geometry stays that of the landscapes up to that one constant: with
        ``weighting="l2"`` the dot product of two rows is ``scale_**2`` times
        the L2 inner product of eq. (1), and norms and distances are
        ``scale_`` times theirs. Landscape vectors are small (rows of
        ``weighting="l2"`` landscapes of normalized activations have norms of
        about 0.005 to 0.05), so without the scale an ``SVC`` needs a ``C``
        of 1e4 to 1e5 to fit them at all; with it, scikit-learn's default
        ``C=1`` and the usual grids (0.1 to 100) apply. Pass ``None`` for the
        integrals themselves (e.g. norms in the units of the filtration).
    homology_dimensions : int, sequence of int or None, default=None
        The homology dimension of each diagram on the last axis of ``X``, the
        same value as ``RipsPersistence(homology_dimensions=...)``. It only
        names the features: ``layer3_H1_k2_t057``. ``None``: the diagrams are
        named by their position on that axis, ``layer3_diagram0_k2_t057``.
        ``fit`` checks that there is one per diagram.

    Attributes
    ----------
    grid_ : ndarray of shape (resolution,)
        The grid used by ``transform``, fixed in ``fit`` so that train and test
        features align.
    n_layers_ : int
        Number of layers seen in ``fit``.
    n_homology_dimensions_ : int
        Number of homology dimensions seen in ``fit``.
    homology_dimensions_ : tuple of int or None
        ``homology_dimensions`` as checked in ``fit``, which the feature
        names follow.
    n_landscapes_ : int
        Landscape functions per diagram: ``n_landscapes``, or the number
        ``"auto"`` chose.
    level_share_ : ndarray of shape (n_layers, n_homology_dimensions)
        With ``n_landscapes="auto"`` only: the share of the training
        landscapes' squared norm (all levels, on the grid) that the kept levels
        carry, per layer and homology dimension.
    shape_ : tuple of int
        ``(n_layers_, n_homology_dimensions_, n_landscapes_, resolution)``: the
        layout of each output row, as taken by :func:`reshape_landscapes`,
        :func:`~sklandscapes.stats.landscape_norms` and the plots.
    scale_ : float
        The constant that multiplies every column (see ``scale``): the inverse
        square root of the training rows' mean squared distance to their mean
        (before scaling), or 1.0 with ``scale=None``, with ``"auto"`` and
        ``weighting=None``, and when the training rows are all equal (up to
        rounding), which leaves no spread to scale.

    See Also
    --------
    RipsPersistence : Produces the diagrams.
    LandscapeKernel : Inner products of these vectors.
    reshape_landscapes : Rows back to (layer, dimension, k, grid point).

    Notes
    -----
    Landscapes follow Bubenik (2015) and the paper:
    ``lambda_k(t) = k-th largest of max(0, min(t - b, d - t))``, with no sqrt(2)
    factor. :class:`gudhi.representations.Landscape` returns these values times
    sqrt(2).

    A death of ``inf`` (an essential class) is truncated at the end of the grid,
    ``grid_[-1]``: its tent rises from the birth and comes back to 0 there.

    Landscapes are evaluated exactly at the grid points (no sampling error at
    the points); integrals between them use the trapezoid rule of
    :func:`~sklandscapes.landscapes.quadrature_weights`.

    References
    ----------
    .. [1] P. Bubenik. "Statistical topological data analysis using
       persistence landscapes", JMLR 16, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes import LandscapeVectorizer
    >>> diagram = np.array([[0.0, 0.5], [0.25, 0.75]])
    >>> vectorizer = LandscapeVectorizer(n_landscapes=2, resolution=5)
    >>> vectorizer.fit_transform([diagram])
    array([[0.  , 0.25, 0.25, 0.  , 0.  , 0.  , 0.  , 0.  , 0.  , 0.  ]])
    >>> vectorizer.get_feature_names_out()[:2]
    array(['layer0_diagram0_k1_t0', 'layer0_diagram0_k1_t1'], dtype=object)
    >>> LandscapeVectorizer(resolution=2, homology_dimensions=(1,)).fit(
    ...     [diagram]
    ... ).get_feature_names_out()
    array(['layer0_H1_k1_t0', 'layer0_H1_k1_t1', 'layer0_H1_k2_t0',
           'layer0_H1_k2_t1', 'layer0_H1_k3_t0', 'layer0_H1_k3_t1',
           'layer0_H1_k4_t0', 'layer0_H1_k4_t1', 'layer0_H1_k5_t0',
           'layer0_H1_k5_t1'], dtype=object)
    """

    _parameter_constraints = {
        "n_landscapes": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "sample_range": [StrOptions({"auto"}), tuple, list],
        "resolution": [Interval(numbers.Integral, 2, None, closed="left")],
        "weighting": [StrOptions({"l2"}), None],
        "scale": [StrOptions({"auto", "unit_variance"}), None],
        "homology_dimensions": [
            Interval(numbers.Integral, 0, None, closed="left"),
            "array-like",
            None,
        ],
    }

    def __init__(
        self,
        n_landscapes=5,
        sample_range=(0.0, 1.0),
        resolution=201,
        weighting=None,
        scale="auto",
        homology_dimensions=None,
    ):
        self.n_landscapes = n_landscapes
        self.sample_range = sample_range
        self.resolution = resolution
        self.weighting = weighting
        self.scale = scale
        self.homology_dimensions = homology_dimensions

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fix the grid and the layout of the diagrams.

        Parameters
        ----------
        X : object array of shape (n_samples, n_layers, n_homology_dimensions) \
                or sequence of diagrams
            Cells are (n_pairs, 2) arrays of (birth, death).
        y : None
            Ignored.

        Returns
        -------
        self : LandscapeVectorizer
        """
        self._fit(check_layered_diagrams(X))
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit to the diagrams and return their vectors, computed once.

        Equal to ``fit(X).transform(X)``, bit for bit.

        Parameters
        ----------
        X : object array of shape (n_samples, n_layers, n_homology_dimensions) \
                or sequence of diagrams
        y : None
            Ignored.

        Returns
        -------
        Xt : ndarray of shape (n_samples, n_layers * n_homology_dimensions * \
                n_landscapes * resolution)
        """
        diagrams = check_layered_diagrams(X)
        values = self._fit(diagrams)
        if values is None:
            values = self._values(diagrams)
        return self._scaled(values)

    def _fit(self, diagrams):
        """Learn the grid, the layout and the scale; returns the training
        rows before the scale where the scale needed them, else None."""
        _check_vectorizer_params(self)
        self.grid_ = _checked_grid(self._grid_range(diagrams), self)
        self.n_layers_, self.n_homology_dimensions_ = diagrams.shape[1:]
        self.homology_dimensions_ = _checked_dimensions(
            self.homology_dimensions, self.n_homology_dimensions_
        )
        if self.n_landscapes == "auto":
            depth = max([landscape_depth(d) for d in diagrams.ravel()] + [1])
            most = min(depth, _AUTO_MAX_LEVELS)
            n_levels = None
            tried = min(most, _AUTO_FIRST_LEVELS)
            while n_levels is None:
                shares = level_shares(diagrams, self.grid_, max_levels=tried)
                # The first K at which every cell either carries the target
                # share or gains less than _AUTO_GAIN from one more level. The
                # gains never grow with K (lambda_k >= lambda_k+1), so no later
                # level adds more. The last level's gain is only known at the
                # deepest level (then 0): short of it, only its share can
                # qualify it, and otherwise twice as many levels are tried.
                gains = np.diff(shares, axis=2, append=shares[..., -1:])
                enough = ((shares >= _AUTO_SHARE) | (gains < _AUTO_GAIN)).all(
                    axis=(0, 1)
                )
                if tried < most:
                    enough[-1] = (shares[..., -1] >= _AUTO_SHARE).all()
                if enough.any():
                    n_levels = int(np.argmax(enough)) + 1
                elif tried == most:
                    n_levels = most
                else:
                    tried = min(2 * tried, most)
            self.n_landscapes_ = n_levels
            self.level_share_ = shares[:, :, n_levels - 1]
        else:
            self.n_landscapes_ = int(self.n_landscapes)
        self.shape_ = (
            self.n_layers_,
            self.n_homology_dimensions_,
            self.n_landscapes_,
            self.resolution,
        )
        self.scale_ = 1.0
        if self._scale_rule() is None:
            return None
        values = self._values(diagrams)
        self.scale_ = _unit_variance_scale(values)
        return values

    def _scale_rule(self):
        if self.scale == "auto":
            return "unit_variance" if self.weighting == "l2" else None
        return self.scale

    def _values(self, diagrams):
        """The rows before the scale: landscape values, weighted or not."""
        _check_values_fit(diagrams.size, self.shape_)
        end = self.grid_[-1]
        cells = [np.where(np.isinf(d), end, d) for d in diagrams.ravel()]
        values = landscape_values(cells, self.grid_, self.n_landscapes_)
        if self.weighting == "l2":
            values *= np.sqrt(quadrature_weights(self.grid_))
        return values.reshape(len(diagrams), -1)

    def _scaled(self, values):
        """The output rows: ``values`` times ``scale_`` (in place)."""
        if self.scale_ != 1.0:
            values *= self.scale_
        return values

    def _grid_range(self, diagrams):
        if not isinstance(self.sample_range, str):
            if len(self.sample_range) != 2:
                raise ValueError(
                    "sample_range must be 'auto' or a pair (start, stop), got "
                    f"{self.sample_range!r}."
                )
            start, stop = (float(v) for v in self.sample_range)
            if not (np.isfinite(start) and np.isfinite(stop) and start < stop):
                raise ValueError(
                    "sample_range must be finite with start < stop, got "
                    f"{self.sample_range!r}."
                )
            return start, stop
        pairs = np.concatenate([d for d in diagrams.ravel()] + [np.empty((0, 2))])
        values = pairs[np.isfinite(pairs)]
        if values.size == 0 or values.min() == values.max():
            warnings.warn(
                "sample_range='auto' found no finite interval in the training "
                "diagrams; using (0.0, 1.0). Pass sample_range=(start, stop) to "
                "choose the grid and silence this warning.",
                GridWarning,
                stacklevel=3,
            )
            return 0.0, 1.0
        return float(values.min()), float(values.max())

    def transform(self, X):
        """Landscape vectors of the diagrams on the fitted grid.

        Parameters
        ----------
        X : object array of shape (n_samples, n_layers, n_homology_dimensions) \
                or sequence of diagrams

        Returns
        -------
        Xt : ndarray of shape (n_samples, n_layers * n_homology_dimensions * \
                n_landscapes * resolution)
        """
        check_is_fitted(self)
        diagrams = check_layered_diagrams(X)
        check_same_layout(
            diagrams.shape, (None, self.n_layers_, self.n_homology_dimensions_)
        )
        return self._scaled(self._values(diagrams))

    def get_feature_names_out(self, input_features=None):
        """Feature names such as ``layer3_H1_k2_t057`` (k from 1, t the grid index).

        The diagrams are named ``H{d}`` after ``homology_dimensions``, or
        ``diagram0``, ``diagram1``, ... by position when it is ``None``: the
        same names whether a ``Pipeline`` or ``set_output`` asks, so that the
        columns of a DataFrame output are these names.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Names of the diagrams on the last axis of ``X`` (a ``Pipeline``
            passes ``RipsPersistence``'s, e.g. ``["H1"]``). They are checked,
            not used: one per diagram, and with ``homology_dimensions`` given,
            the names ``H{d}`` it makes.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        if self.homology_dimensions_ is None:
            dims = [f"diagram{i}" for i in range(self.n_homology_dimensions_)]
        else:
            dims = [f"H{d}" for d in self.homology_dimensions_]
        _check_input_names(input_features, dims, self.homology_dimensions_)
        width = len(str(self.resolution - 1))
        names = [
            f"layer{layer}_{dim}_k{k + 1}_t{i:0{width}d}"
            for layer in range(self.n_layers_)
            for dim in dims
            for k in range(self.n_landscapes_)
            for i in range(self.resolution)
        ]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags


# Rule of n_landscapes="auto": keep the fewest levels that carry this share of
# the squared norm of the training diagrams' complete landscapes, or after
# which one more level would add less than _AUTO_GAIN of it, in every (layer,
# homology dimension); never more than _AUTO_MAX_LEVELS. The second clause
# stops at the noise: a lattice's hundreds of tiny, simultaneous bars spread
# a percent or two of the norm over hundreds of levels.
_AUTO_SHARE = 0.99
_AUTO_GAIN = 0.001
_AUTO_MAX_LEVELS = 128
# Levels computed first; twice as many while no K short of them qualifies.
_AUTO_FIRST_LEVELS = 32
_DIAGRAMS_PER_SHARE_BLOCK = 64


def tent_squared_integrals(diagrams, sample_range):
    """Exact squared L2 norm of every level of landscapes together, per diagram.

    The values ``lambda_1(t), lambda_2(t), ...`` at a point ``t`` are the
    values of the tents ``max(0, min(t - b, d - t))`` of the pairs at ``t``,
    sorted, so ``sum_k integral lambda_k^2 = sum_pairs integral tent^2``: a
    closed form with no grid. A pair inside the range contributes
    ``2 h^3 / 3`` with ``h = (d - b) / 2``; the integral is taken over
    ``sample_range`` only, and an infinite death is truncated at its end, as
    :class:`LandscapeVectorizer` does.

    Parameters
    ----------
    diagrams : sequence of ndarray of shape (n_pairs, 2)
        (birth, death) pairs.
    sample_range : (float, float)
        The interval of integration (the landscape grid's ends).

    Returns
    -------
    squared_norms : ndarray of shape (n_diagrams,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.landscapes import tent_squared_integrals
    >>> # h = 0.5: 2 h^3 / 3 = 1/12; the second pair is cut at t = 1.
    >>> tent_squared_integrals([np.array([[0.0, 1.0]]), np.array([[0.0, 2.0]])],
    ...                        (0.0, 1.0)) * 12
    array([1., 4.])
    """
    start, stop = (float(v) for v in sample_range)
    out = np.zeros(len(diagrams))
    for i, diagram in enumerate(diagrams):
        pairs = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
        births = pairs[:, 0]
        deaths = np.where(np.isinf(pairs[:, 1]), stop, pairs[:, 1])
        middles = (births + deaths) / 2
        # Rising side (t - b) on [b, m], falling side (d - t) on [m, d], each
        # clipped to [start, stop]; an empty piece contributes 0.
        low = np.maximum(births, start)
        high = np.minimum(middles, stop)
        rising = np.where(
            high > low, ((high - births) ** 3 - (low - births) ** 3) / 3, 0.0
        )
        low = np.maximum(middles, start)
        high = np.minimum(deaths, stop)
        falling = np.where(
            high > low, ((deaths - low) ** 3 - (deaths - high) ** 3) / 3, 0.0
        )
        out[i] = rising.sum() + falling.sum()
    return out


def landscape_depth(diagram):
    """Most pairs alive at once: the number of landscape levels that are not 0.

    ``lambda_k`` is identically 0 for every ``k`` above it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.landscapes import landscape_depth
    >>> landscape_depth(np.array([[0.0, 2.0], [1.0, 3.0], [2.0, 4.0]]))
    2
    """
    pairs = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    pairs = pairs[pairs[:, 1] > pairs[:, 0]]
    if len(pairs) == 0:
        return 0
    # Open intervals: a death at t comes before a birth at t.
    times = np.concatenate([pairs[:, 0], pairs[:, 1]])
    steps = np.concatenate([np.ones(len(pairs)), -np.ones(len(pairs))])
    order = np.lexsort((steps, times))
    return int(np.cumsum(steps[order]).max())


def level_shares(X, grid, max_levels=None):
    """Share of the landscapes' squared norm carried by their first levels.

    For every (layer, homology dimension), the squared norm of the first
    ``K`` levels summed over the samples, divided by that of all levels,
    with the trapezoid rule on ``grid`` (the quadrature every kernel and norm
    of the package uses), for ``K = 1 .. max_levels``.

    Parameters
    ----------
    X : object array of shape (n_samples, n_layers, n_homology_dimensions) \
            or sequence of diagrams
        Diagrams; infinite deaths are truncated at ``grid[-1]``.
    grid : array-like of shape (n_bins,)
        Increasing grid.
    max_levels : int, default=None
        Levels to consider; ``None``: the largest :func:`landscape_depth` of the
        diagrams, so that the last share is 1.

    Returns
    -------
    shares : ndarray of shape (n_layers, n_homology_dimensions, max_levels)
        Non-decreasing in ``K``; 1 where the landscapes are 0 on the grid.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.landscapes import level_shares
    >>> two_equal_holes = np.array([[0.0, 0.5], [0.0, 0.5]])
    >>> level_shares([two_equal_holes], np.linspace(0, 1, 11))[0, 0]
    array([0.5, 1. ])
    """
    diagrams = check_layered_diagrams(X)
    grid = np.asarray(grid, dtype=np.float64)
    weights = quadrature_weights(grid)
    end = grid[-1]
    n_samples, n_layers, n_dims = diagrams.shape
    if max_levels is None:
        max_levels = max([landscape_depth(d) for d in diagrams.ravel()] + [1])
    levels = np.zeros((n_layers, n_dims, max_levels))
    totals = np.zeros((n_layers, n_dims))
    for layer, dim in np.ndindex(n_layers, n_dims):
        cells = [np.where(np.isinf(d), end, d) for d in diagrams[:, layer, dim]]
        for start in range(0, n_samples, _DIAGRAMS_PER_SHARE_BLOCK):
            block = cells[start : start + _DIAGRAMS_PER_SHARE_BLOCK]
            values = landscape_values(block, grid, max_levels)
            levels[layer, dim] += (values**2 @ weights).sum(axis=0)
            totals[layer, dim] += all_levels_grid_squares(block, grid).sum()
    cumulative = np.cumsum(levels, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = cumulative / totals[..., None]
    shares[totals == 0] = 1.0
    return np.minimum(shares, 1.0)


def _checked_dimensions(homology_dimensions, n_diagrams):
    """``homology_dimensions`` as a tuple, one per diagram of a layer (or None)."""
    if homology_dimensions is None:
        return None
    dims = check_homology_dimensions(homology_dimensions)
    if len(dims) != n_diagrams:
        raise ValueError(
            f"homology_dimensions={homology_dimensions!r} names {len(dims)} "
            f"diagrams, but the samples of X have {n_diagrams} per layer; pass "
            "the homology_dimensions of the RipsPersistence step."
        )
    return dims


def _check_input_names(input_features, names, homology_dimensions):
    """The names a Pipeline passes on must fit the diagrams they name."""
    if input_features is None:
        return
    given = [str(name) for name in input_features]
    if len(given) != len(names):
        raise ValueError(
            f"input_features has {len(given)} names, expected {len(names)} "
            "(one per diagram of a layer)."
        )
    # Positional names fit any input names; H{d} ones must be the same.
    if homology_dimensions is not None and given != names:
        raise ValueError(
            f"input_features {given!r} do not match the homology_dimensions "
            f"seen in fit, which name the diagrams {names!r}; pass the "
            "RipsPersistence step's homology_dimensions."
        )


def _check_vectorizer_params(vectorizer):
    """What the constraint table cannot say: bools are not counts, and the
    ends of ``sample_range`` must be real numbers."""
    for name in ("n_landscapes", "resolution"):
        value = getattr(vectorizer, name)
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(
                f"{name} must be an integer, got the bool {value!r}; bools are not "
                "counts here."
            )
    check_allocation(
        8 * vectorizer.resolution,
        f"A grid of resolution={vectorizer.resolution!r} points would",
        "Lower resolution.",
    )
    sample_range = vectorizer.sample_range
    if isinstance(sample_range, str):
        return
    if len(sample_range) != 2 or not all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
        for v in sample_range
    ):
        raise ValueError(
            "sample_range must be 'auto' or a pair (start, stop) of numbers, got "
            f"{sample_range!r}."
        )


def _checked_grid(grid_range, vectorizer):
    """The grid, refused unless finite and strictly increasing.

    ``stop - start`` overflows for ends near the float limits, and grid
    points closer than float precision repeat.
    """
    start, stop = grid_range
    with np.errstate(over="ignore", invalid="ignore"):
        grid = np.linspace(start, stop, vectorizer.resolution)
    where = (
        f"sample_range={vectorizer.sample_range!r}"
        + (
            f" (learned as ({start!r}, {stop!r}))"
            if vectorizer.sample_range == "auto"
            else ""
        )
        + f" with resolution={vectorizer.resolution!r}"
    )
    if not np.isfinite(grid).all():
        raise ValueError(
            f"{where} gives a grid that is not finite: stop - start overflows. "
            "Use ends whose difference is a finite float."
        )
    if not (np.diff(grid) > 0).all():
        raise ValueError(
            f"{where} gives a grid that is not increasing: its points are closer "
            "than float precision. Widen sample_range or lower resolution."
        )
    return grid


def _unit_variance_scale(rows):
    """``1 / sqrt(mean squared Euclidean distance of the rows to their mean)``;
    1.0 when that mean is 0 up to rounding (identical rows).

    Computed on rows rescaled by a power of two (exact), so that rows of any
    magnitude neither overflow nor underflow, and in blocks of rows, so that
    the rescaled and centred copies stay small.
    """
    exponent = binary_exponent(rows)
    blocks = range(0, len(rows), _ROWS_PER_SCALE_BLOCK)
    total = np.zeros(rows.shape[1])
    for start in blocks:
        block = np.ldexp(rows[start : start + _ROWS_PER_SCALE_BLOCK], -exponent)
        total += block.sum(axis=0)
    mean = total / len(rows)
    size = spread = 0.0
    for start in blocks:
        block = np.ldexp(rows[start : start + _ROWS_PER_SCALE_BLOCK], -exponent)
        size += np.einsum("ij,ij->", block, block)
        block -= mean
        spread += np.einsum("ij,ij->", block, block)
    # The mean of identical rows is not always exactly their value: a spread
    # at the level of that rounding is no spread.
    rounding = (_ROUNDING_ULPS * len(rows) * np.finfo(np.float64).eps) ** 2
    if spread <= rounding * size:
        return 1.0
    return float(np.ldexp(1.0 / np.sqrt(spread / len(rows)), -exponent))


def _check_values_fit(n_diagrams, shape):
    """Refuse, before allocating, landscape values that cannot fit in memory."""
    _, _, n_landscapes, n_bins = shape
    # The values of every diagram, plus scratch of a few diagrams' worth.
    n_bytes = 8 * n_landscapes * n_bins * (n_diagrams + 4)
    check_allocation(
        n_bytes,
        f"The landscapes of {n_diagrams} diagram(s) with "
        f"n_landscapes={n_landscapes!r} and resolution={n_bins!r} would",
        "Lower n_landscapes or resolution, or transform fewer samples at a time.",
    )


def all_levels_grid_squares(diagrams, grid):
    """Squared norm of every level together on ``grid``, per diagram.

    The trapezoid rule of :func:`quadrature_weights` applied to
    ``sum_k lambda_k(t)^2``, which at each ``t`` is the sum of the squared
    tents there, so no level needs to be computed. Infinite deaths are
    truncated at ``grid[-1]``. Compare with the exact
    :func:`tent_squared_integrals`: they differ where bars are narrower than
    the grid step.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.landscapes import all_levels_grid_squares
    >>> all_levels_grid_squares([np.array([[0.0, 1.0], [0.0, 1.0]])],
    ...                         np.linspace(0, 1, 3))  # two tents of 1/2 at t=1/2
    array([0.25])
    """
    grid = np.asarray(grid, dtype=np.float64)
    weights = quadrature_weights(grid)
    out = np.zeros(len(diagrams))
    diagrams = [np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in diagrams]
    counts = np.array([len(d) for d in diagrams], dtype=np.intp)
    if counts.sum() == 0:
        return out
    pairs = np.concatenate(diagrams)
    owner = np.repeat(np.arange(len(diagrams)), counts)
    if np.isnan(pairs).any():
        first_bad = int(owner[np.isnan(pairs).any(axis=1)][0])
        raise ValueError(
            f"diagram {first_bad} has a NaN birth or death; a diagram's pairs "
            "must be numbers (infinite deaths are truncated at the grid's end)."
        )
    pairs = np.where(np.isinf(pairs), grid[-1], pairs)
    # Only the grid points under a tent add to the sum (t > b and t < d,
    # as in landscape_values), so the work is the pairs' support on the
    # grid, not n_pairs * n_bins; the terms are those of the dense sum.
    first = _searchsorted(grid, pairs[:, 0], side="right")
    lengths = _searchsorted(grid, pairs[:, 1], side="left") - first
    np.maximum(lengths, 0, out=lengths)
    ends = np.cumsum(lengths)
    start = 0
    while start < len(pairs):
        # Blocks of about _SQUARES_PER_BLOCK entries bound the memory.
        stop = int(
            np.searchsorted(
                ends, ends[start] - lengths[start] + _SQUARES_PER_BLOCK, "right"
            )
        )
        stop = min(max(stop, start + 1), len(pairs))
        span = lengths[start:stop]
        if span.any():
            point, value = _tent_values(
                pairs[start:stop, 0],
                pairs[start:stop, 1],
                first[start:stop],
                span,
                grid,
            )
            out += np.bincount(
                np.repeat(owner[start:stop], span),
                weights=value * value * weights[point],
                minlength=len(diagrams),
            )
        start = stop
    return out
