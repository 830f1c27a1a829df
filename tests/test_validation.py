import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sklandscapes import LandscapeVectorizer
from sklandscapes._validation import (
    binary_exponent,
    check_layered_clouds,
    check_layered_diagrams,
)


def test_equal_shaped_cells_stay_an_object_array(rng):
    # np.array on this nested list would give a (2, 2, 5, 3) float array.
    nested = [[rng.normal(size=(5, 3)) for _ in range(2)] for _ in range(2)]
    clouds = check_layered_clouds(nested)
    assert clouds.dtype == object
    assert clouds.shape == (2, 2)
    np.testing.assert_array_equal(clouds[1, 0], nested[1][0])


def test_plain_list_of_clouds_is_one_layer(rng):
    clouds = check_layered_clouds([rng.normal(size=(4, 2)), rng.normal(size=(6, 2))])
    assert clouds.shape == (2, 1)
    assert clouds[1, 0].shape == (6, 2)


def test_regular_3d_array_is_one_cloud_per_sample(rng):
    clouds = check_layered_clouds(rng.normal(size=(3, 7, 2)))
    assert clouds.shape == (3, 1)
    assert clouds[2, 0].shape == (7, 2)


def test_every_bad_cell_is_listed(rng):
    good = rng.normal(size=(5, 2))
    nan = good.copy()
    nan[0, 0] = np.nan
    X = [[good, nan], [good[:1], np.ones(3)]]
    with pytest.raises(ValueError, match="sample 0, layer 1: contains 1 NaN") as info:
        check_layered_clouds(X)
    message = str(info.value)
    assert "sample 1, layer 0: has 1 point(s); at least 2 are needed" in message
    assert "sample 1, layer 1: expected a 2-D array" in message


def test_empty_cloud_and_infinite_values(rng):
    with pytest.raises(ValueError, match="sample 0, layer 0: has 0 point"):
        check_layered_clouds([np.empty((0, 3))])
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_layered_clouds([np.array([[0.0, np.inf], [1.0, 1.0]])])


def test_ragged_layers_are_named(rng):
    cloud = rng.normal(size=(5, 2))
    with pytest.raises(ValueError, match="sample 1 has 1 layers, sample 0 has 2"):
        check_layered_clouds([[cloud, cloud], [cloud]])


def test_wrong_nesting_is_explained(rng):
    with pytest.raises(ValueError, match="a single 2-D array"):
        check_layered_clouds(rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="sequence of arrays"):
        check_layered_clouds(3.0)


def test_precomputed_matrices_are_checked():
    square = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert check_layered_clouds([square], precomputed=True)[0, 0].shape == (2, 2)
    with pytest.raises(ValueError, match="expected a square distance matrix"):
        check_layered_clouds([np.zeros((2, 3))], precomputed=True)
    with pytest.raises(ValueError, match="not symmetric"):
        check_layered_clouds([np.array([[0.0, 1.0], [2.0, 0.0]])], precomputed=True)
    with pytest.raises(ValueError, match="non-zero diagonal"):
        check_layered_clouds([np.array([[1.0, 1.0], [1.0, 0.0]])], precomputed=True)


def test_diagrams_accept_three_levels_or_one():
    d = np.array([[0.0, 1.0]])
    assert check_layered_diagrams([d, d]).shape == (2, 1, 1)
    assert check_layered_diagrams([[[d, d]], [[d, d]]]).shape == (2, 1, 2)
    empty = check_layered_diagrams([[[np.empty((0, 2))]], [[[]]]])
    assert empty[0, 0, 0].shape == (0, 2)


