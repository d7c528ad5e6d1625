"""Install ddbench on a machine without network (the lent GPU): every required package that does not import is
installed from a folder of carried wheels, then ddbench itself without build isolation and without dependency
resolution, so the machine's own torch (another version than the pin) is kept. One line per package.

    python benchmarks/device_install.py .device/wheels .        # wheels made by benchmarks/device_prepare.sh
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

# ddbench's required packages (pyproject.toml) as (import name, wheel name); torch and torchvision are the machine's
REQUIRED = [("numpy", "numpy"), ("pandas", "pandas"), ("sklearn", "scikit_learn"), ("PIL", "pillow"),
            ("timm", "timm"), ("safetensors", "safetensors"), ("tabulate", "tabulate"), ("tqdm", "tqdm"),
            ("yaml", "PyYAML"), ("huggingface_hub", "huggingface_hub")]  # the last two: what timm imports
CARRIED_OPTIONAL = [("art", "adversarial_robustness_toolbox")]  # optional, but carried: the adversarial cards' attacks
OPTIONAL = ["kornia", "ray", "matplotlib", "selenium", *(module for module, _ in CARRIED_OPTIONAL)]


def _pip(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-q", *args])


def _from_wheel(module: str, dist: str, wheels: Path) -> bool:
    """Install `dist` from the carried wheels unless `module` already imports; False where it stays missing."""
    if importlib.util.find_spec(module) is not None:
        print(f"{module}: present")
        return True
    prefix = dist.replace("-", "_").lower() + "-"
    found = sorted(p for p in wheels.glob("*.whl") if p.name.lower().startswith(prefix))
    if not found or _pip(str(found[-1])) != 0:
        print(f"{module}: MISSING (no wheel for {dist} in {wheels})")
        return False
    print(f"{module}: installed from {found[-1].name}")
    return True


def main() -> int:
    wheels, repo = Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else ".")
    missing = [module for module, dist in REQUIRED if not _from_wheel(module, dist, wheels)]
    for module, dist in CARRIED_OPTIONAL:
        _from_wheel(module, dist, wheels)
    rc = _pip("-e", str(repo))
    print(f"ddbench: {'installed (editable, no build isolation, no dependency resolution)' if rc == 0 else 'INSTALL FAILED'}")
    for module in OPTIONAL:
        state = "present" if importlib.util.find_spec(module) is not None else "absent: its steps are skipped"
        print(f"{module} (optional): {state}")
    return 1 if rc or missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
