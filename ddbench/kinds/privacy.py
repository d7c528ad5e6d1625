"""`privacy`: the supervised card's networks, then membership inference against each (ddbench.engine.membership).

Threat model: an attacker who can query the trained network's loss on an image and wants to tell whether that image
was used to make it, either as a real training image behind the set (population level) or as one of the images the
set was made from (source level). The members are real training images.

- Population: a fixed sample of training images (members) against as many test images (non-members).
- Source: the training images a set was selected or initialised from (`indices` of subset sets, `init_indices` of
  MTT/MKDT) against other training images of the same classes; sets without that provenance get "not applicable"
  and no number.
- Each level with the loss-threshold attack and the calibrated attack (shadow networks trained with the card's
  recipe on random real subsets of the set's size, in the set's space, trained once and kept in the cache directory
  for every seed, method and process that evaluates the card with that arch and set size).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ddbench.cards.card import ProtocolCard
from ddbench.core import clock
from ddbench.core.paths import atomic_path
from ddbench.data import ImageDataset
from ddbench.data.space import ImageSpace
from ddbench.engine.augment import DSA
from ddbench.engine.membership import MembershipRecipe, calibrated_attack, example_losses, fixed_sample, loss_attack
from ddbench.engine.train import init_network, train_networks
from ddbench.kinds.base import Need, Runtime, register_kind
from ddbench.kinds.supervised import Supervised, Trained
from ddbench.store.rows import Row

PRIVACY_VERSION = 1
SHADOW_SEED = 1_000_000  # shadow networks and their subsets draw from seeds no evaluation uses
NOT_APPLICABLE = "not applicable: the set records no real images it was made from"
log = logging.getLogger("ddbench")


@dataclass(frozen=True)
class PrivacyParams:
    membership: MembershipRecipe


def source_indices(extra: dict[str, Any]) -> list[int] | None:
    """The training images a set was made from, where it records them."""
    for key in ("indices", "init_indices"):
        if isinstance(extra.get(key), list) and extra[key]:
            return [int(i) for i in extra[key]]
    return None


@dataclass
class _Pools:
    """The examples attacked, as (images in the set's space, labels) on the device."""

    member: tuple[torch.Tensor, torch.Tensor]
    nonmember: tuple[torch.Tensor, torch.Tensor]


_SHADOWS: dict[tuple, list[torch.nn.Module]] = {}  # (card hash, arch, set size, space) -> shadow networks, per process


@register_kind
class Privacy(Supervised):
    """Supervised training, then loss and calibrated membership inference at population and source level."""

    name = "privacy"
    Params = PrivacyParams

    def check_card(self, card: ProtocolCard, need: Need) -> None:
        super().check_card(card, need)
        m = card.params.membership
        need(m.n_population >= 10 and m.n_source_nonmembers >= 10, "membership pools must hold at least 10 examples")
        need(0 <= m.shadows <= 64 and m.batch_size >= 1, "membership.shadows must be 0..64 and batch_size 1 or more")

    def work(self, card: ProtocolCard, train: ImageDataset) -> tuple[float, float]:
        """A network's training plus its share of the shadows (trained once per arch for the card's seeds)."""
        trained, tested = super().work(card, train)
        m = card.params.membership
        return trained * (1 + m.shadows / card.seeds), tested + 4 * m.n_population + 2 * m.n_source_nonmembers

    def measure_seconds(self, row: Row) -> float:
        """The attacks' recorded seconds; the shadows' (a one-off per card, arch and set size, shared) are not a
        network's."""
        seconds = (row.get("privacy") or {}).get("seconds") or {}
        return float(seconds.get("attacks") or 0.0)

    def _pool(self, train: ImageDataset, space: ImageSpace, indices: torch.Tensor, test: bool, device) -> tuple:
        x = (train.x_test if test else train.x_train)[indices]
        y = (train.y_test if test else train.y_train)[indices]
        return space.from_uint8(x, device), y.to(device)

    def _shadows(self, net: Trained, card: ProtocolCard, train: ImageDataset, rt: Runtime) -> tuple[list[torch.nn.Module], float]:
        """The card's shadow networks for this arch and set size: from this process's memory, else from the cache
        directory (trained once for every seed, method and process), else trained and kept in both; and the seconds
        spent training them now (0 where they were found)."""
        m = card.params.membership
        size = len(net.dset.images)
        key = (card.hash, net.arch, size, net.space.mean, net.space.std, id(net.space.zca), m.shadows)
        if key in _SHADOWS:
            return _SHADOWS[key], 0.0
        seeds = [SHADOW_SEED + i for i in range(m.shadows)]
        path = _shadow_path(card, net, train, size, rt.cache_dir)
        models = _load_shadows(path, net.arch, seeds, train, rt.device) if path is not None else None
        seconds = 0.0
        if models is None:
            start = clock.now()
            models = self._train_shadows(net, card, train, rt, seeds, size)
            seconds = clock.now() - start
            log.info(f"privacy: trained {len(models)} shadow networks of {size} real images for {card.id} {net.arch} "
                     f"in {seconds:.0f} s")
            if path is not None and models:
                _save_shadows(path, models)
        _SHADOWS[key] = models
        return models, seconds

    def _train_shadows(self, net: Trained, card: ProtocolCard, train: ImageDataset, rt: Runtime, seeds: list[int],
                       size: int) -> list[torch.nn.Module]:
        if not seeds:
            return []
        per_class = max(1, size // train.num_classes)
        subsets = []
        for seed in seeds:
            gen = torch.Generator().manual_seed(seed)
            subsets.append(torch.cat([train.indices_of_class(c)[torch.randperm(len(train.indices_of_class(c)),
                                      generator=gen)[:per_class]] for c in range(train.num_classes)]))
        x = torch.stack([net.space.from_uint8(train.x_train[s], rt.device) for s in subsets])
        y = torch.stack([train.y_train[s] for s in subsets]).to(rt.device)
        augment = DSA(card.train.dsa_strategy) if card.train.augment == "dsa" else None
        result = train_networks(net.arch, seeds, x, y, "hard", card.train, card.train.lr, train.num_classes, augment,
                                mode="loop", progress=False, per_seed_data=True)
        return list(result.models)

    def _level(self, model, shadows, pools: _Pools, batch: int) -> dict[str, Any]:
        target = [example_losses(model, *pool, batch) for pool in (pools.member, pools.nonmember)]
        out = {"loss": loss_attack(*target)}
        if shadows:
            shadow = [torch.stack([example_losses(s, *pool, batch) for s in shadows]) for pool in (pools.member, pools.nonmember)]
            out["calibrated"] = calibrated_attack(*target, *shadow)
        return out

    def measure(self, model: torch.nn.Module, net: Trained, card: ProtocolCard, train: ImageDataset,
                rt: Runtime) -> dict[str, Any]:
        row = super().measure(model, net, card, train, rt)
        m = card.params.membership
        shadows, shadow_seconds = self._shadows(net, card, train, rt)
        start = clock.now()
        population = _Pools(self._pool(train, net.space, fixed_sample(torch.arange(len(train.x_train)), m.n_population, 1), False,
                                       rt.device),
                            self._pool(train, net.space, fixed_sample(torch.arange(len(train.x_test)), m.n_population, 2), True,
                                       rt.device))
        result: dict[str, Any] = {"population": self._level(model, shadows, population, m.batch_size)}
        sources = source_indices(net.dset.extra)
        if sources is None:
            result["source"] = NOT_APPLICABLE
        else:
            members = torch.tensor(sorted(set(sources)))
            outside = torch.ones(len(train.x_train), dtype=torch.bool)
            outside[members] = False
            same_class = torch.isin(train.y_train, train.y_train[members].unique())
            others = torch.nonzero(outside & same_class).flatten()
            pools = _Pools(self._pool(train, net.space, members, False, rt.device),
                           self._pool(train, net.space, fixed_sample(others, m.n_source_nonmembers, 3), False, rt.device))
            result["source"] = self._level(model, shadows, pools, m.batch_size)
        seconds = {"shadows": round(shadow_seconds, 3), "attacks": round(clock.now() - start, 3)}
        return {**row, "privacy": {**result, "shadows": len(shadows), "seconds": seconds, "recipe": asdict(m),
                                   "kind_version": PRIVACY_VERSION,
                                   "attacks": "loss threshold (Yeom et al. 2018); calibrated by shadow networks "
                                              "(Watson et al. 2022)"}}


def _shadow_path(card: ProtocolCard, net: Trained, train: ImageDataset, size: int, cache_dir: Path | None) -> Path | None:
    """Where the shadows of (card, arch, set size, space, data) live in the cache; None where they cannot be named
    (no cache directory, no data fingerprint, or a ZCA without its key)."""
    zca = net.space.zca
    if cache_dir is None or not train.fingerprint or (zca is not None and not zca.key):
        return None
    ident = [PRIVACY_VERSION, card.hash, net.arch, size, list(net.space.mean), list(net.space.std), zca.key if zca else None,
             card.params.membership.shadows, SHADOW_SEED, train.fingerprint]
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / "shadows" / f"{card.id}-{net.arch}-{digest}.safetensors"


def _save_shadows(path: Path, models: list[torch.nn.Module]) -> None:
    tensors = {f"{i}.{name}": value.detach().cpu().contiguous() for i, model in enumerate(models)
               for name, value in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def _load_shadows(path: Path, arch: str, seeds: list[int], train: ImageDataset, device: torch.device) -> list | None:
    """The cached shadows, or None (absent or damaged: a damaged file is removed and the shadows trained again)."""
    if not path.is_file():
        return None
    try:
        tensors = load_file(str(path))
        models = []
        for i, seed in enumerate(seeds):
            model = init_network(arch, seed, train.num_classes, train.channels, train.image_size)
            prefix = f"{i}."
            model.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            models.append(model.to(device).eval())
    except Exception as exc:  # a damaged cache entry: train again
        log.warning(f"privacy: the cached shadow networks {path.name} are unreadable ({exc}); training them again")
        path.unlink(missing_ok=True)
        return None
    log.info(f"privacy: reusing the cached shadow networks {path.name}")
    return models
