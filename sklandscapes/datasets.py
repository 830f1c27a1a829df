"""Data sets of the paper: the nine-disks lattice, digits and MNIST (paper III).

Nothing here needs PyTorch: every loader returns NumPy arrays.
"""

import gzip
import os
import zipfile
import zlib
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn import datasets as _sk_datasets
from sklearn.utils import check_random_state

from sklandscapes._compat import Interval, validate_params

__all__ = ["load_digits", "load_mnist", "make_nine_disks", "sublattice_mask"]

# Geometry of the nine-disks set; the docstring of make_nine_disks describes it.
_BIG_RADIUS = 1.0
_DISK_RADIUS = 0.2
_DISK_OFFSET = 0.5
# The lattice is anchored at the corner (-1, -1) of the bounding square, not at
# the centre: a square lattice symmetric about the centre puts 0, 1 or 2
# (mod 4) points in the disk, never the paper's 14,235 (3 mod 4). This spacing
# gives exactly that count; every lattice point lies at least 6e-6 away from
# the big circle, so rounding cannot change it.
_DEFAULT_SPACING = 0.0148534
# Points on a circle up to rounding count as inside (closed disks), so that a
# spacing such as 0.05 puts (1, 0) in the set on every platform.
_TOLERANCE = 1e-9

_MNIST_IDX = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_MNIST_NPZ = "mnist.npz"
_MNIST_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# OpenML's mnist_784 lists the 60,000 training images first, then the test set.
_MNIST_N_TRAIN = 60_000
# Magic number of an IDX file: two zero bytes, 0x08 (unsigned bytes), then the
# number of dimensions.
_IDX_UBYTE = 0x08

_SPACING_CONSTRAINT = [Interval(Real, 0, None, closed="neither"), None]


def _lattice(spacing):
    """Coordinates -1, -1 + spacing, ... up to 1 (included when it is a step)."""
    n_steps = int(np.floor(2 * _BIG_RADIUS / spacing + _TOLERANCE))
    return -_BIG_RADIUS + spacing * np.arange(n_steps + 1)


def _disk_centers():
    offsets = _DISK_OFFSET * np.array([-1.0, 0.0, 1.0])
    return np.array([(x, y) for y in offsets for x in offsets])


