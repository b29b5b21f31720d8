"""DVC stage: fetch a dataset's raw files (remote) or write its sample twin (sample)."""
import argparse

from pipeline.config import load_params
from pipeline.data.prepare import download

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("dataset")
ap.add_argument("--params", default="params.yaml")
args = ap.parse_args()
print(f"raw files ready in {download(load_params(args.params), args.dataset)}")
