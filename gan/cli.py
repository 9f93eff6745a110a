"""``python -m gan``: generate showers, compare them with Geant4, train and evaluate, fetch the CERN weights."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gan.cli_types import energy_range, positive_int, seed
from gan.data import ShowerFileError
from gan.train_cli import add_commands as add_train_commands
from gan.weights import WeightFileError

DEFAULT_OUT = Path("out")
CHUNK = 256  # showers generated and written at a time by `generate` (~16 MB each chunk of float32 showers)
COMPARE_EVENTS = 2000  # reference events read, and generated showers kept, for the physics comparison


def warn(message: str | None) -> None:
    if message:
        print(message, file=sys.stderr)


def comparison_edges(energy):
    """The default energy bins (10-250 GeV) if they hold every energy, else five equal bins spanning them."""
    import numpy as np

    from gan.physics import DEFAULT_ENERGY_EDGES_GEV as default

    lo, hi = float(np.min(energy)), float(np.max(energy))
    if default[0] <= lo and hi <= default[-1]:
        return default
    lo, hi = np.floor(lo / 10) * 10, np.ceil(hi / 10) * 10
    return np.linspace(lo, max(hi, lo + 10), 6)


def _bins_note(edges) -> str | None:
    from gan.physics import DEFAULT_ENERGY_EDGES_GEV as default

    if len(edges) == len(default) and (edges == default).all():
        return None
    return (f"note: energies outside the default {default[0]:g}-{default[-1]:g} GeV bins: binned over "
            f"{edges[0]:g}-{edges[-1]:g} GeV instead, so no event is left out")


def _generate_to_file(generator, path, n: int, seed: int, energies, attrs, keep: int):
    """Stream ``n`` showers to ``path`` in chunks of CHUNK (memory bounded for any ``n``); returns the first
    ``keep`` as Showers for the physics comparison. Energies: ``energies`` if it has ``n`` values, else drawn
    from it with the seed."""
    import numpy as np

    from gan import data
    from gan.model import LATENT_SIZE, generate

    z_rng, e_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    kept_ecal, kept_energy = [], []
    with data.ShowerWriter(path, generator=attrs["generator"], attrs=attrs) as writer:
        for start in range(0, n, CHUNK):
            k = min(CHUNK, n - start)
            z = z_rng.standard_normal((k, LATENT_SIZE), dtype=np.float32)
            energy = energies[start:start + k] if len(energies) == n else e_rng.choice(energies, k)
            ecal = generate(generator, z, energy)
            writer.append(ecal, energy)
            if start < keep:
                kept_ecal.append(ecal[:keep - start])
                kept_energy.append(energy[:keep - start])
    return data.Showers(np.concatenate(kept_ecal), np.concatenate(kept_energy))


def cmd_generate(args) -> None:
    """Showers from a generator at the reference sample's energies, with a physics comparison and a plot."""
    import numpy as np

    from gan import data, metrics, physics
    from gan.outputs import atomic_path, check_new_file, clean_stale
    from gan.plots import plot_comparison
    from gan.pretrained import DEFAULT_REFERENCE, extrapolation_warning, load_generator

    out = Path(args.out)
    shower_file, figure_file = out / "showers.h5", out / "physics.png"
    for path in (shower_file, figure_file):
        check_new_file(path, args.overwrite)
        clean_stale(path)
    reference = args.reference or DEFAULT_REFERENCE
    energies = data.read_energies(reference, energy_range=args.energy_range)  # all selected events, no ECAL
    ref = data.read_showers(reference, energy_range=args.energy_range, max_events=COMPARE_EVENTS)
    n = args.n or len(energies)
    warn(extrapolation_warning(str(args.model), float(energies.min()), float(energies.max()),
                               "the reference energies"))
    generator = load_generator(args.model)
    out.mkdir(parents=True, exist_ok=True)
    attrs = {"generator": str(args.model), "seed": args.seed}
    showers = _generate_to_file(generator, shower_file, n, args.seed, energies, attrs, COMPARE_EVENTS)
    print(f"{n} showers from model '{args.model}' -> {shower_file}\n")
    edges = comparison_edges(np.concatenate([ref.energy, showers.energy]))
    shown = f" (the first {len(showers)})" if len(showers) < n else ""
    print(f"physics per energy bin{shown}, {args.model} / Geant4 ({len(ref)} of {len(energies)} events):")
    print(physics.format_comparison(physics.physics_summary(showers.ecal, showers.energy, edges),
                                    physics.physics_summary(ref.ecal, ref.energy, edges)))
    warn(_bins_note(edges))
    try:
        acc = metrics.accuracy_metric(ref.ecal, ref.energy, showers.ecal, showers.energy, edges)
        print(f"\naccuracy metric vs Geant4 (lower is better): {acc['total']:.3f} "
              f"(moments {acc['moment_error']:.3f}, profiles {acc['profile_error']:.3f})")
    except ValueError as exc:  # no energy bin holds both samples
        print(f"\naccuracy metric vs Geant4: not computed ({exc})")
    with atomic_path(figure_file) as tmp:
        plot_comparison(ref, showers, tmp, label=str(args.model), edges=edges)
    print(f"figure -> {figure_file}")


