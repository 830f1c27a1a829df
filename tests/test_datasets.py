import gzip
import importlib
import sys
from urllib.error import URLError

import numpy as np
import pytest
import sklearn.datasets
from scipy import ndimage
from sklearn.utils import Bunch

import sklandscapes.datasets
from sklandscapes.datasets import (
    load_digits,
    load_mnist,
    make_nine_disks,
    sublattice_mask,
)

DEFAULT_SPACING = 0.0148534
DISK_CENTERS = np.array([(x, y) for y in (-0.5, 0, 0.5) for x in (-0.5, 0, 0.5)])
IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any test that would reach OpenML; fallback tests install a fake."""

    def refuse(*args, **kwargs):
        pytest.fail("load_mnist tried to fetch from OpenML")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", refuse)


def lattice_indices(X, spacing=DEFAULT_SPACING):
    return np.rint((X + 1) / spacing).astype(int)


# --------------------------------------------------------------- nine disks


def test_nine_disks_default_has_the_papers_count():
    X, y = make_nine_disks(random_state=0)
    assert X.shape == (14235, 2)
    assert X.dtype == np.float64
    assert y.dtype == np.int64
    assert np.bincount(y).tolist() == [5135, 9100]


def test_nine_disks_labels_follow_the_geometry():
    X, y = make_nine_disks(random_state=0)
    assert np.all(np.linalg.norm(X, axis=1) <= 1)
    nearest = np.linalg.norm(X[:, None] - DISK_CENTERS[None], axis=2).min(axis=1)
    assert np.all(nearest[y == 0] <= 0.2)
    assert np.all(nearest[y == 1] > 0.2)
    # Every disk holds points of class 0.
    owner = np.linalg.norm(X[:, None] - DISK_CENTERS[None], axis=2).argmin(axis=1)
    assert set(owner[y == 0]) == set(range(9))


def test_nine_disks_complement_has_nine_holes():
    X, y = make_nine_disks(shuffle=False)
    indices = lattice_indices(X)
    size = indices.max() + 1
    image = np.full((size, size), -1)
    image[indices[:, 1], indices[:, 0]] = y

    _, n_disks = ndimage.label(image == 0)
    assert n_disks == 9
    # 8-connectivity for the foreground pairs with the default 4-connectivity of
    # the background below, so that diagonal steps cannot leak out of a hole.
    _, n_pieces = ndimage.label(image == 1, structure=np.ones((3, 3)))
    assert n_pieces == 1
    # Holes: components of the rest of the bounding box that miss its border.
    rest, n_rest = ndimage.label(image != 1)
    border = np.unique(np.r_[rest[0], rest[-1], rest[:, 0], rest[:, -1]])
    holes = set(range(1, n_rest + 1)) - set(border)
    assert len(holes) == 9
    # Each hole is one of the disks, around its centre.
    centers = lattice_indices(DISK_CENTERS)
    assert {rest[row, col] for col, row in centers} == holes


@pytest.mark.parametrize("spacing", [DEFAULT_SPACING, 0.05, 0.1])
def test_nine_disks_lie_on_a_lattice_of_the_given_spacing(spacing):
    X, _ = make_nine_disks(spacing, shuffle=False)
    steps = (X + 1) / spacing
    # Coordinates are -1 + i * spacing computed in float64: far below 1e-9 off.
    np.testing.assert_allclose(steps, np.rint(steps), rtol=0, atol=1e-9)
    # Neighbours along x are exactly one spacing apart.
    same_row = np.isclose(np.diff(X[:, 1]), 0)
    np.testing.assert_allclose(np.diff(X[:, 0])[same_row], spacing, rtol=1e-9)


@pytest.mark.parametrize("spacing", [0.02, 0.05, 0.1])
def test_nine_disks_count_follows_the_area(spacing):
    X, y = make_nine_disks(spacing, random_state=0)
    # Lattice points in a disk of radius 1 / spacing (in lattice units) differ
    # from its area by less than its perimeter times a cell's diagonal.
    assert abs(len(X) - np.pi / spacing**2) < 2 * np.pi * np.sqrt(2) / spacing
    assert set(np.unique(y)) == {0, 1}


def test_nine_disks_disks_are_closed():
    X, _ = make_nine_disks(0.05, shuffle=False)
    for point in [(1, 0), (0, 1), (-1, 0), (0, -1)]:
        assert np.isclose(X, point, atol=1e-9).all(axis=1).any()


def test_nine_disks_unshuffled_come_in_lattice_order():
    X, _ = make_nine_disks(shuffle=False)
    order = np.lexsort((X[:, 0], X[:, 1]))
    np.testing.assert_array_equal(order, np.arange(len(X)))


def test_nine_disks_shuffle_is_a_seeded_permutation():
    X_plain, y_plain = make_nine_disks(shuffle=False)
    X_a, y_a = make_nine_disks(random_state=3)
    X_b, y_b = make_nine_disks(random_state=3)
    X_c, _ = make_nine_disks(random_state=4)
    np.testing.assert_array_equal(X_a, X_b)
    np.testing.assert_array_equal(y_a, y_b)
    assert not np.array_equal(X_a, X_c)
    assert not np.array_equal(X_a, X_plain)
    order = np.lexsort((X_a[:, 0], X_a[:, 1]))
    np.testing.assert_array_equal(X_a[order], X_plain)
    np.testing.assert_array_equal(y_a[order], y_plain)


def test_nine_disks_noise_moves_points_not_labels():
    X_clean, y_clean = make_nine_disks(random_state=0)
    X_noisy, y_noisy = make_nine_disks(noise=0.01, random_state=0)
    np.testing.assert_array_equal(y_noisy, y_clean)
    # 28,470 Gaussian draws: the sample std has a relative standard error of
    # about 0.4%, so 2% is five standard errors.
    assert np.std(X_noisy - X_clean) == pytest.approx(0.01, rel=0.02)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"spacing": 0}, "'spacing' parameter of make_nine_disks"),
        ({"spacing": -0.1}, "'spacing' parameter of make_nine_disks"),
        ({"spacing": float("nan")}, "'spacing' parameter of make_nine_disks"),
        ({"spacing": "fine"}, "'spacing' parameter of make_nine_disks"),
        ({"noise": -1.0}, "'noise' parameter of make_nine_disks"),
        ({"shuffle": "yes"}, "'shuffle' parameter of make_nine_disks"),
        ({"random_state": "seed"}, "'random_state' parameter of make_nine_disks"),
    ],
)
def test_nine_disks_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_nine_disks(**kwargs)


# --------------------------------------------------------------- sublattice


def test_sublattice_step_one_keeps_everything():
    X, _ = make_nine_disks(random_state=0)
    assert sublattice_mask(X, 1).all()


@pytest.mark.parametrize("step", [2, 3, 5])
def test_sublattice_is_every_step_th_lattice_point(step):
    X, y = make_nine_disks(random_state=0)
    mask = sublattice_mask(X, step)
    kept = lattice_indices(X[mask])
    assert np.all(kept % step == 0)
    assert np.any(lattice_indices(X[~mask]) % step != 0, axis=1).all()
    # About one point in step**2, within the boundary effect of a coarser grid.
    assert mask.sum() == pytest.approx(len(X) / step**2, rel=0.05)
    assert set(y[mask]) == {0, 1}


def test_sublattice_exact_count_and_order_independence():
    X_plain, _ = make_nine_disks(shuffle=False)
    X, _ = make_nine_disks(random_state=0)
    assert sublattice_mask(X, 3).sum() == 1572
    assert sublattice_mask(X_plain, 3).sum() == 1572
    # Row-wise: a split's mask is the full mask restricted to the split.
    rows = np.random.default_rng(0).permutation(len(X))[:5000]
    np.testing.assert_array_equal(
        sublattice_mask(X[rows], 3), sublattice_mask(X, 3)[rows]
    )


def test_sublattice_with_small_noise_and_other_spacing():
    X_clean, _ = make_nine_disks(0.05, random_state=0)
    # Noise far below half the spacing (0.025) keeps each point nearest its own
    # lattice point.
    X_noisy, _ = make_nine_disks(0.05, noise=0.002, random_state=0)
    np.testing.assert_array_equal(
        sublattice_mask(X_noisy, 2, spacing=0.05),
        sublattice_mask(X_clean, 2, spacing=0.05),
    )


@pytest.mark.parametrize(
    "X, step, match",
    [
        (np.zeros((4, 2)), 0, "'step' parameter of sublattice_mask"),
        (np.zeros((4, 2)), 1.5, "'step' parameter of sublattice_mask"),
        (np.zeros((4, 3)), 2, r"shape \(n_points, 2\).*\(4, 3\)"),
        (np.zeros(4), 2, r"shape \(n_points, 2\).*\(4,\)"),
    ],
)
def test_sublattice_rejects_bad_input(X, step, match):
    with pytest.raises(ValueError, match=match):
        sublattice_mask(X, step)


# ------------------------------------------------------------------- digits


def test_digits_are_flattened_and_scaled():
    X, y = load_digits()
    assert X.shape == (1797, 64)
    assert X.dtype == np.float32
    assert y.dtype == np.int64
    assert X.min() == 0 and X.max() == 1
    assert set(y) == set(range(10))
    X_raw, y_raw = load_digits(scale=False)
    assert X_raw.max() == 16
    np.testing.assert_array_equal(X_raw / 16, X)
    np.testing.assert_array_equal(y_raw, y)


def test_digits_reject_bad_scale():
    with pytest.raises(ValueError, match="'scale' parameter of load_digits"):
        load_digits(scale="yes")


# -------------------------------------------------------------------- MNIST


def idx_bytes(array):
    """IDX encoding of an unsigned-byte array: magic, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


