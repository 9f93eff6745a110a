"""What the benchmarks measure (``benchmarks/settings.toml``) and how the command-line options select from it."""

from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from quant.registry import slow_builds

SETTINGS_FILE = Path(__file__).with_name("settings.toml")
ALL = "all"


@dataclass(frozen=True)
class Timing:
    """How many interleaved pairs and pytest-benchmark rounds a test spends, from the seconds of one call."""

    pair_budget_s: float
    min_pairs: int
    max_pairs: int
    round_budget_s: float
    min_rounds: int
    max_rounds: int
    warmup_rounds: int

    def pairs(self, pair_s: float) -> int:
        """Pairs of (reference, variant) calls that fit the budget, given the seconds of one pair."""
        return _bounded(self.pair_budget_s, pair_s, self.min_pairs, self.max_pairs)

    def rounds(self, call_s: float) -> int:
        return _bounded(self.round_budget_s, call_s, self.min_rounds, self.max_rounds)


def _bounded(budget_s: float, each_s: float, low: int, high: int) -> int:
    if not each_s > 0:
        return low
    return max(low, min(high, math.floor(budget_s / each_s)))


@dataclass(frozen=True)
class Settings:
    models: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    reference: str
    slow_variants: tuple[str, ...]
    batch_caps: dict[str, int]
    calibration_showers: int
    calibration_seed: int
    input_seed: int
    timing: Timing
    gate_timing: Timing
    geant4_edges_gev: tuple[float, ...]

    def batch_cap(self, variant: str) -> int | None:
        """The largest batch measured for ``variant`` (None: no cap)."""
        caps = [cap for pattern, cap in self.batch_caps.items() if fnmatch.fnmatchcase(variant, pattern)]
        return min(caps) if caps else None


def load(path=SETTINGS_FILE) -> Settings:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
        return Settings(
            models=tuple(data["models"]), batch_sizes=tuple(int(b) for b in data["batch_sizes"]),
            reference=data["reference"], slow_variants=tuple(data["slow_variants"]),
            batch_caps={pattern: int(cap) for pattern, cap in data.get("batch_caps", {}).items()},
            calibration_showers=int(data["calibration_showers"]), calibration_seed=int(data["calibration_seed"]),
            input_seed=int(data["input_seed"]), timing=Timing(**data["timing"]), gate_timing=Timing(**data["gate"]),
            geant4_edges_gev=tuple(float(e) for e in data["geant4"]["energy_edges_gev"]))
    except (KeyError, TypeError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ValueError(f"{path}: bad benchmark settings ({type(exc).__name__}: {exc})") from None


def split(text: str | None) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c']."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def select(patterns: list[str], known: list[str], what: str) -> list[str]:
    """Known names matching any fnmatch pattern, in ``known``'s order; a pattern matching nothing is an error."""
    if patterns == [ALL]:
        return list(known)
    for pattern in patterns:
        if not fnmatch.filter(known, pattern):
            raise ValueError(f"no {what} matches '{pattern}' (known: {', '.join(known)})")
    return [name for name in known if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def select_variants(option: str | None, skip_option: str | None, known: list[str], settings: Settings) -> list[str]:
    """Variants to measure: ``--variants`` (default: all but the slow ones; 'all'; names or patterns) minus
    ``--skip-variants``. The reference is always measured first unless skipped explicitly."""
    if option:
        chosen = select(split(option), known, "variant")
    else:
        chosen = [name for name in known if name not in slow_builds()
                  and not any(fnmatch.fnmatchcase(name, p) for p in settings.slow_variants)]
    skip = split(skip_option)
    chosen = [name for name in chosen if not any(fnmatch.fnmatchcase(name, p) for p in skip)]
    reference_kept = settings.reference in known and not any(fnmatch.fnmatchcase(settings.reference, p) for p in skip)
    rest = [name for name in chosen if name != settings.reference]
    return ([settings.reference] if reference_kept else []) + rest


def select_models(option: str | None, known: list[str], settings: Settings) -> list[str]:
    return select(split(option), known, "model") if option else list(settings.models)


def batch_sizes(option: str | None, settings: Settings) -> list[int]:
    if not option:
        return list(settings.batch_sizes)
    try:
        sizes = [int(part) for part in split(option)]
    except ValueError:
        raise ValueError(f"--batch-sizes must be comma-separated integers, got '{option}'") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--batch-sizes must be >= 1, got '{option}'")
    return sizes
