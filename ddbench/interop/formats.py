"""The import formats: one registered `ImportFormat` per layout another codebase saves its sets in.

A format names its reader lazily ("module:function"), so listing formats (the CLI's choices) imports
nothing heavy. A reader takes (source path, ImportOptions, the dataset's class names) and returns a
`ddbench.interop.sources.Source`: what the files hold, before interpretation. A plug-in package adds a
format with an entry point in the group "ddbench.formats" naming an ImportFormat; see docs/extending.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ddbench.core.registry import Registry, import_object


@dataclass(frozen=True)
class ImportFormat:
    name: str
    reader: str  # "module:function" -> reader(src: Path, opts: ImportOptions, class_names: list[str]) -> Source
    default_preset: str  # the normalisation its float images are saved in (ddbench.interop.presets), "pixels" for [0, 1]
    summary: str = ""
    zca_possible: bool = False  # the source codebase can save images in ZCA space (--zca)
    saves_lr: bool = True  # False: the learned lr is only logged, so --lr must be given

    def read(self, src: Any, opts: Any, class_names: list[str]) -> Any:
        return import_object(self.reader)(src, opts, class_names)


EXPORT_FORMATS = ("mtt", "tensors", "folder")  # the layouts `ddbench export` writes (ddbench.interop.exporter)
FORMATS: Registry[ImportFormat] = Registry("import format", entry_points="ddbench.formats")
for _fmt in (
    ImportFormat("mtt", "ddbench.interop.sources:mtt_reader", "mtt", "MTT's images_best.pt / labels_best.pt",
                 zca_possible=True, saves_lr=False),
    ImportFormat("datm", "ddbench.interop.sources:datm_reader", "datm", "DATM's images, soft labels (logits) and lr",
                 zca_possible=True),
    ImportFormat("dc", "ddbench.interop.sources:dc_reader", "dc", "DC/DSA/DM's res_*.pt result files"),
    ImportFormat("mkdt", "ddbench.interop.sources:mkdt_reader", "mkdt", "MKDT's images, teacher targets and lr"),
    ImportFormat("tensors", "ddbench.interop.sources:tensors_reader", "pixels", "a .pt/.safetensors file of tensors",
                 zca_possible=True),
    ImportFormat("folder", "ddbench.interop.sources:folder_reader", "pixels", "one image folder per class"),
):
    FORMATS.register(_fmt.name, _fmt)
