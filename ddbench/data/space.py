"""The spaces images live in: per-channel normalisation, optionally followed by ZCA whitening.

ZCA follows kornia's ZCAWhitening as MTT uses it (fit on the whole training set, eps = 0.1,
unbiased covariance): x' = (x - mean) @ U diag(1 / sqrt(S + eps)) U^T on flattened images.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class ZCA:
    """Compared and hashed by identity: two fits are the same transform only if they are one object.

    `key` names what determined the fit (ddbench.engine.whitening: the dataset's fingerprint, the input space, eps),
    so caches keyed on a ZCA never depend on its float bytes, which vary with the thread count. A *pending* ZCA
    (`ZCA.pending(key)`) has the key but not yet the matrices: it plans and pickles small, and is resolved from the
    cache (or fitted) where the work runs."""

    mean: torch.Tensor | None  # (D,)
    transform: torch.Tensor | None  # (D, D)
    eps: float = 0.1
    key: str = ""

    @classmethod
    def pending(cls, key: str, eps: float = 0.1) -> "ZCA":
        return cls(None, None, eps, key)

    @property
    def is_pending(self) -> bool:
        return self.transform is None

    @classmethod
    def fit(cls, images: torch.Tensor, eps: float = 0.1, key: str = "") -> "ZCA":
        flat = images.reshape(len(images), -1).double()
        mean = flat.mean(0)
        centred = flat - mean
        cov = centred.T @ centred / (len(flat) - 1)
        u, s, _ = torch.linalg.svd(cov)
        transform = u @ torch.diag(1.0 / torch.sqrt(s + eps)) @ u.T
        return cls(mean.float(), transform.float(), eps, key)

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        if self.is_pending:
            raise RuntimeError(f"ZCA {self.key} is pending: resolve it (ddbench.engine.whitening.resolve_space) before use")
        flat = images.reshape(len(images), -1)
        out = (flat - self.mean.to(flat)) @ self.transform.to(flat)
        return out.view_as(images)

    def invert(self, images: torch.Tensor) -> torch.Tensor:
        """Back to the normalised space (for viewing)."""
        flat = images.reshape(len(images), -1)
        inverse = torch.linalg.inv(self.transform.double()).to(flat)
        return (flat @ inverse + self.mean.to(flat)).view_as(images)


@dataclass(frozen=True)
class ImageSpace:
    """How uint8 pixels map to the float tensors a network sees."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    zca: ZCA | None = None

    def from_uint8(self, x: torch.Tensor, device: torch.device | str | None = None, chunk: int = 8192) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float32 in this space, on `device`, converted chunk by chunk."""
        device = device or x.device
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
        parts = []
        for start in range(0, len(x), chunk):
            part = (x[start : start + chunk].to(device).float() / 255.0 - mean) / std
            parts.append(self.zca.apply(part) if self.zca is not None else part)
        if not parts:
            return torch.empty(0, *x.shape[1:], device=device)
        return torch.cat(parts)

    def to_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """Float images in this space -> [0, 1] pixels (clamped), for viewing."""
        x = self.zca.invert(images) if self.zca is not None else images
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x * std + mean).clamp(0, 1)
