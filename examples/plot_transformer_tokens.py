"""
A transformer encoder: one point per sequence, or one per token
================================================================

A small ``nn.TransformerEncoder`` reads each 8 x 8 digit as a sequence of 8
tokens, its rows of pixels, and learns to classify it (a linear read-out of
the mean token). Its blocks apply their activation as a function, and in eval
mode PyTorch runs each block as one fused operation, inside which nothing
can be seen. :class:`~sklandscapes.ActivationExtractor` switches that fast
path off while it extracts (and back on afterwards), so with
``layers="auto"`` it takes the ReLU of each block's feed-forward network
(``encoder.layers.0.relu``, ...), then the logits.

What a point of a cloud is has to be chosen when a layer has a token axis:

- ``token_axis=None`` (the default): one point per sequence, its tokens'
  activations side by side, a point of R^(8 x 32) for a feed-forward layer
  of width 32;
- ``token_axis=1``: one point per token, a point of R^32, so a batch of
  ``n`` sequences gives ``8 n`` points. The logits, which have no token
  axis, keep one point per sequence.

The topological complexity (H1, global normalization) of each layer before
and after training is drawn for both choices, with a 95% band over a few
batches of digits (the network is fixed and the batches are the samples).

In this run (the printed tables have the numbers) training (0.97 training
accuracy) raises the complexity of every layer after the input in both
views, and the logits' (one point per sequence in both) from 0.008 to
0.021. The two views of the feed-forward layers differ: one point per
sequence, their complexity grows a little (0.008 to 0.012 and 0.009 to
0.016) and the bands of the two networks overlap; one point per token, it
doubles (0.015 to 0.031 and 0.015 to 0.035) and the bands are apart.
"""

import argparse
import copy
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless-safe: the figure goes to a file
import matplotlib.pyplot as plt
import numpy as np
import torch
from skorch import NeuralNetClassifier
from torch import nn

from sklandscapes import (
    ActivationExtractor,
    ActivationNormalizer,
    RipsPersistence,
    activation_layers,
)
from sklandscapes.datasets import load_digits
from sklandscapes.nets import torch_threads
from sklandscapes.plotting import plot_complexity
from sklandscapes.stats import topological_complexity


class DigitsTransformer(nn.Module):
    """A transformer encoder over the 8 rows of an 8 x 8 image."""

    def __init__(self, width=16, n_heads=2, n_blocks=2, feedforward=32):
        super().__init__()
        self.embed = nn.Linear(8, width)
        self.position = nn.Parameter(torch.zeros(1, 8, width))
        block = nn.TransformerEncoderLayer(
            width, n_heads, feedforward, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(
            block, n_blocks, enable_nested_tensor=False
        )
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        tokens = self.encoder(self.embed(x) + self.position)
        return self.head(tokens.mean(dim=1))


def main(argv=None):
    # sphinx-gallery, which runs the examples for the docs, empties __doc__.
    description = __doc__.split("\n\n")[1] if __doc__ else None
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument(
        "--n-batches", type=int, default=4, help="batches of digits (the samples)"
    )
    parser.add_argument("--n-points", type=int, default=60, help="digits per batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("sklandscapes-out"))
    args = parser.parse_args(argv)
    return run(args)


def complexity_of(networks, batches, token_axis):
    """H1 complexity of every layer, one row per (network, batch)."""
    steps = [
        ActivationNormalizer(method="global"),
        RipsPersistence(homology_dimensions=(1,)),
    ]
    rows = []
    for network in networks:
        clouds = ActivationExtractor(
            model=network, token_axis=token_axis
        ).fit_transform(batches)
        for step in steps:
            clouds = step.fit_transform(clouds)
        rows.append(topological_complexity(clouds, (0.0, 1.0)))
    return np.concatenate(rows)


def run(args):
    # A small network: one torch thread is fastest, and the figures then do
    # not depend on how many cores are free; torch_threads() gives back the
    # count from before when the block ends.
    with torch_threads():
        return _run(args)


def _run(args):
    torch.manual_seed(args.seed)
    X, y = load_digits()
    sequences = X.reshape(-1, 8, 8)  # 8 tokens (rows) of 8 pixels
    rng = np.random.default_rng(args.seed)
    batches = [
        sequences[rng.choice(len(sequences), args.n_points, replace=False)]
        for _ in range(args.n_batches)
    ]

    module = DigitsTransformer()
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
    net.fit(sequences, y)
    accuracy = float((net.predict(sequences) == y).mean())
    print(f"Training accuracy after {args.max_epochs} epochs: {accuracy:.3f}")

    names = ["input", *activation_layers(net.module_, batches[0][:2])]
    print("Layers taken by layers='auto':", names)
    stage = np.repeat(["untrained", f"trained ({accuracy:.2f})"], args.n_batches)
    networks = (untrained, net.module_)
    results = {}
    for label, token_axis in (("one point per sequence", None), ("per token", 1)):
        complexity = complexity_of(networks, batches, token_axis)
        results[label] = complexity
        print(f"\nH1 complexity, {label} (token_axis={token_axis}):")
        print("layer".ljust(22), "untrained  trained")
        for name, before, after in zip(
            names,
            complexity[: args.n_batches].mean(axis=0),
            complexity[args.n_batches :].mean(axis=0),
        ):
            print(f"{name:22s} {before:9.4f} {after:8.4f}")

    args.out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for ax, (label, complexity) in zip(axes, results.items()):
        plot_complexity(
            complexity,
            stage,
            band="confidence",
            ax=ax,
            y_name="network",
            layer_names=names,
            random_state=args.seed,
        )
        ax.set_title(f"H1 complexity, {label}")
    fig.suptitle("A transformer encoder on the digits' rows")
    fig.savefig(args.out / "transformer_tokens.png", dpi=110)
    print(f"Figures written to {args.out}")
    return names, results


if __name__ == "__main__":
    main()
