"""Typed results of the study: one shape for "a variant's speed and physics".

:class:`SpeedResult` (one batch size: speed-up over FP32 with its interval, showers/s of both),
:class:`PhysicsResult` (paired verdict against its own FP32, Geant4-side verdict, the physics status) and
:class:`VariantResult` (one model x variant: build, op report, sizes, speed per batch size, physics, or why it
did not run). ``to_dict()`` gives the JSON the report writes (``results.json``, schema in :mod:`report.results`);
the benchmarks' rows take their speed fields from a :class:`SpeedResult` as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

GEANT4, FP32 = "Geant4", "FP32"  # labels of the two references in figures and tables
STATUS_WORDS = {"keeps": "keeps the physics", "breaks": "BREAKS the physics",
                "cannot_tell": "physics CANNOT TELL at this sample size"}


@dataclass(frozen=True)
class Sample:
    """Showers to draw: Geant4, FP32 or a variant's, with their primary energies."""

    label: str  # "Geant4", "FP32" or the variant name
    ecal: np.ndarray  # (N, 25, 25, 25) GeV
    energy: np.ndarray  # (N,) GeV


@dataclass(frozen=True)
class SpeedResult:
    """Speed of a variant at one batch size: interleaved speed-up over FP32 (quant.speed.Speedup; None for FP32
    itself) and showers/s of the variant and of FP32 in the same pairs."""

    batch: int
    speedup: object | None  # quant.speed.Speedup
    showers_per_s: float
    fp32_showers_per_s: float | None = None

    @property
    def seconds_per_batch(self) -> float:
        return self.batch / self.showers_per_s

    @classmethod
    def from_speedup(cls, batch: int, speedup) -> SpeedResult:
        return cls(batch, speedup, batch / speedup.variant_s, batch / speedup.reference_s)

    def to_dict(self) -> dict:
        """Speedup fields (median, low, high, pairs, reference_s, variant_s) plus showers_per_s and
        fp32_showers_per_s: the report's per-batch speed entry."""
        base = self.speedup.to_dict() if self.speedup is not None else {}
        return base | {"showers_per_s": self.showers_per_s, "fp32_showers_per_s": self.fp32_showers_per_s}


def speed_class(speedup: dict | None) -> str | None:
    """'faster' (interval above 1), 'slower' (below 1), 'same' (interval holds 1); None if not measured."""
    if not speedup:
        return None
    if speedup["low"] > 1:
        return "faster"
    return "slower" if speedup["high"] < 1 else "same"


def physics_status(entry: dict) -> str:
    """'keeps', 'breaks' (a row beyond its requirement) or 'cannot_tell' (unresolved rows only: not a pass), from
    a variant's results entry (``keeps_physics``, ``paired``, ``geant4``)."""
    if entry["keeps_physics"]:
        return "keeps"
    g4 = entry.get("geant4") or {}
    return "cannot_tell" if entry["paired"].get("status") == "cannot tell" and not g4.get("failures") else "breaks"


@dataclass
class PhysicsResult:
    """A variant's physics: the paired entry (vs its own FP32, same inputs) and the Geant4-side entry (None where
    no Geant4-side verdict applies), as :func:`study.runner.paired_entry` / :func:`study.runner.geant4_entry`
    make them."""

    paired: dict
    geant4: dict | None = None

    @property
    def keeps_physics(self) -> bool:
        return bool(self.paired["ok"] and (self.geant4 is None or self.geant4["ok"]))

    @property
    def status(self) -> str:
        return physics_status({"keeps_physics": self.keeps_physics, "paired": self.paired, "geant4": self.geant4})

    def to_dict(self) -> dict:
        return {"paired": self.paired, "geant4": self.geant4, "keeps_physics": self.keeps_physics,
                "physics_status": self.status}


@dataclass
class VariantResult:
    """One model x variant: what was built, how fast it is against FP32 and whether it keeps the physics; or why
    it did not run (``unavailable`` here, or an ``error`` while building or generating)."""

    model: str
    variant: str
    description: str = ""
    unavailable: str | None = None
    error: str | None = None
    build_s: float | None = None
    generate_s: float | None = None
    op_summary: str | None = None
    op_report: dict | None = None
    size_bytes: int | None = None
    disk_bytes: int | None = None
    speed: dict[int, SpeedResult] = field(default_factory=dict)
    physics: PhysicsResult | None = None
    physics_summary: list | None = None  # gan.physics.physics_summary rows of its showers
    speedup_vs_geant4: list | None = None  # gan.physics.speedup_over_geant4 rows at the largest batch

    @property
    def largest_batch(self) -> SpeedResult | None:
        return self.speed[max(self.speed)] if self.speed else None

    def to_dict(self) -> dict:
        """The report's variant entry (see report.results)."""
        out: dict = {"description": self.description}
        if self.unavailable is not None:
            return out | {"unavailable": self.unavailable}
        for key in ("build_s", "op_summary", "op_report", "size_bytes", "disk_bytes", "generate_s"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.error is not None:
            return out | {"error": self.error}
        if self.speed:
            out["speed"] = {str(b): s.to_dict() for b, s in sorted(self.speed.items())}
        if self.physics is not None:
            out |= self.physics.to_dict()
        out["physics_summary"] = self.physics_summary
        largest = self.largest_batch
        if largest is None:
            out["speed_class"] = None
        else:
            out["speedup_at_largest_batch"] = largest.to_dict() | {"batch": largest.batch}
            out["speed_class"] = speed_class(out["speedup_at_largest_batch"])
            out["speedup_vs_geant4"] = self.speedup_vs_geant4
        return out
