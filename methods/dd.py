"""DD: Dataset Distillation (Wang, Zhu, Torralba & Efros, 2018), as SsnL/dataset-distillation runs it.

The distilled data is a training schedule: `distill_steps` steps, each a batch of
`images_per_class_per_step` synthetic images per class, repeated for `distill_epochs` (10 × 3 =
30 plain-SGD steps by default), every step with its own learned step size (softplus of a raw
parameter, initialised to `distill_lr`: 0.02 for MNIST, 0.001 for CIFAR-10). Each iteration draws
a network (fresh Xavier-normal init for the random-init variant; one fixed init for the fixed
variant), applies the 30 steps to it, and scores the final weights by cross-entropy on a batch of
1024 real training images (CIFAR-10 with reflect-pad-4 crop and flip, as the original loader);
Adam (lr 0.01, betas 0.5/0.999, ×0.5 every 40 epochs) updates images and step sizes. Images start
from N(0, 1) noise; LeNet for MNIST, AlexCifarNet for CIFAR-10, 400 epochs of the real data.
Every epoch sees all real images, the last batch partial (59 iterations per MNIST epoch), as the
original loader. The networks drawn here come from a seed range disjoint from the evaluation
networks' (ddbench.engine.native.distill_network_seed), so the native cards test held-out networks; the
init variant (random / fixed) is part of the config, so the two native cards never share a set.

The unrolled steps are written with torch.func (nested `grad`), not the original hand-written
Hessian-vector reverse loop; tests/test_dd.py checks the gradients against autograd and finite
differences. The set carries its schedule (aux `step_lrs`, extra['dd']) and, for the fixed
variant, the initialisation (aux `init_params`), so the dd-native cards can replay it exactly. An interrupted
distillation resumes from its last saved epoch (ddbench.distill.loop_state) and ends with the same set.

Deviations: the number of distill steps follows the card's IPC (ipc / images_per_class_per_step),
so the standard cards get 1/10/50 steps; the fixed-init variant uses 1 step for MNIST IPC 1 as the
README's command. On the standard cards the set trains with the card's lr (its per-step step sizes
have no single-lr equivalent). digits (CPU tests and the quick card) uses ConvNet-1 (LeNet needs
28 px), 30 epochs of the 1,257 training images and real batches of 256. CIFAR-10 normalisation is
the original loader's (std 0.247, 0.243, 0.261), carried by the set.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import grad
from tqdm.auto import tqdm

from ddbench.cards.card import ProtocolCard
from ddbench.core.errors import DDBenchError
from ddbench.data import ImageDataset
from ddbench.data.space import ImageSpace
from ddbench.distill.loop_state import LoopState
from ddbench.distill.method import DistillContext, Method
from ddbench.distill.registry import register_method
from ddbench.engine.native import distill_network_seed, random_inits
from ddbench.engine.unroll import FlatNetwork
from ddbench.store.distilled import DistilledSet

DD_CIFAR10_STD = (0.247, 0.243, 0.261)


def unrolled_objective(student: FlatNetwork, images: torch.Tensor, labels: torch.Tensor, raw_lrs: torch.Tensor,
                       steps: int, w0: torch.Tensor, x_real: torch.Tensor, y_real: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on real data of the weights reached by the schedule from w0 (torch.func.grad inner steps)."""
    per_step = len(images) // steps
    step_grad = grad(lambda w, x, y: F.cross_entropy(student(w, x), y))
    w = w0
    for t, lr in enumerate(F.softplus(raw_lrs)):
        k = t % steps
        w = w - lr * step_grad(w, images[k * per_step : (k + 1) * per_step], labels[k * per_step : (k + 1) * per_step])
    return F.cross_entropy(student(w, x_real), y_real)


