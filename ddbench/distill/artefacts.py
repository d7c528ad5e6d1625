"""The artefacts methods share, as job-graph tasks: a ZCA fit, expert trajectories, a teacher, a selection network.

Each factory returns `Artefact`s whose build and file functions are module-level functions bound
with functools.partial, so that they pickle for a Ray worker.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

from ddbench.data import ImageDataset
from ddbench.data.space import ImageSpace
from ddbench.distill.method import Artefact, DistillContext
from ddbench.engine.cost import training_flops, training_steps
from ddbench.engine.experts import ExpertRecipe, expert_bank, recorded_seconds, train_experts
from ddbench.engine.realtrain import cached_real_network, real_network_path, resume_path
from ddbench.engine.resume import epochs_left, recorded_training_seconds
from ddbench.engine.teacher import teacher_key, teacher_representations
from ddbench.engine.whitening import resolve_space, zca_flops, zca_path


def _build_zca(train: ImageDataset, ctx: DistillContext, *, space: ImageSpace) -> None:
    resolve_space(space, train, ctx.cache_dir, ctx.device)


def _zca_files(cache_dir: Path, rel: str) -> list[Path]:
    return [cache_dir / rel]


def zca_artefact(train: ImageDataset, space: ImageSpace, cache_dir: Path) -> Artefact:
    """The ZCA of a pending space (ddbench.engine.whitening), fitted once; every consumer reads its file."""
    assert space.zca is not None and space.zca.is_pending
    rel = str(zca_path(train, space.zca.key, cache_dir).relative_to(cache_dir))
    return Artefact(stage="zca", key=f"zca:{rel}", label=f"ZCA of {train.name}",
                    build=functools.partial(_build_zca, space=space), files=functools.partial(_zca_files, rel=rel),
                    flops=zca_flops(train))


def _expert_files(cache_dir: Path, bank_dir: str, seed: int) -> list[Path]:
    return [cache_dir / bank_dir / f"expert_{seed}.safetensors"]


def _build_expert(train: ImageDataset, ctx: DistillContext, *, seed: int, count: int, arch: str, space: ImageSpace,
                  recipe: ExpertRecipe, teacher: tuple | None) -> None:
    space = resolve_space(space, train, ctx.cache_dir, ctx.device)  # a pending ZCA: read from its artefact's file
    targets, targets_id = None, ""
    if teacher is not None:
        targets, targets_id = _teacher_reps(train, ctx, *teacher)
    bank = expert_bank(arch, train, space, recipe, ctx.cache_dir, targets_id)
    if seed not in bank.seeds():
        train_experts(bank, [seed], count, arch, train, space, recipe, ctx.device, ctx.progress, targets)


def expert_artefacts(count: int, arch: str, train: ImageDataset, space: ImageSpace, recipe: ExpertRecipe,
                     cache_dir: Path, teacher: tuple | None = None, teacher_key: str = "") -> list[Artefact]:
    """One task per expert trajectory 0..count-1 (on a teacher's representations when `teacher` is given:
    (TeacherSpec, space, seed), whose cache key `teacher_key` names the targets). A space with a pending ZCA adds
    the ZCA's artefact first, which every expert depends on."""
    bank = expert_bank(arch, train, space, recipe, cache_dir, teacher_key)
    rel = str(bank.directory.relative_to(cache_dir))
    outputs = train.num_classes
    if teacher is not None:
        outputs = 512
    seconds = recorded_seconds(bank) if bank.directory.is_dir() else None
    deps: tuple[str, ...] = (f"teacher:{teacher_key}",) if teacher is not None else ()
    zca = [zca_artefact(train, space, cache_dir)] if space.zca is not None and space.zca.is_pending else []
    deps += tuple(a.key for a in zca)
    artefacts = []
    for seed in range(count):
        left, resumes = epochs_left(bank.resume_path(seed), recipe.epochs)  # an interrupted expert goes on: the rest
        artefacts.append(Artefact(
            stage="experts", key=f"expert:{rel}/{seed}",
            label=f"expert {seed} of {count} ({arch}, {train.name}{', ' + resumes if resumes else ''})",
            build=functools.partial(_build_expert, seed=seed, count=count, arch=arch, space=space, recipe=recipe,
                                    teacher=teacher),
            files=functools.partial(_expert_files, bank_dir=rel, seed=seed), deps=deps,
            flops=training_flops(arch, outputs, train.channels, train.image_size, left * len(train.x_train)),
            seconds=None if seconds is None else seconds * left / max(1, recipe.epochs),
            steps=training_steps(left, len(train.x_train), recipe.batch_size)))
    return zca + artefacts


