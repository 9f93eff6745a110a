"""The suite's checking functions: shifts and distances against tolerances, as a verdict with one readable table.

``check_paired`` compares a variant with its own FP32 model event by event (gan.paired); ``check_geant4``
compares how far each is from held-out Geant4 showers (paper accuracy metric, separation power and normalised W1
per feature group, FPD, KPD). Both return a :class:`Verdict`; ``verdict.raise_if_failed()`` raises
:class:`ToleranceExceeded` (an AssertionError) whose message names every observable and energy bin that moved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gan import distances, metrics, paired

ACCURACY_KEYS = ("total", "moment_error", "profile_error")


class ToleranceExceeded(AssertionError):
    """A variant moved the physics beyond tolerance; the message is the verdict's report."""


@dataclass
class Verdict:
    title: str  # e.g. "default-bf16: paired shifts vs FP32"
    table: str  # every row with its tolerance and ok/FAIL
    failures: list[str] = field(default_factory=list)  # one line per row out of tolerance

    @property
    def ok(self) -> bool:
        return not self.failures

    def report(self) -> str:
        status = "all within tolerance" if self.ok else f"{len(self.failures)} beyond tolerance:"
        return "\n".join([f"{self.title}: {status}", *(f"  {line}" for line in self.failures), "", self.table])

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise ToleranceExceeded(self.report())


def within(value: float, tolerance: float) -> bool:
    """|value| <= tolerance; NaN never is."""
    return abs(value) <= tolerance


def _require(tolerances: dict, keys, what: str) -> None:
    missing = sorted(set(keys) - set(tolerances))
    if missing:
        raise KeyError(f"no tolerance for {what} {missing}")


# ------------------------------------------------------------------ paired: variant vs its FP32 model


def _paired_failure(row: dict, tolerance: float) -> str:
    kind = paired.PAIRED_OBSERVABLES[row["observable"]]
    shift, tol = (f"{100 * row['shift']:+.2f}%", f"{100 * tolerance:.2f}%") if kind == "relative" else \
        (f"{row['shift']:+.4g}", f"{tolerance:.4g}")
    where = "" if row.get("index") is None else f" (slice {row['index']})"
    return (f"{row['observable']}{where} at {row['e_low']:g}-{row['e_high']:g} GeV: shift {shift} "
            f"(FP32 {row['fp32']:.4g}, variant {row['variant']:.4g}), tolerance {tol}")


def check_paired(fp32_ecal, variant_ecal, energy, edges, tolerances: dict, title: str = "paired") -> Verdict:
    """Shifts of every paired observable per energy bin (variant minus FP32, same z and energy GeV)."""
    _require(tolerances, paired.PAIRED_OBSERVABLES, "paired observable(s)")
    rows = paired.paired_shifts(fp32_ecal, variant_ecal, energy, edges)
    failures = [_paired_failure(r, tolerances[r["observable"]]) for r in rows
                if not within(r["shift"], tolerances[r["observable"]])]
    return Verdict(title, paired.format_shift_table(rows, tolerances), failures)


# ------------------------------------------------------------------ distributions: variant and FP32 vs Geant4


def geant4_distances(ref_ecal, ref_energy, ecal, energy, edges) -> dict[str, float]:
    """'distance.features' -> distance of a GAN sample from the Geant4 reference (lower is closer)."""
    accuracy = metrics.accuracy_metric(ref_ecal, ref_energy, ecal, energy, edges)
    values = {f"accuracy_metric.{key}": accuracy[key] for key in ACCURACY_KEYS}
    for row in distances.distance_table(ref_ecal, ref_energy, ecal, energy):
        values[f"{row['distance']}.{row['features']}"] = row["value"]
    return values


def format_geant4_table(fp32: dict, variant: dict, tolerances: dict) -> str:
    """One row per distance: FP32 vs Geant4, variant vs Geant4, increase, tolerance, ok/FAIL."""
    table = [["distance to Geant4", "FP32", "variant", "increase", "tolerance", "status"]]
    for key in fp32:
        increase = variant[key] - fp32[key]
        table.append([key, f"{fp32[key]:.4g}", f"{variant[key]:.4g}", f"{increase:+.4g}",
                      f"{tolerances[key]:.4g}", "ok" if _not_worse(increase, tolerances[key]) else "FAIL"])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [line[0].ljust(widths[0]) + "  " + "  ".join(c.rjust(w) for c, w in zip(line[1:], widths[1:]))
             for line in table]
    return "\n".join(lines[:1] + ["-" * len(lines[0])] + lines[1:])


def _not_worse(increase: float, tolerance: float) -> bool:
    """A variant may be closer to Geant4 than FP32 by any amount, farther by at most ``tolerance``."""
    return increase <= tolerance and not math.isnan(increase)


def check_geant4(fp32: dict, variant: dict, tolerances: dict, title: str = "vs Geant4") -> Verdict:
    """Is the variant farther from Geant4 than its FP32 model by more than the tolerance, for any distance?

    ``fp32`` and ``variant``: :func:`geant4_distances` of the two samples (same z, same energies, same reference).
    """
    _require(tolerances, fp32, "distance(s)")
    failures = [f"{key}: FP32 {fp32[key]:.4g} -> variant {variant[key]:.4g} (increase {variant[key] - fp32[key]:+.4g}"
                f", tolerance {tolerances[key]:.4g})"
                for key in fp32 if not _not_worse(variant[key] - fp32[key], tolerances[key])]
    return Verdict(title, format_geant4_table(fp32, variant, tolerances), failures)
