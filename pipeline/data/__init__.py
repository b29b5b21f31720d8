"""Data layer: raw files (downloaded or generated twins) -> one Zarr store per dataset -> windows."""