def test_bad_diagrams_are_named():
    with pytest.raises(ValueError, match="nested 2 levels deep"):
        check_layered_diagrams([[np.zeros((1, 2))]])
    with pytest.raises(
        ValueError,
        match="sample 0, layer 0, homology dimension 0: some deaths are smaller",
    ):
        check_layered_diagrams([np.array([[1.0, 0.5]])])
    with pytest.raises(ValueError, match="births must be finite"):
        check_layered_diagrams([np.array([[np.inf, np.inf]])])
    with pytest.raises(ValueError, match=r"shape \(n_pairs, 2\), got shape \(1, 3\)"):
        check_layered_diagrams([np.zeros((1, 3))])


def test_dict_of_samples_is_named_not_a_key_error(rng):
    cloud = rng.normal(size=(4, 2))
    with pytest.raises(ValueError, match=r"X is a dict with keys \['a', 'b'\]"):
        check_layered_clouds({"a": cloud, "b": cloud})
    with pytest.raises(ValueError, match=r"X is a dict .*list\(X.values\(\)\)"):
        check_layered_diagrams({0: np.zeros((1, 2))})


def test_clouds_given_as_nested_lists_name_the_cell():
    cloud = [[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]]
    with pytest.raises(ValueError, match=r"X\[0\] is a cell given as nested Python"):
        check_layered_clouds([cloud, cloud])
    with pytest.raises(ValueError, match=r"X\[0\]\[0\] is a cell given as nested"):
        check_layered_clouds([[cloud]])
    with pytest.raises(ValueError, match=r"pass \[np.asarray\(X\)\]"):
        check_layered_clouds(cloud)


def test_point_clouds_given_as_diagrams_get_one_hint(rng):
    clouds = [rng.normal(size=(40, 2)) for _ in range(5)]
    with pytest.raises(ValueError, match="looks like point clouds") as info:
        check_layered_diagrams(clouds)
    message = str(info.value)
    assert "RipsPersistence()" in message
    assert "5 cell(s)" in message
    assert message.count("\n") == 0


@settings(max_examples=200, deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=6),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    )
)
def test_binary_exponent_is_that_of_the_largest_finite_magnitude(values):
    finite = np.abs(values[np.isfinite(values)])
    largest = finite.max() if finite.size else 0.0
    exponent = binary_exponent(values)
    if largest == 0:
        assert exponent == 0
    else:
        assert 0.5 <= np.ldexp(largest, -exponent) < 1
        assert exponent == np.frexp(largest)[1]


def test_atomic_writes_from_threads_keep_the_umask_and_file_modes(
    tmp_path, monkeypatch
):
    """The umask belongs to the process: writing files from several threads
    at once must neither change it nor give a file another mode."""
    import os
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from sklandscapes._io import atomic_write

    monkeypatch.setattr(os, "fsync", lambda fd: None)  # more interleaving
    previous = os.umask(0o027)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(4) as pool:
            list(
                pool.map(
                    lambda i: atomic_write(
                        tmp_path / f"{i}.txt", lambda f: f.write(b"x")
                    ),
                    range(2000),
                )
            )
        assert os.umask(0o027) == 0o027
    finally:
        sys.setswitchinterval(interval)
        os.umask(previous)
    modes = {(tmp_path / f"{i}.txt").stat().st_mode & 0o777 for i in range(2000)}
    assert modes == {0o640}


def test_a_cell_that_is_no_array_is_named():
    with pytest.raises(
        ValueError,
        match=r"sample 0: expected a diagram, an array of \(birth, death\) pairs "
        r"of shape \(n_pairs, 2\), got None",
    ):
        LandscapeVectorizer().fit([None])
    # Every such cell, at its depth, in one error.
    with pytest.raises(
        ValueError,
        match=r"(?s)sample 0, layer 1: expected a diagram.*got None.*"
        r"sample 1, layer 0: expected a diagram.*got 'a'",
    ):
        check_layered_diagrams([[None, None], ["a", np.zeros((0, 2))]])
    with pytest.raises(
        ValueError,
        match=r"sample 0: expected a cloud, an array of shape "
        r"\(n_points, n_features\), got 3.5",
    ):
        check_layered_clouds([3.5, np.zeros((3, 2))])
