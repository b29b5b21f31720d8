"""SVQ reproduction pipeline: source files -> Zarr store -> SimVP(+quantizer) -> tracked run (MLflow
and a committed record) -> the paper's tables. The folders are the layers (README, Layout):
core; data, models, metrics; config; tracking, training; report, repro. At the root: the SVQ
plug-in (``pipeline.svq``) and the commands run by name (``pipeline.forecast``, ``pipeline.registry``)."""
import os

# PyTorch's CPU allocator backs tensors of 2 MiB and more with transparent huge pages (the kernel
# here gives them on madvise only). Without it every large temporary (a VQ distance matrix, a
# conv activation) is faulted in 4 KiB at a time: on the development VM that made a fresh 200 MB
# tensor 14x slower to allocate than to fill and a sample training step 2-4x slower
# (bench/results/stage_overhead-cpu.txt). Read once, at torch's first allocation.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from pipeline.core.compat import install_torchvision_hook  # noqa: E402

install_torchvision_hook()

__version__ = "0.1.0"
