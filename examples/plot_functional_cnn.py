"""
A CNN written with functions: F.relu and F.max_pool2d are layers too
====================================================================

Much PyTorch code applies its nonlinearities and its pooling as functions in
``forward`` (``F.relu(self.conv1(x))``, ``F.max_pool2d(x, 2)``) rather than as
modules. :class:`~sklandscapes.ActivationExtractor` takes their outputs as
layers all the same: with ``layers="auto"``, each ``Conv2d -> F.relu ->
F.max_pool2d`` block gives its ReLU feature maps and its pooled maps, then the
logits come last. A layer computed by a function is named by the module whose
``forward`` calls it and the function; in the network's own ``forward`` by
the function alone, numbered by call when it runs several times (``relu:0``,
``relu:1``). :func:`~sklandscapes.activation_layers` lists them and
:func:`~sklandscapes.relu_layers` recognises the ReLU layers (and the pooled
ReLU maps), which the paper's local homology leaves uncentered.

The network learns scikit-learn's 8 x 8 digits as an ordinary skorch
classifier. Its activations on a few batches of digits (the network is fixed
and the batches are the samples: ``ActivationExtractor(model=...)``) give the
topological complexity of each layer before and after training, with a 95%
band over the batches, and the average landscapes of each layer.

In this run (the printed table has the numbers) the input's complexity is
the same for both networks, as it must be (the same batches). After training
(0.96 training accuracy) the complexity of the feature maps and of the logits
is a little lower (the logits' from 0.074 to 0.063), but the bands over the
batches overlap in every layer: four batches of 150 digits tell the two
networks apart only weakly at this size.
"""

import argparse
import copy
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless-safe: the figures go to files
import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNetClassifier
from torch import nn

from sklandscapes import (
    ActivationExtractor,
    ActivationNormalizer,
    LandscapeVectorizer,
    RipsPersistence,
    activation_layers,
    paper_centering,
    relu_layers,
)
from sklandscapes.datasets import load_digits
from sklandscapes.nets import torch_threads
from sklandscapes.plotting import plot_complexity, plot_landscapes
from sklandscapes.stats import topological_complexity


class FunctionalCNN(nn.Module):
    """Two convolutional blocks, their ReLU and pooling applied as functions."""

    def __init__(self, channels=(8, 16)):
        super().__init__()
        first, second = channels
        self.conv1 = nn.Conv2d(1, first, 3, padding=1)
        self.conv2 = nn.Conv2d(first, second, 3, padding=1)
        self.fc = nn.Linear(second * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def main(argv=None):
    # sphinx-gallery, which runs the examples for the docs, empties __doc__.
    description = __doc__.split("\n\n")[1] if __doc__ else None
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument(
        "--n-batches", type=int, default=4, help="batches of digits (the samples)"
    )
    parser.add_argument("--n-points", type=int, default=150, help="digits per batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("sklandscapes-out"))
    args = parser.parse_args(argv)
    return run(args)


def run(args):
    # A small network: one torch thread is fastest, and the figures then do
    # not depend on how many cores are free; torch_threads() gives back the
    # count from before when the block ends.
    with torch_threads():
        return _run(args)


def _run(args):
    torch.manual_seed(args.seed)
    X, y = load_digits()
    images = X.reshape(-1, 1, 8, 8)
    rng = np.random.default_rng(args.seed)
    batches = [
        images[rng.choice(len(images), args.n_points, replace=False)]
        for _ in range(args.n_batches)
    ]

    module = FunctionalCNN()
    untrained = copy.deepcopy(module)
    net = NeuralNetClassifier(
        module,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=3e-3,
        batch_size=64,
        max_epochs=args.max_epochs,
        train_split=None,
        iterator_train__shuffle=True,
        iterator_train__generator=torch.Generator().manual_seed(args.seed),
        device="cpu",
        verbose=0,
    )
    net.fit(images, y)
    accuracy = float((net.predict(images) == y).mean())
    print(f"Training accuracy after {args.max_epochs} epochs: {accuracy:.3f}")

    names = ["input", *activation_layers(net.module_, batches[0][:2])]
    print("Layers taken by layers='auto':", names)
    print("ReLU layers (left uncentered):", relu_layers(net.module_, batches[0][:2]))

    # Local homology as in the paper's digits experiment: each point's
    # neighbourhood normalized to median norm 1, landscapes on [0, 2], the
    # layers that are not ReLU outputs centered.
    center = paper_centering(net.module_, batches[0][:2], method="local")
    steps = [
        ActivationNormalizer(method="local", center=center),
        RipsPersistence(local=True),
    ]
    diagrams = []
    for network in (untrained, net.module_):
        clouds = ActivationExtractor(model=network).fit_transform(batches)
        for step in steps:
            clouds = step.fit_transform(clouds)
        diagrams.append(clouds)
    diagrams = np.concatenate(diagrams)
    complexity = topological_complexity(diagrams, (0.0, 2.0))
    stage = np.repeat(["untrained", f"trained ({accuracy:.2f})"], args.n_batches)
    print("layer".ljust(14), "untrained  trained")
    for name, before, after in zip(
        names,
        complexity[: args.n_batches].mean(axis=0),
        complexity[args.n_batches :].mean(axis=0),
    ):
        print(f"{name:14s} {before:9.4f} {after:8.4f}")

    args.out.mkdir(parents=True, exist_ok=True)
    fig = plot_complexity(
        complexity,
        stage,
        band="confidence",
        y_name="network",
        layer_names=names,
        random_state=args.seed,
    )
    fig.savefig(args.out / "functional_cnn_complexity.png", dpi=110)
    vectorizer = LandscapeVectorizer(n_landscapes=3, sample_range=(0.0, 2.0))
    landscapes = vectorizer.fit_transform(diagrams)
    fig = plot_landscapes(
        landscapes,
        stage,
        vectorizer.shape_,
        grid=vectorizer.grid_,
        y_name="network",
        layer_names=names,
        weighting=vectorizer.weighting,
        scale=vectorizer.scale_,
        title="Average landscapes (H1, local) of the functional CNN's layers",
    )
    fig.savefig(args.out / "functional_cnn_landscapes.png", dpi=110)
    print(f"Figures written to {args.out}")
    return names, complexity


if __name__ == "__main__":
    main()
