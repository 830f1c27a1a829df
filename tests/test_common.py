"""scikit-learn conformance of every estimator in the topological core.

The estimators that take a 2-D feature matrix (``LandscapeKernel``,
``PermutationTest``) run scikit-learn's full checks. The ragged-input steps
(``ActivationExtractor``, ``ActivationNormalizer``, ``RipsPersistence``,
``LandscapeVectorizer``) take clouds, diagrams or networks, which scikit-learn's
checks cannot generate: they run its data-free checks directly and our own
equivalents of the others on ragged data of their own. ``SKLEARN_CHECKS``
accounts for every check scikit-learn would run on a 2-D transformer, so a
check added by a new scikit-learn release fails
``test_every_sklearn_check_is_accounted_for`` until it is run or explained.
"""

import pickle
from functools import partial

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils._testing import create_memmap_backed_data
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimator_tags_renamed,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    check_transformer_n_iter,
    check_valid_tag_types,
    estimator_checks_generator,
    parametrize_with_checks,
)

from sklandscapes import (
    ActivationExtractor,
    ActivationNormalizer,
    LandscapeKernel,
    LandscapeVectorizer,
    PermutationTest,
    RipsPersistence,
)

# With kernel="precomputed", scikit-learn's checks pass the Gram matrix of
# their data and take y = X[:, 0].astype(int) of that Gram matrix: most
# groups then hold one sample, which a permutation test cannot compare. The
# linear variant runs the same checks on the same code after the Gram matrix,
# and test_stats.py checks that both kernels give the same results.
SINGLETON_GROUPS = (
    "y from the Gram matrix gives groups of one sample; a permutation test "
    "needs at least two samples per group (the linear variant runs this check)"
)
PRECOMPUTED_PERMUTATION_TEST_FAILURES = {
    name: SINGLETON_GROUPS
    for name in [
        "check_dict_unchanged",
        "check_dont_overwrite_parameters",
        "check_f_contiguous_array_estimator",
        "check_fit2d_1feature",
        "check_fit2d_predict1d",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
    ]
}


def expected_failed_checks(estimator):
    if isinstance(estimator, PermutationTest) and estimator.kernel == "precomputed":
        return PRECOMPUTED_PERMUTATION_TEST_FAILURES
    return {}


@parametrize_with_checks(
    [
        LandscapeKernel(),
        LandscapeKernel(kernel="rbf"),
        PermutationTest(n_permutations=19, random_state=0),
        PermutationTest(n_permutations=19, kernel="precomputed", random_state=0),
        # The per-layer path, on any number of features.
        PermutationTest(n_permutations=19, n_layers=1, random_state=0),
    ],
    expected_failed_checks=expected_failed_checks,
    # An expected failure that starts passing fails the test, so the list
    # above cannot go stale.
    xfail_strict=True,
)
def test_sklearn_checks_for_feature_matrix_estimators(estimator, check):
    check(estimator)


def test_precomputed_permutation_test_is_pairwise():
    assert PermutationTest(kernel="precomputed").__sklearn_tags__().input_tags.pairwise
    assert not PermutationTest().__sklearn_tags__().input_tags.pairwise


# --- The ragged-input steps -------------------------------------------------

RAGGED = [
    "ActivationExtractor",
    "ActivationNormalizer",
    "RipsPersistence",
    "LandscapeVectorizer",
]

DATA_FREE_CHECKS = [
    check_estimator_cloneable,
    check_no_attributes_set_in_init,
    check_get_params_invariance,
    check_set_params,
    check_estimator_repr,
    check_mixin_order,
    check_parameters_default_constructible,
    check_estimator_tags_renamed,
    check_valid_tag_types,
    check_do_not_raise_errors_in_init_or_set_params,
    check_transformer_n_iter,
]

NO_FEATURE_AXIS = (
    "needs a 2-D feature matrix; the cells of a ragged container have widths "
    "that vary by layer, and the layout is checked against fit instead "
    "(test_transform_checks_the_layout_seen_in_fit)"
)
NO_SPARSE = "cells are dense point sets or diagrams; sparse input is not taken"

# Every check scikit-learn runs on a 2-D transformer, and what stands for it on
# ragged data: "data-free" (run directly, above), the name of our equivalent
# test in this file, or "n/a: <reason>".
SKLEARN_CHECKS = {
    **{check.__name__: "data-free" for check in DATA_FREE_CHECKS},
    "check_estimators_fit_returns_self": "test_fit_returns_self_and_pickles",
    "check_estimators_pickle": "test_fit_returns_self_and_pickles",
    "check_estimators_overwrite_params": "test_fit_does_not_change_parameters",
    "check_dont_overwrite_parameters": "test_fit_sets_only_fitted_attributes",
    "check_dict_unchanged": "test_transform_does_not_change_the_estimator",
    "check_readonly_memmap_input": "test_readonly_memmap_input",
    "check_fit_idempotent": "test_fit_is_idempotent",
    "check_methods_subset_invariance": "test_subset_and_sample_order_invariance",
    "check_methods_sample_order_invariance": "test_subset_and_sample_order_invariance",
    "check_transformer_general": "test_fit_transform_equals_fit_then_transform",
    "check_fit_score_takes_y": "test_fit_transform_equals_fit_then_transform",
    "check_pipeline_consistency": "test_same_output_in_a_pipeline",
    "check_transformer_data_not_an_array": "test_nested_lists_give_the_same_output",
    "check_estimators_dtypes": "test_cell_dtype_and_memory_order",
    "check_f_contiguous_array_estimator": "test_cell_dtype_and_memory_order",
    "check_transformer_preserve_dtypes": "test_cell_dtype_and_memory_order",
    "check_fit2d_1sample": "test_one_sample",
    "check_estimators_empty_data_messages": "test_empty_and_non_finite_input",
    "check_estimators_nan_inf": "test_empty_and_non_finite_input",
    "check_complex_data": "test_complex_cells_are_rejected",
    "check_fit_check_is_fitted": "test_fitted_state",
    "check_transformers_unfitted": "test_fitted_state",
    "check_estimators_unfitted": "test_fitted_state",
    "check_transformers_unfitted_stateless": "test_fitted_state",
    "check_n_features_in": "n/a: " + NO_FEATURE_AXIS,
    "check_n_features_in_after_fitting": "n/a: " + NO_FEATURE_AXIS,
    "check_fit1d": "n/a: " + NO_FEATURE_AXIS,
    "check_fit2d_1feature": "n/a: " + NO_FEATURE_AXIS,
    "check_fit2d_predict1d": "n/a: " + NO_FEATURE_AXIS,
    "check_positive_only_tag_during_fit": "n/a: " + NO_FEATURE_AXIS,
    "check_dtype_object": (
        "n/a: an object array is the container itself; an object cell is "
        "rejected by the validators (test_validation.py)"
    ),
    "check_estimator_sparse_array": "n/a: " + NO_SPARSE,
    "check_estimator_sparse_matrix": "n/a: " + NO_SPARSE,
    "check_estimator_sparse_tag": "n/a: " + NO_SPARSE,
    "check_array_api_input": (
        "n/a: cells are NumPy arrays handed to gudhi and NumPy kernels; the "
        "array API is not supported"
    ),
}


def _check_name(check):
    return (check.func if isinstance(check, partial) else check).__name__


@pytest.mark.parametrize("name", RAGGED)
def test_every_sklearn_check_is_accounted_for(name):
    estimator = make_estimator(name)

    class AsMatrix(type(estimator)):
        """The same estimator, declared 2-D so that sklearn lists its checks."""

        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.input_tags.two_d_array = True
            return tags

    names = {
        _check_name(check)
        for _, check in estimator_checks_generator(AsMatrix(), legacy=True)
    }
    assert names - SKLEARN_CHECKS.keys() == set()
    for check_name, status in SKLEARN_CHECKS.items():
        if status == "data-free" or status.startswith("n/a: "):
            continue
        assert status in globals(), f"{check_name}: no test named {status!r}"


@pytest.mark.parametrize("name", RAGGED)
@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda c: c.__name__)
def test_data_free_checks_for_ragged_steps(name, check):
    if name == "ActivationExtractor":
        pytest.importorskip("torch")
    check(name, make_estimator(name))


def make_estimator(name):
    """The estimator with its default parameters."""
    return {
        "ActivationExtractor": ActivationExtractor,
        "ActivationNormalizer": ActivationNormalizer,
        "RipsPersistence": RipsPersistence,
        "LandscapeVectorizer": LandscapeVectorizer,
    }[name]()


def ragged_case(name, rng):
    """An estimator of that kind that can run, and 4 samples of its input."""
    if name == "ActivationExtractor":
        torch = pytest.importorskip("torch")
        generator = torch.Generator().manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)
        )
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        # One sample per input batch, of different sizes.
        batches = [rng.normal(size=(8 + i, 3)) for i in range(4)]
        return ActivationExtractor(model=net, device="cpu"), batches
    clouds = [[rng.normal(size=(12, 3)), rng.normal(size=(10, 2))] for _ in range(4)]
    if name == "ActivationNormalizer":
        return ActivationNormalizer(), clouds
    normalized = ActivationNormalizer().fit_transform(clouds)
    rips = RipsPersistence(homology_dimensions=(0, 1))
    if name == "RipsPersistence":
        return rips, normalized
    # A coarse grid with an essential H0 class per diagram (death inf).
    return LandscapeVectorizer(n_landscapes=2, resolution=11), rips.transform(
        normalized
    )


def assert_same_output(a, b):
    """Equal containers: same shape and type, and equal cells."""
    assert type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype
    if a.dtype == object:
        for cell_a, cell_b in zip(a.ravel(), b.ravel()):
            np.testing.assert_array_equal(cell_a, cell_b)
    else:
        np.testing.assert_array_equal(a, b)


def take(X, rows):
    """Samples ``rows`` of X, in its own container type."""
    return X[rows] if isinstance(X, np.ndarray) else [X[i] for i in rows]


def map_cells(X, function):
    """X with ``function`` applied to every float cell, same container."""
    if isinstance(X, np.ndarray):
        out = np.empty(X.shape, dtype=object)
        for index in np.ndindex(*X.shape):
            out[index] = function(X[index])
        return out
    return [
        function(sample)
        if isinstance(sample, np.ndarray)
        else map_cells(sample, function)
        for sample in X
    ]


@pytest.fixture(params=RAGGED)
def case(request, rng):
    return ragged_case(request.param, rng)


def test_fit_returns_self_and_pickles(case):
    estimator, X = case
    fitted = clone(estimator)
    assert fitted.fit(X) is fitted
    out = fitted.transform(X)
    restored = pickle.loads(pickle.dumps(fitted))
    assert_same_output(restored.transform(X), out)
    # Output shape never depends on the data: one row per sample.
    assert len(out) == len(X)


def test_fit_does_not_change_parameters(case):
    estimator, X = case
    # joblib.hash looks into sub-objects (arrays, networks), as sklearn's
    # check_estimators_overwrite_params does. Hashed before fit rather than
    # deep-copied: a deep copy of a torch module pickles differently.
    original = {name: joblib.hash(v) for name, v in estimator.get_params().items()}
    estimator.fit(X)
    now = {name: joblib.hash(v) for name, v in estimator.get_params().items()}
    assert now == original


def test_fit_sets_only_fitted_attributes(case):
    estimator, X = case
    before = {key: joblib.hash(value) for key, value in vars(estimator).items()}
    estimator.fit(X)
    after = vars(estimator)
    added = [key for key in after.keys() - before.keys() if not key.startswith("_")]
    assert all(key.endswith("_") for key in added), added
    assert {key: joblib.hash(after[key]) for key in before} == before


def test_transform_does_not_change_the_estimator(case):
    estimator, X = case
    estimator.fit(X)
    before = joblib.hash(vars(estimator))
    estimator.transform(X)
    assert joblib.hash(vars(estimator)) == before


def test_readonly_memmap_input(case):
    estimator, X = case
    expected = clone(estimator).fit(X).transform(X)
    # joblib memory-maps the arrays of a nested list (not the cells of an
    # object array), so the cells arrive read-only.
    nested = X.tolist() if isinstance(X, np.ndarray) else X
    memmapped = create_memmap_backed_data(nested)
    first = memmapped[0] if isinstance(memmapped[0], np.ndarray) else memmapped[0][0]
    first = first if isinstance(first, np.ndarray) else first[0]
    assert isinstance(first, np.memmap) and not first.flags.writeable
    out = clone(estimator).fit(memmapped).transform(memmapped)
    assert_same_output(out, expected)


def test_fit_is_idempotent(case):
    estimator, X = case
    estimator.fit(take(X, [0, 1, 2]))
    first = estimator.transform(X)
    estimator.fit(take(X, [0, 1, 2]))
    assert_same_output(estimator.transform(X), first)


def test_subset_and_sample_order_invariance(case):
    estimator, X = case
    full = estimator.fit(X).transform(X)
    for i in range(len(X)):
        assert_same_output(estimator.transform(take(X, [i])), full[i : i + 1])
    order = [2, 0, 3, 1]
    assert_same_output(estimator.transform(take(X, order)), full[order])


def test_fit_transform_equals_fit_then_transform(case):
    estimator, X = case
    y = np.array([0, 1, 0, 1])
    # fit takes y and ignores it.
    assert_same_output(
        clone(estimator).fit_transform(X, y), clone(estimator).fit(X).transform(X)
    )


def test_same_output_in_a_pipeline(case):
    estimator, X = case
    pipeline = Pipeline([("step", clone(estimator))])
    assert_same_output(
        pipeline.fit(X).transform(X), clone(estimator).fit(X).transform(X)
    )


def test_nested_lists_give_the_same_output(case):
    estimator, X = case
    if isinstance(X, np.ndarray):
        other = X.tolist()
    else:
        # The canonical object array, built cell by cell.
        width = () if isinstance(X[0], np.ndarray) else (len(X[0]),)
        other = np.empty((len(X),) + width, dtype=object)
        for index in np.ndindex(*other.shape):
            other[index] = X[index[0]] if not width else X[index[0]][index[1]]
    assert_same_output(
        clone(estimator).fit(other).transform(other),
        clone(estimator).fit(X).transform(X),
    )


def test_cell_dtype_and_memory_order(case):
    estimator, X = case
    expected = clone(estimator).fit(X).transform(X)
    fortran = map_cells(X, np.asfortranarray)
    assert_same_output(clone(estimator).fit(fortran).transform(fortran), expected)
    single = map_cells(X, lambda cell: cell.astype(np.float32))
    out = clone(estimator).fit(single).transform(single)
    assert out.shape == expected.shape
    cells = out.ravel() if out.dtype == object else [out]
    expected_cells = expected.ravel() if expected.dtype == object else [expected]
    for cell, expected_cell in zip(cells, expected_cells):
        # Output is float64 whatever the input. The values differ from the
        # float64 ones by the float32 rounding of the inputs (relative 6e-8),
        # amplified at most a few times by normalization and distances.
        assert cell.dtype == np.float64
        np.testing.assert_allclose(cell, expected_cell, rtol=1e-5, atol=1e-6)


def test_one_sample(case):
    estimator, X = case
    full = clone(estimator).fit(X).transform(X)
    assert_same_output(
        clone(estimator).fit(take(X, [0])).transform(take(X, [0])), full[:1]
    )


def test_empty_and_non_finite_input(case):
    estimator, X = case
    with pytest.raises(ValueError, match="no cells|empty"):
        clone(estimator).fit(take(X, []))
    if isinstance(estimator, ActivationExtractor):
        # Non-finite activations of a network: test_activations.py.
        return
    bad = map_cells(X, lambda cell: cell.copy())
    first = bad[0, 0] if isinstance(bad, np.ndarray) else bad[0][0]
    first = (
        first[0] if isinstance(first, np.ndarray) and first.dtype == object else first
    )
    first[0, 0] = np.nan
    with pytest.raises(ValueError, match="sample 0, layer 0"):
        clone(estimator).fit(bad)


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
def test_complex_cells_are_rejected(case):
    estimator, X = case
    complex_cells = map_cells(X, lambda cell: cell + 1j)
    with pytest.raises(ValueError, match="complex"):
        clone(estimator).fit(complex_cells)


def test_fitted_state(case):
    estimator, X = case
    if isinstance(estimator, LandscapeVectorizer):
        with pytest.raises(NotFittedError, match="LandscapeVectorizer"):
            clone(estimator).transform(X)
    else:
        # Stateless: transform needs no fit.
        assert_same_output(
            clone(estimator).transform(X), clone(estimator).fit(X).transform(X)
        )
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(clone(estimator).fit(X))


def test_transform_checks_the_layout_seen_in_fit(rng):
    _, diagrams = ragged_case("LandscapeVectorizer", rng)
    vectorizer = LandscapeVectorizer().fit(diagrams)
    with pytest.raises(ValueError, match="fitted on \\(2, 2\\)"):
        vectorizer.transform(diagrams[:, :1])


def test_train_and_test_widths_are_equal(rng):
    _, diagrams = ragged_case("LandscapeVectorizer", rng)
    vectorizer = LandscapeVectorizer(sample_range="auto").fit(diagrams[:2])
    assert (
        vectorizer.transform(diagrams[2:]).shape[1]
        == vectorizer.transform(diagrams[:2]).shape[1]
    )


def test_parameters_are_validated_in_fit_not_init(rng):
    # Construction never fails, so clone and set_params can pass anything.
    bad = RipsPersistence(homology_dimensions="one")
    with pytest.raises(ValueError, match="homology_dimensions"):
        bad.fit(ragged_case("RipsPersistence", rng)[1])
