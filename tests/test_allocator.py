"""The CLI's allocator setting: a training step's freed activations are reused, not page-faulted in afresh."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ddbench.engine.allocator import running_on_glibc

pytestmark = pytest.mark.skipif(not running_on_glibc(), reason="the setting applies to glibc only")

# Minor page faults per step of a small convolution's forward and backward once warm: its activations are 32 MiB
# (64 x 128 x 32 x 32 floats, glibc's largest mmap threshold), 8,192 pages of 4 KB each.
PROBE = """
import resource, torch
from ddbench.engine.allocator import tune_cpu_allocator
print(int(tune_cpu_allocator()))
torch.manual_seed(0)
conv = torch.nn.Conv2d(3, 128, 3, padding=1)
x = torch.randn(64, 3, 32, 32)
def step():
    conv(x).relu().sum().backward()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 3)
"""
BLOCK_PAGES = 8192


def _faults_per_step(malloc: str) -> tuple[bool, int]:
    env = {**{k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}, "DDBENCH_MALLOC": malloc}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout.split()
    return bool(int(out[0])), int(out[1])


def test_tuned_allocator_reuses_freed_blocks():
    tuned, faults = _faults_per_step("")
    assert tuned
    assert faults < BLOCK_PAGES  # the freed blocks are reused: not one activation's pages fault in again


def test_system_allocator_left_alone_on_request():
    tuned, faults = _faults_per_step("system")
    assert not tuned
    assert faults > 3 * BLOCK_PAGES  # glibc's defaults: every activation mmap'd afresh, each page faults again


def test_cli_sets_the_allocator(monkeypatch):
    from ddbench.cli import main

    calls = []
    monkeypatch.setattr("ddbench.cli.tune_cpu_allocator", lambda: calls.append(1) or True)
    assert main(["list", "methods"]) == 0
    assert calls == [1]
