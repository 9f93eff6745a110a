"""Geant4-vs-Geant4 null distributions of the Geant4-side checks, and the thresholds derived from them.

The Geant4-side check compares increase = distance(variant, Geant4 reference) - distance(FP32, Geant4 reference)
with a threshold. Its null: three disjoint, energy-matched subsets of the shared Geant4 events, A standing in for
the reference, B for FP32 and C for the variant (each event of A gets the nearest-energy unused events of B and C,
as the suite generates its showers at the reference's energies). Repeated ``resamplings`` times at every sample
size the suite uses, the increases of each distance give its null distribution; the threshold is its quantile at
the per-check false-alarm rate ``alpha_check``, from a normal fit to the resamplings (an empirical 1 - alpha
quantile needs far more resamplings than are affordable), with alpha_check = alpha_suite / number of checks so
that the whole suite's rate is at most alpha_suite (Bonferroni). A second, independent set of resamplings then
measures how often Geant4 standing in for FP32 and variant fails each check and any check: the rates written
into the table's provenance. Nothing here depends on a generator.

    python -m verdict.geant4_null            # measure, print
    python -m verdict.geant4_null --write    # ... and rewrite verdict/geant4_null.toml (review the diff)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import tomllib
from datetime import date
from pathlib import Path

import numpy as np

from gan.cli_types import positive_int

NULL_FILE = Path(__file__).with_name("geant4_null.toml")
ENERGY_CELL_GEV = 0.5  # energy matching: events are drawn from the same 0.5 GeV cell as the reference event
BOUNDED = {"separation_power": 1.0}  # distances with a maximum: a check is blind when FP32 + threshold reaches it


class NullTableError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def matched_triplet(energy: np.ndarray, n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of three disjoint sets: A (n random events) and B, C energy-matched to A event by event."""
    order = rng.permutation(len(energy))
    a = order[:n]
    cells = np.floor(energy / ENERGY_CELL_GEV).astype(np.int64)
    pool = {}
    for i in order[n:]:
        pool.setdefault(cells[i], []).append(i)
    b, c = [], []
    for i in a:
        cell = cells[i]
        for target in (b, c):
            step = 0
            while not pool.get(cell + step) and not pool.get(cell - step):
                step += 1
            key = cell + step if pool.get(cell + step) else cell - step
            target.append(pool[key].pop())
    return a, np.array(b), np.array(c)


def resample(events: dict, n: int, edges, rng, convention: str = "ours") -> tuple[dict, dict]:
    """One null draw: (distances of B to A, distances of C to A)."""
    from verdict.checks import summary_distances
    from verdict.geant4_events import take

    a, b, c = matched_triplet(events["energy"], n, rng)
    ref = take(events, a)
    return (summary_distances(ref, take(events, b), edges, convention),
            summary_distances(ref, take(events, c), edges, convention))


def measure(events: dict, n: int, resamplings: int, edges, seed: int, convention: str = "ours", log=print) -> dict:
    """key -> {"fp32": [...], "increase": [...]} over ``resamplings`` null draws at sample size n."""
    rng = np.random.default_rng(seed)
    out = {}
    start = time.perf_counter()
    for r in range(resamplings):
        fp32, variant = resample(events, n, edges, rng, convention)
        for key in fp32:
            entry = out.setdefault(key, {"fp32": [], "increase": []})
            entry["fp32"].append(fp32[key])
            entry["increase"].append(variant[key] - fp32[key])
        if r == 0 or (r + 1) % 10 == 0:
            log(f"  n={n}: {r + 1}/{resamplings} resamplings ({time.perf_counter() - start:.0f} s)")
    return out


