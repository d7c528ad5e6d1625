"""The contract every distillation method follows, and the context it is given.

A method is a class with `distill(train, ipc, ctx) -> DistilledSet` (or a plain function with
that signature, wrapped by the registry). Hyperparameters resolve in three layers, like timm's
per-model default configs: `default_cfg`, then `protocol_cfg` entries whose card pattern matches
the id of a card the card includes or its own (fnmatch; `ProtocolCard.lineage`, the included card's first, so
mnist-ipc1-adv distils with mnist-ipc1's settings), then what the user passed.
"""
from __future__ import annotations

import fnmatch
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch

from ddbench.cards.card import ProtocolCard
from ddbench.core.errors import DDBenchError
from ddbench.data import ImageDataset
from ddbench.data.space import ImageSpace
from ddbench.engine.resume import ResumeFile
from ddbench.store.distilled import DistilledSet

log = logging.getLogger(__name__)


@dataclass
class DistillContext:
    """What a method may use: the card, the device, its seed and resolved config, the image space."""

    card: ProtocolCard
    device: torch.device
    seed: int
    config: dict[str, Any]
    space: ImageSpace
    method_name: str
    cache_dir: Path
    progress: bool = True
    snapshots: tuple[int, ...] = ()  # outer steps (iterations; DD: epochs) after which to save the set so far
    snapshot_path: Callable[[int], Path] | None = None
    resume: ResumeFile | None = None  # where a method that resumes (MTT, MKDT, DD) saves its loop state

    def iterations_left(self, iterations: int) -> int:
        """Of a run's `iterations`, those still to do: all of them, or those after an interrupted run's saved state."""
        return iterations - min(self.resume.epochs_saved(), iterations) if self.resume is not None else iterations

    def snapshot(self, step: int, build: Callable[[], DistilledSet]) -> None:
        """Save the set as it stands after `step` outer steps, if that step was asked for.

        Snapshots are for plotting accuracy against distillation budget; the run goes on and its
        final set is the result (no snapshot is ever chosen on the test split)."""
        if step not in self.snapshots or self.snapshot_path is None:
            return
        dset = build()
        dset.extra["snapshot_step"] = step
        path = dset.save(self.snapshot_path(step))
        log.info(f"snapshot after {step} steps: {path}")

    def generator(self, device: torch.device | str = "cpu", offset: int = 0) -> torch.Generator:
        gen = torch.Generator(device=device)
        gen.manual_seed(self.seed + offset)
        return gen

    def make_set(self, images: torch.Tensor, labels: torch.Tensor, train: ImageDataset, label_mode: str = "hard",
                 learned_lr: float | None = None, space: ImageSpace | None = None, **extra: Any) -> DistilledSet:
        """Wrap tensors into a DistilledSet with this run's provenance filled in."""
        return DistilledSet(
            images=images.detach().cpu().float(), labels=labels.detach().cpu(), label_mode=label_mode,
            num_classes=train.num_classes, dataset=train.name, ipc=self.card.ipc, method=self.method_name,
            space=space or self.space, method_config=dict(self.config), learned_lr=learned_lr,
            distill_seed=self.seed, extra=extra,
        )

    def subset_set(self, train: ImageDataset, indices: torch.Tensor) -> DistilledSet:
        """A set made of real training images `indices` (hard labels), in this run's image space."""
        indices = indices.cpu().long()
        images = self.space.from_uint8(train.x_train[indices])
        return self.make_set(images, train.y_train[indices].clone(), train, indices=indices.tolist())


@dataclass(frozen=True)
class Artefact:
    """Something a distillation needs that is made on its own, ahead of it, and cached: one expert
    trajectory, a teacher, a selection network. The job graph runs each as its own task.

    `build(train, ctx)` makes it under `ctx.cache_dir`; `files(cache_dir)` lists what it leaves
    there (all present = cached). Both must pickle (module-level functions, functools.partial), so
    that a Ray worker can run them. Equal keys are one artefact, shared by every method and card."""

    stage: str  # "experts", "teacher", "selection", ...
    key: str
    label: str
    build: Callable[[ImageDataset, "DistillContext"], None]
    files: Callable[[Path], list[Path]]
    deps: tuple[str, ...] = ()
    flops: float | None = None  # estimated work, for `--plan`
    seconds: float | None = None  # measured on earlier runs, where known
    steps: float = 0.0  # optimizer steps, each with a fixed cost beside its FLOPs (ddbench.engine.cost.STEP_SECONDS)


