"""The state an interrupted training resumes from, for the long trainings on real data (selection and full-data
networks, expert trajectories).

A training saves its state at the end of an epoch, at most every `every_s` seconds and atomically: the weights, the
optimizer's state, its random generators, the global RNG and whatever else it keeps (an expert's snapshots so far).
A later run of the same training restores it and ends with what an uninterrupted run would have made, so a kill loses
at most one save interval. A damaged file is removed and the training starts again. A training without a network (a
distillation's learned pixels and step size) saves its parts by name (`restore_parts`, `save_parts_if_due`); a bare
tensor is wrapped in `TensorState`.
"""
from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import torch
from safetensors import safe_open
from torch import nn

from ddbench.core import clock
from ddbench.core.paths import atomic_path

log = logging.getLogger(__name__)

RESUME_EVERY_S = 60.0  # how often a long training saves the state it can resume from


class Stateful(Protocol):
    """What a resume file saves by name: a module, an optimizer, a `TensorState`."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


class TensorState:
    """A tensor learned in place (a distillation's pixels, its step size) as a `Stateful` part."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.tensor.detach()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        value = state["value"]
        if value.shape != self.tensor.shape:
            raise ValueError(f"saved shape {tuple(value.shape)}, expected {tuple(self.tensor.shape)}")
        with torch.no_grad():
            self.tensor.copy_(value)


class ResumeFile:
    """One training's resume file: restore once at the start, `save_if_due` after each epoch, `finish` at the end."""

    def __init__(self, path: Path, every_s: float | None = None) -> None:
        self.path = path
        self.every_s = RESUME_EVERY_S if every_s is None else every_s
        self.seconds_before = 0.0  # the training time the interrupted runs spent, restored from the file
        self.restored = 0  # the epochs (iterations) restored from the file
        self._started, self._saved_at = clock.now(), time.monotonic()
        self._saved_seen: tuple[tuple[int, ...], int] | None = None  # ((inode, mtime, size), epochs) of the last read

    def epochs_saved(self) -> int:
        """Epochs (iterations) the file holds now; read once per version of the file (plans ask several times)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return 0
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # a save replaces the file (atomic rename)
        if self._saved_seen is None or self._saved_seen[0] != version:
            self._saved_seen = (version, epochs_saved(self.path))
        return self._saved_seen[1]

    def restore(self, model: nn.Module, opt: torch.optim.Optimizer, generators: Sequence[torch.Generator],
                device: torch.device) -> tuple[int, dict[str, Any]]:
        """Set `model`, `opt` and `generators` (and the global RNG) back to the saved state; (epochs done, the extra
        entries saved). (0, {}) where there is no file or it cannot be read (then it is removed)."""
        return self.restore_parts({"model": model, "optimizer": opt}, generators, device)

    def restore_parts(self, parts: Mapping[str, Stateful], generators: Sequence[torch.Generator],
                      device: torch.device) -> tuple[int, dict[str, Any]]:
        """`restore` for any named parts (each saved by `save_parts_if_due` under the same name)."""
        self._started, self._saved_at = clock.now(), time.monotonic()
        if not self.path.is_file():
            return 0, {}
        before = _current(parts, generators)
        try:
            state = torch.load(self.path, map_location=device, weights_only=True)
            for name, part in parts.items():
                part.load_state_dict(state[name])
            states = state["generators"]
            if len(states) != len(generators):
                raise ValueError(f"{len(states)} generator states for {len(generators)} generators")
            for generator, saved in zip(generators, states):
                generator.set_state(saved.cpu())
            torch.set_rng_state(state["global_rng"].cpu())
        except Exception as exc:  # a damaged or foreign file: start again
            log.warning(f"cannot resume from {self.path.name} ({exc}); training from the start")
            _put_back(before, parts, generators)  # a file that fails half-way leaves nothing half-restored
            self.path.unlink(missing_ok=True)
            return 0, {}
        self.seconds_before = float(state.get("seconds", 0.0))
        self.restored = int(state["epochs_done"])
        log.info(f"resuming {self.path.name} after {self.restored} epoch(s)")
        return self.restored, dict(state.get("extra", {}))

    def save_if_due(self, epochs_done: int, model: nn.Module, opt: torch.optim.Optimizer,
                    generators: Sequence[torch.Generator], **extra: Any) -> None:
        """Save the state after `epochs_done` epochs where `every_s` seconds have passed since the last save."""
        self.save_parts_if_due(epochs_done, {"model": model, "optimizer": opt}, generators, **extra)

    def save_parts_if_due(self, epochs_done: int, parts: Mapping[str, Stateful], generators: Sequence[torch.Generator],
                          **extra: Any) -> None:
        """`save_if_due` for any named parts."""
        if time.monotonic() - self._saved_at < self.every_s:
            return
        state = {"epochs_done": epochs_done, **{name: part.state_dict() for name, part in parts.items()},
                 "generators": [g.get_state() for g in generators], "global_rng": torch.get_rng_state(),
                 "seconds": self.seconds(), "extra": extra}
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)
        self._saved_at = time.monotonic()

    def seconds(self) -> float:
        """Training time so far, the interrupted runs' included."""
        return self.seconds_before + clock.now() - self._started

    def finish(self) -> None:
        """The training ended: its resume file has no further use."""
        self.path.unlink(missing_ok=True)


def _current(parts: Mapping[str, Stateful], generators: Sequence[torch.Generator]) -> tuple[dict, list, torch.Tensor]:
    """A copy of the parts' and generators' state, to put back where a restore fails half-way."""
    return ({name: copy.deepcopy(part.state_dict()) for name, part in parts.items()}, [g.get_state() for g in generators],
            torch.get_rng_state())


def _put_back(state: tuple[dict, list, torch.Tensor], parts: Mapping[str, Stateful], generators: Sequence[torch.Generator]) -> None:
    saved, generator_states, global_rng = state
    for name, part in parts.items():
        part.load_state_dict(saved[name])
    for generator, saved_state in zip(generators, generator_states):
        generator.set_state(saved_state)
    torch.set_rng_state(global_rng)


def _saved(path: Path, entry: str, default: Any) -> Any:
    """One entry of the resume file at `path`, or `default` (no file, or unreadable: the training starts again)."""
    if not path.is_file():
        return default
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True).get(entry, default)
    except Exception:  # damaged: the training will start again, as ResumeFile.restore does
        return default


def epochs_saved(path: Path) -> int:
    """Epochs the resume file at `path` holds (0: none, or unreadable, where the training starts again)."""
    return int(_saved(path, "epochs_done", 0))


def seconds_saved(path: Path) -> float:
    """Training seconds the interrupted runs behind the resume file at `path` spent (0.0: none, or unreadable)."""
    return float(_saved(path, "seconds", 0.0))


def recorded_training_seconds(path: Path) -> float | None:
    """The training seconds a finished training's safetensors file (an expert, a cached network) recorded in its
    `ddbench` metadata; None where it is absent, unreadable, or saved before its training time was recorded."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            seconds = json.loads((handle.metadata() or {}).get("ddbench", "{}")).get("seconds")
    except Exception:  # absent or damaged: it says nothing about time
        return None
    return float(seconds) if isinstance(seconds, (int, float)) else None


def epochs_left(path: Path, epochs: int) -> tuple[int, str]:
    """The epochs a training with resume file `path` still has to run (all `epochs`, or the rest after a saved
    interruption) and, where it resumes, a note for the plan's label ("resumes after N of M epochs"; else "")."""
    done = min(epochs_saved(path), epochs)
    return epochs - done, f"resumes after {done} of {epochs} epochs" if done else ""