def cmd_summary(args) -> None:
    from gan import data, physics

    showers = data.read_showers(args.file, energy_range=args.energy_range, max_events=args.max_events)
    edges = comparison_edges(showers.energy)
    print(physics.format_summary(physics.physics_summary(showers.ecal, showers.energy, edges)))
    warn(_bins_note(edges))


def cmd_fetch_cern(args) -> None:
    from gan.pretrained import fetch_cern_weights

    print(fetch_cern_weights())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate showers and compare their physics with Geant4")
    g.add_argument("--model", default="default", help="'default', 'cern2017' or a weight-file path")
    g.add_argument("--n", type=positive_int, default=0,
                   help="number of showers, streamed to disk (default: one per reference event); the physics "
                        f"comparison uses the first {COMPARE_EVENTS}")
    g.add_argument("--reference", help="Geant4 HDF5 file (default: the embedded reference sample)")
    g.add_argument("--energy-range", type=energy_range, help="LOW:HIGH primary energy in GeV")
    g.add_argument("--seed", type=seed, default=1)
    g.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (showers.h5, physics.png)")
    g.add_argument("--overwrite", action="store_true", help="replace showers.h5 and physics.png if they exist")
    g.set_defaults(func=cmd_generate)
    s = sub.add_parser("summary", help="physics summary of a shower file")
    s.add_argument("file")
    s.add_argument("--energy-range", type=energy_range)
    s.add_argument("--max-events", type=positive_int)
    s.set_defaults(func=cmd_summary)
    add_train_commands(sub, positive_int, seed)
    f = sub.add_parser("fetch-cern", help="download CERN's 2017 generator weights (pinned URL and sha256)")
    f.set_defaults(func=cmd_fetch_cern)
    add_plugin_commands(sub)
    return p


COMMANDS_GROUP = "calogan.commands"
"""Entry-point group of commands that live in packages above ``gan`` (e.g. ``produce``, in ``production``): each
entry point is ``add(subparsers)``, found through the installed package's metadata, never imported by name here."""


def add_plugin_commands(sub) -> None:
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            add = entry.load()
        except ImportError as exc:  # a command whose package is not importable here: say so, keep the others
            print(f"note: command '{entry.name}' unavailable ({exc})", file=sys.stderr)
            continue
        add(sub)


def run_command(arg_parser, argv, errors) -> int:
    """Parse ``argv`` and run the chosen command; ``errors`` become one ``error: ...`` line and exit status 2."""
    args = arg_parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args.func(args)
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    from gan.outputs import OutputError

    return run_command(parser(), argv, (ShowerFileError, WeightFileError, OutputError))