@validate_params(
    {
        "spacing": _SPACING_CONSTRAINT,
        "noise": [Interval(Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_nine_disks(spacing=None, *, noise=0.0, shuffle=True, random_state=None):
    """Nine disks and their complement in a larger disk, sampled on a lattice.

    The synthetic data set of the paper (III-A), after data set D-I of Naitzat,
    Zhitnikov and Lim: class 0 is nine disks, class 1 is the rest of a larger
    disk, which therefore has nine holes.

    Geometry:

    - the big disk is the closed unit disk, centred at the origin;
    - the nine disks are closed, of radius 0.2, centred at the 3 x 3 grid
      ``{-0.5, 0, 0.5} x {-0.5, 0, 0.5}``; neighbouring disks are 0.1 apart and
      the corner disks are about 0.093 from the big circle;
    - the points are the lattice points ``(-1 + i * spacing, -1 + j * spacing)``,
      ``i, j = 0, 1, 2, ...``, that lie in the big disk.

    The default spacing, 0.0148534, gives exactly 14,235 points like the paper:
    5,135 in class 0 and 9,100 in class 1.

    Parameters
    ----------
    spacing : float, default=None
        Distance between neighbouring lattice points; ``None`` means 0.0148534.
        The number of points is about ``pi / spacing**2``.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to every coordinate after
        the labels are assigned. The paper uses none.
    shuffle : bool, default=True
        Whether to shuffle the points. Unshuffled, they come in lattice order:
        by increasing y, then by increasing x.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffle and the noise. Pass an int for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_points, 2), dtype float64
        The points.
    y : ndarray of shape (n_points,), dtype int64
        0 for a point of the nine disks, 1 for a point of their complement.

    See Also
    --------
    sublattice_mask : Select the points of a coarser sublattice.

    References
    ----------
    .. [1] M. Wheeler, J. Bouza and P. Bubenik, "Activation Landscapes as a
       Topological Summary of Neural Network Performance", IEEE Big Data, 2021.
    .. [2] G. Naitzat, A. Zhitnikov and L.-H. Lim, "Topology of Deep Neural
       Networks", Journal of Machine Learning Research 21(184), 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.datasets import make_nine_disks
    >>> X, y = make_nine_disks(random_state=0)
    >>> X.shape
    (14235, 2)
    >>> np.bincount(y)
    array([5135, 9100])
    >>> X, y = make_nine_disks(spacing=0.5, shuffle=False)
    >>> X[y == 0]
    array([[-0.5, -0.5],
           [ 0. , -0.5],
           [ 0.5, -0.5],
           [-0.5,  0. ],
           [ 0. ,  0. ],
           [ 0.5,  0. ],
           [-0.5,  0.5],
           [ 0. ,  0.5],
           [ 0.5,  0.5]])
    """
    if spacing is None:
        spacing = _DEFAULT_SPACING
    coordinates = _lattice(spacing)
    xx, yy = np.meshgrid(coordinates, coordinates)
    X = np.column_stack([xx.ravel(), yy.ravel()])
    X = X[np.einsum("ij,ij->i", X, X) <= _BIG_RADIUS**2 + _TOLERANCE]

    squared_distances = ((X[:, None, :] - _disk_centers()[None]) ** 2).sum(axis=2)
    in_a_disk = squared_distances.min(axis=1) <= _DISK_RADIUS**2 + _TOLERANCE
    y = np.where(in_a_disk, 0, 1).astype(np.int64)

    rng = check_random_state(random_state)
    if shuffle:
        order = rng.permutation(len(X))
        X, y = X[order], y[order]
    if noise > 0:
        X = X + rng.normal(scale=noise, size=X.shape)
    return X, y


@validate_params(
    {
        "X": ["array-like"],
        "step": [Interval(Integral, 1, None, closed="left")],
        "spacing": _SPACING_CONSTRAINT,
    },
    prefer_skip_nested_validation=True,
)
def sublattice_mask(X, step, *, spacing=None):
    """Mask of the points of ``make_nine_disks`` on every ``step``-th lattice point.

    The paper (III-A) computes activation landscapes on a batch made of a
    sublattice of the nine-disks data, which mixes training and test points.
    A point ``(-1 + i * spacing, -1 + j * spacing)`` belongs to the sublattice
    when both ``i`` and ``j`` are multiples of ``step``, so it keeps about one
    point in ``step**2``, evenly spread. The mask follows the rows of ``X``:
    it works after shuffling, and after a train/test split.

    Parameters
    ----------
    X : array-like of shape (n_points, 2)
        Points from :func:`make_nine_disks`, in any order. Noisy points are
        assigned to their nearest lattice point, which is their own as long as
        the noise stays below half the spacing.
    step : int
        Keep every ``step``-th lattice point along each axis; 1 keeps all.
    spacing : float, default=None
        The spacing ``X`` was made with; ``None`` means the default of
        :func:`make_nine_disks`.

    Returns
    -------
    mask : ndarray of shape (n_points,), dtype bool
        True for the rows of ``X`` on the sublattice.

    See Also
    --------
    make_nine_disks : The nine-disks data set.

    Examples
    --------
    >>> from sklandscapes.datasets import make_nine_disks, sublattice_mask
    >>> X, y = make_nine_disks(random_state=0)
    >>> mask = sublattice_mask(X, step=3)
    >>> int(mask.sum())
    1572
    >>> batch, batch_labels = X[mask], y[mask]
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(
            f"X must be an array of shape (n_points, 2) from make_nine_disks, got "
            f"shape {X.shape!r}."
        )
    if spacing is None:
        spacing = _DEFAULT_SPACING
    indices = np.rint((X + _BIG_RADIUS) / spacing).astype(np.int64)
    return np.all(indices % step == 0, axis=1)


def _flatten_images(images, scale, max_value):
    X = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    return X / np.float32(max_value) if scale else X


@validate_params({"scale": ["boolean"]}, prefer_skip_nested_validation=True)
def load_digits(*, scale=True):
    """The 8 x 8 handwritten digits that ship with scikit-learn, flattened.

    A small real data set that needs no download: 1,797 images of the digits
    0 to 9, a stand-in for MNIST (paper III-B) in examples and tests.

    Parameters
    ----------
    scale : bool, default=True
        Divide the pixel values, integers from 0 to 16, by 16 so that they lie
        in [0, 1].

    Returns
    -------
    X : ndarray of shape (1797, 64), dtype float32
        One flattened image per row. float32 is what torch layers expect.
    y : ndarray of shape (1797,), dtype int64
        The digit shown.

    See Also
    --------
    sklearn.datasets.load_digits : The source of the images.
    load_mnist : The 28 x 28 MNIST images of the paper.

    Examples
    --------
    >>> from sklandscapes.datasets import load_digits
    >>> X, y = load_digits()
    >>> X.shape, X.dtype, float(X.max())
    ((1797, 64), dtype('float32'), 1.0)
    """
    images, labels = _sk_datasets.load_digits(return_X_y=True)
    return _flatten_images(images, scale, 16), labels.astype(np.int64)


def _read_bytes(path):
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as file:
                return file.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"Cannot read the IDX file {str(path)!r}: {exc}") from exc


def _read_idx(path, n_dims):
    """Unsigned-byte array of ``n_dims`` dimensions from the IDX file ``path``.

    IDX (the MNIST format): the big-endian magic number ``0x0800 + n_dims``,
    ``n_dims`` big-endian uint32 sizes, then the bytes in C order.
    """
    data = _read_bytes(path)
    name = str(path)
    expected_magic = (_IDX_UBYTE << 8) | n_dims
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if magic != expected_magic:
        found = f"a file of {len(data)} bytes" if magic is None else f"0x{magic:08X}"
        raise ValueError(
            f"{name!r} is not an IDX file of unsigned bytes with {n_dims} "
            f"dimension(s): expected the magic number 0x{expected_magic:08X}, "
            f"got {found}."
        )
    header_size = 4 + 4 * n_dims
    if len(data) < header_size:
        raise ValueError(
            f"{name!r} is truncated: its header needs {header_size} bytes, the file "
            f"has {len(data)}."
        )
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", n_dims, 4))
    n_values = int(np.prod(shape))
    if len(data) - header_size != n_values:
        raise ValueError(
            f"{name!r} is corrupt: its header announces shape {shape}, that is "
            f"{n_values} bytes of data, but the file holds "
            f"{len(data) - header_size}."
        )
    return np.frombuffer(data, np.uint8, n_values, header_size).reshape(shape)


def _find_idx(folder, stem):
    # Some mirrors (Kaggle's among them) spell the names with a dot, e.g.
    # train-images.idx3-ubyte.
    for base in (stem, stem.replace("-idx", ".idx")):
        for name in (base, base + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _read_mnist_idx(paths, scale):
    arrays = []
    for kind, (images_path, labels_path) in (
        ("training", paths[:2]),
        ("test", paths[2:]),
    ):
        images, labels = _read_idx(images_path, 3), _read_idx(labels_path, 1)
        if len(images) != len(labels):
            raise ValueError(
                f"The MNIST {kind} files disagree: {str(images_path)!r} holds "
                f"{len(images)} images but {str(labels_path)!r} holds "
                f"{len(labels)} labels."
            )
        arrays += [_flatten_images(images, scale, 255), labels.astype(np.int64)]
    return tuple(arrays)


def _read_mnist_npz(path, scale):
    try:
        archive = np.load(path)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an .npz archive")
        with archive:
            arrays = {key: archive[key] for key in _MNIST_NPZ_KEYS if key in archive}
    # A damaged archive surfaces as any of these, depending on where it breaks.
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise ValueError(f"Cannot read the .npz file {str(path)!r}: {exc}") from exc
    missing = [key for key in _MNIST_NPZ_KEYS if key not in arrays]
    if missing:
        raise ValueError(
            f"{str(path)!r} lacks the arrays {missing}; an MNIST .npz file needs "
            f"the keys {list(_MNIST_NPZ_KEYS)} (the Keras mnist.npz layout)."
        )
    return (
        _flatten_images(arrays["x_train"], scale, 255),
        arrays["y_train"].astype(np.int64),
        _flatten_images(arrays["x_test"], scale, 255),
        arrays["y_test"].astype(np.int64),
    )


def _load_local(path, scale):
    """MNIST from ``path`` and None if it is not there, with what was looked for."""
    path = Path(path)
    if path.suffix == ".npz" or path.is_file():
        if path.suffix != ".npz":
            raise ValueError(
                f"path must be a folder or an .npz file, got the file {str(path)!r}."
            )
        if path.is_file():
            return _read_mnist_npz(path, scale), ""
        return None, f"the file {str(path)!r} does not exist"

    looked_for = (
        f"the IDX files {', '.join(_MNIST_IDX)} (each optionally gzipped as .gz) "
        f"or {_MNIST_NPZ} in {str(path)!r}"
    )
    if not path.is_dir():
        return None, f"{looked_for}, but that folder does not exist"
    idx_paths = [_find_idx(path, stem) for stem in _MNIST_IDX]
    if all(idx_paths):
        return _read_mnist_idx(idx_paths, scale), ""
    if (path / _MNIST_NPZ).is_file():
        return _read_mnist_npz(path / _MNIST_NPZ, scale), ""
    missing = [stem for stem, found in zip(_MNIST_IDX, idx_paths) if found is None]
    return None, f"{looked_for}; missing: {', '.join(missing)} and {_MNIST_NPZ}"


def _fetch_openml_mnist(data_home, scale):
    bunch = _sk_datasets.fetch_openml(
        "mnist_784",
        version=1,
        data_home=data_home,
        as_frame=False,
        # liac-arff needs no pandas.
        parser="liac-arff",
    )
    X = _flatten_images(bunch.data, scale, 255)
    y = np.asarray(bunch.target).astype(np.int64)
    n = _MNIST_N_TRAIN
    return X[:n], y[:n], X[n:], y[n:]


@validate_params(
    {
        "path": [str, os.PathLike, None],
        "data_home": [str, os.PathLike, None],
        "download_if_missing": ["boolean"],
        "scale": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_mnist(path=None, *, data_home=None, download_if_missing=True, scale=True):
    """The MNIST handwritten digits (paper III-B), from local files or OpenML.

    Looks in ``path`` first, in this order, for:

    1. the four IDX files of LeCun's distribution, ``train-images-idx3-ubyte``,
       ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
       ``t10k-labels-idx1-ubyte``, each possibly gzipped (``.gz``) and possibly
       spelled with ``.idx`` for ``-idx``;
    2. ``mnist.npz`` with the arrays ``x_train``, ``y_train``, ``x_test``,
       ``y_test`` (the Keras layout).

    ``path`` may also name an ``.npz`` file directly. When nothing is found
    there (or ``path`` is None), MNIST is fetched from OpenML (``mnist_784``,
    version 1) with :func:`sklearn.datasets.fetch_openml`, which caches it
    under ``data_home``; its first 60,000 rows are the training set.

    Parameters
    ----------
    path : str or path-like, default=None
        A folder holding the files above, or an ``.npz`` file.
    data_home : str or path-like, default=None
        Cache folder for the OpenML download; ``None`` means scikit-learn's
        default, ``~/scikit_learn_data``.
    download_if_missing : bool, default=True
        Whether to fetch from OpenML when the files are not in ``path``. If
        False, missing files raise ``FileNotFoundError``.
    scale : bool, default=True
        Divide the pixel values, integers from 0 to 255, by 255 so that they
        lie in [0, 1].

    Returns
    -------
    X_train : ndarray of shape (60000, 784), dtype float32
        Flattened training images, one per row (rows x columns of pixels).
    y_train : ndarray of shape (60000,), dtype int64
        Their digits.
    X_test : ndarray of shape (10000, 784), dtype float32
        Flattened test images.
    y_test : ndarray of shape (10000,), dtype int64
        Their digits.

    Raises
    ------
    FileNotFoundError
        When the files are not in ``path`` and fetching is disabled or fails;
        the message lists the files looked for and the fetch error.
    ValueError
        When a file is there but corrupt, truncated or not of the expected
        kind; the message names the file.

    See Also
    --------
    load_digits : Smaller digits that need no download.

    Examples
    --------
    A tiny stand-in for ``mnist.npz``, so that the example runs offline:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklandscapes.datasets import load_mnist
    >>> images = np.zeros((3, 28, 28), dtype=np.uint8)
    >>> labels = np.array([7, 2, 1])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     file = os.path.join(folder, "mnist.npz")
    ...     np.savez(file, x_train=images, y_train=labels,
    ...              x_test=images[:1], y_test=labels[:1])
    ...     X_train, y_train, X_test, y_test = load_mnist(file)
    >>> X_train.shape, X_test.shape, y_train
    ((3, 784), (1, 784), array([7, 2, 1]))
    """
    looked_for = "nothing (path=None)"
    if path is not None:
        result, looked_for = _load_local(path, scale)
        if result is not None:
            return result
    if not download_if_missing:
        raise FileNotFoundError(
            f"MNIST not found: looked for {looked_for}, and download_if_missing="
            "False. Put the files there or pass download_if_missing=True to fetch "
            "mnist_784 from OpenML."
        )
    try:
        return _fetch_openml_mnist(data_home, scale)
    # URLError and socket timeouts are OSErrors; OpenML errors are ValueErrors.
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(
            f"MNIST not found: looked for {looked_for}, and fetching mnist_784 "
            f"from OpenML (data_home={data_home!r}) failed with {exc!r}. Put the "
            "files in a folder and pass it as path."
        ) from exc
