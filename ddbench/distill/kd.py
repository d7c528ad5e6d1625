"""Knowledge-distillation pieces shared by MKDT and its baselines: the teacher's representations as
regression targets, the KD experts trained on them, and the high-loss subset.

KD experts, as MKDT's buffer.py trains them: the card's ConvNet with a head of the representation
size, MSE to the teacher representations, SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch 256,
20 epochs, no augmentation; all 21 snapshots kept (ddbench.engine.experts caches them by content).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ddbench.data import ImageDataset
from ddbench.distill.artefacts import expert_artefacts, teacher_artefact
from ddbench.distill.method import Artefact, DistillContext
from ddbench.engine.barlow import BarlowRecipe
from ddbench.engine.experts import ExpertBank, ExpertRecipe, ensure_experts
from ddbench.engine.teacher import TeacherSpec, teacher_representations
from ddbench.engine.unroll import FlatNetwork

KD_OPTIONS: dict[str, Any] = {
    "teacher": "", "teacher_arch": "resnet18", "teacher_epochs": 200, "teacher_batch": 512, "teacher_stem_padding": 2,
    "num_experts": 100, "expert_train_epochs": 20, "expert_lr": 0.1, "expert_momentum": 0.9,
    "expert_wd": 1e-4, "expert_batch": 256, "arch": "",
}

SSL_QUICK = "digits-ssl-quick"  # the card MKDT and its baselines run without --protocol
# digits (the quick card): a CPU budget for the teacher and the experts
DIGITS_BUDGET = {"teacher_arch": "convnetd2", "teacher_epochs": 30, "teacher_batch": 256, "num_experts": 5,
                 "expert_train_epochs": 10}


@dataclass
class KDSetup:
    reps: torch.Tensor  # (N, D) teacher representations of the training images (CPU)
    reps_id: str
    arch: str


def _teacher_spec(cfg: dict[str, Any]) -> TeacherSpec:
    return TeacherSpec(arch=cfg["teacher_arch"], stem_padding=cfg["teacher_stem_padding"], checkpoint=cfg["teacher"],
                       barlow=BarlowRecipe(epochs=cfg["teacher_epochs"], batch_size=cfg["teacher_batch"]))


def _expert_recipe(cfg: dict[str, Any]) -> ExpertRecipe:
    return ExpertRecipe(epochs=cfg["expert_train_epochs"], lr=cfg["expert_lr"], batch_size=cfg["expert_batch"],
                        dsa_strategy="none", momentum=cfg["expert_momentum"], weight_decay=cfg["expert_wd"], loss="mse")


def teacher_targets(train: ImageDataset, ctx: DistillContext) -> KDSetup:
    cfg = ctx.config
    reps, reps_id = teacher_representations(_teacher_spec(cfg), train, ctx.space, 0, ctx.device, ctx.cache_dir,
                                            progress=ctx.progress)
    return KDSetup(reps, reps_id, cfg["arch"] or ctx.card.archs[0])


def kd_artefacts(train: ImageDataset, ctx: DistillContext, experts: bool = True) -> list[Artefact]:
    """The teacher and (with `experts`) the KD experts, as job-graph tasks."""
    cfg = ctx.config
    spec = _teacher_spec(cfg)
    teacher, key = teacher_artefact(spec, train, ctx.space, 0)
    if not experts:
        return [teacher]
    return [teacher, *expert_artefacts(cfg["num_experts"], cfg["arch"] or ctx.card.archs[0], train, ctx.space,
                                       _expert_recipe(cfg), ctx.cache_dir, teacher=(spec, ctx.space, 0), teacher_key=key)]


def kd_experts(train: ImageDataset, ctx: DistillContext, setup: KDSetup) -> ExpertBank:
    cfg = ctx.config
    recipe = _expert_recipe(cfg)
    bank, _ = ensure_experts(cfg["num_experts"], setup.arch, train, ctx.space, recipe, ctx.device, ctx.cache_dir,
                             progress=ctx.progress, targets=setup.reps, targets_id=setup.reps_id)
    return bank


@torch.no_grad()
def high_loss_indices(train: ImageDataset, ctx: DistillContext, setup: KDSetup, bank: ExpertBank, count: int) -> torch.Tensor:
    """The `count` training images with the highest MSE to their teacher representation under every
    expert's epoch-1 parameters, averaged over experts (not class-balanced)."""
    device = ctx.device
    student = FlatNetwork(setup.arch, setup.reps.shape[1], train.channels, train.image_size)
    x = ctx.space.from_uint8(train.x_train, device)
    reps = setup.reps.to(device)
    total = torch.zeros(len(x), device=device)
    seeds = bank.seeds()[: ctx.config["num_experts"]]
    for seed in seeds:
        (theta,) = bank.snapshots(seed, 1)
        theta = theta.to(device)
        for lo in range(0, len(x), 2048):
            out = student(theta, x[lo : lo + 2048])
            total[lo : lo + 2048] += (out - reps[lo : lo + 2048]).square().mean(1)
    return torch.argsort(total / len(seeds), descending=True)[:count].cpu()
