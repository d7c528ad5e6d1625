"""Adversarial attacks on an evaluation network, in pixel units: the network is wrapped so that it takes [0, 1] pixels
and applies the set's normalisation (and ZCA) itself, so ε is a pixel-space L∞ radius whatever space it trained in.

The attacks are the Adversarial Robustness Toolbox's (ART, the `adv` extra): FGSM (Goodfellow et al. 2015), PGD with
one random start (Madry et al. 2018) and APGD-CE, the first attack of AutoAttack (Croce & Hein 2020). Accuracies are
measured on a fixed subset of the test split (the first `n_test` images of a seed-0 permutation).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ddbench.core import clock
from ddbench.core.errors import DDBenchError
from ddbench.data.space import ImageSpace


@dataclass(frozen=True)
class AttackRecipe:
    """A card's [attack] section. Radii and steps are in [0, 1] pixel units."""

    eps: float = 8 / 255  # L∞ radius
    pgd_steps: int = 10
    pgd_step_size: float = 2 / 255
    apgd_steps: int = 20  # 0: no APGD-CE
    n_test: int = 1000  # test images attacked (a fixed subset)
    batch_size: int = 500


class InPixelSpace(nn.Module):
    """`model` taking [0, 1] pixels: normalisation (and ZCA) inside, differentiable."""

    def __init__(self, model: nn.Module, space: ImageSpace) -> None:
        super().__init__()
        self.model, self.space = model, space
        self.register_buffer("mean", torch.tensor(space.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(space.std).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels - self.mean) / self.std
        if self.space.zca is not None:
            x = self.space.zca.apply(x)
        return self.model(x)


def attacked_subset(n_total: int, n: int) -> torch.Tensor:
    """The indices of the test images every network of a card is attacked on (fixed: seed 0)."""
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(0))[: min(n, n_total)]


def art_version() -> str:
    try:
        import art
    except ImportError:
        raise DDBenchError("adversarial cards need the Adversarial Robustness Toolbox: pip install -e '.[adv]'") from None
    return f"adversarial-robustness-toolbox {art.__version__}"


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    correct = sum(int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum()) for i in range(0, len(x), batch))
    return 100.0 * correct / max(1, len(x))


@contextmanager
def frozen_weights(model: nn.Module) -> Iterator[None]:
    """The weights need no gradient while inside: an attack's backward pass then computes only the input's gradient
    (ART's classifier calls `loss.backward()`, which otherwise fills every weight's gradient too)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


def attack_accuracies(model: nn.Module, space: ImageSpace, pixels: torch.Tensor, labels: torch.Tensor, recipe: AttackRecipe,
                      num_classes: int, device: torch.device, seed: int = 0, freeze: bool = True) -> dict:
    """Clean, FGSM, PGD and APGD-CE accuracy (%) of `model` on `pixels` ([0, 1], N×C×H×W) and their cost. `freeze=False`
    leaves the weights' gradients on, as ART alone would (benchmarks/bench_attacks.py's baseline); the adversarial
    examples are the same either way."""
    library = art_version()
    from art.attacks.evasion import AutoProjectedGradientDescent, FastGradientMethod, ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    wrapped = InPixelSpace(model, space).to(device).eval()
    classifier = PyTorchClassifier(wrapped, nn.CrossEntropyLoss(), tuple(pixels.shape[1:]), num_classes, clip_values=(0.0, 1.0),
                                   device_type="gpu" if device.type == "cuda" else "cpu")
    x, y = pixels.cpu().numpy().astype(np.float32), labels.cpu().numpy()
    attacks = {"fgsm": FastGradientMethod(classifier, eps=recipe.eps, eps_step=recipe.eps, batch_size=recipe.batch_size),
               "pgd": ProjectedGradientDescentPyTorch(classifier, eps=recipe.eps, eps_step=recipe.pgd_step_size,
                                                      max_iter=recipe.pgd_steps, num_random_init=1,
                                                      batch_size=recipe.batch_size, verbose=False)}
    if recipe.apgd_steps:
        attacks["apgd_ce"] = AutoProjectedGradientDescent(classifier, eps=recipe.eps, eps_step=2 * recipe.eps,
                                                          max_iter=recipe.apgd_steps, nb_random_init=1,
                                                          batch_size=recipe.batch_size, loss_type="cross_entropy",
                                                          verbose=False)
    state = np.random.get_state()
    np.random.seed(seed)  # ART draws its random starts from numpy's global generator: seeded, then restored
    try:
        with frozen_weights(wrapped) if freeze else nullcontext():
            start = clock.now()
            out = {"clean": _accuracy(wrapped, pixels.to(device), labels.to(device), recipe.batch_size)}
            seconds = {"clean": round(clock.now() - start, 3)}  # BEARD's AE compares each attack with this pass
            for name, attack in attacks.items():
                start = clock.now()
                adversarial = torch.from_numpy(attack.generate(x=x, y=y)).to(device)
                seconds[name] = round(clock.now() - start, 3)
                out[name] = _accuracy(wrapped, adversarial, labels.to(device), recipe.batch_size)
    finally:
        np.random.set_state(state)
    return {"accuracy": {k: round(v, 4) for k, v in out.items()}, "n_attacked": len(x), "seconds": seconds,
            "library": library, "recipe": asdict(recipe), "norm": "Linf, [0, 1] pixels"}
