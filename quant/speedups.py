"""``python -m quant.speedups``: interleaved speed-ups of variants over ``fp32`` and over ``folded``, per batch size,
and optionally the time per op of one batch.

    python -m quant.speedups --variants folded,folded-bf16,folded-openvino-bf16 --batch-sizes 1,128 --profile

Every ratio comes from :func:`quant.speed.warmed_speedup` (one warm-up, then the variant and the baseline called
alternately on the same seeded batch; median of per-pair ratios, 95% bootstrap interval). ``fp32`` is the
original Keras generator, the reference every speed-up is quoted against; ``folded`` is the exact rewrite, so a
speed-up over it is what the precision alone buys. Built variants are reused for all batch sizes; rough on a shared CPU.
"""

from __future__ import annotations

import argparse

from gan.cli import run_command
from gan.cli_types import int_list, name_list, positive_int
from gan.data import ShowerFileError
from gan.weights import WeightFileError
from quant import registry
from quant.base import VariantError, VariantUnavailable

ERRORS = (VariantError, VariantUnavailable, ShowerFileError, WeightFileError)
BASELINES = ("fp32", "folded")
INPUT_SEED = 2021


def _pairs(batch: int, pairs: int | None) -> int:
    return pairs or (30 if batch < 8 else 10)  # small batches: short calls, more pairs for the same time


def measure(model: str, variants: list[str], batch_sizes: list[int], pairs: int | None = None,
            profile: bool = False, log=print) -> list[dict]:
    """One row per variant x batch size: speed-up over each baseline and seconds per call."""
    import numpy as np

    from gan.model import sample_latent
    from gan.pretrained import load_generator, trained_energy_range
    from quant.calibration import make_calibration
    from quant.speed import warmed_speedup

    generator = load_generator(model)
    energy_range = trained_energy_range(model)
    calibration = make_calibration(64, 0, energy_range)
    built = {name: registry.build(name, generator, calibration, model)
             for name in dict.fromkeys([*BASELINES, *variants])}
    rows = []
    for batch in batch_sizes:
        z = sample_latent(batch, seed=INPUT_SEED)
        energy = np.random.default_rng(INPUT_SEED).uniform(*energy_range, batch).astype(np.float32)
        for name in variants:
            row = {"model": model, "variant": name, "batch": batch}
            for base in BASELINES:
                if base == name:
                    continue
                speed = warmed_speedup(lambda b=built[base], z=z, e=energy: b.generate(z, e),
                                       lambda v=built[name], z=z, e=energy: v.generate(z, e), _pairs(batch, pairs))
                row[f"vs_{base}"], row["seconds"] = speed, speed.variant_s
                row[f"{base}_seconds"] = speed.reference_s
            rows.append(row)
            log(format_row(row))
            if profile:
                from quant import op_profile

                log(op_profile.format_profile(name, batch, *op_profile.profile(built[name], z, energy)))
    return rows


def format_row(row: dict) -> str:
    cells = [row["model"], row["variant"], str(row["batch"])]
    cells += [row[f"vs_{b}"].format() if f"vs_{b}" in row else "1" for b in BASELINES]
    cells.append(f"{row['seconds'] * 1e3:.1f}")
    cells.append(f"{row['batch'] / row['seconds']:.0f}")
    return "| " + " | ".join(cells) + " |"


HEADER = ("| model | variant | batch | speed-up over fp32 | speed-up over folded | ms per batch | showers/s |\n"
          "|---|---|---|---|---|---|---|")


def cmd_speedups(args) -> None:
    from gan.machine import cpu_model

    for name in args.variants:
        registry.get(name).check()
    print(f"CPU: {cpu_model()}; interleaved pairs, median [95% interval]; rough when the machine is shared")
    print(HEADER)
    for model in args.models:
        measure(model, args.variants, args.batch_sizes, args.pairs, args.profile)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quant.speedups", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", type=name_list, default=["folded", "folded-bf16", "folded-openvino-bf16"])
    p.add_argument("--models", type=name_list, default=["default"], help="'default', 'cern2017' or weight files")
    p.add_argument("--batch-sizes", type=int_list, default=(1, 128))
    p.add_argument("--pairs", type=positive_int, help="interleaved pairs per ratio (default 30 at batch < 8, else 10)")
    p.add_argument("--profile", action="store_true", help="also print the time per op of one batch")
    p.set_defaults(func=cmd_speedups)
    return p


def main(argv=None) -> int:
    return run_command(parser(), argv, ERRORS)


if __name__ == "__main__":
    raise SystemExit(main())
