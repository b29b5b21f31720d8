"""Slurm clusters: the catalogue's train stages as batch jobs that requeue themselves before their
time limit and resume, on one node or several (``python -m pipeline.slurm``; see its ``--help``)."""
