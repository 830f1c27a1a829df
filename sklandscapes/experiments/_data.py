"""The data of an experiment: training inputs and the persistence batches."""

import dataclasses

import numpy as np

from sklandscapes.experiments._config import ExperimentError


@dataclasses.dataclass
class Data:
    X: np.ndarray  # training inputs
    y: np.ndarray
    batches: list  # persistence batches, one per input subsample
    batch_labels: list


def load_data(config):
    """The training data and the persistence batches of ``config``."""
    if config.experiment == "synthetic":
        return _synthetic(config)
    return _digits(config)


def _synthetic(config):
    """The nine-disks lattice; the batch is a sublattice (of one class)."""
    from sklandscapes import datasets

    X, y = datasets.make_nine_disks(config.spacing, random_state=config.seed)
    mask = datasets.sublattice_mask(X, config.sublattice_step, spacing=config.spacing)
    if config.batch_class is not None:
        mask &= y == config.batch_class
    return Data(X.astype(np.float32), y, [X[mask].astype(np.float32)], [y[mask]])


def _digits(config):
    """Digits or MNIST; the batches are random subsamples of all images."""
    rng = np.random.default_rng(config.seed)
    X, y, pool_X, pool_y = _digit_images(config)
    if X.shape[1] != config.widths[0]:
        raise ExperimentError(
            f"the data have {X.shape[1]} features but widths starts with "
            f"{config.widths[0]}; set the first width to {X.shape[1]}"
        )
    if config.n_inputs > len(pool_X):
        raise ExperimentError(
            f"n_inputs={config.n_inputs} exceeds the {len(pool_X)} available inputs"
        )
    # Subsamples mix training and test images, as in the paper.
    subsets = [
        rng.choice(len(pool_X), config.n_inputs, replace=False)
        for _ in range(config.n_subsamples)
    ]
    batches = [pool_X[s].astype(np.float32) for s in subsets]
    return Data(X.astype(np.float32), y, batches, [pool_y[s] for s in subsets])


def _digit_images(config):
    """Training images and labels, and the pool that subsamples come from."""
    from sklandscapes import datasets

    if config.mnist_path is None:
        X, y = datasets.load_digits()
        return X, y, X, y
    try:
        X_train, y_train, X_test, y_test = datasets.load_mnist(
            config.mnist_path, download_if_missing=False
        )
    except (OSError, ValueError) as exc:
        raise ExperimentError(str(exc).splitlines()[0]) from exc
    X_train, y_train = np.asarray(X_train), np.asarray(y_train)
    pool_X = np.concatenate([X_train, np.asarray(X_test)])
    pool_y = np.concatenate([y_train, np.asarray(y_test)])
    return X_train, y_train, pool_X, pool_y