def _teacher_reps(train: ImageDataset, ctx: DistillContext, spec, space: ImageSpace, seed: int) -> tuple[torch.Tensor, str]:
    return teacher_representations(spec, train, space, seed, ctx.device, ctx.cache_dir, progress=ctx.progress)


def _build_teacher(train: ImageDataset, ctx: DistillContext, *, spec, space: ImageSpace, seed: int) -> None:
    _teacher_reps(train, ctx, spec, space, seed)


def _teacher_files(cache_dir: Path, folder: str, checkpoint: bool) -> list[Path]:
    names = ["representations.safetensors"] + ([] if checkpoint else ["teacher.safetensors"])
    return [cache_dir / folder / name for name in names]


def teacher_artefact(spec, train: ImageDataset, space: ImageSpace, seed: int) -> tuple[Artefact, str]:
    """The Barlow Twins teacher (or a user checkpoint) and its representations of the training set; and its key."""
    key = teacher_key(spec, train, space, seed)
    folder = f"teachers/{train.name}-{key}"
    flops = None
    if not spec.checkpoint:
        flops = 2 * training_flops(spec.arch, 10, train.channels, train.image_size, spec.barlow.epochs * len(train.x_train))
    return Artefact(stage="teacher", key=f"teacher:{key}", label=f"{spec.arch} on {train.name}",
                    build=functools.partial(_build_teacher, spec=spec, space=space, seed=seed),
                    files=functools.partial(_teacher_files, folder=folder, checkpoint=bool(spec.checkpoint)),
                    flops=flops), key


def _build_selection(train: ImageDataset, ctx: DistillContext, *, arch: str, space: ImageSpace, recipe, seed: int) -> None:
    cached_real_network(arch, train, space, recipe, seed, ctx.device, ctx.cache_dir, progress=ctx.progress)


def _selection_files(cache_dir: Path, rel: str) -> list[Path]:
    return [cache_dir / rel]


def selection_key(rel: str) -> str:
    """The job-graph key of the selection network cached at `rel` (relative to the cache directory)."""
    return f"selection:{rel}"


def selection_artefact(arch: str, train: ImageDataset, space: ImageSpace, recipe, seed: int, cache_dir: Path) -> Artefact:
    """The network trained on all real data whose features the coreset baselines select with."""
    network = real_network_path(arch, train, space, recipe, seed, cache_dir)
    rel = str(network.relative_to(cache_dir))
    left, resumes = epochs_left(resume_path(network), recipe.epochs)  # an interrupted training resumes: only the rest is work
    flops = training_flops(arch, train.num_classes, train.channels, train.image_size, left * len(train.x_train))
    seconds = recorded_training_seconds(network)
    return Artefact(stage="selection", key=selection_key(rel),
                    label=f"selection network {arch} on {train.name} (seed {seed}{', ' + resumes if resumes else ''})",
                    build=functools.partial(_build_selection, arch=arch, space=space, recipe=recipe, seed=seed),
                    files=functools.partial(_selection_files, rel=rel), flops=flops,
                    seconds=None if seconds is None else seconds * left / max(1, recipe.epochs),
                    steps=training_steps(left, len(train.x_train), recipe.batch_size))
