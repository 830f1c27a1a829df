"""Persistence landscapes on a fixed grid, exact and vectorized (paper II-C)."""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sklandscapes._compat import Interval, StrOptions, _fit_context
from sklandscapes._validation import check_layered_diagrams, check_same_layout
from sklandscapes.exceptions import GridWarning

__all__ = [
    "LandscapeVectorizer",
    "landscape_values",
    "quadrature_weights",
    "reshape_landscapes",
]

# Diagrams handled together: their grid-by-landscape work arrays stay small
# enough for the CPU caches, which the scattered updates below depend on.
_DIAGRAMS_PER_BLOCK = 8


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
    counts = np.array([len(d) for d in diagrams], dtype=np.intp)
    values = np.zeros((len(diagrams), n_landscapes, len(grid)))
    if counts.sum() == 0:
        return values
    pairs = np.concatenate(
        [np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in diagrams]
    )
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for start in range(0, len(diagrams), _DIAGRAMS_PER_BLOCK):
        stop = min(start + _DIAGRAMS_PER_BLOCK, len(diagrams))
        block = pairs[offsets[start] : offsets[stop]]
        owner = np.repeat(np.arange(stop - start), counts[start:stop])
        top = _top_tents(
            block[:, 0], block[:, 1], owner, stop - start, grid, n_landscapes
        )
        values[start:stop] = top.reshape(
            n_landscapes, stop - start, len(grid)
        ).transpose(1, 0, 2)
    return values


def _top_tents(births, deaths, owner, n_diagrams, grid, n_landscapes):
    """The ``n_landscapes`` largest tent values at each (diagram, grid point).

    Only the grid points strictly inside a pair's interval carry a positive tent
    value, so the work is proportional to the total support of the pairs on the
    grid rather than to ``n_pairs * n_bins``. The k largest values per grid
    point are peeled off one level at a time with scattered maxima.
    """
    n_bins = len(grid)
    n_cells = n_diagrams * n_bins
    top = np.zeros((n_landscapes, n_cells))
    # First grid point with t > b and last with t < d: the tent is positive
    # exactly there, whatever the rounding of the grid.
    first = np.searchsorted(grid, births, side="right")
    lengths = np.searchsorted(grid, deaths, side="left") - first
    np.maximum(lengths, 0, out=lengths)
    n_entries = int(lengths.sum())
    if n_entries == 0:
        return top
    starts = np.cumsum(lengths) - lengths
    pair = np.repeat(np.arange(len(births)), lengths)
    point = np.arange(n_entries) - np.repeat(starts - first, lengths)
    t = grid[point]
    value = np.minimum(t - births[pair], deaths[pair] - t)
    cell = point + (owner * n_bins)[pair]

    filled = np.zeros(n_cells, dtype=np.intp)
    level_max = np.empty(n_cells)
    for level in range(n_landscapes):
        level_max.fill(0.0)
        np.maximum.at(level_max, cell, value)
        is_max = value == level_max[cell]
        # Tied maxima fill several levels at once.
        n_max = np.bincount(cell[is_max], minlength=n_cells)
        for k in range(level, n_landscapes):
            take = (filled <= k) & (k < filled + n_max)
            top[k][take] = level_max[take]
        filled += n_max
        if level == n_landscapes - 1:
            break
        keep = ~is_max
        keep &= filled[cell] < n_landscapes
        cell, value = cell[keep], value[keep]
        if cell.size == 0:
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
    n_landscapes : int, default=5
        Number of landscape functions ``lambda_1 .. lambda_K`` per diagram.
    sample_range : (float, float) or "auto", default=(0.0, 1.0)
        Ends of the grid, both included. After
        ``ActivationNormalizer(method="global")`` every filtration value lies in
        [0, 1]. ``"auto"`` learns the range in ``fit`` from the smallest birth to
        the largest finite death of the training diagrams.
    resolution : int, default=201
        Number of grid points (at least 2).

    Attributes
    ----------
    grid_ : ndarray of shape (resolution,)
        The grid used by ``transform``, fixed in ``fit`` so that train and test
        features align.
    n_layers_ : int
        Number of layers seen in ``fit``.
    n_homology_dimensions_ : int
        Number of homology dimensions seen in ``fit``.

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
    array(['layer0_dim0_k1_t0', 'layer0_dim0_k1_t1'], dtype=object)
    """

    _parameter_constraints = {
        "n_landscapes": [Interval(numbers.Integral, 1, None, closed="left")],
        "sample_range": [StrOptions({"auto"}), tuple, list],
        "resolution": [Interval(numbers.Integral, 2, None, closed="left")],
    }

    def __init__(self, n_landscapes=5, sample_range=(0.0, 1.0), resolution=201):
        self.n_landscapes = n_landscapes
        self.sample_range = sample_range
        self.resolution = resolution

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
        diagrams = check_layered_diagrams(X)
        self.grid_ = np.linspace(*self._grid_range(diagrams), self.resolution)
        self.n_layers_, self.n_homology_dimensions_ = diagrams.shape[1:]
        return self

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
        end = self.grid_[-1]
        cells = [np.where(np.isinf(d), end, d) for d in diagrams.ravel()]
        values = landscape_values(cells, self.grid_, self.n_landscapes)
        return values.reshape(len(diagrams), -1)

    def get_feature_names_out(self, input_features=None):
        """Feature names such as ``layer3_H1_k2_t057`` (k from 1, t the grid index).

        The homology dimensions are named by ``input_features``, e.g.
        ``RipsPersistence(...).get_feature_names_out()`` gives ``["H1"]`` (a
        ``Pipeline`` passes them on by itself); without them, by their position
        on the diagram axis: ``dim0``, ``dim1``, ...
        """
        check_is_fitted(self)
        if input_features is None:
            input_features = [f"dim{i}" for i in range(self.n_homology_dimensions_)]
        if len(input_features) != self.n_homology_dimensions_:
            raise ValueError(
                f"input_features has {len(input_features)} names, expected "
                f"{self.n_homology_dimensions_} (one per homology dimension)."
            )
        width = len(str(self.resolution - 1))
        names = [
            f"layer{layer}_{dim}_k{k + 1}_t{i:0{width}d}"
            for layer in range(self.n_layers_)
            for dim in input_features
            for k in range(self.n_landscapes)
            for i in range(self.resolution)
        ]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags
