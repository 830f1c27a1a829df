"""scikit-learn conformance of every estimator in the topological core."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_estimator_cloneable,
    check_estimator_repr,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    parametrize_with_checks,
)

from sklandscapes import (
    ActivationNormalizer,
    LandscapeKernel,
    LandscapeVectorizer,
    RipsPersistence,
)


@parametrize_with_checks([LandscapeKernel(), LandscapeKernel(kernel="rbf")])
def test_sklearn_checks_for_feature_matrix_steps(estimator, check):
    check(estimator)


RAGGED = [ActivationNormalizer(), RipsPersistence(), LandscapeVectorizer()]
DATA_FREE_CHECKS = [
    check_estimator_cloneable,
    check_no_attributes_set_in_init,
    check_get_params_invariance,
    check_set_params,
    check_estimator_repr,
    check_mixin_order,
    check_parameters_default_constructible,
]


@pytest.mark.parametrize("estimator", RAGGED, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda c: c.__name__)
def test_data_free_checks_for_ragged_steps(estimator, check):
    check(type(estimator).__name__, estimator)


def clouds(rng):
    return [[rng.normal(size=(12, 3)), rng.normal(size=(12, 2))] for _ in range(4)]


def chain(rng):
    """Inputs of each ragged step, produced by the steps before it."""
    X = clouds(rng)
    normalized = ActivationNormalizer().fit_transform(X)
    diagrams = RipsPersistence().fit_transform(normalized)
    return {
        "ActivationNormalizer": X,
        "RipsPersistence": normalized,
        "LandscapeVectorizer": diagrams,
    }


@pytest.mark.parametrize("estimator", RAGGED, ids=lambda e: type(e).__name__)
def test_contract_fit_returns_self_and_pickles(rng, estimator):
    X = chain(rng)[type(estimator).__name__]
    fitted = clone(estimator)
    assert fitted.fit(X) is fitted
    out = fitted.transform(X)
    restored = pickle.loads(pickle.dumps(fitted))
    for a, b in zip(np.ravel(out), np.ravel(restored.transform(X))):
        np.testing.assert_array_equal(a, b)
    # Output shape never depends on the data: one row per sample.
    assert len(out) == len(X)


def test_stateless_steps_transform_without_fit(rng):
    X = chain(rng)
    assert ActivationNormalizer().transform(X["ActivationNormalizer"]).shape == (4, 2)
    assert RipsPersistence().transform(X["RipsPersistence"]).shape == (4, 2, 1)


def test_vectorizer_needs_fit(rng):
    X = chain(rng)["LandscapeVectorizer"]
    with pytest.raises(NotFittedError, match="LandscapeVectorizer"):
        LandscapeVectorizer().transform(X)


def test_train_and_test_widths_are_equal(rng):
    X = chain(rng)["LandscapeVectorizer"]
    vectorizer = LandscapeVectorizer(sample_range="auto").fit(X[:2])
    assert vectorizer.transform(X[2:]).shape[1] == vectorizer.transform(X[:2]).shape[1]


def test_parameters_are_validated_in_fit_not_init(rng):
    # Construction never fails, so clone and set_params can pass anything.
    bad = RipsPersistence(homology_dimensions="one")
    with pytest.raises(ValueError, match="homology_dimensions"):
        bad.fit(chain(rng)["RipsPersistence"])
