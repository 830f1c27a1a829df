"""Relabelings of a pair of labels, as contrasts on a Gram matrix.

A relabeling of the rows of a pair is a contrast ``w`` such that the distance
between the relabelled means is ``sqrt(w^T K w)``. Two designs:

* **unrestricted**: every row is exchangeable; a relabeling picks which
  ``n_a`` of the ``n`` rows form the first label (the paper's test).
* **paired**: row ``i`` at the first label and row ``i`` at the second are
  one unit's (network's) snapshots; a relabeling swaps them or not, a sign
  flip of the unit's difference. The contrast then acts on the Gram matrix
  of the differences, ``G = D K D^T`` with ``D = [I, -I]``.

When the distinct relabelings are at most the number asked for, all of them
are enumerated and the p-value is exact.
"""

import math
from dataclasses import dataclass
from functools import partial
from itertools import combinations, islice

import numpy as np

__all__ = ["PairDesign", "ReplicateCells", "null_statistics"]

# Relabelings handled together: one block costs a (block, n) matrix product
# and its memory does not grow with the number of relabelings.
BLOCK = 1000


def random_splits(n, n_a, size, seed):
    """Contrasts ``1_A / n_a - 1_B / n_b`` of random relabelings, one per row."""
    rng = np.random.default_rng(seed)
    # Each row is a random relabeling: the first n_a positions of a
    # permutation form group A.
    order = np.argsort(rng.random((size, n)), axis=1)
    contrasts = np.full((size, n), -1.0 / (n - n_a))
    np.put_along_axis(contrasts, order[:, :n_a], 1.0 / n_a, axis=1)
    return contrasts


def split_blocks(n, n_a):
    """The contrasts of every choice of ``n_a`` rows out of ``n``, a block of
    at most ``BLOCK`` rows at a time; the first row is the observed split."""
    chosen = combinations(range(n), n_a)
    while block := list(islice(chosen, BLOCK)):
        contrasts = np.full((len(block), n), -1.0 / (n - n_a))
        np.put_along_axis(contrasts, np.array(block), 1.0 / n_a, axis=1)
        yield contrasts


def random_signs(m, size, seed):
    """Random sign flips of ``m`` differences, divided by ``m`` (a mean)."""
    rng = np.random.default_rng(seed)
    return (2.0 * rng.integers(0, 2, size=(size, m)) - 1.0) / m


def sign_range(m, start, stop):
    """Sign vectors number ``start`` to ``stop - 1`` of length ``m`` (the bits
    of their number), divided by ``m``; the last, all +1, is the observed."""
    bits = (np.arange(start, stop)[:, None] >> np.arange(m)) & 1
    return (2.0 * bits - 1.0) / m