class Method:
    """Base class: subclass, set `default_cfg`, implement `distill`, decorate with @register_method."""

    name: ClassVar[str] = ""
    default_cfg: ClassVar[dict[str, Any]] = {}
    protocol_cfg: ClassVar[dict[str, dict[str, Any]]] = {}
    one_set_per_seed: ClassVar[bool] = False  # True: evaluation seed s gets its own set, distilled with seed s
    loop_unit: ClassVar[str] = "iterations"  # what a resumable distillation saves after (`--plan`: "resumes after 3 ...")
    kinds: ClassVar[tuple[str, ...]] = ("supervised",)  # the families of sets it makes (a protocol kind's `sets`)
    quick_card: ClassVar[str] = "digits-quick"  # what `ddbench evaluate --method NAME` runs without --protocol
    paper: ClassVar[str] = ""  # the paper's address (the site links each method to its paper and code)
    code: ClassVar[str] = ""  # the reference code's address
    runtime_cfg: ClassVar[frozenset[str]] = frozenset()  # options that change speed or memory, never the result
    # option -> (lowest, highest) allowed (None: unbounded); every float option must also be finite
    limits: ClassVar[dict[str, tuple[float | None, float | None]]] = {}

    def __init__(self, **cfg: Any) -> None:
        unknown = set(cfg) - set(self.default_cfg)
        if unknown:
            known = ", ".join(sorted(self.default_cfg)) or "none"
            raise DDBenchError(f"method '{self.name}' has no option(s) {', '.join(sorted(unknown))}; its options: {known}")
        self.user_cfg = {k: _coerce(v, self.default_cfg[k], k, self.name) for k, v in cfg.items()}
        self.check_config(self.user_cfg)

    def check_config(self, cfg: dict[str, Any]) -> None:
        """Refuse, before any artefact is built, an option outside its range or a non-finite number (one line)."""
        for key, value in cfg.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise DDBenchError(f"method '{self.name}': option {key}={value} must be a finite number")
            low, high = self.limits.get(key, (None, None))
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if (low is not None and value < low) or (high is not None and value > high):
                    bounds = f"{'' if low is None else f'≥ {low:g}'}{' and ' if low is not None and high is not None else ''}" \
                             f"{'' if high is None else f'≤ {high:g}'}"
                    raise DDBenchError(f"method '{self.name}': option {key}={value} must be {bounds}")

    def config_for(self, card: ProtocolCard) -> dict[str, Any]:
        cfg = dict(self.default_cfg)
        for card_id in card.lineage:  # an included card's settings first, then the card's own
            for pattern, overrides in self.protocol_cfg.items():
                if fnmatch.fnmatch(card_id, pattern):
                    cfg.update(overrides)
        cfg.update(self.user_cfg)
        self.check_config(cfg)
        return cfg

    def sets_per_seed(self, card: ProtocolCard) -> bool:
        """Whether evaluation seed s on `card` gets its own set, distilled with seed s (default: the class's flag)."""
        return self.one_set_per_seed

    def identity_config(self, card: ProtocolCard) -> dict[str, Any]:
        """The config that decides the result (runtime options left out): what run ids and caches hash."""
        return {k: v for k, v in self.config_for(card).items() if k not in self.runtime_cfg}

    def artefacts(self, train: ImageDataset, ctx: DistillContext) -> list[Artefact]:
        """What `distill` will need that can be made ahead, as separate tasks (default: nothing).

        `distill` must still work without them (it finds them cached, or makes them itself)."""
        return []

    def distill_flops(self, train: ImageDataset, ctx: DistillContext) -> float | None:
        """An estimate of the distillation's floating-point work, for `--plan` (default: unknown)."""
        return None

    def distill_steps(self, train: ImageDataset, ctx: DistillContext) -> float:
        """The distillation's optimizer steps (each has a fixed cost beside its FLOPs), for `--plan` (default: 0)."""
        return 0.0

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        raise NotImplementedError


def _coerce(value: Any, default: Any, key: str, method: str) -> Any:
    """Turn command-line strings into the type of the default ("3" -> 3, "true" -> True)."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return type(default)(value)
    except ValueError:
        raise DDBenchError(f"method '{method}': option {key}={value!r} is not a valid {type(default).__name__}") from None


class FunctionMethod(Method):
    """Adapter for methods written as a function `fn(train, ipc, ctx) -> DistilledSet`."""

    fn: ClassVar[Callable[..., DistilledSet]]

    def distill(self, train: ImageDataset, ipc: int, ctx: DistillContext) -> DistilledSet:
        return type(self).fn(train, ipc, ctx)
