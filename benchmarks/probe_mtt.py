"""MTT's first iterations under a card, step by step: why does a setting diverge?

For each outer iteration prints the expert and start epoch drawn, the matching loss, the student's movement and the
expert's (‖θ_N − θ_t‖ and ‖θ*_{t+M} − θ*_t‖), the gradient of the loss in the step size, and the step size after
the update, exactly as `ddbench distill --method mtt` draws them (same seed, same generators), on the cached experts
(trained into the user cache if missing). Nothing is written; the test split is never read.

    python benchmarks/probe_mtt.py --card mnist-ipc1 --iters 5 --data-root ../shared/data \\
        --cfg num_experts=4 --cfg expert_train_epochs=22
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from tabulate import tabulate

from ddbench.cli.common import parse_cfg
from ddbench.core.paths import user_cache_root
from ddbench.data import load_dataset
from ddbench.distill.method import DistillContext
from ddbench.distill.registry import create_method
from ddbench.engine.allocator import tune_cpu_allocator
from ddbench.engine.augment import DSA
from ddbench.engine.experts import ensure_experts
from ddbench.engine.unroll import FlatNetwork, trajectory_matching_loss, unroll
from ddbench.engine.whitening import resolve_space
from ddbench.kinds import load_protocol
from ddbench.sweep.options import card_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", default="mnist-ipc1")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cfg", action="append", default=[], metavar="KEY=VALUE", help="MTT option (repeatable)")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    tune_cpu_allocator()
    card = load_protocol(args.card)
    train = load_dataset(card.dataset, args.data_root)
    method = create_method("mtt", **parse_cfg(args.cfg))
    cfg = method.config_for(card)
    device = torch.device("cpu")
    ctx = DistillContext(card=card, device=device, seed=args.seed, config=cfg, space=card_space(card, train),
                         method_name="mtt", cache_dir=user_cache_root(), progress=False)
    arch, space, recipe = method._experts(train, ctx)
    space = resolve_space(space, train, ctx.cache_dir, device)
    bank, _ = ensure_experts(cfg["num_experts"], arch, train, space, recipe, device, ctx.cache_dir, progress=False)

    # MTT.distill's draws, in its order
    gen_cpu, gen_dev, pick = ctx.generator(), ctx.generator(device, offset=1), ctx.generator(offset=2)
    ipc = card.ipc
    labels = torch.arange(train.num_classes).repeat_interleave(ipc)
    init = torch.cat([train.indices_of_class(c)[torch.randperm(len(train.indices_of_class(c)), generator=gen_cpu)[:ipc]]
                      for c in range(train.num_classes)])
    images = space.from_uint8(train.x_train[init], device).detach().requires_grad_(True)
    syn_lr = torch.tensor(float(cfg["lr_teacher"]), device=device, requires_grad=True)
    opt_img = torch.optim.SGD([images], lr=cfg["lr_img"], momentum=0.5)
    opt_lr = torch.optim.SGD([syn_lr], lr=cfg["lr_lr"], momentum=0.5)
    student = FlatNetwork(arch, train.num_classes, train.channels, train.image_size)
    augment = DSA(recipe.dsa_strategy) if cfg["dsa"] else None
    batch_syn = cfg["batch_syn"] or len(labels)
    rows = []
    for it in range(args.iters):
        expert = int(torch.randint(cfg["num_experts"], (1,), generator=gen_cpu))
        start_epoch = int(torch.randint(cfg["max_start_epoch"], (1,), generator=gen_cpu))
        start, target = bank.snapshots(expert, start_epoch, start_epoch + cfg["expert_epochs"])
        final = unroll(student, start.clone(), images, labels, syn_lr, cfg["syn_steps"], batch_syn, F.cross_entropy,
                       augment, gen_dev, pick)
        loss = trajectory_matching_loss(final, start, target)
        opt_img.zero_grad(set_to_none=True)
        opt_lr.zero_grad(set_to_none=True)
        loss.backward()
        grad_lr = float(syn_lr.grad)
        opt_img.step()
        opt_lr.step()
        rows.append([it, expert, start_epoch, f"{loss.item():.4g}", f"{(final - start).norm().item():.4g}",
                     f"{(target - start).norm().item():.4g}", f"{grad_lr:.4g}", f"{images.grad.norm().item():.4g}",
                     f"{syn_lr.item():.4g}"])
    print(f"mtt on {card.id}: syn_steps {cfg['syn_steps']}, expert_epochs {cfg['expert_epochs']}, max_start_epoch "
          f"{cfg['max_start_epoch']}, lr_img {cfg['lr_img']}, lr_lr {cfg['lr_lr']}, lr_teacher {cfg['lr_teacher']}, "
          f"{cfg['num_experts']} experts of {cfg['expert_train_epochs']} epochs")
    print(tabulate(rows, headers=["it", "expert", "t", "loss", "|θN−θt|", "|θ*t+M−θ*t|", "dL/dη", "|dL/dx|",
                                  "η after"]))


if __name__ == "__main__":
    main()
