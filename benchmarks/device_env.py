"""What the campaign runs on: torch, CUDA, the device, the precision flags in force, and the packages present."""
from __future__ import annotations

import importlib.metadata
import importlib.util

import torch

import ddbench
from ddbench.core.provenance import device_name
from ddbench.engine.precision import flags

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(f"ddbench {ddbench.__version__}; torch {torch.__version__}; CUDA {torch.version.cuda} available={torch.cuda.is_available()}")
print(f"device: {device_name(device)}")
print(f"default flags: {flags()} (ddbench sets them per card: fp32 cards run with TF32 off)")
for name in ("timm", "safetensors", "numpy", "kornia", "ray", "matplotlib", "selenium"):
    present = importlib.util.find_spec(name) is not None
    version = importlib.metadata.version(name) if present else "absent"
    print(f"{name}: {version}")
