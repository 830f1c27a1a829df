"""Checks of the data contract between the steps, with errors that name the cell.

Each stage has one validator. It accepts nested lists or the canonical container
(a NumPy object array indexed by sample, layer and, for diagrams, homology
dimension), checks every cell and raises a single ``ValueError`` that lists every
bad cell. The canonical container is always built cell by cell: ``np.array`` on
nested input would silently merge equal-shaped cells into one float array.
"""

import numbers
import os
from collections.abc import Mapping

import numpy as np
from sklearn.utils.validation import check_array

from sklandscapes._distances import LayerDistances

__all__ = [
    "check_layered_clouds",
    "check_layered_diagrams",
    "check_same_layout",
]

_MAX_LISTED = 10


def _raise_if_errors(errors, what, hint=""):
    if not errors:
        return
    shown = errors[:_MAX_LISTED]
    more = len(errors) - len(shown)
    lines = "\n".join(f"  - {e}" for e in shown)
    if more:
        lines += f"\n  - ... and {more} more"
    hint = f"\n{hint}" if hint else ""
    raise ValueError(f"Invalid {what}:\n{lines}{hint}")


def _is_array_like_cell(obj):
    return isinstance(obj, (np.ndarray, LayerDistances)) or hasattr(obj, "__array__")


def _depth(obj):
    """Nesting depth until the first array-like cell (0 means X is a cell)."""
    depth = 0
    while not _is_array_like_cell(obj):
        if isinstance(obj, (str, bytes)) or not hasattr(obj, "__len__"):
            return None
        if len(obj) == 0:
            return depth + 1
        obj = obj[0]
        depth += 1
    return depth


def _as_object_grid(X, n_axes, name, cell="an array"):
    """Turn ``X`` into an object array with ``n_axes`` axes of cells.

    Accepted: an object array with ``n_axes`` axes; a float array with one axis
    per cell axis more (e.g. ``(n_samples, n_points, n_features)`` for clouds);
    nested sequences ``n_axes`` deep; or a sequence of cells, read as one cell
    per sample with every other axis of length 1. ``cell`` says what a cell
    should be, for the error that names the cells that are no array.
    """
    if isinstance(X, np.ndarray) and X.dtype == object:
        if X.ndim == n_axes:
            return X
        if X.ndim == 1:
            out = np.empty((len(X),) + (1,) * (n_axes - 1), dtype=object)
            for i, cell in enumerate(X):
                out[(i,) + (0,) * (n_axes - 1)] = cell
            return out
        raise ValueError(
            f"{name} is an object array of shape {X.shape}; expected {n_axes} axes "
            f"({_axes_names(n_axes)}) or one axis of samples."
        )
    if isinstance(X, np.ndarray) and X.ndim == 3:
        # A regular stack of cells: one cell per sample.
        out = np.empty((X.shape[0],) + (1,) * (n_axes - 1), dtype=object)
        for i in range(X.shape[0]):
            out[(i,) + (0,) * (n_axes - 1)] = X[i]
        return out
    if isinstance(X, np.ndarray) and X.ndim < 3:
        raise ValueError(
            f"{name} is a single {X.ndim}-D array of shape {X.shape}; expected a "
            f"sequence of samples, e.g. [cloud] for one cloud of shape {X.shape}."
        )
    if isinstance(X, Mapping):
        raise ValueError(
            f"{name} is a {type(X).__name__} with keys "
            f"{_preview(list(X.keys()))}; expected a sequence of samples. Pass "
            f"list({name}.values()) if its values are the samples."
        )
    depth = _depth(X)
    if depth is None:
        _raise_for_unarrayed_cell(X, name)
        _raise_if_errors(
            [
                f"{_where(index)}: expected {cell}, got {value!r}"
                for index, value in _non_array_cells(X, n_axes)
            ],
            f"cells in {name}",
            "Every cell must be a NumPy array.",
        )
        raise ValueError(
            f"{name} must be a sequence of arrays, got {type(X).__name__}."
        )
    if depth == 1:
        out = np.empty((len(X),) + (1,) * (n_axes - 1), dtype=object)
        for i, cell in enumerate(X):
            out[(i,) + (0,) * (n_axes - 1)] = cell
        return out
    if depth != n_axes:
        raise ValueError(
            f"{name} is nested {depth} levels deep; expected a sequence of arrays "
            f"(one per sample) or nesting {n_axes} deep ({_axes_names(n_axes)})."
        )
    lengths = _nested_lengths(X, n_axes, name)
    out = np.empty(lengths, dtype=object)
    for index in np.ndindex(*lengths):
        cell = X
        for i in index:
            cell = cell[i]
        out[index] = cell
    return out


