"""Write the golden rows tests/test_golden.py compares against (run once, on the code the rows must match).

    python tests/golden/make_golden_rows.py tests/golden/rows.json [tests/golden/mtt_pixels.safetensors]

The runs: digits-quick, 20 epochs, seeds 0-1, looped training, 1 thread, for random, herding (2-epoch
selection network) and MTT (2 experts x 2 epochs, 5 iterations); and every built-in card's hash. Only the
fields that the code decides are kept (not times, hosts, versions or memory). The optional second file holds
MTT's learned pixels (`golden_pixels`), which tests/test_golden.py compares within float noise (MTT's set id
follows the CPU's kernels; mtt_pixels.safetensors was written on an AVX-512 AMD EPYC at commit 2bb5c17).
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

STABLE = ("method", "method_config", "run_id", "set_id", "distill_seed", "protocol", "protocol_hash", "protocol_version",
          "protocol_standard", "protocol_overrides", "dataset", "data_fingerprint", "ipc", "epochs", "arch", "seed",
          "accuracy", "n_test", "label_mode", "lr", "learned_lr_used", "batch_mode", "precision")
RUNS = [("random", {}), ("herding", {"embed_epochs": 2}), ("mtt", {"num_experts": 2, "expert_epochs": 2, "iterations": 5})]


def _api():
    try:  # the layered package (issue 20)
        from ddbench.cards.card import list_protocols
        from ddbench.distill.registry import create_method
        from ddbench.kinds import load_protocol
        from ddbench.store.results import ResultStore
        from ddbench.sweep.evaluate import EvalOptions, evaluate_method
    except ImportError:  # the flat package before it
        from ddbench.evaluate import EvalOptions, evaluate_method
        from ddbench.protocol import list_protocols, load_protocol
        from ddbench.registry import create_method
        from ddbench.results import ResultStore
    return list_protocols, load_protocol, create_method, ResultStore, EvalOptions, evaluate_method


def golden_rows(cache: Path) -> dict:
    list_protocols, load_protocol, create_method, ResultStore, EvalOptions, evaluate_method = _api()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        card = load_protocol("digits-quick").with_overrides(epochs=20)
        rows = []
        for name, cfg in RUNS:
            opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(cache / "store"), seeds=2, mode="loop",
                               progress=False, cache_dir=cache)
            rows += [{k: r.get(k) for k in STABLE} for r in evaluate_method(create_method(name, **cfg), card, opts)]
    finally:
        torch.set_num_threads(threads)
    hashes = {name: load_protocol(name).hash for name in list_protocols()}
    return {"rows": sorted(rows, key=lambda r: (r["method"], r["seed"])), "card_hashes": hashes}


def golden_pixels(cache: Path) -> torch.Tensor:
    """MTT's learned pixels from the run `golden_rows(cache)` made (one set: both seeds evaluate distil seed 0's)."""
    from ddbench.store.distilled import DistilledSet

    (path,) = sorted((cache / "sets").glob("mtt-digits-*.safetensors"))
    return DistilledSet.load(path).images


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        out = golden_rows(Path(tmp))
        if len(sys.argv) > 2:
            from safetensors.torch import save_file

            save_file({"images": golden_pixels(Path(tmp)).contiguous()}, sys.argv[2])
    Path(sys.argv[1]).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{len(out['rows'])} rows, {len(out['card_hashes'])} card hashes -> {sys.argv[1]}")
