"""Data layer: raw files (downloaded or generated twins) -> one Zarr store per dataset -> windows,
and the part of params.yaml a dataset's own stages read (``dataset_params``). Imports core (and the
package's version)."""
