"""SVQ reproduction pipeline: data -> Zarr -> SimVP(+quantizer) -> MLflow -> paper tables."""
from pipeline.compat import install_torchvision_hook

install_torchvision_hook()

__version__ = "0.1.0"