@pytest.fixture
def mnist_arrays(rng):
    """Tiny MNIST look-alike: non-square 4 x 3 images to test generic sizes."""
    return {
        "x_train": rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=5).astype(np.uint8),
        "x_test": rng.integers(0, 256, size=(2, 4, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=2).astype(np.uint8),
    }


def write_idx_files(folder, arrays, gz=False, names=IDX_NAMES):
    for name, key in zip(names, ("x_train", "y_train", "x_test", "y_test")):
        data = idx_bytes(arrays[key])
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def assert_loaded(result, arrays, scale=True):
    X_train, y_train, X_test, y_test = result
    factor = 255 if scale else 1
    for X, key in ((X_train, "x_train"), (X_test, "x_test")):
        assert X.dtype == np.float32
        expected = arrays[key].reshape(len(arrays[key]), -1) / np.float32(factor)
        np.testing.assert_array_equal(X, expected.astype(np.float32))
    for y, key in ((y_train, "y_train"), (y_test, "y_test")):
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, arrays[key])


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files(tmp_path, mnist_arrays, gz):
    write_idx_files(tmp_path, mnist_arrays, gz=gz)
    result = load_mnist(tmp_path, download_if_missing=False)
    assert result[0].shape == (5, 12) and result[2].shape == (2, 12)
    assert_loaded(result, mnist_arrays)


