"""Make torchvision importable next to the CPU build of torch.

The torchvision wheel that matches torch 2.13.0 on these machines is a CUDA build. With the
CPU torch its compiled extension cannot load, and its Python side then fails registering fake
kernels for ``torchvision::nms``/``qnms`` because those op schemas were never defined. Declaring
the two schemas first lets the pure-Python parts (models, transforms) import, which is all
timm and lpips need. Compiled ops (nms, roi_align, ...) stay unavailable, and nothing here uses them.
"""
from __future__ import annotations

import importlib.abc
import sys

_LIB = None  # keep the Library object alive: dropping it would unregister the schemas


def ensure_torchvision_importable() -> None:
    global _LIB
    if "torchvision" in sys.modules or _LIB is not None:
        return
    import torch

    if torch.version.cuda is not None:  # a matching CUDA pair loads its own extension
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018 - defined already (a working extension)
        return
    except (AttributeError, RuntimeError):
        pass
    _LIB = torch.library.Library("torchvision", "DEF")
    _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")


class _ShimOnImport(importlib.abc.MetaPathFinder):
    """Runs the shim the moment something first imports torchvision (timm, lpips), so that
    importing ``pipeline`` itself costs no torch import: data and report stages never need it."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(self)
            ensure_torchvision_importable()
        return None  # the normal finders do the import


def install_torchvision_hook() -> None:
    if "torchvision" in sys.modules or any(isinstance(f, _ShimOnImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _ShimOnImport())
