"""DVC stage: fetch a dataset's raw files (remote) or write its sample twin (sample)."""
import argparse

from pipeline.core.errors import stage_errors

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("dataset")
ap.add_argument("--params", default="params.yaml")
args = ap.parse_args()

with stage_errors("download"):
    from pipeline.data.dataset_params import load_dataset_params
    from pipeline.data.prepare import download

    raw = download(load_dataset_params(args.params, args.dataset), args.dataset)
print(f"raw files ready in {raw}")
