"""One MTT distillation iteration: ddbench's functional unroll against a plain version of the original loop.

Plain: the original's structure — a flat-parameter module that re-assigns views of the flat
vector into the network on every forward (mtt-distillation's ReparamModule), DSA per step with
parameters drawn on the CPU and affine matrices built from Python lists, autograd double
backward. Ours: `ddbench.engine.unroll` (torch.func.functional_call over views, batched device-side
DSA), with and without per-step gradient checkpointing. Same ConvNet, same synthetic set size,
same number of unrolled steps, in one process; prints seconds per iteration, peak device memory
(CUDA), the bytes autograd keeps for the backward pass (any device) and the ratios to plain.

    python benchmarks/bench_mtt.py --dataset cifar10 --ipc 10 50 --syn-steps 30 --iters 10   # GPU
    python benchmarks/bench_mtt.py --dataset digits --ipc 10 --syn-steps 10 --iters 3           # CPU-sized
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tabulate import tabulate
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_loop import _plain_dsa  # noqa: E402

from ddbench.core.provenance import device_name, pick_device  # noqa: E402
from ddbench.engine.augment import DSA, DSAParams  # noqa: E402
from ddbench.engine.memory import saved_for_backward_bytes  # noqa: E402
from ddbench.engine.precision import SUPPORTED, flags, precision_scope  # noqa: E402
from ddbench.engine.unroll import FlatNetwork, trajectory_matching_loss, unroll  # noqa: E402
from ddbench.models import create_network  # noqa: E402

SHAPES = {"cifar10": (3, 32, 10, "color_crop_cutout_flip_scale_rotate"), "digits": (1, 8, 10, "color_crop_cutout_scale_rotate"),
          "mnist": (1, 28, 10, "color_crop_cutout_scale_rotate")}


class PlainReparam(nn.Module):
    """The original's flat-parameter wrapper: views of one vector set into the module on each call."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.slots = [(m, n, p.shape, p.numel()) for m in module.modules() for n, p in list(m.named_parameters(recurse=False))]
        for m, n, _, _ in self.slots:
            delattr(m, n)
            setattr(m, n, None)

    def forward(self, x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        offset = 0
        for m, n, shape, numel in self.slots:
            setattr(m, n, flat[offset : offset + numel].view(shape))
            offset += numel
        return self.module(x)


def plain_iteration(net, start, target, images, labels, lr, steps, strategy):
    params = [start.clone().requires_grad_(True)]
    for _ in range(steps):
        x = _plain_dsa(images, strategy, DSAParams())
        loss = F.cross_entropy(net(x, params[-1]), labels)
        (g,) = torch.autograd.grad(loss, params[-1], create_graph=True)
        params.append(params[-1] - lr * g)
    loss = F.mse_loss(params[-1], target, reduction="sum") / F.mse_loss(start, target, reduction="sum")
    loss.backward()
    return loss


def ours_iteration(student, start, target, images, labels, lr, steps, dsa, gen, pick, checkpoint=False):
    final = unroll(student, start.clone(), images, labels, lr, steps, len(images), F.cross_entropy, dsa, gen, pick,
                   checkpoint=checkpoint)
    loss = trajectory_matching_loss(final, start, target)
    loss.backward()
    return loss


def measure(fn, iters: int, device: torch.device) -> tuple[float, float]:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = float("nan")
    return (time.perf_counter() - start) / iters, peak


def saved_for_backward_mib(fn) -> float:
    """MiB autograd keeps for the backward pass (checkpointed regions keep only their inputs)."""
    return saved_for_backward_bytes(fn)[1] / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cifar10", choices=sorted(SHAPES))
    ap.add_argument("--ipc", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--syn-steps", type=int, default=30)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--device", default=None)
    ap.add_argument("--precision", choices=SUPPORTED, default="fp32", help="precision policy (the cards' fp32: TF32 off)")
    args = ap.parse_args()
    device = pick_device(args.device)
    scope = contextlib.ExitStack()
    described = scope.enter_context(precision_scope(args.precision, device))  # held to the end of main
    chans, size, classes, strategy = SHAPES[args.dataset]
    arch = "convnet" if size >= 28 else "convnetd1"
    rows = []
    for ipc in args.ipc:
        g = torch.Generator().manual_seed(0)
        images = torch.randn(classes * ipc, chans, size, size, generator=g).to(device).requires_grad_(True)
        labels = torch.arange(classes).repeat_interleave(ipc).to(device)
        lr = torch.tensor(0.01, device=device, requires_grad=True)
        student = FlatNetwork(arch, classes, chans, size)
        start = (torch.randn(student.numel, generator=g) * 0.02).to(device)
        target = start + (torch.randn(student.numel, generator=g) * 0.01).to(device)
        plain_net = PlainReparam(create_network(arch, classes, chans, size)).to(device)
        dsa, gen, pick = DSA(strategy), torch.Generator(device=device).manual_seed(0), torch.Generator().manual_seed(1)
        variants = {
            "plain (original structure)": lambda: plain_iteration(plain_net, start, target, images, labels, lr,
                                                                  args.syn_steps, strategy),
            "ddbench": lambda: ours_iteration(student, start, target, images, labels, lr, args.syn_steps, dsa, gen, pick),
            "ddbench, checkpoint=true": lambda: ours_iteration(student, start, target, images, labels, lr, args.syn_steps,
                                                               dsa, gen, pick, checkpoint=True),
        }
        base_t = base_saved = None
        for name, fn in variants.items():
            seconds, peak = measure(fn, args.iters, device)
            saved = saved_for_backward_mib(fn)
            base_t, base_saved = base_t or seconds, base_saved or saved
            rows.append([args.dataset, ipc, args.syn_steps, name, f"{seconds:.3f}", f"{peak:.2f}", f"{saved:.0f}",
                         f"{base_t / seconds:.2f}", f"{saved / base_saved:.3f}"])
    print(f"device: {device_name(device)}; torch {torch.__version__}; {args.iters} timed iterations after one warm-up")
    print(f"precision: {args.precision} ({described}; {flags()})")
    print(tabulate(rows, headers=["dataset", "ipc", "syn_steps", "variant", "s/it", "peak GiB", "saved MiB", "speed-up",
                                  "saved vs plain"], tablefmt="github"))


if __name__ == "__main__":
    main()
