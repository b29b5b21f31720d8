"""SVQ reproduction pipeline: data -> Zarr -> SimVP(+quantizer) -> MLflow -> paper tables."""
from pipeline.compat import ensure_torchvision_importable

ensure_torchvision_importable()

__version__ = "0.1.0"
