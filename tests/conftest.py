import numpy as np
import pytest


@pytest.fixture
def rng():
    """One seeded generator per test, so every test is reproducible alone."""
    return np.random.default_rng(20211215)


def noisy_circle(rng, n_points=60, noise=0.05, radius=1.0):
    angles = rng.uniform(0, 2 * np.pi, n_points)
    points = radius * np.c_[np.cos(angles), np.sin(angles)]
    return points + rng.normal(scale=noise, size=points.shape)


def noisy_figure_eight(rng, n_points=60, noise=0.05):
    angles = rng.uniform(0, 2 * np.pi, n_points)
    # Two circles of radius 0.5 touching at the origin.
    side = np.where(rng.random(n_points) < 0.5, -1.0, 1.0)
    points = np.c_[side * 0.5 + 0.5 * np.cos(angles), 0.5 * np.sin(angles)]
    return points + rng.normal(scale=noise, size=points.shape)


def assert_same_training(first, second):
    """Two TrainingResults with equal arrays and bit-identical snapshots."""
    import torch

    for name in (
        "train_accuracy",
        "snapshot_epoch",
        "snapshot_train_accuracy",
        "snapshot_test_accuracy",
        "n_epochs_trained",
        "train_indices",
        "seeds",
    ):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    for row_first, row_second in zip(first.snapshots, second.snapshots):
        for net_first, net_second in zip(row_first, row_second):
            assert (net_first is None) == (net_second is None)
            if net_first is not None:
                for key, value in net_first.state_dict().items():
                    assert torch.equal(value, net_second.state_dict()[key]), key
