"""Train the catalogue's experiments as Slurm jobs, from a checkout the cluster's nodes share.

    python -m pipeline.slurm submit t2m_simvp t2m_svq --time 06:00:00 [--nodes 2 --gpus-per-node 4]
    python -m pipeline.slurm submit --table 4 --partition gpu --account myproject
    python -m pipeline.slurm submit t2m_svq --dry-run     # print the job scripts, submit nothing
    python -m pipeline.slurm status                      # each job's state and its last progress line
    python -m pipeline.slurm collect [--wait SECONDS]    # record finished runs in dvc.lock
"""
from __future__ import annotations

import argparse
import sys

from pipeline.config.load import load_params
from pipeline.core.errors import exit_status
from pipeline.core.paths import repo_root
from pipeline.slurm import commands


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: expected a whole number above zero")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: expected a whole number, zero or more")
    return value


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline.slurm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="one batch job per experiment")
    s.add_argument("experiments", nargs="*", metavar="EXPERIMENT")
    s.add_argument("--table", type=_positive, help="every experiment of the paper's table N")
    s.add_argument("--time", default="06:00:00", help="wall-time limit per job, HH:MM:SS or D-HH:MM:SS "
                   "(the job requeues itself before it and resumes; default %(default)s)")
    s.add_argument("--nodes", type=_positive, default=1)
    s.add_argument("--gpus-per-node", type=_non_negative, default=0, help="0: CPU, one process per node")
    s.add_argument("--cpus-per-task", type=_positive)
    s.add_argument("--partition")
    s.add_argument("--account")
    s.add_argument("--requeue-before", type=_positive, default=300, metavar="SECONDS",
                   help="requeue this long before the time limit (at most half of it; default %(default)s)")
    s.add_argument("--params", default="params.yaml")
    s.add_argument("--dry-run", action="store_true", help="print the job scripts; run and submit nothing")
    sub.add_parser("status", help="the submitted jobs: state, elapsed time, last progress line")
    c = sub.add_parser("collect", help="record finished runs in dvc.lock (dvc commit of their train stages)")
    c.add_argument("--wait", type=float, metavar="SECONDS", help="wait up to this long for running jobs")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    root = repo_root()

    def run() -> int:
        if args.command == "submit":
            params = load_params(root / args.params)
            names = commands.experiments_for(params, args.experiments, args.table)
            opts = commands.SubmitOptions(time=args.time, nodes=args.nodes, gpus_per_node=args.gpus_per_node,
                                          cpus_per_task=args.cpus_per_task, partition=args.partition,
                                          account=args.account, requeue_before=args.requeue_before)
            commands.submit(root, params, names, opts, dry_run=args.dry_run)
            return 0
        if args.command == "status":
            commands.status(root)
            return 0
        return commands.collect(root, wait=args.wait)

    return exit_status(f"slurm {args.command}", run)


if __name__ == "__main__":
    sys.exit(main())
