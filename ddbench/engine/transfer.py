"""The self-supervised transfer protocol (ssl-transfer cards): pre-train an encoder on a set, then
probe it with few labels on downstream datasets.

Pre-training (MKDT's pretrain.py): a fresh encoder regresses the set's target vectors with MSE,
SGD momentum 0.9, weight decay 1e-4, batch 256, 20 epochs, lr = the set's learned step size (the
card's lr, 0.1, for real subsets); an images-only set is pre-trained with Barlow Twins instead;
an empty set leaves the encoder at its random initialisation.

Probe: frozen, flattened penultimate features (a ConvNet's flattened conv features, a timm
model's pooled pre-logits) of a random `fraction` of the downstream training set (drawn per
seed, from the training split only), **standardised with that subset's mean and std** — without
this a random encoder's features are too small for the probe and it sits at chance, as in the
authors' logs — then L2-regularised (1e-3 ‖W‖²) multinomial logistic regression fitted by L-BFGS
with strong-Wolfe line search for up to `max_iter` iterations (converged; the authors' code calls
L-BFGS without line search, max_iter 20, 20 times: up to 400 iterations), scored on the full test split.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ddbench.data import ImageDataset
from ddbench.data.space import ImageSpace
from ddbench.engine.barlow import BarlowRecipe, train_barlow
from ddbench.engine.realtrain import embed, features
from ddbench.engine.recipes import PretrainRecipe, ProbeRecipe
from ddbench.engine.train import Streams, init_network
from ddbench.store.distilled import DistilledSet


def pretrain_encoder(arch: str, dset: DistilledSet, recipe: PretrainRecipe, seed: int, device: torch.device,
                     progress: bool = False) -> nn.Module:
    """A fresh `arch` encoder pre-trained on `dset` as the card says (see the module docstring)."""
    shape = dset.image_shape
    outputs = dset.labels.shape[1] if dset.label_mode == "regression" else 512
    model = init_network(arch, seed, outputs, shape[0], shape[1:]).to(device)
    images = dset.images.to(device)
    if len(images) == 0:
        return model.eval()
    if dset.label_mode == "none":
        bt = BarlowRecipe(epochs=recipe.bt_epochs, batch_size=min(recipe.batch_size, len(images)))
        return train_barlow(model, features, images, bt, seed, dset.space.mean, dset.space.std, progress=progress,
                            desc=f"Barlow Twins pre-training ({arch})")
    targets = dset.labels.to(device).float()
    lr = dset.learned_lr if recipe.use_learned_lr and dset.learned_lr else recipe.lr
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    streams = Streams.for_seed(seed, device)
    model.train()
    for _ in range(recipe.epochs):
        perm = torch.randperm(len(images), generator=streams.device, device=device)
        for lo in range(0, len(images), recipe.batch_size):
            idx = perm[lo : lo + recipe.batch_size]
            loss = F.mse_loss(model(images[idx]), targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def fit_probe(z: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float, max_iter: int) -> nn.Linear:
    """L2-regularised logistic regression by L-BFGS on already standardised features."""
    clf = nn.Linear(z.shape[1], num_classes).to(z.device)
    opt = torch.optim.LBFGS(clf.parameters(), lr=1.0, max_iter=max_iter, tolerance_grad=1e-6, tolerance_change=1e-9,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(clf(z), y) + l2 * clf.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return clf


def standardiser(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std of the labelled subset's features (never of test features)."""
    return z.mean(0), z.std(0, unbiased=False) + 1e-6


@torch.no_grad()
def probe_accuracies(encoder: nn.Module, downstream: ImageDataset, recipe: ProbeRecipe, seed: int,
                     device: torch.device) -> dict[float, float]:
    """Test accuracy (0–1) of a linear probe per label fraction; subsets drawn from the train split with `seed`."""
    space = ImageSpace(tuple(downstream.mean), tuple(downstream.std))
    z_train = embed(encoder, space.from_uint8(downstream.x_train, device))
    z_test = embed(encoder, space.from_uint8(downstream.x_test, device))
    y_train, y_test = downstream.y_train.to(device), downstream.y_test.to(device)
    out = {}
    for fraction in recipe.fractions:
        gen = torch.Generator().manual_seed(seed)
        count = max(1, round(fraction * len(y_train)))
        idx = torch.randperm(len(y_train), generator=gen)[:count].to(device)
        mean, std = standardiser(z_train[idx])
        clf = fit_probe((z_train[idx] - mean) / std, y_train[idx], downstream.num_classes, recipe.l2, recipe.max_iter)
        pred = clf((z_test - mean) / std).argmax(1)
        out[fraction] = float((pred == y_test).float().mean())
    return out


def task_name(downstream: str, fraction: float) -> str:
    return f"{downstream}@{fraction:g}"
