"""The suite's checking functions: paired shifts against the requirement table, distances to Geant4 against
Geant4's own null distributions; each gives a :class:`Verdict` with one readable table.

Paired (variant vs its own FP32 model, same z and energies): every observable's shift per energy bin comes with a
bootstrap confidence interval over the events (gan.paired). A row is "ok" when the whole interval lies within the
requirement, "FAIL" when it lies entirely beyond it, and "cannot tell" otherwise: the statistics do not resolve
the shift from the requirement, so the suite needs more showers (see :func:`paired_sequential`), and never passes.

Geant4-side (default model): the increase of each distance to held-out Geant4, variant minus FP32, against the
threshold of verdict/geant4_null.toml (a quantile of the same increase between disjoint Geant4 samples). Two
kinds of check are not judged, and are reported so, never as a pass: "blind", a bounded distance (separation
power) so close to its maximum that no increase could exceed the threshold; "off-scale", FP32 itself so far from
Geant4 (OFF_SCALE_FACTOR x Geant4's own distance) that the null does not calibrate the increase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gan import distances, metrics, paired, physics

ACCURACY_KEYS = ("total", "moment_error", "profile_error")
OK, FAIL, UNRESOLVED, BLIND, OFF_SCALE = "ok", "FAIL", "cannot tell", "blind", "off-scale"
_SEVERITY = {FAIL: 3, UNRESOLVED: 2, BLIND: 1, OFF_SCALE: 1, OK: 0}
OFF_SCALE_FACTOR = 10.0
"""A Geant4-side check is off-scale when FP32's distance exceeds this many times Geant4's own (the null's
median distance plus its threshold): there the distance's change is set by its slope far from Geant4 (FPD grows
with the square of a mean shift), not by Geant4's statistics that calibrate the threshold."""


class ToleranceExceeded(AssertionError):
    """A variant moved the physics beyond its requirement; the message is the verdict's report."""


class Unresolved(AssertionError):
    """The statistics could not tell a shift from its requirement: neither pass nor fail."""


@dataclass
class Verdict:
    title: str  # e.g. "default-bf16: paired shifts vs FP32"
    table: str  # every row with its requirement and status
    failures: list[str] = field(default_factory=list)  # one line per row beyond its requirement
    unresolved: list[str] = field(default_factory=list)  # one line per row the statistics cannot resolve
    blind: list[str] = field(default_factory=list)  # checks not judged: "key (blind)" or "key (off-scale)"
    judged: int | None = None  # Geant4-side: how many checks were judged (None: paired)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.unresolved

    @property
    def status(self) -> str:
        return FAIL if self.failures else UNRESOLVED if self.unresolved else OK

    def report(self) -> str:
        kept = "keeps the physics" + ("" if self.judged is None else f" in the {self.judged} checks that can judge it")
        head = {OK: kept, FAIL: f"{len(self.failures)} beyond requirement:",
                UNRESOLVED: f"cannot tell ({len(self.unresolved)} unresolved):"}[self.status]
        lines = [f"{self.title}: {head}", *(f"  {line}" for line in self.failures or self.unresolved)]
        if self.blind:
            lines.append(f"  not judged (blind: saturated; off-scale: FP32 far from Geant4): {', '.join(self.blind)}")
        return "\n".join(lines + ["", self.table])

    def raise_if_failed(self) -> None:
        if self.failures:
            raise ToleranceExceeded(self.report())
        if self.unresolved:
            raise Unresolved(self.report())


def within(value: float, tolerance: float) -> bool:
    """|value| <= tolerance; NaN never is."""
    return abs(value) <= tolerance


def decide(low: float, high: float, requirement: float, shift: float = math.nan) -> str:
    """OK if the interval [low, high] lies within +-requirement, FAIL if entirely beyond it, else UNRESOLVED.

    An interval that could not be computed (NaN: e.g. a few events whose resamples leave a moment undefined) is
    UNRESOLVED when the measured ``shift`` itself is finite (more showers decide it), else FAIL (a NaN shift means
    the variant's showers are broken).
    """
    if math.isnan(low) or math.isnan(high):
        return UNRESOLVED if math.isfinite(shift) else FAIL
    if max(abs(low), abs(high)) <= requirement:
        return OK
    return FAIL if low > requirement or high < -requirement else UNRESOLVED


