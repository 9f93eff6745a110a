"""``calogan produce`` / ``python -m gan produce`` / ``python -m production``: mass production on Dask.

Registered with ``gan``'s command line through the ``calogan.commands`` entry-point group (pyproject.toml), so
``gan`` finds this command without importing this package. Exit status: 0 produced and the self-validation keeps
the physics (or --no-validate); 1 produced, but the self-validation says it breaks the physics or cannot tell;
2 bad input (nothing written) or a run that could not finish (re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import sys

from gan.cli_types import energy_range as energy_range_arg
from gan.cli_types import positive_int
from gan.cli_types import seed as seed_int

DEFAULT_VARIANT = "folded"
DEFAULT_SHARD_SIZE = 1000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="'default', 'cern2017' or a weight-file path (default: 'default', or the model a "
                                   "saved variant was built from)")
    p.add_argument("--variant", default=DEFAULT_VARIANT,
                   help=f"a registered variant (`python -m quant list`) or a saved variant folder "
                        f"(default: {DEFAULT_VARIANT}, the exact rewrite, ~6x FP32)")
    p.add_argument("--n", type=positive_int, help="number of showers (with --energies: default all of the file)")
    p.add_argument("--energy-range", type=energy_range_arg,
                   help="LOW:HIGH GeV, energies uniform in it (default: the model's trained range)")
    p.add_argument("--energies", metavar="FILE",
                   help="primary energies (GeV) in order: .npy, text (one per line), or a shower .h5 (its energies)")
    p.add_argument("--seed", type=seed_int, default=1, help="shard i draws from SeedSequence(seed, spawn_key=(i,))")
    p.add_argument("--out", required=True, help="production folder (shards + manifest.json); an existing "
                                                "production with the same parameters is resumed")
    p.add_argument("--shard-size", type=positive_int, default=DEFAULT_SHARD_SIZE,
                   help=f"showers per shard file and per Dask task (default {DEFAULT_SHARD_SIZE})")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int,
                       help="worker processes of a LocalCluster on this machine (default 1)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--threads", type=positive_int,
                   help="runtime threads per worker (default: cores // workers locally, each worker's nthreads on a "
                        "scheduler)")
    p.add_argument("--force", action="store_true", help="produce a variant with a registered known failure")
    p.add_argument("--no-validate", action="store_true", help="skip the self-validation (manifest: not validated)")


def cmd_produce(args) -> int:
    from production.plan import ProductionError
    from production.run import dask_client_classes, prepare, produce

    try:
        dask_client_classes()
        plan, existing, provenance = prepare(model=args.model, variant=args.variant, n=args.n,
                                             energy_range=args.energy_range, energies_file=args.energies,
                                             seed=args.seed, shard_size=args.shard_size, out=args.out,
                                             force=args.force)
        manifest = produce(plan, args.out, existing, provenance, workers=args.workers, scheduler=args.scheduler,
                           threads=args.threads, validate=not args.no_validate,
                           log=lambda m: print(m, file=sys.stderr, flush=True))
    except ProductionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run = manifest["runs"][-1]
    rate = f", {run['showers_per_s']:.1f} showers/s" if run.get("showers_per_s") else ""
    print(f"{plan.n} showers in {plan.n_shards} shards of '{provenance['variant']['name']}' ({plan.model}) -> "
          f"{args.out}: {run['shards_made']} made, {run['shards_kept']} kept{rate}")
    validation = manifest["validation"]
    for check in validation["checks"]:
        print(f"  {check['check']}: {check['status']} ({check['showers']} showers)")
    print(f"self-validation: {validation['verdict']}")
    return 0 if validation["status"] in ("ok", "not judged") and (
        args.no_validate or validation["status"] == "ok") else 1


def _run(args) -> None:
    code = cmd_produce(args)
    if code:
        raise SystemExit(code)


def add_command(sub) -> None:
    """The ``produce`` subcommand, for ``gan.cli`` (entry-point group ``calogan.commands``)."""
    p = sub.add_parser("produce", help="mass shower production on Dask (a LocalCluster, or --scheduler ADDRESS)",
                       description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.set_defaults(func=_run)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m production", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return cmd_produce(p.parse_args(argv))
