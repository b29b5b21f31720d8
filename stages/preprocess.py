"""DVC stage: read a dataset's raw files and write its Zarr store (splits, scaling, provenance)."""
import argparse

from pipeline.config import load_params
from pipeline.data.prepare import preprocess

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("dataset")
ap.add_argument("--params", default="params.yaml")
args = ap.parse_args()
print(f"wrote {preprocess(load_params(args.params), args.dataset)}")
