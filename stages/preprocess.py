"""DVC stage: read a dataset's raw files and write its Zarr store (splits, scaling, provenance)."""
import argparse

from pipeline.core.errors import stage_errors

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("dataset")
ap.add_argument("--params", default="params.yaml")
args = ap.parse_args()

with stage_errors("preprocess"):
    from pipeline.data.dataset_params import load_dataset_params
    from pipeline.data.prepare import preprocess

    store = preprocess(load_dataset_params(args.params, args.dataset), args.dataset)
print(f"wrote {store}")