# ------------------------------------------------------------------ paired: variant vs its FP32 model


def _decided_row(name: str, e_low: float, e_high: float, entry: dict, requirement: float) -> dict:
    """The component that decides the row (worst status, then largest |shift| / requirement)."""
    shift = entry["shift"]
    if len(shift) == 0:
        return {"observable": name, "e_low": e_low, "e_high": e_high, "fp32": 0.0, "variant": 0.0, "shift": 0.0,
                "low": 0.0, "high": 0.0, "index": None, "requirement": requirement, "status": OK}
    status = [decide(lo, hi, requirement, float(sh))
              for lo, hi, sh in zip(entry["low"], entry["high"], shift, strict=True)]
    size = np.where(np.isnan(shift), np.inf, np.abs(shift))
    k = max(range(len(shift)), key=lambda i: (_SEVERITY[status[i]], size[i]))
    return {"observable": name, "e_low": e_low, "e_high": e_high, "fp32": float(entry["fp32"][k]),
            "variant": float(entry["variant"][k]), "shift": float(shift[k]), "low": float(entry["low"][k]),
            "high": float(entry["high"][k]), "index": None if entry["index"] is None else int(entry["index"][k]),
            "requirement": requirement, "status": status[k]}


def paired_rows(fp32_ecal, variant_ecal, energy, requirements, seed: int = 0) -> list[dict]:
    """One decided row per energy bin and observable (``requirements``: verdict.requirements.Requirements)."""
    rows = []
    for lo, hi, comps in paired.paired_components(fp32_ecal, variant_ecal, energy, requirements.edges,
                                                  resamples=paired.RESAMPLES, seed=seed):
        req = requirements.for_bin(lo, hi)
        rows += [_decided_row(name, lo, hi, entry, req[name]) for name, entry in comps.items()]
    return rows


def _fmt(value: float, kind: str) -> str:
    return f"{100 * value:+.2f}%" if kind == "relative" and math.isfinite(value) else f"{value:+.4g}"


def _line(row: dict) -> str:
    kind = paired.PAIRED_OBSERVABLES[row["observable"]]
    return (f"{paired.row_name(row)} at {row['e_low']:g}-{row['e_high']:g} GeV: shift {_fmt(row['shift'], kind)} "
            f"[{_fmt(row['low'], kind)}, {_fmt(row['high'], kind)}] (FP32 {row['fp32']:.4g}, variant "
            f"{row['variant']:.4g}), requirement {_fmt(row['requirement'], kind).lstrip('+')}")


def format_paired_table(rows: list[dict]) -> str:
    header = ["observable", "E_p [GeV]", "FP32", "variant", "shift", f"{100 * paired.CONFIDENCE:g}% interval",
              "requirement", "status"]
    table = [header]
    for r in rows:
        kind = paired.PAIRED_OBSERVABLES[r["observable"]]
        table.append([paired.row_name(r), f"{r['e_low']:g}-{r['e_high']:g}", f"{r['fp32']:.4g}",
                      f"{r['variant']:.4g}", _fmt(r["shift"], kind),
                      f"[{_fmt(r['low'], kind)}, {_fmt(r['high'], kind)}]",
                      _fmt(r["requirement"], kind).lstrip("+"), r["status"]])
    return paired.render_table(table)


def paired_verdict(rows: list[dict], title: str) -> Verdict:
    return Verdict(title, format_paired_table(rows), [_line(r) for r in rows if r["status"] == FAIL],
                   [_line(r) for r in rows if r["status"] == UNRESOLVED])


def check_paired(fp32_ecal, variant_ecal, energy, requirements, title: str = "paired") -> Verdict:
    """Every paired observable per energy bin (variant minus FP32, same z and energies GeV) against its
    requirement, decided on its bootstrap interval."""
    rows = paired_rows(fp32_ecal, variant_ecal, energy, requirements)
    verdict = paired_verdict(rows, f"{title} ({len(energy)} showers)")
    edges = requirements.edges
    outside = int(np.count_nonzero(physics.energy_bin_index(np.asarray(energy), edges) < 0))
    if outside:  # never dropped silently; with none inside there is nothing to judge: not a pass
        line = f"{outside} of {len(energy)} showers outside the energy bins {edges[0]:g}-{edges[-1]:g} GeV: not checked"
        (verdict.unresolved if not rows else verdict.blind).append(line)
    return verdict


