"""MTT's first iterations under a card, step by step: why does a setting diverge?

For each outer iteration prints the expert and start epoch drawn, the matching loss, the student's movement and the
expert's (‖θ_N − θ_t‖ and ‖θ*_{t+M} − θ*_t‖), the gradient of the loss in the step size, and the step size after
the update, with the state and draws `ddbench distill --method mtt` makes (MTT's own `bank`, `start` and `draw`, which
`distill` calls), on the cached experts (trained into the user cache if missing). Nothing is written; the test split is never read.

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
from ddbench.engine.unroll import trajectory_matching_loss, unroll
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
    bank, space, arch, recipe = method.bank(train, ctx)
    run = method.start(train, card.ipc, ctx, space, arch, recipe)  # MTT.distill's state and draws, in its order
    opt_img, opt_lr = run.state.optimizers
    _, gen_dev, pick = run.state.generators
    rows = []
    for it in range(args.iters):
        expert, start_epoch, start, target = method.draw(run, bank, ctx)
        final = unroll(run.student, start.clone(), run.images, run.labels, run.syn_lr, cfg["syn_steps"], run.batch_syn,
                       F.cross_entropy, run.augment, gen_dev, pick)
        loss = trajectory_matching_loss(final, start, target)
        opt_img.zero_grad(set_to_none=True)
        opt_lr.zero_grad(set_to_none=True)
        loss.backward()
        grad_lr = float(run.syn_lr.grad)
        opt_img.step()
        opt_lr.step()
        rows.append([it, expert, start_epoch, f"{loss.item():.4g}", f"{(final - start).norm().item():.4g}",
                     f"{(target - start).norm().item():.4g}", f"{grad_lr:.4g}", f"{run.images.grad.norm().item():.4g}",
                     f"{run.syn_lr.item():.4g}"])
    print(f"mtt on {card.id}: syn_steps {cfg['syn_steps']}, expert_epochs {cfg['expert_epochs']}, max_start_epoch "
          f"{cfg['max_start_epoch']}, lr_img {cfg['lr_img']}, lr_lr {cfg['lr_lr']}, lr_teacher {cfg['lr_teacher']}, "
          f"{cfg['num_experts']} experts of {cfg['expert_train_epochs']} epochs")
    print(tabulate(rows, headers=["it", "expert", "t", "loss", "|θN−θt|", "|θ*t+M−θ*t|", "dL/dη", "|dL/dx|",
                                  "η after"]))


if __name__ == "__main__":
    main()
