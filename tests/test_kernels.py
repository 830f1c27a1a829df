import numpy as np
import pytest
from sklearn.svm import SVC

from sklandscapes import LandscapeKernel, LandscapeVectorizer
from sklandscapes.kernels import feature_weights, landscape_inner_products


def landscape_rows(rng, n_samples, n_layers=3):
    diagrams = np.empty((n_samples, n_layers, 1), dtype=object)
    for index in np.ndindex(*diagrams.shape):
        births = rng.uniform(0, 0.6, 8)
        diagrams[index] = np.c_[births, births + rng.uniform(0, 0.4, 8)]
    vectorizer = LandscapeVectorizer(n_landscapes=3, resolution=51).fit(diagrams)
    return vectorizer.transform(diagrams), vectorizer.grid_


def test_linear_kernel_is_the_product_space_integral(rng):
    X, grid = landscape_rows(rng, 6)
    weights = [1.0, 0.5, 2.0]
    K = LandscapeKernel(layer_weights=weights, grid=grid).fit(X).transform(X)
    # Independent computation: trapezoid integral per layer and k, with numpy.
    cube = X.reshape(6, 3, 3, 51)
    expected = np.zeros((6, 6))
    for i in range(6):
        for j in range(6):
            for layer in range(3):
                for k in range(3):
                    expected[i, j] += weights[layer] * np.trapezoid(
                        cube[i, layer, k] * cube[j, layer, k], grid
                    )
    np.testing.assert_allclose(K, expected, rtol=1e-12)


def test_linear_gram_is_symmetric_positive_semidefinite(rng):
    X, grid = landscape_rows(rng, 15)
    K = landscape_inner_products(X, grid=grid)
    np.testing.assert_allclose(K, K.T, rtol=1e-12)
    # Eigenvalues of a PSD matrix computed in floating point: >= -eps * scale.
    assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()


def test_default_weights_are_the_integral_in_grid_steps(rng):
    X, grid = landscape_rows(rng, 6)
    # Landscapes of these diagrams vanish at 0 and 1, where the trapezoid rule
    # halves its weights; elsewhere its weight is the step.
    step = grid[1] - grid[0]
    np.testing.assert_allclose(
        LandscapeKernel().fit(X).transform(X) * step,
        landscape_inner_products(X, grid=grid),
        rtol=1e-12,
    )
    np.testing.assert_allclose(landscape_inner_products(X), X @ X.T)


def test_rbf_uses_the_same_norm(rng):
    X, grid = landscape_rows(rng, 5)
    Y, _ = landscape_rows(rng, 3)
    kernel = LandscapeKernel(kernel="rbf", gamma=2.0, grid=grid).fit(X)
    w = feature_weights(X.shape[1], grid)
    expected = np.exp(-2.0 * (((Y[:, None] - X[None]) ** 2) * w).sum(-1))
    np.testing.assert_allclose(kernel.transform(Y), expected, rtol=1e-10)
    default = LandscapeKernel(kernel="rbf", grid=grid).fit(X)
    sq = (((X[:, None] - X[None]) ** 2) * w).sum(-1)
    assert default.gamma_ == pytest.approx(1 / sq.mean())
    np.testing.assert_allclose(np.diag(default.transform(X)), 1.0)


def test_transform_is_against_the_training_rows(rng):
    X, grid = landscape_rows(rng, 8)
    kernel = LandscapeKernel(grid=grid).fit(X[:5])
    assert kernel.transform(X[5:]).shape == (3, 5)
    np.testing.assert_allclose(
        kernel.transform(X[5:]), landscape_inner_products(X[5:], X[:5], grid=grid)
    )