def paired_sequential(generate_pair, sizes, requirements, title: str = "paired") -> Verdict:
    """Grow the sample through ``sizes`` until no row is "cannot tell" (or the largest size is reached).

    ``generate_pair(n)`` -> (fp32_ecal, variant_ecal, energy) of the first n paired showers. A row that fails
    stops the sequence at once: a clear failure needs no more statistics.
    """
    verdict = None
    for n in sizes:
        fp32, variant, energy = generate_pair(n)
        verdict = check_paired(fp32, variant, energy, requirements, title)
        if verdict.status != UNRESOLVED:
            return verdict
    return verdict


# ------------------------------------------------------------------ distributions: variant and FP32 vs Geant4


def geant4_distances(ref_ecal, ref_energy, ecal, energy, edges, convention: str = "ours") -> dict[str, float]:
    """'distance.features' -> distance of a GAN sample from the Geant4 reference (lower is closer)."""
    from verdict.geant4_events import summarise

    return summary_distances(summarise(ref_ecal, ref_energy), summarise(ecal, energy), edges, convention)


def summary_distances(ref: dict, cand: dict, edges, convention: str = "ours") -> dict[str, float]:
    """:func:`geant4_distances` from per-event summaries (verdict.geant4_events.summarise)."""
    accuracy = metrics.accuracy_metric_from_events(metrics.events_from_summary(ref), ref["energy"],
                                                   metrics.events_from_summary(cand), cand["energy"], edges,
                                                   convention=convention)
    values = {f"accuracy_metric.{key}": accuracy[key] for key in ACCURACY_KEYS}
    for row in distances.feature_distance_table(ref["features"], cand["features"], convention=convention):
        values[f"{row['distance']}.{row['features']}"] = row["value"]
    return values


def _geant4_status(key: str, fp32: float, increase: float, threshold: dict) -> str:
    if math.isnan(increase):
        return FAIL
    if threshold.get("bound") is not None and fp32 + threshold["threshold"] >= threshold["bound"]:
        return BLIND  # even the largest possible increase could not exceed the threshold
    scale = threshold.get("g4_distance")
    if scale is not None and fp32 > OFF_SCALE_FACTOR * (scale + threshold["threshold"]):
        return OFF_SCALE
    return OK if increase <= threshold["threshold"] else FAIL


def format_geant4_table(fp32: dict, variant: dict, thresholds: dict, status: dict) -> str:
    """One row per distance: FP32 vs Geant4, variant vs Geant4, increase, threshold, status."""
    table = [["distance to Geant4", "FP32", "variant", "increase", "threshold", "status"]]
    for key in fp32:
        table.append([key, f"{fp32[key]:.4g}", f"{variant[key]:.4g}", f"{variant[key] - fp32[key]:+.4g}",
                      f"{thresholds[key]['threshold']:.4g}", status[key]])
    return paired.render_table(table)


def check_geant4(fp32: dict, variant: dict, thresholds: dict, title: str = "vs Geant4") -> Verdict:
    """Is the variant farther from Geant4 than its FP32 model by more than Geant4's own null allows?

    ``fp32`` and ``variant``: :func:`geant4_distances` of the two samples (same z, same energies, same reference);
    ``thresholds``: 'distance.features' -> {"threshold", "bound", "g4_distance"} (verdict.geant4_null.thresholds;
    bound: the distance's maximum, where it has one; g4_distance: Geant4's own median distance at that size).
    """
    missing = sorted(set(fp32) - set(thresholds))
    if missing:
        raise KeyError(f"no Geant4 threshold for {missing}")
    status = {key: _geant4_status(key, fp32[key], variant[key] - fp32[key], thresholds[key]) for key in fp32}
    failures = [f"{key}: FP32 {fp32[key]:.4g} -> variant {variant[key]:.4g} (increase {variant[key] - fp32[key]:+.4g}"
                f", threshold {thresholds[key]['threshold']:.4g})" for key in fp32 if status[key] == FAIL]
    return Verdict(title, format_geant4_table(fp32, variant, thresholds, status), failures,
                   blind=[f"{key} ({status[key]})" for key in fp32 if status[key] in (BLIND, OFF_SCALE)],
                   judged=sum(status[key] in (OK, FAIL) for key in fp32))
