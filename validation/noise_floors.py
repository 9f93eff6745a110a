"""Measure the noise floors behind validation/tolerances.toml and print them (``--write``: rewrite the file).

    python -m validation.noise_floors [--n N] [--seeds K] [--models default cern2017] [--write]

Paired floor of an observable: RMS over energy bins and over pairs of FP32 samples with different latent seeds
(same energies) of the same paired shift the suite measures, at N showers per energy bin. Geant4 floor of a
distance: how much the distance of FP32 showers to the held-out Geant4 reference moves between latent seeds
(sqrt(2) x its standard deviation over K seeds), at the embedded reference's energies; the distance between the
two halves of that reference (even/odd events) is printed and recorded beside it, for scale.
Tolerance = margin (head of tolerances.toml) x floor. See the header of tolerances.toml for why.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import sys

import numpy as np

from validation import tolerances
from validation.samples import REFERENCE_VARIANT, ShowerCache, inputs_at, load_settings, uniform_inputs

COMMAND = "python -m validation.noise_floors"


def fp32_samples(cache: ShowerCache, model: str, energy, seeds: int, first_seed: int) -> list[np.ndarray]:
    """FP32 showers of ``model`` at ``energy`` (GeV) for ``seeds`` different latent seeds."""
    fp32 = cache.variant(model, REFERENCE_VARIANT)
    return [fp32.generate(inputs_at("floor", energy, first_seed + k).z, energy) for k in range(seeds)]


def paired_floors(samples, energy, edges) -> dict[str, float]:
    """Observable -> RMS over seed pairs and energy bins of the paired shift between FP32 samples."""
    from gan.paired import PAIRED_OBSERVABLES, paired_shifts

    shifts = {name: [] for name in PAIRED_OBSERVABLES}
    for a, b in itertools.combinations(samples, 2):
        for row in paired_shifts(a, b, energy, edges):
            shifts[row["observable"]].append(row["shift"])
    return {name: float(np.sqrt(np.mean(np.square(values)))) for name, values in shifts.items()}


def geant4_floors(reference, samples, energy, edges) -> tuple[dict[str, float], dict[str, float]]:
    """('distance.features' -> seed-to-seed floor, -> distance between the reference's even and odd halves)."""
    from validation.checks import geant4_distances

    values = [geant4_distances(reference.ecal, reference.energy, s, energy, edges) for s in samples]
    floors = {key: float(np.sqrt(2) * np.std([v[key] for v in values], ddof=1)) for key in values[0]}
    halves = geant4_distances(reference.ecal[0::2], reference.energy[0::2], reference.ecal[1::2],
                              reference.energy[1::2], edges)
    return floors, halves


def _entries(floors: dict, table: dict, check: str, extra: dict | None = None) -> dict[str, dict]:
    entries = {}
    for key, floor in floors.items():
        entry = {"floor": floor}
        if extra is not None:
            entry["g4_halves"] = extra[key]
        entry["tolerance"] = tolerances.derive(floor, tolerances.margin(table, check, key))
        entries[key] = entry
    return entries


def _nest(entries: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """{'distance.features': e} -> {distance: {features: e}}."""
    nested = {}
    for key, entry in entries.items():
        distance, features = key.split(".", 1)
        nested.setdefault(distance, {})[features] = entry
    return nested


def _flat(nested: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """{distance: {features: e}} -> {'distance.features': e}."""
    return {f"{distance}.{features}": e for distance, groups in nested.items() for features, e in groups.items()}


def _previous(table: dict, check: str, model: str, key: str) -> float | None:
    try:
        entries = tolerances.paired_tolerances(table, model, "") if check == "paired" else \
            tolerances.geant4_tolerances(table, model, "")
    except tolerances.ToleranceTableError:
        return None
    return entries.get(key)


def format_floors(check: str, model: str, entries: dict, table: dict) -> str:
    lines = [f"{check} floors, model {model}:",
             f"  {'observable / distance':<34}{'floor':>10}{'G4 halves':>11}{'margin':>8}{'tolerance':>11}{'was':>11}"]
    for key, e in entries.items():
        was = _previous(table, check, model, key)
        halves = f"{e['g4_halves']:.4g}" if "g4_halves" in e else "-"
        lines.append(f"  {key:<34}{e['floor']:>10.4g}{halves:>11}{tolerances.margin(table, check, key):>8g}"
                     f"{e['tolerance']:>11.4g}{'-' if was is None else f'{was:.4g}':>11}")
    return "\n".join(lines)


def _stack() -> str:
    import platform

    from quant.cpu import BF16_FLAGS, INT8_FLAGS, cpu_flags, cpu_model
    from validation.known_failures import package_version

    packages = ", ".join(f"{p} {package_version(p)}" for p in ("tensorflow", "numpy"))
    flags = " ".join(sorted(cpu_flags() & {*INT8_FLAGS, *BF16_FLAGS})) or "no int8/bf16 flags"
    return f"{packages}, Python {platform.python_version()}, {cpu_model()} ({flags})"


def measure(models, showers_per_bin: int, seeds: int, table: dict) -> tuple[dict, dict, dict]:
    """Per model: how it was measured, paired floor entries, Geant4 floor entries; printed as they come."""
    from gan.pretrained import resolve_weights, sha256sum, trained_energy_range
    from validation.samples import read_reference

    settings, seed = load_settings(), table["floor"]["seed"]
    cache, facts, paired, geant4 = ShowerCache(settings), {}, {}, {}
    for model in models:
        edges = settings.edges(model)
        facts[model] = {"date": datetime.date.today().isoformat(), "command": " ".join([COMMAND, *sys.argv[1:]]),
                        "weights_sha256": sha256sum(resolve_weights(model)), "showers_per_bin": showers_per_bin,
                        "fp32_seeds": seeds, "stack": _stack()}
        energy = uniform_inputs("floor", showers_per_bin * (len(edges) - 1), trained_energy_range(model), seed).energy
        samples = fp32_samples(cache, model, energy, seeds, seed + 1)
        paired[model] = _entries(paired_floors(samples, energy, edges), table, "paired")
        print(format_floors("paired", model, paired[model], table), flush=True)
        if model in settings.geant4_models:
            reference = read_reference(dataclasses.replace(settings, geant4_showers=None))  # all 500 embedded
            samples = fp32_samples(cache, model, reference.energy, seeds, seed + 1)
            floors, halves = geant4_floors(reference, samples, reference.energy, edges)
            geant4[model] = _entries(floors, table, "geant4", halves)
            facts[model]["geant4_reference_events"] = len(reference)
            print(format_floors("geant4", model, geant4[model], table), flush=True)
    return facts, paired, geant4


def main(argv=None) -> None:
    table, settings = tolerances.load(), load_settings()
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=table["floor"]["showers_per_bin"], help="FP32 showers per energy bin")
    p.add_argument("--seeds", type=int, default=table["floor"]["fp32_seeds"], help="FP32 latent seeds (>= 2)")
    p.add_argument("--models", nargs="+", default=list(settings.models), help="models to measure")
    p.add_argument("--rederive", action="store_true",
                   help="measure nothing: re-derive the tolerances from the recorded floors and today's margins")
    p.add_argument("--write", action="store_true", help="rewrite the measured part of validation/tolerances.toml")
    args = p.parse_args(argv)
    if args.seeds < 2 or args.n < 2:
        p.error("--seeds and --n must be >= 2")
    if args.rederive:
        facts, (paired, geant4) = {}, tolerances.rederive(table)
        for model, entries in paired.items():
            print(format_floors("paired", model, entries, table))
        for model, distances in geant4.items():
            print(format_floors("geant4", model, _flat(distances), table))
    else:
        facts, paired, geant4 = measure(args.models, args.n, args.seeds, table)
        geant4 = {model: _nest(entries) for model, entries in geant4.items()}
    if args.write:
        tolerances.write(tolerances.render_measured(table.get("measured", {}) | facts, table.get("paired", {}) | paired,
                                                    table.get("geant4", {}) | geant4))
        print(f"wrote {tolerances.TOLERANCE_FILE}")


if __name__ == "__main__":
    main()
