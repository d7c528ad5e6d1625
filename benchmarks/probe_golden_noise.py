"""How far MTT's golden pixels move under float noise, and under a real change: the scale of test_golden's tolerance.

Distils the golden run's MTT set (digits-quick, 2 experts × 2 epochs, 5 iterations, tests/golden/make_golden_rows.py)
with 1 thread (as the golden run does), with 2 threads (another reduction order: the kind of difference another
CPU's kernels make), with `lr_img` 1 % off and with one iteration fewer, and prints each set's max and mean absolute
pixel difference from the 1-thread set and from tests/golden/mtt_pixels.safetensors. Nothing is kept (a temporary cache).

    python benchmarks/probe_golden_noise.py
"""
from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file
from tabulate import tabulate

from ddbench.data import load_dataset
from ddbench.distill.registry import create_method
from ddbench.kinds import load_protocol
from ddbench.store.results import ResultStore
from ddbench.sweep.evaluate import EvalOptions, distill_cached

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"


def _golden_mtt_config() -> dict:
    """MTT's config in the golden run (tests/golden/make_golden_rows.py's RUNS): one source for the probe and the test."""
    spec = importlib.util.spec_from_file_location("make_golden_rows", GOLDEN / "make_golden_rows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.RUNS)["mtt"]


VARIANTS = [("1 thread (the golden run)", 1, {}), ("2 threads", 2, {}), ("lr_img 101 (1 % off)", 1, {"lr_img": 101.0}),
            ("4 iterations", 1, {"iterations": 4})]


def mtt_pixels(threads: int, cfg: dict, cache: Path) -> torch.Tensor:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        card = load_protocol("digits-quick").with_overrides(epochs=20)
        opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(cache / "store"), progress=False, cache_dir=cache)
        method = create_method("mtt", **{**_golden_mtt_config(), **cfg})
        return distill_cached(method, card, load_dataset("digits"), 0, opts).images
    finally:
        torch.set_num_threads(before)


def main() -> None:
    golden = load_file(str(GOLDEN / "mtt_pixels.safetensors"))["images"]
    sets = {}
    for name, threads, cfg in VARIANTS:
        with tempfile.TemporaryDirectory() as tmp:
            sets[name] = mtt_pixels(threads, cfg, Path(tmp))
    base = sets[VARIANTS[0][0]]
    rows = [[name, f"{(px - base).abs().max():.3g}", f"{(px - base).abs().mean():.3g}", f"{(px - golden).abs().max():.3g}",
             f"{(px - golden).abs().mean():.3g}"] for name, px in sets.items()]
    print(tabulate(rows, headers=["MTT set", "max |Δ| vs 1 thread", "mean |Δ|", "max |Δ| vs golden", "mean |Δ|"]))
    print("test_golden passes a set within max 4e-3 and mean 2e-5 of the golden pixels")


if __name__ == "__main__":
    main()