def _non_array_cells(X, n_axes):
    """``(index, value)`` of every cell of nested sequences ``X`` (at most
    ``n_axes`` deep) that is neither an array nor a sequence, e.g. ``None``."""
    found = []

    def visit(obj, index):
        if _is_array_like_cell(obj):
            return
        if isinstance(obj, (str, bytes)) or not hasattr(obj, "__len__"):
            if index:
                found.append((index, obj))
            return
        if len(index) < n_axes:
            for i, item in enumerate(obj):
                visit(item, index + (i,))

    visit(X, ())
    return found


def _nested_lengths(X, n_axes, name):
    """Lengths of the axes of nested sequences; raise when they are ragged."""
    names = ["sample", "layer", "homology dimension"]
    lengths = [len(X)]
    errors = []
    if n_axes >= 2:
        counts = [len(sample) for sample in X]
        if len(set(counts)) > 1:
            errors += [
                f"sample {i} has {c} layers, sample 0 has {counts[0]}"
                for i, c in enumerate(counts)
                if c != counts[0]
            ]
        lengths.append(counts[0] if counts else 0)
    if n_axes == 3 and not errors:
        counts = [len(layer) for sample in X for layer in sample]
        if len(set(counts)) > 1:
            first = counts[0]
            n_layers = lengths[1]
            errors += [
                f"sample {k // n_layers}, layer {k % n_layers} has {c} homology "
                f"dimensions, sample 0, layer 0 has {first}"
                for k, c in enumerate(counts)
                if c != first
            ]
        lengths.append(counts[0] if counts else 0)
    _raise_if_errors(
        errors,
        f"{name}: ragged nesting",
        f"Every sample needs the same number of {names[1]}s.",
    )
    return tuple(lengths)


def _axes_names(n_axes):
    return ", ".join(["n_samples", "n_layers", "n_homology_dimensions"][:n_axes])


def _where(index):
    names = ("sample", "layer", "homology dimension")
    return ", ".join(f"{n} {i}" for n, i in zip(names, index))


def check_layered_clouds(
    X, *, name="X", precomputed=False, min_points=2, allow_distances=False
):
    """Validate layered point clouds (or distance matrices) cell by cell.

    Parameters
    ----------
    X : object array of shape (n_samples, n_layers), nested sequences, \
            a sequence of 2-D arrays, or a 3-D float array
        The clouds. A plain sequence of 2-D arrays means one layer per sample.
    name : str, default="X"
        Name used in error messages.
    precomputed : bool, default=False
        Cells are square distance matrices rather than clouds.
    min_points : int, default=2
        Fewest points a cloud may have.
    allow_distances : bool, default=False
        Accept :class:`LayerDistances` cells beside arrays. Refused cells
        are named with a hint to ``metric="precomputed"``.

    Returns
    -------
    clouds : object array of shape (n_samples, n_layers)
        Each cell a C-contiguous float64 array of shape (n_points, n_features),
        or (n_points, n_points) when ``precomputed``, or a new
        :class:`LayerDistances` of such arrays.
    """
    grid = _as_object_grid(
        X, 2, name, "a cloud, an array of shape (n_points, n_features)"
    )
    out = np.empty(grid.shape, dtype=object)
    errors = []
    for index in np.ndindex(*grid.shape):
        if isinstance(grid[index], LayerDistances):
            cell, problem = _check_distances(grid[index], allow_distances, min_points)
        else:
            cell, problem = _check_cloud(grid[index], precomputed, min_points)
        if problem:
            errors.append(f"{_where(index)}: {problem}")
        out[index] = cell
    if grid.size == 0:
        errors.append(
            f"{name} has no cells (shape {grid.shape}); expected at least "
            "one sample and one layer"
        )
    what = "distance matrices" if precomputed else "point clouds"
    _raise_if_errors(errors, f"{what} in {name}")
    return out


