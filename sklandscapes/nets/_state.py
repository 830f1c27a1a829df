"""What the epoch loop of batched training changes, and how it is checkpointed.

The weights of the networks still training are zero-padded stacks (one row
per network) that Adam updates; a network that passed its last threshold is
copied, unpadded, to ``final`` and dropped from the stacks and from Adam.
"""

import dataclasses

import numpy as np
import torch

__all__ = ["TrainingState", "pad_stacks", "unpad"]


def pad_stacks(stacks, multiple=16):
    """Zero-pad every hidden width up to a multiple of ``multiple``.

    Small batched products whose sizes are a multiple of the SIMD width run
    faster on the CPU (15 -> 16 in the paper's network). The padded units
    compute exactly 0 + 0 and feed the next layer through zero weights, so the
    logits are those of the unpadded network; the padded weights get exactly
    zero gradient (or are zeroed, see ``_train_stacked``), so Adam leaves them
    at zero.
    """
    padded = []
    n_in = stacks[0][0].shape[2]
    for index, (weight, bias) in enumerate(stacks):
        n_networks, n_out, _ = weight.shape
        if index < len(stacks) - 1:
            n_out_padded = -(-n_out // multiple) * multiple
        else:
            n_out_padded = n_out
        new_weight = weight.new_zeros(n_networks, n_out_padded, n_in)
        new_weight[:, :n_out, : weight.shape[2]] = weight
        new_bias = bias.new_zeros(n_networks, n_out_padded)
        new_bias[:, :n_out] = bias
        padded.append((new_weight, new_bias))
        n_in = n_out_padded
    return padded


def unpad(layers, shapes):
    """Copies of padded layers (weight, bias) cut to the true ``(n_out, n_in)``."""
    contiguous = torch.contiguous_format
    return [
        (
            weight[..., :n_out, :n_in].clone(memory_format=contiguous),
            bias[..., :n_out].clone(memory_format=contiguous),
        )
        for (weight, bias), (n_out, n_in) in zip(layers, shapes)
    ]


def make_adam(leaves, lr):
    """Adam over the stacked tensors: one independent Adam per network.

    Adam is elementwise, so one optimizer over the stacked tensors updates each
    network as its own optimizer would.
    """
    # The fused kernel is the fastest where torch has one for the device.
    try:
        return torch.optim.Adam(leaves, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(leaves, lr=lr)


@dataclasses.dataclass
class TrainingState:
    """Everything the epoch loop of ``_train_stacked`` changes.

    Network ids index the original stacks; positions index the rows of the
    stacks now training (``training[position]`` is that row's network).

    Attributes
    ----------
    epoch : int
        Epochs completed.
    training : ndarray of int
        The networks still training, in the order of the stacks' rows.
    leaves : list of Tensor
        Padded weight, bias, weight, ... stacks of those networks (leaves that
        require grad).
    optimizer : torch.optim.Adam
        Over ``leaves``.
    final : list of Tensor
        Unpadded CPU stacks of every network: the weights each network had
        when it stopped (its initial weights while it trains).
    train_accuracy : ndarray of shape (n_networks, max_epochs)
    n_epochs_trained : ndarray of shape (n_networks,)
    snapshot_epoch, snapshot_train, snapshot_test : ndarray of shape \
(n_networks, n_thresholds)
        As :class:`TrainingResult`'s ``snapshot_*``.
    n_reached : ndarray of shape (n_networks,)
        How many thresholds each network has reached.
    train_rows, test_rows : Tensor or None
        The training (test) rows of the networks still training; derived from
        ``training``, so not part of the checkpoint.
    """

    epoch: int
    training: np.ndarray
    leaves: list
    optimizer: torch.optim.Optimizer
    final: list
    train_accuracy: np.ndarray
    n_epochs_trained: np.ndarray
    snapshot_epoch: np.ndarray
    snapshot_train: np.ndarray
    snapshot_test: np.ndarray
    n_reached: np.ndarray
    train_rows: torch.Tensor
    test_rows: object

    @classmethod
    def start(
        cls, stacks, padded, *, n_thresholds, max_epochs, lr, train_rows, test_rows
    ):
        """Before the first epoch: every network training from ``stacks``.

        ``padded`` is ``pad_stacks(stacks)``; ``train_rows`` and ``test_rows``
        (or ``None``) hold every network's training (test) rows.
        """
        n_networks = len(train_rows)
        leaves = [t.detach().clone().requires_grad_() for pair in padded for t in pair]
        return cls(
            epoch=0,
            training=np.arange(n_networks),
            leaves=leaves,
            optimizer=make_adam(leaves, lr),
            final=[t.detach().cpu().clone() for pair in stacks for t in pair],
            train_accuracy=np.full((n_networks, max_epochs), np.nan),
            n_epochs_trained=np.full(n_networks, max_epochs),
            snapshot_epoch=np.full((n_networks, n_thresholds), -1),
            snapshot_train=np.full((n_networks, n_thresholds), np.nan),
            snapshot_test=np.full((n_networks, n_thresholds), np.nan),
            n_reached=np.zeros(n_networks, dtype=int),
            train_rows=train_rows,
            test_rows=test_rows,
        )

    def to_checkpoint(self):
        """The state as a dict of CPU tensors and NumPy arrays (copies)."""
        return dict(
            epoch=self.epoch,
            training=self.training.copy(),
            leaves=[leaf.detach().cpu().clone() for leaf in self.leaves],
            optimizer=[
                {
                    key: value.detach().cpu().clone()
                    for key, value in self.optimizer.state.get(leaf, {}).items()
                }
                for leaf in self.leaves
            ],
            final=[t.clone() for t in self.final],
            train_accuracy=self.train_accuracy.copy(),
            n_epochs_trained=self.n_epochs_trained.copy(),
            snapshot_epoch=self.snapshot_epoch.copy(),
            snapshot_train=self.snapshot_train.copy(),
            snapshot_test=self.snapshot_test.copy(),
            n_reached=self.n_reached.copy(),
        )

    @classmethod
    def from_checkpoint(cls, state, *, lr, train_rows, test_rows, device):
        """The state that ``to_checkpoint`` returned ``state`` for.

        ``train_rows`` and ``test_rows`` (or ``None``) hold every network's
        rows; the state is restored on ``device``, the training device.
        """
        training = state["training"].copy()
        rows = torch.as_tensor(training, device=device)
        leaves = [t.to(device).requires_grad_() for t in state["leaves"]]
        optimizer = make_adam(leaves, lr)
        fused = bool(optimizer.defaults.get("fused"))
        for leaf, leaf_state in zip(leaves, state["optimizer"]):
            if leaf_state:
                # Fused Adam keeps its step count on the device, plain Adam on
                # the CPU; the moments live with the weights.
                optimizer.state[leaf] = {
                    key: value if key == "step" and not fused else value.to(device)
                    for key, value in leaf_state.items()
                }
        return cls(
            epoch=int(state["epoch"]),
            training=training,
            leaves=leaves,
            optimizer=optimizer,
            final=list(state["final"]),
            train_accuracy=state["train_accuracy"].copy(),
            n_epochs_trained=state["n_epochs_trained"].copy(),
            snapshot_epoch=state["snapshot_epoch"].copy(),
            snapshot_train=state["snapshot_train"].copy(),
            snapshot_test=state["snapshot_test"].copy(),
            n_reached=state["n_reached"].copy(),
            train_rows=train_rows[rows],
            test_rows=None if test_rows is None else test_rows[rows],
        )

    @property
    def weights(self):
        return self.leaves[0::2]

    @property
    def biases(self):
        return self.leaves[1::2]

    def layers(self, shapes, rows=slice(None)):
        """Unpadded CPU ``(weight, bias)`` stacks of ``rows`` of the stacks."""
        return unpad(
            [
                (weight.detach()[rows].cpu(), bias.detach()[rows].cpu())
                for weight, bias in zip(self.weights, self.biases)
            ],
            shapes,
        )

    def drop_finished(self, done, *, shapes, lr, device):
        """Stop the networks at positions where ``done``; False if none trains on.

        Their weights go to ``final`` and their epochs to ``n_epochs_trained``;
        the stacks, Adam and the rows keep only the others.
        """
        finished = self.training[done]
        self.n_epochs_trained[finished] = self.epoch
        done_rows = torch.as_tensor(np.flatnonzero(done), device=device)
        self._store(torch.as_tensor(finished), done_rows, shapes)
        keep = torch.as_tensor(np.flatnonzero(~done), device=device)
        self.training = self.training[~done]
        if self.training.size == 0:
            return False
        self._keep_rows(keep, lr)
        self.train_rows = self.train_rows[keep]
        if self.test_rows is not None:
            self.test_rows = self.test_rows[keep]
        return True

    def stop(self, shapes):
        """After the last epoch: the networks still training stop there."""
        if self.training.size:
            self.n_epochs_trained[self.training] = self.epoch
            self._store(torch.as_tensor(self.training), slice(None), shapes)

    def _store(self, networks, rows, shapes):
        """Copy the unpadded weights of the stacks' ``rows`` to ``final[networks]``."""
        pairs = [
            (self.leaves[i].detach()[rows], self.leaves[i + 1].detach()[rows])
            for i in range(0, len(self.leaves), 2)
        ]
        for index, (weight, bias) in enumerate(unpad(pairs, shapes)):
            self.final[2 * index][networks] = weight.cpu()
            self.final[2 * index + 1][networks] = bias.cpu()

    def _keep_rows(self, keep, lr):
        """New leaves and Adam holding only the stacks' rows in ``keep``."""
        leaves = [leaf.detach()[keep].requires_grad_() for leaf in self.leaves]
        optimizer = make_adam(leaves, lr)
        for old, new in zip(self.leaves, leaves):
            state = self.optimizer.state.get(old)
            if state:
                optimizer.state[new] = {
                    key: (value if key == "step" else value[keep])
                    for key, value in state.items()
                }
        self.leaves, self.optimizer = leaves, optimizer
