"""``calogan check`` / ``python -m study check`` / ``python -m validation check``: does a candidate (a saved
variant, or weights of the same architecture) keep its model's physics? Paired checks against the model's FP32
generator (requirement table), Geant4-side checks for the models trained on our Geant4 (null thresholds). Exit 0:
keeps the physics; 1: breaks it (or the statistics cannot tell, which is not a pass); 2: bad input.

The verdict itself is :mod:`verdict`'s; this command sits above it and above :mod:`quant` because it loads and runs
the candidate. ``gan``'s command line finds it through the ``calogan.commands`` entry point (pyproject.toml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gan.cli_types import increasing_sizes

CONVENTIONS = ("ours", "calochallenge", "jetnet", "cern")
HELP = "validate a candidate against its model's FP32 generator and Geant4"


class BadInput(Exception):
    """One line naming the file or argument and the problem."""


def add_arguments(check: argparse.ArgumentParser) -> None:
    check.add_argument("--model", required=True, help="the FP32 model the candidate derives from (study/settings.toml)")
    check.add_argument("--candidate", required=True, type=Path,
                       help="a saved variant folder (variant.json) or a weight file (CERN layout or ours)")
    check.add_argument("--requirements", type=Path, help="your overrides of verdict/requirements.toml")
    check.add_argument("--showers", type=increasing_sizes,
                       help="paired sequential stages (default: study/settings.toml)")
    check.add_argument("--full", action="store_true", help="--full sample sizes and Geant4 reference")
    check.add_argument("--convention", choices=CONVENTIONS, default="ours",
                       help="also print the distances as that field's code computes them (verdicts use ours)")


def add_command(sub) -> None:
    """The ``check`` subcommand, for ``gan.cli`` (entry-point group ``calogan.commands``)."""
    check = sub.add_parser("check", help=HELP, description=__doc__.split("\n\n")[0])
    add_arguments(check)
    check.set_defaults(func=lambda args: sys.exit(_checked(args)))


def parser(prog: str = "python -m study") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    add_arguments(sub.add_parser("check", help=HELP))
    return p


def load_candidate(path: Path, model: str):
    """The candidate as a variant with ``generate``: a saved variant folder, or FP32 Keras with its weights."""
    from gan.weights import WeightFileError
    from quant import registry
    from quant.base import VariantError

    if path.is_dir():
        try:
            return registry.load(path)
        except (VariantError, OSError, ValueError) as exc:
            raise BadInput(f"{path}: cannot load the saved variant ({str(exc).splitlines()[0]})") from None
    if not path.is_file():
        raise BadInput(f"{path}: no such file or folder")
    from gan.model import build_generator

    generator = build_generator()
    try:
        from gan.weights import load_weights

        load_weights(generator, path)
    except (WeightFileError, OSError) as exc:
        raise BadInput(f"{path}: not weights of the {model} architecture ({str(exc).splitlines()[0]})") from None
    return registry.build("fp32", generator, None)


def _reference(settings):
    from gan.pretrained import shared_data_file
    from study.settings import read_reference

    shared = shared_data_file()
    return read_reference(settings, shared if shared.is_file() else None)


def _convention_table(fp32, candidate, energy, edges, convention: str) -> str:
    from gan import distances, metrics

    if convention == "cern":
        m = metrics.accuracy_metric(fp32, energy, candidate, energy, edges, convention="cern")
        return (f"accuracy metric, CERN GANutils.metric convention, candidate vs FP32: total {m['total']:.4g} "
                f"(moment {m['moment_error']:.4g}, profile {m['profile_error']:.4g})")
    rows = distances.distance_table(fp32, energy, candidate, energy, convention=convention)
    return f"distances, {convention} convention, candidate vs FP32:\n" + distances.format_distance_table(rows)


def run_check(args) -> int:
    from gan.pretrained import trained_energy_range
    from study.inputs import inputs_at, uniform_inputs
    from study.settings import load_settings, new_session
    from verdict import geant4_null, requirements
    from verdict.checks import FAIL, OK, check_geant4, geant4_distances, paired_sequential

    settings = load_settings(full=args.full)
    if args.model not in settings.models:
        raise BadInput(f"--model {args.model}: unknown (known: {', '.join(settings.models)})")
    try:
        reqs = requirements.load(args.model, args.requirements)
    except requirements.RequirementError as exc:
        raise BadInput(str(exc)) from None
    candidate = load_candidate(args.candidate, args.model)
    cache = new_session(settings)
    cache.keep(args.model, "candidate", candidate)
    sizes = args.showers or settings.paired_showers
    inputs = uniform_inputs("paired", max(sizes), trained_energy_range(args.model), settings.seed)

    used = []

    def pair(n):
        used.append(n)
        return (cache.showers(args.model, "fp32", inputs, n), cache.showers(args.model, "candidate", inputs, n),
                inputs.energy[:n])
    verdicts = [paired_sequential(pair, sizes, reqs, f"{args.model} candidate {args.candidate}: paired vs FP32")]
    if args.model in settings.geant4_models:
        ref = _reference(settings)
        g4_inputs = inputs_at("geant4", ref.energy, settings.seed + 1)
        edges = settings.edges(args.model)
        d = {name: geant4_distances(ref.ecal, ref.energy, cache.showers(args.model, name, g4_inputs),
                                    g4_inputs.energy, edges) for name in ("fp32", "candidate")}
        try:
            thresholds = geant4_null.thresholds(geant4_null.load(), len(ref))
        except geant4_null.NullTableError as exc:
            raise BadInput(str(exc)) from None
        verdicts.append(check_geant4(d["fp32"], d["candidate"], thresholds,
                                     f"{args.model} candidate: distance to Geant4 vs FP32's ({len(ref)} events)"))
    for verdict in verdicts:
        print(verdict.report(), end="\n\n")
    if args.convention != "ours":
        fp32, showers, energy = pair(used[-1])
        print(_convention_table(fp32, showers, energy, reqs.edges, args.convention), end="\n\n")
    worst = max((v.status for v in verdicts), key=[OK, "cannot tell", FAIL].index)
    print({OK: "VERDICT: keeps the physics", FAIL: "VERDICT: breaks the physics",
           "cannot tell": "VERDICT: cannot tell at these statistics (not a pass): give --showers more"}[worst])
    return 0 if worst == OK else 1


def _checked(args) -> int:
    try:
        return run_check(args)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv=None, prog: str = "python -m study") -> int:
    return _checked(parser(prog).parse_args(argv))