def normal_quantile(p: float) -> float:
    """Inverse of the standard normal CDF (bisection on erf; enough for thresholds)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def thresholds_from(null: dict, alpha_check: float) -> dict:
    """key -> threshold = mean + z(1 - alpha_check) x std of the null increases (and their summary)."""
    z = normal_quantile(1 - alpha_check)
    out = {}
    for key, entry in null.items():
        inc = np.asarray(entry["increase"])
        out[key] = {"threshold": float(inc.mean() + z * inc.std(ddof=1)), "null_mean": float(inc.mean()),
                    "null_std": float(inc.std(ddof=1)), "null_max": float(inc.max()),
                    "g4_distance": float(np.median(entry["fp32"]))}
    return out


def false_alarms(null: dict, thresholds: dict) -> tuple[dict, float]:
    """Per-check fraction of null draws above the threshold, and the fraction with any check above."""
    keys = list(null)
    over = np.array([np.asarray(null[k]["increase"]) > thresholds[k]["threshold"] for k in keys])
    return {k: float(o.mean()) for k, o in zip(keys, over, strict=True)}, float(over.any(axis=0).mean())


# ------------------------------------------------------------------ the committed table


def load(path=NULL_FILE) -> dict:
    return tomllib.loads(Path(path).read_text())


def thresholds(table: dict, n: int) -> dict:
    """'distance.features' -> {"threshold", "bound", "g4_distance"} for a reference of n events (a measured size)."""
    sizes = table.get("size", {})
    if str(n) not in sizes:
        raise NullTableError(f"geant4_null.toml has no thresholds for {n} reference events (has: "
                             f"{', '.join(sizes)}); add {n} to [measure] sizes and run "
                             f"`python -m verdict.geant4_null --write`")
    out = {}
    for distance, groups in sizes[str(n)]["thresholds"].items():
        for features, entry in groups.items():
            out[f"{distance}.{features}"] = {"threshold": float(entry["threshold"]), "bound": BOUNDED.get(distance),
                                             "g4_distance": float(entry["g4_distance"])}
    return out


def _value(x) -> str:
    if isinstance(x, str):
        return json.dumps(x)
    if isinstance(x, (bool, int)):
        return str(x).lower()
    return f"{x:.4g}"


def render(settings: dict, provenance: dict, results: dict) -> str:
    lines = ["# Geant4-vs-Geant4 null thresholds of the Geant4-side checks: written by",
             "# `python -m verdict.geant4_null --write` (method in verdict/geant4_null.py). Do not edit by hand.",
             "", "[measure]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    lines += ["", "[provenance]"] + [f"{k} = {_value(v) if not isinstance(v, list) else json.dumps(v)}"
                                     for k, v in provenance.items()]
    for n, res in results.items():
        lines += ["", f"[size.{n}]", f"suite_false_alarm_rate_measured = {_value(res['suite_rate'])}",
                  f"suite_false_alarm_rate_thresholds_set = {_value(res['suite_rate_fit'])}",
                  f"check_resamplings = {res['check_resamplings']}"]
        groups = {}
        for key, entry in res["thresholds"].items():
            distance, features = key.split(".", 1)
            groups.setdefault(distance, []).append((features, entry | {"false_alarm_measured": res["rates"][key]}))
        for distance, entries in groups.items():
            lines.append(f"[size.{n}.thresholds.{distance}]")
            lines += [f"{features} = {{ " + ", ".join(f"{k} = {_value(v)}" for k, v in e.items()) + " }"
                      for features, e in entries]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verdict.geant4_null",
                                     description="Geant4-vs-Geant4 null thresholds of the Geant4-side checks")
    parser.add_argument("--write", action="store_true", help="rewrite verdict/geant4_null.toml")
    parser.add_argument("--resamplings", type=positive_int, help="null draws per size (default: the table's)")
    args = parser.parse_args(argv)
    from verdict import geant4_events, requirements

    settings = load(NULL_FILE)["measure"] if NULL_FILE.is_file() else {}
    settings = {"sizes": settings.get("sizes", [100, 500, 1120]), "resamplings": settings.get("resamplings", 60),
                "check_resamplings": settings.get("check_resamplings", 30), "alpha_suite": settings.get(
                    "alpha_suite", 0.05), "seed": settings.get("seed", 11)}
    if args.resamplings:
        settings["resamplings"] = args.resamplings
    files = geant4_events.shared_files()
    if not files:
        print(f"no shared Geant4 data in {geant4_events.shared_data_dir()}", file=sys.stderr)
        return 2
    events = geant4_events.load(files)
    edges = np.array(requirements.load("default").edges)  # the default model's energy bins
    results = {}
    for n in settings["sizes"]:
        null = measure(events, n, settings["resamplings"], edges, settings["seed"] + n)
        alpha_check = settings["alpha_suite"] / len(null)
        thr = thresholds_from(null, alpha_check)
        check = measure(events, n, settings["check_resamplings"], edges, settings["seed"] + 100_000 + n)
        rates, suite = false_alarms(check, thr)
        results[n] = {"thresholds": thr, "rates": rates, "suite_rate": suite,
                      "suite_rate_fit": false_alarms(null, thr)[1], "check_resamplings": settings["check_resamplings"]}
        print(f"n={n}: Geant4 vs Geant4 fails any check in {suite:.1%} of {settings['check_resamplings']} fresh "
              f"resamplings (per-check alpha {alpha_check:.2%})", flush=True)
    provenance = {"command": "python -m verdict.geant4_null --write", "date": date.today().isoformat(),
                  "files": [f.name for f in files], "events": int(len(events["energy"])),
                  "edges_gev": [float(e) for e in edges], "checks": len(null),
                  "alpha_check": settings["alpha_suite"] / len(null),
                  "method": "threshold = mean + z(1 - alpha_check) std of the null increases (normal fit)"}
    text = render(settings, provenance, results)
    print(text)
    if args.write:
        tomllib.loads(text)
        NULL_FILE.write_text(text)
        print(f"wrote {NULL_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
