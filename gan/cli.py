"""``python -m gan``: generate showers, compare them with Geant4, train, fetch the CERN weights."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gan.data import ShowerFileError
from gan.weights import WeightFileError

DEFAULT_OUT = Path("out")


def energy_range_arg(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH in GeV, got {text!r}") from None
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"need 0 < LOW <= HIGH, got {text!r}")
    return lo, hi


def cmd_generate(args) -> None:
    """Showers from a generator at the reference sample's energies, with a physics comparison and a plot."""
    import numpy as np

    from gan import data, metrics, physics
    from gan.model import generate, sample_latent
    from gan.plots import plot_comparison
    from gan.pretrained import DEFAULT_REFERENCE, load_generator

    ref = data.read_showers(args.reference or DEFAULT_REFERENCE, energy_range=args.energy_range)
    n = args.n or len(ref)
    energy = ref.energy if n == len(ref) else np.random.default_rng(args.seed).choice(ref.energy, n)
    generator = load_generator(args.model)
    showers = data.Showers(ecal=generate(generator, sample_latent(n, args.seed), energy), energy=energy)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data.write_showers(out / "showers.h5", showers, attrs={"generator": str(args.model), "seed": args.seed})
    print(f"{n} showers from model '{args.model}' -> {out / 'showers.h5'}\n")
    print(f"physics per energy bin, {args.model} / Geant4 ({len(ref)} held-out events):")
    print(physics.format_comparison(physics.physics_summary(showers.ecal, showers.energy),
                                    physics.physics_summary(ref.ecal, ref.energy)))
    acc = metrics.accuracy_metric(ref.ecal, ref.energy, showers.ecal, showers.energy)
    print(f"\naccuracy metric vs Geant4 (lower is better): {acc['total']:.3f} "
          f"(moments {acc['moment_error']:.3f}, profiles {acc['profile_error']:.3f})")
    figure = plot_comparison(ref, showers, out / "physics.png", label=str(args.model))
    print(f"figure -> {figure}")


def cmd_summary(args) -> None:
    from gan import data, physics

    showers = data.read_showers(args.file, energy_range=args.energy_range, max_events=args.max_events)
    print(physics.format_summary(physics.physics_summary(showers.ecal, showers.energy)))


def cmd_train(args) -> None:
    from gan.train import TrainConfig, train

    config = TrainConfig(data_path=args.data, run_dir=args.run_dir, epochs=args.epochs, batch_size=args.batch_size,
                         learning_rate=args.learning_rate, optimizer=args.optimizer, seed=args.seed,
                         max_minutes=args.max_minutes, max_train_events=args.max_train_events,
                         holdout_events=args.holdout_events, eval_events=args.eval_events)
    print(f"generator weights -> {train(config, progress=not args.no_progress)}")


def cmd_fetch_cern(args) -> None:
    from gan.pretrained import fetch_cern_weights

    print(fetch_cern_weights())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate showers and compare their physics with Geant4")
    g.add_argument("--model", default="default", help="'default', 'cern2017' or a weight-file path")
    g.add_argument("--n", type=int, default=0, help="number of showers (default: one per reference event)")
    g.add_argument("--reference", help="Geant4 HDF5 file (default: the embedded reference sample)")
    g.add_argument("--energy-range", type=energy_range_arg, help="LOW:HIGH primary energy in GeV")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (showers.h5, physics.png)")
    g.set_defaults(func=cmd_generate)
    s = sub.add_parser("summary", help="physics summary of a shower file")
    s.add_argument("file")
    s.add_argument("--energy-range", type=energy_range_arg)
    s.add_argument("--max-events", type=int)
    s.set_defaults(func=cmd_summary)
    t = sub.add_parser("train", help="train (or resume) a generator on Geant4 showers")
    t.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/g4_electrons_10-250GeV.h5"))
    t.add_argument("--run-dir", default="runs/default")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--learning-rate", type=float, default=5e-4)
    t.add_argument("--optimizer", choices=("rmsprop", "adam"), default="rmsprop")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--max-minutes", type=float, help="stop cleanly after this many minutes (resume later)")
    t.add_argument("--max-train-events", type=int)
    t.add_argument("--holdout-events", type=int, default=1120)
    t.add_argument("--eval-events", type=int, default=600)
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)
    f = sub.add_parser("fetch-cern", help="download CERN's 2017 generator weights (pinned URL and sha256)")
    f.set_defaults(func=cmd_fetch_cern)
    return p


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
    return run_command(parser(), argv, (ShowerFileError, WeightFileError))
