"""Diagrams of the README's training-stage example, stored for a fast test.

``python tests/training_stage_diagrams.py --write`` trains 40 MLPs as the
README does (nine disks at spacing 0.05, widths (2, 15, 15, 2), snapshots at
training accuracies 0.7 and 0.75), runs every snapshot on the README's batch,
normalizes globally and stores the H1 diagrams of every layer in
``tests/data/training_stage_diagrams.npz`` (about 10 s). Training rounds
differently on another processor or library version, so the file is recorded
once and read by ``tests/test_landscapes.py``, which then needs no torch.
"""

import argparse
from pathlib import Path

import numpy as np

DIAGRAMS = Path(__file__).resolve().parent / "data" / "training_stage_diagrams.npz"
N_NETWORKS = 40


def compute():
    from sklandscapes import (
        ActivationExtractor,
        ActivationNormalizer,
        RipsPersistence,
    )
    from sklandscapes.datasets import make_nine_disks, sublattice_mask
    from sklandscapes.nets import train_networks

    X, y = make_nine_disks(spacing=0.05, random_state=0)
    result = train_networks(
        X,
        y,
        n_networks=N_NETWORKS,
        widths=(2, 15, 15, 2),
        thresholds=(0.7, 0.75),
        lr=1e-2,
        batch_size=32,
        random_state=0,
        device="cpu",
    )
    networks, thresholds, network_ids = result.samples()
    batch = X[sublattice_mask(X, 2, spacing=0.05) & (y == 1)]
    clouds = ActivationExtractor(inputs=batch).fit_transform(networks)
    clouds = ActivationNormalizer(method="global").fit_transform(clouds)
    diagrams = RipsPersistence(homology_dimensions=(1,)).fit_transform(clouds)
    return diagrams, thresholds, network_ids


def save(diagrams, thresholds, network_ids, path=DIAGRAMS):
    cells = list(diagrams.ravel())
    np.savez_compressed(
        path,
        pairs=np.concatenate(cells),
        counts=np.array([len(c) for c in cells]),
        shape=np.array(diagrams.shape),
        thresholds=thresholds,
        network_ids=network_ids,
    )


def load(path=DIAGRAMS):
    """``(diagrams, thresholds, network_ids)`` as ``compute`` returned them."""
    with np.load(path) as stored:
        pieces = np.split(stored["pairs"], np.cumsum(stored["counts"])[:-1])
        diagrams = np.empty(len(pieces), dtype=object)
        for index, piece in enumerate(pieces):
            diagrams[index] = piece
        diagrams = diagrams.reshape(tuple(stored["shape"]))
        return diagrams, stored["thresholds"], stored["network_ids"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="record the diagrams")
    args = parser.parse_args(argv)
    diagrams, thresholds, network_ids = compute()
    if args.write:
        save(diagrams, thresholds, network_ids)
    print(f"{diagrams.shape} diagrams, {sum(map(len, diagrams.ravel()))} pairs")


if __name__ == "__main__":
    main()
