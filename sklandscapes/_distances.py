"""One cloud as its pairwise distances and the norms of its points.

The cells of the distances path (``ActivationExtractor(output="distances")``):
wide layers give their Rips filtration without a float64 copy of the cloud.
"""

import numpy as np
from scipy.spatial.distance import pdist, squareform

__all__ = ["LayerDistances"]


class LayerDistances:
    """Pairwise Euclidean distances of one point cloud, with the norms of its points.

    A cell of the distances path: what Vietoris-Rips persistence and the
    normalizations of the paper need from a cloud, without the cloud.
    :class:`~sklandscapes.ActivationExtractor` with ``output="distances"``
    builds these cells from a network's activations, in blocks on the
    network's device; :class:`~sklandscapes.ActivationNormalizer` normalizes
    them as it normalizes clouds; :class:`~sklandscapes.RipsPersistence` takes
    them with ``metric="precomputed"``, also with ``local=True`` (which needs
    the norms).

    Parameters
    ----------
    distances : ndarray of shape (n_points, n_points)
        Euclidean distances between the points: symmetric, non-negative, zero
        diagonal.
    norms : ndarray of shape (n_points,)
        Distance of each point to the origin.
    centered_norms : ndarray of shape (n_points,), default=None
        Distance of each point to the mean of the cloud. Needed to center the
        cloud (``ActivationNormalizer(method="global")``, or ``"local"`` with
        centering); ``None`` when unknown.
    nonnegative : bool, default=None
        Whether every coordinate of every point is >= 0. Needed by
        ``ActivationNormalizer(method="local", center="auto")``; ``None`` when
        unknown.

    Attributes
    ----------
    distances, norms, centered_norms, nonnegative
        The parameters, as given. The estimators validate the cells they
        receive and build new ones; they never write into a cell.

    See Also
    --------
    ActivationExtractor : Builds these cells with ``output="distances"``.
    RipsPersistence : Takes them with ``metric="precomputed"``.

    Notes
    -----
    Centering changes the norms but not the distances, and every other step of
    the paper's normalizations is a function of distances and norms: scaling
    divides both, and projecting a point ``x`` of norm ``r > 1`` onto the unit
    sphere changes its distance to a point ``y`` to
    ``sqrt(a b d^2 + (a - b)(a |x|^2 - b |y|^2))`` with ``a = 1/max(1, |x|)``,
    ``b = 1/max(1, |y|)`` and ``d = |x - y|``.

    ``len(cell)`` is the number of points.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes import LayerDistances
    >>> cell = LayerDistances.from_points(np.array([[0.0, 0.0], [3.0, 4.0]]))
    >>> cell
    LayerDistances(n_points=2)
    >>> cell.distances
    array([[0., 5.],
           [5., 0.]])
    >>> cell.norms, cell.centered_norms, cell.nonnegative
    (array([0., 5.]), array([2.5, 2.5]), True)
    """

    __slots__ = ("distances", "norms", "centered_norms", "nonnegative")

    def __init__(self, distances, norms, centered_norms=None, nonnegative=None):
        self.distances = distances
        self.norms = norms
        self.centered_norms = centered_norms
        self.nonnegative = nonnegative

    @classmethod
    def from_points(cls, points):
        """The cell of a cloud held in memory, computed exactly in NumPy.

        For clouds that are already float arrays; a network's wide layers go
        through ``ActivationExtractor(output="distances")`` instead, which
        never forms the float64 cloud.

        Parameters
        ----------
        points : array-like of shape (n_points, n_features)

        Returns
        -------
        cell : LayerDistances
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2:
            raise ValueError(
                f"points must be a 2-D array (n_points, n_features), got shape "
                f"{points.shape}."
            )
        # Squares of coordinates of 1e200 overflow: compute on the cloud scaled
        # by a power of two, which is exact, and scale the lengths back.
        finite = np.abs(points[np.isfinite(points)])
        exponent = int(np.frexp(finite.max())[1]) if finite.size else 0
        scaled = np.ldexp(points, -exponent)
        return cls(
            distances=np.ldexp(squareform(pdist(scaled)), exponent),
            norms=np.ldexp(np.linalg.norm(scaled, axis=1), exponent),
            centered_norms=np.ldexp(
                np.linalg.norm(scaled - scaled.mean(axis=0), axis=1), exponent
            ),
            nonnegative=bool((points >= 0).all()),
        )

    def __len__(self):
        return len(self.distances)

    def __repr__(self):
        return f"LayerDistances(n_points={len(self)})"
