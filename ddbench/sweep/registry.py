"""The executors a sweep can run on, by name: a light module (no torch), so the CLI can list them as choices.

An executor class has `from_options(address=, workers=, threads_per_task=)`, a `name`, `seeds_per_task` and
`run(sweep) -> Summary`; a plug-in package adds one through the entry-point group "ddbench.executors".
"""
from __future__ import annotations

from ddbench.core.registry import Registry

EXECUTORS: Registry[type] = Registry("executor", entry_points="ddbench.executors")
EXECUTORS.register("local", "ddbench.sweep.executors:LocalExecutor")
EXECUTORS.register("ray", "ddbench.sweep.ray_executor:RayExecutor")  # lazy: Ray is an optional extra