def test_mnist_reads_dotted_idx_names_and_raw_values(tmp_path, mnist_arrays):
    dotted = [name.replace("-idx", ".idx") for name in IDX_NAMES]
    write_idx_files(tmp_path, mnist_arrays, names=dotted)
    result = load_mnist(str(tmp_path), download_if_missing=False, scale=False)
    assert_loaded(result, mnist_arrays, scale=False)


def test_mnist_reads_npz_in_folder_and_by_path(tmp_path, mnist_arrays):
    np.savez(tmp_path / "mnist.npz", **mnist_arrays)
    assert_loaded(load_mnist(tmp_path, download_if_missing=False), mnist_arrays)
    assert_loaded(
        load_mnist(tmp_path / "mnist.npz", download_if_missing=False), mnist_arrays
    )


def test_mnist_prefers_idx_files_over_npz(tmp_path, mnist_arrays):
    write_idx_files(tmp_path, mnist_arrays)
    other = {key: value[::-1] for key, value in mnist_arrays.items()}
    np.savez(tmp_path / "mnist.npz", **other)
    assert_loaded(load_mnist(tmp_path, download_if_missing=False), mnist_arrays)


def fake_openml(calls, n_rows=60_003):
    def fetch_openml(name, **kwargs):
        calls.append((name, kwargs))
        data = np.arange(n_rows * 4, dtype=np.float64).reshape(n_rows, 4) % 256
        target = np.array([str(i % 10) for i in range(n_rows)], dtype=object)
        return Bunch(data=data, target=target)

    return fetch_openml


