"""The site's image grids: one PNG per ranked set, kept beside the pages so that any machine can rebuild them.

A grid is drawn from the set's file when it is found under the `--sets` folders and written to
`<site>/grids/<set id>.png`. A rebuild on a machine without that file (a fresh clone, CI) keeps the grid
already published there, since a set id names the set's contents; grids of sets no row ranks any more are
removed. Only a grid neither drawn nor kept is reported missing.
"""
from __future__ import annotations

import html
import io
import logging
import re
from pathlib import Path
from typing import Any, Iterable

from ddbench.core.errors import DDBenchError
from ddbench.core.paths import atomic_write
from ddbench.store.distilled import DistilledSet

log = logging.getLogger("ddbench")

GRID_DIR = "grids"
MAX_GRID_IMAGES = 100  # per set: up to 10 classes × 10 images
_SAFE_ID = re.compile(r"[0-9A-Za-z_-]+")  # a set id names a file: nothing else is looked up or linked


def grid_png(dset: DistilledSet) -> bytes:
    """Up to 10 images of up to 10 classes, in pixel space (ZCA undone), titled with the set id, as PNG bytes."""
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    labels = dset.labels if dset.labels.ndim == 1 else dset.labels.argmax(1) if dset.labels.numel() else None
    if labels is None:
        picked = list(range(min(MAX_GRID_IMAGES, len(dset.images))))
    else:
        picked = [i for c in range(min(10, dset.num_classes)) for i in (labels == c).nonzero().flatten().tolist()[:10]]
    pixels = dset.space.to_pixels(dset.images[picked].float())
    rows = min(10, dset.ipc) if dset.ipc else 10
    grid = make_grid(pixels, nrow=max(1, rows), padding=1, pad_value=1.0).permute(1, 2, 0).numpy()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(grid.squeeze() if grid.shape[2] == 1 else grid, cmap="gray" if grid.shape[2] == 1 else None)
    ax.axis("off")
    ax.set_title(f"set {dset.set_id}", fontsize=9)
    return png_bytes(fig)


def png_bytes(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes, as every picture of the site is saved (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def find_sets(dirs: Iterable[Path], wanted: set[str]) -> dict[str, Path]:
    """set id -> file, for the wanted ids among the .safetensors files under `dirs` (unreadable files skipped)."""
    found: dict[str, Path] = {}
    for root in dirs:
        for path in sorted(Path(root).rglob("*.safetensors")) if Path(root).is_dir() else []:
            if len(found) == len(wanted):
                return found
            try:
                set_id = DistilledSet.load(path).set_id
            except DDBenchError:
                continue
            if set_id in wanted:
                found.setdefault(set_id, path)
    return found


class SiteGrids:
    """The grids of one site build: drawn from set files where found, else kept from the published site."""

    def __init__(self, site_dir: Path, set_dirs: Iterable[Path], wanted: set[str]):
        self.folder = Path(site_dir) / GRID_DIR
        wanted = {i for i in wanted if _SAFE_ID.fullmatch(i)}
        self.files = find_sets(set_dirs, wanted) if wanted else {}
        self.shown: set[str] = set()
        self.drawn: set[str] = set()  # set ids whose grid this build drew from the set's file

    def figure(self, set_ids: list[str], method: str, dataset: str, ipc: int) -> str | None:
        """An HTML figure for the first of a run's sets (lowest seed first) whose grid can be drawn or was kept."""
        set_id = next((i for i in set_ids if i in self.files or self._published(i)), None)
        if set_id is None:
            return None
        if set_id in self.files and set_id not in self.drawn:  # a set shared by several cards is drawn once
            with atomic_write(self.folder / f"{set_id}.png") as handle:
                handle.write(grid_png(DistilledSet.load(self.files[set_id])))
            self.drawn.add(set_id)
        self.shown.add(set_id)
        alt = (f"up to 100 images of {method}'s set {set_id} ({dataset}, IPC {ipc}), one row per class, in pixel space")
        return (f'<figure><img alt="{html.escape(alt)}" src="{GRID_DIR}/{html.escape(set_id)}.png">'
                f"<figcaption>{html.escape(method)}</figcaption></figure>")

    def _published(self, set_id: str) -> bool:
        return bool(_SAFE_ID.fullmatch(set_id)) and (self.folder / f"{set_id}.png").is_file()

    def finish(self) -> list[Path]:
        """Remove the grids of sets this build did not show and say what was drawn and kept; returns the removed files."""
        stale = [p for p in sorted(self.folder.glob("*.png")) if p.stem not in self.shown] if self.folder.is_dir() else []
        for path in stale:
            path.unlink()
        log.info("image grids of %d set(s): %d drawn from set files, %d kept from the published site; %d of unranked "
                 "sets removed", len(self.shown), len(self.drawn), len(self.shown - self.drawn), len(stale))
        return stale
