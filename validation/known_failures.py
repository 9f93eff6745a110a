"""Expected physics failures (``validation/known_failures.toml``), each scoped to where it was measured.

An entry names a variant and why it fails; its scope (all optional, all must match) narrows it to models, checks
('paired', 'geant4'), sample sizes ('default', 'full': some failures are resolved only by --full), installed
package versions (PEP 440 specifiers on import names) and CPU flags.
validation/conftest.py marks the matching tests ``xfail(strict=True)``, so a fix upstream shows up as XPASS.
"""

from __future__ import annotations

import functools
import importlib.metadata
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

KNOWN_FAILURES_FILE = Path(__file__).with_name("known_failures.toml")
CHECKS = ("paired", "geant4")
SAMPLES = ("default", "full")
_FIELDS = {"variant", "reason", "measured", "models", "checks", "samples", "packages", "cpu_flags"}


@functools.cache
def package_version(import_name: str) -> str | None:
    """Installed version of the distribution providing ``import_name`` (e.g. tensorflow -> tensorflow-cpu)."""
    for dist in importlib.metadata.packages_distributions().get(import_name, [import_name]):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


@dataclass(frozen=True)
class Stack:
    """Where the suite runs: package versions (looked up on demand) and CPU flags."""

    cpu_flags: frozenset[str]
    versions: dict[str, str | None] | None = None  # None: ask importlib.metadata

    @classmethod
    def here(cls) -> Stack:
        from quant.cpu import cpu_flags

        return cls(cpu_flags())

    def version(self, package: str) -> str | None:
        return package_version(package) if self.versions is None else self.versions.get(package)


@dataclass(frozen=True)
class KnownFailure:
    variant: str
    reason: str
    measured: str = ""
    models: tuple[str, ...] = ()  # empty: every model
    checks: tuple[str, ...] = ()  # empty: every check
    samples: tuple[str, ...] = ()  # empty: default and --full
    packages: dict[str, str] = field(default_factory=dict)  # import name -> version specifier
    cpu_flags: tuple[str, ...] = ()  # every one must be present

    def applies(self, model: str, variant: str, check: str, stack: Stack, sample: str = "default") -> bool:
        return (variant == self.variant and (not self.models or model in self.models)
                and (not self.checks or check in self.checks) and (not self.samples or sample in self.samples)
                and all(_version_matches(stack.version(p), spec) for p, spec in self.packages.items())
                and set(self.cpu_flags) <= stack.cpu_flags)

    def scope(self) -> str:
        """e.g. 'cern2017, paired, tensorflow==2.21.*, CPU amx_bf16'."""
        parts = [", ".join(self.models), ", ".join(self.checks), ", ".join(f"{s} samples" for s in self.samples)]
        parts += [f"{p}{s}" for p, s in self.packages.items()] + [f"CPU {f}" for f in self.cpu_flags]
        return ", ".join(p for p in parts if p) or "everywhere"


def _version_matches(installed: str | None, specifier: str) -> bool:
    return installed is not None and SpecifierSet(specifier).contains(Version(installed), prereleases=True)


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
                        tuple(raw.get("checks", ())), tuple(raw.get("samples", ())), dict(raw.get("packages", {})),
                        tuple(raw.get("cpu_flags", ())))


def parse(text: str) -> list[KnownFailure]:
    return [_entry(raw, i) for i, raw in enumerate(tomllib.loads(text).get("failure", []))]


def load(path=KNOWN_FAILURES_FILE) -> list[KnownFailure]:
    return parse(Path(path).read_text())


def find(failures, model: str, variant: str, check: str, stack: Stack, sample: str = "default") -> KnownFailure | None:
    """The first registered failure that applies to this (model, variant, check, sample size) here, else None."""
    return next((f for f in failures if f.applies(model, variant, check, stack, sample)), None)
