"""Which encoders and teachers make sense on a small dataset: linear-probe accuracy of random,
Barlow-Twins-trained and knowledge-distilled encoders (the figures behind the digits ssl card).

    python benchmarks/probe_encoders.py --dataset digits --bt-epochs 20 --archs teacher convnetd2 convnet

For each arch: the probe (standardised features, L-BFGS, 5% / 50% of the labels, seed 0) on a
random init, after Barlow Twins on all training images, and after KD (MSE, SGD 0.1, 20 epochs) on
the representations of a ConvNet-2 Barlow Twins teacher. `teacher` is MKDT's ResNet-18.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from tabulate import tabulate

from ddbench.data import load_dataset
from ddbench.data.space import ImageSpace
from ddbench.engine.barlow import BarlowRecipe, train_barlow
from ddbench.engine.realtrain import embed, features
from ddbench.engine.recipes import ProbeRecipe
from ddbench.engine.teacher import teacher_network
from ddbench.engine.train import init_network
from ddbench.engine.transfer import probe_accuracies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--bt-epochs", type=int, default=20)
    ap.add_argument("--archs", nargs="+", default=["teacher", "convnetd2", "convnet"])
    args = ap.parse_args()
    ds = load_dataset(args.dataset, args.data_root)
    space = ImageSpace(ds.mean, ds.std)
    x = space.from_uint8(ds.x_train)
    rec = ProbeRecipe(fractions=(0.05, 0.5))
    size = ds.image_size

    def fresh(arch: str, seed: int, outputs: int = 10):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return teacher_network(ds.channels, size[0]) if arch == "teacher" else init_network(arch, seed, outputs, ds.channels, size)

    def probe(model) -> str:
        accs = probe_accuracies(model, ds, rec, 0, torch.device("cpu"))
        return " / ".join(f"{100 * accs[f]:.1f}" for f in rec.fractions)

    bt = BarlowRecipe(epochs=args.bt_epochs, batch_size=256)
    teacher = train_barlow(init_network("convnetd2", 0, 10, ds.channels, size), features, x, bt, 0, space.mean, space.std,
                           progress=False)
    reps = embed(teacher, x)
    rows = []
    for arch in args.archs:
        trained = train_barlow(fresh(arch, 0), features, x, bt, 0, space.mean, space.std, progress=False)
        kd_row = "—"
        if arch != "teacher":
            student = fresh(arch, 1, reps.shape[1])
            opt = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
            for _ in range(20):
                perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
                for lo in range(0, len(x), 256):
                    idx = perm[lo : lo + 256]
                    loss = F.mse_loss(student(x[idx]), reps[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            kd_row = probe(student)
        rows.append([arch, probe(fresh(arch, 0)), probe(trained), kd_row])
    print(f"{args.dataset}: probe accuracy (%) at 5% / 50% labels; Barlow Twins {args.bt_epochs} epochs")
    print(tabulate(rows, headers=["encoder", "random init", "Barlow Twins", "KD from ConvNet-2 BT teacher"], tablefmt="github"))


if __name__ == "__main__":
    main()
