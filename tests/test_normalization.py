import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform

from sklandscapes import ActivationNormalizer, LayerDistances
from sklandscapes.normalization import max_pairwise_distance


def test_global_centers_and_scales_to_unit_diameter(rng):
    clouds = [[rng.normal(size=(30, 4)) * 7 + 3, rng.normal(size=(30, 2))]]
    out = ActivationNormalizer().fit_transform(clouds)
    for cell in out.ravel():
        np.testing.assert_allclose(cell.mean(axis=0), 0, atol=1e-12)
        # pdist and the normalizer's diameter are the same computation.
        assert pdist(cell).max() == pytest.approx(1.0, rel=1e-12)


def test_blockwise_diameter_equals_pdist(rng):
    points = rng.normal(size=(4500, 3))
    assert max_pairwise_distance(points) == pytest.approx(
        pdist(points).max(), rel=1e-14
    )


@settings(max_examples=25, deadline=None)
@given(shift=st.floats(-1e3, 1e3), scale=st.floats(1e-3, 1e3))
def test_global_is_invariant_to_translation_and_scale(shift, scale):
    cloud = np.random.default_rng(0).normal(size=(20, 3))
    normalizer = ActivationNormalizer()
    reference = normalizer.fit_transform([cloud])[0, 0]
    moved = normalizer.fit_transform([cloud * scale + shift])[0, 0]
    # Relative rounding of a shift up to 1e3 on coordinates of size ~1.
    np.testing.assert_allclose(moved, reference, atol=1e-9)


def test_local_median_norm_one_and_exterior_on_sphere(rng):
    cloud = rng.normal(size=(101, 5)) * 3 + 1
    out = ActivationNormalizer(method="local").fit_transform([cloud])[0, 0]
    centered = cloud - cloud.mean(axis=0)
    # Odd n: the upper median is the median.
    norms = np.linalg.norm(centered, axis=1) / np.median(
        np.linalg.norm(centered, axis=1)
    )
    out_norms = np.linalg.norm(out, axis=1)
    np.testing.assert_allclose(out_norms, np.minimum(norms, 1.0), rtol=1e-12)
    # Projection keeps the direction of every exterior vector.
    outside = norms > 1
    np.testing.assert_allclose(
        out[outside],
        centered[outside] / np.linalg.norm(centered[outside], axis=1, keepdims=True),
        rtol=1e-12,
    )


def test_local_auto_leaves_relu_layers_uncentered(rng):
    relu = np.maximum(rng.normal(size=(50, 4)), 0) + 0.01
    auto = ActivationNormalizer(method="local").fit_transform([relu])[0, 0]
    plain = ActivationNormalizer(method="local", center=False).fit_transform([relu])
    forced = ActivationNormalizer(method="local", center=True).fit_transform([relu])
    np.testing.assert_array_equal(auto, plain[0, 0])
    assert not np.allclose(auto, forced[0, 0])


def test_constant_clouds_are_refused_with_their_cell(rng):
    good = rng.normal(size=(5, 2))
    constant = np.ones((5, 2))
    with pytest.raises(ValueError, match="sample 1, layer 0: constant cloud"):
        ActivationNormalizer().fit_transform([good, constant])
    with pytest.raises(ValueError, match="sample 0, layer 1: constant cloud"):
        ActivationNormalizer(method="local").fit_transform([[good, constant]])
    mostly_dead = np.zeros((5, 2))
    mostly_dead[:2] = [[1.0, 2.0], [3.0, 0.5]]
    with pytest.raises(ValueError, match="sample 0, layer 0: median norm is 0"):
        ActivationNormalizer(method="local").fit_transform([mostly_dead])


