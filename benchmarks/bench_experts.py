"""Expert trajectories: ddbench (several experts at once on device tensors) against a one-at-a-time loop.

Plain: the original buffer.py's structure — a DataLoader over the training tensors, one expert
after another, DSA per batch with CPU-drawn parameters, per-batch accuracy through numpy, the
parameters copied to the CPU after every epoch. Ours: `ddbench.engine.train.train_trajectories` with the
`auto` mode (stacked under vmap on a GPU, one by one on a CPU). Same recipe (SGD lr 0.01, no
momentum, no weight decay, batch 256, DSA), same number of experts and epochs, in one process.

    python benchmarks/bench_experts.py --dataset cifar10 --data-root .data --experts 10 --epochs 2   # GPU
    python benchmarks/bench_experts.py --dataset digits --experts 4 --epochs 3                        # CPU-sized
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tabulate import tabulate
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_loop import _plain_dsa  # noqa: E402

from ddbench.core.provenance import device_name, pick_device  # noqa: E402
from ddbench.data import load_dataset  # noqa: E402
from ddbench.data.space import ImageSpace  # noqa: E402
from ddbench.engine.augment import DSA, DSAParams  # noqa: E402
from ddbench.engine.experts import ExpertRecipe  # noqa: E402
from ddbench.engine.precision import SUPPORTED, flags, precision_scope  # noqa: E402
from ddbench.engine.train import init_network, train_trajectories  # noqa: E402


def plain_experts(arch, count, epochs, x, y, classes, strategy, device):
    trajectories = []
    loader = DataLoader(TensorDataset(x.cpu(), y.cpu()), batch_size=256, shuffle=True, num_workers=0)
    for seed in range(count):
        net = init_network(arch, seed, classes, x.shape[1], tuple(x.shape[2:])).to(device).train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0, weight_decay=0)
        stamps = [[p.detach().cpu() for p in net.parameters()]]
        for _ in range(epochs):
            for img, lab in loader:
                img, lab = img.to(device), lab.to(device)
                out = net(_plain_dsa(img, strategy, DSAParams()))
                loss = F.cross_entropy(out, lab)
                np.sum(np.argmax(out.cpu().data.numpy(), axis=-1) == lab.cpu().data.numpy())
                opt.zero_grad()
                loss.backward()
                opt.step()
            stamps.append([p.detach().cpu() for p in net.parameters()])
        trajectories.append(stamps)
    return trajectories


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--experts", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--device", default=None)
    ap.add_argument("--precision", choices=SUPPORTED, default="fp32", help="precision policy (the cards' fp32: TF32 off)")
    args = ap.parse_args()
    device = pick_device(args.device)
    scope = contextlib.ExitStack()
    described = scope.enter_context(precision_scope(args.precision, device))  # held to the end of main
    train = load_dataset(args.dataset, args.data_root)
    arch = {8: "convnetd1", 64: "convnetd4"}.get(train.image_size[0], "convnet")
    strategy = "color_crop_cutout_flip_scale_rotate" if train.channels == 3 else "color_crop_cutout_scale_rotate"
    x = ImageSpace(train.mean, train.std).from_uint8(train.x_train, device)
    y = train.y_train.to(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    recipe = ExpertRecipe(epochs=args.epochs, dsa_strategy=strategy).train_recipe()
    plain_experts(arch, 1, 1, x, y, train.num_classes, strategy, device)  # warm-up of both: neither pays first calls
    train_trajectories(arch, [0], x, y, recipe, 1, train.num_classes, DSA(strategy), progress=False)
    sync()
    t0 = time.perf_counter()
    plain_experts(arch, args.experts, args.epochs, x, y, train.num_classes, strategy, device)
    sync()
    plain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = train_trajectories(arch, list(range(args.experts)), x, y, recipe, args.epochs, train.num_classes, DSA(strategy),
                              progress=False)
    sync()
    ours_s = time.perf_counter() - t0
    assert len(ours) == args.experts and ours[0].shape[0] == args.epochs + 1
    print(f"device: {device_name(device)}; torch {torch.__version__}; {args.dataset}, {arch}, "
          f"{args.experts} experts × {args.epochs} epochs, after a one-epoch warm-up of each")
    print(f"precision: {args.precision} ({described}; {flags()})")
    print(tabulate([[f"{plain_s:.1f}", f"{ours_s:.1f}", f"{plain_s / ours_s:.2f}"]],
                   headers=["plain s", "ours s", "speed-up"], tablefmt="github"))


if __name__ == "__main__":
    main()