def crop_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Reflect-pad 4, random crop back to size, random horizontal flip, per image (DD's CIFAR-10 train transform)."""
    n, c, h, w = x.shape
    padded = F.pad(x, [4, 4, 4, 4], mode="reflect")
    rows = torch.randint(0, 9, (n, 1), generator=gen, device=x.device) + torch.arange(h, device=x.device)
    cols = torch.randint(0, 9, (n, 1), generator=gen, device=x.device) + torch.arange(w, device=x.device)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chans = torch.arange(c, device=x.device).view(1, c, 1, 1)
    cropped = padded[batch, chans, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
    flip = torch.rand(n, generator=gen, device=x.device) < 0.5
    return torch.where(flip.view(n, 1, 1, 1), cropped.flip(3), cropped)


@register_method
class DD(Method):
    """Dataset Distillation (Wang et al. 2018): learned images and per-step learning rates."""

    name = "dd"
    paper = "https://arxiv.org/abs/1811.10959"
    code = "https://github.com/SsnL/dataset-distillation"
    kinds = ("supervised", "dd-native")
    loop_unit = "epochs"
    default_cfg = {
        "arch": "", "images_per_class_per_step": 1, "distill_epochs": 3, "distill_lr": 0.02, "lr": 0.01,
        "epochs": 400, "decay_epochs": 40, "decay_factor": 0.5, "batch_size": 1024, "n_nets": 1,
        "init": "random", "init_gain": 1.0, "real_augment": "none",
    }
    limits = {"images_per_class_per_step": (1, None), "distill_epochs": (1, None), "distill_lr": (0, None), "lr": (0, None),
              "epochs": (0, None), "decay_epochs": (1, None), "decay_factor": (0, 1), "batch_size": (1, None), "n_nets": (1, None)}
    protocol_cfg = {
        "mnist-*": {"arch": "lenet", "distill_lr": 0.02},
        "cifar10-*": {"arch": "alexcifarnet", "distill_lr": 0.001, "real_augment": "crop_flip"},
        "digits*": {"arch": "convnetd1", "epochs": 30, "batch_size": 256, "decay_epochs": 10},
    }

    def config_for(self, card: ProtocolCard) -> dict[str, Any]:
        """A dd-native card fixes the init variant, so it is part of the run id, the set cache and the rows."""
        cfg = super().config_for(card)
        if card.param("init", ""):
            if "init" in self.user_cfg and self.user_cfg["init"] != card.param("init", ""):
                raise DDBenchError(f"dd: card '{card.id}' evaluates {card.param('init', '')}-init sets; "
                                   f"--cfg init={self.user_cfg['init']} contradicts it")
            cfg["init"] = card.param("init", "")
        if cfg["init"] not in ("random", "fixed"):
            raise DDBenchError(f"dd: init must be random or fixed, not {cfg['init']!r}")
        return cfg

    def sets_per_seed(self, card: ProtocolCard) -> bool:
        """A fixed-init set trains one network, its own: the spread that means something is over
        distillations, so evaluation seed s on a fixed-init card evaluates the set distilled with seed s."""
        return card.param("init", "") == "fixed" or self.one_set_per_seed

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        cfg = ctx.config
        device = ctx.device
        init_kind = cfg["init"]
        per_class = cfg["images_per_class_per_step"]
        if ipc % per_class:
            raise DDBenchError(f"dd: ipc {ipc} is not a multiple of images_per_class_per_step {per_class}")
        steps = ipc // per_class
        arch = cfg["arch"] or ctx.card.archs[0]
        space = ImageSpace(ctx.space.mean, DD_CIFAR10_STD) if train.name == "cifar10" else ctx.space
        k = train.num_classes
        gen = ctx.generator(device)
        images = torch.randn(steps * per_class * k, train.channels, *train.image_size, generator=gen, device=device)
        images.requires_grad_(True)
        labels = torch.arange(k, device=device).repeat_interleave(per_class).repeat(steps)
        total = steps * cfg["distill_epochs"]
        raw_lrs = torch.full((total,), math.log(math.expm1(cfg["distill_lr"])), device=device, requires_grad=True)
        opt = torch.optim.Adam([images, raw_lrs], lr=cfg["lr"], betas=(0.5, 0.999))
        student = FlatNetwork(arch, k, train.channels, train.image_size)
        # Networks trained on here are drawn from a seed range disjoint from the evaluation networks'
        # (held out, as in the paper): the fixed init takes counter 0, fresh random inits 1, 2, ...
        fixed = random_inits(arch, [distill_network_seed(ctx.seed, 0)], k, train.channels, train.image_size,
                             cfg["init_gain"]).to(device)[0]
        x_all = space.from_uint8(train.x_train, device)
        y_all = train.y_train.to(device)
        batch = min(cfg["batch_size"], len(x_all))
        per_epoch = math.ceil(len(x_all) / batch)  # the original loader keeps the last, partial batch
        state = LoopState({"images": images, "raw_lrs": raw_lrs}, [opt], [gen], counters={"networks": 0})
        info = {"distill_steps": steps, "distill_epochs": cfg["distill_epochs"], "arch": arch, "init": init_kind,
                "init_gain": cfg["init_gain"], "images_per_class_per_step": per_class}

        def current_set() -> DistilledSet:
            loss_value = state.losses[-1] if state.losses else float("nan")
            dset = ctx.make_set(images.detach(), labels.cpu(), train, space=space, dd=info, final_loss=loss_value)
            dset.aux = {"step_lrs": F.softplus(raw_lrs).detach().cpu()}
            if init_kind == "fixed":
                dset.aux["init_params"] = fixed.cpu()
            return dset

        done = state.resume(ctx)  # an interrupted run goes on from its last saved epoch
        net_count = state.counters["networks"]
        bar = tqdm(range(done, cfg["epochs"]), desc=f"dd {train.name} ipc {ipc}", disable=not ctx.progress, leave=False,
                   initial=done, total=cfg["epochs"])
        for epoch in bar:
            for group in opt.param_groups:
                group["lr"] = cfg["lr"] * cfg["decay_factor"] ** (epoch // cfg["decay_epochs"])
            perm = torch.randperm(len(x_all), generator=gen, device=device)
            for it in range(per_epoch):
                idx = perm[it * batch : (it + 1) * batch]
                x_real = x_all[idx]
                if cfg["real_augment"] == "crop_flip":
                    x_real = crop_flip(x_real, gen)
                opt.zero_grad(set_to_none=True)
                losses = []
                for _ in range(cfg["n_nets"]):
                    if init_kind == "fixed":
                        w0 = fixed
                    else:
                        net_count += 1
                        seed = distill_network_seed(ctx.seed, net_count)
                        w0 = random_inits(arch, [seed], k, train.channels, train.image_size, cfg["init_gain"]).to(device)[0]
                    loss = unrolled_objective(student, images, labels, raw_lrs, steps, w0, x_real, y_all[idx]) / cfg["n_nets"]
                    loss.backward()
                    losses.append(loss.item())
                loss_value = sum(losses)
                if not math.isfinite(loss_value):
                    raise DDBenchError(f"dd diverged in epoch {epoch} (loss {loss_value}); lower lr or distill_lr; no set was written")
                opt.step()
            state.losses.append(loss_value)
            state.counters["networks"] = net_count
            bar.set_postfix(loss=f"{loss_value:.3f}")
            ctx.snapshot(epoch + 1, current_set)
            state.save(ctx, epoch + 1)
        return current_set()