def test_bad_input_and_parameters(rng):
    with pytest.raises(ValueError, match="NaN or infinite"):
        ActivationNormalizer().fit([np.array([[np.nan, 0.0], [1.0, 1.0]])])
    with pytest.raises(ValueError, match="'method' parameter"):
        ActivationNormalizer(method="minmax").fit([rng.normal(size=(3, 2))])
    with pytest.raises(ValueError, match="'center' parameter"):
        ActivationNormalizer(center="yes").fit([rng.normal(size=(3, 2))])


def test_local_rescales_by_the_upper_median_on_even_batches(rng):
    """Even n: the point n // 2 in norm order gets norm 1 (the authors' choice)."""
    cloud = rng.normal(size=(10, 3))
    out = ActivationNormalizer(method="local", center=False).fit_transform([cloud])
    norms = np.linalg.norm(cloud, axis=1)
    upper = np.sort(norms)[5]
    assert upper > np.median(norms)  # distinct from the mean of the middle two
    np.testing.assert_allclose(
        np.linalg.norm(out[0, 0], axis=1), np.minimum(norms / upper, 1.0), rtol=1e-12
    )
    # Exactly the points at or above the median sit on the unit sphere.
    on_sphere = np.isclose(np.linalg.norm(out[0, 0], axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(on_sphere, norms >= upper)


def test_per_layer_centering_follows_the_flags(rng):
    # A non-negative input (pixels) and a ReLU layer: "auto" centers neither,
    # the paper's rule centers the input only.
    pixels = rng.uniform(0, 16, size=(40, 6))
    relu = np.maximum(rng.normal(size=(40, 4)), 0) + 0.01
    X = np.empty((1, 2), dtype=object)
    X[0, 0], X[0, 1] = pixels, relu
    paper = ActivationNormalizer(method="local", center=[True, False]).fit_transform(X)
    centered = ActivationNormalizer(method="local", center=True).fit_transform(X)
    plain = ActivationNormalizer(method="local", center=False).fit_transform(X)
    auto = ActivationNormalizer(method="local").fit_transform(X)
    np.testing.assert_array_equal(paper[0, 0], centered[0, 0])
    np.testing.assert_array_equal(paper[0, 1], plain[0, 1])
    np.testing.assert_array_equal(auto[0, 0], plain[0, 0])
    with pytest.raises(ValueError, match="one bool per layer \\(2 layers in X\\)"):
        ActivationNormalizer(method="local", center=[True]).fit(X)
    with pytest.raises(ValueError, match="one bool per layer"):
        ActivationNormalizer(method="local", center=["yes", "no"]).fit(X)


@pytest.mark.parametrize("method", ["global", "local"])
@pytest.mark.parametrize("exponent", [700, -1000])
def test_power_of_two_scales_normalize_to_the_same_cloud_exactly(rng, method, exponent):
    cloud = rng.normal(size=(10, 3))
    normalizer = ActivationNormalizer(method=method)
    plain = normalizer.fit_transform([cloud])[0, 0]
    scaled = normalizer.fit_transform([np.ldexp(cloud, exponent)])[0, 0]
    np.testing.assert_array_equal(scaled, plain)


@pytest.mark.parametrize("method", ["global", "local"])
@pytest.mark.parametrize("scale", [1e200, 1e-300])
def test_huge_and_tiny_clouds_are_not_zeros_or_constant(rng, method, scale):
    cloud = rng.normal(size=(10, 3))
    normalizer = ActivationNormalizer(method=method)
    plain = normalizer.fit_transform([cloud])[0, 0]
    scaled = normalizer.fit_transform([cloud * scale])[0, 0]
    # cloud * scale rounds each coordinate once (1.1e-16 relative); centering
    # and one division add a few roundings of values of order 1.
    np.testing.assert_allclose(scaled, plain, rtol=1e-12, atol=1e-14)


# --- LayerDistances cells: the normalized cloud's distances, without the cloud


def relu_like_cloud(rng, n_points=80, width=12):
    """Non-negative with a few exact zeros, as a ReLU layer."""
    latent = rng.normal(size=(n_points, 3))
    return np.maximum(latent @ rng.normal(size=(3, width)), 0) + 0.05 * rng.random(
        (n_points, width)
    )


@pytest.mark.parametrize(
    "method, center",
    [("global", "auto"), ("local", True), ("local", False), ("local", "auto")],
)
def test_distance_cells_normalize_to_the_normalized_clouds_cells(rng, method, center):
    clouds = [relu_like_cloud(rng), rng.normal(size=(81, 5)) * 4 + 2]
    normalizer = ActivationNormalizer(method=method, center=center)
    from_clouds = normalizer.fit_transform(clouds)
    from_distances = normalizer.fit_transform(
        [LayerDistances.from_points(cloud) for cloud in clouds]
    )
    for cloud, cell in zip(from_clouds[:, 0], from_distances[:, 0]):
        assert isinstance(cell, LayerDistances)
        # Same numbers through different roundings: pdist of the normalized
        # cloud against scaled pdist and the projection formula, each a few
        # ulps of values of order 1 (the clouds have median norm or diameter
        # 1); 1e-12 leaves room for ~20 roundings.
        np.testing.assert_allclose(cell.distances, squareform(pdist(cloud)), atol=1e-12)
        np.testing.assert_allclose(
            cell.norms, np.linalg.norm(cloud, axis=1), rtol=0, atol=1e-12
        )
        np.testing.assert_array_equal(cell.distances, cell.distances.T)
        assert (np.diag(cell.distances) == 0).all()
        if method == "local":
            # Exterior points sit on the unit sphere exactly.
            assert cell.norms.max() == 1.0
            assert cell.centered_norms is None
        else:
            np.testing.assert_array_equal(cell.norms, cell.centered_norms)
            assert cell.distances.max() == 1.0


def test_distance_cells_without_what_centering_needs_are_refused(rng):
    cell = LayerDistances.from_points(relu_like_cloud(rng))
    unknown_sign = LayerDistances(cell.distances, cell.norms, cell.centered_norms)
    with pytest.raises(
        ValueError, match="sample 0, layer 0: center='auto' needs to know"
    ):
        ActivationNormalizer(method="local").fit_transform([unknown_sign])
    # With the flag given, the sign is not needed.
    ActivationNormalizer(method="local", center=False).fit_transform([unknown_sign])
    no_mean = LayerDistances(cell.distances, cell.norms, None, True)
    for normalizer in (
        ActivationNormalizer(),
        ActivationNormalizer(method="local", center=True),
    ):
        with pytest.raises(ValueError, match="centered_norms=None"):
            normalizer.fit_transform([no_mean])
    # A locally normalized cell can be rescaled again, not recentered.
    once = ActivationNormalizer(method="local").fit_transform([cell])
    twice = ActivationNormalizer(method="local", center=False).fit_transform(once)
    np.testing.assert_allclose(twice[0, 0].distances, once[0, 0].distances, atol=1e-15)


def test_constant_distance_cells_are_refused(rng):
    constant = LayerDistances.from_points(np.ones((5, 3)))
    with pytest.raises(ValueError, match="sample 0, layer 0: constant cloud"):
        ActivationNormalizer().fit_transform([constant])
    with pytest.raises(ValueError, match="all its points are equal"):
        ActivationNormalizer(method="local").fit_transform([constant])


@pytest.mark.parametrize("exponent", [700, -1000])
def test_distance_cells_of_power_of_two_scales_normalize_alike(rng, exponent):
    cloud = rng.normal(size=(12, 3))
    normalizer = ActivationNormalizer(method="local")
    plain = normalizer.fit_transform([LayerDistances.from_points(cloud)])[0, 0]
    scaled = normalizer.fit_transform(
        [LayerDistances.from_points(np.ldexp(cloud, exponent))]
    )[0, 0]
    np.testing.assert_array_equal(scaled.distances, plain.distances)
    np.testing.assert_array_equal(scaled.norms, plain.norms)
