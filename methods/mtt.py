"""MTT: Dataset Distillation by Matching Training Trajectories (Cazenavette et al., CVPR 2022).

Official code: github.com/GeorgeCazenavette/mtt-distillation (buffer.py, distill.py).

1. Experts (ddbench.engine.experts): `num_experts` ConvNets trained on the full real training set in the
   run's image space, plain SGD lr 0.01, no momentum, no weight decay, DSA, `expert_train_epochs`
   epochs; parameters kept after every epoch; cached and reused across IPCs and runs.
2. Distillation, per iteration: a random expert and a start epoch t < max_start_epoch; the
   student starts at θ*_t and takes `syn_steps` plain SGD steps on the synthetic set (minibatches
   of `batch_syn`, DSA drawn per sample) with the learned step size; the loss is
   ‖θ_N − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖² with M = expert_epochs; SGD with momentum 0.5 updates
   the pixels (lr_img) and the step size (lr_lr). Images start from random real images.
3. The set carries its learned step size (the card trains with it) and, with `zca`, the ZCA
   transform its images live in (kornia's ZCAWhitening as MTT uses it: fitted on the [0, 1]
   training images, eps 0.1, no mean/std normalisation), which the evaluation applies to the
   test images too.

Hyperparameters per card follow the paper's table (mtt-distillation issue #7); a card that includes another
(the track, cross-architecture, timm and bf16 variants) distils with that card's row. Deviations:
- CIFAR-10 IPC 10: the table's pixel lr (1e5) is a confirmed typo (issue #31: it diverges);
  ddbench uses 1000, the value of every other 32 px setting (100 is also reported stable).
- MNIST has no published MTT setting. ddbench's choice: CIFAR-10's steps/epochs per IPC, no ZCA,
  lr_img 1000, lr_lr 1e-7 (IPC 1) / 1e-5, lr_teacher 0.01; stable over 300 iterations at IPC 1 and
  the 20 probed at IPC 10 (benchmarks/probe_mtt.py, RESULTS.md). The defaults (start epochs up to 20,
  lr_lr 1e-5) diverge on MNIST IPC 1 within three iterations.
- Fashion-MNIST (same size, also unpublished) shares MNIST's rows (`*mnist-ipcN`): with the defaults, its IPC 1 distillation
  diverged at iteration 9 (step size -0.00086; benchmarks/RESULTS.md, fourteenth session on the tracks).
- digits (the quick card) runs a CPU-sized budget: 5 experts × 20 epochs, 200 iterations, 20
  steps, lr_img 100, lr_lr 1e-7 (chosen on digits; measured in tests/test_mtt.py).
- The paper reports the best test accuracy over distillation checkpoints; ddbench keeps the final
  set and never looks at the test split, so expect slightly lower numbers at equal budget.
- A NaN loss or a non-positive step size stops distillation with an error; no set is written.

`checkpoint=true` (a runtime option, outside the run id) recomputes each unrolled step in the
backward pass, so each step keeps about one parameter vector instead of its activations; the gradients are the same.
An interrupted distillation resumes from its last saved iteration (saved at most every minute: pixels, step size, both
optimizers' momenta, the generators, the losses; ddbench.distill.loop_state) and ends with the set an uninterrupted run makes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ddbench.core.errors import DDBenchError
from ddbench.data import ImageDataset
from ddbench.data.space import ImageSpace
from ddbench.distill.artefacts import expert_artefacts
from ddbench.distill.loop_state import LoopState
from ddbench.distill.method import Artefact, DistillContext, Method
from ddbench.distill.registry import register_method
from ddbench.engine.augment import DSA
from ddbench.engine.cost import unrolled_flops, unrolled_steps
from ddbench.engine.experts import ExpertBank, ExpertRecipe, ensure_experts
from ddbench.engine.unroll import FlatNetwork, matching_iteration
from ddbench.engine.whitening import pending_zca_space, resolve_space
from ddbench.store.distilled import DistilledSet


def _table(steps: int, expert_epochs: int, max_start: int, lr_img: float, lr_lr: float, zca: bool, batch_syn: int = 0) -> dict:
    return {"syn_steps": steps, "expert_epochs": expert_epochs, "max_start_epoch": max_start, "lr_img": lr_img,
            "lr_lr": lr_lr, "lr_teacher": 0.01, "zca": zca, "batch_syn": batch_syn}


@register_method
class MTT(Method):
    """Matching Training Trajectories (Cazenavette et al. 2022)."""

    name = "mtt"
    paper = "https://arxiv.org/abs/2203.11932"
    code = "https://github.com/GeorgeCazenavette/mtt-distillation"
    default_cfg = {
        "iterations": 5000, "num_experts": 100, "expert_train_epochs": 50, "expert_lr": 0.01, "expert_batch": 256,
        **_table(20, 2, 20, 1000.0, 1e-5, False), "arch": "", "dsa": True,
        "checkpoint": False,  # recompute each unrolled step in the backward pass: one parameter vector kept per step
    }
    runtime_cfg = frozenset({"checkpoint"})
    limits = {"iterations": (1, None), "num_experts": (1, None), "expert_train_epochs": (1, None), "expert_batch": (1, None),
              "syn_steps": (1, None), "expert_epochs": (1, None), "max_start_epoch": (0, None), "lr_img": (0, None),
              "lr_lr": (0, None), "lr_teacher": (0, None), "expert_lr": (0, None), "batch_syn": (0, None)}
    protocol_cfg = {
        "cifar10-ipc1": _table(50, 2, 2, 1000.0, 1e-7, True),
        "cifar10-ipc10": _table(30, 2, 20, 1000.0, 1e-5, True),  # table: lr_img 1e5, a typo (issue #31)
        "cifar10-ipc50": _table(30, 2, 40, 1000.0, 1e-5, False),
        "cifar100-ipc1": _table(20, 3, 20, 1000.0, 1e-5, True),
        "cifar100-ipc10": _table(20, 2, 20, 1000.0, 1e-5, False),
        "cifar100-ipc50": _table(80, 2, 40, 1000.0, 1e-5, True, batch_syn=125),
        "tinyimagenet-ipc1": _table(10, 2, 10, 10000.0, 1e-4, False),
        "tinyimagenet-ipc10": _table(20, 2, 40, 10000.0, 1e-4, False, batch_syn=200),
        "tinyimagenet-ipc50": _table(20, 2, 40, 10000.0, 1e-4, False, batch_syn=300),
        # MNIST and Fashion-MNIST: no published setting, ddbench's choice
        "*mnist-ipc1": _table(50, 2, 2, 1000.0, 1e-7, False),
        "*mnist-ipc10": _table(30, 2, 20, 1000.0, 1e-5, False),
        "*mnist-ipc50": _table(30, 2, 40, 1000.0, 1e-5, False),
        "digits*": {"iterations": 200, "num_experts": 5, "expert_train_epochs": 20, **_table(20, 2, 5, 100.0, 1e-7, False)},
    }

    def _experts(self, train: ImageDataset, ctx: DistillContext) -> tuple[str, ImageSpace, ExpertRecipe]:
        """The experts' arch, image space and recipe (checked against the matching window)."""
        cfg = ctx.config
        strategy = ctx.card.train.dsa_strategy if cfg["dsa"] else "none"
        recipe = ExpertRecipe(epochs=cfg["expert_train_epochs"], lr=cfg["expert_lr"], batch_size=cfg["expert_batch"],
                              dsa_strategy=strategy)
        if cfg["max_start_epoch"] + cfg["expert_epochs"] > recipe.epochs:
            raise DDBenchError(f"mtt: max_start_epoch + expert_epochs ({cfg['max_start_epoch']} + {cfg['expert_epochs']}) "
                               f"exceeds the {recipe.epochs} expert epochs")
        return cfg["arch"] or ctx.card.archs[0], _space(train, ctx), recipe

    def artefacts(self, train: ImageDataset, ctx: DistillContext) -> list[Artefact]:
        arch, space, recipe = self._experts(train, ctx)
        return expert_artefacts(ctx.config["num_experts"], arch, train, space, recipe, ctx.cache_dir)

    def distill_flops(self, train: ImageDataset, ctx: DistillContext) -> float | None:
        cfg = ctx.config
        return unrolled_flops(cfg["arch"] or ctx.card.archs[0], train.num_classes, train, ctx.iterations_left(cfg["iterations"]),
                              cfg["syn_steps"], cfg["batch_syn"] or ctx.card.ipc * train.num_classes, ctx.device.type)

    def distill_steps(self, train: ImageDataset, ctx: DistillContext) -> float:
        return unrolled_steps(ctx.iterations_left(ctx.config["iterations"]), ctx.config["syn_steps"])

    def bank(self, train: ImageDataset, ctx: DistillContext) -> tuple[ExpertBank, ImageSpace, str, ExpertRecipe]:
        """The experts (trained into the cache where missing), the image space they live in, their arch and recipe."""
        arch, space, recipe = self._experts(train, ctx)
        space = resolve_space(space, train, ctx.cache_dir, ctx.device)
        bank, _ = ensure_experts(ctx.config["num_experts"], arch, train, space, recipe, ctx.device, ctx.cache_dir,
                                 progress=ctx.progress)
        return bank, space, arch, recipe

    def start(self, train: ImageDataset, ipc: int, ctx: DistillContext, space: ImageSpace, arch: str,
              recipe: ExpertRecipe) -> Matching:
        """The state before the first iteration: real images per class as pixels, lr_teacher as the step size."""
        cfg, device = ctx.config, ctx.device
        gen_cpu, gen_dev, pick = ctx.generator(), ctx.generator(device, offset=1), ctx.generator(offset=2)
        init = torch.cat([train.indices_of_class(c)[torch.randperm(len(train.indices_of_class(c)), generator=gen_cpu)[:ipc]]
                          for c in range(train.num_classes)])
        images = space.from_uint8(train.x_train[init], device).detach().requires_grad_(True)
        syn_lr = torch.tensor(float(cfg["lr_teacher"]), device=device, requires_grad=True)
        opt_img = torch.optim.SGD([images], lr=cfg["lr_img"], momentum=0.5)
        opt_lr = torch.optim.SGD([syn_lr], lr=cfg["lr_lr"], momentum=0.5)
        labels = torch.arange(train.num_classes).repeat_interleave(ipc).to(device)
        return Matching(LoopState({"images": images, "syn_lr": syn_lr}, [opt_img, opt_lr], [gen_cpu, gen_dev, pick]),
                        labels, init, FlatNetwork(arch, train.num_classes, train.channels, train.image_size),
                        DSA(recipe.dsa_strategy) if cfg["dsa"] else None, cfg["batch_syn"] or len(labels))

    def draw(self, run: Matching, bank: ExpertBank, ctx: DistillContext) -> tuple[int, int, torch.Tensor, torch.Tensor]:
        """An iteration's expert and start epoch, and the expert's parameters there and `expert_epochs` later."""
        cfg = ctx.config
        gen_cpu = run.state.generators[0]
        expert = int(torch.randint(cfg["num_experts"], (1,), generator=gen_cpu))
        start_epoch = int(torch.randint(cfg["max_start_epoch"], (1,), generator=gen_cpu))
        start, target = (t.to(ctx.device) for t in bank.snapshots(expert, start_epoch, start_epoch + cfg["expert_epochs"]))
        return expert, start_epoch, start, target

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        cfg = ctx.config
        bank, space, arch, recipe = self.bank(train, ctx)
        run = self.start(train, ipc, ctx, space, arch, recipe)

        def current_set() -> DistilledSet:
            losses = run.state.losses
            return ctx.make_set(run.images.detach(), run.labels.cpu(), train, learned_lr=float(run.syn_lr.item()), space=space,
                                loss_first=_mean(losses[:20]), loss_last=_mean(losses[-20:]), iterations=len(losses),
                                init_indices=run.init.tolist())

        ctx.snapshot(0, current_set)  # the starting set, on request (`distill --snapshots 0`)
        done = run.state.resume(ctx)  # an interrupted run goes on from its saved iteration
        losses, (_, gen_dev, pick) = run.state.losses, run.state.generators
        bar = tqdm(range(done, cfg["iterations"]), desc=f"mtt {train.name} ipc {ipc}", disable=not ctx.progress, leave=False,
                   initial=done, total=cfg["iterations"])
        for it in bar:
            _, _, start, target = self.draw(run, bank, ctx)
            losses.append(matching_iteration(run.student, start, target, run.images, run.labels, run.syn_lr, cfg["syn_steps"],
                                             run.batch_syn, F.cross_entropy, run.augment, gen_dev, pick, run.state.optimizers,
                                             "mtt", it, checkpoint=cfg["checkpoint"]))
            if it % 10 == 0:
                bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{run.syn_lr.item():.4f}")
            ctx.snapshot(it + 1, current_set)
            run.state.save(ctx, it + 1)
        return current_set()


@dataclass
class Matching:
    """One MTT distillation under way: its resumable state and what each iteration uses."""

    state: LoopState  # holds the learned pixels and step size: `images` and `syn_lr` read them from there
    labels: torch.Tensor
    init: torch.Tensor  # the training images the pixels started from
    student: FlatNetwork
    augment: DSA | None
    batch_syn: int

    @property
    def images(self) -> torch.Tensor:
        return self.state.learned["images"]

    @property
    def syn_lr(self) -> torch.Tensor:
        return self.state.learned["syn_lr"]


def _space(train: ImageDataset, ctx: DistillContext) -> ImageSpace:
    """The card's normalised space, or MTT's ZCA space: [0, 1] pixels whitened by a fit on the training set (pending:
    keyed by the data, fitted once as an artefact; ddbench.engine.whitening)."""
    if not ctx.config["zca"]:
        return ctx.space
    return pending_zca_space(train, ImageSpace(tuple(0.0 for _ in train.mean), tuple(1.0 for _ in train.std)), eps=0.1)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
