"""Kernels on activation landscapes: the product Hilbert space of paper eq. (1)."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sklandscapes._compat import Interval, StrOptions, _fit_context
from sklandscapes._validation import (
    binary_exponent,
    check_feature_matrix,
    validate_float_data,
)
from sklandscapes.landscapes import quadrature_weights

__all__ = ["LandscapeKernel", "feature_weights", "landscape_inner_products"]

# A mean squared distance below (this many ulps per training row)^2 of the
# mean squared norm is rounding, not spread: the rows are identical.
_ROUNDING_ULPS = 64


def feature_weights(n_features, grid=None, layer_weights=None):
    """Weight of each feature in the landscape inner product.

    The inner product of two landscape vectors is ``sum_j w_j x_j y_j``: the
    trapezoid rule on the grid (:func:`~sklandscapes.landscapes.quadrature_weights`)
    for every landscape function, times the weight of the feature's layer.

    Parameters
    ----------
    n_features : int
        Length of the landscape vectors, ordered (layer, dimension, k, grid point).
    grid : array-like of shape (n_bins,), default=None
        The vectorizer's grid (``LandscapeVectorizer.grid_``), for the trapezoid
        rule. ``None`` gives every feature weight 1: the integral in units of the
        grid step, which equals the trapezoid rule divided by the step whenever
        the landscapes vanish at both ends of the grid (as they do on a grid
        that covers the diagrams, infinite deaths being truncated at its end).
    layer_weights : array-like of shape (n_layers,), default=None
        Non-negative weight of each layer's term; ``None`` weighs all layers 1.
        The features split into ``n_layers`` equal consecutive blocks.

    Returns
    -------
    weights : ndarray of shape (n_features,)

    Examples
    --------
    >>> from sklandscapes.kernels import feature_weights
    >>> feature_weights(6, grid=[0.0, 0.5, 1.0], layer_weights=[1.0, 2.0])
    array([0.25, 0.5 , 0.25, 0.5 , 1.  , 0.5 ])
    """
    if grid is None:
        quadrature = np.ones(1)
    else:
        quadrature = quadrature_weights(grid)
    if n_features % len(quadrature):
        raise ValueError(
            f"X has {n_features} features, not a multiple of the {len(quadrature)} "
            "grid points of grid; pass grid=vectorizer.grid_ of the "
            "LandscapeVectorizer that made X. In a Pipeline, where a grid search "
            "may change the resolution, use LandscapeVectorizer(weighting='l2') "
            "and grid=None instead: the plain dot product of those vectors is the "
            "landscape inner product at every resolution."
        )
    weights = np.tile(quadrature, n_features // len(quadrature))
    if layer_weights is not None:
        layer_weights = _layer_weights_as_floats(layer_weights)
        if (
            layer_weights.ndim != 1
            or len(layer_weights) == 0
            or n_features % len(layer_weights)
            or (n_features // len(layer_weights)) % len(quadrature)
        ):
            raise ValueError(
                f"layer_weights has shape {layer_weights.shape}; expected one weight "
                f"per layer, a number that divides the {n_features} features into "
                "whole landscapes."
            )
        if not np.isfinite(layer_weights).all() or (layer_weights < 0).any():
            raise ValueError(
                f"layer_weights must be finite and non-negative, got {layer_weights!r}."
            )
        weights *= np.repeat(layer_weights, n_features // len(layer_weights))
    return weights


def landscape_inner_products(X, Y=None, *, grid=None, layer_weights=None):
    """Inner products of landscape vectors in the product Hilbert space.

    ``K[i, j] = sum_layers w_l sum_k integral lambda_k(X_i) lambda_k(Y_j) dt``
    (paper eq. 1), the integral by the trapezoid rule on the grid.

    Parameters
    ----------
    X : ndarray of shape (n_samples_X, n_features)
    Y : ndarray of shape (n_samples_Y, n_features), default=None
        ``None`` means ``Y = X``.
    grid, layer_weights :
        See :func:`feature_weights`.

    Returns
    -------
    K : ndarray of shape (n_samples_X, n_samples_Y)

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.kernels import landscape_inner_products
    >>> x = np.array([[0.0, 1.0, 0.0]])
    >>> landscape_inner_products(x, grid=[0.0, 1.0, 2.0])
    array([[1.]])
    """
    weights = feature_weights(X.shape[1], grid, layer_weights)
    Y = X if Y is None else Y
    return (X * weights) @ Y.T


class LandscapeKernel(TransformerMixin, BaseEstimator):
    """Kernel between activation landscapes, for ``SVC(kernel="precomputed")``.

    ``fit`` stores the training landscapes; ``transform(X)`` returns the kernel
    between ``X`` and them, so the step slots in a ``Pipeline`` before any
    estimator that takes a precomputed kernel.

    Parameters
    ----------
    kernel : {"linear", "rbf"}, default="linear"
        ``"linear"``: the inner product of the product Hilbert space (paper
        eq. 1), ``sum_layers w_l sum_k integral lambda_k lambda'_k dt``.
        ``"rbf"``: ``exp(-gamma * ||lambda - lambda'||^2)`` with the norm of that
        inner product.
    gamma : float, default=None
        Scale of the ``"rbf"`` kernel. ``None`` uses the inverse of the mean
        squared distance between training landscapes (``gamma_``), or 1.0
        when that mean is 0 up to rounding (identical training rows).
    layer_weights : array-like of shape (n_layers,), default=None
        Weight of each layer's term; ``None`` weighs every layer 1.
    grid : array-like of shape (n_bins,), default=None
        Grid of the landscapes (the vectorizer's ``grid_``, or the same
        ``np.linspace``), for the trapezoid rule: the kernel is then the
        integral itself. ``None`` weighs every feature 1 (see
        :func:`feature_weights`). Recommended: ``grid=None`` after
        ``LandscapeVectorizer(weighting="l2")``, whose vectors carry the
        square roots of the trapezoid weights, so that the kernel is the
        integral at whatever ``resolution`` a grid search sets. On unweighted
        vectors ``grid=None`` gives the integral in units of the grid step, a
        scale that changes with the resolution. Never pass a grid for weighted
        vectors: they would be weighted twice.

    Attributes
    ----------
    X_fit_ : ndarray of shape (n_samples_fit, n_features)
        The training landscapes.
    gamma_ : float
        The ``"rbf"`` scale used (``None`` for ``"linear"``).
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    LandscapeVectorizer : Produces the landscape vectors.
    sklandscapes.kernels.landscape_inner_products : The inner products alone.

    Notes
    -----
    Every inner product, norm and distance in sklandscapes uses the trapezoid
    rule of :func:`~sklandscapes.landscapes.quadrature_weights` on the grid.

    Rows and weights are rescaled by powers of two (exact) before any product,
    so landscapes of any magnitude give the kernel without overflow; a linear
    kernel whose values exceed the float range raises ``ValueError``.

    The output has one column per training sample, named
    ``landscapekernel0``, ``landscapekernel1``, ... by
    :meth:`get_feature_names_out`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.svm import SVC
    >>> from sklandscapes import LandscapeKernel
    >>> rng = np.random.default_rng(0)
    >>> X = np.abs(rng.normal(size=(20, 201)))
    >>> X[10:] += 1.0
    >>> y = np.repeat([0, 1], 10)
    >>> model = make_pipeline(LandscapeKernel(), SVC(kernel="precomputed"))
    >>> float(model.fit(X, y).score(X, y))
    1.0
    """

    _parameter_constraints = {
        "kernel": [StrOptions({"linear", "rbf"})],
        "gamma": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "layer_weights": ["array-like", None],
        "grid": ["array-like", None],
    }

    def __init__(self, kernel="linear", gamma=None, layer_weights=None, grid=None):
        self.kernel = kernel
        self.gamma = gamma
        self.layer_weights = layer_weights
        self.grid = grid

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Store the training landscapes.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Landscape vectors from :class:`LandscapeVectorizer`.
        y : None
            Ignored.

        Returns
        -------
        self : LandscapeKernel
        """
        check_feature_matrix(X)
        X = validate_float_data(self, X)
        self.X_fit_ = X.copy()
        self._weights = feature_weights(X.shape[1], self.grid, self.layer_weights)
        self.gamma_ = None
        if self.kernel == "rbf":
            if self.gamma is not None:
                mantissa, exponent = np.frexp(float(self.gamma))
                self._gamma_parts = (float(mantissa), int(exponent))
            else:
                self._gamma_parts = self._mean_gamma()
            with np.errstate(over="ignore", under="ignore"):
                self.gamma_ = float(np.ldexp(*self._gamma_parts))
        return self

    def _mean_gamma(self):
        """``1 / mean squared distance`` of the training rows, as (mantissa, exponent).

        The mean over all pairs is twice the mean squared distance to the
        centroid, which is exactly 0 for identical rows; the expansion
        ``|x|^2 + |y|^2 - 2 x.y`` would leave rounding noise there and a
        ``gamma_`` of 1e15. A mean at the level of that rounding gives the
        documented fallback 1.0. Rows and weights are rescaled by powers of
        two, so 1e300 rows neither overflow nor lose the fallback.
        """
        rows, _, weights, exponent = _rescaled(self.X_fit_, self.X_fit_, self._weights)
        centered = rows - rows.mean(axis=0)
        mean_sq_dist = 2 * np.einsum("ij,ij,j->", centered, centered, weights)
        mean_sq_dist /= len(rows)
        mean_sq_norm = np.einsum("ij,ij,j->", rows, rows, weights) / len(rows)
        rounding = (_ROUNDING_ULPS * len(rows) * np.finfo(np.float64).eps) ** 2
        if mean_sq_dist <= rounding * mean_sq_norm:
            return 0.5, 1
        mantissa, binary = np.frexp(mean_sq_dist)
        return 1.0 / float(mantissa), -int(binary) - exponent

    def transform(self, X):
        """Kernel between ``X`` and the training landscapes.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        K : ndarray of shape (n_samples, n_samples_fit)
        """
        check_is_fitted(self)
        check_feature_matrix(X)
        X = validate_float_data(self, X, reset=False)
        # Computed on rows and weights rescaled by powers of two (exact), so
        # that rows of 1e300 give the kernel, or a clear error, never inf/NaN.
        rows, fit_rows, weights, exponent = _rescaled(X, self.X_fit_, self._weights)
        gram = (rows * weights) @ fit_rows.T
        if self.kernel == "linear":
            with np.errstate(over="ignore"):
                kernel = np.ldexp(gram, exponent)
            if not np.isfinite(kernel).all():
                raise ValueError(
                    "The linear kernel of X with the training rows exceeds the "
                    f"float range (values up to about 2**{exponent}); rescale X, "
                    "grid or layer_weights, or use kernel='rbf'."
                )
            return kernel
        sq_norms = np.einsum("ij,ij,j->i", rows, rows, weights)
        fit_sq_norms = np.einsum("ij,ij,j->i", fit_rows, fit_rows, weights)
        sq_dist = sq_norms[:, None] + fit_sq_norms[None, :] - 2 * gram
        mantissa, gamma_exponent = self._gamma_parts
        with np.errstate(over="ignore", under="ignore"):
            scaled = np.ldexp(
                mantissa * np.maximum(sq_dist, 0), gamma_exponent + exponent
            )
        return np.exp(-scaled)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns, one per training sample.

        ``landscapekernel0``, ``landscapekernel1``, ..., as scikit-learn's
        ``Nystroem`` names its components. They do not depend on the names
        of the landscape features.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Names of the landscape features; only their number is checked.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        if input_features is not None and len(input_features) != self.n_features_in_:
            raise ValueError(
                f"input_features has {len(input_features)} names, expected "
                f"{self.n_features_in_} (one per landscape feature seen in fit)."
            )
        return np.asarray(
            [f"landscapekernel{i}" for i in range(len(self.X_fit_))], dtype=object
        )


def _layer_weights_as_floats(layer_weights):
    if isinstance(layer_weights, (str, bytes)):
        raise ValueError(
            "layer_weights must be a 1-D sequence of non-negative numbers, one "
            f"per layer, got the string {layer_weights!r}."
        )
    try:
        # Strings such as "0" would convert; numbers only.
        if np.asarray(layer_weights).dtype.kind not in "iuf":
            raise TypeError("not numbers")
        return np.asarray(layer_weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "layer_weights must be a 1-D sequence of non-negative numbers, one "
            f"per layer, got {layer_weights!r} ({exc})."
        ) from exc


def _rescaled(rows, other_rows, weights):
    """Rows, other rows and weights scaled by powers of two, and the exponent.

    Returns ``(rows', other_rows', weights', exponent)`` with every entry at
    most 1 in absolute value and
    ``sum_j w_j x_j y_j = 2**exponent * sum_j w'_j x'_j y'_j`` exactly (the
    rescaling is by powers of two), so inner products neither overflow nor
    underflow.
    """
    row_exponent = max(binary_exponent(rows), binary_exponent(other_rows))
    weight_exponent = binary_exponent(weights)
    return (
        np.ldexp(rows, -row_exponent),
        np.ldexp(other_rows, -row_exponent),
        np.ldexp(weights, -weight_exponent),
        2 * row_exponent + weight_exponent,
    )