@dataclass(frozen=True)
class ReplicateCells:
    """Samples that share a (unit, label): replicates of one snapshot.

    Attributes
    ----------
    of_sample : ndarray of shape (n_samples,)
        The cell of each sample.
    labels, units : ndarray of shape (n_cells,)
        The label and the unit of each cell.
    counts : ndarray of shape (n_cells,)
        Samples per cell.
    """

    of_sample: np.ndarray
    labels: np.ndarray
    units: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_samples(cls, labels, units):
        label_values, label_codes = np.unique(labels, return_inverse=True)
        unit_values, unit_codes = np.unique(units, return_inverse=True)
        keys = label_codes.ravel() * len(unit_values) + unit_codes.ravel()
        cells, of_sample = np.unique(keys, return_inverse=True)
        if len(cells) == len(keys):
            # No replicates: each sample is its own cell, in its own place,
            # so that averaging is no copy of a matrix of landscapes.
            return cls(
                np.arange(len(keys)),
                np.asarray(labels),
                np.asarray(units),
                np.ones(len(keys), dtype=np.intp),
            )
        of_sample = of_sample.ravel()
        return cls(
            of_sample,
            label_values[cells // len(unit_values)],
            unit_values[cells % len(unit_values)],
            np.bincount(of_sample),
        )

    @property
    def replicated(self):
        """Whether some cell has more than one sample."""
        return len(self.counts) < len(self.of_sample)

    def average(self, rows):
        """The mean of the rows of each cell, shape ``(n_cells,) + rows.shape[1:]``.

        Without replicates, ``rows`` itself.
        """
        if not self.replicated:
            return rows
        sums = np.zeros((len(self.counts),) + rows.shape[1:])
        np.add.at(sums, self.of_sample, rows)
        return sums / self.counts.reshape((-1,) + (1,) * (rows.ndim - 1))

    def average_gram(self, gram):
        """The Gram matrix of the cell means, from that of the samples."""
        return self.average(self.average(gram).T)


@dataclass(frozen=True)
class PairDesign:
    """How the rows of one pair of labels are relabelled.

    ``rows_a`` and ``rows_b`` index the Gram matrix; in a paired design
    ``rows_a[i]`` and ``rows_b[i]`` belong to one unit.
    """

    rows_a: np.ndarray
    rows_b: np.ndarray
    paired: bool
    n_permutations: int

    @property
    def rows(self):
        return np.concatenate([self.rows_a, self.rows_b])

    @property
    def n_relabelings(self):
        """Distinct relabelings: ``2**m`` sign flips, or ``C(n, n_a)`` splits."""
        if self.paired:
            return 2 ** len(self.rows_a)
        return math.comb(len(self.rows_a) + len(self.rows_b), len(self.rows_a))

    @property
    def exhaustive(self):
        return self.n_relabelings <= self.n_permutations

    @property
    def n_null(self):
        """Relabelings in the null distribution."""
        return self.n_relabelings if self.exhaustive else self.n_permutations

    @property
    def n_blocks(self):
        return -(-self.n_null // BLOCK)

    @property
    def observed_index(self):
        """Where the observed labels stand in an enumerated null distribution."""
        return self.n_relabelings - 1 if self.paired else 0

    def pvalue(self, exceed):
        """``exceed / N`` over all relabelings (the observed one among them),
        or ``(1 + exceed) / (1 + n_permutations)`` over random ones."""
        if self.exhaustive:
            return exceed / self.n_relabelings
        return (1 + exceed) / (1 + self.n_permutations)

    def work_gram(self, sub):
        """The Gram matrix the contrasts act on, from the pair's block ``sub``."""
        if not self.paired:
            return sub
        m = len(self.rows_a)
        return sub[:m, :m] - sub[:m, m:] - sub[m:, :m] + sub[m:, m:]

    def observed_contrast(self):
        n_a, n_b = len(self.rows_a), len(self.rows_b)
        if self.paired:
            return np.full(n_a, 1 / n_a)
        return np.r_[np.full(n_a, 1 / n_a), np.full(n_b, -1 / n_b)]

    def mean_square(self, work):
        """Mean of ``w^T work w`` over all relabelings ``w``."""
        if self.paired:
            # E[eps eps^T] = I for independent signs.
            return np.trace(work) / len(self.rows_a) ** 2
        n_a = len(self.rows_a)
        n = n_a + len(self.rows_b)
        # E[w w^T] = (1/n_a + 1/n_b) H / (n - 1), H centring the n rows.
        spread = (1 / n_a + 1 / (n - n_a)) / (n - 1)
        return spread * (np.trace(work) - work.sum() / n)

    def blocks(self, seeds):
        """Callables that make the contrasts of each block of relabelings.

        ``seeds`` (one per block of random relabelings) are drawn by the
        caller, so that a design's random relabelings do not depend on
        whether another pair is enumerated.
        """
        if self.exhaustive and self.paired:
            m = len(self.rows_a)
            return (
                partial(sign_range, m, start, min(start + BLOCK, 2**m))
                for start in range(0, 2**m, BLOCK)
            )
        if self.exhaustive:
            # Made as the blocks are dispatched: memory holds a few blocks,
            # not every relabeling.
            blocks = split_blocks(len(self.rows), len(self.rows_a))
            return (partial(_given, block) for block in blocks)
        make = (
            partial(random_signs, len(self.rows_a))
            if self.paired
            else partial(random_splits, len(self.rows), len(self.rows_a))
        )
        return [
            partial(make, min(BLOCK, self.n_permutations - b * BLOCK), seed)
            for b, seed in enumerate(seeds)
        ]


def _given(array):
    return array


def null_statistics(make_contrasts, work, stacked=None):
    """Statistics ``sqrt(w^T work w)`` of one block of relabelings.

    With ``stacked``, the layers' work matrices side by side, shape
    ``(n, n_layers * n)``, also an ``(n_layers, block)`` array of each
    layer's statistics of the same relabelings.
    """
    contrasts = make_contrasts()
    whole = contrast_norms(contrasts, work)
    if stacked is None:
        return whole
    n = len(work)
    products = (contrasts @ stacked).reshape(len(contrasts), -1, n)
    layer_squared = np.einsum("plj,pj->lp", products, contrasts)
    return whole, np.sqrt(np.maximum(layer_squared, 0.0))


def contrast_norms(contrasts, gram):
    """``sqrt(w^T K w)`` for every contrast ``w`` (a row of ``contrasts``)."""
    squared = np.einsum("pi,pi->p", contrasts @ gram, contrasts)
    return np.sqrt(np.maximum(squared, 0.0))