@pytest.mark.parametrize("folder", [None, "empty"])
def test_mnist_falls_back_to_openml(tmp_path, monkeypatch, folder):
    calls = []
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake_openml(calls))
    path = None if folder is None else tmp_path
    X_train, y_train, X_test, y_test = load_mnist(path, data_home=tmp_path / "cache")

    ((name, kwargs),) = calls
    assert name == "mnist_784"
    assert kwargs["version"] == 1
    assert kwargs["data_home"] == tmp_path / "cache"
    assert kwargs["as_frame"] is False
    # The first 60,000 rows of mnist_784 are the training set.
    assert X_train.shape == (60_000, 4) and X_test.shape == (3, 4)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.max() == 1 and X_train.min() == 0
    np.testing.assert_array_equal(y_test, [0, 1, 2])
    np.testing.assert_array_equal(X_test[0] * 255, np.arange(240_000, 240_004) % 256)
    assert y_train[:3].tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "error, reason",
    [(URLError("no route to host"), "no route to host"), (TimeoutError(), "Timeout")],
)
def test_mnist_fetch_failure_names_the_files_looked_for(
    tmp_path, monkeypatch, error, reason
):
    def failing_fetch(*args, **kwargs):
        raise error

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", failing_fetch)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte") as info:
        load_mnist(tmp_path)
    message = str(info.value)
    for name in (*IDX_NAMES, "mnist.npz", "mnist_784", reason):
        assert name in message
    assert info.value.__cause__ is error


def test_mnist_without_download_names_the_missing_files(tmp_path, mnist_arrays):
    write_idx_files(tmp_path, mnist_arrays)
    (tmp_path / IDX_NAMES[3]).unlink()
    with pytest.raises(FileNotFoundError, match="missing: t10k-labels-idx1-ubyte and"):
        load_mnist(tmp_path, download_if_missing=False)


@pytest.mark.parametrize(
    "path, match",
    [
        (None, r"path=None.*download_if_missing=False"),
        ("no-such-folder", r"t10k-images-idx3-ubyte.*folder does not exist"),
        ("absent.npz", r"absent\.npz' does not exist"),
    ],
)
def test_mnist_without_download_or_files(tmp_path, path, match):
    path = None if path is None else tmp_path / path
    with pytest.raises(FileNotFoundError, match=match):
        load_mnist(path, download_if_missing=False)


def corrupt(data):
    """Ways to break a valid IDX image file, by name."""
    return {
        "truncated data": data[:-1],
        "trailing bytes": data + b"\x00",
        "short header": data[:6],
        "tiny file": data[:2],
        "label magic": bytes([0, 0, 8, 1]) + data[4:],
        "int32 magic": bytes([0, 0, 0x0C, 3]) + data[4:],
    }