def _check_cloud(cell, precomputed, min_points):
    if _is_complex(cell):
        return None, "has complex values; expected real numbers"
    try:
        arr = np.asarray(cell, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return None, f"cannot be read as a float array ({exc})"
    if arr.ndim != 2:
        kind = (
            "square distance matrix" if precomputed else "2-D array (points, features)"
        )
        return None, f"expected a {kind}, got shape {arr.shape}"
    if precomputed and arr.shape[0] != arr.shape[1]:
        return None, f"expected a square distance matrix, got shape {arr.shape}"
    if arr.shape[0] < min_points:
        return None, (f"has {arr.shape[0]} point(s); at least {min_points} are needed")
    if arr.shape[1] == 0:
        return None, "has points with 0 features"
    if not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        return None, f"contains {n_bad} NaN or infinite value(s)"
    if precomputed:
        if (arr < 0).any():
            return None, "distance matrix has negative entries"
        if not np.allclose(arr, arr.T, rtol=1e-12, atol=1e-12):
            return None, "distance matrix is not symmetric"
        if (np.diag(arr) != 0).any():
            return None, "distance matrix has a non-zero diagonal"
    return np.ascontiguousarray(arr), None


def _check_distances(cell, allowed, min_points):
    """A validated copy of a :class:`LayerDistances` cell, or a problem."""
    if not allowed:
        return None, (
            "is a LayerDistances (the distances and norms of a cloud), not a "
            "point cloud; RipsPersistence takes it with metric='precomputed'"
        )
    distances, problem = _check_cloud(cell.distances, True, min_points)
    if problem:
        return None, f"distances: {problem}"
    n_points = len(distances)
    vectors = {}
    for field in ("norms", "centered_norms"):
        values = getattr(cell, field)
        if values is None and field == "centered_norms":
            vectors[field] = None
            continue
        try:
            values = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            return None, f"{field} cannot be read as a float array ({exc})"
        if values.shape != (n_points,):
            return None, (
                f"{field} has shape {values.shape}; expected ({n_points},), one "
                f"per point of its {n_points} x {n_points} distance matrix"
            )
        if not np.isfinite(values).all():
            return None, f"{field} contains NaN or infinite values"
        if (values < 0).any():
            return None, f"{field} has negative entries"
        vectors[field] = np.ascontiguousarray(values)
    if cell.nonnegative is not None and not isinstance(
        cell.nonnegative, (bool, np.bool_)
    ):
        return None, f"nonnegative must be a bool or None, got {cell.nonnegative!r}"
    nonnegative = None if cell.nonnegative is None else bool(cell.nonnegative)
    return LayerDistances(distances, nonnegative=nonnegative, **vectors), None


def check_layered_diagrams(X, *, name="X"):
    """Validate layered persistence diagrams cell by cell.

    Parameters
    ----------
    X : object array of shape (n_samples, n_layers, n_homology_dimensions), \
            nested sequences three deep, or a sequence of (n_pairs, 2) arrays
        The diagrams. A plain sequence of arrays means one layer and one
        homology dimension per sample.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    diagrams : object array of shape (n_samples, n_layers, n_homology_dimensions)
        Each cell a float64 array of shape (n_pairs, 2) of (birth, death) with
        finite births and deaths ``>= births`` (``inf`` allowed).
    """
    grid = _as_object_grid(
        X, 3, name, "a diagram, an array of (birth, death) pairs of shape (n_pairs, 2)"
    )
    out = np.empty(grid.shape, dtype=object)
    errors = []
    looks_like_clouds = True
    for index in np.ndindex(*grid.shape):
        cell, problem = _check_diagram(grid[index])
        if problem:
            errors.append(f"{_where(index)}: {problem}")
            looks_like_clouds &= _looks_like_cloud(grid[index])
        out[index] = cell
    if errors and looks_like_clouds:
        raise ValueError(
            f"{name} looks like point clouds, not persistence diagrams: "
            f"{len(errors)} cell(s) are not (birth, death) pairs with deaths >= "
            f"births (first: {errors[0]}). Compute the diagrams first, e.g. "
            "make_pipeline(RipsPersistence(), LandscapeVectorizer())."
        )
    if grid.size == 0:
        errors.append(f"{name} has no cells (shape {grid.shape})")
    _raise_if_errors(errors, f"persistence diagrams in {name}")
    return out


def _check_diagram(cell):
    if isinstance(cell, LayerDistances):
        return None, (
            "is a LayerDistances (the distances of a cloud), not a diagram; "
            "compute the diagrams first with RipsPersistence(metric='precomputed')"
        )
    if _is_complex(cell):
        return None, "has complex values; expected real numbers"
    try:
        arr = np.asarray(cell, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return None, f"cannot be read as a float array ({exc})"
    if arr.size == 0:
        return np.empty((0, 2)), None
    if arr.ndim != 2 or arr.shape[1] != 2:
        return (
            None,
            "expected an array of (birth, death) pairs of shape (n_pairs, 2), "
            f"got shape {arr.shape}",
        )
    births, deaths = arr[:, 0], arr[:, 1]
    if not np.isfinite(births).all():
        return None, "births must be finite"
    if np.isnan(deaths).any():
        return None, "deaths contain NaN"
    if (deaths < births).any():
        return None, "some deaths are smaller than their births"
    return arr, None


def _looks_like_cloud(cell):
    """A finite 2-D array of several rows that fails as a diagram: a cloud."""
    try:
        arr = np.asarray(cell, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return arr.ndim == 2 and len(arr) > 1 and np.isfinite(arr).all()


def check_same_layout(shape, fitted_shape, *, name="X", what="layers"):
    """Check that transform data has the layout seen in fit (all but axis 0)."""
    if tuple(shape[1:]) != tuple(fitted_shape[1:]):
        raise ValueError(
            f"{name} has layout {tuple(shape[1:])} ({what}) per sample, but the "
            f"estimator was fitted on {tuple(fitted_shape[1:])}; transform data must "
            "have the same number of layers and homology dimensions as fit data."
        )


def _preview(values, limit=5):
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _raise_for_unarrayed_cell(X, name):
    """Name the first cell given as nested Python lists rather than an array.

    Cells must be arrays, so that the nesting of the container and the axes of
    a cell cannot be confused; a 2-D cloud written as lists of lists of
    numbers is the usual slip. Its numbers sit two levels below the cell.
    """
    depth, obj = 0, X
    while (
        not isinstance(obj, (str, bytes))
        and hasattr(obj, "__len__")
        and len(obj)
        and not _is_array_like_cell(obj)
    ):
        obj = obj[0]
        depth += 1
    if depth < 2 or not isinstance(obj, numbers.Number):
        return
    if depth == 2:
        raise ValueError(
            f"{name} is a list of lists of numbers, not a sequence of arrays: for "
            f"one cloud (or diagram) pass [np.asarray({name})]."
        )
    path = "[0]" * (depth - 2)
    raise ValueError(
        f"{name}{path} is a cell given as nested Python lists, not an array: each "
        f"cell of {name} (a cloud, a distance matrix or a diagram) must be a "
        f"NumPy array. Wrap the cells with np.asarray, e.g. {name} = "
        f"[np.asarray(cell) for cell in {name}]."
    )


def binary_exponent(values):
    """Exponent ``e`` with ``max |values| * 2**-e`` in [0.5, 1); 0 if all are 0.

    Multiplying by a power of two is exact (barring underflow below the
    smallest normal number), so data rescaled by ``2**-e`` give the same
    results, scaled back exactly, while their squares can neither overflow
    nor underflow.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return 0
    # Two reductions, no copy: a mask and a copy of a GiB of landscapes cost
    # seconds. Only values that are not all finite take the masked path.
    largest = max(float(values.max()), -float(values.min()))
    if not np.isfinite(largest):
        finite = np.abs(values[np.isfinite(values)])
        largest = float(finite.max()) if finite.size else 0.0
    return int(np.frexp(largest)[1]) if largest > 0 else 0


def _available_memory():
    """Bytes of memory available now, or None where the OS does not say.

    Linux's ``MemAvailable`` counts the page cache the kernel can reclaim,
    which free pages (``SC_AVPHYS_PAGES``, the fallback) do not.
    """
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n_bytes):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024


def check_allocation(n_bytes, what, hint=""):
    """Raise ``ValueError`` before allocating ``n_bytes`` that cannot fit.

    ``what`` says what would be allocated and from which parameters, e.g.
    ``"n_landscapes=10000000 x resolution=201 values for 4 diagrams"``.
    """
    available = _available_memory()
    if available is None or n_bytes <= available:
        return
    hint = f" {hint}" if hint else ""
    raise ValueError(
        f"{what} need about {format_bytes(n_bytes)}, more than the "
        f"{format_bytes(available)} of memory available.{hint}"
    )


def check_homology_dimensions(value, name="homology_dimensions"):
    """``value`` (an int or a sequence of them) as a tuple of distinct ints >= 0."""
    dims = np.atleast_1d(np.asarray(value))
    if (
        dims.ndim != 1
        or dims.size == 0
        or not np.issubdtype(dims.dtype, np.integer)
        or (dims < 0).any()
        or len(set(dims.tolist())) != dims.size
    ):
        raise ValueError(
            f"{name} must be a non-empty sequence of distinct non-negative "
            f"integers, got {value!r}."
        )
    return tuple(int(d) for d in dims)


def check_count(value, name, minimum=1):
    """``value`` as an int if it is one and at least ``minimum``, else ValueError.

    ``bool`` is refused: ``True`` is not a count.
    """
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


def check_feature_matrix(X, name="X"):
    """Read ``X`` as a 2-D float matrix, naming the row that cannot be read.

    numpy's own messages ("inhomogeneous shape", "could not convert string to
    float") say neither which parameter nor which row is at fault.
    """
    if hasattr(X, "tocsr"):
        # Sparse matrices (dok_matrix is also a dict): scikit-learn's checks
        # say whether sparse input is accepted.
        return
    if isinstance(X, Mapping):
        raise ValueError(
            f"{name} is a {type(X).__name__}; expected a 2-D array of shape "
            "(n_samples, n_features)."
        )
    if isinstance(X, (str, bytes)):
        raise ValueError(
            f"{name} is a string ({X!r}); expected a 2-D array of shape "
            "(n_samples, n_features)."
        )
    if hasattr(X, "dtype") or hasattr(X, "tocsr"):
        dtype = getattr(X, "dtype", None)
        if (
            dtype is not None
            and dtype.kind in "USO"
            and np.ndim(X) > 0
            and not hasattr(X, "tocsr")
        ):
            _check_rows(np.asarray(X, dtype=object), name)
        return
    if isinstance(X, (list, tuple)):
        _check_rows(X, name)


def _check_rows(X, name):
    rows = list(X)
    lengths = []
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)):
            raise ValueError(f"{name}[{i}] is a string ({row!r}); expected numbers.")
        try:
            values = np.asarray(row, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            # The same class as numpy's (scikit-learn's checks expect it).
            raise type(exc)(
                f"{name}[{i}] cannot be read as numbers ({exc}); {name} must be a "
                "2-D array of floats of shape (n_samples, n_features)."
            ) from exc
        # numpy reads "0" as 0.0: a number written as text is refused too.
        text = [v for v in np.ravel(np.asarray(row, dtype=object)) if _is_text(v)]
        if text:
            raise ValueError(
                f"{name}[{i}] holds a string ({text[0]!r}); expected numbers."
            )
        lengths.append(values.shape)
    if len(set(lengths)) > 1:
        ragged = [i for i, shape in enumerate(lengths) if shape != lengths[0]]
        raise ValueError(
            f"{name} is ragged: row 0 has shape {lengths[0]} but row {ragged[0]} "
            f"has shape {lengths[ragged[0]]}; every row needs the same number of "
            "features."
        )


def _is_text(value):
    return isinstance(value, (str, bytes, np.str_, np.bytes_))


def _is_complex(cell):
    """Whether a cell holds complex numbers, which a float cast would truncate."""
    dtype = getattr(cell, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(cell).dtype
        except (TypeError, ValueError):
            return False
    return np.issubdtype(dtype, np.complexfloating)


def validate_float_data(estimator, X, **kwargs):
    """scikit-learn's ``validate_data`` as float64, without its false alarm.

    Its finiteness check sums ``X`` first and looks at every value only when
    the sum is not finite; finite values near the float range (landscapes
    scaled by 2**1000) overflow that sum, and numpy warns of an overflow that
    the result never holds. The check itself is unchanged.
    """
    from sklearn.utils.validation import validate_data

    with np.errstate(over="ignore", invalid="ignore"):
        return validate_data(estimator, X, dtype=np.float64, **kwargs)


def check_landscape_vectors(X, shape):
    """Landscape vectors as a float matrix, and their 4-part layout checked.

    ``shape`` is ``(n_layers, n_homology_dimensions, n_landscapes, n_bins)``,
    as ``LandscapeVectorizer.shape_`` gives it; X must have that many
    features.
    """
    check_feature_matrix(X)
    X = check_array(X, dtype=np.float64)
    shape = _check_shape(shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(
            "shape must be (n_layers, n_homology_dimensions, n_landscapes, n_bins), "
            f"got {shape!r}."
        )
    if X.shape[1] != np.prod(shape):
        raise ValueError(
            f"X has {X.shape[1]} features per sample but shape {shape} describes "
            f"{int(np.prod(shape))}; pass the layout of the LandscapeVectorizer "
            "that made X."
        )
    return X, shape


def _check_shape(shape):
    try:
        entries = list(shape)
    except TypeError:
        entries = None
    if entries is None or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_))
        for s in entries
    ):
        raise ValueError(
            "shape must be 4 integers (n_layers, n_homology_dimensions, "
            f"n_landscapes, n_bins), e.g. LandscapeVectorizer.shape_; got {shape!r}."
        )
    return tuple(int(s) for s in entries)