def test_precomputed_svc_matches_explicit_feature_map(rng):
    # SVC on the kernel equals a linear SVC on features scaled by sqrt(weights).
    X, grid = landscape_rows(rng, 30)
    y = X[:, : X.shape[1] // 3].sum(1) > np.median(X[:, : X.shape[1] // 3].sum(1))
    K = LandscapeKernel(grid=grid).fit(X).transform(X)
    explicit = X * np.sqrt(feature_weights(X.shape[1], grid))
    a = SVC(kernel="precomputed").fit(K, y).decision_function(K)
    b = SVC(kernel="linear").fit(explicit, y).decision_function(explicit)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_bad_input(rng):
    X, grid = landscape_rows(rng, 4)
    with pytest.raises(ValueError, match="not a multiple of the 50 grid points"):
        LandscapeKernel(grid=grid[:-1]).fit(X)
    with pytest.raises(ValueError, match="one weight per layer"):
        LandscapeKernel(grid=grid, layer_weights=[1.0, 1.0]).fit(X)
    with pytest.raises(ValueError, match="finite and non-negative"):
        LandscapeKernel(grid=grid, layer_weights=[1.0, -1.0, 1.0]).fit(X)
    with pytest.raises(ValueError, match="'kernel' parameter"):
        LandscapeKernel(kernel="poly", grid=grid).fit(X)
    fitted = LandscapeKernel(grid=grid).fit(X)
    with pytest.raises(ValueError, match="features"):
        fitted.transform(X[:, :-51])


def test_rbf_on_identical_rows_falls_back_to_gamma_one(rng):
    # The expansion |x|^2 + |y|^2 - 2 x.y summed in different orders (einsum
    # and the BLAS product) left noise of 1e-14 for some numbers of rows, and
    # gamma_ = 1 / noise: 5, 7, 9 and 11 rows did with this seed.
    row = rng.random(201)
    for n_rows in range(2, 12):
        X = np.tile(row, (n_rows, 1))
        kernel = LandscapeKernel(kernel="rbf").fit(X)
        assert kernel.gamma_ == 1.0
        # exp(-gamma * rounding noise) is 1 to within that noise.
        np.testing.assert_allclose(kernel.transform(X), 1.0, rtol=0, atol=1e-12)


# 1022: the values' sum overflows, which scikit-learn's finiteness check
# computes first; no warning may reach the user for finite input.
@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("exponent", [400, 1000, 1022])
def test_huge_vectors_give_finite_kernels_or_a_clear_error(rng, exponent):
    X = rng.random((6, 20))
    big = np.ldexp(X, exponent)
    # rbf with the default gamma does not depend on the scale at all, and the
    # rescaling by powers of two is exact.
    np.testing.assert_array_equal(
        LandscapeKernel(kernel="rbf").fit_transform(big),
        LandscapeKernel(kernel="rbf").fit_transform(X),
    )
    if exponent == 400:
        np.testing.assert_array_equal(
            LandscapeKernel().fit_transform(big), np.ldexp(X @ X.T, 2 * exponent)
        )
    else:
        with pytest.raises(ValueError, match="exceeds the float range"):
            LandscapeKernel().fit_transform(big)


def test_layer_weights_and_unreadable_x_are_named(rng):
    X = rng.random((4, 6))
    with pytest.raises(ValueError, match=r"layer_weights must be .*\['a', 'b'\]"):
        LandscapeKernel(layer_weights=["a", "b"]).fit(X)
    with pytest.raises(ValueError, match=r"X is ragged: row 0 has shape \(3,\)"):
        LandscapeKernel().fit([[0.0, 1.0, 2.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match=r"X\[1\] cannot be read as numbers"):
        LandscapeKernel().fit([[0.0, 1.0], ["a", "b"]])
    with pytest.raises(ValueError, match="X is a string"):
        LandscapeKernel().fit("landscapes")
    fitted = LandscapeKernel().fit(X)
    with pytest.raises(ValueError, match=r"X\[0\] cannot be read as numbers"):
        fitted.transform(np.array([["a"] * 6]))


def test_layer_weights_given_as_numeric_strings_are_refused(rng):
    # np.asarray(["0", "2"], dtype=float) converts them silently.
    with pytest.raises(ValueError, match=r"layer_weights must be .*\['0', '2'\]"):
        LandscapeKernel(layer_weights=["0", "2"]).fit(rng.random((3, 4)))


def test_feature_names_are_one_per_training_sample(rng):
    X, grid = landscape_rows(rng, 4)
    kernel = LandscapeKernel(grid=grid).fit(X)
    expected = [f"landscapekernel{i}" for i in range(4)]
    assert list(kernel.get_feature_names_out()) == expected
    names = [f"f{i}" for i in range(X.shape[1])]
    assert list(kernel.get_feature_names_out(names)) == expected
    with pytest.raises(ValueError, match="input_features has 2 names, expected 459"):
        kernel.get_feature_names_out(names[:2])


def test_a_grid_that_does_not_fit_suggests_the_l2_weighting(rng):
    X, _ = landscape_rows(rng, 4)
    # A grid search changed the vectorizer's resolution after the grid was
    # passed by hand: 3 layers x 3 landscapes x 51 points against 201 points.
    with pytest.raises(ValueError, match="LandscapeVectorizer\\(weighting='l2'\\)"):
        LandscapeKernel(grid=np.linspace(0, 1, 201)).fit(X)


def test_l2_weighted_vectors_need_no_grid(rng):
    diagrams = np.empty((5, 3, 1), dtype=object)
    for index in np.ndindex(*diagrams.shape):
        births = rng.uniform(0, 0.6, 8)
        diagrams[index] = np.c_[births, births + rng.uniform(0, 0.4, 8)]
    plain = LandscapeVectorizer(n_landscapes=3, resolution=51).fit(diagrams)
    weighted = LandscapeVectorizer(
        n_landscapes=3, resolution=51, weighting="l2", scale=None
    )
    W = weighted.fit_transform(diagrams)
    # Both are the trapezoid integral, summed in another order.
    np.testing.assert_allclose(
        LandscapeKernel().fit(W).transform(W),
        LandscapeKernel(grid=plain.grid_)
        .fit(plain.transform(diagrams))
        .transform(plain.transform(diagrams)),
        rtol=1e-12,
    )


def test_a_number_written_as_text_is_refused_with_its_row():
    # numpy would read "0" as 0.0 (found by tests/test_fuzz.py).
    with pytest.raises(ValueError, match=r"X\[1\] holds a string \('0'\)"):
        LandscapeKernel().fit([[0.0], ["0"]])