@pytest.mark.parametrize(
    "kind, match",
    [
        ("truncated data", "is corrupt: its header announces shape"),
        ("trailing bytes", "is corrupt: its header announces shape"),
        ("short header", "is truncated: its header needs 16 bytes"),
        ("tiny file", "expected the magic number 0x00000803, got a file of 2 bytes"),
        ("label magic", "expected the magic number 0x00000803, got 0x00000801"),
        ("int32 magic", "expected the magic number 0x00000803, got 0x00000C03"),
    ],
)
def test_mnist_corrupt_idx_file_names_it(tmp_path, mnist_arrays, kind, match):
    write_idx_files(tmp_path, mnist_arrays)
    target = tmp_path / IDX_NAMES[0]
    target.write_bytes(corrupt(target.read_bytes())[kind])
    with pytest.raises(ValueError, match=match) as info:
        load_mnist(tmp_path)
    assert str(target) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"not gzip at all", gzip.compress(b"\x00\x00\x08\x01" + bytes(100))[:20]],
    ids=["not gzip", "truncated gzip"],
)
def test_mnist_broken_gzip_names_the_file(tmp_path, mnist_arrays, content):
    write_idx_files(tmp_path, mnist_arrays, gz=True)
    target = tmp_path / f"{IDX_NAMES[1]}.gz"
    target.write_bytes(content)
    with pytest.raises(ValueError, match="Cannot read the IDX file") as info:
        load_mnist(tmp_path)
    assert str(target) in str(info.value)


def test_mnist_images_and_labels_must_agree(tmp_path, mnist_arrays):
    mnist_arrays["y_test"] = mnist_arrays["y_test"][:1]
    write_idx_files(tmp_path, mnist_arrays)
    with pytest.raises(
        ValueError, match="test files disagree: .* 2 images .* 1 labels"
    ):
        load_mnist(tmp_path)


def test_mnist_npz_needs_the_keras_keys(tmp_path, mnist_arrays):
    del mnist_arrays["x_test"]
    np.savez(tmp_path / "mnist.npz", **mnist_arrays)
    with pytest.raises(ValueError, match=r"lacks the arrays \['x_test'\]"):
        load_mnist(tmp_path)


@pytest.mark.parametrize(
    "content", [b"garbage", b"PK\x03\x04 truncated zip"], ids=["garbage", "zip"]
)
def test_mnist_unreadable_npz_names_the_file(tmp_path, content):
    target = tmp_path / "mnist.npz"
    target.write_bytes(content)
    with pytest.raises(ValueError, match=r"Cannot read the \.npz file .*mnist\.npz"):
        load_mnist(target)


def test_mnist_npz_holding_one_array_is_rejected(tmp_path):
    target = tmp_path / "mnist.npz"
    with open(target, "wb") as file:
        np.save(file, np.zeros(3))
    with pytest.raises(ValueError, match="single array, not an .npz archive"):
        load_mnist(target)


def test_mnist_path_must_be_a_folder_or_npz(tmp_path):
    target = tmp_path / "mnist.csv"
    target.write_text("1,2,3")
    with pytest.raises(ValueError, match="path must be a folder or an .npz file"):
        load_mnist(target)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"path": 3}, "'path' parameter of load_mnist"),
        ({"data_home": 3}, "'data_home' parameter of load_mnist"),
        ({"download_if_missing": "no"}, "'download_if_missing' parameter"),
        ({"scale": 1}, "'scale' parameter of load_mnist"),
    ],
)
def test_mnist_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_mnist(**kwargs)


class BlockTorch:
    """Import hook under which ``import torch`` fails, as if it were absent."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            raise ImportError("torch is blocked by the test")


def test_datasets_work_without_torch(monkeypatch):
    # Re-import the module in this process with torch hidden and blocked: a
    # fresh interpreter would be stricter but costs seconds of imports.
    monkeypatch.setattr(sys, "meta_path", [BlockTorch(), *sys.meta_path])
    for name in [name for name in sys.modules if name.partition(".")[0] == "torch"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "sklandscapes.datasets")
    monkeypatch.setattr(sklandscapes, "datasets", sklandscapes.datasets)
    with pytest.raises(ImportError, match="blocked"):
        importlib.import_module("torch")

    datasets = importlib.import_module("sklandscapes.datasets")
    X, y = datasets.make_nine_disks(0.1)
    assert len(X) == len(y) > 0
