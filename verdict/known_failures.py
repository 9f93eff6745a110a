"""Expected physics failures (``verdict/known_failures.toml``), each scoped to where it was measured.

An entry names a variant and why it fails; its scope (all optional, all must match) narrows it to models, checks
('paired', 'geant4'), sample sizes ('default', 'full': some failures are resolved only by --full), installed
package versions (PEP 440 specifiers on import names) and CPU flags, matched by ``gan.machine.Scope`` (the rule
the speed-up floors use too) against ``gan.machine.Here.now()``.
validation/conftest.py marks the matching tests ``xfail(strict=True)``, so a fix upstream shows up as XPASS.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import SpecifierSet

from gan.machine import Here, Scope

KNOWN_FAILURES_FILE = Path(__file__).with_name("known_failures.toml")
CHECKS = ("paired", "geant4")
SAMPLES = ("default", "full")
_FIELDS = {"variant", "reason", "measured", "models", "checks", "samples", "packages", "cpu_flags"}


@dataclass(frozen=True)
class KnownFailure:
    variant: str
    reason: str
    measured: str = ""
    models: tuple[str, ...] = ()  # empty: every model
    checks: tuple[str, ...] = ()  # empty: every check
    samples: tuple[str, ...] = ()  # empty: default and --full
    where: Scope = field(default_factory=Scope)  # CPU flags and package versions (gan.machine's one rule)

    def applies(self, model: str, variant: str, check: str, here: Here, sample: str = "default") -> bool:
        return (variant == self.variant and (not self.models or model in self.models)
                and (not self.checks or check in self.checks) and (not self.samples or sample in self.samples)
                and self.where.mismatch(None, here.cpu_flags, here.version) is None)

    def scope(self) -> str:
        """e.g. 'cern2017, paired, tensorflow==2.21.*, CPU amx_bf16'."""
        parts = [", ".join(self.models), ", ".join(self.checks), ", ".join(f"{s} samples" for s in self.samples),
                 self.where.describe()]
        return ", ".join(p for p in parts if p) or "everywhere"


def _entry(raw: dict, index: int) -> KnownFailure:
    where = f"known failure #{index + 1}"
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)} (allowed: {sorted(_FIELDS)})")
    missing = {"variant", "reason"} - set(raw)
    if missing:
        raise ValueError(f"{where}: missing {sorted(missing)}")
    for key, known in (("checks", CHECKS), ("samples", SAMPLES)):
        bad = set(raw.get(key, ())) - set(known)
        if bad:
            raise ValueError(f"{where}: unknown {key} {sorted(bad)} (known: {list(known)})")
    for spec in raw.get("packages", {}).values():
        SpecifierSet(spec)  # InvalidSpecifier names the bad one
    return KnownFailure(raw["variant"], raw["reason"], raw.get("measured", ""), tuple(raw.get("models", ())),
                        tuple(raw.get("checks", ())), tuple(raw.get("samples", ())),
                        Scope(cpu_flags=tuple(raw.get("cpu_flags", ())), packages=dict(raw.get("packages", {}))))


def parse(text: str) -> list[KnownFailure]:
    return [_entry(raw, i) for i, raw in enumerate(tomllib.loads(text).get("failure", []))]


def load(path=KNOWN_FAILURES_FILE) -> list[KnownFailure]:
    return parse(Path(path).read_text())


def find(failures, model: str, variant: str, check: str, here: Here, sample: str = "default") -> KnownFailure | None:
    """The first registered failure that applies to this (model, variant, check, sample size) ``here``, else None."""
    return next((f for f in failures if f.applies(model, variant, check, here, sample)), None)
