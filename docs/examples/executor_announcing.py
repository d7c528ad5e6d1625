"""Example executor (docs/extending.md): runs the graph in this process like the default, announcing each stage.
One file; the `EXECUTORS.register` line is its one line of registration (a plug-in package names the class in its
entry-point group "ddbench.executors" instead). Use it with `ddbench evaluate ... --executor announcing-example`."""
from __future__ import annotations

import logging

from ddbench.sweep.executors import LocalExecutor
from ddbench.sweep.registry import EXECUTORS

log = logging.getLogger("ddbench.example")


class AnnouncingExecutor(LocalExecutor):
    name = "announcing (example)"

    def run(self, sweep):
        stages = sorted({task.stage for task in sweep.graph.order() if not task.done})
        log.info(f"announcing executor: {len(sweep.graph.tasks)} task(s), stages to run: {', '.join(stages)}")
        return super().run(sweep)


EXECUTORS.register("announcing-example", AnnouncingExecutor)
